#!/usr/bin/env bash
# OCSP benchmark (issue 5 item 6), on loopback with wrk -c 64 -t 2 -d 10s
# (DURATION); each figure printed next to its reference from the same run:
#  (a) gmca serve, pre-signed path: GET /ocsp/{b64} of one good certificate
#      (SM3 CertID, no nonce), requests/s and p99;
#  (b) nginx serving a static file of the same bytes on another port, with a
#      minimal config in the temp dir: the ceiling;
#  (c) `openssl ocsp -index -port -multi 2` with the same responder key and
#      the same request, by wrk when its answers come back (it closes the
#      connection after each one, so wrk reconnects every time);
#  (d) requests with a nonce, signed per request (POST, wrk Lua script
#      bench/ocsp_nonce.lua), next to `openssl speed -multi 2 sm2` (raw SM2
#      signatures/s, 2 processes);
#  (e) revocation-to-OCSP latency: from `gmca cert revoke` returning to the
#      front answering "revoked", over 20 certificates (bench/ocsp_latency.py).
# The front runs with --threads 2 (the machine's cores); wrk shares them.
# wrk and nginx are installed with apt-get if missing (not by make test).
# Usage: bench/ocsp.sh [BUILD_DIR]   (DURATION=10s per wrk run, NLAT=20, KEEP=1 keeps the temp dir)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
DURATION=${DURATION:-10s}
NLAT=${NLAT:-20}
export GMCA=$build/gmca GMCA_SRC=$src GMCA_PROFILES=$src/conf/profiles
unset http_proxy HTTP_PROXY

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  echo "== installing ${need[*]} (benchmark only)"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

# The e2e helpers: $T, init_ca, sm2_csr. Their trap is replaced by ours.
. "$src/tests/e2e/common.bash"
PIDS=()
OSSL=
cleanup() {
  local p
  [ -z "$OSSL" ] || stop_openssl
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  stop_engines
  [ -n "${KEEP:-}" ] && echo "kept $T" >&2 || rm -rf "$T"
}
trap cleanup EXIT
# openssl ocsp -multi's parent ignores SIGTERM while it waits for its children.
stop_openssl() {
  pkill -KILL -P "$OSSL" 2>/dev/null || true
  kill -KILL "$OSSL" 2>/dev/null || true
  wait "$OSSL" 2>/dev/null || true
  OSSL=
}
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
urlq() { base64 -w0 "$1" | python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.stdin.read().strip(), safe=""))'; }
# wrk output: requests/s and p99 in ms.
rps() { sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' "$1"; }
p99() {
  awk '$1 == "99%" { v = $2; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
    f = u == "us" ? 0.001 : u == "ms" ? 1 : u == "s" ? 1000 : 60000; printf "%.2f", v * f }' "$1"
}
errs() { grep -E 'Non-2xx|Socket errors' "$1" || true; }

D=$T/ca
PORT=$(freeport)
echo "== a CA, its OCSP responder and $((NLAT + 1)) certificates (not timed)"
init_ca "$D" --base-url "http://127.0.0.1:$PORT" --root-dn "C=CN, O=测试电子政务认证中心, CN=测试 SM2 根 CA" \
  --sub-dn "C=CN, O=测试电子政务认证中心, OU=运营, CN=测试 SM2 运营 CA" >/dev/null
CUST=(--share "$D.shares/share-1.json" --pin-file "$T/pin1" --share "$D.shares/share-2.json"
  --pin-file "$T/pin2" --share "$D.shares/share-3.json" --pin-file "$T/pin3")
"$GMCA" --dir "$D" activate "${CUST[@]}" >/dev/null
"$GMCA" --dir "$D" ca export --ca sub >"$T/sub.pem"
echo '{"identity_card_number": "11010519491231002X"}' >"$T/id.json"
issue() {
  sm2_csr "$1" "/C=CN/O=测试电子政务认证中心/CN=$1" &&
    "$GMCA" --dir "$D" cert issue --profile "$2" --csr "$T/$1.csr" --out "$T/$1.pem" "${CUST[@]}" "${@:3}" >"$T/$1.serial"
}
issue responder ocsp
issue leaf personal-sign --info "$T/id.json"
for i in $(seq "$NLAT"); do issue "lat$i" personal-sign --info "$T/id.json"; done
sm2_csr ra "/C=CN/O=测试电子政务认证中心/OU=注册中心/CN=RA 系统"
"$GMCA" --dir "$D" ra cert issue --ra ra1 --csr "$T/ra.csr" --out "$T/ra.pem" "${CUST[@]}" >/dev/null

