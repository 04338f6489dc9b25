#!/usr/bin/env bash
# RFC 3161 time-stamping with SM2 (issue 8 item 4): a gmca CA issues a TSA
# certificate under the tsa profile (extKeyUsage timeStamping, critical)
# from an openssl SM2 CSR; requests made by `openssl ts -query` (SM3 and
# SHA-256) and by `gmca app ts query` are answered by `gmca app ts reply`;
# `openssl ts -reply -text` reads our responses; `gmca app ts verify` accepts
# them and refuses other data, another nonce, another TSA, a tampered token
# and untrusted tokens; sm-crypto checks the SignerInfo signature with the
# TSA certificate's key (tests/interop/tsa.mjs).
source "$(dirname "$0")/common.bash"

CA="$T/ca"
new_ca "$CA"
g() { "$GMCA" --dir "$CA" "$@"; }
fails() { ! "$@" >/dev/null 2>&1; }
quiet() { "$@" >/dev/null; }
J=$GMCA_SRC/tests/interop/tsa.mjs

sm2_csr tsa "/C=CN/O=测试电子政务认证中心/CN=测试时间戳服务"
expect_exit 0 "issue the TSA certificate" -- g cert issue --profile tsa --csr "$T/tsa.csr" --out "$T/tsa.pem"
g ca export --ca sub >"$T/sub.pem"
openssl x509 -in "$T/tsa.pem" -noout -text >"$T/tsa.txt"
check "EKU critical" grep -q "X509v3 Extended Key Usage: critical" "$T/tsa.txt"
check "EKU timeStamping" grep -q "Time Stamping" "$T/tsa.txt"
# A certificate of another profile is no TSA.
sm2_csr dev "/C=CN/O=测试单位/CN=device.example.gov.cn"
g cert issue --profile ocsp --csr "$T/dev.csr" --out "$T/ocsp.pem" >/dev/null

printf 'contract signed on 2026-11-24\n' >"$T/doc"
printf 'another document\n' >"$T/other"

# --- openssl ts -query (SM3), answered by gmca, read back by openssl ---
openssl ts -query -data "$T/doc" -sm3 -cert -out "$T/q.tsq" 2>/dev/null
expect_exit 0 "reply to an openssl SM3 query" -- \
  "$GMCA" app ts reply --cert "$T/tsa.pem" --key "$T/tsa.key" --in "$T/q.tsq" --out "$T/r.tsr" \
  --policy 1.2.156.10260.4.1.100.1 --accuracy-ms 100 --tsa-name
openssl ts -reply -in "$T/r.tsr" -text >"$T/r.txt" 2>&1
check "openssl: granted" grep -q "Status: Granted" "$T/r.txt"
check "openssl: policy" grep -q "Policy OID: 1.2.156.10260.4.1.100.1" "$T/r.txt"
check "openssl: SM3 imprint" grep -qi "Hash Algorithm: sm3" "$T/r.txt"
check "openssl: nonce echoed" test "$(grep '^Nonce:' "$T/r.txt" | awk '{print $2}')" = \
  "$(openssl ts -query -in "$T/q.tsq" -text 2>/dev/null | grep '^Nonce:' | awk '{print $2}')"
check "openssl: accuracy" grep -q "Accuracy: .*0x64 millis" "$T/r.txt"
check "openssl: TSA name" grep -q "TSA: DirName:.*CN" "$T/r.txt"
check "openssl: ordering no" grep -q "Ordering: no" "$T/r.txt"

expect_exit 0 "verify with the request and the TSA certificate" -- \
  "$GMCA" app ts verify --in "$T/r.tsr" --data "$T/doc" --request "$T/q.tsq" --cert "$T/tsa.pem"
j() { node -e 'const o=JSON.parse(require("fs").readFileSync(process.argv[1]));console.log(o[process.argv[2]])' "$T/out" "$1"; }
check "JSON policy" test "$(j policy)" = 1.2.156.10260.4.1.100.1
check "JSON hash" test "$(j hash)" = sm3
check "JSON tsa" grep -q "测试时间戳服务" "$T/out"
check "JSON serial = openssl's" test "$(j serial)" = "$(grep '^Serial number:' "$T/r.txt" | awk '{print $3}' | sed 's/^0x//' | tr a-f A-F)"
check "JSON genTime is recent" test $(( $(date +%s) - $(j genTimeUnix) )) -lt 600
expect_exit 0 "verify through the CA (certificate from the token)" -- \
  "$GMCA" app ts verify --in "$T/r.tsr" --digest-hex "$(openssl dgst -sm3 -r "$T/doc" | cut -d' ' -f1)" \
  --ca "$T/sub.pem"
check "sm-crypto verifies the token" quiet node "$J" "$T/r.tsr" "$T/tsa.pem" "$T/doc"
check "sm-crypto: another key does not verify" fails node "$J" "$T/r.tsr" "$T/ocsp.pem" "$T/doc"

# --- refusals ---
expect_exit 3 "other data" -- "$GMCA" app ts verify --in "$T/r.tsr" --data "$T/other" --cert "$T/tsa.pem"
expect_err "messageImprint is not the sm3 of the data"
openssl ts -query -data "$T/doc" -sm3 -cert -out "$T/q2.tsq" 2>/dev/null
expect_exit 3 "another request's nonce" -- \
  "$GMCA" app ts verify --in "$T/r.tsr" --data "$T/doc" --request "$T/q2.tsq" --cert "$T/tsa.pem"
