#!/usr/bin/env bash
# The template admin and the system admin through the signed API (issue 4
# item 1, CPS §6.2.3): a template admin reads the profiles, disables one so
# that a business operator's application under it is refused (422) — while
# an application vetted before is still approved and issued — enables it
# again, lowers its validity_days with PUT so that the certificate of an
# application approved afterwards has the new validity (checked with
# openssl), and is refused for CA and internal profiles, a name mismatch and
# bad JSON; a business admin's PUT is 403. The old version is kept in
# profiles/history; config.change names the template admin. The system
# admin's GET /api/v1/system shows the CAs, the engine up (and down once it
# is stopped), the applications; a business operator's is 403.
. "$(dirname "$0")/common.bash"
D=$T/ca
g() { "$GMCA" --dir "$D" "$@"; }

expect_exit 0 "new CA" -- new_ca "$D"
custodians3 "$D"
expect_exit 0 "RA certificate" -- ra_cert "$D"
add_op() { add_operator "$D" "$@"; }
expect_exit 0 "template admin T" -- add_op tplT template_admin
expect_exit 0 "business operator A" -- add_op opA business_operator
expect_exit 0 "business admin B" -- add_op adminB business_admin
expect_exit 0 "business admin C" -- add_op adminC business_admin
expect_exit 0 "system admin Y" -- add_op sysY system_admin
expect_exit 0 "deactivate: serve starts the engine itself" -- g deactivate

start_front "$D"
check "serve is up" test -n "$URL"

j() { jq -r "$1" "$T/out"; }
ID=11010519491231002X
INFO="{\"identity_card_number\":\"$ID\"}"
body_app() { # APPLICANT CSRFILE
  jq -nc --argjson a "$1" --rawfile csr "$2" --argjson info "$INFO" \
    '{applicant: $a, profile: "personal-sign", csr: $csr, subject_info: $info, materials: ["申请表"]}'
}
# The vetting and the approval name the submission they are about (docs/api.md).
sub_of() { api adminB GET "/api/v1/applications/$1" | jq -r .submission; }
vet_body() { # APP
  jq -nc --arg s "$(sub_of "$1")" \
    '{method: "in_person", documents: ["居民身份证原件", "申请表"], result: "pass", submission: $s}'
}
ok_body() { jq -nc --arg s "$(sub_of "$1")" '{reason: "材料齐全", submission: $s}'; } # APP
end_of() { date -d "$(openssl x509 -in "$1" -noout -enddate | cut -d= -f2)" +%s; }
# profile_with KEY VALUE: personal-sign's JSON as the API shows its source, one key changed.
profile_with() { api tplT GET /api/v1/profiles/personal-sign | jq -c --arg k "$1" --argjson v "$2" '.source | .[$k] = $v'; }

# ---- reading ----
expect_exit 0 "T lists the profiles" -- api tplT GET /api/v1/profiles
check "personal-sign is listed, enabled" test "$(j '.items[] | select(.name == "personal-sign") | .enabled')" = true
check "root-ca is the custodians'" test "$(j '.items[] | select(.name == "root-ca") | .managed_by')" = custodians
expect_exit 0 "T reads personal-sign" -- api tplT GET /api/v1/profiles/personal-sign
check "365 days, parsed" test "$(j '.validity_days'),$(j '.key_usage | join(",")')" = "365,digitalSignature,nonRepudiation"
check "the SM3 is the file's" test "$(j .sm3)" = "$(openssl dgst -sm3 -r "$D/profiles/personal-sign.json" | cut -d' ' -f1)"
expect_exit 0 "a business operator reads them too" -- api opA GET /api/v1/profiles/personal-sign
expect_exit 5 "a system admin does not" -- api sysY GET /api/v1/profiles
expect_err "(HTTP 403)"
expect_exit 4 "no such profile" -- api tplT GET /api/v1/profiles/no-such

