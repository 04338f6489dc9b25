#!/bin/sh
# Regenerate the sample PKCS#10 requests used by tests/unit/test_x509_parse.c
# and seeded into fuzz/corpus/csr. Needs the openssl 3 CLI. Keys are
# throwaway and not kept. Run from anywhere: ./make.sh
#
# good_*: must be accepted by gmca_csr_parse (good_sm2_alice only with the ID
# ALICE123@YAHOO.COM); bad_*: must be refused.
set -eu
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ID=1234567812345678

openssl genpkey -algorithm SM2 -out "$tmp/sm2.pem" 2>/dev/null
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/rsa.pem" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/p256.pem" 2>/dev/null

req() { # key outfile subj [extra args]
	k=$1 o=$2 s=$3
	shift 3
	openssl req -new -key "$tmp/$k.pem" -subj "$s" -out "$o" "$@"
}

SUBJ="/C=CN/O=Test Gov Org/CN=Zhang San"
req sm2 good_sm2.pem "$SUBJ" -sm3 -sigopt distid:$ID
openssl req -in good_sm2.pem -outform DER -out good_sm2.der
req sm2 good_sm2_cn.pem "/C=CN/ST=北京市/O=北京市政务服务中心/CN=张三" -utf8 -sm3 -sigopt distid:$ID
req sm2 good_sm2_new_header.pem "$SUBJ" -sm3 -sigopt distid:$ID
sed -i 's/CERTIFICATE REQUEST/NEW CERTIFICATE REQUEST/' good_sm2_new_header.pem
req sm2 good_sm2_ext.pem "$SUBJ" -sm3 -sigopt distid:$ID \
	-addext "subjectAltName=DNS:www.example.gov.cn" -addext "keyUsage=digitalSignature"
# Signed with OpenSSL 3.0's empty default ID: refused with the default ID.
req sm2 bad_sm2_empty_id.pem "$SUBJ" -sm3
# Signed with another ID: accepted only when that ID is given.
req sm2 good_sm2_alice.pem "$SUBJ" -sm3 -sigopt distid:ALICE123@YAHOO.COM
req rsa bad_rsa.pem "$SUBJ" -sha256
req p256 bad_p256.pem "$SUBJ" -sha256
# Empty subject.
req sm2 bad_sm2_empty_subject.pem "/" -sm3 -sigopt distid:$ID

head -c 700 /dev/urandom >bad_garbage.bin
printf 'this is not a certificate request\n' >bad_garbage.txt
: >bad_empty.bin
head -c 20000 /dev/zero | tr '\0' 'A' >bad_huge.bin
n=$(wc -c <good_sm2.der)
head -c $((n - 10)) good_sm2.der >bad_truncated.der
{ cat good_sm2.der; printf '\0'; } >bad_trailing.der
{ cat good_sm2.pem; printf 'junk after the block\n'; } >bad_pem_junk.pem
cat good_sm2.pem good_sm2_ext.pem >bad_two_pem.pem
{ cat good_sm2.pem; printf '\n\n'; } >good_sm2_trailing_ws.pem
# Flip one bit in the last byte of the signature (the final byte of the DER).
python3 - good_sm2.der bad_flipped_sig.der <<'PY'
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
b[-1] ^= 0x01
open(sys.argv[2], 'wb').write(b)
PY
# DER surgery on good_sm2.der: re-encodings that keep the
# signature valid (the signatureAlgorithm is outside the signed part) or that
# change what must be refused before the signature is checked.
openssl req -in good_sm2_ext.pem -outform DER -out "$tmp/ext.der"
openssl req -in bad_rsa.pem -outform DER -out "$tmp/rsa.der"
openssl req -in bad_p256.pem -outform DER -out "$tmp/p256.der"
python3 - good_sm2.der "$tmp/rsa.der" "$tmp/p256.der" "$tmp/ext.der" <<'PY'
import sys

