#!/usr/bin/env bash
# CRL benchmark (issue 5, item 6): a CA with N revoked certificates
# (default 1,000,000, and 100,000 alongside), one CRL generated through the
# library as `gmca crl generate` does (read the store, build, SM2-sign,
# store the CRL and publish it): seconds, peak RSS of the process and CRL
# size; next to `openssl ca -gencrl -md sm3` with an SM2 CA key over the same
# entries (an index.txt written by bench_crl prepare), timed in the same run.
# Goal: <= 5 s, faster than openssl, peak memory <= 3x the CRL size.
# Usage: bench/crl.sh [BUILD_DIR]   (SIZES="100000 1000000", R=3 rounds)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
SIZES=${SIZES:-100000 1000000}
R=${R:-3}
bin=$build/bench_crl
export GMCA_PROFILES=$src/conf/profiles
w=$(mktemp -d "${TMPDIR:-/tmp}/gmca-bench.XXXXXX")
trap 'rm -rf "$w"' EXIT
field() { sed -n "s/^$1: //p"; }
# A shared machine's speed drifts: each time is the best of R rounds.
least() { [ -z "$1" ] && echo "$2" || awk -v a="$1" -v b="$2" 'BEGIN { print (b < a ? b : a) }'; }

# openssl's SM2 CA (its CRLs are signed with the default SM2 ID).
o=$w/openssl; mkdir -p "$o"
cat > "$o/ca.cnf" <<CNF
[ ca ]
default_ca = bench
[ bench ]
dir = $o
database = $o/index.txt
certificate = $o/ca.pem
private_key = $o/ca.key
crlnumber = $o/crlnumber
default_md = sm3
default_crl_hours = 24
crl_extensions = crl_ext
[ crl_ext ]
authorityKeyIdentifier = keyid
[ req ]
distinguished_name = dn
[ dn ]
[ v3_ca ]
basicConstraints = critical, CA:true
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
CNF
openssl genpkey -algorithm SM2 -out "$o/ca.key" 2>/dev/null
openssl req -new -x509 -config "$o/ca.cnf" -extensions v3_ca -key "$o/ca.key" -sm3 \
  -sigopt distid:1234567812345678 -subj "/C=CN/O=bench/CN=openssl SM2 CA" -days 3650 \
  -out "$o/ca.pem"

echo "note: the stored certificates are rows inserted through the store API (unique 16-byte"
echo "      serials, real revocation times, reasons and invalidity dates; placeholder DER)"
summary=""
for n in $SIZES; do
  echo "== N = $n: preparing the store and index.txt (not timed)"
  "$bin" prepare "$w/ca$n" "$n" "$w/index$n.txt"
  g="" o1="" peak="" base="" bytes=""
  for r in $(seq "$R"); do
    out=$("$bin" generate "$w/ca$n"); echo "$out" | sed 's/^/  gmca: /'
    g=$(least "$g" "$(echo "$out" | field gmca_seconds)")
    peak=$(least "$peak" "$(echo "$out" | field gmca_peak_mib)")
    base=$(echo "$out" | field gmca_base_mib); bytes=$(echo "$out" | field crl_bytes)

    cp "$w/index$n.txt" "$o/index.txt"; : > "$o/index.txt.attr"; echo 01 > "$o/crlnumber"
    t0=$(date +%s.%N)
    /usr/bin/time -f "%M" -o "$o/rss" openssl ca -config "$o/ca.cnf" -gencrl -md sm3 \
      -out "$o/crl.pem" 2>"$o/log" || { tail -5 "$o/log"; exit 1; }
    t1=$(date +%s.%N)
    s=$(echo "$t0 $t1" | awk '{printf "%.3f", $2 - $1}')
    orss=$(awk '{printf "%.1f", $1 / 1024}' "$o/rss")
    echo "  openssl ca -gencrl: $s s, peak $orss MiB"
    o1=$(least "$o1" "$s")
  done
  entries=$(openssl crl -in "$w/ca$n/crl/sub.crl" -inform DER -noout -text | grep -c "Serial Number:" || true)
  [ "$entries" -eq "$n" ] || { echo "the gmca CRL has $entries entries, not $n"; exit 1; }
  summary+=$(awk -v n="$n" -v g="$g" -v p="$peak" -v b="$base" -v c="$bytes" -v o="$o1" 'BEGIN {
    m = c / 1048576
    printf "N=%d: gmca %.2f s (goal <= 5 s), openssl ca -gencrl %.2f s: gmca %.1fx faster (goal > 1)\n", n, g, o, o / g
    printf "          peak RSS %.0f MiB = %.2fx the CRL of %.1f MiB (goal <= 3x); %.2fx without the %.0f MiB the process holds before the call\n", p, p / m, m, (p - b) / m, b
  }')$'\n'
done
echo
echo "== summary"
printf "%s" "$summary"
