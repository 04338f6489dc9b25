#!/usr/bin/env bash
# The RA's registration business end to end through the signed API (issue 4
# item 7): an individual (personal-sign), an organisation (org-sign) and a
# device (device-ssl) certificate go apply -> vet -> approve -> issue ->
# renew -> reissue -> revoke (the organisation also rekey and change) with
# two people at each step, and every CPS
# boundary is tried: the submitter vetting their own application (§3.1.3),
# an audit admin approving (§6.2.3), renewal one day before the 30-day
# window and inside it (§3.6.2), organisation renewal without the
# affiliation re-confirmed (§3.6.4), a disabled operator, a revocation by a
# business operator waiting for a business admin (§3.9), a judicial one with
# its document, the full identity number for the business admin alone and
# each full read audited (§4.5, §8.4), and the CA engine refusing an
# application altered in the database behind the front, or approved by an
# operator whose role was raised there. The certificates
# are checked with openssl and the independent SM2 verifier; the audit
# chain verifies and names every step's operator.
. "$(dirname "$0")/common.bash"
D=$T/ca
g() { "$GMCA" --dir "$D" "$@"; }
VERIFY=$GMCA_SRC/tests/interop/sm2verify.mjs

expect_exit 0 "new CA" -- new_ca "$D"
g ca export --ca sub >"$T/sub.pem"
g ca export --ca root >"$T/root.pem"
custodians3 "$D"

# ---- the RA system and five operators (CPS §6.2.3) ----
expect_exit 0 "RA certificate" -- ra_cert "$D"
add_op() { add_operator "$D" "$@"; }
expect_exit 0 "business operator A" -- add_op opA business_operator
expect_exit 0 "business admin B" -- add_op adminB business_admin
expect_exit 0 "business admin C" -- add_op adminC business_admin
expect_exit 0 "audit admin D" -- add_op auditD audit_admin
expect_exit 0 "super admin S" -- add_op superS super_admin
expect_exit 0 "deactivate: serve starts the engine itself" -- g deactivate

start_front "$D"
check "serve is up" test -n "$URL"

j() { jq -r "$1" "$T/out"; }
# body_app APPLICANT PROFILE CSRFILE INFO-JSON [extra jq object]
body_app() {
  jq -nc --argjson a "$1" --arg p "$2" --rawfile csr "$3" --argjson info "$4" --argjson x "${5:-{\}}" \
    '{applicant: $a, profile: $p, csr: $csr, subject_info: $info, materials: ["申请表"]} + $x'
}
body_life() { # CSRFILE INFO-JSON [extra]
  jq -nc --rawfile csr "$1" --argjson info "$2" --argjson x "${3:-{\}}" '{csr: $csr, subject_info: $info} + $x'
}
# The vetting and the approval name the submission they are about (docs/api.md):
# the application's "submission" as read before the step.
sub_of() { api adminB GET "/api/v1/applications/$1" | jq -r .submission; }
vet_body() { # APP
  jq -nc --arg s "$(sub_of "$1")" \
    '{method: "in_person", documents: ["居民身份证原件", "申请表"], result: "pass", submission: $s}'
}
ok_body() { jq -nc --arg s "$(sub_of "$1")" '{reason: "材料齐全", submission: $s}'; } # APP
# vet_approve APP: B vets, C approves; the certificate lands in $T/out.
vet_approve() {
  api adminB POST "/api/v1/applications/$1/vet" --data "$(vet_body "$1")" >/dev/null &&
    api adminC POST "/api/v1/applications/$1/approve" --data "$(ok_body "$1")" >"$T/out" &&
    test "$(j .state)" = issued
}
# cert_of SERIAL FILE: the certificate as the API shows it, PEM.
cert_of() { api adminB GET "/api/v1/certificates/$1" | jq -r .certificate >"$2"; }
verified() { # PEM: openssl and the independent verifier, under the operational CA
  openssl verify -vfyopt distid:1234567812345678 -partial_chain -CAfile "$T/sub.pem" "$1" >/dev/null &&
    node "$VERIFY" cert "$1" "$T/sub.pem" >/dev/null
}
end_of() { date -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%s; }
pub_of() { openssl x509 -in "$1" -noout -pubkey; }

