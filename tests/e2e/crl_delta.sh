#!/usr/bin/env bash
# Delta CRLs (issue 5, RFC 5280 §5.2.4, §5.2.6; CPS §3.9.10): with
# delta_crl_minutes configured, certificates and complete CRLs carry
# freshestCRL, every complete CRL is followed by a delta against it, `gmca
# crl generate --delta` makes one on demand listing what was revoked since
# the complete CRL, deltas share the cRLNumber sequence, are archived and
# served at /crl/{ca}/delta.crl, verify with the independent SM2 verifier,
# and the relying-party validator combines them with the complete CRL.
. "$(dirname "$0")/common.bash"
D=$T/ca
g() { "$GMCA" --dir "$D" "$@"; }
VERIFY=$GMCA_SRC/tests/interop/sm2verify.mjs
trap 'stop_serve; stop_engines; rm -rf "$T"' EXIT
crltext() { openssl crl -inform DER -in "$1" -noout -text; }
latest() { g crl list --ca sub --json | jq "[.[] | select(.delta_of $1 null) | .number] | max // 0"; }

expect_exit 0 "new CA" -- new_ca "$D"
g ca export --ca sub >"$T/sub.pem"
g ca export --ca root >"$T/root.pem"

# ---- not configured: no delta, no freshestCRL ----
expect_exit 6 "--delta refused without delta_crl_minutes" -- g crl generate --ca sub --delta
expect_err "delta CRLs are not configured"
expect_exit 0 "complete CRL without deltas" -- g crl generate --ca sub
crltext "$D/crl/sub.crl" >"$T/nodelta.txt"
check "no freshestCRL when deltas are off" bash -c "! grep -q 'Freshest CRL' '$T/nodelta.txt'"
check "no delta published" test ! -e "$D/crl/sub/delta.crl"

# ---- configuration ----
cp "$D/gmca.json" "$T/gmca.json.orig"
jq '.delta_crl_minutes = 1440' "$T/gmca.json.orig" >"$D/gmca.json"
expect_exit 3 "delta interval must be shorter than the complete CRL's" -- g crl list --ca sub
expect_err "delta_crl_minutes"
jq '.delta_crl_minutes = 60' "$T/gmca.json.orig" >"$D/gmca.json"
expect_exit 0 "configured" -- g crl list --ca sub

echo '{"identity_card_number": "11010519491231002X"}' >"$T/id.json"
sm2_csr a "/C=CN/O=某市政务服务中心/CN=甲"
sm2_csr b "/C=CN/O=某市政务服务中心/CN=乙"
expect_exit 0 "issue A" -- g cert issue --profile personal-sign --csr "$T/a.csr" --info "$T/id.json" --out "$T/a.pem"
SA=$(cat "$T/out")
expect_exit 0 "issue B" -- g cert issue --profile personal-sign --csr "$T/b.csr" --info "$T/id.json" --out "$T/b.pem"
check "certificates carry freshestCRL (RFC 5280 §4.2.1.15)" bash -c \
  "openssl x509 -in '$T/a.pem' -noout -text | grep -A2 'Freshest CRL' | grep -q 'URI:http://127.0.0.1:8080/crl/sub/delta.crl'"

# ---- a complete CRL and its delta ----
expect_exit 0 "complete CRL" -- g crl generate --ca sub
N=$(latest "==")
DN=$(latest "!=")
check "a delta follows the complete CRL at once" test "$DN" = $((N + 1))
crltext "$D/crl/sub.crl" >"$T/full.txt"
check "complete CRL: freshestCRL names the delta's URL" bash -c \
  "grep -A2 'Freshest CRL' '$T/full.txt' | grep -q 'URI:http://127.0.0.1:8080/crl/sub/delta.crl'"
check "complete CRL: no deltaCRLIndicator" bash -c "! grep -q 'Delta CRL Indicator' '$T/full.txt'"
crltext "$D/crl/sub/delta.crl" >"$T/d1.txt"
check "delta: critical deltaCRLIndicator" grep -q "X509v3 Delta CRL Indicator: critical" "$T/d1.txt"
check "delta: BaseCRLNumber is the complete CRL" bash -c \
  "grep -A1 'Delta CRL Indicator' '$T/d1.txt' | tail -1 | grep -qi \"$(printf '%X' "$N")\""
check "delta: its own cRLNumber from the same sequence" bash -c \
  "grep -A1 'X509v3 CRL Number' '$T/d1.txt' | tail -1 | grep -qi \"$(printf '%X' "$DN")\""
check "delta: no freshestCRL in a delta (RFC 5280 §5.2.6)" bash -c "! grep -q 'Freshest CRL' '$T/d1.txt'"
check "delta: nothing revoked yet" grep -q "No Revoked Certificates" "$T/d1.txt"
check "delta archived as a numbered CRL" cmp "$D/crl/sub/delta.crl" "$D/crl/sub/$DN.crl"
check "crl list marks the delta" bash -c "g() { \"$GMCA\" --dir '$D' \"\$@\"; }; g crl list --ca sub --json | jq -e '.[] | select(.number == $DN) | .delta_of == $N' >/dev/null"

# ---- a revocation shows on the next delta, not on the complete CRL ----
expect_exit 0 "revoke A" -- g cert revoke --serial "$SA" --reason superseded
expect_exit 0 "delta on demand" -- g crl generate --ca sub --delta --out "$T/d2.crl"
D2=$(latest "!=")
check "the new delta has the next number" test "$D2" = $((DN + 1))
check "--out wrote the delta" cmp "$T/d2.crl" "$D/crl/sub/delta.crl"
crltext "$T/d2.crl" >"$T/d2.txt"
check "the delta lists A" grep -qi "Serial Number: $SA" "$T/d2.txt"
check "with its reason" grep -q "Superseded" "$T/d2.txt"
check "the complete CRL does not" bash -c "! grep -qi 'Serial Number: $SA' '$T/full.txt'"
check "delta still against the complete CRL" bash -c \
  "grep -A1 'Delta CRL Indicator' '$T/d2.txt' | tail -1 | grep -qi \"$(printf '%X' "$N")\""
