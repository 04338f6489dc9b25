# Helpers for end-to-end tests of the gmca binary. Source it; it sets up a
# temporary directory removed on exit, and counts checks.
set -euo pipefail
: "${GMCA:?GMCA must point at the gmca binary}"
: "${GMCA_SRC:?GMCA_SRC must point at the source tree}"
T=$(mktemp -d "${TMPDIR:-/tmp}/gmca-e2e.XXXXXX")
# Every CA engine a test started is told to stop, then the files go.
stop_engines() {
  local s
  for s in "$T"/*/run/engine.sock "$T"/*/*/run/engine.sock; do
    [ -S "$s" ] && "$GMCA" --dir "$(dirname "$(dirname "$s")")" deactivate >/dev/null 2>&1
  done
  return 0
}
# A front started with start_front is stopped too.
SERVE_PID=
stop_serve() { [ -z "$SERVE_PID" ] || kill -TERM "$SERVE_PID" 2>/dev/null || true; }
trap 'stop_serve; stop_engines; rm -rf "$T"' EXIT
PASSED=0
FAILED=0
export GMCA_OPERATOR=e2e-operator

ok() { PASSED=$((PASSED + 1)); }
bad() { FAILED=$((FAILED + 1)); echo "FAIL: $*" >&2; }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }

# expect_exit CODE WHAT -- command...: run, compare the exit status, keep
# stderr in $T/err and stdout in $T/out.
expect_exit() {
  local want=$1 what=$2; shift 3
  local got=0
  "$@" >"$T/out" 2>"$T/err" || got=$?
  if [ "$got" = "$want" ]; then ok; else
    bad "$what: exit $got, want $want; stderr: $(head -c 400 "$T/err")"
  fi
}

# The one-line cause on stderr contains TEXT.
expect_err() {
  if [ "$(wc -l <"$T/err")" -le 1 ] && grep -qF -- "$1" "$T/err"; then ok; else
    bad "stderr should be one line containing '$1', was: $(head -c 400 "$T/err")"
  fi
}

finish() {
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}

# The five custodians of CPS §7.2.1.1 and their PINs ($T/pin1..5).
CUSTODIANS=(张三 李四 王五 赵六 钱七)
make_pins() {
  local i
  umask 077
  for i in 1 2 3 4 5; do [ -f "$T/pin$i" ] || echo "Custody${i}Pin$((i * 7919))" > "$T/pin$i"; done
  umask 022
}
# custodian_args: --custodian/--pin-file pairs for init.
custodian_args() {
  local i
  for i in 1 2 3 4 5; do printf '%s\n' --custodian "${CUSTODIANS[$((i - 1))]}" --pin-file "$T/pin$i"; done
}
# On PostgreSQL (issue 9): with GMCA_TEST_PG naming a running cluster
# (tests/pg.bash, the CTest fixture pg), every CA made by init_ca and every KM
# given $(db_opt) gets a fresh database of its own there.
if [ -n "${GMCA_TEST_PG:-}" ]; then
  # shellcheck source=../pg.bash
  source "$GMCA_SRC/tests/pg.bash"
