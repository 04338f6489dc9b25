#!/usr/bin/env bash
# GM/T 0010 messages from `gmca app sign|verify|encrypt|decrypt` with keys
# from `openssl genpkey` and certificates from a gmca CA, checked by an
# implementation we did not write (Node sm-crypto, tests/interop/gmt0010.mjs):
# the SignerInfo signature over the sliced authenticatedAttributes, and the
# SM2-wrapped SM4 key and SM4-CBC content of an EnvelopedData.
. "$GMCA_SRC/tests/e2e/common.bash"
J=$GMCA_SRC/tests/interop/gmt0010.mjs
[ -d "$GMCA_SRC/tests/interop/node_modules/sm-crypto" ] ||
  (cd "$GMCA_SRC/tests/interop" && npm install --no-audit --no-fund --silent)
D=$T/ca
g() { "$GMCA" --dir "$D" "$@"; }
new_ca "$D"
g ca export --ca sub > "$T/sub.pem"
sm2_csr s "/C=CN/O=某单位/CN=张三"
echo '{"identity_card_number": "11010519491231002X"}' > "$T/s.json"
g cert issue --profile personal-sign --csr "$T/s.csr" --info "$T/s.json" --out "$T/s.pem" >/dev/null
for r in a b; do
  sm2_csr "$r" "/C=CN/O=某单位/CN=加密 $r"
  g cert issue --profile personal-enc --csr "$T/$r.csr" --info "$T/s.json" --out "$T/$r.pem" >/dev/null
done
printf '政务数据 GM/T 0010 %.0s' $(seq 40) > "$T/msg"

# SignedData: attached, detached, without the certificate, encrypted key file.
expect_exit 0 "sign attached" -- "$GMCA" app sign --cert "$T/s.pem" --key "$T/s.key" --in "$T/msg" --out "$T/sig.p7"
check "openssl asn1parse reads the SignedData" openssl asn1parse -noout -inform DER -in "$T/sig.p7"
check "sm-crypto verifies the SignerInfo" node "$J" signed "$T/sig.p7" "$T/s.pem" "$T/msg"
fails() { ! "$@" >/dev/null; }
check "sm-crypto: another signer's key does not verify" fails node "$J" signed "$T/sig.p7" "$T/a.pem" "$T/msg"
expect_exit 0 "verify attached with --ca" -- "$GMCA" app verify --in "$T/sig.p7" --ca "$T/sub.pem" --out "$T/got"
check "verify prints the signer" grep -q '"subject": ".*张三' "$T/out"
check "verify prints the signing time" grep -q '"signing_time": "20' "$T/out"
check "attached content comes back" cmp -s "$T/msg" "$T/got"
expect_exit 0 "sign detached, no certificate" -- "$GMCA" app sign --cert "$T/s.pem" --key "$T/s.key" \
  --detached --no-cert --in "$T/msg" --out "$T/det.p7"
check "sm-crypto verifies the detached SignerInfo" node "$J" signed "$T/det.p7" "$T/s.pem" "$T/msg"
expect_exit 4 "detached without the certificate" -- "$GMCA" app verify --in "$T/det.p7" --content "$T/msg"
expect_err "signer certificate"
expect_exit 0 "detached with --cert" -- "$GMCA" app verify --in "$T/det.p7" --content "$T/msg" --cert "$T/s.pem"
printf 'x' >> "$T/msg2"; cat "$T/msg" >> "$T/msg2"
expect_exit 3 "detached, other content" -- "$GMCA" app verify --in "$T/det.p7" --content "$T/msg2" --cert "$T/s.pem"
expect_err "messageDigest"
expect_exit 3 "verify under the wrong CA" -- "$GMCA" app verify --in "$T/sig.p7" --ca "$T/s.pem"
expect_exit 0 "sign without attributes" -- "$GMCA" app sign --cert "$T/s.pem" --key "$T/s.key" --no-attrs --in "$T/msg" --out "$T/noattr.p7"
expect_exit 0 "verify without attributes" -- "$GMCA" app verify --in "$T/noattr.p7"
check "no attributes: no signing time" grep -q '"signing_time": null' "$T/out"
echo 'Key-Pass-2024' > "$T/kpass"
openssl pkcs8 -topk8 -v2 aes-256-cbc -in "$T/s.key" -out "$T/s.enc.key" -passout "file:$T/kpass"
expect_exit 0 "sign with an encrypted key" -- "$GMCA" app sign --cert "$T/s.pem" --key "$T/s.enc.key" \
  --pass-file "$T/kpass" --in "$T/msg" --out "$T/sig2.p7"
expect_exit 3 "encrypted key without --pass-file" -- "$GMCA" app sign --cert "$T/s.pem" --key "$T/s.enc.key" \
  --in "$T/msg" --out "$T/sig3.p7"
