#!/usr/bin/env bash
# POST /tsa on the front (issue 8 item 4; RFC 3161 §3.4): gmca serve with a
# TSA certificate of the tsa profile answers an `openssl ts -query` sent by
# curl with a granted TimeStampResp that openssl reads, `gmca app ts verify`
# accepts against the data, the request and the CA, and sm-crypto verifies
# independently (tests/interop/tsa.mjs). Garbage gets a rejection
# TimeStampResp (badDataFormat) with 200; a wrong Content-Type is 415, a 9
# KiB body 413, another method 405, a query string 400; 50 requests at once
# get 50 distinct serial numbers. Serve refuses a certificate that may not
# time-stamp, a key that is not its own, and a bad policy, before it
# listens; without --tsa-cert, /tsa is 404.
. "$(dirname "$0")/common.bash"
D=$T/ca
g() { "$GMCA" --dir "$D" "$@"; }
SERVE_PID=
SERVE_RC=
stop_serve() {
  [ -z "$SERVE_PID" ] && return 0
  kill -TERM "$SERVE_PID" 2>/dev/null
  SERVE_RC=0
  wait "$SERVE_PID" 2>/dev/null || SERVE_RC=$?
  SERVE_PID=
  return 0
}
trap 'stop_serve; stop_engines; rm -rf "$T"' EXIT
J=$GMCA_SRC/tests/interop/tsa.mjs
fails() { ! "$@" >/dev/null 2>&1; }
quiet() { "$@" >/dev/null; }

expect_exit 0 "new CA" -- new_ca "$D"
CUST=(--share "$D.shares/share-1.json" --pin-file "$T/pin1" --share "$D.shares/share-2.json"
  --pin-file "$T/pin2" --share "$D.shares/share-3.json" --pin-file "$T/pin3")
sm2_csr ra "/C=CN/O=测试电子政务认证中心/OU=注册中心/CN=RA 系统"
expect_exit 0 "RA certificate" -- g ra cert issue --ra ra1 --csr "$T/ra.csr" --out "$T/ra.pem" "${CUST[@]}"
sm2_csr tsa "/C=CN/O=测试电子政务认证中心/CN=测试时间戳服务"
expect_exit 0 "TSA certificate" -- g cert issue --profile tsa --csr "$T/tsa.csr" --out "$T/tsa.pem"
sm2_csr dev "/C=CN/O=测试单位/CN=ocsp.example.gov.cn"
expect_exit 0 "an OCSP certificate" -- g cert issue --profile ocsp --csr "$T/dev.csr" --out "$T/ocsp.pem"
g ca export --ca sub >"$T/sub.pem"

SERVE=(serve --listen 127.0.0.1:0 --ra ra1 --ra-key "$T/ra.key" --ra-cert "$T/ra.pem" --threads 8)
TSA=(--tsa-cert "$T/tsa.pem" --tsa-key "$T/tsa.key")

# ---- refusals before listening ----
expect_exit 2 "--tsa-cert without --tsa-key" -- g "${SERVE[@]}" --tsa-cert "$T/tsa.pem"
expect_exit 2 "--tsa-policy without the TSA" -- g "${SERVE[@]}" --tsa-policy 1.2.3
expect_exit 2 "accuracy out of range" -- g "${SERVE[@]}" "${TSA[@]}" --tsa-accuracy-ms 1000
expect_exit 6 "a certificate that may not time-stamp" -- g "${SERVE[@]}" --tsa-cert "$T/ocsp.pem" --tsa-key "$T/dev.key"
expect_err "RFC 3161 §2.3"
expect_exit 7 "a key that is not the TSA certificate's" -- g "${SERVE[@]}" --tsa-cert "$T/tsa.pem" --tsa-key "$T/dev.key"
expect_err "not the key of the TSA certificate"
expect_exit 3 "a policy that is no OID" -- g "${SERVE[@]}" "${TSA[@]}" --tsa-policy not-an-oid
expect_err "is not an OID"
check "nothing left listening" test ! -e "$D/run/serve.pid"

# start_serve [extra args]: background serve, wait for the ready line, set URL.
start_serve() { serve_front "$D" "${SERVE[@]}" "$@"; }
# post FILE [content-type]: POST the file to /tsa; the status on stdout, the body in $T/r.
post() {
  curl -s -o "$T/r" -w '%{http_code}' --data-binary "@$1" \
    -H "Content-Type: ${2-application/timestamp-query}" "$URL/tsa"
}