# ============ an individual: personal-sign ============
ID=11010519491231002X
expect_exit 0 "A records an individual" -- api opA POST /api/v1/applicants \
  --data "{\"kind\":\"individual\",\"name\":\"张三\",\"id_type\":\"resident_id\",\"id_number\":\"$ID\",\"contact\":\"zhangsan@example.cn\"}"
P=$(j .id)
check "the identity number is masked" bash -c "jq -e '.id_masked and (.id_number == null)' '$T/out' >/dev/null && ! grep -q '$ID' '$T/out'"
id_sealed_only() {
  local rows
  rows=$(db_sql "$D" "SELECT $(db_hex id_sealed), id_masked FROM applicants") && [ -n "$rows" ] &&
    ! grep -q "$ID" <<<"$rows"
}
check "the identity number is sealed in the database" id_sealed_only
INFO_P="{\"identity_card_number\":\"$ID\"}"

# --- apply, with the two-person rule ---
sm2_csr p1 "/C=CN/CN=张三"
expect_exit 0 "A applies (31 days)" -- api opA POST /api/v1/applications --data "$(body_app "$P" personal-sign "$T/p1.csr" "$INFO_P" '{"days":31}')"
APP1=$(j .id)
check "submitted" test "$(j .state)" = submitted
expect_exit 6 "A may not vet A's own application" -- api opA POST "/api/v1/applications/$APP1/vet" --data "$(vet_body "$APP1")"
expect_err "(HTTP 422)"
expect_exit 5 "an audit admin may not approve" -- api auditD POST "/api/v1/applications/$APP1/approve" --data "$(ok_body "$APP1")"
expect_err "(HTTP 403)"
expect_exit 6 "no approval before the vetting" -- api adminC POST "/api/v1/applications/$APP1/approve" --data "$(ok_body "$APP1")"
expect_exit 0 "B vets" -- api adminB POST "/api/v1/applications/$APP1/vet" --data "$(vet_body "$APP1")"
check "vetted by B" test "$(j .state),$(j .vetted_by)" = "vetted,adminB"
expect_exit 5 "an audit admin still may not approve" -- api auditD POST "/api/v1/applications/$APP1/approve" --data "$(ok_body "$APP1")"
ZERO=$(printf '0%.0s' $(seq 64))
expect_exit 6 "an approval naming another submission: refused" -- api adminC POST "/api/v1/applications/$APP1/approve" --data "{\"submission\":\"$ZERO\"}"
expect_err "read it again"
expect_exit 0 "C approves: issued" -- api adminC POST "/api/v1/applications/$APP1/approve" --data "$(ok_body "$APP1")"
check "issued" test "$(j .state)" = issued
S1=$(j .serial)
j .certificate >"$T/s1.pem"
check "openssl and sm2verify: personal certificate under the operational CA" verified "$T/s1.pem"
check "subject 张三" bash -c "openssl x509 -in '$T/s1.pem' -noout -subject -nameopt utf8 | grep -q '张三'"
start_of() { date -d "$(openssl x509 -in "$1" -noout -startdate | cut -d= -f2)" +%s; }
check "31 days" test $(( $(end_of "$T/s1.pem") - $(start_of "$T/s1.pem") )) = $((31 * 86400))
expect_exit 0 "the application record" -- api opA GET "/api/v1/applications/$APP1"
check "three people on it" test "$(j '[.submitted_by, .vetted_by, .decided_by] | join(",")')" = "opA,adminB,adminC"
check "not overdue" test "$(j .overdue)" = false
expect_exit 0 "notifications" -- api opA GET "/api/v1/notifications?application=$APP1"
check "the applicant was notified by e-mail" bash -c "jq -e '[.items[] | select(.channel == \"email\")] | length >= 1' '$T/out' >/dev/null"
expect_exit 0 "the audit admin may read it" -- api auditD GET "/api/v1/applications/$APP1"

# --- the identity number in full: business admin only, audited ---
expect_exit 5 "A may not read the full identity number" -- api opA GET "/api/v1/applicants/$P?full=1"
expect_exit 0 "B reads it in full" -- api adminB GET "/api/v1/applicants/$P?full=1"
check "in full for B" test "$(j .id_number)" = "$ID"
expect_exit 0 "masked in the listing" -- api opA GET '/api/v1/applicants?kind=individual'
check "no full number in the listing" bash -c "! grep -q '$ID' '$T/out'"