def hdr(tag, n):
    if n < 0x80:
        return bytes([tag, n])
    b = n.to_bytes((n.bit_length() + 7) // 8, 'big')
    return bytes([tag, 0x80 | len(b)]) + b

def tlv(b, i):
    """(tag, start of value, end of value) of the element at i."""
    tag, n, i = b[i], b[i + 1], i + 2
    if n & 0x80:
        k = n & 0x7f
        n, i = int.from_bytes(b[i:i + k], 'big'), i + k
    return tag, i, i + n

def children(b):
    out, i = [], 0
    while i < len(b):
        _, s, e = tlv(b, i)
        out.append(b[i:e])
        i = e
    return out

der = open(sys.argv[1], 'rb').read()
_, s, e = tlv(der, 0)
tbs, alg, sig = children(der[s:e])
SM2SM3 = bytes.fromhex('06082a811ccf55018375')
ECDSA256 = bytes.fromhex('06082a8648ce3d040302')
assert alg == hdr(0x30, len(SM2SM3)) + SM2SM3

def req(t, a, g):
    body = t + a + g
    return hdr(0x30, len(body)) + body

def write(name, b):
    open(name, 'wb').write(b)

# signatureAlgorithm with explicit NULL parameters: allowed (GmSSL does it).
p = SM2SM3 + bytes([5, 0])
write('good_sm2_null_params.der', req(tbs, hdr(0x30, len(p)) + p, sig))
# Parameters that are neither absent nor NULL.
p = SM2SM3 + bytes([4, 0])
write('bad_sig_params.der', req(tbs, hdr(0x30, len(p)) + p, sig))
# ecdsa-with-SHA256 named over an SM2 key and SM2 signature.
write('bad_sig_alg_ecdsa.der', req(tbs, hdr(0x30, len(ECDSA256)) + ECDSA256, sig))
# version 1 (value 1) instead of v1 (value 0).
_, ts, te = tlv(tbs, 0)
body = tbs[ts:te]
assert body[:3] == bytes([2, 1, 0])
t2 = hdr(0x30, len(body)) + bytes([2, 1, 1]) + body[3:]
write('bad_version.der', req(t2, alg, sig))
# BER inside the subject Name (OpenSSL re-emits the received bytes of a
# Name, so only a rebuild of the name shows it): long-form length.
subj = children(body)[1]
assert subj[0] == 0x30 and subj[1] < 0x80
subj_ber = bytes([0x30, 0x81, subj[1]]) + subj[2:]
b3 = body[:3] + subj_ber + body[3 + len(subj):]
write('bad_ber_name.der', req(hdr(0x30, len(b3)) + b3, alg, sig))
# Non-SM2 keys under an SM2-with-SM3 signatureAlgorithm: the key is refused.
for src, name in ((sys.argv[2], 'bad_rsa_key.der'), (sys.argv[3], 'bad_p256_key.der')):
    d = open(src, 'rb').read()
    _, s2, e2 = tlv(d, 0)
    t, _, g = children(d[s2:e2])
    write(name, req(t, alg, g))
# The extensionRequest attribute twice (OpenSSL 3 will not add it twice).
d = open(sys.argv[4], 'rb').read()
_, s2, e2 = tlv(d, 0)
t, a4, g = children(d[s2:e2])
_, s3, e3 = tlv(t, 0)
parts = children(t[s3:e3])
assert parts[3][0] == 0xa0
_, s4, e4 = tlv(parts[3], 0)
attrs = parts[3][s4:e4] * 2
b4 = b''.join(parts[:3]) + hdr(0xa0, len(attrs)) + attrs
write('bad_dup_attr.der', req(hdr(0x30, len(b4)) + b4, a4, g))
# BER: the outer length in a longer form than needed.
_, s, e = tlv(der, 0)
n = e - s
write('bad_ber_length.der', bytes([0x30, 0x84]) + n.to_bytes(4, 'big') + der[s:e])
PY

# Certificates for gmca_cert_parse (cert_* are not requests).
openssl req -x509 -new -key "$tmp/sm2.pem" -sm3 -sigopt distid:$ID -days 3650 \
	-subj "/C=CN/O=Test Gov CA/CN=Test SM2 Root" -out cert_good_sm2.pem
openssl x509 -in cert_good_sm2.pem -outform DER -out cert_good_sm2.der
{ cat cert_good_sm2.der; printf '\0'; } >cert_bad_trailing.der
openssl req -x509 -new -key "$tmp/rsa.pem" -sha256 -days 3650 \
	-subj "/C=CN/O=Test Gov CA/CN=Test RSA Root" -out cert_bad_rsa.pem
