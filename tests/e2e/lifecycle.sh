#!/usr/bin/env bash
# The whole life of certificates through the real gmca binary: init, issue
# for several profiles, show/list/export, revoke, CRL, audit list/verify.
. "$(dirname "$0")/common.bash"
D=$T/ca
g() { "$GMCA" --dir "$D" "$@"; }

check "init" new_ca "$D"
check "state dir is 0700" test "$(stat -c %a "$T/ca")" = 700
check "key store is 0700" test "$(stat -c %a "$D/keys/device")" = 700
check "share files are 0600" test "$(stat -c %a "$D.shares/share-1.json")" = 600
expect_exit 0 "ca list" -- g ca list --json
check "two CAs" test "$(grep -c '"name"' "$T/out")" = 2
mkdir -p "$T/other.shares"
expect_exit 6 "init refuses an existing directory" -- "$GMCA" --dir "$D" init \
  $(custodian_args) --shares-out "$T/other.shares" --root-dn "C=CN, O=X, CN=Y" --sub-dn "C=CN, O=X, CN=Z"
expect_err "exists"

# A personal signature certificate with an identity card number.
sm2_csr zs "/C=CN/ST=北京市/O=某市政务服务中心/CN=张三"
echo '{"identity_card_number": "11010519491231002X"}' > "$T/zs.json"
expect_exit 0 "issue personal-sign" -- g cert issue --profile personal-sign \
  --csr "$T/zs.csr" --info "$T/zs.json" --out "$T/zs.pem"
S1=$(cat "$T/out")
check "serial is 128-bit hex" bash -c "[[ '$S1' =~ ^[0-9A-F]{32}$ ]]"
check "openssl reads the certificate" openssl x509 -in "$T/zs.pem" -noout -text
openssl x509 -in "$T/zs.pem" -noout -text > "$T/zs.txt"
check "subject in UTF-8" grep -q "CN = 张三\|CN=张三" <(openssl x509 -in "$T/zs.pem" -noout -subject -nameopt utf8,sep_comma_plus)
check "key usage" grep -q "Digital Signature, Non Repudiation" "$T/zs.txt"
check "CRL DP" grep -q "http://127.0.0.1:8080/crl/sub.crl" "$T/zs.txt"
check "OCSP AIA" grep -q "OCSP - URI:http://127.0.0.1:8080/ocsp" "$T/zs.txt"
check "identity card extension" grep -q "1.2.156.10260.4.1.1" "$T/zs.txt"
check "SM2-with-SM3" grep -q "SM2-with-SM3" "$T/zs.txt"
g ca export --ca sub > "$T/sub.pem"
g ca export --ca root > "$T/root.pem"
check "openssl verifies leaf under the operational CA" \
  openssl verify -vfyopt distid:1234567812345678 -partial_chain -CAfile "$T/sub.pem" "$T/zs.pem"
check "openssl verifies the operational CA under the root" \
  openssl verify -vfyopt distid:1234567812345678 -CAfile "$T/root.pem" "$T/sub.pem"

# An organisation certificate and a server certificate.
sm2_csr org "/C=CN/O=某某科技有限公司/CN=某某科技有限公司"
echo '{"unified_social_credit_code": "91350100M000100Y43", "organization_code": "M000100Y4"}' > "$T/org.json"
expect_exit 0 "issue org-sign" -- g cert issue --profile org-sign --csr "$T/org.csr" \
  --info "$T/org.json" --out "$T/org.pem"
S2=$(cat "$T/out")
sm2_csr web "/C=CN/O=某市人民政府/CN=www.example.gov.cn"
echo '{"san": {"dns": ["www.example.gov.cn"], "ip": ["192.0.2.10"]}}' > "$T/web.json"
expect_exit 0 "issue device-ssl" -- g cert issue --profile device-ssl --csr "$T/web.csr" \
  --info "$T/web.json" --days 90 --out "$T/web.pem"
S3=$(cat "$T/out")
check "SAN DNS and IP" bash -c "openssl x509 -in '$T/web.pem' -noout -ext subjectAltName | grep -q 'DNS:www.example.gov.cn, IP Address:192.0.2.10'"
check "90-day validity" bash -c "test \$(( \$(date -d \"\$(openssl x509 -in '$T/web.pem' -noout -enddate | cut -d= -f2)\" +%s) - \$(date -d \"\$(openssl x509 -in '$T/web.pem' -noout -startdate | cut -d= -f2)\" +%s) )) -eq $((90 * 86400))"

