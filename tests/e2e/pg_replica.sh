#!/usr/bin/env bash
# A stand-alone OCSP and CRL responder on a read replica (issue 9): a
# PostgreSQL primary and a hot standby of it made with `pg_basebackup -R`,
# each on a private socket of its own; a CA on the primary; a responder
# (`gmca serve --responder`) run from a directory holding nothing but a copy
# of gmca.json, with --db naming the STANDBY and only the delegated OCSP
# key. It says good, then revoked once the revocation made on the primary
# has been replayed; serves the CRL generated on the primary; has no API;
# reports the replica's lag on /healthz; and never writes: the standby logs
# every data-changing statement (log_statement=mod) and would log any write
# refused as read-only, and its log shows neither. Skips (exit 0) without
# PostgreSQL's server binaries.
. "$(dirname "$0")/common.bash"
source "$GMCA_SRC/tests/pg.bash"
unset http_proxy HTTP_PROXY
if ! pg_bindir >/dev/null 2>&1; then
  echo "SKIP: no PostgreSQL server binaries (install postgresql)"
  exit 0
fi
BIN=$(pg_bindir)
# Our own primary always: a base backup of the shared test cluster would copy every database.
export GMCA_TEST_PG=$T/pg.state
RSTATE=$T/replica.state
RPORT=5433
RPID=""
cleanup() {
  [ -z "$RPID" ] || { kill -TERM "$RPID" 2>/dev/null; wait "$RPID" 2>/dev/null; } || true
  stop_engines
  pg_stop "$RSTATE" 2>/dev/null || true
  pg_stop "$GMCA_TEST_PG" 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT
pg_start "$GMCA_TEST_PG" || { echo "FAIL: cannot start PostgreSQL" >&2; exit 1; }
PDIR=$(cat "$GMCA_TEST_PG")

# ---- the hot standby: a base backup of the primary, streaming from it ----
RDIR=$(mktemp -d /tmp/gmca-pg.XXXXXX)
echo "$RDIR" >"$RSTATE"
mkdir -p "$RDIR/sock"
[ "$(id -u)" -ne 0 ] || chown -R postgres: "$RDIR"
chmod 700 "$RDIR"
[ "$(id -u)" -ne 0 ] || chmod 711 "$RDIR" # root's clients reach sock/ through it
expect_exit 0 "pg_basebackup -R of the primary" -- as_server "$BIN/pg_basebackup" -h "$PDIR/sock" \
  -p "$PG_PORT" -D "$RDIR/data" -R -X stream -c fast
expect_exit 0 "the standby starts" -- as_server "$BIN/pg_ctl" -D "$RDIR/data" -l "$RDIR/server.log" \
  -w -t 60 start -o "-k $RDIR/sock -p $RPORT -c listen_addresses='' -c fsync=off \
  -c max_connections=300 -c hot_standby=on -c log_statement=mod -c log_min_error_statement=error" ||
  { cat "$RDIR/server.log" >&2; exit 1; }

D=$T/ca
g() { "$GMCA" --dir "$D" "$@"; }
expect_exit 0 "a CA on the primary" -- init_ca "$D" --root-dn "C=CN, O=测试电子政务认证中心, CN=测试根 CA" \
  --sub-dn "C=CN, O=测试电子政务认证中心, CN=测试运营 CA"
PRIMARY=$(jq -r .database "$D/gmca.json")
DBNAME=$(sed -E 's#^postgresql:///([^?]*)\?.*#\1#' <<<"$PRIMARY")
REPLICA="postgresql:///$DBNAME?host=$RDIR/sock&port=$RPORT"
check "the standby is in recovery" test "$(pg_psql "$REPLICA" "SELECT pg_is_in_recovery()")" = t
custodians3 "$D"
expect_exit 0 "activate" -- g activate "${CUST[@]}"
g ca export --ca sub >"$T/sub.pem"
issue() {
  sm2_csr "$1" "/C=CN/O=测试电子政务认证中心/CN=$1" &&
    g cert issue --profile "$2" --csr "$T/$1.csr" --out "$T/$1.pem" "${CUST[@]}" "${@:3}" >"$T/$1.serial"
}
echo '{"identity_card_number": "11010519491231002X"}' >"$T/id.json"
expect_exit 0 "the delegated OCSP responder certificate" -- issue responder ocsp
expect_exit 0 "a subscriber certificate" -- issue alice personal-sign --info "$T/id.json"
SERIAL=$(tr -d '\n' <"$T/alice.serial")

# ---- the responder's host: a copy of gmca.json and the delegated key, nothing else ----
R=$T/remote
mkdir -p "$R" && cp "$D/gmca.json" "$R/"
RESP=(--dir "$R" serve --responder --db "$REPLICA" --listen 127.0.0.1:0 --threads 2
  --ocsp-cert "$T/responder.pem" --ocsp-key "$T/responder.key")
expect_exit 2 "responder: --ocsp-auto is a usage error" -- "$GMCA" "${RESP[@]}" --ocsp-auto sub \
  --ocsp-pass-file "$T/pin1"
expect_err "no --ocsp-auto"
expect_exit 2 "responder: --ocsp-ca-signed too" -- "$GMCA" "${RESP[@]}" --ocsp-ca-signed sub
expect_exit 2 "responder: no RA identity" -- "$GMCA" "${RESP[@]}" --ra ra1
expect_exit 2 "--db without --responder" -- "$GMCA" --dir "$R" serve --db "$REPLICA"
expect_exit 3 "responder: a password in --db is refused" -- "$GMCA" --dir "$R" serve --responder \
  --db "postgresql://u:secret@/x"

"$GMCA" "${RESP[@]}" >"$T/resp.out" 2>"$T/resp.err" &
RPID=$!
for _ in $(seq 150); do
  grep -q '^gmca: serving on ' "$T/resp.out" 2>/dev/null && break
  kill -0 "$RPID" 2>/dev/null || break
  sleep 0.1
done
URL=$(sed -n 's/^gmca: serving on //p' "$T/resp.out")
check "the responder serves" test -n "$URL"
check "it started no CA engine and wrote nothing beside its pid file" \
  test "$(cd "$R" && find . -mindepth 1 | sort | tr '\n' ' ')" = "./gmca.json ./run ./run/responder.pid "

# status: "good", "revoked"... from openssl ocsp against the responder.
status() {
  openssl ocsp -issuer "$T/sub.pem" -cert "$T/alice.pem" -url "$URL/ocsp" -no_nonce -noverify \
    -resp_text 2>/dev/null | sed -n 's/^ *Cert Status: //p' | head -1 || true
}
check "openssl ocsp: good" test "$(status)" = good
# wait_for WHAT CMD...: poll CMD (up to 10 s) until it succeeds.
wait_for() {
  local what=$1; shift
  for _ in $(seq 100); do "$@" && { ok; return; }; sleep 0.1; done
  bad "$what"
}
expect_exit 0 "revoke on the primary" -- g cert revoke --serial "$SERIAL" --reason keyCompromise
is_revoked() { [ "$(status)" = revoked ]; }
wait_for "openssl ocsp: revoked once the standby has replayed it" is_revoked
openssl ocsp -issuer "$T/sub.pem" -cert "$T/alice.pem" -url "$URL/ocsp" -no_nonce -noverify \
  -resp_text >"$T/text" 2>&1
check "with its reason" grep -q 'Revocation Reason: keyCompromise' "$T/text"
openssl ocsp -issuer "$T/sub.pem" -cert "$T/alice.pem" -no_nonce -reqout "$T/req.der" >/dev/null 2>&1
curl -s -o "$T/resp.der" -H 'Content-Type: application/ocsp-request' --data-binary "@$T/req.der" "$URL/ocsp"
if command -v node >/dev/null; then
  check "signed by the delegated key (independent SM2 verifier)" \
    node "$GMCA_SRC/tests/interop/sm2verify.mjs" ocsp "$T/resp.der" "$T/responder.pem"
fi

expect_exit 0 "a CRL on the primary" -- g crl generate --ca sub
crl_lists() {
  curl -sf -o "$T/sub.crl" "$URL/crl/sub.crl" &&
    openssl crl -inform DER -in "$T/sub.crl" -noout -text 2>/dev/null | grep -qi "Serial Number: *$SERIAL"
}
wait_for "the responder's CRL lists the serial" crl_lists
check "the CA certificate" bash -c "curl -sf '$URL/ca/sub.crt' | openssl x509 -inform DER -noout"

code=$(curl -s -o "$T/api.json" -w '%{http_code}' "$URL/api/v1/applications")
check "/api/v1: 404" test "$code" = 404
check "with the usual JSON error" test "$(jq -r .error "$T/api.json")" = not_found
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST --data x "$URL/tsa")
check "/tsa: 404" test "$code" = 404
curl -s -o "$T/health.json" "$URL/healthz"
check "/healthz: the responder on a standby" \
  test "$(jq -r '[.status, .mode, .standby] | join(" ")' "$T/health.json")" = "ok responder true"
