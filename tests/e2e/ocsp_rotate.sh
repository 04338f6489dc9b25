#!/usr/bin/env bash
# OCSP responders the front runs itself (issue 5 item 2): --ocsp-auto keeps
# a delegated responder per CA under DIR/ocsp/CA/ (key encrypted, 0600),
# gets it from the CA engine (RA SUBOP ocsp) and rotates it while serving:
# successive answers carry different responder certificates, both verify
# with the independent SM2 verifier and chain to the CA, and no request
# fails during the swap under concurrent load. The engine refuses a third
# unexpired responder certificate (audited). --ocsp-ca-signed answers with
# the CA key through the engine's op 'O': read with openssl ocsp -respin
# -noverify, verified against the CA certificate, no certificate inside.
# A restarted front loads the newest responder from disk.
. "$(dirname "$0")/common.bash"
unset http_proxy HTTP_PROXY
D=$T/ca
g() { "$GMCA" --dir "$D" "$@"; }
SM2VERIFY="$GMCA_SRC/tests/interop/sm2verify.mjs"
LOADPIDS=()
stop_load() { touch "$T/stop"; for p in "${LOADPIDS[@]}"; do wait "$p" 2>/dev/null || true; done; LOADPIDS=(); }
trap 'stop_load; stop_serve; stop_engines; rm -rf "$T"' EXIT

expect_exit 0 "a CA, activated" -- new_ca "$D"
custodians3 "$D"
expect_exit 0 "RA certificate" -- ra_cert "$D"
g ca export --ca root >"$T/root.pem"
g ca export --ca sub >"$T/sub.pem"
echo '{"identity_card_number": "11010519491231002X"}' >"$T/id.json"
issue() {
  sm2_csr "$1" "/C=CN/O=测试电子政务认证中心/CN=$1" &&
    g cert issue --profile personal-sign --csr "$T/$1.csr" --out "$T/$1.pem" --info "$T/id.json" >"$T/$1.serial"
}
expect_exit 0 "leaf alice" -- issue alice
expect_exit 0 "leaf bob" -- issue bob
expect_exit 0 "revoke bob" -- g cert revoke --serial "$(cat "$T/bob.serial")" --reason keyCompromise
printf 'responder-keys-pass-2026\n' >"$T/opass"

SERVE=(serve --listen 127.0.0.1:0 --ra ra1 --ra-key "$T/ra.key" --ra-cert "$T/ra.pem")
expect_exit 2 "--ocsp-auto without a passphrase" -- g "${SERVE[@]}" --ocsp-auto root
expect_exit 2 "--ocsp-cert-seconds without --ocsp-auto" -- g "${SERVE[@]}" --ocsp-cert-seconds 60 --ocsp-ca-signed sub
expect_exit 2 "--ocsp-cert-seconds under 30" -- g "${SERVE[@]}" --ocsp-auto root --ocsp-pass-file "$T/opass" --ocsp-cert-seconds 5
expect_exit 3 "one CA, two kinds of responder" -- g "${SERVE[@]}" --ocsp-auto sub --ocsp-ca-signed sub --ocsp-pass-file "$T/opass"
expect_err "two OCSP responders for one CA"

