#!/usr/bin/env bash
# Decision-support statistics (issue 7 item 5, CPS §4.4.4, §4.6.4) through the
# signed API with real operators: two people in two provinces apply, one
# certificate is reissued (the old one revoked with it) and one revoked on a
# request; GET /api/v1/stats then counts them by business type and region,
# times the service (application to issuance, revocation request to
# completion), the CSV parses with python3's csv module and says what the
# JSON says, the business operator is refused (403, audited) and the audit
# admin and business admin read; bad parameters are 400. The console's
# `gmca stats` gives the same figures from the store. The CSV request is
# also signed and sent with openssl and curl, to see its Content-Type.
. "$(dirname "$0")/common.bash"
D=$T/ca
g() { "$GMCA" --dir "$D" "$@"; }

expect_exit 0 "new CA" -- new_ca "$D"
custodians3 "$D"
expect_exit 0 "RA certificate" -- ra_cert "$D"
add_op() { add_operator "$D" "$@"; }
expect_exit 0 "business operator A" -- add_op opA business_operator
expect_exit 0 "business admin B" -- add_op adminB business_admin
expect_exit 0 "business admin C" -- add_op adminC business_admin
expect_exit 0 "audit admin D" -- add_op auditD audit_admin
start_front "$D"
check "serve is up" test -n "$URL"

j() { jq -r "$1" "$T/out"; }
sub_of() { api adminB GET "/api/v1/applications/$1" | jq -r .submission; }
vet_approve() { # APP: B vets, C approves; the answer in $T/out
  api adminB POST "/api/v1/applications/$1/vet" --data "$(jq -nc --arg s "$(sub_of "$1")" \
    '{method: "in_person", documents: ["居民身份证原件"], result: "pass", submission: $s}')" >/dev/null &&
    api adminC POST "/api/v1/applications/$1/approve" \
      --data "$(jq -nc --arg s "$(sub_of "$1")" '{reason: "材料齐全", submission: $s}')" >"$T/out" &&
    test "$(j .state)" = issued
}
applicant() { # NAME ID: the applicant's id
  api opA POST /api/v1/applicants --data "{\"kind\":\"individual\",\"name\":\"$1\",\"id_type\":\"resident_id\",\"id_number\":\"$2\",\"contact\":\"a@example.cn\"}" |
    jq -r .id
}
apply() { # APPLICANT CSR ID-NUMBER: a new personal-sign application's id
  api opA POST /api/v1/applications --data "$(jq -nc --argjson a "$1" --rawfile csr "$2" --arg id "$3" \
    '{applicant: $a, profile: "personal-sign", csr: $csr, subject_info: {identity_card_number: $id},
      materials: ["申请表"]}')" | jq -r .id
}

# ---- two provinces, a reissue and a revocation ----
ID1=11010519491231002X
ID2=440305198001011235
P1=$(applicant 张三 $ID1)
P2=$(applicant 李四 $ID2)
check "two applicants" test -n "$P1" -a -n "$P2"
sm2_csr z1 "/C=CN/ST=北京/CN=张三"
sm2_csr l1 "/C=CN/ST=广东/L=深圳/CN=李四"
A1=$(apply "$P1" "$T/z1.csr" $ID1)
check "北京: issued" vet_approve "$A1"
S1=$(j .serial)
A2=$(apply "$P2" "$T/l1.csr" $ID2)
check "广东: issued" vet_approve "$A2"
S2=$(j .serial)
sm2_csr z2 "/C=CN/ST=北京/CN=张三"
expect_exit 0 "reissue for 张三 (carrier lost)" -- api opA POST "/api/v1/certificates/$S1/reissue" \
  --data "$(jq -nc --rawfile csr "$T/z2.csr" --arg id $ID1 '{csr: $csr, subject_info: {identity_card_number: $id}, carrier: "lost"}')"
A3=$(j .id)
check "reissued" vet_approve "$A3"
expect_exit 0 "A asks to revoke 李四's" -- api opA POST /api/v1/revocations \
  --data "{\"serial\":\"$S2\",\"reason\":\"H\",\"requester\":\"subscriber\"}"
