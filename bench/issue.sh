#!/usr/bin/env bash
# Issuance benchmark: gmca's library (CSR check, signing, store insert and
# audit record per certificate) against, in the same run, (a) the crypto
# ceiling — one SM2 verify + one SM2 sign per certificate on one core — and
# (b) `openssl ca -batch -infiles` issuing the same CSRs in one process.
# Usage: bench/issue.sh [BUILD_DIR]   (N=10000 by default; N=... to change)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
N=${N:-10000}
bin=$build/bench_issue
export GMCA_PROFILES=$src/conf/profiles
w=$(mktemp -d "${TMPDIR:-/tmp}/gmca-bench.XXXXXX")
trap 'rm -rf "$w"' EXIT

echo "== preparing $N SM2 CSRs (not timed)"
"$bin" prepare "$w" "$N" >/dev/null

rate() { sed -n 's/.*= \([0-9]*\)\/s$/\1/p'; }
out=$("$bin" ceiling "$w" "$N"); echo "$out"; ceil=$(echo "$out" | rate)
out=$(taskset -c 0 "$bin" issue "$w" "$N" 1 "$w/ca1"); echo "$out"; one=$(echo "$out" | rate)
out=$("$bin" issue "$w" "$N" 2 "$w/ca2"); echo "$out"; two=$(echo "$out" | rate)

# openssl ca with an SM2 CA and comparable extensions, one process.
o=$w/openssl; mkdir -p "$o/new"
: > "$o/index.txt"; echo 1000 > "$o/serial"
cat > "$o/ca.cnf" <<CNF
[ ca ]
default_ca = bench
[ bench ]
dir = $o
database = $o/index.txt
new_certs_dir = $o/new
serial = $o/serial
certificate = $o/ca.pem
private_key = $o/ca.key
default_md = sm3
default_days = 365
policy = anything
unique_subject = no
x509_extensions = leaf
copy_extensions = none
[ anything ]
countryName = supplied
organizationName = optional
commonName = supplied
[ req ]
distinguished_name = dn
[ dn ]
[ v3_ca ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ leaf ]
basicConstraints = CA:false
keyUsage = critical, digitalSignature, nonRepudiation
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
crlDistributionPoints = URI:http://127.0.0.1:8080/crl/sub.crl
authorityInfoAccess = OCSP;URI:http://127.0.0.1:8080/ocsp, caIssuers;URI:http://127.0.0.1:8080/ca/sub.crt
certificatePolicies = 2.5.29.32.0
1.2.156.10260.4.1.1 = ASN1:EXPLICIT:0,PRINTABLESTRING:11010519491231002X
CNF
openssl genpkey -algorithm SM2 -out "$o/ca.key" 2>/dev/null
openssl req -new -x509 -config "$o/ca.cnf" -extensions v3_ca -key "$o/ca.key" -sm3 \
  -sigopt distid:1234567812345678 -subj "/C=CN/O=bench/CN=openssl SM2 CA" -days 3650 \
  -out "$o/ca.pem"
t0=$(date +%s.%N)
openssl ca -batch -config "$o/ca.cnf" -notext -sigopt distid:1234567812345678 \
  -vfyopt distid:1234567812345678 -out "$o/all.pem" -infiles "$w"/csr/*.pem 2>"$o/log" ||
  { tail -5 "$o/log"; exit 1; }
t1=$(date +%s.%N)
ossl=$(echo "$N $t0 $t1" | awk '{printf "%.0f", $1 / ($3 - $2)}')
echo "openssl ca -batch -infiles (one process): $N in $(echo "$t0 $t1" | awk '{printf "%.3f", $2 - $1}') s = $ossl/s"

echo
echo "== summary"
awk -v c="$ceil" -v a="$one" -v b="$two" -v o="$ossl" 'BEGIN {
  printf "one core:   %d certs/s = %.0f%% of the crypto ceiling (%d/s; goal >= 70%%)\n", a, 100 * a / c, c
  printf "vs openssl: %.2fx openssl ca (%d/s; goal > 1)\n", a / o, o
  printf "two cores:  %d certs/s = %.2fx one core (goal >= 1.6x)\n", b, b / a
}'
