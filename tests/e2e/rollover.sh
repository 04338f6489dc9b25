#!/usr/bin/env bash
# CA key rollover (CPS §6.8) through the real gmca binary: refusals (engine
# running, two custodians, unknown CA, bad or taken name, a new root that
# would end first), each audited and leaving nothing behind; a root rollover
# with its three certificates (NewWithNew, OldWithNew, NewWithOld) checked
# field by field with openssl and signature by signature with the
# independent SM2 verifier; an operational CA rollover under the new root;
# relying parties holding only the old root or only the new root validating
# certificates of both generations through the link certificates, and
# failing when the link is skipped; the superseded operational CA refusing
# to issue but still signing its CRL; rule 1; and a rollover through the
# dlopen vendor device.
. "$(dirname "$0")/common.bash"
: "${GMCA_BUILD:?GMCA_BUILD must point at the build directory}"
SO=$GMCA_BUILD/libgmca-softsdf.so
VERIFY=$GMCA_SRC/tests/interop/sm2verify.mjs
D=$T/ca
g() { "$GMCA" --dir "$D" "$@"; }
ROOT_DN="C=CN, O=更替测试认证中心, CN=更替测试根 CA"
ROOT2_DN="C=CN, O=更替测试认证中心, CN=更替测试根 CA G2"
SUB_DN="C=CN, O=更替测试认证中心, OU=运营, CN=更替测试运营 CA"
# roll DIR [options]: gmca ca rollover with custodians 1, 3 and 5 present.
roll() {
  local d=$1 i a=()
  shift
  for i in 1 3 5; do a+=(--share "$d.shares/share-$i.json" --pin-file "$T/pin$i"); done
  "$GMCA" --dir "$d" ca rollover "${a[@]}" "$@"
}
echo '{"identity_card_number": "11010519491231002X"}' > "$T/id.json"
# issue DIR NAME [options]: a personal-sign certificate for a fresh key, $T/NAME.pem.
issue() {
  sm2_csr "$2" "/C=CN/O=更替测试/CN=$2" &&
    "$GMCA" --dir "$1" cert issue --profile personal-sign --csr "$T/$2.csr" --info "$T/id.json" \
      --out "$T/$2.pem" "${@:3}"
}
verify() { node "$VERIFY" "$@" >/dev/null 2>&1; }
subject() { openssl x509 -in "$1" -noout -subject -nameopt RFC2253,-esc_msb | sed 's/^subject=//'; }
issuer() { openssl x509 -in "$1" -noout -issuer -nameopt RFC2253,-esc_msb | sed 's/^issuer=//'; }
pubkey() { openssl x509 -in "$1" -noout -pubkey; }
ski() { openssl x509 -in "$1" -noout -ext subjectKeyIdentifier | sed -n '2p' | tr -d ' '; }
aki() { openssl x509 -in "$1" -noout -ext authorityKeyIdentifier | sed -n '2p' | tr -d ' ' | sed 's/^keyid://'; }
end_of() { date -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%s; }
start_of() { date -d "$(openssl x509 -in "$1" -noout -startdate | cut -d= -f2)" +%s; }
valid_now() { [ "$(start_of "$1")" -le "$(date +%s)" ] && [ "$(end_of "$1")" -gt "$(date +%s)" ]; }
is_ca() { openssl x509 -in "$1" -noout -ext basicConstraints | grep -q 'CA:TRUE'; }
fails() { ! "$@"; }
quiet() { "$@" >/dev/null 2>&1; }
key_state() { "$GMCA" --dir "$1" key status | jq -r ".[] | select(.ca==\"$2\") | .state"; }

