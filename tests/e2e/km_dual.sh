#!/usr/bin/env bash
# Dual certificates end to end (issue 6; CPS §3.10, §7.1.1 item 3, §7.1.2,
# §7.3.2): a KM with its own custodians, directory and database, certified
# by the CA and linked to it; a subscriber's soft token makes the signature
# key and CSR; the application goes through the RA (two people); the CA
# engine issues the signature certificate and, for a key pair the KM made
# and escrowed, the encryption certificate; the token imports the sealed
# pair and decrypts what was encrypted to the encryption certificate. A KM
# that is down fails the issuance cleanly (nothing issued) and the retry
# succeeds once it is back; a rekey brings a new encryption pair while the
# old key stays escrowed; revoking the signature certificate revokes its
# encryption pair; neither database holds a private key in clear.
. "$(dirname "$0")/common.bash"
D=$T/ca
K=$T/km
g() { "$GMCA" --dir "$D" "$@"; }
km() { local sub=$1; shift; "$GMCA" km "$sub" --km-dir "$K" "$@"; }
VERIFY=$GMCA_SRC/tests/interop/sm2verify.mjs
KM_PID=
stop_km() {
  [ -z "$KM_PID" ] || { kill -TERM "$KM_PID" 2>/dev/null || true; wait "$KM_PID" 2>/dev/null || true; }
  KM_PID=
}
trap 'stop_serve; stop_km; stop_engines; rm -rf "$T"' EXIT

expect_exit 0 "new CA" -- new_ca "$D"
g ca export --ca sub >"$T/sub.pem"
g ca export --ca root >"$T/root.pem"
custodians3 "$D"

# ---- the KM: its own ceremony, certified by the CA, linked both ways ----
mkdir -p "$K.shares"
mapfile -t KCARGS < <(custodian_args)
mapfile -t KDB < <(db_opt)
expect_exit 0 "KM key ceremony (5 custodians, 3 to open)" -- km init "${KCARGS[@]}" "${KDB[@]}" --shares-out "$K.shares" \
  --subject "C=CN, O=测试电子政务认证中心, OU=密钥管理中心, CN=测试 KM" --csr-out "$T/km.csr"
KCUST=(--share "$K.shares/share-1.json" --pin-file "$T/pin1" --share "$K.shares/share-2.json"
  --pin-file "$T/pin2" --share "$K.shares/share-3.json" --pin-file "$T/pin3")
expect_exit 0 "the CA certifies the KM (profile km)" -- g cert issue --profile km --csr "$T/km.csr" \
  --out "$T/km.pem" "${CUST[@]}"
expect_exit 0 "the CA links to its KM (custodians present)" -- g km link --km-cert "$T/km.pem" \
  --socket "$K/run/km.sock" "${CUST[@]}"
check "the CA's KM-communication certificate" test -s "$D/km/comm.crt"
check "its key is encrypted on disk" bash -c "grep -q 'ENCRYPTED' '$D/km/comm.key' && ! grep -q 'BEGIN PRIVATE KEY' '$D/km/comm.key'"
expect_exit 0 "the KM trusts the CA's communication certificate" -- km trust --km-cert "$T/km.pem" \
  --ca-cert "$T/sub.pem" --ca-comm-cert "$D/km/comm.crt" "${KCUST[@]}"
start_km() {
  "$GMCA" km serve --km-dir "$K" "${KCUST[@]}" >"$T/km.out" 2>"$T/km.err" &
  KM_PID=$!
  for _ in $(seq 100); do [ -S "$K/run/km.sock" ] && return 0; sleep 0.1; done
  return 1
}
check "the KM serves" start_km

# ---- the RA and its operators ----
expect_exit 0 "RA certificate" -- ra_cert "$D"
add_op() { add_operator "$D" "$@"; }
expect_exit 0 "business operator A" -- add_op opA business_operator
expect_exit 0 "business admin B" -- add_op adminB business_admin
expect_exit 0 "business admin C" -- add_op adminC business_admin
expect_exit 0 "serve starts the engine itself" -- g deactivate
start_front "$D"
check "serve is up" test -n "$URL"

