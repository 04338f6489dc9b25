#!/usr/bin/env bash
# The RA front (gmca serve): signed requests accepted, and every way of
# getting one wrong refused with 401 (unsigned, bad signature, tampered
# body, stale, replayed, unknown or disabled operator) or 403 (wrong role),
# each refusal audited; oversized bodies, malformed HTTP, slow clients and
# 1000 concurrent connections do not take it down; the public downloads;
# starting the CA engine with the custodians and stopping it with SIGTERM.
. "$(dirname "$0")/common.bash"
D=$T/ca
g() { "$GMCA" --dir "$D" "$@"; }
SERVE_PID=
stop_serve() { [ -z "$SERVE_PID" ] || kill -TERM "$SERVE_PID" 2>/dev/null || true; }
trap 'stop_serve; stop_engines; rm -rf "$T"' EXIT

expect_exit 0 "new CA" -- new_ca "$D"
CUST=(--share "$D.shares/share-1.json" --pin-file "$T/pin1" --share "$D.shares/share-2.json"
  --pin-file "$T/pin2" --share "$D.shares/share-3.json" --pin-file "$T/pin3")

# ---- the RA system and its operators ----
sm2_csr ra "/C=CN/O=测试电子政务认证中心/OU=注册中心/CN=RA 系统"
expect_exit 0 "RA certificate" -- g ra cert issue --ra ra1 --csr "$T/ra.csr" --out "$T/ra.pem" "${CUST[@]}"
# add_op NAME ROLES: key $T/NAME.key, certificate $T/NAME.pem
add_op() {
  sm2_csr "$1" "/C=CN/O=测试电子政务认证中心/CN=$1" &&
    g operator add --name "$1" --role "$2" --csr "$T/$1.csr" --out "$T/$1.pem" "${CUST[@]}" >/dev/null
}
expect_exit 0 "operator alice" -- add_op alice business_admin
expect_exit 0 "operator bob" -- add_op bob audit_admin
expect_exit 0 "operator root" -- add_op root super_admin
expect_exit 0 "operator eve" -- add_op eve business_operator

# ---- serve: refusals before it listens ----
SERVE=(serve --listen 127.0.0.1:0 --ra ra1 --ra-key "$T/ra.key" --ra-cert "$T/ra.pem" --threads 4)
expect_exit 2 "--ra is required" -- g serve --ra-key "$T/ra.key" --ra-cert "$T/ra.pem"
expect_exit 3 "a bad listen address" -- g serve --listen 1.2.3:80 --ra ra1 --ra-key "$T/ra.key" --ra-cert "$T/ra.pem"
expect_err "--listen"
expect_exit 7 "a key that is not the certificate's" -- g serve --listen 127.0.0.1:0 --ra ra1 --ra-key "$T/alice.key" --ra-cert "$T/ra.pem"
expect_exit 5 "another RA's name" -- g serve --listen 127.0.0.1:0 --ra ra2 --ra-key "$T/ra.key" --ra-cert "$T/ra.pem"
expect_err "not of 'ra2'"
expect_exit 5 "an operator certificate is no RA certificate" -- g serve --listen 127.0.0.1:0 --ra ra1 --ra-key "$T/alice.key" --ra-cert "$T/alice.pem"
expect_exit 0 "deactivate" -- g deactivate
expect_exit 6 "no CA engine and no custodians" -- g "${SERVE[@]}"
expect_err "CA not activated"

# start_serve [extra args]: background serve, wait for the ready line, set URL.
start_serve() { serve_front "$D" "${SERVE[@]}" "$@"; }
check "serve starts the CA engine with the custodians" start_serve "${CUST[@]}"
check "the CA engine runs" test -S "$D/run/engine.sock"
check "pid file" test "$(cat "$D/run/serve.pid")" = "$SERVE_PID"
expect_exit 6 "a second front on the same directory" -- g "${SERVE[@]}"
expect_err "another gmca serve"

api() { local who=$1; shift; "$GMCA" api --url "$URL" --key "$T/$who.key" --cert "$T/$who.pem" "$@"; }
failures() { g audit list --json --event auth.request | jq '[.[] | select(.outcome=="failure")] | length'; }

