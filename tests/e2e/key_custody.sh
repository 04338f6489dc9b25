#!/usr/bin/env bash
# Custodian change and CA key backup/restore (CPS §6.3.4, §7.2.1.1,
# §7.2.1.3, §7.1.2.5): a re-split with 3 current custodians present hands
# the master key to new custodians and the old shares stop working; a
# backup (3 custodians, engine stopped) restores onto a fresh state
# directory and device into a CA that signs with the same keys, and every
# damaged, cut or wrongly opened backup is refused leaving nothing behind.
# Run on the built-in device and again on the dlopen SDF library.
. "$(dirname "$0")/common.bash"
: "${GMCA_BUILD:?GMCA_BUILD must point at the build directory}"
SO=$GMCA_BUILD/libgmca-softsdf.so
VERIFY=(node "$GMCA_SRC/tests/interop/sm2verify.mjs")
D=$T/ca
g() { "$GMCA" --dir "$D" "$@"; }
DN=(--root-dn "C=CN, O=备份测试, CN=备份测试根 CA" --sub-dn "C=CN, O=备份测试, CN=备份测试运营 CA")
echo '{"identity_card_number": "11010519491231002X"}' > "$T/id.json"
sm2_csr a "/C=CN/O=备份测试/CN=张三"
issue() { "$GMCA" --dir "$1" cert issue --profile personal-sign --csr "$T/a.csr" --info "$T/id.json" "${@:2}"; }
# shares DIR SHAREDIR PINPREFIX i j k: --share/--pin-file pairs.
shares() {
  local sd=$1 pp=$2 i; shift 2
  for i in "$@"; do printf '%s\n' --share "$sd/share-$i.json" --pin-file "$pp$i"; done
}
# nothing_left PATH: neither PATH nor a temporary sibling of it exists.
nothing_left() { ! ls -d "$1" "$1".restore-* >/dev/null 2>&1; }
# hex of a file, for byte searches that grep cannot do on binary data.
hexof() { od -An -tx1 -v "$1" | tr -d ' \n'; }
has_bytes() { case "$(hexof "$1")" in *"$(hexof "$2")"*) return 0 ;; esac; return 1; }
lacks_bytes() { ! has_bytes "$@"; }

expect_exit 0 "a CA" -- new_ca "$D"
expect_exit 0 "issue on the CA" -- issue "$D" --out "$T/first.pem"
mapfile -t OLD3 < <(shares "$D.shares" "$T/pin" 1 2 3)

# ---- ceremonies need the engine stopped ----
mkdir -p "$T/new.shares"
NEWC=(孙八 周九 吴十 郑一 冯二)
NEWARGS=()
umask 077
for i in 1 2 3 4 5; do
  echo "Succession${i}Pin$((i * 104729))" > "$T/npin$i"
  NEWARGS+=(--custodian "${NEWC[$((i - 1))]}" --new-pin-file "$T/npin$i")
done
umask 022
expect_exit 6 "resplit refused while the engine runs" -- g key resplit "${OLD3[@]}" "${NEWARGS[@]}" \
  --shares-out "$T/new.shares"
expect_err "deactivate"
expect_exit 6 "backup refused while the engine runs" -- g key backup "${OLD3[@]}" --out "$T/busy.kbk"
expect_err "deactivate"
check "no backup file while the engine runs" test ! -e "$T/busy.kbk"
expect_exit 0 "deactivate" -- g deactivate

# Ceremonies hold the engine's lock: one at a time, and no engine starts during one.
expect_exit 6 "no ceremony while another holds the lock" -- \
  flock "$D/run/engine.sock.lock" "$GMCA" --dir "$D" key backup "${OLD3[@]}" --out "$T/busy.kbk"
expect_err "another key ceremony"
check "no backup file while locked" test ! -e "$T/busy.kbk"

# A backup under the first share set, for later.
expect_exit 0 "backup under the first share set" -- g key backup "${OLD3[@]}" --out "$T/old.kbk"

# ---- custodian change: refusals change nothing ----
f0=$(audit_failures "$D")
mapfile -t OLD2 < <(shares "$D.shares" "$T/pin" 1 2)
expect_exit 5 "resplit with two current custodians" -- g key resplit "${OLD2[@]}" "${NEWARGS[@]}" \
  --shares-out "$T/new.shares"
expect_err "3 of 5"
check "no new share after the refusal" test -z "$(ls -A "$T/new.shares")"
echo "password" > "$T/weakpin"
WEAK=("${NEWARGS[@]}")
WEAK[7]=$T/weakpin
expect_exit 6 "weak new PIN refused" -- g key resplit "${OLD3[@]}" "${WEAK[@]}" --shares-out "$T/new.shares"
expect_err "7.4.1"
check "no new share after a weak PIN" test -z "$(ls -A "$T/new.shares")"
expect_exit 2 "resplit needs --shares-out" -- g key resplit "${OLD3[@]}" "${NEWARGS[@]}"
check "the refusals are audited" test "$(audit_failures "$D")" -ge $((f0 + 2))
expect_exit 0 "old shares still open the CA" -- activate "$D" 3 4 5
expect_exit 0 "deactivate" -- g deactivate

