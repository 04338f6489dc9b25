# A private OpenLDAP server for the directory tests (source after
# common.bash): slapd.conf-style configuration in $T/slapd (mdb backend,
# the core, cosine and inetorgperson schemas, suffix dc=gmca,dc=test, a
# rootdn with a password), listening on a free loopback port, run in the
# foreground as the test's own user: no system service, no root needed.
# slapd_start / slapd_stop may be called again (same port and data).
SLAPD=${SLAPD:-/usr/sbin/slapd}
LDAP_BASE="dc=gmca,dc=test"
LDAP_ADMIN="cn=admin,$LDAP_BASE"
SLAPD_PID=
slapd_setup() {
  local s=$T/slapd
  mkdir -p "$s/db"
  umask 077
  printf "slapd-admin-%s" "$$" >"$T/ldap.pass"
  umask 022
  LDAP_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  LDAP_URI="ldap://127.0.0.1:$LDAP_PORT/"
  cat >"$s/slapd.conf" <<CONF
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
pidfile $s/slapd.pid
argsfile $s/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 268435456
suffix "$LDAP_BASE"
rootdn "$LDAP_ADMIN"
rootpw $(cat "$T/ldap.pass")
directory $s/db
CONF
}
slapd_start() {
  "$SLAPD" -f "$T/slapd/slapd.conf" -h "$LDAP_URI" -d 0 >>"$T/slapd/log" 2>&1 &
  SLAPD_PID=$!
  for _ in $(seq 100); do
    ldapsearch -x -H "$LDAP_URI" -s base -b "" namingContexts >/dev/null 2>&1 && return 0
    kill -0 "$SLAPD_PID" 2>/dev/null || break
    sleep 0.1
  done
  return 1
}
slapd_stop() {
  [ -z "$SLAPD_PID" ] && return 0
  kill -TERM "$SLAPD_PID" 2>/dev/null || true
  wait "$SLAPD_PID" 2>/dev/null || true
  SLAPD_PID=
}
# lsearch BASE [ldapsearch arguments]: as the admin, LDIF without wrapping.
lsearch() {
  local b=$1; shift
  ldapsearch -x -LLL -o ldif-wrap=no -H "$LDAP_URI" -D "$LDAP_ADMIN" -y "$T/ldap.pass" -b "$b" "$@"
}