# --- renewal: day 31 before the end refused, day 30 accepted (§3.6.2) ---
openssl req -new -key "$T/p1.key" -sm3 -sigopt distid:1234567812345678 -utf8 -subj "/C=CN/CN=张三" -out "$T/p1r.csr"
expect_exit 6 "renewal 31 days before the end: refused" -- api opA POST "/api/v1/certificates/$S1/renew" --data "$(body_life "$T/p1r.csr" "$INFO_P")"
expect_err "(HTTP 422)"
sm2_csr p2 "/C=CN/CN=张三"
expect_exit 0 "a second certificate (30 days)" -- api opA POST /api/v1/applications --data "$(body_app "$P" personal-sign "$T/p2.csr" "$INFO_P" '{"days":30}')"
APP2=$(j .id)
check "vet and approve" vet_approve "$APP2"
S2=$(j .serial)
j .certificate >"$T/s2.pem"
openssl req -new -key "$T/p2.key" -sm3 -sigopt distid:1234567812345678 -utf8 -subj "/C=CN/CN=张三" -out "$T/p2r.csr"
expect_exit 6 "renewal with another key: refused (§3.6.4)" -- api opA POST "/api/v1/certificates/$S2/renew" --data "$(body_life "$T/p1r.csr" "$INFO_P")"
expect_exit 0 "renewal 30 days before the end: accepted" -- api opA POST "/api/v1/certificates/$S2/renew" --data "$(body_life "$T/p2r.csr" "$INFO_P")"
APP3=$(j .id)
check "a renewal" test "$(j .type),$(j .old_serial)" = "renew,$S2"
expect_exit 6 "A may not vet the renewal A entered" -- api opA POST "/api/v1/applications/$APP3/vet" --data "$(vet_body "$APP3")"
check "renewal vetted and approved" vet_approve "$APP3"
S3=$(j .serial)
j .certificate >"$T/s3.pem"
check "the renewed certificate keeps the key" test "$(pub_of "$T/s3.pem")" = "$(pub_of "$T/s2.pem")"
check "openssl and sm2verify: renewed certificate" verified "$T/s3.pem"
expect_exit 0 "the old one" -- api adminB GET "/api/v1/certificates/$S2"
check "the old one runs out by itself (not revoked)" test "$(j .status)" = valid

# --- reissue (补办, §3.7): carrier lost ---
sm2_csr p3 "/C=CN/CN=张三"
expect_exit 3 "reissue needs the carrier" -- api opA POST "/api/v1/certificates/$S3/reissue" --data "$(body_life "$T/p3.csr" "$INFO_P")"
expect_exit 0 "reissue: carrier lost" -- api opA POST "/api/v1/certificates/$S3/reissue" --data "$(body_life "$T/p3.csr" "$INFO_P" '{"carrier":"lost"}')"
APP4=$(j .id)
check "reissue vetted and approved" vet_approve "$APP4"
S4=$(j .serial)
j .certificate >"$T/s4.pem"
check "the reissue ends when the old one did" test "$(end_of "$T/s4.pem")" = "$(end_of "$T/s3.pem")"
check "openssl and sm2verify: reissued certificate" verified "$T/s4.pem"
expect_exit 0 "the lost one" -- api adminB GET "/api/v1/certificates/$S3"
check "the lost one is revoked: keyCompromise" test "$(j .status),$(j .reason)" = "revoked,1"

# --- revocation (§3.9): a business operator's request waits for a business admin ---
expect_exit 0 "A asks for revocation (the subscriber asks: H)" -- api opA POST /api/v1/revocations \
  --data "{\"serial\":\"$S4\",\"reason\":\"H\",\"requester\":\"subscriber\",\"note\":\"柜台申请\"}"
