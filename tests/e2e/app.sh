#!/usr/bin/env bash
# gmca app and libgmca (issue 8 items 1 and 5): a personal certificate with
# an identity card number issued by gmca is read back with `gmca app cert
# --json` and every field compared with what openssl reads from it; random,
# SM3 (GMT-REFERENCE §6 vector, HMAC against openssl) and SM4-GCM round trip
# and tamper through the command; then libgmca is installed under a prefix
# and a small C program built with pkg-config against it (shared, and
# static) parses the certificate. The guide's example programs (examples/*.c)
# are built the same way and run against certificates and CRLs of this CA,
# and docs/libgmca.md must have an entry for every exported function.
source "$(dirname "$0")/common.bash"
: "${GMCA_BUILD:?GMCA_BUILD must point at the build directory}"

CA="$T/ca"
new_ca "$CA"
ID=11010519491231002X
echo "{\"identity_card_number\": \"$ID\", \"san\": {\"email\": [\"zhang@example.gov.cn\"]}}" >"$T/id.json"
sm2_csr alice "/C=CN/O=测试单位/CN=张三"
"$GMCA" --dir "$CA" cert issue --profile personal-sign --csr "$T/alice.csr" --info "$T/id.json" \
  --out "$T/alice.pem" >/dev/null
openssl x509 -in "$T/alice.pem" -outform DER -out "$T/alice.der"

