#!/usr/bin/env bash
# Key recovery end to end (issue 6 item 4; CPS §3.10): a dual pair issued
# through the RA with a running KM; then, over the signed HTTP API, the
# refusals (wrong role, the requester approving, a recipient of another
# subject or revoked, an encryption serial whose key the KM does not hold,
# a judicial request without authority or document, a replayed approval),
# a subscriber recovery to the subscriber's new token, whose enveloped key
# the new token imports and decrypts old data with, and a judicial
# recovery to a carrier's key, opened by that carrier. Every step is on the
# CA's audit chain (ra.recovery.*, km.recover) and the KM's (km.restore).
. "$(dirname "$0")/common.bash"
D=$T/ca
K=$T/km
g() { "$GMCA" --dir "$D" "$@"; }
km() { local sub=$1; shift; "$GMCA" km "$sub" --km-dir "$K" "$@"; }
KM_PID=
stop_km() {
  [ -z "$KM_PID" ] || { kill -TERM "$KM_PID" 2>/dev/null || true; wait "$KM_PID" 2>/dev/null || true; }
  KM_PID=
}
trap 'stop_serve; stop_km; stop_engines; rm -rf "$T"' EXIT

expect_exit 0 "new CA" -- new_ca "$D"
g ca export --ca sub >"$T/sub.pem"
custodians3 "$D"

# ---- the KM, certified by the CA and linked both ways ----
mkdir -p "$K.shares"
mapfile -t KCARGS < <(custodian_args)
expect_exit 0 "KM key ceremony" -- km init "${KCARGS[@]}" --shares-out "$K.shares" \
  --subject "C=CN, O=测试电子政务认证中心, OU=密钥管理中心, CN=测试 KM" --csr-out "$T/km.csr"
KCUST=(--share "$K.shares/share-1.json" --pin-file "$T/pin1" --share "$K.shares/share-2.json"
  --pin-file "$T/pin2" --share "$K.shares/share-3.json" --pin-file "$T/pin3")
expect_exit 0 "the CA certifies the KM" -- g cert issue --profile km --csr "$T/km.csr" --out "$T/km.pem" "${CUST[@]}"
expect_exit 0 "the CA links to its KM" -- g km link --km-cert "$T/km.pem" --socket "$K/run/km.sock" "${CUST[@]}"
expect_exit 0 "the KM trusts the CA" -- km trust --km-cert "$T/km.pem" --ca-cert "$T/sub.pem" \
  --ca-comm-cert "$D/km/comm.crt" "${KCUST[@]}"
start_km() {
  "$GMCA" km serve --km-dir "$K" "${KCUST[@]}" >"$T/km.out" 2>"$T/km.err" &
  KM_PID=$!
  for _ in $(seq 100); do [ -S "$K/run/km.sock" ] && return 0; sleep 0.1; done
  return 1
}
check "the KM serves" start_km

# ---- the RA, its operators, the front ----
expect_exit 0 "RA certificate" -- ra_cert "$D"
expect_exit 0 "business operator A" -- add_operator "$D" opA business_operator
expect_exit 0 "business operator E" -- add_operator "$D" opE business_operator
expect_exit 0 "business admin B" -- add_operator "$D" adminB business_admin
expect_exit 0 "business admin C" -- add_operator "$D" adminC business_admin
expect_exit 0 "audit admin" -- add_operator "$D" aud audit_admin
expect_exit 0 "serve starts the engine itself" -- g deactivate
start_front "$D"
check "serve is up" test -n "$URL"

j() { jq -r "$1" "$T/out"; }
sub_of() { api adminB GET "/api/v1/applications/$1" | jq -r .submission; }
vet_body() { jq -nc --arg s "$(sub_of "$1")" '{method: "in_person", documents: ["居民身份证原件"], result: "pass", submission: $s}'; }
ok_body() { jq -nc --arg s "$(sub_of "$1")" '{reason: "材料齐全", submission: $s}'; }
ID=11010519491231002X
INFO="{\"identity_card_number\":\"$ID\"}"
apply() { # CSR -> $T/out is the application
  jq -nc --argjson a "$P" --rawfile csr "$1" --argjson info "$INFO" \
    '{applicant: $a, profile: "personal-sign", csr: $csr, subject_info: $info}' >"$T/body"
  api opA POST /api/v1/applications --data "$(cat "$T/body")" >"$T/out"
}
issue_to() { # CSR -> $T/out is the issued application
  apply "$1" && local app && app=$(j .id) &&
    api adminB POST "/api/v1/applications/$app/vet" --data "$(vet_body "$app")" >/dev/null &&
    api adminC POST "/api/v1/applications/$app/approve" --data "$(ok_body "$app")" >"$T/out"
}
expect_exit 0 "A records 张三" -- api opA POST /api/v1/applicants \
  --data "{\"kind\":\"individual\",\"name\":\"张三\",\"id_type\":\"resident_id\",\"id_number\":\"$ID\"}"
P=$(j .id)