j() { jq -r "$1" "$T/out"; }
sub_of() { api adminB GET "/api/v1/applications/$1" | jq -r .submission; }
vet_body() { jq -nc --arg s "$(sub_of "$1")" '{method: "in_person", documents: ["居民身份证原件"], result: "pass", submission: $s}'; }
ok_body() { jq -nc --arg s "$(sub_of "$1")" '{reason: "材料齐全", submission: $s}'; }
apply() { # PROFILE CSR -> $T/out is the application
  jq -nc --argjson a "$P" --arg p "$1" --rawfile csr "$2" --argjson info "$INFO" \
    '{applicant: $a, profile: $p, csr: $csr, subject_info: $info, materials: ["申请表"]}' >"$T/body"
  api opA POST /api/v1/applications --data "$(cat "$T/body")" >"$T/out"
}
vet_approve() { # APP -> $T/out is the approval's answer
  api adminB POST "/api/v1/applications/$1/vet" --data "$(vet_body "$1")" >/dev/null &&
    api adminC POST "/api/v1/applications/$1/approve" --data "$(ok_body "$1")" >"$T/out"
}
verified() {
  openssl verify -vfyopt distid:1234567812345678 -partial_chain -CAfile "$T/sub.pem" "$1" >/dev/null &&
    node "$VERIFY" cert "$1" "$T/sub.pem" >/dev/null
}
cert_count_now() { g cert list --json | grep -c "\"serial\"" || true; }

ID=11010519491231002X
INFO="{\"identity_card_number\":\"$ID\"}"
expect_exit 0 "A records 张三" -- api opA POST /api/v1/applicants \
  --data "{\"kind\":\"individual\",\"name\":\"张三\",\"id_type\":\"resident_id\",\"id_number\":\"$ID\",\"contact\":\"zhangsan@example.cn\"}"
P=$(j .id)

# ---- the subscriber's token makes the signature key and the request ----
echo "TokenPin2026" >"$T/tpin"
TK=(--token "$T/tok" --pin-file "$T/tpin")
expect_exit 0 "token init" -- "$GMCA" token init --token "$T/tok"
expect_exit 0 "token CSR (the signature key never leaves it)" -- "$GMCA" token csr "${TK[@]}" \
  --subject "/C=CN/ST=北京市/O=某市政务服务中心/CN=张三" --out "$T/zs.csr"
check "openssl accepts the token's CSR" openssl req -in "$T/zs.csr" -noout -verify -vfyopt distid:1234567812345678

expect_exit 0 "A applies for a personal signature certificate" -- apply personal-sign "$T/zs.csr"
APP1=$(j .id)
expect_exit 0 "B vets, C approves" -- vet_approve "$APP1"
check "issued" test "$(j .state)" = issued
S1=$(j .serial)
E1=$(j .encryption_serial)
check "an encryption certificate came with it" bash -c "[[ '$E1' =~ ^[0-9A-F]{32}$ ]] && [ '$E1' != '$S1' ]"
j .certificate >"$T/s1.pem"
j .encryption_certificate >"$T/e1.pem"
j .enveloped_key | base64 -d >"$T/e1.env"
j .enveloped_key_blob | base64 -d >"$T/e1.blob"
check "signature certificate verifies (openssl, sm2verify)" verified "$T/s1.pem"
check "encryption certificate verifies (openssl, sm2verify)" verified "$T/e1.pem"
openssl x509 -in "$T/e1.pem" -noout -text >"$T/e1.txt"
check "encryption certificate: keyEncipherment, dataEncipherment" grep -q "Key Encipherment, Data Encipherment" "$T/e1.txt"
check "encryption certificate: no digitalSignature" bash -c "! grep -q 'Digital Signature' '$T/e1.txt'"
check "same subject as the signature certificate" test \
  "$(openssl x509 -in "$T/e1.pem" -noout -subject -nameopt utf8)" = "$(openssl x509 -in "$T/s1.pem" -noout -subject -nameopt utf8)"
check "same validity" test "$(openssl x509 -in "$T/e1.pem" -noout -dates)" = "$(openssl x509 -in "$T/s1.pem" -noout -dates)"
check "a different key from the signature certificate" test \
  "$(openssl x509 -in "$T/e1.pem" -noout -pubkey)" != "$(openssl x509 -in "$T/s1.pem" -noout -pubkey)"
check "the SM2EnvelopedKey parses (openssl asn1parse)" bash -c "openssl asn1parse -inform DER -in '$T/e1.env' -i | grep -q sm4-ecb"
check "the ENVELOPEDKEYBLOB is 388 bytes" test "$(stat -c %s "$T/e1.blob")" = 388

# ---- the token takes both certificates and the sealed pair ----
expect_exit 0 "token imports the signature certificate" -- "$GMCA" token import-cert --token "$T/tok" "$T/s1.pem"
expect_exit 0 "token imports the encryption certificate" -- "$GMCA" token import-cert --token "$T/tok" "$T/e1.pem"
cp -r "$T/tok" "$T/tok-blob"
expect_exit 0 "token imports the enveloped key pair" -- "$GMCA" token import-key "${TK[@]}" "$T/e1.env"
expect_exit 0 "a copy of the token imports the SKF blob form" -- "$GMCA" token import-key --token "$T/tok-blob" \
  --pin-file "$T/tpin" "$T/e1.blob"
echo "机密：某市政务数据交换 $(date +%s)" >"$T/msg"
expect_exit 0 "anyone encrypts to the encryption certificate" -- "$GMCA" token encrypt --token "$T/tok" --cert "$T/e1.pem" \
  --in "$T/msg" --out "$T/msg.enc"