"$GMCA" --dir "$D" serve --listen "127.0.0.1:$PORT" --threads 2 \
  --ra ra1 --ra-key "$T/ra.key" --ra-cert "$T/ra.pem" --ocsp-cert "$T/responder.pem" \
  --ocsp-key "$T/responder.key" >"$T/serve.out" 2>"$T/serve.err" &
PIDS+=($!)
for _ in $(seq 100); do grep -q '^gmca: serving on ' "$T/serve.out" && break; sleep 0.1; done
grep -q '^gmca: serving on ' "$T/serve.out" || { cat "$T/serve.err" >&2; exit 1; }
URL=http://127.0.0.1:$PORT

openssl ocsp -sm3 -issuer "$T/sub.pem" -cert "$T/leaf.pem" -no_nonce -reqout "$T/req.der" >/dev/null 2>&1
GETPATH=/ocsp/$(urlq "$T/req.der")
curl -s -o "$T/resp.der" "$URL$GETPATH"
openssl ocsp -respin "$T/resp.der" -noverify -resp_text 2>/dev/null | grep -q 'Cert Status: good' ||
  { echo "bench: the front does not answer good" >&2; exit 1; }
SIZE=$(stat -c %s "$T/resp.der")

echo "== (a) gmca serve, pre-signed GET ($SIZE-byte response)"
wrk -c 64 -t 2 -d "$DURATION" --latency "$URL$GETPATH" >"$T/a.txt"
cat "$T/a.txt"

echo "== (b) nginx, static file of the same $SIZE bytes"
NP=$(freeport)
mkdir -p "$T/nginx/www/ocsp" "$T/nginx/tmp"
cp "$T/resp.der" "$T/nginx/www/resp.der"
# nginx's workers drop to an unprivileged user: let them reach the file (the keys stay 0600).
chmod o+x "$T" "$T/nginx" && chmod o+rx "$T/nginx/www" && chmod o+r "$T/nginx/www/resp.der"
cat >"$T/nginx/nginx.conf" <<CONF
worker_processes 2;
daemon off;
pid $T/nginx/nginx.pid;
error_log $T/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $T/nginx/tmp;
  proxy_temp_path $T/nginx/tmp;
  fastcgi_temp_path $T/nginx/tmp;
  uwsgi_temp_path $T/nginx/tmp;
  scgi_temp_path $T/nginx/tmp;
  default_type application/ocsp-response;
  server {
    listen 127.0.0.1:$NP;
    root $T/nginx/www;
  }
}
CONF
"$NGINX" -p "$T/nginx" -c "$T/nginx/nginx.conf" -e "$T/nginx/error.log" &
PIDS+=($!)
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$NP/resp.der" && break; sleep 0.1; done
cmp -s "$T/resp.der" <(curl -s "http://127.0.0.1:$NP/resp.der") || { echo "bench: nginx does not serve the file" >&2; exit 1; }
wrk -c 64 -t 2 -d "$DURATION" --latency "http://127.0.0.1:$NP/resp.der" >"$T/b.txt"
cat "$T/b.txt"

echo "== (c) openssl ocsp -index -port -multi 2, same responder key and request"
OP=$(freeport)
serial=$(openssl x509 -in "$T/leaf.pem" -noout -serial | cut -d= -f2)
end=$(date -u -d "$(openssl x509 -in "$T/leaf.pem" -noout -enddate | cut -d= -f2)" +%y%m%d%H%M%SZ)
subj=$(openssl x509 -in "$T/leaf.pem" -noout -subject -nameopt compat | sed 's/^subject=//')
printf 'V\t%s\t\t%s\tunknown\t%s\n' "$end" "$serial" "$subj" >"$T/index.txt"
openssl ocsp -index "$T/index.txt" -CA "$T/sub.pem" -rsigner "$T/responder.pem" \
  -rkey "$T/responder.key" -rmd sm3 -port "$OP" -multi 2 -nmin 60 >"$T/openssl.out" 2>&1 &
OSSL=$!
# openssl's GET takes the base64 right after the first "/" (RFC 6960 A.1 with an empty path).
OPATH=/$(urlq "$T/req.der")
for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$OP$OPATH" && break; sleep 0.1; done
curl -s -o "$T/oresp.der" "http://127.0.0.1:$OP$OPATH" || true
if openssl ocsp -respin "$T/oresp.der" -noverify -resp_text 2>/dev/null | grep -q 'Cert Status: good'; then
  wrk -c 64 -t 2 -d "$DURATION" --latency "http://127.0.0.1:$OP$OPATH" >"$T/c.txt" || true
  cat "$T/c.txt"
  cmeth="wrk GET; HTTP/1.0, a connection per request"