# ---- 张三's first token: a dual pair; data encrypted to it ----
echo "TokenPin2026" >"$T/tpin"
SUBJ="/C=CN/ST=北京市/O=某市政务服务中心/CN=张三"
token_new() { # DIR -> CSR in DIR.csr
  "$GMCA" token init --token "$1" && "$GMCA" token csr --token "$1" --pin-file "$T/tpin" --subject "$SUBJ" --out "$1.csr"
}
expect_exit 0 "first token" -- token_new "$T/tok1"
expect_exit 0 "a dual pair is issued" -- issue_to "$T/tok1.csr"
check "issued with an encryption certificate" test -n "$(j '.encryption_serial // empty')"
S1=$(j .serial)
E1=$(j .encryption_serial)
j .encryption_certificate >"$T/e1.pem"
echo "机密：某市政务数据 $(date +%s)" >"$T/msg"
expect_exit 0 "data encrypted to the encryption certificate" -- "$GMCA" token encrypt --token "$T/tok1" \
  --cert "$T/e1.pem" --in "$T/msg" --out "$T/msg.enc"

# ---- the token is lost: a new one, a new signature certificate ----
expect_exit 0 "second token" -- token_new "$T/tok2"
expect_exit 0 "its signature certificate (with a pair of its own)" -- issue_to "$T/tok2.csr"
S2=$(j .serial)
j .certificate >"$T/s2.pem"
check "a second signature certificate" test -n "$S2"
sm2_csr other "/C=CN/O=某市政务服务中心/CN=李四"
expect_exit 0 "A records 李四" -- api opA POST /api/v1/applicants \
  --data "{\"kind\":\"individual\",\"name\":\"李四\",\"id_type\":\"resident_id\",\"id_number\":\"$ID\"}"
P=$(j .id)
expect_exit 0 "李四's certificate" -- issue_to "$T/other.csr"
SO=$(j .serial)

# ---- refusals over HTTP ----
req() { jq -nc --arg e "$1" --arg r "$2" '{kind: "subscriber", encryption_serial: $e, recipient_serial: $r, reason: "USB key 丢失"}'; }
refusals() { g audit list --event "$1" --json | jq '[.[] | select(.outcome == "failure")] | length'; }
N0=$(refusals ra.recovery.request)
A0=$(refusals auth.request)
expect_exit 5 "an auditor does not request a recovery" -- api aud POST /api/v1/recoveries --data "$(req "$E1" "$S2")"
expect_exit 6 "a recipient of another subject" -- api opA POST /api/v1/recoveries --data "$(req "$E1" "$SO")"
expect_err "another subject"
expect_exit 4 "a signature certificate is not an escrowed key" -- api opA POST /api/v1/recoveries --data "$(req "$S1" "$S2")"
expect_err "escrowed"
expect_exit 3 "a judicial recovery needs an authority" -- api opA POST /api/v1/recoveries \
  --data "$(jq -nc --arg e "$E1" '{kind: "judicial", encryption_serial: $e, document: "(2026)京01刑初1号", reason: "侦查"}')"
expect_err "authority"
expect_exit 3 "unknown fields are refused" -- api opA POST /api/v1/recoveries \
  --data "$(jq -nc --arg e "$E1" --arg r "$S2" '{kind: "subscriber", encryption_serial: $e, recipient_serial: $r, reason: "x", key: "give"}')"
check "each refusal audited (ra.recovery.request)" test "$(refusals ra.recovery.request)" = $((N0 + 4))
check "the auditor's refusal audited (auth.request)" test "$(refusals auth.request)" = $((A0 + 1))

