# A throwaway PostgreSQL cluster for the tests that run gmca on PostgreSQL
# (issue 9): no system service, no TCP, no password. The cluster lives in a
# fresh directory under /tmp (a unix socket path must stay short) whose name
# is kept in a state file in the build directory; the server listens only on
# a unix socket there, and gmca connects with peer authentication as the user
# running the tests. As root (containers), the server runs as the postgres
# user, since PostgreSQL refuses root, and root gets a superuser role of its
# own name.
#
#   bash tests/pg.bash start STATEFILE   initdb + start (the CTest fixture pg)
#   bash tests/pg.bash stop STATEFILE    stop and remove the cluster
#   bash tests/pg.bash run STATEFILE CMD...  CMD with GMCA_TEST_PG=STATEFILE and
#                                        GMCA_TEST_DB the URI of a new database
#   source tests/pg.bash; pg_createdb    (GMCA_TEST_PG=STATEFILE) print the URI
#                                        of a new, empty database
#
# The server binaries are found under /usr/lib/postgresql/*/bin (Debian's
# layout), else on PATH.

pg_bindir() {
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  done
  d=$(dirname "$(command -v pg_ctl 2>/dev/null || echo /nonexistent/pg_ctl)")
  [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
  echo "pg.bash: no PostgreSQL server binaries (install postgresql)" >&2
  return 1
}

# as_server CMD...: run a server-side command as the cluster's owner.
as_server() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

PG_PORT=5432 # only names the socket file: the directory is ours alone

pg_start() {
  local state=$1 bin dir
  bin=$(pg_bindir) || return 1
  dir=$(mktemp -d /tmp/gmca-pg.XXXXXX)
  mkdir -p "$dir/sock"
  [ "$(id -u)" -ne 0 ] || chown -R postgres: "$dir"
  chmod 700 "$dir"
  [ "$(id -u)" -ne 0 ] || chmod 711 "$dir" # root's clients reach sock/ through it
  as_server "$bin/initdb" -D "$dir/data" -A peer -E UTF8 --locale=C -N >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2; return 1; }
  # Tests need no durability of the cluster itself; fsync off saves seconds.
  as_server "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
    -o "-k $dir/sock -p $PG_PORT -c listen_addresses='' -c fsync=off -c max_connections=300" \
    >/dev/null || { cat "$dir/server.log" >&2; return 1; }
  if [ "$(id -u)" -eq 0 ]; then
    as_server "$bin/createuser" -h "$dir/sock" -p "$PG_PORT" -s root || return 1
  fi
  echo "$dir" >"$state"
}

pg_stop() {
  local state=$1 bin dir
  [ -f "$state" ] || return 0
  dir=$(cat "$state")
  bin=$(pg_bindir) || return 1
  case "$dir" in /tmp/gmca-pg.*) ;; *) echo "pg.bash: $state: not a cluster" >&2; return 1 ;; esac
  as_server "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir" "$state"
}

# pg_createdb [PREFIX]: a new database on the cluster of $GMCA_TEST_PG; prints its URI.
pg_createdb() {
  local dir name bin
  dir=$(cat "${GMCA_TEST_PG:?GMCA_TEST_PG must name the cluster state file}")
  bin=$(pg_bindir) || return 1
  name="${1:-t}_$$_${RANDOM}${RANDOM}"
  "$bin/createdb" -h "$dir/sock" -p "$PG_PORT" "$name" || return 1
  echo "postgresql:///$name?host=$dir/sock&port=$PG_PORT"
}

# pg_psql URI SQL: one query, unaligned output without headers.
pg_psql() {
  local bin
  bin=$(pg_bindir) || return 1
  "$bin/psql" -X -q -A -t -v ON_ERROR_STOP=1 -d "$1" -c "$2"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  set -euo pipefail
  case "${1:-}" in
    start) pg_start "${2:?state file}" ;;
    stop) pg_stop "${2:?state file}" ;;
    run)
      export GMCA_TEST_PG=${2:?state file}
      shift 2
      GMCA_TEST_DB=$(pg_createdb run) || exit 1
      export GMCA_TEST_DB
      exec "$@"
      ;;
    *) echo "usage: $0 start|stop STATEFILE | run STATEFILE CMD..." >&2; exit 2 ;;
  esac
fi
