#!/usr/bin/env bash
# Interoperability of SM2EnvelopedKey and ENVELOPEDKEYBLOB (issue 6 item 2),
# following GMT-REFERENCE §3.2's "verified with openssl" recipe both ways:
# (a) an envelope sealed by gmca is opened with the openssl CLI alone
#     (asn1parse to find the pieces, pkeyutl -decrypt for the SM4 key,
#     enc -d -sm4-ecb -nopad for d) and d·G, computed by openssl, is the
#     public key in the envelope; the blob form carries the same SM4 key and d;
# (b) envelopes assembled from openssl CLI output and a few lines of Python
#     DER (gmsm's NULL parameters; a PKCS#7-padded d) are opened by
#     `gmca token import-key`, and data openssl encrypts to the key decrypts.
. "$(dirname "$0")/common.bash"
cd "$T"
hex() { od -An -v -tx1 "$1" | tr -d ' \n'; }
# cut FILE OFFSET LEN: LEN bytes of FILE from OFFSET.
cut_bytes() { tail -c +$(($2 + 1)) "$1" | head -c "$3"; }
SM2_OID_TAIL='\xa0\x0a\x06\x08\x2a\x81\x1c\xcf\x55\x01\x82\x2d' # [0] namedCurve SM2
# sec1_from_d D OUT: an SEC1 ECPrivateKey with only d; openssl computes d·G when it loads it.
sec1_from_d() { { printf '\x30\x31\x02\x01\x01\x04\x20'; cat "$1"; printf "$SM2_OID_TAIL"; } >"$2"; }
point_of() { openssl pkey -inform "$1" -in "$2" -pubout -outform DER | tail -c 65; }

# ---------- (a) sealed by gmca, opened by openssl ----------
openssl genpkey -algorithm SM2 -out recip.key 2>/dev/null
openssl req -new -x509 -key recip.key -sm3 -sigopt distid:1234567812345678 -subj "/CN=recipient" \
  -days 2 -out recip.pem
openssl genpkey -algorithm SM2 -out pair.key 2>/dev/null
expect_exit 0 "gmca seals" -- "$GMCA" token seal-for-test --key pair.key --cert recip.pem \
  --out env.der --blob-out env.blob

openssl asn1parse -inform DER -in env.der >parse.txt
check "asn1parse: SEQUENCE{SEQUENCE{sm4-ecb}, SM2Cipher, BIT STRING, BIT STRING}" bash -c \
  "grep -q ':sm4-ecb' parse.txt && test \$(grep -c 'd=1 .*BIT STRING' parse.txt) = 2 &&
   test \$(grep -c 'd=2 .*INTEGER' parse.txt) = 2 && test \$(grep -c 'd=2 .*OCTET STRING' parse.txt) = 2"
check "no parameters written for sm4-ecb" bash -c "! grep -q 'd=2 .*NULL' parse.txt"
# offset, header length and length of the four d=1 elements.
mapfile -t TOP < <(sed -n 's/^ *\([0-9]*\):d=1 *hl=\([0-9]*\) *l= *\([0-9]*\).*/\1 \2 \3/p' parse.txt)
check "four elements" test "${#TOP[@]}" = 4
read -r c_off c_hl c_l <<<"${TOP[1]}"
read -r p_off p_hl p_l <<<"${TOP[2]}"
read -r k_off k_hl k_l <<<"${TOP[3]}"
cut_bytes env.der "$c_off" $((c_hl + c_l)) >sm2cipher.der
cut_bytes env.der $((p_off + p_hl)) 1 >pub.unused
cut_bytes env.der $((p_off + p_hl + 1)) $((p_l - 1)) >pub.bin
cut_bytes env.der $((k_off + k_hl + 1)) $((k_l - 1)) >encd.bin
check "BIT STRINGs without unused bits" test "$(hex pub.unused)" = 00
check "public key is 04||X||Y" bash -c "test \$(stat -c %s pub.bin) = 65 && test \$(head -c 1 pub.bin | od -An -tx1 | tr -d ' ') = 04"
check "encrypted d is 32 bytes (no padding)" test "$(stat -c %s encd.bin)" = 32
check "openssl pkeyutl -decrypt opens the SM2Cipher" \
  openssl pkeyutl -decrypt -inkey recip.key -in sm2cipher.der -out sym.bin
