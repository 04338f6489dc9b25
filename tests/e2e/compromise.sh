#!/usr/bin/env bash
# The CA compromise procedure (CPS §6.10.3): refusals (engine running, two
# custodians, unknown CA) audited and changing nothing; an operational CA
# with 1500 certificates compromised while being killed with SIGKILL at
# random moments, the invariant checked after every kill (no certificate
# revoked without its replacement recorded, none issued unrecorded), then
# resumed to the end; the replacements, the final CRL and the audit chain
# checked, and new issuance under the new CA. Then a root compromise: the
# operational CA is re-homed under the new root and keeps issuing.
. "$(dirname "$0")/common.bash"
: "${GMCA_BUILD:?GMCA_BUILD must point at the build directory}"
VERIFY=$GMCA_SRC/tests/interop/sm2verify.mjs
N=${COMPROMISE_CERTS:-1500}
D=$T/ca
g() { "$GMCA" --dir "$D" "$@"; }
shares() { # shares DIR i j k: --share/--pin-file of custodians i j k
  local d=$1 i; shift
  for i in "$@"; do printf '%s\n' --share "$d.shares/share-$i.json" --pin-file "$T/pin$i"; done
}
DN=(--root-dn "C=CN, O=泄露测试, CN=泄露测试根 CA" --sub-dn "C=CN, O=泄露测试, CN=泄露测试运营 CA")
echo '{"identity_card_number": "11010519491231002X"}' > "$T/id.json"
njson() { jq length; }
# Signature checks: quiet when they pass, the cause on stderr when not.
sm2v() { node "$VERIFY" "$@" >/dev/null; }
ossl_verify() { openssl verify "$@" >/dev/null; }