printf 'contract signed on 2026-11-24\n' >"$T/doc"
openssl ts -query -data "$T/doc" -sm3 -cert -out "$T/q.tsq" 2>/dev/null

# ---- no TSA configured: /tsa is not there ----
check "serve without a TSA" start_serve
check "/tsa without a TSA is 404" test "$(post "$T/q.tsq")" = 404
stop_serve

# ---- the TSA ----
check "serve with the TSA" start_serve "${TSA[@]}" --tsa-accuracy-ms 250
check "a granted response" test "$(post "$T/q.tsq")" = 200
check "content type timestamp-reply" test "$(curl -s -o /dev/null -w '%{content_type}' --data-binary "@$T/q.tsq" \
  -H 'Content-Type: application/timestamp-query' "$URL/tsa")" = application/timestamp-reply
cp "$T/r" "$T/r.tsr"
openssl ts -reply -in "$T/r.tsr" -text >"$T/r.txt" 2>&1
check "openssl: granted" grep -q "Status: Granted" "$T/r.txt"
check "openssl: default policy" grep -q "Policy OID: 1.2.156.10260.4.1.100.1" "$T/r.txt"
check "openssl: SM3 imprint" grep -qi "Hash Algorithm: sm3" "$T/r.txt"
check "openssl: accuracy 250 ms" grep -q "Accuracy: .*0xFA millis" "$T/r.txt"
check "openssl: nonce echoed" test "$(grep '^Nonce:' "$T/r.txt" | awk '{print $2}')" = \
  "$(openssl ts -query -in "$T/q.tsq" -text 2>/dev/null | grep '^Nonce:' | awk '{print $2}')"
expect_exit 0 "gmca verifies it against the data, the request and the CA" -- \
  "$GMCA" app ts verify --in "$T/r.tsr" --data "$T/doc" --request "$T/q.tsq" --ca "$T/sub.pem"
check "genTime is now" test $(($(date +%s) - $(jq -r .genTimeUnix "$T/out"))) -lt 60
check "accuracyMs 250" test "$(jq -r .accuracyMs "$T/out")" = 250
check "sm-crypto verifies the token" quiet node "$J" "$T/r.tsr" "$T/tsa.pem" "$T/doc"
check "sm-crypto: another key does not" fails node "$J" "$T/r.tsr" "$T/ocsp.pem" "$T/doc"
printf 'another document\n' >"$T/other"
expect_exit 3 "not for other data" -- "$GMCA" app ts verify --in "$T/r.tsr" --data "$T/other" --ca "$T/sub.pem"
# A gmca query with a digest and parameters on the Content-Type.
expect_exit 0 "gmca query" -- "$GMCA" app ts query --in "$T/doc" --sha256 --out "$T/g.tsq"
check "SHA-256 request granted" test "$(post "$T/g.tsq" 'Application/Timestamp-Query; foo=bar')" = 200
expect_exit 0 "verify it with the TSA certificate" -- \
  "$GMCA" app ts verify --in "$T/r" --data "$T/doc" --request "$T/g.tsq" --cert "$T/tsa.pem"

# ---- what is not granted: a TimeStampResp says why, with 200 ----
printf 'not a request' >"$T/junk"
check "garbage: 200" test "$(post "$T/junk")" = 200
openssl ts -reply -in "$T/r" -text >"$T/rj.txt" 2>&1
check "garbage: rejection" grep -q "Status: Rejected" "$T/rj.txt"
check "garbage: badDataFormat" grep -qi "the data submitted has the wrong format" "$T/rj.txt"
: >"$T/empty"
check "empty body: 200" test "$(post "$T/empty")" = 200
check "empty body: rejection" sh -c "openssl ts -reply -in '$T/r' -text 2>&1 | grep -q 'Status: Rejected'"
openssl ts -query -data "$T/doc" -sha1 -out "$T/q1.tsq" 2>/dev/null
check "SHA-1: 200" test "$(post "$T/q1.tsq")" = 200
check "SHA-1: badAlg" sh -c "openssl ts -reply -in '$T/r' -text 2>&1 | grep -qi 'unrecognized or unsupported algorithm'"
openssl ts -query -data "$T/doc" -sm3 -tspolicy 1.2.3.4 -out "$T/qp.tsq" 2>/dev/null
check "another policy: 200" test "$(post "$T/qp.tsq")" = 200
check "another policy: unacceptedPolicy" sh -c "openssl ts -reply -in '$T/r' -text 2>&1 | grep -qi 'requested TSA policy is not supported'"
expect_exit 6 "a rejection does not verify" -- "$GMCA" app ts verify --in "$T/r" --data "$T/doc" --cert "$T/tsa.pem"

