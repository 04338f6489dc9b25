#!/usr/bin/env bash
# The OCSP responder of gmca serve (RFC 6960, RFC 5019; issue 5): a
# delegated responder certificate (profile ocsp) issued by the custodians;
# requests made by `openssl ocsp -reqout` with SHA-1 and SM3 CertIDs POSTed
# with curl and read back with `openssl ocsp -respin -noverify`; good, then
# revoked with its reason after `gmca cert revoke`; an unknown serial; the
# GET form with the RFC 5019 cache headers; every signature checked by the
# independent SM2 verifier (sm-crypto) and by `gmca app validate --policy
# ocsp`; a pre-signed answer served again, and "revoked" within 1 s of a
# `gmca cert revoke` from another process; garbage, a foreign issuer, a wrong Content-Type and an oversized
# body get their answers and the front keeps answering.
. "$(dirname "$0")/common.bash"
unset http_proxy HTTP_PROXY
D=$T/ca
g() { "$GMCA" --dir "$D" "$@"; }
SERVE_PID=
stop_serve() { [ -z "$SERVE_PID" ] || kill -TERM "$SERVE_PID" 2>/dev/null || true; }
trap 'stop_serve; stop_engines; rm -rf "$T"' EXIT
SM2VERIFY="$GMCA_SRC/tests/interop/sm2verify.mjs"

# The certificates' AIA (OCSP) and CDP point at the front's port.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
expect_exit 0 "init CA" -- init_ca "$D" --base-url "http://127.0.0.1:$PORT" --root-dn "C=CN, O=测试电子政务认证中心, CN=测试 SM2 根 CA" \
  --sub-dn "C=CN, O=测试电子政务认证中心, OU=运营, CN=测试 SM2 运营 CA"
CUST=(--share "$D.shares/share-1.json" --pin-file "$T/pin1" --share "$D.shares/share-2.json"
  --pin-file "$T/pin2" --share "$D.shares/share-3.json" --pin-file "$T/pin3")
expect_exit 0 "activate (custodians authorise each issuance)" -- g activate "${CUST[@]}"
g ca export --ca root >"$T/root.pem"
g ca export --ca sub >"$T/sub.pem"

echo '{"identity_card_number": "11010519491231002X"}' >"$T/id.json"
# issue NAME PROFILE [options]: $T/NAME.pem from a fresh key, authorised by the custodians.
issue() {
  sm2_csr "$1" "/C=CN/O=测试电子政务认证中心/CN=$1" &&
    g cert issue --profile "$2" --csr "$T/$1.csr" --out "$T/$1.pem" "${CUST[@]}" "${@:3}" >"$T/$1.serial"
}
expect_exit 0 "OCSP responder certificate (profile ocsp)" -- issue responder ocsp
expect_exit 0 "the root's OCSP responder certificate" -- issue rootresp ocsp --ca root
check "responder: EKU OCSPSigning" bash -c "openssl x509 -in '$T/responder.pem' -noout -ext extendedKeyUsage | grep -q 'OCSP Signing'"
check "responder: ocsp-nocheck" bash -c "openssl x509 -in '$T/responder.pem' -noout -text | grep -q 'OCSP No Check'"
expect_exit 0 "leaf alice" -- issue alice personal-sign --info "$T/id.json"
expect_exit 0 "leaf bob" -- issue bob personal-sign --info "$T/id.json"
sm2_csr ra "/C=CN/O=测试电子政务认证中心/OU=注册中心/CN=RA 系统"
expect_exit 0 "RA certificate" -- g ra cert issue --ra ra1 --csr "$T/ra.csr" --out "$T/ra.pem" "${CUST[@]}"

SERVE=(serve --listen "127.0.0.1:$PORT" --ra ra1 --ra-key "$T/ra.key" --ra-cert "$T/ra.pem" --threads 2)
expect_exit 2 "--ocsp-cert without --ocsp-key" -- g "${SERVE[@]}" --ocsp-cert "$T/responder.pem"
expect_exit 7 "a key that is not the responder's" -- g "${SERVE[@]}" --ocsp-cert "$T/responder.pem" --ocsp-key "$T/alice.key"
expect_exit 6 "a leaf certificate cannot answer OCSP" -- g "${SERVE[@]}" --ocsp-cert "$T/alice.pem" --ocsp-key "$T/alice.key"
expect_err "OCSPSigning"

