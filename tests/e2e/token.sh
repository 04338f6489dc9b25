#!/usr/bin/env bash
# gmca token (issue 6 item 5): the subscriber's soft token. Its signature key
# is made inside it and certified through `gmca cert issue`; an encryption key
# pair made outside (standing in for the KM) is sealed to the signature
# certificate and imported, as SM2EnvelopedKey and as ENVELOPEDKEYBLOB; data
# encrypted to the encryption certificate decrypts, also after a rekey (CPS
# §7.3.2). Wrong PINs, tampered envelopes and envelopes for another token are
# refused and leave the token as it was.
. "$(dirname "$0")/common.bash"
CA=$T/ca
TK=$T/tok
tk() { "$GMCA" token "$@"; }
listing() { (cd "$1" && find . -type f -exec sha256sum {} + | sort); }
umask 077
echo "TokenPin-2468" >"$T/tpin"
echo "WrongPin-1357" >"$T/wpin"
umask 022

check "CA" new_ca "$CA"
echo '{"identity_card_number": "11010519491231002X"}' >"$T/id.json"
issue() { "$GMCA" --dir "$CA" cert issue --profile "$1" --csr "$2" --info "$T/id.json" --out "$3" >/dev/null; }

# --- init, csr ---
expect_exit 0 "init" -- tk init --token "$TK"
check "token dir is 0700" test "$(stat -c %a "$TK")" = 700
expect_exit 6 "init refuses a non-empty directory" -- tk init --token "$TK"
expect_err "not empty"
expect_exit 4 "a directory that is no token" -- tk show --token "$T"
expect_exit 2 "unknown option for a subcommand" -- tk show --token "$TK" --in x
expect_exit 0 "csr" -- tk csr --token "$TK" --pin-file "$T/tpin" \
  --subject "/C=CN/O=测试单位/CN=张三" --out "$T/sign.csr"
check "openssl accepts the CSR's signature with the ID" \
  openssl req -in "$T/sign.csr" -verify -noout -vfyopt distid:1234567812345678
check "the CSR subject" grep -q "CN *= *张三" \
  <(openssl req -in "$T/sign.csr" -noout -subject -nameopt utf8,sep_comma_plus)
check "the signature key is encrypted" grep -q "BEGIN ENCRYPTED PRIVATE KEY" "$TK/sign.key"
check "key file is 0600" test "$(stat -c %a "$TK/sign.key")" = 600
check "the CSR's key is the token's" cmp <(openssl req -in "$T/sign.csr" -noout -pubkey) "$TK/sign.pub"
expect_exit 5 "csr with a wrong PIN" -- tk csr --token "$TK" --pin-file "$T/wpin" --subject "/CN=x"
expect_err "wrong PIN"

# --- signature certificate ---
check "issue the signature certificate" issue personal-sign "$T/sign.csr" "$T/sign.pem"
expect_exit 0 "import the signature certificate" -- tk import-cert --token "$TK" "$T/sign.pem"
check "file mode 0600" bash -c "stat -c %a '$TK'/cert-*.pem | grep -qx 600"
sm2_csr stranger "/C=CN/CN=陌生人"
issue personal-sign "$T/stranger.csr" "$T/stranger.pem"
expect_exit 3 "a signature certificate of another key" -- tk import-cert --token "$TK" "$T/stranger.pem"
expect_err "no key of this token"

# --- the KM's part: an encryption key pair, its certificate, the envelope ---
sm2_csr enc1 "/C=CN/O=测试单位/CN=张三"
check "issue encryption certificate 1" issue personal-enc "$T/enc1.csr" "$T/enc1.pem"
expect_exit 0 "seal (DER and blob)" -- tk seal-for-test --key "$T/enc1.key" --cert "$T/sign.pem" \
  --out "$T/env1.der" --blob-out "$T/env1.blob"
check "blob is 388 bytes" test "$(stat -c %s "$T/env1.blob")" = 388
check "openssl parses the DER envelope" openssl asn1parse -inform DER -in "$T/env1.der" -noout

# The encryption certificate first, its key later.
expect_exit 0 "import the encryption certificate before its key" -- \
  tk import-cert --token "$TK" "$T/enc1.pem"