expect_exit 3 "sign with another certificate's key" -- "$GMCA" app sign --cert "$T/a.pem" --key "$T/s.key" \
  --in "$T/msg" --out "$T/sig4.p7"
expect_exit 6 "refuses to overwrite" -- "$GMCA" app sign --cert "$T/s.pem" --key "$T/s.key" --in "$T/msg" --out "$T/sig.p7"

# EnvelopedData to two recipients.
expect_exit 0 "encrypt" -- "$GMCA" app encrypt --recip "$T/a.pem" --recip "$T/b.pem" --in "$T/msg" --out "$T/env.p7"
check "openssl asn1parse reads the EnvelopedData" openssl asn1parse -noout -inform DER -in "$T/env.p7"
check "sm-crypto opens the EnvelopedData" node "$J" enveloped "$T/env.p7" "$T/a.key" "$T/msg"
check "sm-crypto: a non-recipient key does not open it" fails node "$J" enveloped "$T/env.p7" "$T/s.key" "$T/msg"
for r in a b; do
  expect_exit 0 "decrypt as $r" -- "$GMCA" app decrypt --cert "$T/$r.pem" --key "$T/$r.key" --in "$T/env.p7" --out "$T/dec.$r"
  check "recipient $r gets the content" cmp -s "$T/msg" "$T/dec.$r"
done
expect_exit 4 "decrypt as a non-recipient" -- "$GMCA" app decrypt --cert "$T/s.pem" --key "$T/s.key" --in "$T/env.p7" --out "$T/dec.s"
expect_err "no RecipientInfo"
expect_exit 6 "a signing certificate is no recipient" -- "$GMCA" app encrypt --recip "$T/s.pem" --in "$T/msg" --out "$T/env2.p7"
expect_exit 3 "a SignedData does not decrypt" -- "$GMCA" app decrypt --cert "$T/a.pem" --key "$T/a.key" --in "$T/sig.p7" --out "$T/dec.x"
expect_exit 2 "unknown option refused" -- "$GMCA" app encrypt --detached --recip "$T/a.pem" --in "$T/msg" --out "$T/env3.p7"
# SignedAndEnvelopedData: signed by s, encrypted to a and b.
expect_exit 0 "sign and encrypt" -- "$GMCA" app sign --cert "$T/s.pem" --key "$T/s.key" \
  --encrypt-to "$T/a.pem" --encrypt-to "$T/b.pem" --in "$T/msg" --out "$T/se.p7"
check "openssl asn1parse reads the SignedAndEnvelopedData" openssl asn1parse -noout -inform DER -in "$T/se.p7"
check "sm-crypto opens and verifies the SignedAndEnvelopedData" node "$J" sigenv "$T/se.p7" "$T/b.key" "$T/s.pem" "$T/msg"
check "sm-crypto: another signer does not verify" fails node "$J" sigenv "$T/se.p7" "$T/b.key" "$T/a.pem" "$T/msg"
expect_exit 0 "decrypt and verify as a, with --ca" -- "$GMCA" app decrypt --cert "$T/a.pem" --key "$T/a.key" \
  --ca "$T/sub.pem" --in "$T/se.p7" --out "$T/se.a"
check "signed and enveloped content comes back" cmp -s "$T/msg" "$T/se.a"
check "decrypt prints the signer" grep -q '"subject": ".*张三' "$T/out"
check "decrypt prints the signing time" grep -q '"signing_time": "20' "$T/out"
expect_exit 4 "sign-and-encrypt: non-recipient" -- "$GMCA" app decrypt --cert "$T/s.pem" --key "$T/s.key" --in "$T/se.p7" --out "$T/se.s"
expect_exit 3 "sign-and-encrypt: wrong --ca" -- "$GMCA" app decrypt --cert "$T/a.pem" --key "$T/a.key" \
  --ca "$T/s.pem" --in "$T/se.p7" --out "$T/se.x"
check "nothing written when the issuer check fails" test ! -e "$T/se.x"
expect_exit 3 "sign-and-encrypt: wrong --id" -- "$GMCA" app decrypt --cert "$T/a.pem" --key "$T/a.key" \
  --id 12345 --in "$T/se.p7" --out "$T/se.y"
check "nothing written when the signature fails" test ! -e "$T/se.y"
expect_exit 0 "sign-and-encrypt without the certificate" -- "$GMCA" app sign --cert "$T/s.pem" --key "$T/s.key" \
  --no-cert --encrypt-to "$T/a.pem" --in "$T/msg" --out "$T/se2.p7"
