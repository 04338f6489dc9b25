#!/usr/bin/env bash
# The public certificate search (issue 7 item 4, CPS §1.6.1, §4.6.3, §8.3.2,
# §8.4.4): GET /certs finds certificates by CN, organisation, serial, type
# and status, pages them, and says what is wrong with a bad query (400) or
# an unknown serial (404); the certificate, its DER and its public key
# download; the page at / with its CSP and caching; and the page itself in
# headless Chromium (tests/interop/web_check.mjs). No identity number —
# neither the GM/T 0015 extension's nor a subject serialNumber — appears in
# any answer but the certificate's own bytes.
. "$(dirname "$0")/common.bash"
D=$T/ca
g() { "$GMCA" --dir "$D" "$@"; }
trap 'stop_serve; stop_engines; rm -rf "$T"' EXIT
ID1=11010519491231002X
ID2=110105194912310021

expect_exit 0 "new CA" -- new_ca "$D"
custodians3 "$D"
expect_exit 0 "RA certificate" -- ra_cert "$D"
echo "{\"identity_card_number\": \"$ID1\"}" >"$T/id.json"
issue() { # NAME SUBJECT -> serial in $T/NAME.serial
  sm2_csr "$1" "$2" && g cert issue --profile account --csr "$T/$1.csr" --info "$T/id.json" \
    --out "$T/$1.pem" >"$T/$1.serial"
}
expect_exit 0 "张三's first certificate" -- issue zs1 "/C=CN/O=北京市测试局/CN=张三/serialNumber=$ID2"
expect_exit 0 "张三's second certificate" -- issue zs2 "/C=CN/O=北京市测试局/CN=张三 (2)/serialNumber=$ID2"
expect_exit 0 "李四's certificate" -- issue ls "/C=CN/O=上海市测试局/CN=李四, 王五之友"
R=$(cat "$T/zs1.serial") V=$(cat "$T/zs2.serial") L=$(cat "$T/ls.serial")
expect_exit 0 "revoke 张三's first" -- g cert revoke --serial "$R" --reason keyCompromise
echo "电子认证业务规则（测试）" >"$D/cps.txt"
check "serve starts" start_front "$D"

# ---- the JSON search ----
get() { curl -s -o "$T/body" -w '%{http_code}' "$URL$1"; }
jqb() { jq -e "$@" "$T/body" >/dev/null; }
no_secrets() { ! grep -qF "$ID1" "$T/body" && ! grep -qF "$ID2" "$T/body" && ! grep -qi serialNumber "$T/body"; }
ZS=%E5%BC%A0%E4%B8%89 # 张三
check "by CN: 200" test "$(get "/certs?cn=$ZS")" = 200
check "by CN: both of 张三's, not 李四's" \
  jqb --arg r "$R" --arg v "$V" '.total == 2 and ([.results[].serial] | sort) == ([$v, $r] | sort)'
check "by CN: no identity number, no serialNumber" no_secrets
check "revoked: with date and reason" jqb --arg r "$R" \
  '.results[] | select(.serial == $r) | .status == "revoked" and (.revoked_at | test("^\\d{4}-\\d\\d-\\d\\dT")) and .reason == "keyCompromise"'
check "valid: links and issuer" jqb --arg v "$V" \
  '.results[] | select(.serial == $v) | .status == "valid" and .revoked_at == null and .issuer.name == "sub" and .links.pem == "/certs/\($v).pem" and .links.issuer == "/ca/sub.crt"'
check "subject without serialNumber" jqb --arg v "$V" '.results[] | select(.serial == $v) | .subject == "C=CN, O=北京市测试局, CN=张三 (2)"'
check "CN with an escaped comma" test "$(get "/certs?cn=%E6%9D%8E%E5%9B%9B%2C+%E7%8E%8B")" = 200
check "... finds 李四" jqb --arg l "$L" '.total == 1 and .results[0].serial == $l'
check "by O" test "$(get "/certs?o=%E5%8C%97%E4%BA%AC")" = 200
check "... 北京: 张三's two" jqb '.total == 2'
check "O is not CN" test "$(get "/certs?cn=%E5%8C%97%E4%BA%AC")" = 200
check "... nothing" jqb '.total == 0 and .results == []'
check "case-insensitive ASCII" test "$(get "/certs?cn=ra+%E7%B3%BB")" = 200
check "... finds the RA's certificate (CN 'RA 系统')" jqb '.total == 1 and .results[0].cn == "RA 系统"'
check "status=revoked" test "$(get "/certs?status=revoked")" = 200
check "... the one" jqb --arg r "$R" '.total == 1 and .results[0].serial == $r'
check "status=valid&cn" test "$(get "/certs?status=valid&cn=$ZS")" = 200
check "... the other" jqb --arg v "$V" '.total == 1 and .results[0].serial == $v'
check "status=expired" test "$(get "/certs?status=expired")" = 200
check "... none" jqb '.total == 0'
check "type=account" test "$(get "/certs?type=account")" = 200
check "... three" jqb '.total == 3 and ([.results[].type] | unique) == ["account"]'
check "by serial, lower case with colons" test "$(get "/certs?serial=$(echo "$L" | tr 'A-F' 'a-f' | sed 's/../&:/g; s/:$//')")" = 200
check "... exactly it" jqb --arg l "$L" '.total == 1 and .results[0].serial == $l'
check "unknown serial: empty result" test "$(get "/certs?serial=0123456789ABCDEF")" = 200
check "... total 0" jqb '.total == 0'
check "page 1 of 2" test "$(get "/certs?cn=$ZS&limit=1")" = 200
check "... first" jqb '.total == 2 and .limit == 1 and (.results | length) == 1'
P1=$(jq -r '.results[0].serial' "$T/body")
check "page 2 of 2" test "$(get "/certs?cn=$ZS&limit=1&offset=1")" = 200
check "... second, the other one" jqb --arg r "$R" --arg v "$V" --arg p "$P1" \
  '.offset == 1 and (.results | length) == 1 and .results[0].serial != $p and ([$p, .results[0].serial] | sort) == ([$r, $v] | sort)'
