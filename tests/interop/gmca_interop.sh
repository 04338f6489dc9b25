#!/usr/bin/env bash
# Interoperability of what gmca produces with implementations we did not
# write: every certificate, CSR and CRL signature is checked by Node's
# sm-crypto over the TBS bytes with ID 1234567812345678; the openssl CLI
# parses and verifies the certificates; a CSR made by `openssl req` is
# accepted.
. "$GMCA_SRC/tests/e2e/common.bash"
V=$GMCA_SRC/tests/interop/sm2verify.mjs
[ -d "$GMCA_SRC/tests/interop/node_modules/sm-crypto" ] ||
  (cd "$GMCA_SRC/tests/interop" && npm install --no-audit --no-fund --silent)
D=$T/ca
g() { "$GMCA" --dir "$D" "$@"; }
new_ca "$D"
g ca export --ca root > "$T/root.pem"
g ca export --ca sub > "$T/sub.pem"

# CSRs from the openssl CLI, with the GM/T 0009 default ID.
sm2_csr a "/C=CN/O=某单位/OU=信息中心/CN=张三"
check "sm-crypto verifies the openssl CSR" node "$V" csr "$T/a.csr"
echo '{"identity_card_number": "11010519491231002X"}' > "$T/a.json"
expect_exit 0 "openssl CSR accepted" -- g cert issue --profile personal-sign --csr "$T/a.csr" \
  --info "$T/a.json" --out "$T/a.pem"
S=$(cat "$T/out")
sm2_csr b "/C=CN/O=某某科技有限公司/CN=www.example.gov.cn"
echo '{"san": {"dns": ["www.example.gov.cn", "example.gov.cn"]}}' > "$T/b.json"
expect_exit 0 "server certificate" -- g cert issue --profile device-ssl --csr "$T/b.csr" \
  --info "$T/b.json" --out "$T/b.pem"
sm2_csr c "/C=CN/O=某某科技有限公司/CN=某某科技有限公司"
echo '{"unified_social_credit_code": "91350100M000100Y43", "taxation_number": "91350100M000100Y43"}' > "$T/c.json"
expect_exit 0 "organisation encryption certificate" -- g cert issue --profile org-enc \
  --csr "$T/c.csr" --info "$T/c.json" --out "$T/c.pem"

for f in root sub a b c; do
  check "openssl x509 -text parses $f" openssl x509 -in "$T/$f.pem" -noout -text
done
check "sm-crypto: root self-signature" node "$V" cert "$T/root.pem"
check "sm-crypto: operational CA under root" node "$V" cert "$T/sub.pem" "$T/root.pem"
for f in a b c; do
  check "sm-crypto: $f under the operational CA" node "$V" cert "$T/$f.pem" "$T/sub.pem"
  check "openssl verify: $f under the operational CA" \
    openssl verify -vfyopt distid:1234567812345678 -partial_chain -CAfile "$T/sub.pem" "$T/$f.pem"
done
check "openssl verify: operational CA under root" \
  openssl verify -vfyopt distid:1234567812345678 -CAfile "$T/root.pem" "$T/sub.pem"
# (openssl verify -check_ss_sig cannot check the root: -vfyopt sets the ID only
# on the target, not on the trust store's copy; sm-crypto checks it above.)
check "sm-crypto refuses a leaf under the wrong issuer" bash -c "! node '$V' cert '$T/a.pem' '$T/root.pem' 2>/dev/null"

# CRLs: empty, then with an entry.
g crl generate >/dev/null
cp "$D/crl/sub.crl" "$T/empty.crl"
check "sm-crypto: empty CRL" node "$V" crl "$T/empty.crl" "$T/sub.pem"
g cert revoke --serial "$S" --reason keyCompromise >/dev/null
g crl generate >/dev/null
check "sm-crypto: CRL with an entry" node "$V" crl "$D/crl/sub.crl" "$T/sub.pem"
check "openssl parses the CRL" openssl crl -inform DER -in "$D/crl/sub.crl" -noout -text
check "sm-crypto refuses the CRL under the root" bash -c "! node '$V' crl '$D/crl/sub.crl' '$T/root.pem' 2>/dev/null"
g crl generate --ca root >/dev/null
check "sm-crypto: root CRL" node "$V" crl "$D/crl/root.crl" "$T/root.pem"

finish