# Responder certificates of 30 s, replaced 20 s before their end: a rotation
# about 10 s after each issuance (the engine allows one after 7.5 s).
AUTO=(--ocsp-auto root --ocsp-pass-file "$T/opass" --ocsp-cert-seconds 30 --ocsp-ca-signed sub --threads 4)
check "serve with an auto responder for root, CA-signed for sub" serve_front "$D" "${SERVE[@]}" "${AUTO[@]}" --ocsp-rotate-before 20
KEYS=("$D"/ocsp/root/*.key)
check "one responder key on disk" test "${#KEYS[@]}" = 1 -a -f "${KEYS[0]}"
check "the key file is 0600" test "$(stat -c %a "${KEYS[0]}")" = 600
check "the key is encrypted" grep -q 'ENCRYPTED' "${KEYS[0]}"
check "the responder directory is 0700" test "$(stat -c %a "$D/ocsp/root")" = 700

# post REQ OUT: POST a DER request; prints "HTTP-OCSPSTATUS".
post() {
  local code
  code=$(curl -s -o "$2" -w '%{http_code}' -H 'Content-Type: application/ocsp-request' --data-binary "@$1" "$URL/ocsp") || code=000
  printf '%s-%s\n' "$code" "$(python3 -c 'import sys
try:
    b=open(sys.argv[1],"rb").read(); i=2 if b[1]<0x80 else 2+(b[1]&0x7f)
    print(b[i+2] if b[0]==0x30 and b[i]==0x0a and b[i+1]==1 else "x")
except Exception: print("x")' "$2")"
}
# responder_of RESP OUT: the certificate in a response, PEM.
responder_of() { openssl ocsp -respin "$1" -noverify -resp_text 2>/dev/null | sed -n '/BEGIN CERT/,/END CERT/p' >"$2"; }
serial_of() { openssl x509 -in "$1" -noout -serial | cut -d= -f2; }

# With a nonce (openssl's default): signed on demand by the current responder.
openssl ocsp -issuer "$T/root.pem" -cert "$T/sub.pem" -reqout "$T/req.der" >/dev/null 2>&1
check "first answer: successful" test "$(post "$T/req.der" "$T/r1.der")" = 200-0
check "sub CA good" bash -c "openssl ocsp -respin '$T/r1.der' -noverify -resp_text | grep -q 'Cert Status: good'"
responder_of "$T/r1.der" "$T/resp1.pem"
check "a responder certificate inside" test -s "$T/resp1.pem"
check "CN root OCSP Responder" bash -c "openssl x509 -in '$T/resp1.pem' -noout -subject -nameopt utf8 | grep -q 'CN *= *root OCSP Responder'"
check "valid 30 s" test $(( $(date -d "$(openssl x509 -in "$T/resp1.pem" -noout -enddate | cut -d= -f2)" +%s) - $(date -d "$(openssl x509 -in "$T/resp1.pem" -noout -startdate | cut -d= -f2)" +%s) )) = 30
check "response 1 verifies (sm-crypto)" node "$SM2VERIFY" ocsp "$T/r1.der" "$T/resp1.pem"
check "responder 1 chains to root (sm-crypto)" node "$SM2VERIFY" cert "$T/resp1.pem" "$T/root.pem"
S1=$(serial_of "$T/resp1.pem")

# A little concurrent load across the swap: every answer must be successful.
rm -f "$T/stop"
for i in 1 2 3; do
  ( while [ ! -e "$T/stop" ]; do post "$T/req.der" "$T/load$i.der" >>"$T/load$i.log"; done ) &
  LOADPIDS+=($!)
done
S2=
for _ in $(seq 60); do
  sleep 0.5
  [ "$(post "$T/req.der" "$T/r2.der")" = 200-0 ] || continue
  responder_of "$T/r2.der" "$T/resp2.pem"
  s=$(serial_of "$T/resp2.pem" 2>/dev/null || true)
  if [ -n "$s" ] && [ "$s" != "$S1" ]; then S2=$s; break; fi
done
sleep 1
stop_load
check "rotated to a new responder certificate while serving" test -n "$S2"
echo "requests under load: $(cat "$T"/load*.log | wc -l), failed: $(cat "$T"/load*.log | grep -vc '^200-0$' || true)"
check "load: many requests" test "$(cat "$T"/load*.log | wc -l)" -ge 20
check "load: none failed during the swap" test "$(cat "$T"/load*.log | grep -vc '^200-0$' || true)" = 0
check "response 2 verifies (sm-crypto)" node "$SM2VERIFY" ocsp "$T/r2.der" "$T/resp2.pem"
check "not with responder 1" bash -c "! node '$SM2VERIFY' ocsp '$T/r2.der' '$T/resp1.pem' >/dev/null"
check "responder 2 chains to root (sm-crypto)" node "$SM2VERIFY" cert "$T/resp2.pem" "$T/root.pem"
check "two responder keys on disk" test "$(ls "$D"/ocsp/root/*.key | wc -l)" = 2

# The next rotation comes while responder 1 is unexpired: a third is refused and audited.
seen=
for _ in $(seq 40); do
  if g audit list --json | jq -e '[.[] | select(.event=="engine.request" and .outcome=="failure" and ((.detail // "") | tostring | test("unexpired OCSP responder")))] | length > 0' >/dev/null; then
    seen=1; break
  fi
  sleep 0.5
done
check "the engine refused a third unexpired responder (audited)" test -n "$seen"
check "the front logged the refusal" grep -q 'not renewed: engine: .*unexpired OCSP responder' "$T/serve.err"
check "responder issuances audited (cert.issue by the RA)" test "$(g audit list --json | jq '[.[] | select(.event=="cert.issue" and .outcome=="success" and (.actor | startswith("ra:")))] | length')" -ge 2

# ---- CA-signed (sub) ----
openssl ocsp -issuer "$T/sub.pem" -cert "$T/alice.pem" -reqout "$T/reqa.der" >/dev/null 2>&1
check "CA-signed: successful" test "$(post "$T/reqa.der" "$T/ca1.der")" = 200-0
openssl ocsp -respin "$T/ca1.der" -noverify -resp_text >"$T/ca1.txt" 2>&1
check "CA-signed: alice good" grep -q 'Cert Status: good' "$T/ca1.txt"
check "CA-signed: no certificate inside" test "$(grep -c 'BEGIN CERTIFICATE' "$T/ca1.txt" || true)" = 0
KEYID=$(openssl x509 -in "$T/sub.pem" -noout -pubkey | openssl pkey -pubin -outform DER | tail -c 65 | openssl dgst -sha1 -r | cut -c1-40 | tr a-f A-F)
check "CA-signed: responder ID is the CA key's" grep -q "Responder Id: $KEYID" "$T/ca1.txt"
check "CA-signed: verifies with the CA certificate (sm-crypto)" node "$SM2VERIFY" ocsp "$T/ca1.der" "$T/sub.pem"
check "CA-signed: not with the root" bash -c "! node '$SM2VERIFY' ocsp '$T/ca1.der' '$T/root.pem' >/dev/null"
openssl ocsp -sm3 -issuer "$T/sub.pem" -cert "$T/bob.pem" -serial 0x0123456789ABCDEF -no_nonce -reqout "$T/reqb.der" >/dev/null 2>&1
check "CA-signed, SM3, two CertIDs: successful" test "$(post "$T/reqb.der" "$T/ca2.der")" = 200-0
openssl ocsp -respin "$T/ca2.der" -noverify -resp_text >"$T/ca2.txt" 2>&1
check "CA-signed: bob revoked" grep -q 'Cert Status: revoked' "$T/ca2.txt"
check "CA-signed: reason keyCompromise" grep -q 'Revocation Reason: keyCompromise' "$T/ca2.txt"
check "CA-signed: unknown serial unknown" grep -q 'Cert Status: unknown' "$T/ca2.txt"
check "CA-signed: verifies (sm-crypto)" node "$SM2VERIFY" ocsp "$T/ca2.der" "$T/sub.pem"
openssl ocsp -issuer "$T/sub.pem" -cert "$T/alice.pem" -no_nonce -reqout "$T/reqg.der" >/dev/null 2>&1
B64=$(base64 -w0 "$T/reqg.der" | python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.stdin.read().strip(), safe=""))')
curl -s -o "$T/g1.der" "$URL/ocsp/$B64"
sleep 1.1
curl -s -o "$T/g2.der" "$URL/ocsp/$B64"
check "CA-signed: pre-signed (same bytes a second later)" cmp -s "$T/g1.der" "$T/g2.der"
check "CA-signed: pre-signed verifies" node "$SM2VERIFY" ocsp "$T/g2.der" "$T/sub.pem"
check "still running" kill -0 "$SERVE_PID"
stop_serve
wait "$SERVE_PID" 2>/dev/null || true
SERVE_PID=

# ---- a restart loads the newest responder from disk ----
NEWEST=$(for f in "$D"/ocsp/root/*.pem; do echo "$(date -d "$(openssl x509 -in "$f" -noout -startdate | cut -d= -f2)" +%s) $(serial_of "$f")"; done | sort -n | tail -n 1)
NB=${NEWEST%% *}
NSERIAL=${NEWEST#* }
check "restart" serve_front "$D" "${SERVE[@]}" "${AUTO[@]}" --ocsp-rotate-before 1
post "$T/req.der" "$T/r3.der" >/dev/null
responder_of "$T/r3.der" "$T/resp3.pem"
if [ $(( NB + 27 )) -gt "$(date +%s)" ]; then
  check "the newest responder on disk answers after a restart" test "$(serial_of "$T/resp3.pem")" = "$NSERIAL"
fi
check "restarted responder verifies" node "$SM2VERIFY" ocsp "$T/r3.der" "$T/resp3.pem"
stop_serve
wait "$SERVE_PID" 2>/dev/null || true
SERVE_PID=
finish
