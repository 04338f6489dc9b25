#!/usr/bin/env bash
# selftest.sh — proves sm2verify.mjs accepts good SM2 artifacts and rejects bad ones.
#
# Artifacts are made with the openssl CLI (OpenSSL 3.0 needs -sigopt distid:...
# to sign with the GM/T 0009 default ID), so this checks sm-crypto against
# OpenSSL, independently of gmca's own code.  Also checks the GM/T 0003.5
# standard SM2 signature vector directly with sm-crypto.
#
# Usage: bash tests/interop/selftest.sh      (prints "N passed, 0 failed")
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VERIFY="$HERE/sm2verify.mjs"
ID=1234567812345678

command -v node >/dev/null || { echo "selftest: node not found" >&2; exit 1; }
command -v openssl >/dev/null || { echo "selftest: openssl not found" >&2; exit 1; }

if [ ! -d "$HERE/node_modules/sm-crypto" ] || [ ! -d "$HERE/node_modules/@peculiar/asn1-x509" ] \
   || [ ! -d "$HERE/node_modules/@peculiar/asn1-csr" ]; then
  echo "selftest: installing node dependencies in $HERE"
  (cd "$HERE" && npm install --no-audit --no-fund >/dev/null)
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/sm2verify-selftest.XXXXXX")"
trap 'rm -rf "$TMP"' EXIT

PASS=0
FAIL=0
FAILED=()

ok()  { PASS=$((PASS + 1)); echo "  pass: $1"; }
bad() { FAIL=$((FAIL + 1)); FAILED+=("$1"); echo "  FAIL: $1" >&2; }

# expect <wanted-exit-code> <description> <sm2verify args...>
expect() {
  local want="$1" desc="$2"; shift 2
  local out rc=0
  out="$(node "$VERIFY" "$@" 2>&1)" || rc=$?
  if [ "$rc" -eq "$want" ]; then
    ok "$desc  [exit $rc: ${out%%$'\n'*}]"
  else
    bad "$desc (wanted exit $want, got $rc: $out)"
  fi
}

# flip_byte <in> <out> <offset>: copy with byte at offset XOR 0x01
flip_byte() {
  node -e '
    const fs = require("fs");
    const b = fs.readFileSync(process.argv[1]);
    const off = Number(process.argv[3]);
    if (!(off >= 0 && off < b.length)) { console.error("offset out of range"); process.exit(1); }
    b[off] ^= 0x01;
    fs.writeFileSync(process.argv[2], b);
  ' "$1" "$2" "$3"
}

cd "$TMP"
echo "== generating SM2 test PKI with $(openssl version)"

cat > ca.cnf <<EOF
[ req ]
distinguished_name = req_dn
[ req_dn ]

[ ca ]
default_ca = CA_default
[ CA_default ]
dir              = $TMP/ca
database         = \$dir/index.txt
crlnumber        = \$dir/crlnumber
serial           = \$dir/serial
new_certs_dir    = \$dir/newcerts
certificate      = $TMP/root.crt
private_key      = $TMP/root.key
default_md       = sm3
default_days     = 30
default_crl_days = 7
policy           = policy_any
crl_extensions   = crl_ext
[ policy_any ]
commonName = supplied
[ crl_ext ]
authorityKeyIdentifier = keyid:always

[ v3_ca ]
basicConstraints       = critical, CA:true
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
[ usr_sign ]
basicConstraints       = CA:false
keyUsage               = critical, digitalSignature, nonRepudiation
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid, issuer
EOF
mkdir -p ca/newcerts
: > ca/index.txt
echo 1000 > ca/crlnumber
echo 01 > ca/serial

q() { "$@" >/dev/null 2>openssl.err || { cat openssl.err >&2; echo "selftest: command failed: $*" >&2; exit 1; }; }

ROOT_DN="/C=CN/O=gmca interop selftest/CN=SM2 Test Root"
q openssl genpkey -algorithm SM2 -out root.key
q openssl req -config ca.cnf -new -x509 -key root.key -sm3 -sigopt distid:$ID \
    -subj "$ROOT_DN" -days 30 -extensions v3_ca -out root.crt