expect_exit 0 "the token decrypts" -- "$GMCA" token decrypt "${TK[@]}" --in "$T/msg.enc" --out "$T/msg.dec"
check "the plaintext comes back" cmp "$T/msg" "$T/msg.dec"
expect_exit 0 "openssl encrypts to the encryption certificate too" -- bash -c \
  "openssl x509 -in '$T/e1.pem' -noout -pubkey >'$T/e1.pub' && openssl pkeyutl -encrypt -pubin -inkey '$T/e1.pub' -in '$T/msg' -out '$T/msg.ossl'"
expect_exit 0 "and the token decrypts that" -- "$GMCA" token decrypt "${TK[@]}" --in "$T/msg.ossl" --out "$T/msg.dec2"
check "the plaintext comes back (openssl)" cmp "$T/msg" "$T/msg.dec2"

# ---- the KM's records: escrowed, and nowhere a private key in clear ----
expect_exit 0 "km list" -- km list
check "the KM escrows the key under the encryption certificate's serial" bash -c \
  "jq -e '.[] | select(.serial == \"$E1\" and .state == \"active\")' '$T/out' >/dev/null"
check "the KM answered a signed request from the CA (audited on the KM's chain)" bash -c \
  "\"$GMCA\" km audit verify --km-dir '$K' >/dev/null"
# db_sql reads the store on either backend; the envelopes are there, none holds a bare key.
no_key_in_envelopes() {
  local h
  h=$(db_sql "$D" "SELECT $(db_hex envelope) FROM dual_keys") && [ -n "$h" ] &&
    ! grep -qi '^30.*0201010420' <<<"$h"
}
check "the CA's database holds no private key (no PKCS#8 or EC key in any blob)" no_key_in_envelopes

# ---- a KM that is down: the issuance fails cleanly, the retry succeeds ----
sm2_csr p2 "/C=CN/O=某市政务服务中心/CN=张三"
stop_km
N0=$(cert_count_now)
expect_exit 0 "A applies again" -- apply personal-sign "$T/p2.csr"
APP2=$(j .id)
expect_exit 0 "approved while the KM is down" -- vet_approve "$APP2"
check "still approved, with the cause" test "$(j .state)" = approved
check "the cause names the KM" bash -c "jq -r .issue_error '$T/out' | grep -qi 'km'"
check "nothing issued: no signature certificate without its encryption pair" test "$(cert_count_now)" = "$N0"
check "the KM serves again" start_km
expect_exit 0 "the retry issues both" -- api adminC POST "/api/v1/applications/$APP2/issue"
check "issued now" test "$(j .state)" = issued
E2=$(j .encryption_serial)
check "with its encryption certificate" test -n "$E2"
check "two more certificates" test "$(cert_count_now)" = $((N0 + 2))

# ---- revocation takes the encryption pair along ----
expect_exit 0 "B asks to revoke the second signature certificate" -- api adminB POST /api/v1/revocations \
  --data "{\"serial\":\"$(j .serial)\",\"reason\":\"E\",\"requester\":\"subscriber\"}"
g cert show --serial "$E2" --json >"$T/e2.json" 2>/dev/null || true
check "its encryption certificate is revoked with it" bash -c "jq -e '.status == \"revoked\"' '$T/e2.json' >/dev/null"

# ---- a rekey: a new signature key brings a new encryption pair; the old key stays ----
echo "TokenPin2027" >"$T/tpin2"
TK2=(--token "$T/tok2" --pin-file "$T/tpin2")
expect_exit 0 "a new token" -- "$GMCA" token init --token "$T/tok2"
expect_exit 0 "its CSR" -- "$GMCA" token csr "${TK2[@]}" --subject "/C=CN/ST=北京市/O=某市政务服务中心/CN=张三" --out "$T/zs2.csr"
jq -nc --rawfile csr "$T/zs2.csr" --argjson info "$INFO" '{csr: $csr, subject_info: $info}' >"$T/body"
expect_exit 0 "A asks for a rekey of the first certificate" -- api opA POST "/api/v1/certificates/$S1/rekey" --data "$(cat "$T/body")"
APP3=$(j .id)
expect_exit 0 "vetted and approved" -- vet_approve "$APP3"
check "issued" test "$(j .state)" = issued
E3=$(j .encryption_serial)
check "a new encryption certificate" bash -c "[ -n '$E3' ] && [ '$E3' != '$E1' ]"
g cert show --serial "$E1" --json >"$T/e1.json" 2>/dev/null || true
check "the old encryption certificate is revoked with the old signature certificate" \
  bash -c "jq -e '.status == \"revoked\"' '$T/e1.json' >/dev/null"