R1=$(j .id)
check "pending, with a 24-hour deadline" test "$(j .state),$(( $(j .deadline) - $(j .requested_at) ))" = "pending,86400"
expect_exit 0 "still valid while pending" -- api adminB GET "/api/v1/certificates/$S4"
check "valid" test "$(j .status)" = valid
expect_exit 5 "A may not complete it" -- api opA POST "/api/v1/revocations/$R1/complete"
expect_exit 0 "the pending list" -- api adminB GET '/api/v1/revocations?state=pending'
check "it is listed" bash -c "jq -e --argjson r $R1 '[.items[] | select(.id == \$r)] | length == 1' '$T/out' >/dev/null"
expect_exit 0 "B completes it" -- api adminB POST "/api/v1/revocations/$R1/complete"
check "completed by B" test "$(j .state),$(j .completed_by)" = "completed,adminB"
expect_exit 0 "revoked now" -- api adminB GET "/api/v1/certificates/$S4"
check "revoked, unspecified" test "$(j .status),$(j .reason)" = "revoked,0"
expect_exit 6 "completing twice" -- api adminB POST "/api/v1/revocations/$R1/complete"
expect_exit 6 "renewing a revoked certificate" -- api opA POST "/api/v1/certificates/$S4/renew" --data "$(body_life "$T/p3.csr" "$INFO_P")"

# ============ an organisation: org-sign ============
USCC=91350100M000100Y43
expect_exit 0 "A records an organisation" -- api opA POST /api/v1/applicants \
  --data "{\"kind\":\"organization\",\"name\":\"某某市大数据局\",\"uscc\":\"$USCC\",\"address\":\"某某市某某路 1 号\",\"contact\":\"+86 10 1234 5678\"}"
O=$(j .id)
INFO_O="{\"unified_social_credit_code\":\"$USCC\"}"
sm2_csr o1 "/C=CN/O=某某市大数据局/CN=某某市大数据局"
expect_exit 0 "A applies for an organisation certificate" -- api opA POST /api/v1/applications --data "$(body_app "$O" org-sign "$T/o1.csr" "$INFO_O" '{"days":30}')"
APPO1=$(j .id)
expect_exit 6 "A may not vet it" -- api opA POST "/api/v1/applications/$APPO1/vet" --data "$(vet_body "$APPO1")"
expect_exit 5 "D may not approve it" -- api auditD POST "/api/v1/applications/$APPO1/approve" --data "$(ok_body "$APPO1")"
check "vet and approve" vet_approve "$APPO1"
SO1=$(j .serial)
j .certificate >"$T/o1.pem"
check "openssl and sm2verify: organisation certificate" verified "$T/o1.pem"
openssl req -new -key "$T/o1.key" -sm3 -sigopt distid:1234567812345678 -utf8 -subj "/C=CN/O=某某市大数据局/CN=某某市大数据局" -out "$T/o1r.csr"
expect_exit 6 "organisation renewal without the affiliation re-confirmed" -- api opA POST "/api/v1/certificates/$SO1/renew" --data "$(body_life "$T/o1r.csr" "$INFO_O")"
expect_exit 0 "organisation renewal, affiliation confirmed" -- api opA POST "/api/v1/certificates/$SO1/renew" --data "$(body_life "$T/o1r.csr" "$INFO_O" '{"affiliation_confirmed":true}')"
APPO2=$(j .id)
check "renewal vetted and approved" vet_approve "$APPO2"
SO2=$(j .serial)
j .certificate >"$T/o2.pem"
check "same key" test "$(pub_of "$T/o2.pem")" = "$(pub_of "$T/o1.pem")"
sm2_csr o3 "/C=CN/O=某某市大数据局/CN=某某市大数据局"
expect_exit 0 "reissue: carrier damaged" -- api opA POST "/api/v1/certificates/$SO2/reissue" --data "$(body_life "$T/o3.csr" "$INFO_O" '{"carrier":"damaged"}')"
APPO3=$(j .id)
check "reissue vetted and approved" vet_approve "$APPO3"
SO3=$(j .serial)
j .certificate >"$T/o3.pem"
check "openssl and sm2verify: reissued organisation certificate" verified "$T/o3.pem"
expect_exit 0 "the damaged one" -- api adminB GET "/api/v1/certificates/$SO2"
check "revoked: superseded" test "$(j .status),$(j .reason)" = "revoked,4"
# --- rekey (§3.6.1): a new key pair; the old certificate revoked as superseded ---
sm2_csr o4 "/C=CN/O=某某市大数据局/CN=某某市大数据局"
expect_exit 6 "rekey with the same key: refused" -- api opA POST "/api/v1/certificates/$SO3/rekey" --data "$(body_life "$T/o3.csr" "$INFO_O")"
expect_exit 0 "rekey" -- api opA POST "/api/v1/certificates/$SO3/rekey" --data "$(body_life "$T/o4.csr" "$INFO_O")"
APPO4=$(j .id)
check "rekey vetted and approved" vet_approve "$APPO4"
SO4=$(j .serial)
j .certificate >"$T/o4.pem"
check "rekey: a new key" test "$(pub_of "$T/o4.pem")" != "$(pub_of "$T/o3.pem")"
check "openssl and sm2verify: rekeyed certificate" verified "$T/o4.pem"
expect_exit 0 "the certificate rekeyed" -- api adminB GET "/api/v1/certificates/$SO3"
check "rekey: the old one superseded" test "$(j .status),$(j .reason)" = "revoked,4"
# --- change (§3.8): new subject information; the old one revoked, the new linked to it ---
sm2_csr o5 "/C=CN/O=某某市大数据局/OU=数据管理处/CN=某某市大数据局"
expect_exit 0 "change" -- api opA POST "/api/v1/certificates/$SO4/change" --data "$(body_life "$T/o5.csr" "$INFO_O" '{"profile":"org-sign"}')"
APPO5=$(j .id)
check "change: linked to the old certificate" test "$(j .type),$(j .old_serial)" = "change,$SO4"
check "change vetted and approved" vet_approve "$APPO5"
SO5=$(j .serial)
j .certificate >"$T/o5.pem"
check "change: the new subject" bash -c "openssl x509 -in '$T/o5.pem' -noout -subject -nameopt utf8 | grep -q 'OU=数据管理处'"
expect_exit 0 "the certificate changed" -- api adminB GET "/api/v1/certificates/$SO4"
check "change: the old one superseded" test "$(j .status),$(j .reason)" = "revoked,4"
# A judicial authority orders the revocation: no re-vetting, the document recorded.
expect_exit 3 "judicial revocation without its document" -- api adminB POST /api/v1/revocations \
  --data "{\"serial\":\"$SO5\",\"reason\":\"B\",\"requester\":\"judicial\",\"authority\":\"某某市中级人民法院\"}"
