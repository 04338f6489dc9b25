#!/usr/bin/env bash
# CA compromise benchmark (CPS §6.10.3): an operational CA with N
# certificates (default 100000) is compromised with `gmca ca compromise`,
# which revokes each one, re-issues it under the new CA and records the
# pair, a batch per transaction. Its rate is printed next to two figures
# measured in the same run on the same core: plain issuance through the
# library (bench_issue issue: CSR check, signing, store insert and audit
# record, one transaction per certificate) and the crypto ceiling (one SM2
# verify + one SM2 sign), since a re-issue is an issuance without the CSR
# check plus a revocation.
# Usage: bench/compromise.sh [BUILD_DIR]   (N=100000, BATCH=500)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$src/build}
N=${N:-100000}
B=${BATCH:-500}
gmca=$build/gmca
bin=$build/bench_issue
export GMCA_PROFILES=$src/conf/profiles
w=$(mktemp -d "${TMPDIR:-/tmp}/gmca-bench.XXXXXX")
trap 'rm -rf "$w"' EXIT
rate() { sed -n 's/.*= \([0-9]*\)\/s$/\1/p'; }

echo "== preparing $N SM2 CSRs (not timed)"
mkdir -p "$w/gen"
"$bin" prepare "$w/gen" "$N" >/dev/null

# The reference: plain issuance through the library, and the CA it fills.
echo "== the references"
out=$(taskset -c 1 "$bin" ceiling "$w/gen" "$((N < 10000 ? N : 10000))")
echo "$out"
ceil=$(echo "$out" | rate)
out=$(taskset -c 1 "$bin" issue "$w/gen" "$N" 1 "$w/ca" 1)
echo "$out"
issue=$(echo "$out" | rate)

# bench_issue's custodians (bench/issue.c) hold the shares of that CA.
pins=(Kq1pinWx7A Kq2pinWx7A Kq3pinWx7A)
args=()
umask 077
for i in 1 2 3; do
  echo "${pins[$((i - 1))]}" > "$w/pin$i"
  args+=(--share "$w/ca.shares/share-$i.json" --pin-file "$w/pin$i")
done
n=$("$gmca" --dir "$w/ca" cert list --ca sub --status valid --json | grep -c '"serial"')
echo "== compromising CA sub with $n valid certificates ($B a transaction)"
t0=$(date +%s.%N)
taskset -c 1 "$gmca" --dir "$w/ca" ca compromise --ca sub --batch "$B" "${args[@]}" > "$w/result.json"
t1=$(date +%s.%N)
cat "$w/result.json"
reissued=$(sed -n 's/.*"reissued": \([0-9]*\).*/\1/p' "$w/result.json")
[ "$reissued" = "$n" ] || { echo "bench: $reissued re-issued, want $n" >&2; exit 1; }
"$gmca" --dir "$w/ca" audit verify

echo
echo "== summary"
awk -v n="$n" -v a="$t0" -v b="$t1" -v i="$issue" -v c="$ceil" -v B="$B" 'BEGIN {
  r = n / (b - a)
  printf "compromise: %d certificates revoked + re-issued + recorded in %.1f s = %.0f/s (one core, %d a transaction, whole command incl. ceremony and final CRLs)\n", n, b - a, r, B
  printf "issuance:   %d/s (library, one core, one transaction per certificate): compromise = %.2fx\n", i, r / i
  printf "ceiling:    %d/s (1 SM2 verify + 1 SM2 sign, one core): compromise = %.0f%%\n", c, 100 * r / c
}'