else
  echo "openssl ocsp does not answer GET; a loop of openssl ocsp -url POSTs for 10 s"
  n=0
  end=$((SECONDS + 10))
  while [ "$SECONDS" -lt "$end" ]; do
    openssl ocsp -reqin "$T/req.der" -url "http://127.0.0.1:$OP" -noverify >/dev/null 2>&1 && n=$((n + 1))
  done
  echo "Requests/sec: $((n / 10))" >"$T/c.txt"
  cmeth="a loop of openssl ocsp -url POSTs, one at a time"
fi
stop_openssl

echo "== (d) requests with a nonce (signed per request) and raw SM2 signing"
reqlist=$T/nonce.list
: >"$reqlist"
for i in $(seq 200); do
  openssl ocsp -sm3 -issuer "$T/sub.pem" -cert "$T/leaf.pem" -reqout "$T/n$i.der" >/dev/null 2>&1
  echo "$T/n$i.der" >>"$reqlist"
done
curl -s -o "$T/nresp.der" -H 'Content-Type: application/ocsp-request' --data-binary "@$T/n1.der" "$URL/ocsp"
openssl ocsp -reqin "$T/n1.der" -respin "$T/nresp.der" -noverify -resp_text 2>&1 | grep -q 'Cert Status: good' ||
  { echo "bench: nonce request not answered" >&2; exit 1; }
OCSP_REQS=$reqlist wrk -c 64 -t 2 -d "$DURATION" --latency -s "$src/bench/ocsp_nonce.lua" "$URL" >"$T/d.txt"
cat "$T/d.txt"
openssl speed -multi 2 -seconds 5 sm2 2>/dev/null >"$T/speed.txt"
grep -iE 'sign|sm2' "$T/speed.txt" | tail -3
# The last line: "... sm2 (sm2)  <sign/s> <verify/s>" summed over the 2 processes.
sm2=$(awk '/SM2|sm2/ && NF >= 5 { v = $(NF - 1) } END { print v }' "$T/speed.txt")

echo "== (e) revocation-to-OCSP latency over $NLAT certificates"
: >"$T/lat.list"
for i in $(seq "$NLAT"); do
  openssl ocsp -sm3 -issuer "$T/sub.pem" -cert "$T/lat$i.pem" -no_nonce -reqout "$T/l$i.der" >/dev/null 2>&1
  echo "$(cat "$T/lat$i.serial") /ocsp/$(urlq "$T/l$i.der")" >>"$T/lat.list"
done
python3 "$src/bench/ocsp_latency.py" "$GMCA" "$D" 127.0.0.1 "$PORT" "$T/lat.list" | tee "$T/e.txt"

echo
echo "== summary (wrk -c 64 -t 2 -d $DURATION, loopback, $(nproc) cores shared by client and server)"
awk -v a="$(rps "$T/a.txt")" -v ap="$(p99 "$T/a.txt")" -v b="$(rps "$T/b.txt")" -v bp="$(p99 "$T/b.txt")" \
  -v c="$(rps "$T/c.txt")" -v cm="$cmeth" -v d="$(rps "$T/d.txt")" -v dp="$(p99 "$T/d.txt")" -v s="$sm2" \
  -v e="$(sed -n 's/^median \([0-9.]*\) max \([0-9.]*\)$/\1 \2/p' "$T/e.txt")" -v n="$NLAT" 'BEGIN {
  split(e, m, " ")
  printf "%-44s %12s %10s  %s\n", "", "req/s", "p99 ms", "ratio (goal)"
  printf "%-44s %12.0f %10.2f  %.0f%% of nginx (>= 70%%), %.1fx openssl (>= 10x), p99 (< 10 ms)\n", "(a) gmca pre-signed GET", a, ap, 100 * a / b, (c > 0 ? a / c : 0)
  printf "%-44s %12.0f %10.2f  the ceiling\n", "(b) nginx static file, same size", b, bp
  printf "%-44s %12.0f %10s  the baseline (%s)\n", "(c) openssl ocsp -multi 2", c, "-", cm
  printf "%-44s %12.0f %10.2f  %.0f%% of raw SM2 signing (>= 80%%)\n", "(d) gmca with nonce (signed per request)", d, dp, (s > 0 ? 100 * d / s : 0)
  printf "%-44s %12.0f %10s  openssl speed -multi 2 sm2, signatures/s\n", "    raw SM2 signing, 2 processes", s, "-"
  printf "%-44s median %.1f ms, max %.1f ms over %d (goal <= 1000 ms)\n", "(e) revocation -> OCSP revoked", m[1], m[2], n
}'
for f in a b c d; do errs "$T/$f.txt" | sed "s/^/($f) /"; done
