#!/usr/bin/env bash
# Archive and destruction of CA keys (CPS §7.2.1.4, §7.2.1.9): an operational
# CA whose certificate has expired is archived with 3 custodians (refused
# while its certificate is valid and while the CA engine runs), leaves the
# device for a sealed 0600 archive file, is never unlocked again and signs
# no CRL; its archived key is destroyed only after 10 years of retention,
# with 3 custodians, from an archive file that authenticates. The CA and its
# certificate stay; every step and refusal is audited. Then the same archive
# through the vendor-style SDF library loaded with dlopen.
. "$(dirname "$0")/common.bash"
: "${GMCA_BUILD:?GMCA_BUILD must point at the build directory}"
SO=$GMCA_BUILD/libgmca-softsdf.so
D=$T/ca
g() { "$GMCA" --dir "$D" "$@"; }
# shares DIR i j ...: --share/--pin-file pairs of custodians i j ...
shares() {
  local d=$1 i; shift
  for i in "$@"; do printf '%s\n' --share "$d.shares/share-$i.json" --pin-file "$T/pin$i"; done
}
mapfile -t S3 < <(shares "$D" 1 3 5)
mapfile -t S2 < <(shares "$D" 2 4)
DN=(--root-dn "C=CN, O=归档测试, CN=归档测试根 CA" --sub-dn "C=CN, O=归档测试, CN=归档测试运营 CA")
state_of() { "$GMCA" --dir "$1" key status | jq -r --arg ca "$2" '.[] | select(.ca==$ca) | .state'; }
# audited DIR EVENT OUTCOME: the details of those audit records, one a line.
audited() { "$GMCA" --dir "$1" audit list --json | jq -r --arg ev "$2" --arg o "$3" '.[] | select(.event==$ev and .outcome==$o) | .detail'; }
later() { faketime "$1" "$GMCA" --dir "$D" "${@:2}"; }

expect_exit 0 "init with a 30-day operational CA" -- init_ca "$D" "${DN[@]}" --sub-days 30
A=$D/keys/archive/sub-2.key
check "sub key in the device" test -f "$D/keys/device/key-0002.sdk"
cp "$D/keys/device/key-0002.sdk" "$T/sealed-by-device"
expect_exit 0 "activate" -- activate "$D"
sm2_csr a "/C=CN/O=归档测试/CN=张三"
echo '{"identity_card_number": "11010519491231002X"}' > "$T/id.json"
expect_exit 0 "the sub CA issues while it lives" -- \
  g cert issue --profile personal-sign --csr "$T/a.csr" --info "$T/id.json" --days 10 --out "$T/a.pem"
f0=$(audit_failures "$D")

# ---- refusals: a key that may still sign, a running engine, bad arguments ----
expect_exit 6 "archive while the engine runs" -- later '+31 days' key archive --ca sub "${S3[@]}"
expect_err "deactivate"
expect_exit 0 "deactivate" -- g deactivate
expect_exit 6 "archive of a valid CA refused" -- g key archive --ca sub "${S3[@]}"
expect_err "valid until"
expect_exit 6 "archive of the root refused" -- g key archive --ca root "${S3[@]}"
expect_err "7.2.1.4"
expect_exit 2 "--ca is required" -- later '+31 days' key archive "${S3[@]}"
expect_exit 4 "unknown CA" -- later '+31 days' key archive --ca nosuch "${S3[@]}"
expect_exit 5 "two custodians are not enough" -- later '+31 days' key archive --ca sub "${S2[@]}"
check "still in the device after the refusals" test -f "$D/keys/device/key-0002.sdk"
check "no archive file after the refusals" test ! -e "$A"
check "state still active" test "$(state_of "$D" sub)" = active
check "refusals audited" test "$(audit_failures "$D")" -ge $((f0 + 5))