check "with its replay lag" jq -e '(.replay_lag_seconds | type) == "number" and (.replay_caught_up | type) == "boolean"' "$T/health.json" >/dev/null
code=$(curl -s -o "$T/certs.json" -w '%{http_code}' "$URL/certs?cn=alice")
check "/certs finds the certificate" bash -c "test '$code' = 200 && grep -qi '$SERIAL' '$T/certs.json'"
code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/")
check "the page at /" test "$code" = 200

check "the responder is still up" kill -0 "$RPID"
rc=0
kill -TERM "$RPID" && wait "$RPID" || rc=$?
check "and stops cleanly (exit 0)" test "$rc" = 0
RPID=""
check "it removed its pid file" test ! -e "$R/run/responder.pid"
check "the standby logged no data-changing statement" \
  bash -c "! grep -E 'statement: |execute [^:]*: ' '$RDIR/server.log' | grep -Eiq 'insert|update|delete|create|alter|drop|grant'"
check "and refused no write" bash -c "! grep -q 'read-only transaction' '$RDIR/server.log'"
# The two checks above can fail: a write tried on the standby is refused and logged.
expect_exit 1 "a write on the standby is refused" -- pg_psql "$REPLICA" "CREATE TABLE t (a int)"
check "and the standby's log shows it" grep -q 'read-only transaction' "$RDIR/server.log"
check "as a data-changing statement" grep -Eq 'statement: CREATE TABLE' "$RDIR/server.log"
if [ "$FAILED" -gt 0 ]; then cat "$T/resp.err" >&2; tail -20 "$RDIR/server.log" >&2; fi
finish