expect_err "nonce does not match"
expect_exit 3 "another TSA certificate" -- "$GMCA" app ts verify --in "$T/r.tsr" --data "$T/doc" --cert "$T/ocsp.pem"
expect_exit 2 "no trust given" -- "$GMCA" app ts verify --in "$T/r.tsr" --data "$T/doc"
g ca export --ca root >"$T/root.pem"
expect_exit 3 "not issued by the root directly" -- "$GMCA" app ts verify --in "$T/r.tsr" --data "$T/doc" --ca "$T/root.pem"
# One byte of the token's signature changed.
python3 - "$T/r.tsr" "$T/bad.tsr" <<'PY'
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
b[-3] ^= 0x01
open(sys.argv[2], 'wb').write(b)
PY
expect_exit 3 "tampered token" -- "$GMCA" app ts verify --in "$T/bad.tsr" --data "$T/doc" --cert "$T/tsa.pem"
check "sm-crypto: tampered token refused" fails node "$J" "$T/bad.tsr" "$T/tsa.pem" "$T/doc"
# The ocsp certificate (EKU OCSPSigning) cannot act as TSA.
expect_exit 6 "reply with a non-TSA certificate" -- \
  "$GMCA" app ts reply --cert "$T/ocsp.pem" --key "$T/dev.key" --in "$T/q.tsq" --out "$T/x.tsr"
expect_err "RFC 3161 §2.3"
check "nothing written" test ! -e "$T/x.tsr"

# --- SHA-256 request without certReq: the certificate must be given ---
openssl ts -query -data "$T/doc" -sha256 -out "$T/q256.tsq" 2>/dev/null
expect_exit 0 "reply to a SHA-256 query" -- \
  "$GMCA" app ts reply --cert "$T/tsa.pem" --key "$T/tsa.key" --in "$T/q256.tsq" --out "$T/r256.tsr"
openssl ts -reply -in "$T/r256.tsr" -text >"$T/r256.txt" 2>&1
check "openssl: SHA-256 imprint" grep -qi "Hash Algorithm: sha256" "$T/r256.txt"
expect_exit 3 "no certificate in the token, only the CA" -- \
  "$GMCA" app ts verify --in "$T/r256.tsr" --data "$T/doc" --ca "$T/sub.pem"
expect_err "not in the token"
expect_exit 0 "SHA-256 token with the TSA certificate and CA" -- \
  "$GMCA" app ts verify --in "$T/r256.tsr" --data "$T/doc" --request "$T/q256.tsq" --cert "$T/tsa.pem" --ca "$T/sub.pem"

# --- rejections: unknown hash, extensions-free but other policy ---
openssl ts -query -data "$T/doc" -sha1 -out "$T/q1.tsq" 2>/dev/null
expect_exit 3 "SHA-1 request rejected" -- \
  "$GMCA" app ts reply --cert "$T/tsa.pem" --key "$T/tsa.key" --in "$T/q1.tsq" --out "$T/r1.tsr"
expect_err "badAlg"
openssl ts -reply -in "$T/r1.tsr" -text >"$T/r1.txt" 2>&1
check "openssl: rejection" grep -q "Status: Rejected" "$T/r1.txt"
check "openssl: bad algorithm" grep -qi "unrecognized or unsupported algorithm" "$T/r1.txt"
expect_exit 6 "verify a rejection" -- "$GMCA" app ts verify --in "$T/r1.tsr" --data "$T/doc" --cert "$T/tsa.pem"
openssl ts -query -data "$T/doc" -sm3 -tspolicy 1.2.3.4 -out "$T/qp.tsq" 2>/dev/null
expect_exit 3 "other policy rejected" -- \
  "$GMCA" app ts reply --cert "$T/tsa.pem" --key "$T/tsa.key" --in "$T/qp.tsq" --out "$T/rp.tsr"
expect_err "unacceptedPolicy"
printf 'not a request' >"$T/junk"
expect_exit 3 "junk rejected" -- \
  "$GMCA" app ts reply --cert "$T/tsa.pem" --key "$T/tsa.key" --in "$T/junk" --out "$T/rj.tsr"
expect_err "badDataFormat"

# --- gmca's own query, with a digest, read by openssl ---
expect_exit 0 "gmca query" -- "$GMCA" app ts query --in "$T/doc" --cert-req --out "$T/g.tsq"
openssl ts -query -in "$T/g.tsq" -text >"$T/g.txt" 2>/dev/null
check "openssl reads our query" grep -q "Certificate required: yes" "$T/g.txt"
check "openssl: our imprint is SM3(doc)" test "$(grep -A2 'Message data:' "$T/g.txt" | tail -2 | cut -c12-58 | tr -d ' \n-')" = \
  "$(openssl dgst -sm3 -r "$T/doc" | cut -d' ' -f1)"
expect_exit 0 "reply to gmca's query" -- \
  "$GMCA" app ts reply --cert "$T/tsa.pem" --key "$T/tsa.key" --in "$T/g.tsq" --out "$T/g.tsr"
expect_exit 0 "verify against gmca's query" -- \
  "$GMCA" app ts verify --in "$T/g.tsr" --data "$T/doc" --request "$T/g.tsq" --ca "$T/sub.pem"
expect_exit 2 "query needs --in or --digest-hex" -- "$GMCA" app ts query --out "$T/n.tsq"
expect_exit 2 "bad digest hex" -- "$GMCA" app ts query --digest-hex abc --out "$T/n.tsq"
expect_exit 2 "option of another subcommand" -- "$GMCA" app ts query --in "$T/doc" --key "$T/tsa.key" --out "$T/n.tsq"
expect_exit 0 "help" -- "$GMCA" app ts --help

finish
