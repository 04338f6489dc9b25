#!/usr/bin/env bash
# CA keys behind the crypto device with 3-of-5 custody (CPS §7.2.1.1,
# §7.2.1.7, §7.2.1.8, §7.4.1): the key ceremony, activation with any 3
# shares, refusals (2 shares, a wrong PIN, another CA's share, a tampered
# share or key store), the CA engine holding the keys until deactivate, and
# the whole CA run again through a vendor-style SDF library loaded with
# dlopen. Every refusal is audited; no PIN and no private key is on disk.
. "$(dirname "$0")/common.bash"
: "${GMCA_BUILD:?GMCA_BUILD must point at the build directory}"
SO=$GMCA_BUILD/libgmca-softsdf.so
D=$T/ca
g() { "$GMCA" --dir "$D" "$@"; }
DN=(--root-dn "C=CN, O=托管测试, CN=托管测试根 CA" --sub-dn "C=CN, O=托管测试, CN=托管测试运营 CA")
echo '{"identity_card_number": "11010519491231002X"}' > "$T/id.json"
sm2_csr a "/C=CN/O=托管测试/CN=张三"
issue() { "$GMCA" --dir "$1" cert issue --profile personal-sign --csr "$T/a.csr" --info "$T/id.json" "${@:2}"; }

# ---- the key ceremony ----
expect_exit 0 "ceremony" -- init_ca "$D" "${DN[@]}"
check "five shares reported" test "$(grep -c '^share for' "$T/out")" = 5
for i in 1 2 3 4 5; do
  check "share $i is 0600" test "$(stat -c %a "$D.shares/share-$i.json")" = 600
done
expect_exit 0 "audit list" -- g audit list --json
check "ceremony audited with the custodians" grep -q '钱七' "$T/out"
check "ceremony event" grep -q '"key.ceremony"' "$T/out"
# A weak PIN is refused by rule, before anything is made.
mkdir -p "$T/weak.shares"
echo "password" > "$T/weakpin"
expect_exit 6 "weak PIN refused" -- "$GMCA" --dir "$T/weak" init "${DN[@]}" --shares-out "$T/weak.shares" \
  --custodian 甲 --pin-file "$T/pin1" --custodian 乙 --pin-file "$T/weakpin" \
  --custodian 丙 --pin-file "$T/pin3" --custodian 丁 --pin-file "$T/pin4" --custodian 戊 --pin-file "$T/pin5"
expect_err "7.4.1"
check "nothing made after a weak PIN" bash -c "! ls -d '$T'/weak '$T'/weak.init* '$T'/weak.shares/* 2>/dev/null"
echo "Zhangsan2024" > "$T/namepin"
expect_exit 6 "PIN with the custodian's name refused" -- "$GMCA" --dir "$T/weak" init "${DN[@]}" \
  --shares-out "$T/weak.shares" --custodian zhangsan --pin-file "$T/namepin" \
  --custodian 乙 --pin-file "$T/pin2" --custodian 丙 --pin-file "$T/pin3"
expect_err "name"

# ---- activation: refusals, each audited, nothing signed ----
f0=$(audit_failures "$D")
expect_exit 5 "two custodians are not enough" -- activate "$D" 1 2
expect_err "3 of 5"
echo "Wrong9PinAbc" > "$T/wrongpin"
expect_exit 5 "wrong PIN" -- g activate --share "$D.shares/share-1.json" --pin-file "$T/pin1" \
  --share "$D.shares/share-2.json" --pin-file "$T/wrongpin" --share "$D.shares/share-3.json" --pin-file "$T/pin3"
expect_err "李四"
expect_exit 0 "a second CA" -- init_ca "$T/other" "${DN[@]}"
expect_exit 5 "a share of another CA" -- g activate --share "$D.shares/share-1.json" --pin-file "$T/pin1" \
  --share "$T/other.shares/share-2.json" --pin-file "$T/pin2" --share "$D.shares/share-3.json" --pin-file "$T/pin3"
expect_err "another CA"
cp "$D.shares/share-4.json" "$T/tampered.json"
sed -i 's/"x": *4/"x": 3/' "$T/tampered.json"
expect_exit 5 "a tampered share" -- g activate --share "$D.shares/share-1.json" --pin-file "$T/pin1" \
  --share "$D.shares/share-2.json" --pin-file "$T/pin2" --share "$T/tampered.json" --pin-file "$T/pin4"
check "the refusals are audited" test "$(audit_failures "$D")" -ge $((f0 + 4))
expect_exit 6 "nothing issues before activation" -- issue "$D"
expect_err "not activated"