# Without --out the PEM goes to stdout.
sm2_csr p2 "/C=CN/CN=王五"
echo '{"identity_card_number": "440301198510210034"}' > "$T/p2.json"
expect_exit 0 "issue to stdout" -- g cert issue --profile personal-sign --csr "$T/p2.csr" --info "$T/p2.json"
check "stdout holds PEM" grep -q "BEGIN CERTIFICATE" "$T/out"
check "stderr names the serial" grep -q "issued serial" "$T/err"

# show / list / export
expect_exit 0 "show" -- g cert show --serial "$S1" --json
check "show: status valid" grep -q '"status": "valid"' "$T/out"
check "show: profile" grep -q '"profile": "personal-sign"' "$T/out"
expect_exit 0 "show lower-case serial" -- g cert show --serial "$(echo "$S1" | tr A-F a-f)"
expect_exit 0 "export DER" -- g cert export --serial "$S1" --der --out "$T/zs.der"
check "export equals issued" cmp "$T/zs.der" <(openssl x509 -in "$T/zs.pem" -outform DER)
expect_exit 0 "list all" -- g cert list --json
check "list: 6 certificates (2 CA + 4)" test "$(grep -c '"serial"' "$T/out")" = 6
expect_exit 0 "list by profile" -- g cert list --profile personal-sign --json
check "list by profile: 2" test "$(grep -c '"serial"' "$T/out")" = 2
expect_exit 0 "list by subject" -- g cert list --subject 张三 --json
check "list by subject: 1" test "$(grep -c '"serial"' "$T/out")" = 1
expect_exit 0 "list with limit" -- g cert list --limit 2 --json
check "limit 2" test "$(grep -c '"serial"' "$T/out")" = 2

# revoke and CRL
expect_exit 0 "revoke" -- g cert revoke --serial "$S2" --reason keyCompromise --invalidity-date 2026-01-01
expect_exit 6 "revoke twice" -- g cert revoke --serial "$S2" --reason superseded
expect_err "already revoked"
expect_exit 0 "list revoked" -- g cert list --status revoked --json
check "one revoked" test "$(grep -c '"serial"' "$T/out")" = 1
check "revoked has reason" grep -q '"reason": "keyCompromise"' "$T/out"
expect_exit 0 "crl generate" -- g crl generate
check "CRL file" test -s "$D/crl/sub.crl"
openssl crl -inform DER -in "$D/crl/sub.crl" -noout -text > "$T/crl.txt"
check "CRL lists the revoked serial" grep -q "Serial Number: $S2" "$T/crl.txt"
check "CRL reason" grep -q "Key Compromise" "$T/crl.txt"
check "CRL invalidity date" grep -q "Invalidity Date" "$T/crl.txt"
check "CRL number 1" grep -A1 "X509v3 CRL Number" "$T/crl.txt" | grep -q "1"
check "CRL v2" grep -q "Version 2" "$T/crl.txt"
check "CRL not listing valid certs" bash -c "! grep -q 'Serial Number: $S1' '$T/crl.txt'"
expect_exit 0 "revoke another" -- g cert revoke --serial "$S3" --reason cessationOfOperation
expect_exit 0 "second CRL" -- g crl generate --hours 6
openssl crl -inform DER -in "$D/crl/sub.crl" -noout -text > "$T/crl2.txt"
check "CRL number increases" bash -c "grep -A1 'X509v3 CRL Number' '$T/crl2.txt' | tail -n1 | grep -qw 2"
check "both entries" test "$(grep -c 'Serial Number' "$T/crl2.txt")" = 2
check "first CRL kept" test -s "$D/crl/sub/1.crl"
expect_exit 0 "root CRL" -- g crl generate --ca root
expect_exit 0 "crl list" -- g crl list --json
check "two CRLs listed" test "$(grep -c '"number"' "$T/out")" = 2

# audit
expect_exit 0 "audit verify" -- g audit verify
check "audit verify prints a count" grep -q "intact" "$T/out"
expect_exit 0 "audit list by event" -- g audit list --event cert.revoke --json
check "two revocations audited (plus the refused one)" test "$(grep -c '"seq"' "$T/out")" = 3
expect_exit 0 "audit list by prefix" -- g audit list --event 'cert.*' --json
check "actor recorded" grep -q '"actor": "e2e-operator"' "$T/out"
expect_exit 0 "audit list by actor" -- g audit list --actor nobody --json
check "no records for another actor" test "$(grep -c '"seq"' "$T/out")" = 0
expect_exit 0 "audit list since tomorrow" -- g audit list --since "$(date -u -d tomorrow +%F)" --json
check "nothing since tomorrow" test "$(grep -c '"seq"' "$T/out")" = 0