check "past the end" test "$(get "/certs?cn=$ZS&offset=5")" = 200
check "... empty, total kept" jqb '.total == 2 and .results == []'
check "everything: no secrets" test "$(get "/certs?limit=100")" = 200
check "... none in any result" no_secrets
for bad in "limit=0" "limit=101" "limit=x" "offset=-1" "offset=10001" "status=bogus" "serial=xyz" \
  "name=x" "cn=a&cn=b" "cn=%ZZ" "cn=%01" "cn=%FF%FE" "cn=$(printf 'a%.0s' $(seq 129))" "&"; do
  check "400 for '$bad'" test "$(get "/certs?$bad")" = 400
  check "... JSON error" jqb '.error == "bad_request" and (.message | length) > 0'
done

# ---- downloads ----
check "PEM" test "$(get "/certs/$V.pem")" = 200
check "... the certificate" cmp -s "$T/body" <(openssl x509 -in "$T/zs2.pem")
check "DER" test "$(get "/certs/$V.der")" = 200
check "... the same in DER" cmp -s "$T/body" <(openssl x509 -in "$T/zs2.pem" -outform DER)
check "public key" test "$(get "/certs/$V/pubkey.pem")" = 200
check "... its public key" cmp -s "$T/body" <(openssl x509 -in "$T/zs2.pem" -noout -pubkey)
check "lower-case serial downloads too" test "$(get "/certs/$(echo "$V" | tr 'A-F' 'a-f').der")" = 200
check "unknown serial: 404" test "$(get "/certs/0123456789ABCDEF.pem")" = 404
check "... JSON error" jqb '.error == "not_found"'
check "not a serial: 404" test "$(get "/certs/zz.pem")" = 404
check "no such form: 404" test "$(get "/certs/$V.txt")" = 404
check "POST: 405" test "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$URL/certs")" = 405
check "query on a download: 400" test "$(get "/certs/$V.pem?x=1")" = 400

# ---- the page's files and the repository ----
headers() { curl -s -D "$T/h" -o "$T/body" "$@" >/dev/null; tr -d '\r' <"$T/h" >"$T/hh"; }
has() { grep -qi "^$1" "$T/hh"; }
headers "$URL/"
check "/: HTML" has "content-type: text/html; charset=utf-8"
check "/: strict CSP" has "content-security-policy: default-src 'none'; script-src 'self'; style-src 'self'"
check "/: revalidated" has "cache-control: no-cache"
check "/: the page" grep -q '<script src="/app.js" defer></script>' "$T/body"
check "/: no inline script" test "$(grep -c '<script>' "$T/body")" = 0
headers "$URL/app.js"
check "app.js: JavaScript, cached" has "content-type: text/javascript"
check "app.js: cache" has "cache-control: public, max-age="
ETAG=$(sed -n 's/^etag: //Ip' "$T/hh")
check "app.js: ETag" test -n "$ETAG"
check "app.js: 304 on a match" test "$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $ETAG" "$URL/app.js")" = 304
headers "$URL/style.css"
check "style.css: CSS" has "content-type: text/css"
headers "$URL/certs?cn=x"
check "/certs: JSON" has "content-type: application/json"
check "/certs: locked-down CSP" has "content-security-policy: default-src 'none'; frame-ancestors 'none'; sandbox"
check "repository" test "$(get /repository.json)" = 200
check "... both CAs with certificate and CRL links, the CPS" jqb \
  '([.cas[].name] | sort) == ["root", "sub"] and (.cas[] | select(.name == "sub") | .certificate == "/ca/sub.crt" and .crl == "/crl/sub.crl") and (.cps | endswith("/cps")) and .cps_document == "/cps"'
check "CPS document" test "$(get /cps)" = 200
check "... the file" cmp -s "$T/body" "$D/cps.txt"
check "no other file: 404" test "$(get /web/index.html)" = 404

# ---- the page in a browser ----
if [ -x /usr/bin/chromium ] && [ -d "$GMCA_SRC/tests/interop/node_modules/playwright-core" ]; then
  check "the page in Chromium" node "$GMCA_SRC/tests/interop/web_check.mjs" "$URL" 张三 "$R" "$V" \
    "$ID1" "$T/page.png"
  check "... and no subject serialNumber either" node "$GMCA_SRC/tests/interop/web_check.mjs" \
    "$URL" 张三 "$R" "$V" "$ID2" "$T/page2.png"
else
  bad "chromium or playwright-core missing (scripts/deps.sh --with-npm installs them)"
fi
stop_serve
finish