expect_exit 6 "a judicial authority does not give reason H (§3.9.2)" -- api adminB POST /api/v1/revocations \
  --data "{\"serial\":\"$SO5\",\"reason\":\"H\",\"requester\":\"judicial\",\"authority\":\"某某市中级人民法院\",\"document_ref\":\"(2026)某01执123号\"}"
expect_exit 0 "judicial revocation by B: at once" -- api adminB POST /api/v1/revocations \
  --data "{\"serial\":\"$SO5\",\"reason\":\"B\",\"requester\":\"judicial\",\"authority\":\"某某市中级人民法院\",\"document_ref\":\"(2026)某01执123号\"}"
check "completed, with its document" test "$(j .state),$(j .document_ref)" = "completed,(2026)某01执123号"
expect_exit 0 "revoked" -- api adminB GET "/api/v1/certificates/$SO5"
check "privilegeWithdrawn" test "$(j .status),$(j .reason)" = "revoked,9"

# ============ a device: device-ssl ============
expect_exit 0 "A records a device" -- api opA POST /api/v1/applicants \
  --data '{"kind":"device","name":"门户网站","domain":"www.example.gov.cn","owner_org":"某某市大数据局"}'
DV=$(j .id)
INFO_D='{"san":{"dns":["www.example.gov.cn"]}}'
sm2_csr d1 "/C=CN/O=某某市大数据局/CN=www.example.gov.cn"
expect_exit 0 "A applies for a device certificate" -- api opA POST /api/v1/applications --data "$(body_app "$DV" device-ssl "$T/d1.csr" "$INFO_D" '{"days":30}')"
APPD1=$(j .id)
expect_exit 6 "A may not vet it" -- api opA POST "/api/v1/applications/$APPD1/vet" --data "$(vet_body "$APPD1")"
check "vet and approve" vet_approve "$APPD1"
SD1=$(j .serial)
j .certificate >"$T/d1.pem"
check "openssl and sm2verify: device certificate" verified "$T/d1.pem"
check "the domain in the SAN" bash -c "openssl x509 -in '$T/d1.pem' -noout -ext subjectAltName | grep -q 'DNS:www.example.gov.cn'"
openssl req -new -key "$T/d1.key" -sm3 -sigopt distid:1234567812345678 -utf8 -subj "/C=CN/O=某某市大数据局/CN=www.example.gov.cn" -out "$T/d1r.csr"
expect_exit 6 "device renewal with other subject information: a change, refused" -- api opA POST "/api/v1/certificates/$SD1/renew" \
  --data "$(body_life "$T/d1r.csr" '{"san":{"dns":["evil.example.cn"]}}')"
