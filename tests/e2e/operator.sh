#!/usr/bin/env bash
# Operators (CPS §6.2): the custodians add operators — each with their own
# SM2 operator certificate (profile operator, clientAuth) issued from their
# own CSR — with the CA engine running and with it stopped; roles that one
# person may not hold together (§6.2.3), an unknown role, a name or key
# already an operator's, too few custodians are refused, audited and leave
# nothing behind; a CA made before the operator profile shipped gets it at
# first use; disabling an operator revokes their certificate; the audit
# chain verifies.
. "$(dirname "$0")/common.bash"
D=$T/ca
g() { "$GMCA" --dir "$D" "$@"; }
quiet() { "$@" >/dev/null; }
cust() { local i; for i in "$@"; do printf '%s\n' --share "$D.shares/share-$i.json" --pin-file "$T/pin$i"; done; }
mapfile -t C3 < <(cust 1 2 3)
mapfile -t C2 < <(cust 4 5)
ops() { g operator list --json | jq length; }
add_detail() { g audit list --json | jq -r '[.[] | select(.event=="operator.add")][-1].detail'; }
last_event() { g audit list --json | jq -r '.[-1] | "\(.event) \(.outcome)"'; }

expect_exit 0 "new CA" -- new_ca "$D"
g ca export --ca sub > "$T/sub.pem"
sm2_csr alice "/C=CN/O=测试电子政务认证中心/OU=业务部/CN=张业务"
sm2_csr bob "/C=CN/O=测试电子政务认证中心/CN=李审核"
sm2_csr carol "/C=CN/O=测试电子政务认证中心/CN=王审计"
sm2_csr dave "/C=CN/O=测试电子政务认证中心/CN=赵超管"

# ---- with the CA engine running ----
expect_exit 0 "add alice (engine running)" -- \
  g operator add --name alice --role business_operator --csr "$T/alice.csr" --out "$T/alice.pem" "${C3[@]}"
check "summary names the roles" grep -q "operator alice added: roles business_operator" "$T/out"
openssl x509 -in "$T/alice.pem" -noout -text -nameopt utf8 > "$T/alice.txt"
check "EKU clientAuth" bash -c "grep -A1 'X509v3 Extended Key Usage' '$T/alice.txt' | tail -n 1 | grep -qx ' *TLS Web Client Authentication'"
check "key usage digitalSignature" bash -c "grep -A1 'X509v3 Key Usage: critical' '$T/alice.txt' | tail -n 1 | grep -qx ' *Digital Signature'"
check "subject is the CSR's" grep -q "Subject: C=CN, O=测试电子政务认证中心, OU=业务部, CN=张业务" "$T/alice.txt"
check "not a CA" grep -q "CA:FALSE" "$T/alice.txt"
check "openssl verifies it under the operational CA" \
  quiet openssl verify -vfyopt distid:1234567812345678 -partial_chain -CAfile "$T/sub.pem" "$T/alice.pem"
check "fingerprint is SM3 of the DER" test "$(g operator list --json | jq -r '.[0].fingerprint')" = \
  "$(openssl x509 -in "$T/alice.pem" -outform DER | openssl dgst -sm3 -r | cut -d' ' -f1)"
check "audited operator.add" test "$(g audit list --json | jq -r '[.[] | select(.event=="operator.add")][-1].outcome')" = success
check "audit names the custodians" grep -q 张三 <(add_detail)
expect_exit 0 "add bob: template and business admin together" -- \
  g operator add --name bob --role template_admin,business_admin --csr "$T/bob.csr" --out "$T/bob.pem" --days 30 "${C3[@]}"
check "30 days asked, 30 days given" test "$(( ($(date -d "$(openssl x509 -in "$T/bob.pem" -noout -enddate | cut -d= -f2)" +%s) - $(date +%s)) / 86400 ))" -ge 29

# ---- refusals: audited, nothing added, no file written ----
n0=$(cert_count "$D")
o0=$(ops)
expect_exit 6 "audit admin and business admin" -- \
  g operator add --name carol --role audit_admin,business_admin --csr "$T/carol.csr" --out "$T/carol.pem" "${C3[@]}"
expect_err "CPS §6.2.3"
check "conflict audited" test "$(last_event)" = "operator.add failure"
expect_exit 6 "super admin and business operator" -- \
  g operator add --name dave --role super_admin,business_operator --csr "$T/dave.csr" --out "$T/dave.pem" "${C3[@]}"
expect_exit 3 "an unknown role" -- \
  g operator add --name carol --role auditor --csr "$T/carol.csr" --out "$T/carol.pem" "${C3[@]}"
expect_err "unknown role"
check "unknown role audited" test "$(last_event)" = "operator.add failure"
expect_exit 6 "a name already taken" -- \
  g operator add --name alice --role audit_admin --csr "$T/carol.csr" --out "$T/carol.pem" "${C3[@]}"
expect_err "exists"
check "duplicate audited" test "$(last_event)" = "operator.add failure"
expect_exit 6 "alice's key for another operator" -- \
  g operator add --name alice2 --role audit_admin --csr "$T/alice.csr" --out "$T/carol.pem" "${C3[@]}"
