#!/usr/bin/env bash
# CPS-facing rejections through the real binary: each bad input gives a
# clear one-line error and a non-zero exit, leaves the certificates as they
# were, adds exactly one audit record (a failure), and the chain verifies.
. "$(dirname "$0")/common.bash"
D=$T/ca
g() { "$GMCA" --dir "$D" "$@"; }
new_ca "$D"

sm2_csr good "/C=CN/O=某单位/CN=张三"
echo '{"identity_card_number": "11010519491231002X"}' > "$T/id.json"
openssl req -in "$T/good.csr" -outform DER -out "$T/good.der"

# Bad CSRs.
head -c 300 /dev/urandom > "$T/garbage.csr"
head -c 100 "$T/good.der" > "$T/truncated.csr"
cp "$T/good.der" "$T/trailing.csr"; printf '\0' >> "$T/trailing.csr"
: > "$T/empty.csr"
head -c 20000 /dev/zero | tr '\0' 'A' > "$T/oversized.csr"
# Flip one byte inside the signature (the last bytes of the DER).
cp "$T/good.der" "$T/badsig.csr"
len=$(stat -c %s "$T/badsig.csr")
printf '\x55' | dd of="$T/badsig.csr" bs=1 seek=$((len - 5)) conv=notrunc 2>/dev/null
openssl req -new -newkey rsa:2048 -nodes -keyout "$T/rsa.key" -subj "/C=CN/CN=rsa" \
  -out "$T/rsa.csr" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$T/p256.key" \
  -subj "/C=CN/CN=p256" -out "$T/p256.csr" 2>/dev/null
# SM2 signed with OpenSSL 3.0's empty default ID: not GM/T 0009 conformant.
openssl req -new -key "$T/good.key" -sm3 -subj "/C=CN/CN=noid" -out "$T/noid.csr"
# A DN missing CN, which personal-sign requires.
openssl req -new -key "$T/good.key" -sm3 -sigopt distid:1234567812345678 \
  -subj "/C=CN/O=某单位" -out "$T/nocn.csr"

reject() { # reject EXIT WHAT MESSAGE -- gmca args...
  local want=$1 what=$2 msg=$3; shift 4
  local c0 a0 f0
  c0=$(cert_count "$D"); a0=$(audit_work_count "$D"); f0=$(audit_failures "$D")
  expect_exit "$want" "$what" -- g "$@"
  expect_err "$msg"
  check "$what: no certificate added" test "$(cert_count "$D")" = "$c0"
  check "$what: one audit record (besides key activation)" test "$(audit_work_count "$D")" = "$((a0 + 1))"
  check "$what: audited as failure" test "$(audit_failures "$D")" = "$((f0 + 1))"
  check "$what: the last record is that failure" test "$(audit_last_outcome "$D")" = failure
}
issue() { echo cert issue --profile personal-sign --info "$T/id.json" --csr "$1"; }

reject 3 "garbage CSR" "CSR" -- $(issue "$T/garbage.csr")
reject 3 "truncated CSR" "CSR" -- $(issue "$T/truncated.csr")
reject 3 "trailing byte" "trailing" -- $(issue "$T/trailing.csr")
reject 3 "empty CSR" "CSR" -- $(issue "$T/empty.csr")
reject 3 "oversized CSR" "larger than" -- $(issue "$T/oversized.csr")
reject 3 "wrong signature" "does not verify" -- $(issue "$T/badsig.csr")
reject 3 "RSA CSR" "CSR" -- $(issue "$T/rsa.csr")
reject 3 "P-256 CSR" "CSR" -- $(issue "$T/p256.csr")
reject 3 "empty SM2 ID" "1234567812345678" -- $(issue "$T/noid.csr")
reject 6 "DN without CN" "CN is required" -- $(issue "$T/nocn.csr")
reject 4 "unknown profile" "profile" -- cert issue --profile no-such --csr "$T/good.csr"
reject 4 "missing CSR file" "missing.csr" -- cert issue --profile personal-sign --csr "$T/missing.csr"
echo '{"identity_card_number": "110105194912310021"}' > "$T/badid.json"
reject 3 "bad identity check digit" "identity_card_number" -- cert issue --profile personal-sign \
  --csr "$T/good.csr" --info "$T/badid.json"
echo '{"identity_card_number": "11010519491231002X", "x": 1}' > "$T/unknown.json"
reject 3 "unknown subject-info key" "x" -- cert issue --profile personal-sign \
  --csr "$T/good.csr" --info "$T/unknown.json"
reject 6 "missing required extension" "identity_card_number" -- cert issue \
  --profile personal-sign --csr "$T/good.csr"
reject 6 "validity over the profile maximum" "valid" -- cert issue --profile personal-sign \
  --csr "$T/good.csr" --info "$T/id.json" --days 5000
reject 4 "revoke unknown serial" "not found" -- cert revoke --serial 0123456789ABCDEF --reason keyCompromise
reject 3 "revoke non-hex serial" "hex" -- cert revoke --serial XYZ --reason keyCompromise

# Not activated: refused (6), audited, nothing issued.
"$GMCA" --dir "$D" deactivate >/dev/null
c0=$(cert_count "$D"); a0=$(audit_count "$D")
expect_exit 6 "not activated" -- "$GMCA" --dir "$D" $(issue "$T/good.csr")
expect_err "not activated"
check "not activated: nothing issued" test "$(cert_count "$D")" = "$c0"
check "not activated: audited" test "$(audit_count "$D")" = "$((a0 + 1))"
check "not activated: failure" test "$(audit_last_outcome "$D")" = failure
activate "$D" >/dev/null

# Revoked serial: the second revocation is refused.
expect_exit 0 "issue for revocation" -- g $(issue "$T/good.csr") --out "$T/r.pem"
S=$(cat "$T/out")
expect_exit 0 "revoke" -- g cert revoke --serial "$S" --reason superseded
reject 6 "revoke a revoked serial" "already revoked" -- cert revoke --serial "$S" --reason keyCompromise
# An unknown reason is a usage error, not audited input.
expect_exit 2 "unknown reason" -- g cert revoke --serial "$S" --reason sleepy

# Search filters from the command line are capped before they reach SQL.
expect_exit 3 "oversized subject filter" -- g cert list --subject "$(head -c 3000 /dev/zero | tr '\0' a)"
expect_err "subject filter"
expect_exit 3 "oversized actor filter" -- g audit list --actor "$(head -c 400 /dev/zero | tr '\0' a)"
expect_err "actor"
expect_exit 2 "operator name over its cap" -- "$GMCA" --dir "$D" --operator "$(head -c 400 /dev/zero | tr '\0' a)" cert list

# PINs never from arguments: there is no such option.
expect_exit 2 "no PIN option" -- "$GMCA" --dir "$D" activate --pass secret

expect_exit 0 "audit chain still verifies" -- g audit verify

# Tampering with the audit table is found, naming the record.
db_sql "$D" "UPDATE audit SET actor='mallory' WHERE seq=3" >/dev/null
expect_exit 7 "tampered audit record" -- g audit verify
expect_err "3"
finish