# second root: same subject DN, different key -> only the signature check can tell
q openssl genpkey -algorithm SM2 -out root2.key
q openssl req -config ca.cnf -new -x509 -key root2.key -sm3 -sigopt distid:$ID \
    -subj "$ROOT_DN" -days 30 -extensions v3_ca -out root2.crt
# third root with a different DN (name-mismatch check)
q openssl genpkey -algorithm SM2 -out root3.key
q openssl req -config ca.cnf -new -x509 -key root3.key -sm3 -sigopt distid:$ID \
    -subj "/C=CN/O=Other/CN=Other Root" -days 30 -extensions v3_ca -out root3.crt

q openssl genpkey -algorithm SM2 -out user.key
q openssl req -new -key user.key -sm3 -sigopt distid:$ID -subj "/C=CN/O=Org/CN=Zhang San" -out user.csr
q openssl req -new -key user.key -sm3 -subj "/C=CN/O=Org/CN=Zhang San" -out user-noid.csr   # empty ID
q openssl x509 -req -in user.csr -CA root.crt -CAkey root.key -CAcreateserial -sm3 \
    -sigopt distid:$ID -vfyopt distid:$ID -days 30 -extfile ca.cnf -extensions usr_sign -out user.crt
q openssl ca -batch -config ca.cnf -revoke user.crt -crl_reason keyCompromise
q openssl ca -batch -config ca.cnf -gencrl -sigopt distid:$ID -out root.crl

# sanity: OpenSSL itself accepts what it made (with the ID)
q openssl verify -vfyopt distid:$ID -CAfile root.crt user.crt
q openssl req -in user.csr -verify -noout -vfyopt distid:$ID

# DER copies (PEM and DER input are both exercised)
q openssl x509 -in root.crt -outform DER -out root.der
q openssl x509 -in user.crt -outform DER -out user.der
q openssl req -in user.csr -outform DER -out user.csr.der
q openssl crl -in root.crl -outform DER -out root.crl.der

# tampered copies
#  - leaf with the last byte of the signature (last byte of s) flipped
LEN=$(stat -c %s user.der)
flip_byte user.der user-badsig.der $((LEN - 1))
#  - CRL with one byte of thisUpdate (the last seconds digit; stays a valid time) flipped
LINE=$(openssl asn1parse -inform DER -in root.crl.der | grep -m1 -E 'UTCTIME|GENERALIZEDTIME')
OFF=$(sed -E 's/^ *([0-9]+):.*/\1/' <<<"$LINE")
HL=$(sed -E 's/.*hl= *([0-9]+).*/\1/' <<<"$LINE")
L=$(sed -E 's/.* l= *([0-9]+).*/\1/' <<<"$LINE")
flip_byte root.crl.der root-badtbs.crl.der $((OFF + HL + L - 2))
cmp -s root.crl.der root-badtbs.crl.der && { echo "selftest: CRL byte flip did nothing" >&2; exit 1; }

echo "== accept: good artifacts"
expect 0 "self-signed root (PEM), no issuer-file"       cert root.crt
expect 0 "self-signed root (DER), issuer-file = itself" cert root.der root.crt
expect 0 "CSR (PEM)"                                    csr  user.csr
expect 0 "CSR (DER)"                                    csr  user.csr.der
expect 0 "leaf cert (PEM) under root"                   cert user.crt root.crt
expect 0 "leaf cert (DER) under root (DER)"             cert user.der root.der
expect 0 "CRL (PEM) under root"                         crl  root.crl root.crt
expect 0 "CRL (DER) under root"                         crl  root.crl.der root.der
expect 0 "CSR signed with empty ID, verified with --id ''" --id '' csr user-noid.csr

echo "== reject: bad artifacts"
expect 1 "leaf against a different root with the same DN" cert user.crt root2.crt
expect 1 "leaf against a root with a different DN"         cert user.crt root3.crt
expect 1 "leaf without issuer-file (not self-signed)"      cert user.crt
expect 1 "CSR signed with the empty ID"                    csr  user-noid.csr
expect 1 "good CSR with a wrong --id"                      --id 1234567812345679 csr user.csr
expect 1 "leaf with one signature byte flipped"            cert user-badsig.der root.crt
expect 1 "CRL with one TBS byte (thisUpdate) flipped"      crl  root-badtbs.crl.der root.crt
expect 1 "CRL against a different root with the same DN"   crl  root.crl root2.crt
expect 1 "root2 against root (same DN, other key)"         cert root2.crt root.crt