expect_exit 0 "show" -- tk show --token "$TK"
check "it waits for its key" grep -q '"pending_certificates": \[\s*$' "$T/out"
check "... with its serial" grep -q "$(openssl x509 -in "$T/enc1.pem" -noout -serial | cut -d= -f2)" "$T/out"

# Refusals leave the token unchanged.
before=$(listing "$TK")
expect_exit 5 "import-key with a wrong PIN" -- tk import-key --token "$TK" --pin-file "$T/wpin" "$T/env1.der"
expect_err "wrong PIN"
cp "$T/env1.der" "$T/bad.der"
size=$(stat -c %s "$T/bad.der")
printf '\x55' | dd of="$T/bad.der" bs=1 seek=$((size - 5)) conv=notrunc status=none
expect_exit 3 "tampered envelope (encrypted private key)" -- \
  tk import-key --token "$TK" --pin-file "$T/tpin" "$T/bad.der"
cp "$T/env1.blob" "$T/bad.blob"
printf '\x55' | dd of="$T/bad.blob" bs=1 seek=300 conv=notrunc status=none
expect_exit 3 "tampered blob (SM2 ciphertext)" -- \
  tk import-key --token "$TK" --pin-file "$T/tpin" "$T/bad.blob"
head -c 100 "$T/env1.der" >"$T/short.der"
expect_exit 3 "truncated envelope" -- tk import-key --token "$TK" --pin-file "$T/tpin" "$T/short.der"
# Another token's envelope: sealed to another signature certificate.
T2=$T/tok2
tk init --token "$T2" >/dev/null
tk csr --token "$T2" --pin-file "$T/tpin" --subject "/C=CN/CN=李四" --out "$T/sign2.csr"
issue personal-sign "$T/sign2.csr" "$T/sign2.pem"
tk seal-for-test --key "$T/enc1.key" --cert "$T/sign2.pem" --out "$T/env-other.der" >/dev/null
expect_exit 3 "an envelope for another token" -- tk import-key --token "$TK" --pin-file "$T/tpin" "$T/env-other.der"
expect_err "decryption failed"
# A key that is not the waiting encryption certificate's.
sm2_csr encx "/C=CN/CN=x"
tk seal-for-test --key "$T/encx.key" --cert "$T/sign.pem" --out "$T/env-x.der" >/dev/null
expect_exit 3 "a key that is not the encryption certificate's" -- \
  tk import-key --token "$TK" --pin-file "$T/tpin" "$T/env-x.der"
expect_err "not the public key of the encryption certificate"
check "token unchanged by the refusals" test "$before" = "$(listing "$TK")"

# --- import, encrypt, decrypt ---
expect_exit 0 "import-key (SM2EnvelopedKey)" -- tk import-key --token "$TK" --pin-file "$T/tpin" "$T/env1.der"
check "encryption key file is 0600, encrypted" bash -c \
  "test \$(stat -c %a '$TK/enc-1.key') = 600 && grep -q 'ENCRYPTED PRIVATE KEY' '$TK/enc-1.key'"
check "the imported key is the certificate's" cmp "$TK/enc-1.pub" <(openssl x509 -in "$T/enc1.pem" -noout -pubkey)
expect_exit 6 "the same key again" -- tk import-key --token "$TK" --pin-file "$T/tpin" "$T/env1.blob"
expect_exit 0 "show" -- tk show --token "$TK"
check "no certificate waits any more" grep -q '"pending_certificates": \[\]' "$T/out"
check "encryption key 1 is current" grep -q '"current": true' "$T/out"
check "no secret in show" bash -c "! grep -qi 'private' '$T/out'"
head -c 3000 /dev/urandom >"$T/msg"
expect_exit 0 "encrypt to the encryption certificate" -- \
  tk encrypt --cert "$T/enc1.pem" --in "$T/msg" --out "$T/msg.c1"
expect_exit 0 "decrypt" -- tk decrypt --token "$TK" --pin-file "$T/tpin" --in "$T/msg.c1" --out "$T/msg.p1"
check "round trip" cmp "$T/msg" "$T/msg.p1"
check "openssl decrypts it with the KM's key" cmp "$T/msg" \
  <(openssl pkeyutl -decrypt -inkey "$T/enc1.key" -in "$T/msg.c1")