# ---- an applicant and an application vetted before the profile is disabled ----
expect_exit 0 "A records an applicant" -- api opA POST /api/v1/applicants \
  --data "{\"kind\":\"individual\",\"name\":\"张三\",\"id_type\":\"resident_id\",\"id_number\":\"$ID\",\"contact\":\"zhangsan@example.cn\"}"
P=$(j .id)
sm2_csr p1 "/C=CN/CN=张三"
expect_exit 0 "A applies under personal-sign" -- api opA POST /api/v1/applications --data "$(body_app "$P" "$T/p1.csr")"
APP1=$(j .id)
expect_exit 0 "B vets it" -- api adminB POST "/api/v1/applications/$APP1/vet" --data "$(vet_body "$APP1")"

# ---- disable / enable ----
expect_exit 5 "a business admin may not disable a profile" -- api adminB POST /api/v1/profiles/personal-sign/disable
expect_err "(HTTP 403)"
expect_exit 0 "T disables personal-sign" -- api tplT POST /api/v1/profiles/personal-sign/disable
check "disabled" test "$(j .enabled)" = false
expect_exit 6 "disabling it again" -- api tplT POST /api/v1/profiles/personal-sign/disable
expect_err "(HTTP 409)"
expect_exit 6 "the custodians' profile cannot be disabled" -- api tplT POST /api/v1/profiles/operator/disable
expect_err "(HTTP 422)"
sm2_csr p2 "/C=CN/CN=张三"
expect_exit 6 "A's application under the disabled profile: refused" -- api opA POST /api/v1/applications --data "$(body_app "$P" "$T/p2.csr")"
expect_err "profile personal-sign is disabled (HTTP 422)"
expect_exit 0 "the one vetted before is still approved and issued" -- api adminC POST "/api/v1/applications/$APP1/approve" --data "$(ok_body "$APP1")"
check "issued" test "$(j .state)" = issued
expect_exit 0 "T enables it again" -- api tplT POST /api/v1/profiles/personal-sign/enable
check "enabled" test "$(j .enabled)" = true

# ---- replacing: the validity lowered applies to what is approved afterwards ----
expect_exit 0 "A applies again" -- api opA POST /api/v1/applications --data "$(body_app "$P" "$T/p2.csr")"
APP2=$(j .id)
expect_exit 0 "B vets it" -- api adminB POST "/api/v1/applications/$APP2/vet" --data "$(vet_body "$APP2")"
OLD_SM3=$(openssl dgst -sm3 -r "$D/profiles/personal-sign.json" | cut -d' ' -f1)
profile_with validity_days 10 >"$T/ps10.json"
expect_exit 5 "a business admin may not replace a profile" -- api adminB PUT /api/v1/profiles/personal-sign --data "@$T/ps10.json"
expect_err "(HTTP 403)"
check "the file is as it was" test "$(openssl dgst -sm3 -r "$D/profiles/personal-sign.json" | cut -d' ' -f1)" = "$OLD_SM3"
expect_exit 0 "T lowers validity_days to 10" -- api tplT PUT /api/v1/profiles/personal-sign --data "@$T/ps10.json"
check "the result shows 10 days and the old SM3" test "$(j .validity_days),$(j .old_sm3),$(j .created)" = "10,$OLD_SM3,false"
check "the file is the body" cmp -s "$T/ps10.json" "$D/profiles/personal-sign.json"
check "the old version is kept" bash -c "ls '$D/profiles/history/' | grep -q '^personal-sign\.[0-9]*\.json$'"
check "byte for byte" test "$(openssl dgst -sm3 -r "$D/profiles/history/"personal-sign.*.json | head -n 1 | cut -d' ' -f1)" = "$OLD_SM3"
expect_exit 0 "C approves" -- api adminC POST "/api/v1/applications/$APP2/approve" --data "$(ok_body "$APP2")"
check "issued" test "$(j .state)" = issued
j .certificate >"$T/c2.pem"
DAYS=$(( ($(end_of "$T/c2.pem") - $(date +%s)) / 86400 ))
check "the certificate has the new validity (10 days, was 365): $DAYS" test "$DAYS" -ge 9 -a "$DAYS" -le 10

