#!/usr/bin/env bash
# The RA communication certificate (CPS §7.1.1 item 2): the CA issues the RA
# system its certificate through the running CA engine under the ra-comm
# profile; `gmca ra cert check` accepts exactly the RA's current,
# unrevoked, unexpired certificate issued here and refuses anything else
# with exit 5 and the reason. Checked with openssl and the independent SM2
# verifier; every issue is audited as ra.cert.
. "$(dirname "$0")/common.bash"
D=$T/ca
g() { "$GMCA" --dir "$D" "$@"; }
VERIFY=$GMCA_SRC/tests/interop/sm2verify.mjs
quiet() { "$@" >/dev/null; }
expect_exit 0 "new CA" -- new_ca "$D"
g ca export --ca sub > "$T/sub.pem"
g ca export --ca root > "$T/root.pem"
sm2_csr ra "/C=CN/O=测试电子政务认证中心/OU=注册中心/CN=RA 系统"
sm2_csr ra2 "/C=CN/O=测试电子政务认证中心/CN=RA 系统 2"

# ---- issue through the CA engine ----
expect_exit 0 "issue the RA certificate" -- g ra cert issue --ra ra1 --csr "$T/ra.csr" --out "$T/ra1.pem"
S1=$(cat "$T/out")
check "serial printed" test -n "$S1"
expect_exit 0 "check it" -- g ra cert check --cert "$T/ra1.pem"
check "check names the RA" grep -q "RA ra1" "$T/out"
expect_exit 0 "show it" -- g cert show --serial "$S1" --json
check "profile ra-comm" test "$(jq -r .profile "$T/out")" = ra-comm
openssl x509 -in "$T/ra1.pem" -noout -text > "$T/ra1.txt"
check "EKU clientAuth only" bash -c "grep -A1 'X509v3 Extended Key Usage' '$T/ra1.txt' | tail -n 1 | grep -qx ' *TLS Web Client Authentication'"
check "key usage digitalSignature, critical" \
  bash -c "grep -A1 'X509v3 Key Usage: critical' '$T/ra1.txt' | tail -n 1 | grep -qx ' *Digital Signature'"
check "not a CA" grep -q "CA:FALSE" "$T/ra1.txt"
check "issued by the operational CA" bash -c "openssl x509 -in '$T/ra1.pem' -noout -issuer -nameopt utf8 | grep -q '运营'"
check "valid 365 days by default" test "$(( ($(date -d "$(openssl x509 -in "$T/ra1.pem" -noout -enddate | cut -d= -f2)" +%s) - $(date +%s)) / 86400 ))" -ge 364
check "openssl verifies it under the operational CA" \
  quiet openssl verify -vfyopt distid:1234567812345678 -partial_chain -CAfile "$T/sub.pem" "$T/ra1.pem"
check "sm2verify: RA certificate signed by the operational CA" quiet node "$VERIFY" cert "$T/ra1.pem" "$T/sub.pem"
check "sm2verify: operational CA signed by the root" quiet node "$VERIFY" cert "$T/sub.pem" "$T/root.pem"
check "sm2verify: not signed by the root" bash -c "! node '$VERIFY' cert '$T/ra1.pem' '$T/root.pem' >/dev/null 2>&1"

# ---- what check refuses ----
echo '{"identity_card_number": "11010519491231002X"}' > "$T/id.json"
sm2_csr p "/C=CN/O=测试电子政务认证中心/CN=张三"
expect_exit 0 "a personal certificate" -- \
  g cert issue --profile personal-sign --csr "$T/p.csr" --info "$T/id.json" --out "$T/p.pem"
expect_exit 5 "a personal certificate is no RA certificate" -- g ra cert check --cert "$T/p.pem"
expect_err "personal-sign"
# The same RA request signed by someone else's CA.
openssl req -x509 -new -key "$T/ra.key" -sm3 -sigopt distid:1234567812345678 -utf8 \
  -subj "/C=CN/O=Other/CN=RA" -days 30 -out "$T/self.pem" 2>/dev/null