start_serve() { serve_front "$D" "${SERVE[@]}" "$@"; }
expect_exit 3 "two responders for one CA" -- g "${SERVE[@]}" --ocsp-cert "$T/responder.pem" --ocsp-key "$T/responder.key" --ocsp-cert "$T/responder.pem" --ocsp-key "$T/responder.key"
expect_err "two OCSP responders for one CA"
check "serve with the OCSP responders of both CAs" start_serve --ocsp-cert "$T/responder.pem" --ocsp-key "$T/responder.key" \
  --ocsp-cert "$T/rootresp.pem" --ocsp-key "$T/rootresp.key" --ocsp-validity 600

# post REQ OUT: POST a DER request, the HTTP status in $T/code.
post() {
  curl -s -o "$2" -w '%{http_code}' -H 'Content-Type: application/ocsp-request' \
    --data-binary "@$1" "$URL/ocsp" >"$T/code"
}

# ---- SHA-1 CertID (openssl's default), with a nonce ----
openssl ocsp -issuer "$T/sub.pem" -cert "$T/alice.pem" -reqout "$T/req.der" >/dev/null 2>&1
post "$T/req.der" "$T/resp.der"
check "POST: 200" test "$(cat "$T/code")" = 200
check "alice good (SHA-1)" bash -c "openssl ocsp -respin '$T/resp.der' -noverify -resp_text | grep -q 'Cert Status: good'"
check "the nonce is echoed" bash -c "openssl ocsp -respin '$T/resp.der' -noverify -resp_text | grep -q 'OCSP Nonce'"
check "responder ID by key" bash -c "openssl ocsp -respin '$T/resp.der' -noverify -resp_text | grep -q 'Responder Id: [0-9A-F]\{40\}'"
check "independent SM2 verifier" node "$SM2VERIFY" ocsp "$T/resp.der" "$T/responder.pem"
check "not with another ID" bash -c "! node '$SM2VERIFY' --id 1234567812345679 ocsp '$T/resp.der' '$T/responder.pem' >/dev/null"
check "not with the CA key" bash -c "! node '$SM2VERIFY' ocsp '$T/resp.der' '$T/sub.pem' >/dev/null"

# ---- SM3 CertID, two certificates in one request ----
openssl ocsp -sm3 -issuer "$T/sub.pem" -cert "$T/alice.pem" -cert "$T/bob.pem" -no_nonce -reqout "$T/req3.der" >/dev/null 2>&1
post "$T/req3.der" "$T/resp.der"
check "POST SM3: 200" test "$(cat "$T/code")" = 200
check "alice and bob good (SM3)" test "$(openssl ocsp -respin "$T/resp.der" -noverify -resp_text | grep -c 'Cert Status: good')" = 2
check "SM3 response verifies" node "$SM2VERIFY" ocsp "$T/resp.der" "$T/responder.pem"
check "the AIA names the front" bash -c "openssl x509 -in '$T/alice.pem' -noout -ocsp_uri | grep -qx 'http://127.0.0.1:$PORT/ocsp'"
expect_exit 0 "gmca app validate --revocation ocsp: good (both CAs' responders)" -- "$GMCA" app validate --cert "$T/alice.pem" --anchor "$T/root.pem" --chain "$T/sub.pem" --revocation ocsp