# ---- a CA with N end-entity certificates, one revoked, one expired ----
expect_exit 0 "init" -- init_ca "$D" "${DN[@]}"
expect_exit 0 "activate" -- activate "$D"
# Distinct SM2 keys and CSRs, made quickly by the issuance benchmark's generator.
mkdir "$T/gen"
"$GMCA_BUILD/bench_issue" prepare "$T/gen" "$N" >/dev/null
ls "$T"/gen/csr/*.der | xargs -P 2 -I{} "$GMCA" --dir "$D" cert issue --profile personal-sign \
  --csr {} --info "$T/id.json" >/dev/null 2>"$T/issue.err" || bad "issuing: $(tail -n 1 "$T/issue.err")"
check "$N certificates issued" test "$(g cert list --ca sub --json | njson)" = "$N"
sm2_csr old "/C=CN/O=泄露测试/CN=已过期"
expect_exit 0 "a certificate issued three days ago for one day" -- \
  faketime '-3 days' "$GMCA" --dir "$D" cert issue --profile personal-sign --csr "$T/old.csr" \
  --info "$T/id.json" --days 1 --out "$T/expired.pem"
EXPIRED=$(cat "$T/out")
check "it has expired" test "$(g cert list --ca sub --status expired --json | jq -r '.[].serial')" = "$EXPIRED"
KC=$(g cert list --ca sub --limit 1 --offset 7 --json | jq -r '.[0].serial')
expect_exit 0 "one revoked for keyCompromise" -- g cert revoke --serial "$KC" --reason keyCompromise
TOTAL=$((N + 1))
VALID=$((N - 1))
g cert list --ca sub --json > "$T/before.json"
g ca export --ca sub > "$T/sub.pem"

# ---- refusals: audited, nothing changed ----
mapfile -t S3 < <(shares "$D" 1 3 5)
mapfile -t S2 < <(shares "$D" 1 2)
f0=$(audit_failures "$D")
c0=$(cert_count "$D")
expect_exit 6 "refused while the CA engine runs" -- g ca compromise --ca sub "${S3[@]}"
expect_err "deactivate"
expect_exit 0 "deactivate" -- g deactivate
expect_exit 5 "two custodians are not enough" -- g ca compromise --ca sub "${S2[@]}"
expect_exit 4 "unknown CA" -- g ca compromise --ca nosuch "${S3[@]}"
expect_exit 2 "no custodians at all" -- g ca compromise --ca sub
expect_exit 2 "the CA is never assumed" -- g ca compromise "${S3[@]}"
expect_exit 2 "a batch of 0" -- g ca compromise --ca sub --batch 0 "${S3[@]}"
check "the three refusals are audited" test "$(audit_failures "$D")" = $((f0 + 3))
check "refusals are ca.compromise failures" test "$(g audit list --json |
  jq '[.[] | select(.event=="ca.compromise" and .outcome=="failure")] | length')" = 3
check "refusals issued nothing" test "$(cert_count "$D")" = "$c0"
check "refusals made no CA" test "$(g ca list --json | njson)" = 2
check "refusals left the key active" test "$(g ca list --json | jq -r '.[] | select(.name=="sub") | .key_state')" = active

# ---- the compromise, killed at random moments, then resumed ----
# After every kill: each certificate revoked for cACompromise has its
# replacement recorded (the expired one, done last, has none), and the new
# CA has issued nothing that is not recorded.
invariant() {
  local cac re new exp
  cac=$(g cert list --ca sub --status revoked --json | jq '[.[] | select(.reason=="cACompromise")] | length')
  re=$(g ca reissues --job sub-g2 --json 2>/dev/null | njson) || re=0
  new=$(g cert list --ca sub-g2 --json 2>/dev/null | njson) || new=0
  exp=$(g cert show --serial "$EXPIRED" --json | jq -r 'if .status=="revoked" then 1 else 0 end')
  [ "$cac" = $((re + exp)) ] && [ "$new" = "$re" ] ||
    { echo "after a kill: $cac revoked (cACompromise), $re recorded, $new under sub-g2, expired $exp" >&2; return 1; }
}
kills=0 runs=0 finished=0 unfinished_checked=0
while [ $runs -lt 60 ]; do
  runs=$((runs + 1))
  limit=()
  # Short random delays, a little longer each time, so that the kills fall
  # at different points of the start and the batches; after six, no limit.
  if [ $kills -lt 6 ]; then
    limit=(timeout -s KILL "$(awk -v r=$RANDOM -v k=$kills 'BEGIN { printf "%.2f", 0.3 + 0.12 * k + (r % 31) / 100 }')")
  fi
  rc=0
  # (in a subshell, whose stderr takes bash's "Killed" notice)
  ("${limit[@]}" "$GMCA" --dir "$D" ca compromise --ca sub --batch 10 "${S3[@]}" >"$T/result.json" 2>"$T/progress") 2>/dev/null || rc=$?
  if [ $rc = 0 ]; then finished=1; break; fi
  if [ $rc != 137 ]; then bad "compromise run $runs: exit $rc: $(tail -n 1 "$T/progress")"; break; fi
  kills=$((kills + 1))
  check "invariant after kill $kills" invariant
  if [ $unfinished_checked = 0 ] && g ca list --json | jq -e '.[] | select(.name=="sub-g2")' >/dev/null; then
    unfinished_checked=1
    expect_exit 6 "another compromise is refused while one is unfinished" -- g ca compromise --ca root "${S3[@]}"
    expect_err "unfinished"
  fi
done
echo "compromise: $runs runs, $kills killed with SIGKILL"
check "the compromise finished" test $finished = 1
check "it was killed at least 3 times" test $kills -ge 3
check "the kills fell after the start at least once" test $unfinished_checked = 1
check "progress on stderr" grep -q "certificates revoked and re-issued (100%)" "$T/progress"
check "result: job sub-g2" test "$(jq -r .job "$T/result.json")" = sub-g2
check "result: new CA sub-g2" test "$(jq -r .new_ca "$T/result.json")" = sub-g2
check "result: $((VALID + 1)) revoked for cACompromise" test "$(jq -r .revoked "$T/result.json")" = $((VALID + 1))
check "result: $VALID re-issued" test "$(jq -r .reissued "$T/result.json")" = "$VALID"

# ---- what the compromise left ----
g cert list --ca sub --json > "$T/after.json"
g cert list --ca sub-g2 --json > "$T/new.json"
g ca reissues --job sub-g2 --json > "$T/map.json"
check "no old certificate is still valid" test "$(jq '[.[] | select(.status!="revoked")] | length' "$T/after.json")" = 0
check "every old certificate but one revoked for cACompromise" \
  test "$(jq '[.[] | select(.reason=="cACompromise")] | length' "$T/after.json")" = $((TOTAL - 1))
check "the one revoked before keeps keyCompromise" \
  test "$(jq -r --arg s "$KC" '.[] | select(.serial==$s) | .reason' "$T/after.json")" = keyCompromise
check "$VALID replacements recorded" test "$(njson < "$T/map.json")" = "$VALID"
check "each old serial replaced once" test "$(jq '[.[].old] | unique | length' "$T/map.json")" = "$VALID"
check "the revoked and the expired one have no replacement" \
  test "$(jq --arg a "$KC" --arg b "$EXPIRED" '[.[] | select(.old==$a or .old==$b)] | length' "$T/map.json")" = 0
check "the new CA issued exactly the replacements" test "$(njson < "$T/new.json")" = "$VALID"
check "new serials are the new CA's" \
  test "$(jq -r '.[].new' "$T/map.json" | sort)" = "$(jq -r '.[].serial' "$T/new.json" | sort)"
check "no serial used twice in the store" \
  test "$(g cert list --json | jq -r '.[].serial' | sort | uniq -d | wc -l)" = 0
# Same subject and end date for every pair; same public key for a sample.
check "every replacement keeps the subject and end date" test "$(jq -n \
  --slurpfile b "$T/before.json" --slurpfile n "$T/new.json" --slurpfile m "$T/map.json" '
  ($b[0] | map({(.serial): .}) | add) as $old | ($n[0] | map({(.serial): .}) | add) as $new |
  [$m[0][] | select($old[.old].subject != $new[.new].subject or $old[.old].not_after != $new[.new].not_after)]
  | length')" = 0
g ca export --ca sub-g2 > "$T/sub-g2.pem"
g ca export --ca root > "$T/root.pem"
check "the new CA keeps the old subject" \
  test "$(openssl x509 -in "$T/sub-g2.pem" -noout -subject)" = "$(openssl x509 -in "$T/sub.pem" -noout -subject)"
check "the new CA certificate verifies under the root (sm-crypto)" sm2v cert "$T/sub-g2.pem" "$T/root.pem"
check "the new CA has a new key" bash -c "[ \"\$(openssl x509 -in '$T/sub-g2.pem' -noout -pubkey)\" != \"\$(openssl x509 -in '$T/sub.pem' -noout -pubkey)\" ]"
for pair in $(jq -r '.[0,1,2,'"$((VALID / 2))"','"$((VALID - 1))"'] | .old + ":" + .new' "$T/map.json"); do
  o=${pair%%:*} n=${pair##*:}
  g cert export --serial "$o" > "$T/o.pem"
  g cert export --serial "$n" > "$T/n.pem"
  check "$n: same public key as $o" test "$(openssl x509 -in "$T/o.pem" -noout -pubkey)" = "$(openssl x509 -in "$T/n.pem" -noout -pubkey)"
  check "$n: same extensions but the CA's locations and key id" test \
    "$(openssl x509 -in "$T/o.pem" -noout -ext subjectKeyIdentifier,keyUsage,basicConstraints,certificatePolicies,1.2.156.10260.4.1.1 2>&1)" = \
    "$(openssl x509 -in "$T/n.pem" -noout -ext subjectKeyIdentifier,keyUsage,basicConstraints,certificatePolicies,1.2.156.10260.4.1.1 2>&1)"
  check "$n: CRL DP of the new CA" bash -c "openssl x509 -in '$T/n.pem' -noout -ext crlDistributionPoints | grep -q '/crl/sub-g2.crl'"
  check "$n: verifies under the new CA (sm-crypto)" sm2v cert "$T/n.pem" "$T/sub-g2.pem"
  check "$n: verifies under the new CA (openssl)" \
    ossl_verify -vfyopt distid:1234567812345678 -partial_chain -CAfile "$T/sub-g2.pem" "$T/n.pem"
  check "$n: does not verify under the old CA" bash -c "! node '$VERIFY' cert '$T/n.pem' '$T/sub.pem' >/dev/null 2>&1"
done

# The final CRL, signed by the compromised key, lists every certificate it issued.
# sm2verify.mjs stops at asn1js's 10000-node cap (about 1200 CRL entries), so
# this one is checked by OpenSSL over the TBS bytes as signed, with the SM2 ID.
crl_signed_by() { # crl_signed_by CRL ISSUER.pem
  local l tbs sig
  l=$(openssl asn1parse -inform DER -in "$1")
  tbs=$(echo "$l" | awk -F: 'NR == 2 { print $1 + 0 }')
  sig=$(echo "$l" | awk -F: '/d=1/ && /BIT STRING/ { print $1 + 0 }')
  openssl asn1parse -inform DER -in "$1" -strparse "$tbs" -noout -out "$T/tbs.der" >/dev/null &&
    openssl asn1parse -inform DER -in "$1" -strparse "$sig" -noout -out "$T/sig.der" >/dev/null &&
    openssl x509 -in "$2" -noout -pubkey > "$T/pub.pem" &&
    openssl pkeyutl -verify -pubin -inkey "$T/pub.pem" -rawin -digest sm3 \
      -pkeyopt distid:1234567812345678 -in "$T/tbs.der" -sigfile "$T/sig.der" >/dev/null
}
check "final CRL signed by the compromised key" crl_signed_by "$D/crl/sub.crl" "$T/sub.pem"
not_crl_signed_by() { ! crl_signed_by "$@" 2>/dev/null; }
check "final CRL not signed by the new key" not_crl_signed_by "$D/crl/sub.crl" "$T/sub-g2.pem"
openssl crl -inform DER -in "$D/crl/sub.crl" -noout -text > "$T/crl.txt"
check "final CRL lists all $TOTAL" test "$(grep -c 'Serial Number:' "$T/crl.txt")" = "$TOTAL"
check "final CRL: cACompromise entries" test "$(grep -c 'CA Compromise' "$T/crl.txt")" = $((TOTAL - 1))
check "final CRL number is the result's" test "$(jq -r .crl_number "$T/result.json")" = \
  "$((16#$(openssl crl -inform DER -in "$D/crl/sub.crl" -noout -crlnumber | sed 's/.*=0x//')))"
check "the root's CRL lists the old CA certificate" bash -c "openssl crl -inform DER -in '$D/crl/root.crl' -noout -text |
  grep -qi \"$(openssl x509 -in "$T/sub.pem" -noout -serial | cut -d= -f2)\""
check "the new CA published a CRL" sm2v crl "$D/crl/sub-g2.crl" "$T/sub-g2.pem"
check "the old CA certificate is revoked for cACompromise" test "$(g cert show --serial \
  "$(openssl x509 -in "$T/sub.pem" -noout -serial | cut -d= -f2)" --json | jq -r .reason)" = cACompromise
check "old key compromised" test "$(g ca list --json | jq -r '.[] | select(.name=="sub") | .key_state')" = compromised
check "new CA is the default" test "$(g ca list --json | jq -r '.[] | select(.default) | .name')" = sub-g2
check "certs/sub-g2.pem written" test -s "$D/certs/sub-g2.pem"
expect_exit 0 "audit chain verifies" -- g audit verify
g audit list --json > "$T/audit.json"
check "one cert.reissue record per replacement" \
  test "$(jq '[.[] | select(.event=="cert.reissue" and .outcome=="success")] | length' "$T/audit.json")" = "$VALID"
check "compromise start and end audited with the custodians" test "$(jq '[.[] | select(.event=="ca.compromise"
  and .outcome=="success") | .detail | select(test("\"phase\":\"(start|done)\"") and test("钱七"))] | length' "$T/audit.json")" = 2
check "each resume audited" test "$(jq '[.[] | select(.event=="ca.compromise") | .detail |
  select(test("\"phase\":\"resume\""))] | length' "$T/audit.json")" -ge 1
expect_exit 0 "list the old → new serials" -- g ca reissues --job sub-g2
check "text list has one line per replacement" test "$(grep -c ' → ' "$T/out")" = "$VALID"
expect_exit 4 "an unknown job" -- g ca reissues --job nosuch
expect_exit 6 "a compromised CA is not compromised twice" -- g ca compromise --ca sub "${S3[@]}"
expect_err "compromised"

# ---- new issuance goes to the new CA ----
expect_exit 0 "activate again" -- activate "$D" 2 4 5
sm2_csr fresh "/C=CN/O=泄露测试/CN=新用户"
expect_exit 0 "issue after the compromise" -- g cert issue --profile personal-sign --csr "$T/fresh.csr" \
  --info "$T/id.json" --out "$T/fresh.pem"
check "issued by the new CA" sm2v cert "$T/fresh.pem" "$T/sub-g2.pem"
check "the new CA has one more" test "$(g cert list --ca sub-g2 --json | njson)" = $((VALID + 1))
expect_exit 6 "the compromised CA issues nothing" -- g cert issue --ca sub --profile personal-sign \
  --csr "$T/fresh.csr" --info "$T/id.json"
expect_exit 0 "deactivate" -- g deactivate

# ---- a root compromise: the operational CA is re-homed (keys in a vendor-style SDF library) ----
R=$T/rootca
r() { "$GMCA" --dir "$R" "$@"; }
expect_exit 0 "init a second CA on the dlopen device" -- init_ca "$R" "${DN[@]}" \
  --device-library "$GMCA_BUILD/libgmca-softsdf.so"
check "its keys are behind the SDF library" grep -q 'libgmca-softsdf.so' "$R/gmca.json"
expect_exit 0 "activate it" -- activate "$R"
for i in 1 2 3; do
  sm2_csr "r$i" "/C=CN/O=泄露测试/CN=根测试用户$i"
  expect_exit 0 "issue $i under sub" -- r cert issue --profile personal-sign --csr "$T/r$i.csr" \
    --info "$T/id.json" --out "$T/r$i.pem"
done
r ca export --ca sub > "$T/rsub-old.pem"
r ca export --ca root > "$T/rroot-old.pem"
expect_exit 0 "deactivate" -- r deactivate
mapfile -t R3 < <(shares "$R" 2 3 4)
expect_exit 0 "compromise the root" -- r ca compromise --ca root "${R3[@]}"
check "new root root-g2" test "$(jq -r .new_ca "$T/out")" = root-g2
check "the root's one issued certificate re-issued" test "$(jq -r .reissued "$T/out")" = 1
r ca list --json > "$T/rcas.json"
check "sub now under root-g2" test "$(jq -r '.[] | select(.name=="sub") | .parent' "$T/rcas.json")" = root-g2
check "sub stays the default" test "$(jq -r '.[] | select(.default) | .name' "$T/rcas.json")" = sub
check "old root compromised" test "$(jq -r '.[] | select(.name=="root") | .key_state' "$T/rcas.json")" = compromised
check "sub keeps its key" test "$(jq -r '.[] | select(.name=="sub") | .key_state' "$T/rcas.json")" = active
r ca export --ca sub > "$T/rsub.pem"
r ca export --ca root-g2 > "$T/rroot.pem"
check "new root self-signed (sm-crypto)" sm2v cert "$T/rroot.pem"
check "sub's new certificate verifies under the new root" sm2v cert "$T/rsub.pem" "$T/rroot.pem"
check "sub's new certificate: same key" test "$(openssl x509 -in "$T/rsub.pem" -noout -pubkey)" = \
  "$(openssl x509 -in "$T/rsub-old.pem" -noout -pubkey)"
check "sub's new certificate is a new one" test "$(openssl x509 -in "$T/rsub.pem" -noout -serial)" != \
  "$(openssl x509 -in "$T/rsub-old.pem" -noout -serial)"
check "openssl: sub chains to the new root" \
  ossl_verify -vfyopt distid:1234567812345678 -CAfile "$T/rroot.pem" "$T/rsub.pem"
# OpenSSL's CLI does not verify 3-level SM2 chains: each link with sm-crypto.
check "an earlier end-entity certificate verifies under the re-homed sub" sm2v cert "$T/r1.pem" "$T/rsub.pem"
check "old root's final CRL verifies" sm2v crl "$R/crl/root.crl" "$T/rroot-old.pem"
check "old root's final CRL lists the old sub certificate" bash -c "openssl crl -inform DER -in '$R/crl/root.crl' \
  -noout -text | grep -qi \"$(openssl x509 -in "$T/rsub-old.pem" -noout -serial | cut -d= -f2)\""
check "sub's end-entity certificates are untouched" test "$(r cert list --ca sub --status valid --json | njson)" = 3
expect_exit 0 "activate after the root compromise" -- activate "$R" 1 4 5
sm2_csr r4 "/C=CN/O=泄露测试/CN=根测试用户4"
expect_exit 0 "the re-homed sub issues" -- r cert issue --profile personal-sign --csr "$T/r4.csr" \
  --info "$T/id.json" --out "$T/r4.pem"
check "the new certificate verifies under the re-homed sub" sm2v cert "$T/r4.pem" "$T/rsub.pem"
expect_exit 0 "root CA audit chain verifies" -- r audit verify
expect_exit 0 "deactivate" -- r deactivate

finish
