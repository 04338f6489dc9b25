#!/usr/bin/env bash
# The CA engine's side of the RA trust boundary (issue 4, DESIGN.md): an
# engine activated without --direct-issue signs no certificate a local
# process asks for (exit 6, audited on both sides, nothing issued) but
# still signs CRLs; the custodians' shares given again (--share/--pin-file
# on cert issue and ra cert issue) authorise an issuance, which the engine
# records as engine.sign with "custodians"; wrong shares are refused. An
# engine started with --direct-issue says so in key.activate. The audit
# chain verifies at the end.
. "$(dirname "$0")/common.bash"
D=$T/ca
g() { "$GMCA" --dir "$D" "$@"; }
audited() { g audit list --json --event "$1" | jq -c "[.[] | select(.outcome==\"$2\")]"; }
count() { g audit list --json --event "$1" | jq "[.[] | select(.outcome==\"$2\")] | length"; }
shares() { local i; for i in "$@"; do printf '%s\n' --share "$D.shares/share-$i.json" --pin-file "$T/pin$i"; done; }
mapfile -t C123 < <(shares 1 2 3)
mapfile -t C245 < <(shares 2 4 5)

expect_exit 0 "init" -- init_ca "$D" --root-dn "C=CN, O=测试电子政务认证中心, CN=测试 SM2 根 CA" \
  --sub-dn "C=CN, O=测试电子政务认证中心, OU=运营, CN=测试 SM2 运营 CA"
echo '{"identity_card_number": "11010519491231002X"}' > "$T/id.json"
sm2_csr p "/C=CN/O=测试电子政务认证中心/CN=张三"
sm2_csr ra "/C=CN/O=测试电子政务认证中心/OU=注册中心/CN=RA 系统"
issue() { g cert issue --profile personal-sign --csr "$T/p.csr" --info "$T/id.json" "$@"; }

# ---- an engine without --direct-issue ----
expect_exit 0 "activate without --direct-issue" -- g activate "${C123[@]}"
check "key.activate says direct_issue false" \
  test "$(audited key.activate success | jq -r '.[-1].detail | fromjson | .direct_issue')" = false
c0=$(cert_count "$D")
f0=$(count cert.issue failure)
e0=$(count engine.request failure)
expect_exit 6 "cert issue refused by the engine" -- issue
expect_err "certificates are issued for approved applications only (RA); or with the custodians' authorisation"
check "nothing issued" test "$(cert_count "$D")" = "$c0"
check "refusal audited by the command (cert.issue)" test "$(count cert.issue failure)" = $((f0 + 1))
check "refusal audited by the engine (engine.request)" test "$(count engine.request failure)" = $((e0 + 1))
check "the engine names the refused operation" \
  test "$(audited engine.request failure | jq -r '.[-1].detail | fromjson | .op')" = S
expect_exit 6 "ra cert issue refused too" -- g ra cert issue --ra ra1 --csr "$T/ra.csr"
expect_err "approved applications only"
check "still nothing issued" test "$(cert_count "$D")" = "$c0"
check "ra.cert refusal audited" test "$(count ra.cert failure)" -ge 1
rm -f "$D/crl/sub.crl"
expect_exit 0 "CRLs are still signed" -- g crl generate
check "the CRL is published" test -s "$D/crl/sub.crl"

# ---- the custodians authorise ----
a0=$(count key.activate success)
s0=$(count engine.sign success)
expect_exit 0 "cert issue with three custodians" -- issue "${C245[@]}" --out "$T/p.pem"
SP=$(cat "$T/out")
check "issued" test "$(cert_count "$D")" = $((c0 + 1))
check "authorisation audited (key.activate)" test "$(count key.activate success)" = $((a0 + 1))
check "it names the custodians and the engine" \
  test "$(audited key.activate success | jq -r '.[-1].detail | fromjson | .authorisation')" = engine
check "the engine recorded what it signed" test "$(count engine.sign success)" = $((s0 + 1))
check "engine.sign names the serial and the custodians" \
  test "$(audited engine.sign success | jq -r '.[-1] | .object + " " + (.detail | fromjson | .authorisation)')" = "$SP custodians"
g ca export --ca sub > "$T/sub.pem"
check "the certificate verifies under the operational CA" \
  openssl verify -vfyopt distid:1234567812345678 -partial_chain -CAfile "$T/sub.pem" "$T/p.pem"

# Two custodians are not enough; a wrong PIN is refused; nothing issued either time.
mapfile -t C12 < <(shares 1 2)
expect_exit 5 "two custodians are not enough" -- issue "${C12[@]}"
echo "wrong-pin-000000" > "$T/badpin"
expect_exit 5 "a wrong PIN" -- issue --share "$D.shares/share-1.json" --pin-file "$T/badpin" \
  --share "$D.shares/share-2.json" --pin-file "$T/pin2" --share "$D.shares/share-3.json" --pin-file "$T/pin3"
check "nothing more issued" test "$(cert_count "$D")" = $((c0 + 1))
check "the refused authorisations are audited" test "$(count key.activate failure)" -ge 2
expect_exit 2 "--share is for issue only" -- g cert show --serial "$SP" --share "$D.shares/share-1.json"

# ---- the RA certificate, with the custodians, against the running engine ----
expect_exit 0 "ra cert issue with custodians" -- g ra cert issue --ra ra1 --csr "$T/ra.csr" "${C123[@]}" --out "$T/ra1.pem"
SR=$(cat "$T/out")
expect_exit 0 "the RA certificate is accepted" -- g ra cert check --cert "$T/ra1.pem"
check "one transaction: ra.cert names it" \
  test "$(audited ra.cert success | jq -r '.[-1].object')" = "$SR"
check "engine.sign for it" \
  test "$(audited engine.sign success | jq -r '.[-1].object')" = "$SR"

# ---- an engine started with --direct-issue ----
expect_exit 0 "deactivate" -- g deactivate
expect_exit 0 "activate with --direct-issue" -- g activate --direct-issue "${C123[@]}"
check "key.activate says direct_issue true" \
  test "$(audited key.activate success | jq -r '.[-1].detail | fromjson | .direct_issue')" = true
expect_exit 0 "cert issue without custodians" -- issue --out "$T/p2.pem"
check "engine.sign says direct" \
  test "$(audited engine.sign success | jq -r '.[-1].detail | fromjson | .authorisation')" = direct
expect_exit 0 "deactivate again" -- g deactivate

# ---- no engine: the custodians' shares activate in the command itself ----
expect_exit 0 "cert issue with custodians and no engine" -- issue "${C123[@]}" --out "$T/p3.pem"
check "issued in-process" test -s "$T/p3.pem"

expect_exit 0 "audit chain verifies" -- g audit verify
finish