km_state() { "$GMCA" km list --km-dir "$K" | jq -r ".[] | select(.serial == \"$1\") | .state"; }
wait_state() { # SERIAL STATE: the engine tells the KM between requests, within seconds
  for _ in $(seq 50); do [ "$(km_state "$1")" = "$2" ] && return 0; sleep 0.2; done
  return 1
}
check "the KM learns of the revoked encryption certificates (RA revocation, rekey)" \
  bash -c "$(declare -f km_state wait_state); GMCA='$GMCA' K='$K'; wait_state '$E2' revoked && wait_state '$E1' revoked"
check "the old key is still escrowed (§7.3.2: old data stays readable)" \
  bash -c "$(declare -f km_state); GMCA='$GMCA' K='$K'; [ \"\$(km_state '$E1')\" = revoked ]"
check "the new one is active" bash -c "$(declare -f km_state); GMCA='$GMCA' K='$K'; [ \"\$(km_state '$E3')\" = active ]"
j() { jq -r "$1" "$T/out"; }

# ---- a renewal (same signature key, 30 days before the end): a new encryption pair too ----
echo "TokenPin2028" >"$T/tpin3"
TK3=(--token "$T/tok3" --pin-file "$T/tpin3")
expect_exit 0 "a third token" -- "$GMCA" token init --token "$T/tok3"
expect_exit 0 "its CSR" -- "$GMCA" token csr "${TK3[@]}" --subject "/C=CN/ST=北京市/O=某市政务服务中心/CN=张三" --out "$T/zs3.csr"
jq -nc --argjson a "$P" --rawfile csr "$T/zs3.csr" --argjson info "$INFO" \
  '{applicant: $a, profile: "personal-sign", csr: $csr, subject_info: $info, materials: ["申请表"], days: 30}' >"$T/body"
expect_exit 0 "a 30-day certificate" -- api opA POST /api/v1/applications --data "$(cat "$T/body")"
expect_exit 0 "vetted and approved" -- vet_approve "$(j .id)"
S4=$(j .serial)
E4=$(j .encryption_serial)
j .certificate >"$T/s4.pem"
j .encryption_certificate >"$T/e4.pem"
j .enveloped_key | base64 -d >"$T/e4.env"
"$GMCA" token import-cert --token "$T/tok3" "$T/s4.pem" >/dev/null
"$GMCA" token import-cert --token "$T/tok3" "$T/e4.pem" >/dev/null
expect_exit 0 "the token takes its first encryption key" -- "$GMCA" token import-key "${TK3[@]}" "$T/e4.env"
expect_exit 0 "data encrypted to the first encryption certificate" -- "$GMCA" token encrypt --token "$T/tok3" \
  --cert "$T/e4.pem" --in "$T/msg" --out "$T/old.enc"
expect_exit 0 "the same key asks again (token CSR reuses it)" -- "$GMCA" token csr "${TK3[@]}" \
  --subject "/C=CN/ST=北京市/O=某市政务服务中心/CN=张三" --out "$T/zs3r.csr"
jq -nc --rawfile csr "$T/zs3r.csr" --argjson info "$INFO" '{csr: $csr, subject_info: $info}' >"$T/body"
expect_exit 0 "A asks for the renewal" -- api opA POST "/api/v1/certificates/$S4/renew" --data "$(cat "$T/body")"
expect_exit 0 "vetted and approved" -- vet_approve "$(j .id)"
check "renewed" test "$(j .state)" = issued
E5=$(j .encryption_serial)
check "a new encryption certificate with the renewal" bash -c "[ -n '$E5' ] && [ '$E5' != '$E4' ]"
j .encryption_certificate >"$T/e5.pem"
j .enveloped_key | base64 -d >"$T/e5.env"
"$GMCA" token import-cert --token "$T/tok3" "$T/e5.pem" >/dev/null
expect_exit 0 "the token takes the new encryption key" -- "$GMCA" token import-key "${TK3[@]}" "$T/e5.env"
expect_exit 0 "new data to the new encryption certificate" -- "$GMCA" token encrypt --token "$T/tok3" \
  --cert "$T/e5.pem" --in "$T/msg" --out "$T/new.enc"
expect_exit 0 "the token decrypts the new" -- "$GMCA" token decrypt "${TK3[@]}" --in "$T/new.enc" --out "$T/new.dec"
expect_exit 0 "and still the old (§7.3.2)" -- "$GMCA" token decrypt "${TK3[@]}" --in "$T/old.enc" --out "$T/old.dec"
check "both come back" bash -c "cmp -s '$T/msg' '$T/new.dec' && cmp -s '$T/msg' '$T/old.dec'"

stop_serve
stop_km
expect_exit 0 "the CA's audit chain verifies" -- g audit verify
expect_exit 0 "the KM's audit chain verifies" -- "$GMCA" km audit verify --km-dir "$K"
finish