# ---- signed requests ----
expect_exit 0 "whoami" -- api alice GET /api/v1/whoami
check "whoami names alice" test "$(jq -r .name "$T/out")" = alice
check "alice is a business admin" test "$(jq -c .roles "$T/out")" = '["business_admin"]'
check "alice may approve" bash -c "jq -e '.may | index(\"application.decide\")' '$T/out' >/dev/null"
expect_exit 0 "options after the operands" -- "$GMCA" api GET /api/v1/whoami --url "$URL" --key "$T/eve.key" --cert "$T/eve.pem"
check "whoami names eve" test "$(jq -r .name "$T/out")" = eve
# The same request signed with the openssl command and sent with curl, as docs/api.md shows.
signed_curl() { # KEY CERT METHOD TARGET BODY
  local fpr ts nonce bsm3 sig
  fpr=$(openssl x509 -in "$2" -outform DER | openssl dgst -sm3 -r | cut -c1-64)
  ts=$(date +%s)
  nonce=$(openssl rand -hex 16)
  bsm3=$(printf '%s' "$5" | openssl dgst -sm3 -r | cut -c1-64)
  printf 'gmca-request-v1\n%s\n%s\n%s\n%s\n%s\n%s' "$3" "$4" "$ts" "$nonce" "$bsm3" "$fpr" >"$T/base.txt"
  sig=$(openssl pkeyutl -sign -inkey "$1" -rawin -digest sm3 -pkeyopt distid:1234567812345678 \
    -in "$T/base.txt" | base64 -w0)
  curl -s -o "$T/out" -w '%{http_code}' -X "$3" -H "X-Gmca-Operator: $fpr" -H "X-Gmca-Timestamp: $ts" \
    -H "X-Gmca-Nonce: $nonce" -H "X-Gmca-Signature: $sig" ${5:+--data-binary "$5"} "$URL$4"
}
check "openssl-signed request accepted" test "$(signed_curl "$T/alice.key" "$T/alice.pem" GET '/api/v1/applicants?kind=individual' '')" = 200
check "... and answered" jq -e '.items' "$T/out" >/dev/null

# ---- 401: each refused and audited ----
f0=$(failures)
expect_exit 5 "unsigned" -- "$GMCA" api --url "$URL" --unsigned GET /api/v1/whoami
expect_err "missing header X-Gmca-Operator (HTTP 401)"
expect_exit 5 "tampered body" -- api eve --tamper-body POST /api/v1/applicants --data '{"kind":"individual"}'
expect_err "bad signature"
expect_exit 5 "stale: 301 s old" -- api alice --timestamp $(( $(date +%s) - 301 )) GET /api/v1/whoami
expect_err "stale"
expect_exit 0 "within the skew: 250 s old" -- api alice --timestamp $(( $(date +%s) - 250 )) GET /api/v1/whoami
NONCE=nonce-$(openssl rand -hex 8)
expect_exit 0 "a fresh nonce" -- api alice --nonce "$NONCE" GET /api/v1/whoami
expect_exit 5 "the same nonce again" -- api alice --nonce "$NONCE" GET /api/v1/whoami
expect_err "replayed"
expect_exit 0 "another operator may use that nonce" -- api eve --nonce "$NONCE" GET /api/v1/whoami
sm2_csr mallory "/C=CN/O=测试电子政务认证中心/CN=mallory"
openssl req -x509 -key "$T/mallory.key" -in "$T/mallory.csr" -sm3 -sigopt distid:1234567812345678 \
  -days 30 -out "$T/mallory.pem" 2>/dev/null
expect_exit 5 "an unknown operator" -- api mallory GET /api/v1/whoami
expect_err "unknown operator"
expect_exit 5 "alice's certificate with mallory's key" -- "$GMCA" api --url "$URL" --key "$T/mallory.key" --cert "$T/alice.pem" GET /api/v1/whoami
expect_err "bad signature"
# A request sent to another path than the one signed.
check "a signature over another target" test "$(
  fpr=$(openssl x509 -in "$T/alice.pem" -outform DER | openssl dgst -sm3 -r | cut -c1-64)
  ts=$(date +%s); nonce=$(openssl rand -hex 16)
  bsm3=$(printf '' | openssl dgst -sm3 -r | cut -c1-64)
  printf 'gmca-request-v1\nGET\n/api/v1/whoami\n%s\n%s\n%s\n%s' "$ts" "$nonce" "$bsm3" "$fpr" >"$T/b2.txt"
  sig=$(openssl pkeyutl -sign -inkey "$T/alice.key" -rawin -digest sm3 -pkeyopt distid:1234567812345678 -in "$T/b2.txt" | base64 -w0)
  curl -s -o /dev/null -w '%{http_code}' -H "X-Gmca-Operator: $fpr" -H "X-Gmca-Timestamp: $ts" \
    -H "X-Gmca-Nonce: $nonce" -H "X-Gmca-Signature: $sig" "$URL/api/v1/operators")" = 401