# ---- any three custodians wake the keys; the engine holds them ----
expect_exit 0 "custodians 2, 4, 5 activate" -- activate "$D" 2 4 5
check "engine socket is 0600" test "$(stat -c %a "$D/run/engine.sock")" = 600
expect_exit 6 "activate twice" -- activate "$D" 1 2 3
expect_err "already activated"
expect_exit 0 "issue through the engine" -- issue "$D" --out "$T/a.pem"
g ca export --ca sub > "$T/sub.pem"
g ca export --ca root > "$T/root.pem"
check "openssl verifies the leaf" \
  openssl verify -vfyopt distid:1234567812345678 -partial_chain -CAfile "$T/sub.pem" "$T/a.pem"
check "openssl verifies the sub CA" openssl verify -vfyopt distid:1234567812345678 -CAfile "$T/root.pem" "$T/sub.pem"
expect_exit 0 "CRL through the engine" -- g crl generate
expect_exit 0 "deactivate" -- g deactivate
check "socket gone after deactivate" test ! -e "$D/run/engine.sock"
expect_exit 6 "nothing issues after deactivate" -- issue "$D"
expect_exit 6 "deactivate twice" -- g deactivate
expect_exit 0 "custodians 1, 3, 5 activate" -- activate "$D" 1 3 5
expect_exit 0 "issue again" -- issue "$D"
expect_exit 0 "deactivate again" -- g deactivate

# ---- a tampered key store is refused ----
cp "$D/keys/device/key-0002.sdk" "$T/key2.bak"
printf '\x01' | dd of="$D/keys/device/key-0002.sdk" bs=1 seek=150 count=1 conv=notrunc 2>/dev/null
expect_exit_any_failure() { local got=0; "$@" >"$T/out" 2>"$T/err" || got=$?; [ "$got" != 0 ]; }
check "tampered key store refused" expect_exit_any_failure activate "$D" 1 2 3
check "tampered key store: not activated" test ! -S "$D/run/engine.sock"
cp "$T/key2.bak" "$D/keys/device/key-0002.sdk"
mv "$D/keys/device/key-0002.sdk" "$T/key2.real"
cp "$D/keys/device/key-0001.sdk" "$D/keys/device/key-0002.sdk"
check "a key moved to another index is refused" expect_exit_any_failure activate "$D" 1 2 3
mv "$T/key2.real" "$D/keys/device/key-0002.sdk"

# ---- nothing secret on disk or in the log ----
expect_exit 0 "audit list" -- g audit list --json
for i in 1 2 3 4 5; do
  check "PIN $i not in the audit log" bash -c "! grep -qF '$(cat "$T/pin$i")' '$T/out'"
  check "PIN $i not in the state directory" bash -c "! grep -rqF '$(cat "$T/pin$i")' '$D'"
done
check "no clear private key in the state directory" bash -c "! grep -rqa 'PRIVATE KEY' '$D'"
expect_exit 0 "audit chain verifies" -- g audit verify

# ---- the whole CA through a vendor SDF library (dlopen) ----
check "the SDF library exports only SDF names" \
  bash -c "! nm -D --defined-only '$SO' | awk '{print \$3}' | grep -v '^SDFX\?_' | grep -q ."
V=$T/vendor
expect_exit 0 "ceremony on the SDF library" -- init_ca "$V" "${DN[@]}" --device-library "$SO" \
  --device-config "$T/vendor-keys"
check "keys live where the library was told" test -f "$T/vendor-keys/key-0001.sdk"
check "configuration names the library" grep -q libgmca-softsdf.so "$V/gmca.json"
expect_exit 0 "activate through dlopen" -- activate "$V" 3 4 5
expect_exit 0 "issue through dlopen" -- issue "$V" --out "$T/v.pem"
"$GMCA" --dir "$V" ca export --ca sub > "$T/vsub.pem"
check "openssl verifies the dlopen-signed leaf" \
  openssl verify -vfyopt distid:1234567812345678 -partial_chain -CAfile "$T/vsub.pem" "$T/v.pem"
expect_exit 0 "CRL through dlopen" -- "$GMCA" --dir "$V" crl generate
expect_exit 0 "deactivate the dlopen CA" -- "$GMCA" --dir "$V" deactivate
# A relative library name would be searched for on the library path: refused.
cp "$V/gmca.json" "$T/vendor.json"
sed -i "s|\"device_library\": *\"[^\"]*\"|\"device_library\": \"libgmca-softsdf.so\"|" "$V/gmca.json"
expect_exit 3 "relative device library refused" -- "$GMCA" --dir "$V" key status
expect_err "absolute"
cp "$T/vendor.json" "$V/gmca.json"
expect_exit 0 "audit names the device" -- "$GMCA" --dir "$V" audit list --json
check "device in the activation record" grep -q 'softsdf' "$T/out"
finish