expect_err "already operator alice's"
expect_exit 3 "a name with a control character" -- \
  g operator add --name $'car\tol' --role audit_admin --csr "$T/carol.csr" --out "$T/carol.pem" "${C3[@]}"
expect_exit 5 "too few custodians" -- \
  g operator add --name carol --role audit_admin --csr "$T/carol.csr" --out "$T/carol.pem" "${C2[@]}"
cp "$T/pin2" "$T/pin2.good"; echo "WrongPin12345" > "$T/pin2"
expect_exit 5 "a wrong PIN" -- \
  g operator add --name carol --role audit_admin --csr "$T/carol.csr" --out "$T/carol.pem" "${C3[@]}"
cp "$T/pin2.good" "$T/pin2"
echo "not a CSR" > "$T/junk.csr"
expect_exit 3 "not a CSR" -- \
  g operator add --name carol --role audit_admin --csr "$T/junk.csr" --out "$T/carol.pem" "${C3[@]}"
check "bad CSR audited" test "$(last_event)" = "operator.add failure"
sm2_csr noo "/C=CN/CN=无机构"
expect_exit 6 "O is required by the operator profile" -- \
  g operator add --name carol --role audit_admin --csr "$T/noo.csr" --out "$T/carol.pem" "${C3[@]}"
touch "$T/exists.pem"
expect_exit 6 "--out exists" -- \
  g operator add --name carol --role audit_admin --csr "$T/carol.csr" --out "$T/exists.pem" "${C3[@]}"
expect_exit 2 "--role is required" -- g operator add --name carol --csr "$T/carol.csr" --out "$T/carol.pem" "${C3[@]}"
expect_exit 2 "custodians are required" -- g operator add --name carol --role audit_admin --csr "$T/carol.csr" --out "$T/carol.pem"
check "no certificate issued by the refusals" test "$(cert_count "$D")" = "$n0"
check "no operator added by the refusals" test "$(ops)" = "$o0"
check "no certificate file written" test ! -e "$T/carol.pem"

# ---- with the CA engine stopped: the custodians' keys sign in this process ----
expect_exit 0 "deactivate" -- g deactivate
expect_exit 0 "add carol (engine stopped)" -- \
  g operator add --name carol --role audit_admin --csr "$T/carol.csr" --out "$T/carol.pem" "${C3[@]}"
check "carol's certificate verifies" \
  quiet openssl verify -vfyopt distid:1234567812345678 -partial_chain -CAfile "$T/sub.pem" "$T/carol.pem"
# A CA made before the operator profile shipped takes it at first use.
rm "$D/profiles/operator.json"
expect_exit 0 "add dave (profile missing from the CA)" -- \
  g operator add --name dave --role super_admin --csr "$T/dave.csr" --out "$T/dave.pem" "${C3[@]}"
check "profile copied in" cmp -s "$D/profiles/operator.json" "$GMCA_SRC/conf/profiles/operator.json"
check "the copy is audited" test "$(g audit list --json | jq -r '[.[] | select(.event=="config.change")][-1].object')" = operator

# ---- list ----
expect_exit 0 "list" -- g operator list --json
check "four operators" test "$(jq length "$T/out")" = 4
check "bob's roles in canonical order" test "$(jq -r '.[] | select(.name=="bob") | .roles' "$T/out")" = business_admin,template_admin
check "all active" test "$(jq -r '[.[] | .status] | unique | join(",")' "$T/out")" = active
check "serial of alice is her certificate's" test "$(jq -r '.[] | select(.name=="alice") | .serial' "$T/out")" = \
  "$(openssl x509 -in "$T/alice.pem" -noout -serial | cut -d= -f2)"
expect_exit 0 "list as text" -- g operator list
check "text lists carol" grep -q "^carol .*audit_admin .*active" "$T/out"

# ---- disable ----
SA=$(openssl x509 -in "$T/alice.pem" -noout -serial | cut -d= -f2)
expect_exit 0 "disable alice" -- g operator disable alice "${C3[@]}"
check "alice disabled" test "$(g operator list --json | jq -r '.[] | select(.name=="alice") | .status')" = disabled
check "her certificate revoked" test "$(g cert show --serial "$SA" --json | jq -r .status)" = revoked
check "as privilegeWithdrawn" bash -c "\"$GMCA\" --dir \"$D\" cert show --serial $SA --json | grep -qi privilegeWithdrawn"
check "disable audited" test "$(last_event)" = "operator.disable success"
expect_exit 6 "disable alice again" -- g operator disable alice "${C3[@]}"
expect_err "already disabled"
check "second disable audited as a failure" test "$(last_event)" = "operator.disable failure"
expect_exit 4 "disable nobody" -- g operator disable nobody "${C3[@]}"
expect_exit 5 "disable with too few custodians" -- g operator disable bob "${C2[@]}"
check "bob still active" test "$(g operator list --json | jq -r '.[] | select(.name=="bob") | .status')" = active
expect_exit 2 "disable needs a name" -- g operator disable "${C3[@]}"

expect_exit 0 "audit chain verifies" -- g audit verify
finish