check "a header given twice" test "$(curl -s -o /dev/null -w '%{http_code}' -H 'X-Gmca-Nonce: aaaaaaaaaaaaaaaa' \
  -H 'X-Gmca-Nonce: bbbbbbbbbbbbbbbb' "$URL/api/v1/whoami")" = 401
f1=$(failures)
check "each 401 audited (8 refusals)" test "$((f1 - f0))" = 8
expect_exit 0 "audit list" -- g audit list --json --event auth.request
check "the replay is audited with its cause" bash -c "jq -e '[.[] | select(.detail | fromjson | .cause | startswith(\"replayed\"))] | length == 1' '$T/out' >/dev/null"
check "the refusal records the remote address" bash -c "jq -e '.[-1].detail | fromjson | .remote == \"127.0.0.1\"' '$T/out' >/dev/null"

# ---- 403: wrong role, audited with the operator as actor ----
expect_exit 5 "an audit admin may not create applicants" -- api bob POST /api/v1/applicants --data '{"kind":"individual","name":"张三","id_type":"resident_id","id_number":"11010519491231002X"}'
expect_err "(HTTP 403)"
expect_exit 5 "a business operator may not read the audit log" -- api eve GET /api/v1/audit
expect_exit 5 "a business admin may not list operators" -- api alice GET /api/v1/operators
expect_exit 0 "audit list" -- g audit list --json --event auth.request --actor bob
check "bob's 403 audited" bash -c "jq -e '.[-1].outcome == \"failure\" and .[-1].object == \"applicant.create\"' '$T/out' >/dev/null"
check "nothing was created by the refusal" test "$(db_sql "$D" 'SELECT count(*) FROM applicants')" = 0

# ---- the audit admin reads the log through the API ----
expect_exit 0 "audit through the API" -- api bob GET '/api/v1/audit?event=auth.request&limit=3'
check "three records" test "$(jq '.items | length' "$T/out")" = 3
check "more to come" test "$(jq .more "$T/out")" = true
AFTER=$(jq .next_after "$T/out")
expect_exit 0 "the next page" -- api bob GET "/api/v1/audit?event=auth.request&limit=3&after=$AFTER"
check "the next page starts after" test "$(jq ".items[0].seq > $AFTER" "$T/out")" = true
expect_exit 0 "audit verify through the API" -- api bob GET /api/v1/audit/verify
check "the chain is intact" test "$(jq .intact "$T/out")" = true
expect_exit 0 "operators" -- api root GET /api/v1/operators
check "four operators" test "$(jq '.items | length' "$T/out")" = 4

# ---- input: routes, methods, query strings ----
expect_exit 4 "unknown path" -- api alice GET /api/v1/nothing
expect_exit 1 "wrong method: 405" -- api alice DELETE /api/v1/whoami
expect_err "(HTTP 405)"
expect_exit 4 "id with a leading zero" -- api alice GET /api/v1/applications/01
expect_exit 4 "id 0" -- api alice GET /api/v1/applications/0
expect_exit 4 "id past 2^53" -- api alice GET /api/v1/applications/9007199254740993
expect_exit 4 "a bad serial" -- api alice GET /api/v1/certificates/XYZ
expect_exit 3 "an unknown query key" -- api alice GET '/api/v1/applications?colour=red'
expect_err "'colour' is not a parameter"
expect_exit 3 "a key twice" -- api alice GET '/api/v1/applications?state=issued&state=vetted'
expect_exit 3 "a bad escape" -- api alice GET '/api/v1/applicants?name=%zz'
expect_exit 3 "limit out of range" -- api alice GET '/api/v1/applications?limit=501'
expect_exit 3 "a GET with a body" -- api alice GET /api/v1/whoami --data '{}'
expect_exit 3 "not JSON" -- api alice POST /api/v1/applicants --data 'not json'
expect_exit 3 "an unknown key in a body" -- api alice POST /api/v1/applicants --data '{"kind":"device","name":"x","owner_org":"o","domain":"a.example.cn","colour":1}'