# --- gmca app cert --json, field by field against openssl ---
expect_exit 0 "app cert --json" -- "$GMCA" app cert --in "$T/alice.pem" --json
cp "$T/out" "$T/cert.json"
j() { node -e 'const o=JSON.parse(require("fs").readFileSync(process.argv[1]));
  const v=process.argv[2].split(".").reduce((a,k)=>a==null?a:a[k],o);
  console.log(typeof v==="object"?JSON.stringify(v):v)' "$T/cert.json" "$1"; }
same() { if [ "$2" = "$3" ]; then ok; else bad "$1: '$2' != '$3'"; fi; }

same "serial" "$(j serial)" "$(openssl x509 -in "$T/alice.pem" -noout -serial | cut -d= -f2)"
same "subject CN" "$(j subject.attributes.2.value)" "张三"
same "subject O" "$(j subject.attributes.1.value)" "测试单位"
same "subject C type" "$(j subject.attributes.0.type)" "C"
same "subject text" "$(j subject.text)" \
  "$(openssl x509 -in "$T/alice.pem" -noout -subject -nameopt utf8,sep_comma_plus_space,-esc_msb | sed 's/^subject=//')"
same "issuer text" "$(j issuer.text)" \
  "$(openssl x509 -in "$T/alice.pem" -noout -issuer -nameopt utf8,sep_comma_plus_space,-esc_msb | sed 's/^issuer=//')"
iso() { date -u -d "$1" +%Y-%m-%dT%H:%M:%SZ; }
same "notBefore" "$(j not_before)" \
  "$(iso "$(openssl x509 -in "$T/alice.pem" -noout -startdate | cut -d= -f2)")"
same "notAfter" "$(j not_after)" "$(iso "$(openssl x509 -in "$T/alice.pem" -noout -enddate | cut -d= -f2)")"
same "signature algorithm" "$(j signature_algorithm)" "1.2.156.10197.1.501"
same "identity card number" "$(j private_extensions.identity_card_number.value)" "$ID"
same "identity card OID" "$(j private_extensions.identity_card_number.oid)" "1.2.156.10260.4.1.1"
same "email SAN" "$(j subject_alt_names.0.value)" "zhang@example.gov.cn"
openssl x509 -in "$T/alice.pem" -noout -text >"$T/text"
# The identity number as openssl dumps the unknown extension's bytes.
check "openssl sees the identity number" grep -qF "$ID" "$T/text"
KU=$(grep -A1 'X509v3 Key Usage' "$T/text" | tail -n 1 | sed 's/^ *//')
same "key usage" "$(j key_usage | tr -d '[]"')" \
  "$(echo "$KU" | sed 's/Digital Signature/digitalSignature/; s/Non Repudiation/nonRepudiation/; s/, /,/g')"
check "key usage critical (openssl)" grep -q 'X509v3 Key Usage: critical' "$T/text"
same "key usage critical" "$(j key_usage_critical)" "true"
if grep -q 'X509v3 Basic Constraints' "$T/text"; then
  same "basic constraints" "$(j basic_constraints.ca)" \
    "$(grep -A1 'X509v3 Basic Constraints' "$T/text" | tail -n 1 | grep -q 'CA:TRUE' && echo true || echo false)"
fi
same "certificate SM3" "$(j fingerprint_sm3)" \
  "$(openssl dgst -sm3 -r "$T/alice.der" | cut -d' ' -f1)"
same "public key SM3" "$(j public_key_sm3)" \
  "$(openssl x509 -in "$T/alice.pem" -noout -pubkey | openssl pkey -pubin -outform DER | openssl dgst -sm3 -r | cut -d' ' -f1)"
same "public key" "$(j public_key)" \
  "$(openssl x509 -in "$T/alice.pem" -noout -text | sed -n '/pub:/,/ASN1 OID/p' | grep -v 'pub:\|ASN1' | tr -d ' :\n')"
expect_exit 0 "app cert (DER, text)" -- "$GMCA" app cert --in "$T/alice.der"
check "text output has the identity number" grep -q "identity_card_number *$ID" "$T/out"

# --- refusals ---
head -c 300 "$T/alice.der" >"$T/trunc.der"
expect_exit 3 "truncated DER" -- "$GMCA" app cert --in "$T/trunc.der"
expect_err "malformed or truncated DER"
cat "$T/alice.der" <(printf '\0') >"$T/trail.der"
expect_exit 3 "trailing byte" -- "$GMCA" app cert --in "$T/trail.der"
expect_err "trailing bytes"
expect_exit 4 "missing file" -- "$GMCA" app cert --in "$T/nope.pem"
expect_exit 2 "no --in" -- "$GMCA" app cert --json
expect_exit 2 "option of another subcommand" -- "$GMCA" app cert --in "$T/alice.pem" --bytes 4
expect_exit 2 "unknown subcommand" -- "$GMCA" app frob

# --- random ---
expect_exit 0 "random hex" -- "$GMCA" app random --bytes 32 --hex
check "32 random bytes as 64 hex" grep -qE '^[0-9a-f]{64}$' "$T/out"
R1=$(cat "$T/out")
expect_exit 0 "random hex again" -- "$GMCA" app random --bytes 32 --hex
check "two draws differ" test "$R1" != "$(cat "$T/out")"
"$GMCA" app random --bytes 1000 >"$T/rand.bin"
same "raw random length" "$(stat -c %s "$T/rand.bin")" 1000
expect_exit 2 "random --bytes 0" -- "$GMCA" app random --bytes 0
expect_exit 2 "random over the cap" -- "$GMCA" app random --bytes 1048577

# --- SM3 and HMAC-SM3 ---
same "SM3(abc)" "$(printf abc | "$GMCA" app sm3)" \
  66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0
head -c 200000 /dev/urandom >"$T/big"
same "SM3 of a file (streamed)" "$("$GMCA" app sm3 --in "$T/big")" \
  "$(openssl dgst -sm3 -r "$T/big" | cut -d' ' -f1)"
same "HMAC-SM3" "$("$GMCA" app sm3 --in "$T/big" --hmac-key-hex 00112233445566778899)" \
  "$(openssl dgst -sm3 -mac HMAC -macopt hexkey:00112233445566778899 -r "$T/big" | cut -d' ' -f1)"
expect_exit 2 "bad HMAC key hex" -- "$GMCA" app sm3 --in "$T/big" --hmac-key-hex 0g

# --- SM4-GCM ---
K=0123456789abcdeffedcba9876543210
expect_exit 0 "sm4 encrypt" -- "$GMCA" app sm4 --encrypt --key-hex $K --in "$T/big" --out "$T/big.enc"
same "sealed size (IV + text + tag)" "$(stat -c %s "$T/big.enc")" $((200000 + 28))
expect_exit 0 "sm4 decrypt" -- "$GMCA" app sm4 --decrypt --key-hex $K --in "$T/big.enc" --out "$T/big.dec"
check "round trip" cmp -s "$T/big" "$T/big.dec"
same "plaintext is owner-only" "$(stat -c %a "$T/big.dec")" 600
expect_exit 6 "sm4 refuses an existing --out" -- "$GMCA" app sm4 --decrypt --key-hex $K --in "$T/big.enc" --out "$T/big.dec"
cp "$T/big.enc" "$T/tampered.enc"
printf '\x55' | dd of="$T/tampered.enc" bs=1 seek=1000 conv=notrunc 2>/dev/null
expect_exit 3 "tampered ciphertext" -- "$GMCA" app sm4 --decrypt --key-hex $K --in "$T/tampered.enc" --out "$T/t.dec"
expect_err "authentication failed"
check "nothing written on failure" test ! -e "$T/t.dec"
expect_exit 3 "wrong key" -- "$GMCA" app sm4 --decrypt --key-hex "${K%0}1" --in "$T/big.enc" --out "$T/w.dec"
expect_exit 2 "short key" -- "$GMCA" app sm4 --encrypt --key-hex 0011 --in "$T/big" --out "$T/x"
expect_exit 2 "both directions" -- "$GMCA" app sm4 --encrypt --decrypt --key-hex $K --in "$T/big" --out "$T/x"

# --- libgmca installed under a prefix, used through pkg-config ---
P="$T/prefix"
cmake --install "$GMCA_BUILD" --prefix "$P" >/dev/null
LIBDIR=$(dirname "$(find "$P" -name gmca.pc)")/..
check "installed: header" test -f "$P/include/gmca/gmca.h"
check "installed: command" test -x "$P/bin/gmca"
check "installed: the shipped profiles" test -f "$P/share/gmca/profiles/personal-sign.json"
# An installed gmca takes its profiles from beside itself, not from the source tree:
# one profile removed there is missing from a CA it makes.
rm "$P/share/gmca/profiles/email.json"
expect_exit 0 "the installed gmca makes a CA" -- env -u GMCA_PROFILES GMCA="$P/bin/gmca" \
  bash -c '. "$GMCA_SRC/tests/e2e/common.bash"; init_ca "$1" --root-dn "C=CN, O=安装测试, CN=安装测试根 CA" \
    --sub-dn "C=CN, O=安装测试, CN=安装测试运营 CA"' _ "$T/installed-ca"
check "it used the installed profiles" test -f "$T/installed-ca/profiles/personal-sign.json"
check "... and not the source tree's" test ! -e "$T/installed-ca/profiles/email.json"
check "installed: static library" test -f "$LIBDIR/libgmca.a"
check "installed: shared library with SONAME" test -L "$LIBDIR/libgmca.so.0"
same "SONAME" "$(readelf -d "$LIBDIR/libgmca.so" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')" libgmca.so.0
# Only the public API leaves the libraries.
same "shared exports only the public headers" \
  "$(nm -D --defined-only "$LIBDIR/libgmca.so" | awk '$2 == "T" {print $3}' | sed 's/@.*//' | sort | tr '\n' ' ')" \
  "$(cat "$P"/include/gmca/*.h | grep -oE '\bgmca_[a-z0-9_]+\(' | tr -d '(' | sort -u | tr '\n' ' ')"
check "static archive hides internal symbols" \
  bash -c "! nm -g --defined-only '$LIBDIR/libgmca.a' | grep -E ' T (gmca_cert_parse|gmca_sm2_sign|gmca_store_)'"
cat >"$T/rp.c" <<'EOF'
#include <stdio.h>
#include <gmca/gmca.h>

int main(int argc, char **argv)
{
        struct gmca_status st;
        struct gmca_certificate *c = gmca_certificate_load(argv[1], &st);
        uint8_t md[GMCA_SM3_DIGEST_SIZE];

        if (argc != 2 || c == NULL) {
                fprintf(stderr, "rp: %s (%s)\n", c == NULL ? st.message : "usage", gmca_rc_name(st.code));
                return 1;
        }
        printf("%s\n%s\n%s\n", gmca_certificate_subject_attribute(c, "CN"),
               gmca_certificate_info(c)->fingerprint,
               gmca_certificate_private_extension(c, "1.2.156.10260.4.1.1"));
        gmca_certificate_free(c);
        if (gmca_sm3_digest("abc", 3, md, &st) != 0)
                return 1;
        for (int i = 0; i < 4; i++)
                printf("%02x", md[i]);
        printf("\n");
        return 0;
}
EOF
export PKG_CONFIG_PATH="$LIBDIR/pkgconfig"
FP=$(openssl dgst -sm3 -r "$T/alice.der" | cut -d' ' -f1)
WANT=$(printf '张三\n%s\n%s\n66c7f0f4' "$FP" "$ID")
# shellcheck disable=SC2046
if cc -Wall -Werror -o "$T/rp" "$T/rp.c" $(pkg-config --cflags --libs gmca); then ok; else bad "build against libgmca.so"; fi
same "program on the shared library" "$(LD_LIBRARY_PATH="$LIBDIR" "$T/rp" "$T/alice.pem")" "$WANT"
check "it really uses libgmca.so.0" bash -c "LD_LIBRARY_PATH='$LIBDIR' ldd '$T/rp' | grep -q 'libgmca.so.0 => $LIBDIR'"
# shellcheck disable=SC2046
if cc -Wall -Werror -o "$T/rp-static" "$T/rp.c" $(pkg-config --cflags gmca) "$LIBDIR/libgmca.a" \
  $(pkg-config --static --libs-only-l gmca | sed 's/-lgmca//'); then ok; else bad "build against libgmca.a"; fi
same "program on the static library" "$("$T/rp-static" "$T/alice.der")" "$WANT"
expect_exit 1 "program refuses a truncated certificate" -- "$T/rp-static" "$T/trunc.der"
check "with the library's cause" grep -qE "truncated DER.*\(invalid input\)$" "$T/err"

# --- examples/*.c: the guide's programs build against the installed library and run ---
EX="$GMCA_SRC/examples"
for src in "$EX"/*.c; do
  # shellcheck disable=SC2046
  if cc -Wall -Wextra -Werror -o "$T/$(basename "$src" .c)" "$src" $(pkg-config --cflags --libs gmca); then
    ok
  else
    bad "example $(basename "$src") does not build against libgmca"
  fi
done
g() { "$GMCA" --dir "$CA" "$@"; }
g ca export --ca root >"$T/root.pem"
g ca export --ca sub >"$T/sub.pem"
sm2_csr exsig "/C=CN/O=测试单位/CN=签名者"
g cert issue --profile personal-sign --csr "$T/exsig.csr" --info "$T/id.json" --out "$T/exsig.pem" >"$T/exsig.serial"
sm2_csr exenc "/C=CN/O=测试单位/CN=收件人"
g cert issue --profile personal-enc --csr "$T/exenc.csr" --info "$T/id.json" --out "$T/exenc.pem" >/dev/null
g crl generate --ca sub >/dev/null
g crl generate --ca root >/dev/null
printf '公文 %.0s' $(seq 300) >"$T/doc.txt"
RP() { LD_LIBRARY_PATH="$LIBDIR" "$T/relying_party" "$@"; }
EXARGS=("$T/exsig.pem" "$T/exsig.key" "$T/exenc.pem" "$T/exenc.key" "$T/root.pem" "$T/sub.pem")
expect_exit 0 "example: sign, envelope, open, verify, validate with CRLs" -- \
  RP "$T/doc.txt" "${EXARGS[@]}" "$CA/crl/sub.crl" "$CA/crl/root.crl"
check "example: the signer" grep -q '^signed by: .*CN=签名者' "$T/out"
check "example: revocation checked by CRL" grep -q 'valid (revocation: crl)' "$T/out"
check "example: OK" grep -qx OK "$T/out"
# What the example wrote, read by the gmca command and by openssl.
expect_exit 0 "example's SignedData verifies with gmca app verify" -- \
  "$GMCA" app verify --in "$T/doc.txt.p7s" --ca "$T/sub.pem" --out "$T/doc.back"
check "... with the document as content" cmp -s "$T/doc.txt" "$T/doc.back"
expect_exit 0 "example's envelope opens with gmca app decrypt" -- \
  "$GMCA" app decrypt --cert "$T/exenc.pem" --key "$T/exenc.key" --in "$T/doc.txt.p7e" --out "$T/p7s.back"
check "... to the SignedData" cmp -s "$T/doc.txt.p7s" "$T/p7s.back"
# Refusals reach the example's caller with the library's cause.
expect_exit 1 "example: the recipient's key does not match" -- \
  RP "$T/doc.txt" "$T/exsig.pem" "$T/exsig.key" "$T/exenc.pem" "$T/exsig.key" "$T/root.pem" "$T/sub.pem"
check "... said so" grep -q 'open the envelope: .*does not belong' "$T/err"
expect_exit 0 "revoke the signer" -- g cert revoke --serial "$(cat "$T/exsig.serial")" --reason keyCompromise
g crl generate --ca sub >/dev/null
expect_exit 1 "example: a revoked signer is refused" -- \
  RP "$T/doc.txt" "${EXARGS[@]}" "$CA/crl/sub.crl" "$CA/crl/root.crl"
check "... as revoked" grep -q 'not valid: revoked' "$T/err"
check "... after the signature verified" grep -q '^signed by: ' "$T/out"

# --- docs/libgmca.md has an entry for every exported function ---
DOC="$GMCA_SRC/docs/libgmca.md"
# GMCA_EXPORT declarations, joined so that a name on the next line is found.
tr '\n' ' ' <<<"$(cat "$GMCA_SRC"/include/gmca/*.h)" | grep -oE 'GMCA_EXPORT[^;(]*\(' |
  grep -oE 'gmca_[a-z0-9_]+ *\($' | tr -d ' (' | sort -u >"$T/exported"
check "the headers export 50 or more functions" test "$(wc -l <"$T/exported")" -ge 50
missing=$(while read -r f; do grep -qE "^#{2,4} \`$f\`" "$DOC" || echo "$f"; done <"$T/exported")
if [ -z "$missing" ]; then ok; else bad "docs/libgmca.md lacks an entry for: $missing"; fi
# ... and none for a function that does not exist.
extra=$(grep -oE '^#{2,4} `gmca_[a-z0-9_]+`' "$DOC" | grep -oE 'gmca_[a-z0-9_]+' | sort -u | comm -23 - "$T/exported")
if [ -z "$extra" ]; then ok; else bad "docs/libgmca.md documents functions the headers lack: $extra"; fi

finish