expect_err "subject information"
expect_exit 0 "device renewal, subject_info left out" -- api opA POST "/api/v1/certificates/$SD1/renew" --data "$(jq -nc --rawfile csr "$T/d1r.csr" '{csr: $csr}')"
APPD2=$(j .id)
check "the old certificate's subject information carried over" test "$(jq -c .subject_info "$T/out")" = "$INFO_D"
check "renewal vetted and approved" vet_approve "$APPD2"
SD2=$(j .serial)
j .certificate >"$T/d2.pem"
check "the renewed certificate keeps the domain" bash -c "openssl x509 -in '$T/d2.pem' -noout -ext subjectAltName | grep -q 'DNS:www.example.gov.cn'"
sm2_csr d3 "/C=CN/O=某某市大数据局/CN=www.example.gov.cn"
expect_exit 0 "device reissue" -- api opA POST "/api/v1/certificates/$SD2/reissue" --data "$(body_life "$T/d3.csr" "$INFO_D" '{"carrier":"lost"}')"
APPD3=$(j .id)
check "reissue vetted and approved" vet_approve "$APPD3"
SD3=$(j .serial)
j .certificate >"$T/d3.pem"
check "openssl and sm2verify: reissued device certificate" verified "$T/d3.pem"
expect_exit 0 "B revokes it (key compromise, by the CA): at once" -- api adminB POST /api/v1/revocations \
  --data "{\"serial\":\"$SD3\",\"reason\":\"E\",\"requester\":\"ca\"}"
check "completed at once" test "$(j .state)" = completed
expect_exit 0 "revoked" -- api adminB GET "/api/v1/certificates/$SD3"
check "keyCompromise" test "$(j .status),$(j .reason)" = "revoked,1"

# ============ the CA engine checks again what the front hands it ============
n_certs=$(cert_count "$D")
sm2_csr t1 "/C=CN/CN=李四"
sm2_csr t2 "/C=CN/CN=王五"
expect_exit 0 "an application to tamper with" -- api opA POST /api/v1/applications --data "$(body_app "$P" personal-sign "$T/t1.csr" "$INFO_P" '{"days":30}')"
TA=$(j .id)
expect_exit 0 "vetted" -- api adminB POST "/api/v1/applications/$TA/vet" --data "$(vet_body "$TA")"
# Behind the front: another key and subject in the row than the operator signed for.
openssl req -in "$T/t2.csr" -outform DER -out "$T/t2.der"
db_sql "$D" "UPDATE applications SET csr = $(db_blob "$(xxd -p "$T/t2.der" | tr -d '\n')") WHERE id = $TA"
expect_exit 0 "approval goes through the front" -- api adminC POST "/api/v1/applications/$TA/approve" --data "$(ok_body "$TA")"
check "but the CA engine refuses to issue" test "$(j .state)" = approved
check "and says why" test -n "$(j .issue_error)"
expect_exit 0 "another one" -- api opA POST /api/v1/applications --data "$(body_app "$P" personal-sign "$T/t1.csr" "$INFO_P" '{"days":30}')"
TB=$(j .id)
# Marked approved in the database without vetting or approval.
db_sql "$D" "UPDATE applications SET state = 'approved' WHERE id = $TB"
api adminC POST "/api/v1/applications/$TB/issue" >"$T/out" 2>"$T/err" || true
check "the CA engine refuses an application nobody vetted" bash -c "! jq -e '.state == \"issued\"' '$T/out' >/dev/null 2>&1"
# An issued application made to look approved again: its approvals are spent.
db_sql "$D" "UPDATE applications SET state = 'approved', issued_serial = NULL, issued_at = NULL WHERE id = $APPD1"
api adminC POST "/api/v1/applications/$APPD1/issue" >"$T/out" 2>"$T/err" || true
check "the CA engine refuses to issue an application twice" grep -q "issued from this CSR already" "$T/err"
# The operators table is the front's to write too: a role given behind the custodians'
# back lets A approve through the front, but the engine checks the custodians' tag.
db_sql "$D" "UPDATE operators SET roles = 'business_admin' WHERE name = 'opA'"
sm2_csr t3 "/C=CN/CN=赵六"
expect_exit 0 "C applies" -- api adminC POST /api/v1/applications --data "$(body_app "$P" personal-sign "$T/t3.csr" "$INFO_P" '{"days":30}')"
TC=$(j .id)
expect_exit 0 "B vets" -- api adminB POST "/api/v1/applications/$TC/vet" --data "$(vet_body "$TC")"
expect_exit 0 "A, a business admin in the database only, approves through the front" -- api opA POST "/api/v1/applications/$TC/approve" --data "$(ok_body "$TC")"
check "the CA engine refuses to issue" test "$(j .state)" = approved
check "naming A's record" bash -c "jq -r .issue_error '$T/out' | grep -qF 'operator opA: record not made by the custodians (tag)'"
db_sql "$D" "UPDATE operators SET roles = 'business_operator' WHERE name = 'opA'"
check "nothing was issued by any" test "$(cert_count "$D")" = "$n_certs"
expect_exit 0 "the engine's refusals are audited" -- g audit list --json --event ra.application.issue
check "four refusals recorded" test "$(jq '[.[] | select(.outcome == "failure")] | length' "$T/out")" -ge 4