# ---- custodian change with custodians 2, 4, 5 present ----
mapfile -t OLD245 < <(shares "$D.shares" "$T/pin" 2 4 5)
expect_exit 0 "resplit" -- g key resplit "${OLD245[@]}" "${NEWARGS[@]}" --shares-out "$T/new.shares"
check "five new shares reported" test "$(grep -c '^share for' "$T/out")" = 5
for i in 1 2 3 4 5; do
  check "new share $i is 0600" test "$(stat -c %a "$T/new.shares/share-$i.json")" = 600
done
expect_exit 0 "audit list" -- g audit list --json
check "resplit audited" grep -q '"key.resplit"' "$T/out"
check "resplit names a new custodian" grep -q '冯二' "$T/out"
check "resplit names who was present" grep '"key.resplit"' -B3 -A3 "$T/out" | grep -q '赵六'
f1=$(audit_failures "$D")
expect_exit 5 "old shares refused after the resplit" -- activate "$D" 1 2 3
expect_err "earlier share set"
check "the refused activation is audited" test "$(audit_failures "$D")" -ge $((f1 + 1))
mapfile -t NEW3 < <(shares "$T/new.shares" "$T/npin" 1 3 5)
expect_exit 0 "new shares activate" -- g activate --direct-issue "${NEW3[@]}"
expect_exit 0 "issue after the resplit" -- issue "$D"
expect_exit 0 "deactivate" -- g deactivate
expect_exit 0 "audit chain verifies" -- g audit verify