R=$(j .id)
expect_exit 0 "B completes it" -- api adminB POST "/api/v1/revocations/$R/complete"

# ---- by business type ----
ALL=$(g cert list --json | jq length)
expect_exit 0 "the audit admin reads the statistics" -- api auditD GET /api/v1/stats
cp "$T/out" "$T/type.json"
check "grouped by type, six rows in order" test "$(j '[.rows[].group] | join(",")')" = "new,renew,rekey,reissue,change,cli"
row() { jq -r --arg g "$1" ".rows[] | select(.group == \$g) | $2" "$T/out"; }
check "two new, one reissue" test "$(row new .issued),$(row reissue .issued),$(row renew .issued)" = "2,1,0"
check "both revoked were issued new" test "$(row new .revoked),$(row reissue .revoked)" = "2,0"
check "operators' and the RA's certificates: cli" test "$(row cli .issued)" = "$((ALL - 3))"
check "every certificate of the store counted" test "$(j .total.issued)" = "$ALL"
check "three applications timed" test "$(j .total.issue_time.count)" = 3
sane() { jq -e '.total.issue_time | .max_seconds >= .median_seconds and .median_seconds >= 0 and .p90_seconds <= .max_seconds' "$T/out" >/dev/null; }
check "times are sane" sane
check "one revocation request, within 24 hours" test "$(j .total.revoke_time.count),$(j .total.revoke_time.over_24h)" = "1,0"
check "no timing where nothing was issued" test "$(row renew .issue_time.count),$(row renew .issue_time.mean_seconds)" = "0,null"

# ---- by region, JSON and CSV ----
expect_exit 0 "by region (business admin)" -- api adminB GET '/api/v1/stats?by=region'
cp "$T/out" "$T/region.json"
check "北京: two issued, one revoked" test "$(row 北京 .issued),$(row 北京 .revoked)" = "2,1"
check "广东: one issued and revoked on request" test "$(row 广东 .issued),$(row 广东 .revoked),$(row 广东 .revoke_time.count)" = "1,1,1"
check "the four operators have no ST: unknown" test "$(row unknown .by_type.cli)" -ge 4
check "every cli certificate in some region" test "$(j '[.rows[].by_type.cli] | add')" = "$((ALL - 3))"
expect_exit 0 "by region, CSV" -- api adminB GET '/api/v1/stats?by=region&format=csv'
cp "$T/out" "$T/region.csv"
check "CRLF lines" bash -c "head -n 1 '$T/region.csv' | grep -q \$'\\r\$'"
cat >"$T/cmp.py" <<'EOF'
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="", encoding="utf-8")))
doc = json.load(open(sys.argv[2], encoding="utf-8"))
want = [("group", r["group"], r) for r in doc["rows"]] + [("total", "", doc["total"])]
assert len(rows) == len(want), (len(rows), len(want))
for got, (kind, name, r) in zip(rows, want):
    assert got["row"] == kind and got["group"] == name, (got["row"], got["group"], kind, name)
    assert int(got["issued"]) == r["issued"] and int(got["revoked"]) == r["revoked"], name
    for t, n in r["by_type"].items():
        assert int(got[t]) == n, (name, t)
    for k in ("issue", "revoke"):
        for f, v in r[k + "_time"].items():
            cell = got[k + "_" + f]
            if v is None:
                assert cell == "", (name, k, f, cell)
            else:
                assert abs(float(cell) - v) < 1e-9, (name, k, f, cell, v)
print("ok", len(rows))
EOF
check "the CSV parses and matches the JSON" bash -c "python3 '$T/cmp.py' '$T/region.csv' '$T/region.json' >/dev/null"

# ---- by day and month: today holds everything ----
TODAY=$(TZ=Asia/Shanghai date +%F)
expect_exit 0 "by day, today only" -- api auditD GET "/api/v1/stats?by=day&from=$TODAY"
check "one day: today, all of it" test "$(j '.rows | length'),$(j '.rows[0].group'),$(j '.rows[0].issued')" = "1,$TODAY,$ALL"
expect_exit 0 "by month" -- api auditD GET "/api/v1/stats?by=month&from=2026-01-01&to=2026-03-01"
check "two empty months" test "$(j '[.rows[].group] | join(",")'),$(j .total.issued)" = "2026-01,2026-02,0"