# ---- 413, malformed HTTP, slow clients, many clients ----
head -c 1048577 /dev/zero | tr '\0' ' ' >"$T/big"
expect_exit 3 "a body one byte over 1 MiB: 413" -- "$GMCA" api --url "$URL" --unsigned POST /api/v1/applicants --data "@$T/big"
expect_err "(HTTP 413)"
HP=${URL#http://}
cat >"$T/raw.py" <<'EOF'
import socket, sys
host, port = sys.argv[1].rsplit(':', 1)
def raw(data, wait=3):
    s = socket.create_connection((host, int(port)), timeout=wait)
    try:
        s.sendall(data)
    except OSError:
        pass
    out = b''
    try:
        while True:
            b = s.recv(65536)
            if not b:
                break
            out += b
    except OSError:
        pass
    s.close()
    return out.split(b'\r\n', 1)[0].decode(errors='replace')
cases = [
    b"GARBAGE\r\n\r\n",
    b"\x00\x01\x02\xff\xfe\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n",
    b"POST /api/v1/applicants HTTP/1.1\r\nHost: x\r\nContent-Length: 5000000\r\n\r\n",
    b"POST /api/v1/applicants HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
    b"POST /api/v1/applicants HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"POST /api/v1/applicants HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    + (b"100000\r\n" + b"a" * 0x100000 + b"\r\n") * 2,
    b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
    b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n",
]
for c in cases:
    print(raw(c) or 'closed')
EOF
python3 "$T/raw.py" "$HP" >"$T/raw.out"
check "garbage: 400 or closed" bash -c "sed -n 1p '$T/raw.out' | grep -Eq '^(HTTP/1.1 400|closed)'"
check "binary: 400 or closed" bash -c "sed -n 2p '$T/raw.out' | grep -Eq '^(HTTP/1.1 400|closed)'"
check "100 kB header: 431" bash -c "sed -n 3p '$T/raw.out' | grep -q '^HTTP/1.1 431'"
check "Content-Length 5 MB: 413 before the body" bash -c "sed -n 4p '$T/raw.out' | grep -q '^HTTP/1.1 413'"
check "negative Content-Length: 400 or closed" bash -c "sed -n 5p '$T/raw.out' | grep -Eq '^(HTTP/1.1 400|closed)'"
check "bad chunk: 400 or closed" bash -c "sed -n 6p '$T/raw.out' | grep -Eq '^(HTTP/1.1 400|closed)'"
check "chunked past 1 MiB: closed" bash -c "sed -n 7p '$T/raw.out' | grep -Eq '^(HTTP/1.1 413|closed)'"
check "5000-byte target: 400 or 414" bash -c "sed -n 8p '$T/raw.out' | grep -Eq '^HTTP/1.1 (400|414)'"
check "HTTP/9.9: refused" bash -c "sed -n 9p '$T/raw.out' | grep -Eq '^(HTTP/1.1 505|HTTP/1.1 400|closed)'"
expect_exit 0 "alive after all that" -- api alice GET /api/v1/whoami

cat >"$T/slow.py" <<'EOF'
import socket, sys, threading, time
host, port = sys.argv[1].rsplit(':', 1)
req = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
def dribble(s):
    for ch in req:
        try:
            s.send(bytes([ch]))
        except OSError:
            return
        time.sleep(1)
# More slow clients than the front has threads, each sending a byte a second.
slow = [socket.create_connection((host, int(port))) for _ in range(int(sys.argv[2]))]
for s in slow:
    threading.Thread(target=dribble, args=(s,), daemon=True).start()
time.sleep(2)
t0 = time.time()
fast = socket.create_connection((host, int(port)), timeout=5)
fast.sendall(req)
line = fast.recv(4096).split(b'\r\n', 1)[0]
print('%s %.1f' % (line.decode(), time.time() - t0))
EOF
python3 "$T/slow.py" "$HP" 16 >"$T/slow.out"
check "slow clients do not hold up a fast one" bash -c "grep -q '^HTTP/1.1 200 OK' '$T/slow.out' && awk '{exit !(\$NF < 2)}' '$T/slow.out'"

cat >"$T/many.py" <<'EOF'
import resource, selectors, socket, sys, time
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
host, port = sys.argv[1].rsplit(':', 1)
n = int(sys.argv[2])
# All connections are open before any sends.
socks = [socket.create_connection((host, int(port)), timeout=10) for _ in range(n)]
for s in socks:
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
sel = selectors.DefaultSelector()
got = {}
for s in socks:
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
    got[s] = b''
ok, left, deadline = 0, n, time.time() + 60
while left and time.time() < deadline:
    for key, _ in sel.select(timeout=1):
        s = key.fileobj
        try:
            b = s.recv(4096)
        except BlockingIOError:
            continue
        if b:
            got[s] += b
            continue
        sel.unregister(s)
        s.close()
        left -= 1
        ok += got[s].startswith(b'HTTP/1.1 200') and b'"ok"' in got[s]
print(ok)
EOF
check "1000 concurrent connections all answered" test "$(python3 "$T/many.py" "$HP" 1000)" = 1000
expect_exit 0 "a signed request after them" -- api alice GET /api/v1/whoami

# ---- public downloads ----
check "CA certificate" bash -c "curl -sf '$URL/ca/sub.crt' | openssl x509 -inform DER -noout -subject -nameopt utf8 | grep -q '运营'"
g ca export --ca root | openssl x509 -outform DER >"$T/root.der"
check "CA certificate as the CA exports it" bash -c "curl -sf '$URL/ca/root.crt' | cmp - '$T/root.der'"
check "no CRL of an unknown CA: 404" test "$(curl -s -o /dev/null -w '%{http_code}' "$URL/crl/nope.crl")" = 404
expect_exit 0 "a CRL" -- g crl generate
check "the CRL" bash -c "curl -sf '$URL/crl/sub.crl' -o '$T/sub.crl' && openssl crl -inform DER -in '$T/sub.crl' -noout -issuer >/dev/null"
check "CRL content type" bash -c "curl -sI '$URL/crl/sub.crl' | grep -qi '^content-type: application/pkix-crl'"
check "unknown CA: 404" test "$(curl -s -o /dev/null -w '%{http_code}' "$URL/ca/nope.crt")" = 404
check "path tricks: 404" test "$(curl -s --path-as-is -o /dev/null -w '%{http_code}' "$URL/ca/../gmca.db")" = 404
check "POST to a download: 405" test "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$URL/healthz")" = 405