check "sm2verify: the delta's signature" node "$VERIFY" crl "$T/d2.crl" "$T/sub.pem"
check "sm2verify fails for a delta altered" bash -c "cp '$T/d2.crl' '$T/bad.crl'; printf '\\x01' | dd of='$T/bad.crl' bs=1 seek=40 conv=notrunc 2>/dev/null; ! node '$VERIFY' crl '$T/bad.crl' '$T/sub.pem' >/dev/null 2>&1"
g audit list --json --event crl.generate >"$T/audit.json"
check "the delta's generation is audited with its base" bash -c \
  "jq -e '[.[] | select(.object == \"sub#$D2\" and .outcome == \"success\")] | length == 1' '$T/audit.json' >/dev/null"

# ---- the relying party combines complete and delta (validate.h) ----
expect_exit 0 "the root's CRL (for the operational CA's status)" -- g crl generate --ca root
V=(app validate --cert "$T/a.pem" --anchor "$T/root.pem" --chain "$T/sub.pem" --revocation crl --offline
  --crl "$D/crl/root.crl")
expect_exit 0 "the complete CRL alone: A still good" -- "$GMCA" "${V[@]}" --crl "$D/crl/sub.crl"
expect_exit 3 "complete + delta: A revoked" -- "$GMCA" "${V[@]}" --crl "$D/crl/sub.crl" --crl "$T/d2.crl"
expect_err "revoked"
expect_exit 0 "B is good with both" -- "$GMCA" app validate --cert "$T/b.pem" --anchor "$T/root.pem" \
  --chain "$T/sub.pem" --revocation crl --offline --crl "$D/crl/root.crl" --crl "$D/crl/sub.crl" --crl "$T/d2.crl"
expect_exit 3 "a delta alone is no complete CRL" -- "$GMCA" "${V[@]}" --crl "$T/d2.crl"
expect_err "revocation-unavailable"
cp "$T/d2.crl" "$T/sigbad.crl"
LEN=$(stat -c %s "$T/sigbad.crl")
printf '\x55' | dd of="$T/sigbad.crl" bs=1 seek=$((LEN - 3)) conv=notrunc 2>/dev/null
expect_exit 3 "a delta with a bad signature fails validation" -- "$GMCA" app validate --cert "$T/b.pem" \
  --anchor "$T/root.pem" --chain "$T/sub.pem" --revocation crl --offline --crl "$D/crl/root.crl" --crl "$D/crl/sub.crl" --crl "$T/sigbad.crl"
expect_err "crl-invalid"
expect_exit 0 "an older delta (against the same base) that does not list B" -- "$GMCA" app validate \
  --cert "$T/b.pem" --anchor "$T/root.pem" --chain "$T/sub.pem" --revocation crl --offline \
  --crl "$D/crl/root.crl" --crl "$D/crl/sub.crl" --crl "$D/crl/sub/$DN.crl"

# ---- served by the front, and kept current by its schedule ----
# A complete CRL made while deltas were off has no delta against it: the schedule makes one.
cp "$D/gmca.json" "$T/gmca.json.delta"
cp "$T/gmca.json.orig" "$D/gmca.json"
expect_exit 0 "a complete CRL without a delta" -- g crl generate --ca sub
N=$(latest "==")
cp "$T/gmca.json.delta" "$D/gmca.json"
custodians3 "$D"
expect_exit 0 "RA certificate" -- ra_cert "$D"
start_front "$D" --crl-interval-seconds 4
check "serve starts, CRLs every 4 s" test -n "$URL"
wait_for() {
  local n=$(($1 * 5)); shift
  for _ in $(seq "$n"); do "$@" && return 0; sleep 0.2; done
  return 1
}
delta_current() {
  local full delta base
  full=$(latest "==")
  delta=$(latest "!=")
  base=$(g crl list --ca sub --json | jq ".[] | select(.number == $delta) | .delta_of")
  [ "$delta" -gt "$full" ] && [ "$base" = "$full" ]
}
check "the schedule makes a delta against the latest complete CRL" wait_for 10 delta_current
curl -s -D "$T/h" -o "$T/served.crl" "$URL/crl/sub/delta.crl"
check "GET /crl/sub/delta.crl: 200" grep -q "^HTTP/1.1 200" "$T/h"
check "served as application/pkix-crl" grep -qi "^Content-Type: application/pkix-crl" "$T/h"
crltext "$T/served.crl" >"$T/served.txt"
check "served delta is a delta CRL" grep -q 'Delta CRL Indicator' "$T/served.txt"
check "served delta verifies" node "$VERIFY" crl "$T/served.crl" "$T/sub.pem"
curl -s -o "$T/served-full.crl" "$URL/crl/sub.crl"
check "GET /crl/sub.crl is still the complete CRL" cmp "$T/served-full.crl" "$D/crl/sub.crl"
check "GET /crl/root/delta.crl: 404 before root has a delta" bash -c \
  "[ \"\$(curl -s -o /dev/null -w '%{http_code}' '$URL/crl/nosuch/delta.crl')\" = 404 ]"
stop_serve
wait "$SERVE_PID" 2>/dev/null || true
expect_exit 0 "audit chain verifies" -- g audit verify
finish