# ============ a disabled operator ============
expect_exit 5 "B may not disable an operator" -- api adminB POST /api/v1/operators/opA/disable
expect_exit 0 "S disables A" -- api superS POST /api/v1/operators/opA/disable
expect_exit 5 "A's requests are refused" -- api opA GET /api/v1/whoami
expect_err "(HTTP 401)"
expect_exit 5 "A can no longer submit" -- api opA POST /api/v1/applications --data "$(body_app "$P" personal-sign "$T/t1.csr" "$INFO_P")"
expect_exit 0 "A's certificate" -- g operator list --json
check "A's certificate is revoked (privilegeWithdrawn)" \
  test "$(g cert show --serial "$(jq -r '.[] | select(.name == "opA") | .serial' "$T/out")" --json | jq -r '.status')" = revoked

# ============ the audit trail ============
stop_serve
wait "$SERVE_PID" || true
SERVE_PID=
expect_exit 0 "audit chain verifies" -- g audit verify
g audit list --json >"$T/audit.json"
ev() { jq --arg e "$1" --arg a "$2" '[.[] | select(.event == $e and .actor == $a and .outcome == "success")] | length' "$T/audit.json"; }
check "A's submissions" test "$(ev ra.application.submit opA)" -ge 13
check "B's vettings" test "$(ev ra.application.vet adminB)" -ge 12
check "C's approvals" test "$(ev ra.application.approve adminC)" -ge 12
check "twelve issues, each naming the three operators" bash -c "jq -e '[.[] | select(.event == \"ra.application.issue\" and .outcome == \"success\") | .detail] | length == 12 and all(test(\"opA\") and test(\"adminB\") and test(\"adminC\"))' '$T/audit.json' >/dev/null"
check "A's revocation request" test "$(ev ra.revocation.request opA)" = 1
check "B completed it" test "$(ev ra.revocation.complete adminB)" -ge 1
check "B's full read of the identity number" test "$(ev ra.applicant.read adminB)" = 1
check "the engine's own record of opening it (the field, not the value)" bash -c "jq -e '[.[] | select(.event == \"engine.request\" and .outcome == \"success\" and .object == \"applicant:$P:id_number\")] | length == 1' '$T/audit.json' >/dev/null"
check "no identity number in the audit log" bash -c "! grep -q 11010519491231002X '$T/audit.json'"
check "S disabled A" test "$(ev operator.disable superS)" = 1
check "A's own vetting refused, on record" bash -c "jq -e '[.[] | select(.event == \"ra.application.vet\" and .actor == \"opA\" and .outcome == \"failure\")] | length >= 3' '$T/audit.json' >/dev/null"
check "D's approvals refused, on record" bash -c "jq -e '[.[] | select(.event == \"auth.request\" and .actor == \"auditD\")] | length >= 3' '$T/audit.json' >/dev/null"
check "the disabled operator's request refused, on record" bash -c "jq -e '[.[] | select(.event == \"auth.request\" and (.detail | test(\"disabled|revoked\")))] | length >= 1' '$T/audit.json' >/dev/null"
check "the engine stopped with serve" test ! -S "$D/run/engine.sock"
finish