# ---- archive, a month on, when the certificate has expired ----
expect_exit 0 "archive the expired sub CA" -- later '+31 days' key archive --ca sub "${S3[@]}"
check "device key file gone" test ! -e "$D/keys/device/key-0002.sdk"
check "root key still in the device" test -f "$D/keys/device/key-0001.sdk"
check "archive file present" test -f "$A"
check "archive file is 0600" test "$(stat -c %a "$A")" = 600
check "archive directory is 0700" test "$(stat -c %a "$D/keys/archive")" = 700
check "state archived" test "$(state_of "$D" sub)" = archived
check "no clear private key in the archive" bash -c "! grep -qa 'PRIVATE KEY' '$A'"
# The device's sealed key (IV, ciphertext, tag) is wrapped again: its bytes do not appear.
check "the device blob is not in the archive as is" \
  bash -c "! xxd -p '$A' | tr -d '\n' | grep -qF \"\$(xxd -p -s 128 -l 60 '$T/sealed-by-device' | tr -d '\n')\""
check "header names the CA" bash -c "head -n 1 '$A' | grep -q '\"ca\":\"sub\"'"
audited "$D" key.archive success > "$T/arch"
check "archive audited with the custodians" grep -q '张三, 王五, 钱七' "$T/arch"
check "archive audited with its retention" grep -q '"retention_until":"20' "$T/arch"
expect_exit 6 "archive twice" -- later '+31 days' key archive --ca sub "${S3[@]}"
expect_err "already archived"
# An archive cut short after its record still has the device's copy: run
# again, it checks the archive file and erases that copy.
cp -p "$T/sealed-by-device" "$D/keys/device/key-0002.sdk"
expect_exit 0 "archive again finishes the erase" -- later '+31 days' key archive --ca sub "${S3[@]}"
check "device copy erased" test ! -e "$D/keys/device/key-0002.sdk"
check "the finish is audited" grep -q 'erased' <(audited "$D" key.archive success | tail -n 1)
check "archive file untouched by the finish" test -f "$A"

# ---- an archived key is never unlocked again ----
expect_exit 0 "activate again" -- activate "$D" 2 3 4
check "activation unlocked the root only" \
  test "$(audited "$D" key.activate success | tail -n 1 | jq -c .cas)" = '["root"]'
expect_exit 6 "no CRL from an archived key" -- g crl generate --ca sub
expect_err "archived"
expect_exit 6 "no certificate from an archived key" -- \
  g cert issue --profile personal-sign --csr "$T/a.csr" --info "$T/id.json" --days 1
expect_exit 0 "the root still signs its CRL" -- g crl generate --ca root
expect_exit 0 "deactivate" -- g deactivate

# ---- a superseded key: archived once everything it issued has expired ----
R=$T/rolled
mapfile -t R3 < <(shares "$R" 1 2 3)
expect_exit 0 "another CA" -- new_ca "$R"
expect_exit 0 "its sub CA issues for 10 days" -- "$GMCA" --dir "$R" cert issue --profile personal-sign \
  --csr "$T/a.csr" --info "$T/id.json" --days 10 --out "$T/r.pem"
expect_exit 0 "deactivate" -- "$GMCA" --dir "$R" deactivate
expect_exit 0 "roll the sub CA over" -- "$GMCA" --dir "$R" ca rollover --ca sub "${R3[@]}"
check "sub superseded" test "$(state_of "$R" sub)" = superseded
expect_exit 6 "superseded, but what it issued is still valid" -- \
  "$GMCA" --dir "$R" key archive --ca sub "${R3[@]}"
expect_err "still within validity"
expect_exit 0 "archived once that expired (its own certificate still valid)" -- \
  faketime '+11 days' "$GMCA" --dir "$R" key archive --ca sub "${R3[@]}"
check "superseded key archived" test "$(state_of "$R" sub)" = archived
check "previous state recorded" grep -q '"previous_state":"superseded"' <(audited "$R" key.archive success)
expect_exit 0 "activate after the archive" -- activate "$R"
check "the new sub CA and the root are active, the archived one not" \
  test "$(audited "$R" key.activate success | tail -n 1 | jq -c '.cas | sort')" = '["root","sub-g2"]'
expect_exit 0 "deactivate" -- "$GMCA" --dir "$R" deactivate

# ---- the same archive through a vendor SDF library (dlopen) ----
V=$T/vendor
mapfile -t V3 < <(shares "$V" 2 3 4)
expect_exit 0 "ceremony on the SDF library" -- init_ca "$V" "${DN[@]}" --sub-days 30 \
  --device-library "$SO" --device-config "$T/vendor-keys"