check "the symmetric key is 16 bytes" test "$(stat -c %s sym.bin)" = 16
check "openssl enc -d -sm4-ecb -nopad recovers d" \
  openssl enc -d -sm4-ecb -nopad -K "$(hex sym.bin)" -in encd.bin -out d.bin
sec1_from_d d.bin d.der
check "d·G is the public key in the envelope" cmp <(point_of DER d.der) pub.bin
check "... and the key pair sealed" cmp <(point_of PEM pair.key) pub.bin
check "d is the sealed key's d" cmp d.bin \
  <(openssl ec -in pair.key -outform DER -no_public 2>/dev/null | cut_bytes /dev/stdin 7 32)
check "another key cannot open it" bash -c \
  "openssl genpkey -algorithm SM2 -out other.key 2>/dev/null && ! openssl pkeyutl -decrypt -inkey other.key -in sm2cipher.der -out /dev/null 2>/dev/null"

# The ENVELOPEDKEYBLOB: fixed offsets (GM/T 0016), the same SM4 key, 0^32||d.
check "blob header: Version 1, SGD_SM4_ECB, 256" test "$(cut_bytes env.blob 0 12 | hex /dev/stdin)" = 010000000104000000010000
cut_bytes env.blob 12 64 >blob.encd
cut_bytes env.blob $((76 + 4 + 32)) 32 >blob.x
cut_bytes env.blob $((76 + 4 + 64 + 32)) 32 >blob.y
check "blob public key is the envelope's" cmp <({ printf '\x04'; cat blob.x blob.y; }) pub.bin
C=$((76 + 132))
python3 - env.blob blob.sm2cipher "$C" <<'EOF'
import sys
b = open(sys.argv[1], 'rb').read(); c = int(sys.argv[3])
def tlv(t, v):
    n = len(v)
    return bytes([t]) + (bytes([n]) if n < 128 else bytes([0x81, n])) + v
def integer(v):
    v = v.lstrip(b'\0') or b'\0'
    return tlv(2, (b'\0' + v) if v[0] & 0x80 else v)
x, y, h = b[c+32:c+64], b[c+96:c+128], b[c+128:c+160]
n = int.from_bytes(b[c+160:c+164], 'little')
open(sys.argv[2], 'wb').write(tlv(0x30, integer(x) + integer(y) + tlv(4, h) + tlv(4, b[c+164:c+164+n])))
EOF
check "openssl opens the blob's ECCCIPHERBLOB to the same SM4 key" cmp sym.bin \
  <(openssl pkeyutl -decrypt -inkey recip.key -in blob.sm2cipher)
openssl enc -d -sm4-ecb -nopad -K "$(hex sym.bin)" -in blob.encd -out blob.d
check "cbEncryptedPriKey is 0^32 || d" cmp blob.d <({ head -c 32 /dev/zero; cat d.bin; })