# ---- the CA engine gone: 503, and back ----
IND='{"kind":"individual","name":"张三","id_type":"resident_id","id_number":"11010519491231002X"}'
expect_exit 0 "an applicant (its identity number sealed by the CA engine)" -- api alice POST /api/v1/applicants --data "$IND"
expect_exit 0 "the CA engine stops" -- g deactivate
expect_exit 1 "without the CA engine: 503" -- api alice POST /api/v1/applicants --data "$IND"
expect_err "(HTTP 503)"
expect_exit 0 "reads need no CA engine" -- api alice GET /api/v1/applicants
check "one applicant" test "$(jq .total "$T/out")" = 1
expect_exit 0 "the CA engine again" -- activate "$D"
expect_exit 0 "served again" -- api alice POST /api/v1/applicants --data "$IND"

# ---- a disabled operator is refused ----
expect_exit 0 "the super admin disables eve" -- api root POST /api/v1/operators/eve/disable
check "eve is disabled" test "$(jq -r .status "$T/out")" = disabled
expect_exit 5 "eve's requests are refused" -- api eve GET /api/v1/whoami
expect_err "(HTTP 401)"
expect_exit 6 "disabling twice" -- api root POST /api/v1/operators/eve/disable
expect_exit 4 "an unknown operator" -- api root POST /api/v1/operators/nobody/disable
expect_exit 5 "a business admin may not disable" -- api alice POST /api/v1/operators/bob/disable

# ---- SIGTERM: exit 0, the port free, the CA engine stopped ----
kill -TERM "$SERVE_PID"
rc=0
wait "$SERVE_PID" || rc=$?
SERVE_PID=
check "exit 0 on SIGTERM" test "$rc" = 0
check "the port is free" python3 -c "import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1', int(sys.argv[1])))" "${HP#*:}"
check "the pid file is gone" test ! -e "$D/run/serve.pid"
check "the CA engine it started is stopped" test ! -S "$D/run/engine.sock"
expect_exit 0 "audit chain verifies" -- g audit verify
finish