# ---- who may, and bad parameters ----
FAIL0=$(audit_failures "$D")
expect_exit 5 "a business operator may not read the statistics" -- api opA GET /api/v1/stats
expect_err "(HTTP 403)"
check "the refusal is audited" test "$(audit_failures "$D")" = $((FAIL0 + 1))
check "as auth.request for stats.read" bash -c "g() { \"$GMCA\" --dir '$D' \"\$@\"; }; g audit list --json --event auth.request | jq -e 'last | .object == \"stats.read\" and .actor == \"opA\"' >/dev/null"
expect_exit 3 "by week" -- api auditD GET '/api/v1/stats?by=week'
expect_err "'by'"
expect_exit 3 "format xml" -- api auditD GET '/api/v1/stats?format=xml'
expect_exit 3 "a month 13" -- api auditD GET '/api/v1/stats?from=2026-13-01'
expect_exit 3 "from after to" -- api auditD GET '/api/v1/stats?from=2026-03-01&to=2026-02-01'
expect_exit 3 "twenty years by day" -- api auditD GET '/api/v1/stats?from=2006-01-01&by=day'
expect_err "narrow the period"
expect_exit 3 "an unknown parameter" -- api auditD GET '/api/v1/stats?region=x'

# ---- the CSV's Content-Type, with a request signed by openssl and sent by curl ----
signed_get() { # WHO TARGET: headers in $T/hdrs, body in $T/body
  local ts nonce fpr empty sig
  ts=$(date +%s)
  nonce=$(openssl rand -hex 16)
  fpr=$(openssl x509 -in "$T/$1.pem" -outform DER | openssl dgst -sm3 -r | cut -d' ' -f1)
  empty=$(printf '' | openssl dgst -sm3 -r | cut -d' ' -f1)
  printf 'gmca-request-v1\nGET\n%s\n%s\n%s\n%s\n%s' "$2" "$ts" "$nonce" "$empty" "$fpr" >"$T/base"
  sig=$(openssl pkeyutl -sign -inkey "$T/$1.key" -rawin -digest sm3 \
    -pkeyopt distid:1234567812345678 -in "$T/base" | base64 -w0) &&
    curl -s -D "$T/hdrs" -o "$T/body" -H "X-Gmca-Operator: $fpr" -H "X-Gmca-Timestamp: $ts" \
      -H "X-Gmca-Nonce: $nonce" -H "X-Gmca-Signature: $sig" "$URL$2"
}
check "curl: the CSV as text/csv in UTF-8" bash -c "$(declare -f signed_get); T='$T' URL='$URL' signed_get auditD '/api/v1/stats?by=region&format=csv' &&
  grep -qi '^content-type: text/csv; charset=utf-8' '$T/hdrs' && grep -q '^HTTP/1.1 200' '$T/hdrs'"
check "curl: the same CSV" cmp -s "$T/body" "$T/region.csv"
stop_serve

# ---- the console ----
expect_exit 0 "gmca stats --by region --json" -- g stats --by region --json
check "the console's figures are the API's" bash -c "diff <(jq -S 'del(.from, .to, .from_time, .to_time)' '$T/out') <(jq -S 'del(.from, .to, .from_time, .to_time)' '$T/region.json') >/dev/null"
expect_exit 0 "gmca stats --csv" -- g stats --csv
check "CSV by type from the console" bash -c "grep -q \$'^group,new,2,2,' '$T/out' && grep -q '^total,,$ALL,' '$T/out'"
expect_exit 2 "gmca stats --by week" -- g stats --by week
expect_exit 2 "gmca stats --from yesterday" -- g stats --from yesterday
expect_exit 2 "gmca stats --json --csv" -- g stats --json --csv
expect_exit 2 "gmca stats: too many days" -- g stats --by day --from 2000-01-01
finish