expect_exit 6 "dlopen: archive of a valid CA refused" -- "$GMCA" --dir "$V" key archive --ca sub "${V3[@]}"
expect_exit 0 "dlopen: archive a month on" -- faketime '+31 days' "$GMCA" --dir "$V" key archive --ca sub "${V3[@]}"
check "dlopen: device key gone" test ! -e "$T/vendor-keys/key-0002.sdk"
check "dlopen: root key stays" test -f "$T/vendor-keys/key-0001.sdk"
check "dlopen: archive file 0600" test "$(stat -c %a "$V/keys/archive/sub-2.key")" = 600
check "dlopen: state archived" test "$(state_of "$V" sub)" = archived
cp "$V/keys/archive/sub-2.key" "$T/vendor-archive.key"
expect_exit 0 "dlopen: destroy after 11 years" -- faketime '+11 years' "$GMCA" --dir "$V" key destroy --ca sub "${V3[@]}"
check "dlopen: archive gone" test ! -e "$V/keys/archive/sub-2.key"
expect_exit 0 "dlopen: audit chain verifies" -- "$GMCA" --dir "$V" audit verify

# ---- destruction: only after retention, with custodians, from an intact archive ----
expect_exit 6 "destroy before retention refused" -- later '+1 year' key destroy --ca sub "${S3[@]}"
expect_err "kept until"
expect_exit 6 "destroy of a key not archived refused" -- later '+11 years' key destroy --ca root "${S3[@]}"
expect_err "only an archived key"
expect_exit 5 "destroy with two custodians refused" -- later '+11 years' key destroy --ca sub "${S2[@]}"
cp "$A" "$T/archive.bak"
# Flip one byte of the sealed key.
printf '\x55' | dd of="$A" bs=1 seek=$(($(stat -c %s "$A") - 20)) count=1 conv=notrunc 2>/dev/null
expect_exit 7 "destroy from a tampered archive refused" -- later '+11 years' key destroy --ca sub "${S3[@]}"
expect_err "does not authenticate"
# An edited header (a later retention date) does not authenticate either.
cp "$T/archive.bak" "$A"
sed -i '1s/"archived_at":[0-9]*/"archived_at":1/' "$A"
expect_exit 7 "destroy from an archive with an edited header refused" -- \
  later '+11 years' key destroy --ca sub "${S3[@]}"
# Another installation's archive of its "sub" (same name, same index) in its place.
cp "$T/vendor-archive.key" "$A"
expect_exit 7 "destroy from another CA's archive refused" -- later '+11 years' key destroy --ca sub "${S3[@]}"
cp "$T/archive.bak" "$A"
check "archive kept after the refusals" cmp -s "$A" "$T/archive.bak"
check "still archived" test "$(state_of "$D" sub)" = archived
expect_exit 0 "destroy after 11 years" -- later '+11 years' key destroy --ca sub "${S3[@]}"
check "archive file gone" test ! -e "$A"
check "state destroyed" test "$(state_of "$D" sub)" = destroyed
expect_exit 6 "destroy twice" -- later '+11 years' key destroy --ca sub "${S3[@]}"
expect_err "already destroyed"
expect_exit 0 "the CA stays on record" -- g ca export --ca sub --out "$T/sub.pem"
check "its certificate is still the one of the archived key" bash -c "head -n 1 '$T/archive.bak' | grep -q \"\$(openssl x509 -in '$T/sub.pem' -outform DER | openssl dgst -sm3 -r | cut -d' ' -f1)\""
audited "$D" key.destroy success > "$T/destr"
check "destroy audited once" test "$(wc -l < "$T/destr")" = 1
check "destroy audited with the custodians" grep -q '张三, 王五, 钱七' "$T/destr"
check "destroy audited with the fingerprint" \
  test "$(jq -r .fingerprint "$T/destr")" = "$(jq -r .fingerprint "$T/arch")"
check "every refused destroy audited" test "$(audited "$D" key.destroy failure | wc -l)" = 7
expect_exit 0 "audit chain verifies" -- g audit verify

finish