fi
# db_opt: "--db URI" of a new database on PostgreSQL runs, nothing on SQLite runs.
db_opt() { [ -z "${GMCA_TEST_PG:-}" ] || printf '%s\n' --db "$(pg_createdb gmca)"; }
# db_sql DIR SQL: run SQL on the store of the CA (or KM) in DIR, whichever backend.
# On PostgreSQL, SQLite's hex(X) is rewritten to upper(encode(X, 'hex')) (X a column).
db_sql() {
  local f uri="" sql
  for f in "$1/gmca.json" "$1/km.json"; do
    if [ -z "$uri" ] && [ -f "$f" ]; then uri=$(jq -r '.database // empty' "$f"); fi
  done
  if [ -n "$uri" ]; then
    sql=$(sed -E "s/(^|[^_a-zA-Z0-9])hex\(([a-z_]+)\)/\1upper(encode(\2, 'hex'))/g" <<<"$2")
    pg_psql "$uri" "$sql"
  elif [ -f "$1/gmca.json" ]; then sqlite3 "$1/gmca.db" "$2"
  else sqlite3 "$1/km.db" "$2"; fi
}
# db_hex COLUMN: SQL for the upper-case hex of a blob column in the backend of db_sql.
db_hex() { if [ -n "${GMCA_TEST_PG:-}" ]; then echo "upper(encode($1, 'hex'))"; else echo "hex($1)"; fi; }
# db_blob HEX: an SQL literal of the bytes HEX in the backend of db_sql.
db_blob() { if [ -n "${GMCA_TEST_PG:-}" ]; then echo "decode('$1', 'hex')"; else echo "X'$1'"; fi; }
# init_ca DIR [init options...]: the key ceremony; shares go to DIR.shares/.
init_ca() {
  local d=$1; shift
  make_pins
  mkdir -p "$d.shares"
  mapfile -t cargs < <(custodian_args)
  mapfile -t dbargs < <(db_opt)
  "$GMCA" --dir "$d" init "${cargs[@]}" --shares-out "$d.shares" "${dbargs[@]}" "$@"
}
# activate DIR [i j k]: start the CA engine with custodians i j k (default 1 2 3),
# allowing CLI issuance for this run (--direct-issue): most tests issue that way.
activate() {
  local d=$1; shift
  local idx=("$@") a=() i
  [ ${#idx[@]} -gt 0 ] || idx=(1 2 3)
  for i in "${idx[@]}"; do a+=(--share "$d.shares/share-$i.json" --pin-file "$T/pin$i"); done
  "$GMCA" --dir "$d" activate --direct-issue "${a[@]}"
}
# new_ca DIR: a fresh CA, activated.
new_ca() {
  init_ca "$1" --root-dn "C=CN, O=测试电子政务认证中心, CN=测试 SM2 根 CA" \
    --sub-dn "C=CN, ST=北京市, O=测试电子政务认证中心, OU=运营, CN=测试 SM2 运营 CA" >/dev/null &&
    activate "$1" >/dev/null
}

# sm2_csr NAME SUBJ [ID]: key $T/NAME.key and CSR $T/NAME.csr made by openssl.
sm2_csr() {
  local id=${3:-1234567812345678}
  openssl genpkey -algorithm SM2 -out "$T/$1.key" 2>/dev/null
  openssl req -new -key "$T/$1.key" -sm3 -sigopt "distid:$id" -utf8 -subj "$2" \
    -out "$T/$1.csr"
}

# count of rows: certificates and audit records, read through the command.
cert_count() { "$GMCA" --dir "$1" cert list --json | grep -c '"serial"' || true; }
audit_count() { "$GMCA" --dir "$1" audit list --json | grep -c '"seq"' || true; }
# Audit records that are not key activations, and failures.
audit_work_count() { "$GMCA" --dir "$1" audit list --json | grep '"event"' | grep -vc '"key.activate"' || true; }
audit_failures() { "$GMCA" --dir "$1" audit list --json | grep -c '"outcome": "failure"' || true; }
audit_last_outcome() {
  "$GMCA" --dir "$1" audit list --json | grep '"outcome"' | tail -n 1 | sed 's/.*: "\(.*\)".*/\1/'
}

# ---- the RA front (gmca serve) ----
# custodians3 DIR: custodians 1, 2 and 3 of DIR as --share/--pin-file pairs, in array CUST.
custodians3() {
  CUST=(--share "$1.shares/share-1.json" --pin-file "$T/pin1" --share "$1.shares/share-2.json"
    --pin-file "$T/pin2" --share "$1.shares/share-3.json" --pin-file "$T/pin3")
}
# ra_cert DIR: RA ra1's communication key and certificate ($T/ra.key, $T/ra.pem); needs CUST.
ra_cert() {
  sm2_csr ra "/C=CN/O=测试电子政务认证中心/OU=注册中心/CN=RA 系统" &&
    "$GMCA" --dir "$1" ra cert issue --ra ra1 --csr "$T/ra.csr" --out "$T/ra.pem" "${CUST[@]}"
}
# add_operator DIR NAME ROLE: an operator made by the custodians ($T/NAME.key, $T/NAME.pem).
add_operator() {
  sm2_csr "$2" "/C=CN/O=测试电子政务认证中心/CN=$2" &&
    "$GMCA" --dir "$1" operator add --name "$2" --role "$3" --csr "$T/$2.csr" --out "$T/$2.pem" \
      "${CUST[@]}" >/dev/null
}
# serve_front DIR ARGS...: `gmca --dir DIR ARGS...` (a serve command line) in the
# background; waits for its ready line; sets SERVE_PID and URL. Fails if it did not
# come up. Output in $T/serve.out and $T/serve.err.
serve_front() {
  local d=$1; shift
  "$GMCA" --dir "$d" "$@" >"$T/serve.out" 2>"$T/serve.err" &
  SERVE_PID=$!
  for _ in $(seq 300); do # up to 30 s: an engine start on a loaded 2-core machine
    grep -q '^gmca: serving on ' "$T/serve.out" 2>/dev/null && break
    kill -0 "$SERVE_PID" 2>/dev/null || break
    sleep 0.1
  done
  URL=$(sed -n 's/^gmca: serving on //p' "$T/serve.out")
  [ -n "$URL" ]
}
# start_front DIR [serve options...]: gmca serve as RA ra1 on a free loopback port, the
# custodians in CUST starting the CA engine if it is not running (URL empty if it did
# not come up).
start_front() {
  local d=$1; shift
  serve_front "$d" serve --listen 127.0.0.1:0 --ra ra1 --ra-key "$T/ra.key" --ra-cert "$T/ra.pem" \
    "${CUST[@]}" "$@" || true
}
# api OPERATOR METHOD TARGET [options]: a request signed by OPERATOR ($T/OPERATOR.key/.pem).
api() { local who=$1; shift; "$GMCA" api --url "$URL" --key "$T/$who.key" --cert "$T/$who.pem" "$@"; }