# init from a JSON file; the command line wins over the file.
cat > "$T/init.json" <<JSON
{"root_dn": "C=CN, O=配置文件测试, CN=配置根 CA", "sub_dn": "C=CN, O=配置文件测试, CN=配置运营 CA",
 "root_name": "cfgroot", "sub_name": "cfgsub", "root_days": 3650, "sub_days": 1825,
 "base_url": "https://ca.example.gov.cn/"}
JSON
expect_exit 0 "init from a file" -- init_ca "$T/cfg" --config "$T/init.json" --sub-days 1000
expect_exit 0 "CAs named by the file" -- "$GMCA" --dir "$T/cfg" ca list --json
check "root name from the file" grep -q '"name": "cfgroot"' "$T/out"
"$GMCA" --dir "$T/cfg" ca export --ca cfgsub > "$T/cfgsub.pem"
check "sub validity from the command line (1000 days)" bash -c "test \$(( (\$(date -d \"\$(openssl x509 -in '$T/cfgsub.pem' -noout -enddate | cut -d= -f2)\" +%s) - \$(date -d \"\$(openssl x509 -in '$T/cfgsub.pem' -noout -startdate | cut -d= -f2)\" +%s)) / 86400 )) -eq 1000"
check "CRL URL from the file's base URL" bash -c "openssl x509 -in '$T/cfgsub.pem' -noout -text | grep -q 'https://ca.example.gov.cn/crl/cfgroot.crl'"
echo '{"root_dn": "C=CN, CN=x", "sub_dn": "C=CN, CN=y", "colour": "blue"}' > "$T/bad.json"
expect_exit 3 "init refuses an unknown key in the file" -- init_ca "$T/cfg2" --config "$T/bad.json"
expect_err "colour"
check "nothing left behind" bash -c "! ls -d '$T'/cfg2 '$T'/cfg2.init* '$T'/cfg2.shares/* 2>/dev/null"
expect_exit 3 "init refuses a bad DN" -- init_ca "$T/cfg3" --root-dn "C=China, CN=x" --sub-dn "C=CN, CN=y"
check "nothing left behind after a bad DN" bash -c "! ls -d '$T'/cfg3 '$T'/cfg3.init* '$T'/cfg3.shares/* 2>/dev/null"

# Options a subcommand does not use are refused, not ignored.
expect_exit 2 "revoke does not take --ca" -- g cert revoke --serial "$S1" --reason superseded --ca root
expect_exit 2 "crl list does not take --hours" -- g crl list --hours 3
expect_exit 2 "ca list does not take --der" -- g ca list --der
expect_exit 3 "show: a malformed serial is bad input" -- g cert show --serial XYZ
expect_err "hex"

# An unknown CA is refused when its key is asked for, and that is audited.
f0=$(audit_failures "$D")
expect_exit 4 "issue under an unknown CA" -- g cert issue --ca nope --profile personal-sign \
  --csr "$T/zs.csr" --info "$T/zs.json"
check "unknown CA audited" test "$(audit_failures "$D")" = "$((f0 + 1))"

# A root cannot revoke itself; an operational CA whose certificate is
# revoked issues no more (but still signs CRLs for what it issued).
ROOT_SERIAL=$(g cert list --profile root-ca --json | sed -n 's/.*"serial": "\(.*\)".*/\1/p')
SUB_SERIAL=$(g cert list --profile sub-ca --json | sed -n 's/.*"serial": "\(.*\)".*/\1/p')
expect_exit 6 "a root does not revoke itself" -- g cert revoke --serial "$ROOT_SERIAL" --reason cACompromise
expect_err "root"
expect_exit 0 "revoke the operational CA" -- g cert revoke --serial "$SUB_SERIAL" --reason cACompromise
expect_exit 6 "a revoked CA issues no more" -- g cert issue --profile personal-sign \
  --csr "$T/zs.csr" --info "$T/zs.json"
expect_err "revoked"
expect_exit 0 "the root's CRL lists the operational CA" -- g crl generate --ca root
check "sub CA on the root CRL" bash -c "openssl crl -inform DER -in '$D/crl/root.crl' -noout -text | grep -q 'Serial Number: $SUB_SERIAL'"
expect_exit 0 "a revoked CA still signs its CRL" -- g crl generate

# A corrupted serial in the store stops CRL generation as an integrity fault.
db_sql "$D" "UPDATE certificates SET serial='ZZ' WHERE serial='$S2'"
expect_exit 7 "CRL refuses a non-hex serial in the store" -- g crl generate
expect_err "not hex"

# --help everywhere
for c in "" "init" "cert" "crl" "ca" "audit" "profile"; do
  expect_exit 0 "help $c" -- "$GMCA" $c --help
done
expect_exit 2 "unknown command" -- "$GMCA" frobnicate
finish