openssl pkeyutl -encrypt -pubin -inkey <(openssl x509 -in "$T/enc1.pem" -noout -pubkey) \
  -in "$T/msg" -out "$T/msg.ossl" 2>/dev/null
expect_exit 0 "decrypt what openssl encrypted" -- tk decrypt --token "$TK" --pin-file "$T/tpin" --in "$T/msg.ossl"
check "... to the plaintext" cmp "$T/msg" "$T/out"
expect_exit 0 "encrypt as GM/T 0010 EnvelopedData" -- \
  tk encrypt --cert "$T/enc1.pem" --in "$T/msg" --out "$T/msg.cms" --cms
expect_exit 0 "decrypt EnvelopedData" -- tk decrypt --token "$TK" --pin-file "$T/tpin" --in "$T/msg.cms" --out "$T/msg.pc"
check "EnvelopedData round trip" cmp "$T/msg" "$T/msg.pc"
expect_exit 5 "decrypt with a wrong PIN" -- tk decrypt --token "$TK" --pin-file "$T/wpin" --in "$T/msg.c1" \
  --out "$T/msg.px"
check "nothing written on refusal" test ! -e "$T/msg.px"

# --- sign, verify ---
expect_exit 0 "sign" -- tk sign --token "$TK" --pin-file "$T/tpin" --in "$T/msg" --out "$T/msg.sig"
expect_exit 0 "verify" -- tk verify --token "$TK" --in "$T/msg" --sig "$T/msg.sig"
check "openssl verifies the signature with the ID" openssl dgst -sm3 -verify \
  <(openssl x509 -in "$T/sign.pem" -noout -pubkey) -signature "$T/msg.sig" \
  -sigopt distid:1234567812345678 "$T/msg"
echo x >>"$T/msg"
expect_exit 3 "verify of changed data" -- tk verify --cert "$T/sign.pem" --in "$T/msg" --sig "$T/msg.sig"

# --- rekey: a new encryption key pair (ENVELOPEDKEYBLOB); the old one still decrypts ---
sm2_csr enc2 "/C=CN/O=测试单位/CN=张三"
issue personal-enc "$T/enc2.csr" "$T/enc2.pem"
tk seal-for-test --key "$T/enc2.key" --cert "$T/sign.pem" --out "$T/env2.der" --blob-out "$T/env2.blob" >/dev/null
expect_exit 0 "import key 2 as ENVELOPEDKEYBLOB" -- tk import-key --token "$TK" --pin-file "$T/tpin" "$T/env2.blob"
expect_exit 0 "import certificate 2 after its key" -- tk import-cert --token "$TK" "$T/enc2.pem"
check "certificate 2 attached to key 2" grep -q "encryption key 2" "$T/out"
expect_exit 0 "show after rekey" -- tk show --token "$TK"
check "two encryption keys" test "$(grep -c '"index"' "$T/out")" = 2
head -c 100 /dev/urandom >"$T/new"
tk encrypt --cert "$T/enc2.pem" --in "$T/new" --out "$T/new.c" >/dev/null
expect_exit 0 "decrypt to the current key" -- tk decrypt --token "$TK" --pin-file "$T/tpin" --in "$T/new.c" --out "$T/new.p"
check "current key round trip" cmp "$T/new" "$T/new.p"
expect_exit 0 "old data still decrypts after the rekey" -- \
  tk decrypt --token "$TK" --pin-file "$T/tpin" --in "$T/msg.c1" --out "$T/msg.p2"
check "old data round trip" cmp "$T/msg.p1" "$T/msg.p2"
expect_exit 0 "old EnvelopedData still decrypts" -- \
  tk decrypt --token "$TK" --pin-file "$T/tpin" --in "$T/msg.cms" --out "$T/msg.pc2"
check "old EnvelopedData round trip" cmp "$T/msg.pc" "$T/msg.pc2"
tk encrypt --cert "$T/stranger.pem" --in "$T/new" --out "$T/stranger.c" >/dev/null
expect_exit 3 "data for no key of the token" -- tk decrypt --token "$TK" --pin-file "$T/tpin" --in "$T/stranger.c"
expect_err "no encryption key of this token"

finish