# ---- refusals ----
expect_exit 6 "a CA profile cannot be changed through the API" -- api tplT PUT /api/v1/profiles/root-ca --data "$(api tplT GET /api/v1/profiles/root-ca | jq -c .source)"
expect_err "(HTTP 422)"
profile_with name '"operator"' >"$T/op.json"
expect_exit 6 "nor an internal one" -- api tplT PUT /api/v1/profiles/operator --data "@$T/op.json"
expect_err "(HTTP 422)"
api tplT GET /api/v1/profiles/root-ca | jq -c '.source | .name = "my-ca"' >"$T/myca.json"
expect_exit 6 "nor a new CA profile" -- api tplT PUT /api/v1/profiles/my-ca --data "@$T/myca.json"
expect_err "CA profile"
check "no my-ca was made" test ! -e "$D/profiles/my-ca.json"
expect_exit 3 "the body names another profile" -- api tplT PUT /api/v1/profiles/device-ssl --data "@$T/ps10.json"
expect_err "(HTTP 400)"
expect_exit 3 "bad JSON" -- api tplT PUT /api/v1/profiles/personal-sign --data '{"name": "personal-sign",'
expect_err "(HTTP 400)"
profile_with colour '"red"' >"$T/colour.json"
expect_exit 3 "an unknown key" -- api tplT PUT /api/v1/profiles/personal-sign --data "@$T/colour.json"
expect_err 'unknown key "colour"'
check "personal-sign is still the 10-day version" cmp -s "$T/ps10.json" "$D/profiles/personal-sign.json"

# ---- the system admin ----
expect_exit 0 "Y reads the system's status" -- api sysY GET /api/v1/system
check "the CA engine answers" test "$(j .engine.up)" = true
check "the operational CA is listed, active, signed for by the engine" \
  test "$(j '.cas[] | select(.name == "sub") | [.key_state, .engine_signs] | join(",")')" = "active,true"
check "two applications issued" test "$(j .applications.by_state.issued)" = 2
check "nothing overdue" test "$(j .applications.overdue),$(j .revocations.overdue)" = "0,0"
check "the schema and the audit log" test "$(j '.schema_version >= 3 and .audit_records > 10')" = true
expect_exit 5 "a business operator may not" -- api opA GET /api/v1/system
expect_err "(HTTP 403)"
expect_exit 0 "the CA engine stops" -- g deactivate
expect_exit 0 "the status without the engine" -- api sysY GET /api/v1/system
check "the CA engine is down" test "$(j .engine.up)" = false

# ---- the audit trail ----
stop_serve
wait "$SERVE_PID" || true
SERVE_PID=
expect_exit 0 "audit chain verifies" -- g audit verify
g audit list --json >"$T/audit.json"
cc() { jq --arg o "$1" '[.[] | select(.event == "config.change" and .actor == "tplT" and .outcome == $o)] | length' "$T/audit.json"; }
check "T's changes on record (disable, enable, replace)" test "$(cc success)" = 3
check "the replacement names both versions" bash -c "jq -e --arg o '$OLD_SM3' '[.[] | select(.event == \"config.change\" and .actor == \"tplT\" and (.detail // \"\" | test(\$o)) and (.detail | test(\"new_sm3\")))] | length == 1' '$T/audit.json' >/dev/null"
check "T's refused changes on record" test "$(cc failure)" -ge 6
check "B's attempts refused, on record" bash -c "jq -e '[.[] | select(.event == \"auth.request\" and .actor == \"adminB\" and .object == \"profile.write\")] | length == 2' '$T/audit.json' >/dev/null"
check "A's refused application on record" bash -c "jq -e '[.[] | select(.event == \"ra.application.submit\" and .actor == \"opA\" and .outcome == \"failure\" and (.detail | test(\"disabled\")))] | length == 1' '$T/audit.json' >/dev/null"
finish