expect_exit 4 "without the signer certificate" -- "$GMCA" app decrypt --cert "$T/a.pem" --key "$T/a.key" --in "$T/se2.p7" --out "$T/se2.a"
expect_exit 0 "with --signer-cert" -- "$GMCA" app decrypt --cert "$T/a.pem" --key "$T/a.key" \
  --signer-cert "$T/s.pem" --in "$T/se2.p7" --out "$T/se2.b"
check "content with --signer-cert" cmp -s "$T/msg" "$T/se2.b"
expect_exit 2 "--detached with --encrypt-to" -- "$GMCA" app sign --cert "$T/s.pem" --key "$T/s.key" \
  --detached --encrypt-to "$T/a.pem" --in "$T/msg" --out "$T/se3.p7"
expect_exit 2 "--ca on an unsigned EnvelopedData" -- "$GMCA" app decrypt --cert "$T/a.pem" --key "$T/a.key" \
  --ca "$T/sub.pem" --in "$T/env.p7" --out "$T/dec.z"

# Raw SM2 signature with ID, both directions.
expect_exit 0 "raw sign" -- "$GMCA" app sign --raw --key "$T/s.key" --cert "$T/s.pem" --in "$T/msg" --out "$T/raw.sig"
check "openssl reads a DER SM2Signature" openssl asn1parse -noout -inform DER -in "$T/raw.sig"
check "sm-crypto verifies gmca's raw signature" node "$J" rawverify "$T/raw.sig" "$T/s.pem" "$T/msg"
check "sm-crypto: other data does not verify" fails node "$J" rawverify "$T/raw.sig" "$T/s.pem" "$T/msg2"
expect_exit 0 "raw verify" -- "$GMCA" app verify --raw --in "$T/raw.sig" --content "$T/msg" --cert "$T/s.pem"
expect_exit 3 "raw verify: other data" -- "$GMCA" app verify --raw --in "$T/raw.sig" --content "$T/msg2" --cert "$T/s.pem"
expect_exit 3 "raw verify: other ID" -- "$GMCA" app verify --raw --id ALICE123@YAHOO.COM --in "$T/raw.sig" --content "$T/msg" --cert "$T/s.pem"
check "sm-crypto signs" node "$J" rawsign "$T/s.key" "$T/msg" "$T/js.sig"
expect_exit 0 "gmca verifies sm-crypto's signature" -- "$GMCA" app verify --raw --in "$T/js.sig" --content "$T/msg" --cert "$T/s.pem"
expect_exit 3 "sm-crypto's signature, another key" -- "$GMCA" app verify --raw --in "$T/js.sig" --content "$T/msg" --cert "$T/a.pem"
expect_exit 3 "raw sign with another certificate" -- "$GMCA" app sign --raw --key "$T/s.key" --cert "$T/a.pem" --in "$T/msg" --out "$T/raw2.sig"

# Raw SM2 encryption, DER SM2Cipher and C1C3C2, both directions.
for f in der c1c3c2; do
  opt=; [ $f = c1c3c2 ] && opt=--c1c3c2
  expect_exit 0 "raw encrypt ($f)" -- "$GMCA" app encrypt --raw $opt --recip "$T/a.pem" --in "$T/msg" --out "$T/raw.$f"
  check "sm-crypto decrypts gmca's $f" node "$J" rawdecrypt "$T/raw.$f" "$T/a.key" "$T/msg" $f
  expect_exit 0 "raw decrypt ($f)" -- "$GMCA" app decrypt --raw $opt --key "$T/a.key" --in "$T/raw.$f" --out "$T/rawdec.$f"
  check "raw $f round trip" cmp -s "$T/msg" "$T/rawdec.$f"
  check "sm-crypto encrypts ($f)" node "$J" rawencrypt "$T/b.pem" "$T/msg" "$T/js.$f" $f
  expect_exit 0 "gmca decrypts sm-crypto's $f" -- "$GMCA" app decrypt --raw $opt --key "$T/b.key" --cert "$T/b.pem" --in "$T/js.$f" --out "$T/jsdec.$f"
  check "sm-crypto $f content" cmp -s "$T/msg" "$T/jsdec.$f"
  expect_exit 3 "raw $f under another key" -- "$GMCA" app decrypt --raw $opt --key "$T/a.key" --in "$T/js.$f" --out "$T/jsdec2.$f"
done
expect_exit 3 "DER given as C1C3C2" -- "$GMCA" app decrypt --raw --c1c3c2 --key "$T/a.key" --in "$T/raw.der" --out "$T/x1"
expect_exit 3 "C1C3C2 given as DER" -- "$GMCA" app decrypt --raw --key "$T/a.key" --in "$T/raw.c1c3c2" --out "$T/x2"
expect_exit 2 "raw encrypt: two recipients" -- "$GMCA" app encrypt --raw --recip "$T/a.pem" --recip "$T/b.pem" --in "$T/msg" --out "$T/x3"
finish
