#!/usr/bin/env bash
# Load test (issue 9 item 5), loopback only: bench_load (bench/load.c) drives
# LOAD_CLIENTS concurrent API clients (100) for LOAD_SECONDS (60) against a
# real front and CA engine — apply, vet, approve (issued), every second
# certificate revoked and checked in OCSP — and reports throughput, latency
# percentiles and errors. Then the records are checked as after the crash
# test: every certificate a client was told of is in the store once and
# verifies, every acknowledged revocation is on the next CRL, one
# application per certificate, one cert.issue event per certificate, the
# audit chain verifies. Exits non-zero on any lost or inconsistent record.
# Usage: bench/load.sh [BUILD_DIR]   (make bench-load; tests/e2e/load_short.sh
# runs it short in make test)
set -euo pipefail
GMCA_SRC=${GMCA_SRC:-$(cd "$(dirname "$0")/.." && pwd)}
BUILD=${1:-${GMCA_BUILD:-$GMCA_SRC/build}}
GMCA=${GMCA:-$BUILD/gmca}
export GMCA GMCA_SRC
CLIENTS=${LOAD_CLIENTS:-100}
SECS=${LOAD_SECONDS:-60}
. "$GMCA_SRC/tests/e2e/common.bash"
D=$T/ca
g() { "$GMCA" --dir "$D" "$@"; }

expect_exit 0 "new CA" -- new_ca "$D"
g ca export --ca sub >"$T/sub.pem"
custodians3 "$D"
expect_exit 0 "RA certificate" -- ra_cert "$D"
expect_exit 0 "business operator A" -- add_operator "$D" opA business_operator
expect_exit 0 "business admin B" -- add_operator "$D" adminB business_admin
expect_exit 0 "business admin C" -- add_operator "$D" adminC business_admin
sm2_csr responder "/C=CN/O=测试电子政务认证中心/CN=OCSP 响应者"
expect_exit 0 "OCSP responder certificate" -- g cert issue --profile ocsp --csr "$T/responder.csr" \
  --out "$T/responder.pem"
expect_exit 0 "the engine is started by the front" -- g deactivate
# Enough worker threads that the clients are not all queued behind four.
start_front "$D" --ocsp-cert "$T/responder.pem" --ocsp-key "$T/responder.key" --threads 32
check "the front is up" test -n "$URL"
expect_exit 0 "an applicant" -- api opA POST /api/v1/applicants \
  --data '{"kind":"individual","name":"张三","id_type":"resident_id","id_number":"11010519491231002X"}'
jq -r .id "$T/out" >"$T/applicant"

echo "== $CLIENTS clients for $SECS s against $URL"
expect_exit 0 "the load run: no inconsistent answer" -- "$BUILD/bench_load" "$T" "$URL" "$CLIENTS" "$SECS"
cat "$T/out"
grep -v '^$' "$T/err" | head -n 5 >&2 || true
told=$(wc -l <"$T/told")
check "certificates were issued under load" test "$told" -gt 0
check "and revoked" test "$(wc -l <"$T/revoked")" -gt 0

# ---- the records after the run ----
stop_serve
wait "$SERVE_PID" 2>/dev/null || true
SERVE_PID=
activate "$D" >/dev/null
expect_exit 0 "a CRL" -- g crl generate
g cert list --json >"$T/certs.json"
db() { db_sql "$D" "$1"; }
check "no serial twice in the store" test "$(jq '[.[].serial] | unique | length' "$T/certs.json")" = \
  "$(jq length "$T/certs.json")"
check "no serial told twice" test "$(sort -u "$T/told" | wc -l)" = "$told"
jq -r '.[].serial' "$T/certs.json" | sort >"$T/store_serials"
check "every certificate told is in the store" test -z "$(sort "$T/told" | comm -23 - "$T/store_serials")"
bad_sig=0
while read -r s; do
  g cert export --serial "$s" >"$T/c.pem" 2>"$T/c.err" &&
    openssl verify -vfyopt distid:1234567812345678 -partial_chain -CAfile "$T/sub.pem" "$T/c.pem" >>"$T/c.err" 2>&1 || {
    [ "$bad_sig" -gt 0 ] || echo "$s: $(head -c 300 "$T/c.err")" >&2
    bad_sig=$((bad_sig + 1))
  }
done <"$T/told"
check "every certificate told verifies ($bad_sig do not)" test "$bad_sig" = 0
db "SELECT issued_serial FROM applications WHERE issued_serial IS NOT NULL" | sort >"$T/app_serials"
check "one application per issued certificate" test -z "$(uniq -d "$T/app_serials")"
check "every personal-sign certificate came from an application" test \
  "$(jq '[.[] | select(.profile == "personal-sign")] | length' "$T/certs.json")" = "$(wc -l <"$T/app_serials")"
check "one cert.issue event per certificate" test "$(db "SELECT count(*) FROM certificates c WHERE \
  (SELECT count(*) FROM events e WHERE e.kind = 'cert.issue' AND e.serial = c.serial) <> 1")" = 0
openssl crl -inform DER -in "$D/crl/sub.crl" -noout -text >"$T/crl.txt"
nocrl=0
while read -r s; do grep -q "Serial Number: $s\$" "$T/crl.txt" || nocrl=$((nocrl + 1)); done <"$T/revoked"
check "every acknowledged revocation is on the CRL ($nocrl missing)" test "$nocrl" = 0
expect_exit 0 "the audit chain verifies" -- g audit verify
finish