# ---- what is not a time-stamp request: HTTP errors ----
check "wrong Content-Type: 415" test "$(post "$T/q.tsq" application/json)" = 415
check "415 names the type" grep -q "application/timestamp-query" "$T/r"
check "no Content-Type: 415" test "$(post "$T/q.tsq" '')" = 415
check "a longer type name: 415" test "$(post "$T/q.tsq" application/timestamp-query-x)" = 415
check "two Content-Types: 415" test "$(curl -s -o /dev/null -w '%{http_code}' --data-binary "@$T/q.tsq" \
  -H 'Content-Type: application/timestamp-query' -H 'Content-Type: application/timestamp-query' "$URL/tsa")" = 415
head -c 9216 /dev/urandom >"$T/big"
check "9 KiB: 413" test "$(post "$T/big")" = 413
check "413 says the cap" grep -q "8192" "$T/r"
head -c 8192 /dev/urandom >"$T/cap"
check "8 KiB exactly: read, and rejected as a TimeStampResp" test "$(post "$T/cap")" = 200
check "a chunked 9 KiB body is cut off" test "$(curl -s -o /dev/null -w '%{http_code}' --data-binary "@$T/big" \
  -H 'Transfer-Encoding: chunked' -H 'Content-Type: application/timestamp-query' "$URL/tsa")" != 200
check "GET: 405" test "$(curl -s -o /dev/null -w '%{http_code}' "$URL/tsa")" = 405
check "405 allows POST" sh -c "curl -s -D - -o /dev/null '$URL/tsa' | grep -qi '^Allow: POST'"
check "a query string: 400" test "$(curl -s -o /dev/null -w '%{http_code}' --data-binary "@$T/q.tsq" \
  -H 'Content-Type: application/timestamp-query' "$URL/tsa?x=1")" = 400
check "/tsa/: 404" test "$(curl -s -o /dev/null -w '%{http_code}' --data-binary "@$T/q.tsq" \
  -H 'Content-Type: application/timestamp-query' "$URL/tsa/")" = 404
check "the RA API still answers" test "$(curl -s -o /dev/null -w '%{http_code}' "$URL/healthz")" = 200

# ---- 50 at once: 50 granted tokens, 50 serial numbers ----
mkdir -p "$T/par"
for i in $(seq 50); do
  (openssl ts -query -data "$T/doc" -sm3 -cert -out "$T/par/$i.tsq" 2>/dev/null &&
    curl -s -o "$T/par/$i.tsr" --data-binary "@$T/par/$i.tsq" \
      -H 'Content-Type: application/timestamp-query' "$URL/tsa") &
done
wait_par() { local p; for p in $(jobs -p); do [ "$p" = "$SERVE_PID" ] || wait "$p"; done; }
wait_par
for i in $(seq 50); do
  openssl ts -reply -in "$T/par/$i.tsr" -text 2>/dev/null | grep '^Serial number:' | awk '{print $3}'
done >"$T/serials"
check "50 granted" test "$(grep -c . "$T/serials")" = 50
check "50 distinct serials" test "$(sort -u "$T/serials" | grep -c .)" = 50
check "serials of 64 bits and more" test "$(awk '{ if (length($1) < 2 + 16) bad++ } END { print bad + 0 }' "$T/serials")" = 0
ok_all=0
for i in 1 17 50; do
  "$GMCA" app ts verify --in "$T/par/$i.tsr" --data "$T/doc" --request "$T/par/$i.tsq" --ca "$T/sub.pem" \
    >/dev/null 2>&1 || ok_all=1
done
check "parallel tokens verify with their requests" test "$ok_all" = 0
check "serve still runs" kill -0 "$SERVE_PID"
stop_serve
check "serve exits 0 on SIGTERM" test "$SERVE_RC" = 0
check "and removes its pid file" test ! -e "$D/run/serve.pid"

# ---- another policy, set at start ----
check "serve with a policy" start_serve "${TSA[@]}" --tsa-policy 1.2.156.10260.4.1.100.7
check "granted" test "$(post "$T/q.tsq")" = 200
check "the policy is in the token" sh -c "openssl ts -reply -in '$T/r' -text 2>&1 | grep -q 'Policy OID: 1.2.156.10260.4.1.100.7'"
stop_serve

finish