# ---------- (b) assembled with openssl + Python DER, opened by gmca ----------
TK=$T/tok
echo "TokenPin-8642" >pin
"$GMCA" token init --token "$TK"
"$GMCA" token csr --token "$TK" --pin-file pin --subject "/C=CN/CN=王五" --out tok.csr
openssl genpkey -algorithm SM2 -out enc.key 2>/dev/null
openssl ec -in enc.key -outform DER -no_public 2>/dev/null | cut_bytes /dev/stdin 7 32 >enc.d
point_of PEM enc.key >enc.pt
# assemble PARAMS PADDED OUT: GM/T 0009 §7.4 from openssl pieces, to the token's signature key.
assemble() {
  openssl rand 16 >k.bin
  if [ "$2" = padded ]; then
    openssl enc -sm4-ecb -K "$(hex k.bin)" -in enc.d -out enc.encd # PKCS#7: 48 bytes
  else
    openssl enc -sm4-ecb -nopad -K "$(hex k.bin)" -in enc.d -out enc.encd
  fi
  openssl pkeyutl -encrypt -pubin -inkey "$TK/sign.pub" -in k.bin -out k.sm2
  python3 - "$1" k.sm2 enc.pt enc.encd "$3" <<'EOF'
import sys
def tlv(t, v):
    n = len(v)
    ln = bytes([n]) if n < 128 else bytes([0x81, n]) if n < 256 else bytes([0x82, n >> 8, n & 255])
    return bytes([t]) + ln + v
params, cipher, pt, encd, out = sys.argv[1:6]
rd = lambda f: open(f, 'rb').read()
alg = tlv(6, bytes.fromhex('2a811ccf55016801'))  # sm4-ecb 1.2.156.10197.1.104.1
if params == 'null':
    alg += b'\x05\x00'
der = tlv(0x30, tlv(0x30, alg) + rd(cipher) + tlv(3, b'\0' + rd(pt)) + tlv(3, b'\0' + rd(encd)))
open(out, 'wb').write(der)
EOF
}
for variant in "null bare" "absent bare" "null padded"; do
  set -- $variant
  assemble "$1" "$2" "env-$1-$2.der"
  check "openssl asn1parse reads the $1/$2 envelope" openssl asn1parse -inform DER -in "env-$1-$2.der" -noout
done
check "the padded form carries 48 bytes" bash -c "openssl asn1parse -inform DER -in env-null-padded.der | grep -q 'BIT STRING.*' && test \$(openssl asn1parse -inform DER -in env-null-padded.der | tail -n 1 | sed 's/.*l= *\([0-9]*\).*/\1/') = 49"
expect_exit 0 "gmca opens the openssl-made envelope (NULL parameters, as gmsm)" -- \
  "$GMCA" token import-key --token "$TK" --pin-file pin env-null-bare.der
check "the imported key is openssl's" cmp <(openssl pkey -in "$TK/enc-1.pub" -pubin -pubout -outform DER | tail -c 65) enc.pt
head -c 500 /dev/urandom >m
openssl pkeyutl -encrypt -pubin -inkey <(openssl pkey -in enc.key -pubout) -in m -out m.sm2
expect_exit 0 "the token decrypts what openssl encrypted to that key" -- \
  "$GMCA" token decrypt --token "$TK" --pin-file pin --in m.sm2 --out m.out
check "... correctly" cmp m m.out
# The same key again in the other accepted forms: refused only as a duplicate,
# which means they opened.
expect_exit 6 "absent parameters open (then refused as a duplicate)" -- \
  "$GMCA" token import-key --token "$TK" --pin-file pin env-absent-bare.der
expect_err "holds this key already"
expect_exit 6 "a PKCS#7-padded d opens (then refused as a duplicate)" -- \
  "$GMCA" token import-key --token "$TK" --pin-file pin env-null-padded.der
expect_err "holds this key already"
# An openssl-made envelope whose d is another key's: refused.
openssl genpkey -algorithm SM2 -out wrong.key 2>/dev/null
openssl ec -in wrong.key -outform DER -no_public 2>/dev/null | cut_bytes /dev/stdin 7 32 >enc.d
assemble null bare env-mismatch.der
expect_exit 3 "d not matching the public key" -- \
  "$GMCA" token import-key --token "$TK" --pin-file pin env-mismatch.der
expect_err "not the public key's"
# PEM armour of the DER form.
{ echo "-----BEGIN SM2 ENVELOPED KEY-----"; openssl base64 -in env-absent-bare.der; echo "-----END SM2 ENVELOPED KEY-----"; } >env.pem
expect_exit 6 "PEM SM2EnvelopedKey opens (duplicate)" -- "$GMCA" token import-key --token "$TK" --pin-file pin env.pem

finish