echo "== usage / parse errors"
expect 2 "no arguments"
expect 2 "unknown kind"                  key user.key
expect 2 "CRL without issuer-file"       crl root.crl
expect 2 "private key given as a cert"   cert user.key
expect 2 "missing file"                  cert "$TMP/does-not-exist.crt"

echo "== GM/T 0003.5 standard signature vector (sm-crypto directly)"
vec_rc=0
vec_out="$(cd "$HERE" && node -e '
  const { sm2, sm3 } = require("sm-crypto");
  const ID = "1234567812345678";
  const M = Buffer.from("message digest");
  const PA = "04" +
    "09F9DF311E5421A150DD7D161E4BC5C672179FAD1833FC076BB08FF356F35020" +
    "CCEA490CE26775A52DC6EA718CC1AA600AED05FBF35E084A6632F6072DA9AD13";
  const ZA = "B2E14C5C79C6DF5B85F4FE7ED8DB7A262B9DA7E07CCB0EA9F4747B8CCDA8A4F3";
  const E  = "F0B43E94BA45ACCAACE692ED534382EB17E6AB5A19CE7B31F4486FDFC0D28640";
  const r  = "F5A03B0648D2C4630EEAC513E1BB81A15944DA3827D5B74143AC7EACEEE720B3";
  const s  = "B1B6AA29DF212FD8763182BC0D421CA1BB9038FD1F7F42D4840B69C485BBC1AA";
  // both r and s have the top bit set -> a 00 pad byte each: 2+33 + 2+33 = 70 = 0x46
  const der = ("3046" + "022100" + r + "022100" + s).toLowerCase();
  // sm2p256v1 a, b, Gx, Gy (GMT-REFERENCE section 7)
  const a  = "FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFC";
  const b  = "28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93";
  const Gx = "32C4AE2C1F1981195F9904466A39C9948FE30BBFF2660BE1715A4589334C74C7";
  const Gy = "BC3736A2F4F6779C59BDCEE36B692153D0A9877CC62A474002DF32E52139F0A0";
  const zin = Buffer.concat([Buffer.from([0x00, 0x80]), Buffer.from(ID),
    Buffer.from(a + b + Gx + Gy + PA.slice(2), "hex")]);
  const z = sm3(zin);
  const e = sm3(Buffer.concat([Buffer.from(z, "hex"), M]));
  const res = {
    za:       z.toUpperCase() === ZA,
    e:        e.toUpperCase() === E,
    pubkey:   sm2.verifyPublicKey(PA.toLowerCase()),
    verify:   sm2.doVerifySignature(Array.from(M), der, PA.toLowerCase(), { der: true, hash: true, userId: ID }),
    emptyId:  sm2.doVerifySignature(Array.from(M), der, PA.toLowerCase(), { der: true, hash: true, userId: "" }),
    otherMsg: sm2.doVerifySignature(Array.from(Buffer.from("message digesT")), der, PA.toLowerCase(), { der: true, hash: true, userId: ID }),
  };
  console.log(JSON.stringify(res));
  const good = res.za && res.e && res.pubkey && res.verify && !res.emptyId && !res.otherMsg;
  process.exit(good ? 0 : 1);
' 2>&1)" || vec_rc=$?
if [ "$vec_rc" -eq 0 ]; then
  ok "GM/T 0003.5 vector: ZA, e match; verifies with ID 1234567812345678; rejected with empty ID / other message  [$vec_out]"
else
  bad "GM/T 0003.5 vector ($vec_out)"
fi

echo
if [ "$FAIL" -ne 0 ]; then
  echo "failed checks:" >&2
  for f in "${FAILED[@]}"; do echo "  - $f" >&2; done
fi
echo "$PASS passed, $FAIL failed"
[ "$FAIL" -eq 0 ]
