#!/usr/bin/env bash
# Issuance benchmark: gmca's library (CSR check, signing, store insert and
# audit record per certificate) against, in the same run, (a) the crypto
# ceiling — one SM2 verify + one SM2 sign per certificate on one core — and
# (b) `openssl ca -batch -infiles` issuing the same CSRs in one process.
# Usage: bench/issue.sh [BUILD_DIR]   (N=10000 certificates, R=3 rounds, BATCH=32)
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

# A shared machine's speed drifts: each figure is the best of R rounds, and
# the rounds interleave the measurements so that they see the same machine.
rate() { sed -n 's/.*= \([0-9]*\)\/s$/\1/p'; }
best() { [ -z "$1" ] || [ "$2" -gt "$1" ] && echo "$2" || echo "$1"; }
R=${R:-3}
B=${BATCH:-32}
ceil="" ceil2="" single="" one="" two=""
for r in $(seq "$R"); do
  rm -rf "$w"/ca*
  out=$(taskset -c 1 "$bin" ceiling "$w" "$N"); echo "$out"; ceil=$(best "$ceil" "$(echo "$out" | rate)")
  out=$(taskset -c 1 "$bin" issue "$w" "$N" 1 "$w/ca0" 1); echo "$out"; single=$(best "$single" "$(echo "$out" | rate)")
  out=$(taskset -c 1 "$bin" issue "$w" "$N" 1 "$w/ca1" "$B"); echo "$out"; one=$(best "$one" "$(echo "$out" | rate)")
  out=$("$bin" issue "$w" "$N" 2 "$w/ca2" "$B"); echo "$out"; two=$(best "$two" "$(echo "$out" | rate)")
  out=$("$bin" ceiling "$w" "$N" 2); echo "$out"; ceil2=$(best "$ceil2" "$(echo "$out" | rate)")
done

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
ossl=""
for r in $(seq "$R"); do
: > "$o/index.txt"; rm -f "$o"/new/*
t0=$(date +%s.%N)
taskset -c 1 openssl ca -batch -config "$o/ca.cnf" -notext -sigopt distid:1234567812345678 \
  -vfyopt distid:1234567812345678 -out "$o/all.pem" -infiles "$w"/csr/*.pem 2>"$o/log" ||
  { tail -5 "$o/log"; exit 1; }
t1=$(date +%s.%N)
o1=$(echo "$N $t0 $t1" | awk '{printf "%.0f", $1 / ($3 - $2)}')
echo "openssl ca -batch -infiles (one process): $N in $(echo "$t0 $t1" | awk '{printf "%.3f", $2 - $1}') s = $o1/s"
ossl=$(best "$ossl" "$o1")
done

echo
echo "== summary"
awk -v c2="$ceil2" -v c="$ceil" -v a="$one" -v b="$two" -v o="$ossl" -v s="$single" -v B="$B" 'BEGIN {
  printf "one core:   %d certs/s with group commit (%d a transaction) = %.0f%% of the crypto ceiling (%d/s; goal >= 70%%)\n", a, B, 100 * a / c, c
  printf "            %d certs/s with one fsync-ed transaction per certificate = %.0f%% of the ceiling\n", s, 100 * s / c
  printf "vs openssl: %.2fx openssl ca (%d/s; goal > 1)\n", a / o, o
  printf "two cores:  %d certs/s = %.2fx one core (goal >= 1.6x); the crypto ceiling itself scales %.2fx here\n", b, b / a, c2 / c
}'