# ---- backup ----
expect_exit 0 "backup" -- g key backup "${NEW3[@]}" --out "$T/b.kbk"
check "backup is 0600" test "$(stat -c %a "$T/b.kbk")" = 600
SUM=$(sed -n 's/^SM3 //p' "$T/out")
check "SM3 printed" test ${#SUM} = 64
cp "$T/b.kbk" "$T/b.copy"
expect_exit 6 "backup never overwrites" -- g key backup "${NEW3[@]}" --out "$T/b.kbk"
expect_err "exists"
check "the refused backup left the first intact" cmp -s "$T/b.kbk" "$T/b.copy"
check "no temporary file left by the refusal" bash -c "! ls '$T'/b.kbk.* 2>/dev/null"
expect_exit 0 "audit list" -- g audit list --json
check "backup audited with its SM3" grep -qi "$SUM" "$T/out"
check "backup header is public" grep -qa '"set"' "$T/b.kbk"
# No key, no database, no certificate is readable in it.
g ca export --ca sub > "$T/sub.pem"
g ca export --ca root > "$T/root.pem"
openssl x509 -in "$T/sub.pem" -outform DER -out "$T/sub.der"
check "no PEM private key in the backup" bash -c "! grep -qa 'PRIVATE KEY' '$T/b.kbk'"
check "no clear database in the backup" bash -c "! grep -qa 'SQLite format 3' '$T/b.kbk'"
check "no sealed key blob in clear in the backup" lacks_bytes "$T/b.kbk" "$D/keys/device/key-0002.sdk"
check "no CA certificate in clear in the backup" lacks_bytes "$T/b.kbk" "$T/sub.der"
check "the byte search finds what is there" has_bytes "$T/sub.der" "$T/sub.der"

# ---- restore onto a fresh state directory ----
R=$T/restored
expect_exit 0 "restore" -- "$GMCA" --dir "$R" key restore --in "$T/b.kbk" "${NEW3[@]}"
check "restored state directory is private" test "$(stat -c %a "$R")" = 700
check "restored key store exists" test -f "$R/keys/device/key-0002.sdk"
check "the restored key is the original sealed blob" cmp -s "$D/keys/device/key-0001.sdk" "$R/keys/device/key-0001.sdk"
"$GMCA" --dir "$R" ca export --ca sub > "$T/rsub.pem"
"$GMCA" --dir "$R" ca export --ca root > "$T/rroot.pem"
check "same operational CA certificate" cmp -s "$T/sub.pem" "$T/rsub.pem"
check "same root certificate" cmp -s "$T/root.pem" "$T/rroot.pem"
expect_exit 0 "restored audit" -- "$GMCA" --dir "$R" audit list --json
check "restore audited in the restored store" grep -q '"key.restore"' "$T/out"
check "certificates issued before the backup are there" \
  test "$(cert_count "$R")" = "$(cert_count "$D")"
expect_exit 0 "restored audit chain verifies" -- "$GMCA" --dir "$R" audit verify
mapfile -t RNEW3 < <(shares "$T/new.shares" "$T/npin" 2 4 5)
expect_exit 5 "old shares do not open the restored CA" -- "$GMCA" --dir "$R" activate "${OLD3[@]}"
expect_exit 0 "activate the restored CA" -- "$GMCA" --dir "$R" activate --direct-issue "${RNEW3[@]}"
expect_exit 0 "the restored CA issues" -- issue "$R" --out "$T/leaf.pem"
check "leaf verifies under the original CA certificate (sm-crypto)" \
  "${VERIFY[@]}" cert "$T/leaf.pem" "$T/sub.pem"
check "leaf verifies under the original CA certificate (openssl)" \
  openssl verify -vfyopt distid:1234567812345678 -partial_chain -CAfile "$T/sub.pem" "$T/leaf.pem"
check "the verifier refuses a leaf under another key" bash -c "! ${VERIFY[*]} cert '$T/leaf.pem' '$T/root.pem' >/dev/null 2>&1"
expect_exit 0 "the restored CA makes a CRL" -- "$GMCA" --dir "$R" crl generate
expect_exit 0 "deactivate the restored CA" -- "$GMCA" --dir "$R" deactivate

# ---- restore refusals: each leaves nothing behind ----
R2=$T/r2
mapfile -t NEW2 < <(shares "$T/new.shares" "$T/npin" 1 2)
expect_exit 5 "restore with two custodians" -- "$GMCA" --dir "$R2" key restore --in "$T/b.kbk" "${NEW2[@]}"
expect_err "3 of 5"
check "nothing left after two custodians" nothing_left "$R2"
expect_exit 5 "restore with a wrong PIN" -- "$GMCA" --dir "$R2" key restore --in "$T/b.kbk" \
  --share "$T/new.shares/share-1.json" --pin-file "$T/npin1" \
  --share "$T/new.shares/share-2.json" --pin-file "$T/pin2" \
  --share "$T/new.shares/share-3.json" --pin-file "$T/npin3"
expect_err "周九"
check "nothing left after a wrong PIN" nothing_left "$R2"
expect_exit 5 "restore with the old shares" -- "$GMCA" --dir "$R2" key restore --in "$T/b.kbk" "${OLD3[@]}"
expect_err "share set"
check "nothing left after old shares" nothing_left "$R2"
SIZE=$(stat -c %s "$T/b.kbk")
# in the body, in the last tag, in the last frame, and in the header ("created")
CREATED=$(($(grep -boa '"created":' "$T/b.kbk" | head -n 1 | cut -d: -f1) + 12))
for off in $((SIZE / 2)) $((SIZE - 3)) $((SIZE - 20)) "$CREATED"; do
  cp "$T/b.kbk" "$T/flip.kbk"
  byte=$(od -An -tu1 -j "$off" -N1 "$T/flip.kbk" | tr -d ' ')
  printf "\\$(printf '%03o' $(((byte ^ 1) & 255)))" |
    dd of="$T/flip.kbk" bs=1 seek="$off" count=1 conv=notrunc 2>/dev/null
  check "byte $off flipped" bash -c "! cmp -s '$T/b.kbk' '$T/flip.kbk'"
  expect_exit 7 "flipped byte at $off" -- "$GMCA" --dir "$R2" key restore --in "$T/flip.kbk" "${NEW3[@]}"
  check "nothing left after a flipped byte at $off" nothing_left "$R2"
done
HLEN=$((16 + $(od -An -tu1 -j 14 -N2 "$T/b.kbk" | awk '{print $1 * 256 + $2}')))
for cut in $((SIZE - 1)) $((SIZE / 2)) "$HLEN" 100; do
  head -c "$cut" "$T/b.kbk" > "$T/cut.kbk"
  expect_exit 7 "archive cut to $cut bytes" -- "$GMCA" --dir "$R2" key restore --in "$T/cut.kbk" "${NEW3[@]}"
  check "nothing left after a cut to $cut" nothing_left "$R2"
done
{ cat "$T/b.kbk"; printf 'x'; } > "$T/long.kbk"
expect_exit 7 "bytes after the last frame" -- "$GMCA" --dir "$R2" key restore --in "$T/long.kbk" "${NEW3[@]}"
check "nothing left after trailing bytes" nothing_left "$R2"
head -c 5000 /dev/urandom > "$T/junk.kbk"
expect_exit 3 "not a backup" -- "$GMCA" --dir "$R2" key restore --in "$T/junk.kbk" "${NEW3[@]}"
expect_err "not a gmca key backup"
mkdir -p "$T/full" && echo x > "$T/full/file"
expect_exit 6 "restore onto a non-empty directory" -- "$GMCA" --dir "$T/full" key restore --in "$T/b.kbk" "${NEW3[@]}"
expect_err "not empty"
check "the non-empty directory is untouched" test "$(ls -A "$T/full")" = file
check "no temporary sibling of it" bash -c "! ls -d '$T'/full.restore-* 2>/dev/null"
expect_exit 6 "restore onto a live CA" -- "$GMCA" --dir "$D" key restore --in "$T/b.kbk" "${NEW3[@]}"
mkdir -p "$T/empty"
expect_exit 0 "restore onto an empty directory" -- "$GMCA" --dir "$T/empty" key restore --in "$T/b.kbk" "${NEW3[@]}"

# ---- an old backup opens with the shares of its time ----
expect_exit 5 "old backup refuses the new shares" -- "$GMCA" --dir "$T/r0" key restore --in "$T/old.kbk" "${NEW3[@]}"
expect_err "share set"
expect_exit 0 "old backup opens with the old shares" -- "$GMCA" --dir "$T/r0" key restore --in "$T/old.kbk" "${OLD3[@]}"
mapfile -t OLD145 < <(shares "$D.shares" "$T/pin" 1 4 5)
expect_exit 0 "old backup's CA activates with the old shares" -- "$GMCA" --dir "$T/r0" activate --direct-issue "${OLD145[@]}"
expect_exit 0 "and issues" -- issue "$T/r0" --out "$T/leaf0.pem"
check "its leaf verifies under the original CA (sm-crypto)" "${VERIFY[@]}" cert "$T/leaf0.pem" "$T/sub.pem"
expect_exit 0 "deactivate r0" -- "$GMCA" --dir "$T/r0" deactivate

# ---- the same through a vendor SDF library (dlopen) ----
V=$T/vendor
expect_exit 0 "CA on the SDF library" -- init_ca "$V" "${DN[@]}" --device-library "$SO" \
  --device-config "$T/vendor-keys"
mapfile -t V3 < <(shares "$V.shares" "$T/pin" 1 2 3)
expect_exit 0 "backup through dlopen" -- "$GMCA" --dir "$V" key backup "${V3[@]}" --out "$T/v.kbk"
"$GMCA" --dir "$V" ca export --ca sub > "$T/vsub.pem"
check "no sealed vendor blob in clear" lacks_bytes "$T/v.kbk" "$T/vendor-keys/key-0002.sdk"
cp -a "$T/vendor-keys" "$T/vendor-keys.before"
expect_exit 6 "restore into the device the keys are still in" -- "$GMCA" --dir "$T/rv0" key restore \
  --in "$T/v.kbk" "${V3[@]}"
expect_err "already holds a key"
check "nothing left after the occupied device" nothing_left "$T/rv0"
check "the original device keys are untouched" diff -r "$T/vendor-keys" "$T/vendor-keys.before"
mkdir -p "$T/vendor-keys3"
cp "$T/v.kbk" "$T/vflip.kbk"
printf 'Z' | dd of="$T/vflip.kbk" bs=1 seek=$(($(stat -c %s "$T/v.kbk") / 2)) count=1 conv=notrunc 2>/dev/null
expect_exit 7 "tampered backup through dlopen" -- "$GMCA" --dir "$T/rv3" key restore --in "$T/vflip.kbk" \
  "${V3[@]}" --device-library "$SO" --device-config "$T/vendor-keys3"
check "nothing imported from a tampered backup" test -z "$(ls -A "$T/vendor-keys3")"
check "nothing left after the tampered backup" nothing_left "$T/rv3"
RV=$T/rv
expect_exit 0 "restore onto a new SDF device" -- "$GMCA" --dir "$RV" key restore --in "$T/v.kbk" \
  "${V3[@]}" --device-library "$SO" --device-config "$T/vendor-keys2"
check "keys live in the new device" test -f "$T/vendor-keys2/key-0002.sdk"
check "configuration names the new device" grep -q vendor-keys2 "$RV/gmca.json"
check "configuration names the library" grep -q libgmca-softsdf.so "$RV/gmca.json"
mapfile -t V234 < <(shares "$V.shares" "$T/pin" 2 3 4)
expect_exit 0 "activate the restored dlopen CA" -- "$GMCA" --dir "$RV" activate --direct-issue "${V234[@]}"
expect_exit 0 "the restored dlopen CA issues" -- issue "$RV" --out "$T/vleaf.pem"
check "its leaf verifies under the original CA (sm-crypto)" "${VERIFY[@]}" cert "$T/vleaf.pem" "$T/vsub.pem"
expect_exit 0 "deactivate the restored dlopen CA" -- "$GMCA" --dir "$RV" deactivate
expect_exit 0 "the original dlopen CA still activates" -- activate "$V" 1 2 3
expect_exit 0 "deactivate it" -- "$GMCA" --dir "$V" deactivate
finish