# ---- revoked, with the reason ----
expect_exit 0 "revoke bob" -- g cert revoke --serial "$(cat "$T/bob.serial")" --reason keyCompromise
openssl ocsp -issuer "$T/sub.pem" -cert "$T/bob.pem" -no_nonce -reqout "$T/reqb.der" >/dev/null 2>&1
post "$T/reqb.der" "$T/resp.der"
openssl ocsp -respin "$T/resp.der" -noverify -resp_text >"$T/text" 2>&1
check "bob revoked" grep -q 'Cert Status: revoked' "$T/text"
check "with reason keyCompromise" grep -q 'Revocation Reason: keyCompromise' "$T/text"
check "revoked response verifies" node "$SM2VERIFY" ocsp "$T/resp.der" "$T/responder.pem"
expect_exit 3 "gmca app validate --revocation ocsp: revoked" -- "$GMCA" app validate --cert "$T/bob.pem" --anchor "$T/root.pem" --chain "$T/sub.pem" --revocation ocsp
expect_err "revoked (keyCompromise)"

# ---- an unknown serial: never good ----
openssl ocsp -issuer "$T/sub.pem" -serial 0x0123456789ABCDEF -no_nonce -reqout "$T/requ.der" >/dev/null 2>&1
post "$T/requ.der" "$T/resp.der"
check "unknown serial: unknown" bash -c "openssl ocsp -respin '$T/resp.der' -noverify -resp_text | grep -q 'Cert Status: unknown'"

# ---- GET (RFC 5019 §5) with the cache headers ----
B64=$(base64 -w0 "$T/reqb.der" | python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.stdin.read().strip(), safe=""))')
curl -s -D "$T/hdr" -o "$T/resp.der" "$URL/ocsp/$B64" >/dev/null
check "GET: 200" grep -q '^HTTP/1.1 200' "$T/hdr"
check "GET: bob revoked" bash -c "openssl ocsp -respin '$T/resp.der' -noverify -resp_text | grep -q 'Cert Status: revoked'"
check "GET: Cache-Control" grep -Eiq '^Cache-Control: max-age=(59[0-9]|600), public, no-transform, must-revalidate' "$T/hdr"
check "GET: Last-Modified" grep -Eiq '^Last-Modified: [A-Z][a-z]{2}, [0-9]{2} [A-Z][a-z]{2} [0-9]{4} [0-9:]{8} GMT' "$T/hdr"
check "GET: Expires" grep -Eiq '^Expires: [A-Z][a-z]{2}, ' "$T/hdr"
ETAG=$(sed -n 's/^[Ee][Tt]ag: "\([0-9a-f]*\)".*/\1/p' "$T/hdr")
check "GET: ETag is the SM3 of the response" test "$ETAG" = "$(openssl dgst -sm3 -r "$T/resp.der" | cut -c1-64)"
check "GET response verifies" node "$SM2VERIFY" ocsp "$T/resp.der" "$T/responder.pem"
B64N=$(base64 -w0 "$T/req.der" | python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.stdin.read().strip(), safe=""))')
curl -s -D "$T/hdr" -o /dev/null "$URL/ocsp/$B64N"
check "GET with a nonce: not cached" grep -qi '^Cache-Control: no-store' "$T/hdr"

# ---- pre-signed responses (RFC 5019 profile: one CertID, no nonce) ----
# A second GET a second later gets the same bytes (same thisUpdate, same
# ETag): it came from the cache, not from a new signature.
expect_exit 0 "leaf carol" -- issue carol personal-sign --info "$T/id.json"
openssl ocsp -sm3 -issuer "$T/sub.pem" -cert "$T/carol.pem" -no_nonce -reqout "$T/reqc.der" >/dev/null 2>&1
B64C=$(base64 -w0 "$T/reqc.der" | python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.stdin.read().strip(), safe=""))')
curl -s -o "$T/c1.der" "$URL/ocsp/$B64C"
sleep 1.1
curl -s -o "$T/c2.der" "$URL/ocsp/$B64C"
check "carol good" bash -c "openssl ocsp -respin '$T/c1.der' -noverify -resp_text | grep -q 'Cert Status: good'"
check "the second answer is the pre-signed one (same bytes a second later)" cmp -s "$T/c1.der" "$T/c2.der"
check "pre-signed response verifies" node "$SM2VERIFY" ocsp "$T/c2.der" "$T/responder.pem"
# Revoked by another process (the CLI): the front answers "revoked" within
# 1 s, polled 10 times a second from the moment the command returns.
expect_exit 0 "revoke carol from the CLI" -- g cert revoke --serial "$(cat "$T/carol.serial")" --reason superseded
t0=$(date +%s%N)
seen=
for _ in $(seq 10); do
  curl -s -o "$T/c3.der" "$URL/ocsp/$B64C"
  if openssl ocsp -respin "$T/c3.der" -noverify -resp_text 2>/dev/null | grep -q 'Cert Status: revoked'; then
    seen=$(( ($(date +%s%N) - t0) / 1000000 ))
    break
  fi
  sleep 0.1