# ---- a subscriber recovery (§3.10.1) ----
expect_exit 0 "A requests the recovery to the new token" -- api opA POST /api/v1/recoveries --data "$(req "$E1" "$S2")"
R1=$(j .id)
check "requested" test "$(j .state)" = requested
SUB1=$(j .submission)
appr() { jq -nc --arg s "$1" '{submission: $s, reason: "核验无误"}'; }
expect_exit 5 "a business operator does not approve" -- api opE POST "/api/v1/recoveries/$R1/approve" --data "$(appr "$SUB1")"
expect_exit 0 "B requests another (for the replay below)" -- api adminB POST /api/v1/recoveries --data "$(req "$E1" "$S2")"
R2=$(j .id)
SUB2=$(j .submission)
expect_exit 6 "B does not approve his own request" -- api adminB POST "/api/v1/recoveries/$R2/approve" --data "$(appr "$SUB2")"
expect_err "must not be the one who requested"
expect_exit 6 "an approval naming another request is refused" -- api adminC POST "/api/v1/recoveries/$R1/approve" --data "$(appr "$SUB2")"
expect_err "submission"
expect_exit 0 "C approves; the engine asks the KM" -- api adminC POST "/api/v1/recoveries/$R1/approve" --data "$(appr "$SUB1")"
check "delivered" test "$(j .state)" = delivered
j .enveloped_key | base64 -d >"$T/r1.env"
j .enveloped_key_blob | base64 -d >"$T/r1.blob"
check "the ENVELOPEDKEYBLOB is 388 bytes" test "$(stat -c %s "$T/r1.blob")" = 388
check "no private key in the answer" bash -c "! grep -qi 'PRIVATE' '$T/out'"
expect_exit 6 "approved once" -- api adminC POST "/api/v1/recoveries/$R1/approve" --data "$(appr "$SUB1")"
expect_exit 6 "delivered once" -- api adminC POST "/api/v1/recoveries/$R1/deliver"
# A front that sets the delivered row back to approved gets nothing: the engine's own
# km.recover record says it was delivered.
db_sql "$D" "UPDATE key_recoveries SET state = 'approved' WHERE id = $R1"
expect_exit 6 "a reset delivery is not delivered again" -- api adminC POST "/api/v1/recoveries/$R1/deliver"
expect_err "delivered already"
db_sql "$D" "UPDATE key_recoveries SET state = 'delivered' WHERE id = $R1"
"$GMCA" token import-cert --token "$T/tok2" "$T/s2.pem" >/dev/null 2>&1 || true
expect_exit 0 "the new token imports the old encryption certificate" -- "$GMCA" token import-cert --token "$T/tok2" "$T/e1.pem"
expect_exit 0 "the new token opens the recovered key" -- "$GMCA" token import-key --token "$T/tok2" --pin-file "$T/tpin" "$T/r1.env"
expect_exit 0 "and decrypts the old data" -- "$GMCA" token decrypt --token "$T/tok2" --pin-file "$T/tpin" --in "$T/msg.enc" --out "$T/msg.dec"
check "the plaintext comes back" cmp "$T/msg" "$T/msg.dec"
expect_exit 0 "the first token cannot open it" -- bash -c \
  "! \"$GMCA\" token import-key --token '$T/tok1' --pin-file '$T/tpin' '$T/r1.env'"

# ---- a judicial recovery (§3.10.2) to a carrier's key ----
expect_exit 0 "the carrier's token" -- "$GMCA" token init --token "$T/carrier"
expect_exit 0 "its key" -- "$GMCA" token csr --token "$T/carrier" --pin-file "$T/tpin" \
  --subject "/C=CN/O=北京市公安局/CN=取证介质 01" --out "$T/carrier.csr"
openssl req -in "$T/carrier.csr" -noout -pubkey >"$T/carrier.pub"
jq -nc --arg e "$E1" --rawfile k "$T/carrier.pub" '{kind: "judicial", encryption_serial: $e,
  authority: "北京市公安局", document: "(2026)京01刑初1号", reason: "刑事案件侦查需要",
  recipient_public_key: $k}' >"$T/jbody"
expect_exit 0 "A records the judicial request" -- api opA POST /api/v1/recoveries --data "$(cat "$T/jbody")"
R3=$(j .id)
SUB3=$(j .submission)
check "the record keeps authority and document" test "$(j .authority)/$(j .document)" = "北京市公安局/(2026)京01刑初1号"
expect_exit 0 "B approves" -- api adminB POST "/api/v1/recoveries/$R3/approve" --data "$(appr "$SUB3")"
check "delivered" test "$(j .state)" = delivered
j .enveloped_key | base64 -d >"$T/r3.env"
expect_exit 0 "the carrier takes the certificate" -- "$GMCA" token import-cert --token "$T/carrier" "$T/e1.pem"
expect_exit 0 "the carrier opens the key" -- "$GMCA" token import-key --token "$T/carrier" --pin-file "$T/tpin" "$T/r3.env"
expect_exit 0 "and reads the data" -- "$GMCA" token decrypt --token "$T/carrier" --pin-file "$T/tpin" --in "$T/msg.enc" --out "$T/msg.dec3"
check "the plaintext comes back (carrier)" cmp "$T/msg" "$T/msg.dec3"

# ---- reading; the rejected one; audit on both sides ----
expect_exit 0 "C rejects B's request" -- api adminC POST "/api/v1/recoveries/$R2/reject" --data '{"reason":"重复申请"}'
check "rejected" test "$(j .state)" = rejected
expect_exit 0 "the auditor lists delivered recoveries" -- api aud GET "/api/v1/recoveries?state=delivered"
check "two delivered" test "$(j '.items | length')" = 2
expect_exit 3 "an unknown state" -- api aud GET "/api/v1/recoveries?state=lost"
stop_serve
g audit list --json >"$T/audit.json"
check "km.recover twice on the CA's chain" test "$(jq '[.[] | select(.event == "km.recover" and .outcome == "success")] | length' "$T/audit.json")" = 2
check "ra.recovery.deliver twice, by the approvers" test "$(jq '[.[] | select(.event == "ra.recovery.deliver" and .outcome == "success")] | map(.actor) | sort | join(",")' -r "$T/audit.json")" = "adminB,adminC"
check "ra.recovery.approve refusals audited" test "$(jq '[.[] | select(.event == "ra.recovery.approve" and .outcome == "failure")] | length' "$T/audit.json")" -ge 3
stop_km
expect_exit 0 "the CA's audit chain verifies" -- g audit verify
expect_exit 0 "the KM's audit chain verifies" -- "$GMCA" km audit verify --km-dir "$K"
finish