# link_ok CHILD ISSUER: ISSUER's key signed CHILD (SM2 with the GM/T 0009 ID,
# issuer name = ISSUER's subject, DER-compared), CHILD's authority key ID is
# ISSUER's subject key ID, ISSUER is a CA, and both are valid now.
link_ok() {
  verify cert "$1" "$2" && [ "$(aki "$1")" = "$(ski "$2")" ] && is_ca "$2" && valid_now "$1" &&
    valid_now "$2"
}
# chain_ok ANCHOR LEAF [CA ...]: a relying party that trusts only ANCHOR
# walks LEAF <- CA <- ... <- ANCHOR.
chain_ok() {
  local anchor=$1 i
  shift
  local c=("$@" "$anchor")
  verify cert "$anchor" || return 1
  for ((i = 0; i + 1 < ${#c[@]}; i++)); do link_ok "${c[i]}" "${c[i + 1]}" || return 1; done
}

# ---- a CA with a leaf under the first generation ----
expect_exit 0 "init" -- init_ca "$D" --root-dn "$ROOT_DN" --sub-dn "$SUB_DN"
expect_exit 0 "activate" -- activate "$D"
expect_exit 0 "issue A under sub" -- issue "$D" a
expect_exit 0 "issue R under sub" -- issue "$D" r
R=$(cat "$T/out")
g ca export --ca root > "$T/root.pem"
g ca export --ca sub > "$T/sub.pem"
check "A chains to the old root" chain_ok "$T/root.pem" "$T/a.pem" "$T/sub.pem"

# ---- refusals: audited, nothing changes ----
expect_exit 6 "refused while the engine runs" -- roll "$D" --ca root
expect_err "deactivate"
expect_exit 0 "deactivate" -- g deactivate
cas0=$(g ca list --json | grep -c '"name"')
keys0=$(ls "$D/keys/device" | wc -l)
f0=$(audit_failures "$D")
expect_exit 5 "two custodians are not enough" -- g ca rollover --ca root \
  --share "$D.shares/share-1.json" --pin-file "$T/pin1" --share "$D.shares/share-2.json" --pin-file "$T/pin2"
expect_exit 4 "unknown CA" -- roll "$D" --ca nosuch
expect_exit 3 "bad new name" -- roll "$D" --ca root --name "Root G2"
expect_exit 6 "new name taken" -- roll "$D" --ca root --name sub
expect_err "exists"
expect_exit 3 "a root has no parent" -- roll "$D" --ca root --parent sub
expect_exit 6 "a new root that would end before the old one" -- roll "$D" --ca root --days 100
expect_err "6.8"
expect_exit 6 "a DN the root profile refuses" -- roll "$D" --ca root --dn "C=CN, CN=无机构"
check "every refusal audited" test "$(audit_failures "$D")" -ge $((f0 + 7))
check "refusals add no CA" test "$(g ca list --json | grep -c '"name"')" = "$cas0"
check "refusals add no device key" test "$(ls "$D/keys/device" | wc -l)" = "$keys0"
check "refusals publish nothing" bash -c "! ls '$D'/certs/root-g* 2>/dev/null"
check "root still active" test "$(key_state "$D" root)" = active

# ---- root rollover: the three certificates of §6.8 ----
expect_exit 0 "root rollover" -- roll "$D" --ca root --dn "$ROOT2_DN"
cp "$T/out" "$T/roll-root.json"
check "new root named root-g2" test "$(jq -r .new "$T/roll-root.json")" = root-g2
check "the default CA stays sub" test "$(jq -r .default_ca "$T/roll-root.json")" = sub
check "a root rollover has no parent" test "$(jq -r '.parent // "none"' "$T/roll-root.json")" = none
g audit list --json | jq -r '.[] | select(.event=="key.rollover" and .outcome=="success") | .detail' > "$T/roll-audit.txt"
check "one successful rollover audited" test "$(wc -l < "$T/roll-audit.txt")" = 1
check "rollover audit names custodians 1, 3, 5" grep -q '张三.*王五.*钱七' "$T/roll-audit.txt"
check "rollover audit names the serials" grep -q "$(jq -r .old_with_new "$T/roll-root.json")" "$T/roll-audit.txt"
g ca export --ca root-g2 > "$T/nwn.pem"
g ca export --ca root-g2 --link old-with-new > "$T/own.pem"
g ca export --ca root-g2 --link new-with-old > "$T/nwo.pem"
check "NewWithNew published" cmp -s "$T/nwn.pem" "$D/certs/root-g2.pem"
check "OldWithNew published" cmp -s "$T/own.pem" "$D/certs/root-g2.old-with-new.pem"
check "NewWithOld published" cmp -s "$T/nwo.pem" "$D/certs/root-g2.new-with-old.pem"
check "export serials match the rollover" test \
  "$(openssl x509 -in "$T/own.pem" -noout -serial | cut -d= -f2)" = "$(jq -r .old_with_new "$T/roll-root.json")"
# NewWithNew: the new key, self-signed, the new DN.
check "NewWithNew subject is the new DN" test "$(subject "$T/nwn.pem")" = "CN=更替测试根 CA G2,O=更替测试认证中心,C=CN"
check "NewWithNew is self-issued" test "$(subject "$T/nwn.pem")" = "$(issuer "$T/nwn.pem")"
check "NewWithNew has a new key" test "$(pubkey "$T/nwn.pem")" != "$(pubkey "$T/root.pem")"
check "NewWithNew self-signature" verify cert "$T/nwn.pem"
# OldWithNew: the old subject and key, signed by the new key, ending with the old root.
check "OldWithNew subject is the old root's" test "$(subject "$T/own.pem")" = "$(subject "$T/root.pem")"
check "OldWithNew carries the old key" test "$(pubkey "$T/own.pem")" = "$(pubkey "$T/root.pem")"
check "OldWithNew issuer is the new root" test "$(issuer "$T/own.pem")" = "$(subject "$T/nwn.pem")"
check "OldWithNew AKI is the new root's SKI" test "$(aki "$T/own.pem")" = "$(ski "$T/nwn.pem")"
check "OldWithNew ends with the old root" test "$(end_of "$T/own.pem")" = "$(end_of "$T/root.pem")"
check "OldWithNew signed by the new key" verify cert "$T/own.pem" "$T/nwn.pem"
check "OldWithNew not signed by the old key" fails verify cert "$T/own.pem" "$T/root.pem"
# NewWithOld: the new subject and key, signed by the old key, within the old root's life.
check "NewWithOld subject is the new root's" test "$(subject "$T/nwo.pem")" = "$(subject "$T/nwn.pem")"
check "NewWithOld carries the new key" test "$(pubkey "$T/nwo.pem")" = "$(pubkey "$T/nwn.pem")"
check "NewWithOld issuer is the old root" test "$(issuer "$T/nwo.pem")" = "$(subject "$T/root.pem")"
check "NewWithOld AKI is the old root's SKI" test "$(aki "$T/nwo.pem")" = "$(ski "$T/root.pem")"
check "NewWithOld ends no later than the old root (rule 1)" test "$(end_of "$T/nwo.pem")" -le "$(end_of "$T/root.pem")"
check "NewWithOld signed by the old key" verify cert "$T/nwo.pem" "$T/root.pem"
check "NewWithOld not signed by the new key" fails verify cert "$T/nwo.pem" "$T/nwn.pem"
check "openssl: NewWithOld under the old root" \
  quiet openssl verify -vfyopt distid:1234567812345678 -CAfile "$T/root.pem" "$T/nwo.pem"
check "openssl: OldWithNew under the new root" \
  quiet openssl verify -vfyopt distid:1234567812345678 -CAfile "$T/nwn.pem" "$T/own.pem"
expect_exit 0 "key status" -- g key status
check "old root superseded" test "$(key_state "$D" root)" = superseded
check "new root active at a fresh index" quiet jq -e '.[] | select(.ca=="root-g2") | .state=="active" and .key=="device:3"' "$T/out"
expect_exit 6 "the old root cannot roll over again" -- roll "$D" --ca root
expect_err "superseded"
expect_exit 4 "an initial CA has no links" -- g ca export --ca root --link old-with-new

# ---- operational CA rollover: its new certificate from the new root ----
expect_exit 0 "sub rollover" -- roll "$D"
cp "$T/out" "$T/roll-sub.json"
check "new sub named sub-g2" test "$(jq -r .new "$T/roll-sub.json")" = sub-g2
check "sub-g2 certified by the old root's successor" test "$(jq -r .parent "$T/roll-sub.json")" = root-g2
check "sub-g2 is the default CA" test "$(jq -r .default_ca "$T/roll-sub.json")" = sub-g2
check "no link certificates for a sub" test "$(jq -r '.old_with_new // "none"' "$T/roll-sub.json")" = none
g ca export --ca sub-g2 > "$T/subg2.pem"
check "sub-g2 keeps the sub's DN" test "$(subject "$T/subg2.pem")" = "$(subject "$T/sub.pem")"
check "sub-g2 has a new key" test "$(pubkey "$T/subg2.pem")" != "$(pubkey "$T/sub.pem")"
check "sub-g2 under root-g2" link_ok "$T/subg2.pem" "$T/nwn.pem"
expect_exit 4 "a sub rollover makes no links" -- g ca export --ca sub-g2 --link new-with-old
expect_err "only a root rollover"
expect_exit 0 "ca list" -- g ca list
check "ca list shows the states and parents" bash -c "grep -qE '^sub-g2 +sub +active +root-g2 ' '$T/out' && grep -qE '^sub +sub +superseded +root ' '$T/out' && grep -qE '^root +root +superseded +- ' '$T/out'"
expect_exit 0 "ca list --json" -- g ca list --json
check "ca list --json: sub-g2 replaces sub" quiet jq -e '.[] | select(.name=="sub-g2") | .replaces=="sub" and .parent=="root-g2" and .default' "$T/out"
# Rule 1 in a rollover: a new operational CA may not outlive its parent.
expect_exit 6 "rule 1: a sub that would outlive its parent" -- \
  faketime '+4000 days' "$GMCA" --dir "$D" ca rollover --ca sub-g2 --days 3650 \
  --share "$D.shares/share-2.json" --pin-file "$T/pin2" --share "$D.shares/share-4.json" --pin-file "$T/pin4" \
  --share "$D.shares/share-5.json" --pin-file "$T/pin5"
expect_err "rule 1"

# ---- the next generation issues; both generations validate from either root ----
expect_exit 0 "activate after the rollovers" -- activate "$D" 2 3 4
expect_exit 0 "issue B (default CA)" -- issue "$D" b
check "B issued by sub-g2" link_ok "$T/b.pem" "$T/subg2.pem"
check "openssl: B under sub-g2" \
  quiet openssl verify -vfyopt distid:1234567812345678 -partial_chain -CAfile "$T/subg2.pem" "$T/b.pem"
check "old-root holder validates B through NewWithOld" chain_ok "$T/root.pem" "$T/b.pem" "$T/subg2.pem" "$T/nwo.pem"
check "new-root holder validates A through OldWithNew" chain_ok "$T/nwn.pem" "$T/a.pem" "$T/sub.pem" "$T/own.pem"
check "new-root holder validates B directly" chain_ok "$T/nwn.pem" "$T/b.pem" "$T/subg2.pem"
check "old-root holder still validates A directly" chain_ok "$T/root.pem" "$T/a.pem" "$T/sub.pem"
check "skipping NewWithOld fails" fails chain_ok "$T/root.pem" "$T/b.pem" "$T/subg2.pem"
check "skipping OldWithNew fails" fails chain_ok "$T/nwn.pem" "$T/a.pem" "$T/sub.pem"
check "a link the wrong way round fails" fails chain_ok "$T/root.pem" "$T/b.pem" "$T/subg2.pem" "$T/own.pem"
check "an old-root holder cannot take the new root as a leaf's issuer" fails chain_ok "$T/root.pem" "$T/b.pem" "$T/subg2.pem" "$T/nwn.pem"

# ---- the superseded operational CA: CRLs only, for what it issued ----
f1=$(audit_failures "$D")
expect_exit 6 "the old sub issues no more" -- issue "$D" c --ca sub
expect_err "superseded"
check "the refusal is audited" test "$(audit_failures "$D")" = $((f1 + 1))
expect_exit 0 "revoke a certificate of the old sub" -- g cert revoke --serial "$R" --reason superseded
expect_exit 0 "the old sub signs its CRL" -- g crl generate --ca sub
check "the old sub's CRL verifies (SM2, independent)" verify crl "$D/crl/sub.crl" "$T/sub.pem"
check "the old sub's CRL lists R" bash -c "openssl crl -inform DER -in '$D/crl/sub.crl' -noout -text | grep -q 'Serial Number: $R'"
expect_exit 0 "the old root signs its CRL" -- g crl generate --ca root
check "the old root's CRL verifies" verify crl "$D/crl/root.crl" "$T/root.pem"
expect_exit 0 "the new root signs its CRL" -- g crl generate --ca root-g2
check "the new root's CRL verifies" verify crl "$D/crl/root-g2.crl" "$T/nwn.pem"
# Rule 1 at issuance: nothing outlives the issuing CA's certificate.
expect_exit 6 "rule 1: a leaf that would outlive sub-g2" -- \
  faketime '+3400 days' "$GMCA" --dir "$D" cert issue --profile personal-sign --csr "$T/b.csr" \
  --info "$T/id.json" --days 365
expect_err "rule 1"
expect_exit 0 "deactivate" -- g deactivate
expect_exit 0 "the audit chain verifies" -- g audit verify

# ---- a rollover through the dlopen vendor device ----
V=$T/vendor
expect_exit 0 "init on the SDF library" -- init_ca "$V" --root-dn "$ROOT_DN" --sub-dn "$SUB_DN" \
  --device-library "$SO" --device-config "$T/vendor-keys"
expect_exit 0 "root rollover through dlopen" -- roll "$V" --ca root --name root2025
check "the new key is in the vendor device" test -f "$T/vendor-keys/key-0003.sdk"
"$GMCA" --dir "$V" ca export --ca root > "$T/vroot.pem"
"$GMCA" --dir "$V" ca export --ca root2025 > "$T/vnwn.pem"
"$GMCA" --dir "$V" ca export --ca root2025 --link old-with-new > "$T/vown.pem"
"$GMCA" --dir "$V" ca export --ca root2025 --link new-with-old > "$T/vnwo.pem"
check "dlopen NewWithNew" verify cert "$T/vnwn.pem"
check "dlopen OldWithNew" link_ok "$T/vown.pem" "$T/vnwn.pem"
check "dlopen NewWithOld" link_ok "$T/vnwo.pem" "$T/vroot.pem"
check "dlopen: same DN, told apart by key IDs" test "$(aki "$T/vnwo.pem")" != "$(ski "$T/vnwn.pem")"
expect_exit 0 "activate through dlopen" -- activate "$V" 3 4 5
expect_exit 0 "the superseded root signs a CRL through dlopen" -- "$GMCA" --dir "$V" crl generate --ca root
check "its CRL verifies" verify crl "$V/crl/root.crl" "$T/vroot.pem"
expect_exit 0 "deactivate the dlopen CA" -- "$GMCA" --dir "$V" deactivate
finish