expect_exit 5 "a certificate not issued here" -- g ra cert check --cert "$T/self.pem"
expect_err "not issued by this CA"
expect_exit 3 "not a certificate" -- g ra cert check --cert "$T/ra.csr"
# An issuance that breaks the profile is refused and issues nothing.
sm2_csr noo "/C=CN/CN=RA 无机构"
n0=$(cert_count "$D")
expect_exit 6 "O is required by ra-comm" -- g ra cert issue --ra ra1 --csr "$T/noo.csr"
expect_exit 6 "longer than the profile allows" -- g ra cert issue --ra ra1 --csr "$T/ra.csr" --days 731
expect_exit 3 "a bad RA name" -- g ra cert issue --ra "RA 1" --csr "$T/ra.csr"
expect_exit 2 "--ra is required" -- g ra cert issue --csr "$T/ra.csr"
check "nothing issued by the refusals" test "$(cert_count "$D")" = "$n0"
expect_exit 0 "ra1 still accepted" -- g ra cert check --cert "$T/ra1.pem"

# ---- a newer certificate replaces the RA's older one ----
expect_exit 0 "re-issue for ra1" -- g ra cert issue --ra ra1 --csr "$T/ra.csr" --days 30 --out "$T/ra1b.pem"
S1B=$(cat "$T/out")
expect_exit 5 "the old one is refused" -- g ra cert check --cert "$T/ra1.pem"
expect_err "replaced by $S1B"
expect_exit 0 "the new one is accepted" -- g ra cert check --cert "$T/ra1b.pem"
expect_exit 0 "another RA" -- g ra cert issue --ra ra2 --csr "$T/ra2.csr" --out "$T/ra2.pem"
S2=$(cat "$T/out")
expect_exit 0 "its certificate is accepted" -- g ra cert check --cert "$T/ra2.pem"
expect_exit 0 "ra1's is still accepted" -- g ra cert check --cert "$T/ra1b.pem"
expect_exit 0 "list" -- g ra cert list --json
check "three RA certificates listed" test "$(jq length "$T/out")" = 3
check "ra1's current one" test "$(jq -r '.[] | select(.current) | select(.ra=="ra1") | .serial' "$T/out")" = "$S1B"
check "ra2's current one" test "$(jq -r '.[] | select(.current) | select(.ra=="ra2") | .serial' "$T/out")" = "$S2"
check "the replaced one is listed, not current" \
  test "$(jq -r --arg s "$S1" '.[] | select(.serial==$s) | .current' "$T/out")" = false
expect_exit 5 "expired after 30 days" -- faketime '+31 days' "$GMCA" --dir "$D" ra cert check --cert "$T/ra1b.pem"
expect_err "not valid now"

# ---- a revoked RA certificate is refused ----
expect_exit 0 "revoke ra2's" -- g cert revoke --serial "$S2" --reason keyCompromise
expect_exit 5 "revoked RA certificate refused" -- g ra cert check --cert "$T/ra2.pem"
expect_err "revoked"
expect_exit 0 "ra1's unaffected" -- g ra cert check --cert "$T/ra1b.pem"

# ---- without the engine nothing is issued ----
expect_exit 0 "deactivate" -- g deactivate
expect_exit 6 "no RA certificate without activation" -- g ra cert issue --ra ra3 --csr "$T/ra2.csr"
expect_err "not activated"
expect_exit 0 "check works without the engine" -- g ra cert check --cert "$T/ra1b.pem"

# ---- audit ----
expect_exit 0 "audit list" -- g audit list --json --event ra.cert
check "three ra.cert records" test "$(jq '[.[] | select(.outcome=="success")] | length' "$T/out")" = 3
check "the re-issue names what it replaces" \
  test "$(jq -r --arg s "$S1B" '.[] | select(.object==$s) | .detail | fromjson | .replaces' "$T/out")" = "$S1"
check "the bad RA name is audited" test "$(jq '[.[] | select(.outcome=="failure")] | length' "$T/out")" -ge 1
expect_exit 0 "audit chain verifies" -- g audit verify
finish