done
echo "revocation seen by the front after ${seen:-(never)} ms"
check "carol revoked within 1 s of the revocation" test -n "$seen" -a "${seen:-9999}" -le 1000
check "with reason superseded" bash -c "openssl ocsp -respin '$T/c3.der' -noverify -resp_text | grep -q 'Revocation Reason: superseded'"
check "the revoked answer verifies" node "$SM2VERIFY" ocsp "$T/c3.der" "$T/responder.pem"
curl -s -o "$T/c4.der" "$URL/ocsp/$B64C"
check "and stays revoked" bash -c "openssl ocsp -respin '$T/c4.der' -noverify -resp_text | grep -q 'Cert Status: revoked'"

# ---- errors: RFC 6960 statuses in a 200, HTTP errors for non-OCSP ----
# resp_status FILE: the OCSPResponseStatus byte (the ENUMERATED's value).
resp_status() { python3 -c 'import sys; b=open(sys.argv[1],"rb").read(); assert b[0]==0x30 and b[2]==0x0a and b[3]==1; print(b[4])' "$1"; }
head -c 300 /dev/urandom >"$T/garbage"
post "$T/garbage" "$T/resp.der"
check "garbage: 200" test "$(cat "$T/code")" = 200
check "garbage: malformedRequest (1), no responseBytes" test "$(resp_status "$T/resp.der")-$(stat -c %s "$T/resp.der")" = "1-5"
curl -s -o "$T/resp.der" "$URL/ocsp/not%20base64!"
check "GET of junk: malformedRequest" test "$(resp_status "$T/resp.der")" = 1
openssl ocsp -issuer "$T/root.pem" -cert "$T/sub.pem" -no_nonce -reqout "$T/reqr.der" >/dev/null 2>&1
post "$T/reqr.der" "$T/resp.der"
check "the root's responder: sub CA good" bash -c "openssl ocsp -respin '$T/resp.der' -noverify -resp_text | grep -q 'Cert Status: good'"
check "signed by the root's responder" node "$SM2VERIFY" ocsp "$T/resp.der" "$T/rootresp.pem"
openssl genpkey -algorithm SM2 -out "$T/other.key" 2>/dev/null
openssl req -new -x509 -key "$T/other.key" -sm3 -sigopt distid:1234567812345678 -subj "/C=CN/CN=Other CA" \
  -days 30 -addext basicConstraints=critical,CA:TRUE -out "$T/other.pem" 2>/dev/null
openssl ocsp -issuer "$T/other.pem" -serial 0x1234 -no_nonce -reqout "$T/reqo.der" >/dev/null 2>&1
post "$T/reqo.der" "$T/resp.der"
check "a CA not served: unauthorized (6)" test "$(resp_status "$T/resp.der")" = 6
check "wrong Content-Type: 415" test "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: text/plain' --data-binary @"$T/req.der" "$URL/ocsp")" = 415
head -c 102400 /dev/zero >"$T/big"
check "100 KiB: 413" test "$(curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/ocsp-request' --data-binary @"$T/big" "$URL/ocsp")" = 413
check "PUT: 405" test "$(curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary @"$T/req.der" "$URL/ocsp")" = 405
post "$T/req.der" "$T/resp.der"
check "the front still answers" bash -c "openssl ocsp -respin '$T/resp.der' -noverify -resp_text | grep -q 'Cert Status: good'"
check "still running" kill -0 "$SERVE_PID"

stop_serve
wait "$SERVE_PID" 2>/dev/null || true
SERVE_PID=
finish
