#!/usr/bin/env bash
# The front's database role on PostgreSQL (issue 9, DESIGN.md trust zones):
# a CA whose front (gmca serve) connects as a restricted role runs the whole
# RA flow through it (apply, vet, approve and issue through the engine, a
# revocation completed (carried out by the engine), an operator disabled
# (the engine revokes its certificate), OCSP answered by the engine from its own records, a
# CRL, the search page, statistics, the sync publisher's cursor), and then
# that role, connected with psql, may not un-revoke, rewrite or add a
# certificate, nor delete or rewrite the audit log, nor touch the RA
# certificates the engine trusts; a new migration's table starts with no
# rights. Only under GMCA_TEST_PG (pg/e2e/pg_roles); on SQLite, gmca refuses
# --front-db. About 20 s.
if [ -z "${GMCA_TEST_PG:-}" ]; then
  echo "pg_roles: skipped (PostgreSQL only: runs as pg/e2e/pg_roles under GMCA_TEST_PG)"
  exit 0
fi
. "$(dirname "$0")/common.bash"
D=$T/ca
g() { "$GMCA" --dir "$D" "$@"; }
RECV=$GMCA_SRC/tests/e2e/sync_receiver.py
RPID=
trap 'stop_serve; [ -z "$RPID" ] || kill "$RPID" 2>/dev/null; stop_engines; rm -rf "$T"' EXIT

# ---- SQLite: refused, before any ceremony ----
make_pins
mapfile -t cargs < <(custodian_args)
expect_exit 3 "init --front-db on SQLite: refused" -- "$GMCA" --dir "$T/lite" init "${cargs[@]}" \
  --shares-out "$T" --root-dn "C=CN, O=测试, CN=R" --sub-dn "C=CN, ST=北京市, O=测试, OU=运营, CN=S" \
  --front-db "postgresql:///x?host=/tmp"
expect_err "needs the store on PostgreSQL"
check "nothing left behind" test ! -e "$T/lite"

# ---- a CA on PostgreSQL, then its front role ----
expect_exit 0 "new CA" -- new_ca "$D"
g ca export --ca root >"$T/root.pem"
g ca export --ca sub >"$T/sub.pem"
custodians3 "$D"
OWNER=$(jq -r .database "$D/gmca.json")
ROLE=gmca_front_$$_$RANDOM
pg_psql "$OWNER" "CREATE ROLE $ROLE LOGIN"
# The test cluster authenticates by peer only: the front's connection takes the role
# at its start (options=-c role=...). A deployment gives the front an OS user or a
# password of its own (docs/db-roles.md): only then can it not take the owner's role back.
FRONT="$OWNER&options=-crole%3D$ROLE"
as_front() { pg_psql "$FRONT" "$1"; }

expect_exit 6 "the owner's own connection as the front role: refused" -- g db front-role --front-db "$OWNER"
expect_err "role of its own"
OTHER=$(pg_createdb other)
expect_exit 3 "another database: refused" -- g db front-role --front-db "$OTHER&options=-crole%3D$ROLE"
expect_err "the CA's is"
expect_exit 2 "db front-role without --front-db" -- g db front-role
expect_exit 0 "db front-role --help" -- g db front-role --help
expect_exit 0 "the front role is granted" -- g db front-role --front-db "$FRONT"
check "gmca.json names it" test "$(jq -r .front_database "$D/gmca.json")" = "$FRONT"
check "the database records it" test "$(db_sql "$D" "SELECT value FROM meta WHERE key = 'store.front_role'")" = "$ROLE"
check "audited: db.front_role, and the two refusals" test \
  "$(db_sql "$D" "SELECT string_agg(success::text, ',' ORDER BY seq) FROM audit WHERE event = 'db.front_role'")" = "0,0,1"

# ---- the RA, operators, a sync receiver; the front on the restricted role ----
expect_exit 0 "RA certificate" -- ra_cert "$D"
for op in "opA business_operator" "adminB business_admin" "adminC business_admin" "auditD audit_admin" \
  "superS super_admin" "opZ business_operator"; do
  expect_exit 0 "operator ${op% *}" -- add_operator "$D" $op
done
expect_exit 0 "deactivate: serve starts the engine" -- g deactivate
umask 077
echo "sync-pass-$$" >"$T/sync.pass"
umask 022
openssl genpkey -algorithm SM2 2>/dev/null |
  openssl pkcs8 -topk8 -v2 aes-256-cbc -passout "file:$T/sync.pass" -out "$T/sync.key"
openssl req -new -key "$T/sync.key" -passin "file:$T/sync.pass" -sm3 -sigopt distid:1234567812345678 \
  -utf8 -subj "/C=CN/O=测试电子政务认证中心/CN=证书同步服务" -out "$T/sync.csr"
expect_exit 0 "the sync certificate" -- g cert issue --profile sync --csr "$T/sync.csr" --out "$T/sync.pem" "${CUST[@]}"
python3 "$RECV" --dir "$T/r1" --port-file "$T/r1.port" &
RPID=$!
for _ in $(seq 100); do [ -s "$T/r1.port" ] && break; sleep 0.05; done
# The front opens its stores with front_database: a role that does not exist stops it.
SYNC=(--sync-key "$T/sync.key" --sync-pass-file "$T/sync.pass" --sync-cert "$T/sync.pem")
cp "$D/gmca.json" "$T/gmca.json.good"
jq --arg u "$OWNER&options=-crole%3Dnobody_$$" '.front_database = $u' "$T/gmca.json.good" >"$D/gmca.json"
start_front "$D" "${SYNC[@]}" --sync "r1=http://127.0.0.1:1/sync"
check "a front_database role that does not exist: the front does not start" test -z "$URL"
check "it says why" grep -q "nobody_$$" "$T/serve.err"
stop_serve
cp "$T/gmca.json.good" "$D/gmca.json"
start_front "$D" --sync-key "$T/sync.key" --sync-pass-file "$T/sync.pass" --sync-cert "$T/sync.pem" \
  --sync "r1=http://127.0.0.1:$(cat "$T/r1.port")/sync" --ocsp-ca-signed sub
check "serve is up" test -n "$URL"
j() { jq -r "$1" "$T/out"; }
sub_of() { api adminB GET "/api/v1/applications/$1" | jq -r .submission; }

expect_exit 0 "A records an individual" -- api opA POST /api/v1/applicants \
  --data '{"kind":"individual","name":"张三","id_type":"resident_id","id_number":"11010519491231002X","contact":"zs@example.cn"}'
P=$(j .id)
sm2_csr p1 "/C=CN/CN=张三"
expect_exit 0 "A applies" -- api opA POST /api/v1/applications --data "$(jq -nc --argjson a "$P" --rawfile csr "$T/p1.csr" \
  '{applicant: $a, profile: "personal-sign", csr: $csr, subject_info: {identity_card_number: "11010519491231002X"}, materials: ["申请表"]}')"
APP=$(j .id)
expect_exit 0 "B vets" -- api adminB POST "/api/v1/applications/$APP/vet" --data "$(jq -nc --arg s "$(sub_of "$APP")" \
  '{method: "in_person", documents: ["居民身份证原件"], result: "pass", submission: $s}')"
expect_exit 0 "C approves: the engine issues" -- api adminC POST "/api/v1/applications/$APP/approve" \
  --data "$(jq -nc --arg s "$(sub_of "$APP")" '{reason: "材料齐全", submission: $s}')"
check "issued" test "$(j .state)" = issued
S1=$(j .serial)
j .certificate >"$T/s1.pem"
check "the certificate verifies under the operational CA" \
  openssl verify -vfyopt distid:1234567812345678 -partial_chain -CAfile "$T/sub.pem" "$T/s1.pem"

expect_exit 0 "A asks for revocation" -- api opA POST /api/v1/revocations \
  --data "{\"serial\":\"$S1\",\"reason\":\"H\",\"requester\":\"subscriber\"}"
R1=$(j .id)
expect_exit 0 "B completes it" -- api adminB POST "/api/v1/revocations/$R1/complete"
check "completed" test "$(j .state)" = completed
expect_exit 0 "the certificate reads revoked" -- api adminB GET "/api/v1/certificates/$S1"
check "revoked" test "$(j .status)" = revoked

openssl ocsp -issuer "$T/sub.pem" -cert "$T/s1.pem" -reqout "$T/req.der" >/dev/null 2>&1
curl -s -o "$T/resp.der" -H 'Content-Type: application/ocsp-request' --data-binary "@$T/req.der" "$URL/ocsp"
check "OCSP (signed by the engine from its records): revoked" bash -c \
  "openssl ocsp -respin '$T/resp.der' -noverify -resp_text 2>/dev/null | grep -q 'Cert Status: revoked'"

expect_exit 0 "B asks for a CRL" -- api adminB POST /api/v1/crl/sub
curl -s -o "$T/sub.crl" "$URL/crl/sub.crl"
check "the CRL lists the revoked certificate" bash -c \
  "openssl crl -inform DER -in '$T/sub.crl' -noout -text | grep -q 'Serial Number: $S1'"

check "search: the certificate is found" bash -c \
  "curl -sf '$URL/certs?status=revoked' | jq -e --arg s '$S1' '[.results[] | select(.serial == \$s)] | length == 1' >/dev/null"
expect_exit 0 "statistics (audit admin)" -- api auditD GET /api/v1/stats
check "one issued" bash -c "jq -e '[.. | numbers] | add > 0' '$T/out' >/dev/null"

expect_exit 0 "the super admin disables an operator through the front" -- api superS POST /api/v1/operators/opZ/disable
check "disabled" test "$(j .status)" = disabled
ZSERIAL=$(db_sql "$D" "SELECT cert_serial FROM operators WHERE name = 'opZ'")
check "its certificate revoked by the engine (privilegeWithdrawn)" test \
  "$(db_sql "$D" "SELECT status || ',' || reason FROM certificates WHERE serial = '$ZSERIAL'")" = 1,9
check "the RA revocation carried out by the engine, B's completion on record" test \
  "$(db_sql "$D" "SELECT count(*) FROM audit WHERE event = 'ra.revocation.complete' AND actor = 'adminB' AND success = 1")" = 1

EVENTS=$(db_sql "$D" "SELECT max(id) FROM events")
moved() {
  for _ in $(seq 300); do
    [ "$(db_sql "$D" "SELECT last_event FROM publish_state WHERE channel = 'sync:r1'")" = "$EVENTS" ] && return 0
    sleep 0.1
  done
  return 1
}
check "the sync publisher's cursor reaches the last event" moved
check "no permission error in the front's log" bash -c "! grep -i 'permission denied' '$T/serve.err'"
stop_serve
wait "$SERVE_PID" 2>/dev/null || true
SERVE_PID=

# ---- the front's role, with psql: what only the engine and the ceremonies write ----
denied() { # SQL: refused for lack of rights (a privilege, or meta's row policy)
  local out
  out=$(as_front "$1" 2>&1) && { echo "allowed: $1" >&2; return 1; }
  grep -qiE "permission denied|violates row-level security" <<<"$out" || { echo "$out" >&2; return 1; }
}
check "UPDATE certificates SET status = 0: denied" denied "UPDATE certificates SET status = 0 WHERE serial = '$S1'"
check "nor any other column" denied "UPDATE certificates SET subject = 'x' WHERE serial = '$S1'"
check "nor revoke one: the CA engine revokes (RA revocations included)" denied \
  "UPDATE certificates SET status = 1, revoked_at = 1, reason = 1 WHERE status = 0"
check "no UPDATE right on certificates at all" test \
  "$(as_front "SELECT has_table_privilege('certificates', 'UPDATE')::int + has_any_column_privilege('certificates', 'UPDATE')::int")" = 0
check "INSERT INTO certificates: denied" denied \
  "INSERT INTO certificates SELECT 'AB' || serial, ca_id, subject, profile, not_before, not_after, issued_at, 0, 0, 0, 0, fingerprint, request_id, der FROM certificates WHERE serial = '$S1'"
check "DELETE FROM certificates: denied" denied "DELETE FROM certificates"
check "DELETE FROM audit: denied" denied "DELETE FROM audit"
check "UPDATE audit: denied" denied "UPDATE audit SET actor = 'nobody'"
check "TRUNCATE audit: denied" denied "TRUNCATE audit"
check "INSERT INTO crls: denied (the CA engine makes CRLs)" denied "INSERT INTO crls (ca_id, number, this_update, next_update, entries, der) SELECT ca_id, number + 1000, this_update, next_update, entries, der FROM crls LIMIT 1"
check "DELETE FROM crls: denied" denied "DELETE FROM crls"
check "UPDATE cas: denied" denied "UPDATE cas SET key_state = 'active'"
check "INSERT INTO dual_keys: denied" denied "DELETE FROM dual_keys"
check "UPDATE requests: denied" denied "UPDATE requests SET status = 0"
check "schema_version: denied" denied "INSERT INTO schema_version VALUES (999, 0)"
check "operators: denied" denied "UPDATE operators SET roles = 'super_admin'"
check "operators: no new one" denied "INSERT INTO operators SELECT id + 100, name || 'x', roles, cert_serial || 'x', fingerprint || 'x', status, created_at, created_by, status_time, tag FROM operators LIMIT 1"
check "CREATE TABLE: denied" denied "CREATE TABLE x (a INTEGER)"
ra_meta() { as_front "UPDATE meta SET value = 'FF' WHERE key LIKE 'ra.cert.%'" 2>&1; }
check "meta ra.cert.*: no row the front may change" test "$(db_sql "$D" "SELECT count(*) FROM meta WHERE key LIKE 'ra.cert.%' AND value = 'FF'")" = 0
check "meta: a new key refused" denied "INSERT INTO meta VALUES ('ra.cert.evil', 'FF')"
ra_meta >/dev/null
check "meta ra.cert.* unchanged after the front's UPDATE" test "$(db_sql "$D" "SELECT count(*) FROM meta WHERE key LIKE 'ra.cert.%' AND value = 'FF'")" = 0
check "the front may read certificates" test "$(as_front "SELECT count(*) FROM certificates WHERE serial = '$S1'")" = 1
check "and still reads revoked" test "$(db_sql "$D" "SELECT status FROM certificates WHERE serial = '$S1'")" = 1

# ---- a table added later starts with no rights for the front ----
db_sql "$D" "CREATE TABLE later_table (a INTEGER); GRANT ALL ON later_table TO $ROLE"
expect_exit 0 "the grants applied again (as after a migration)" -- g db front-role --front-db "$FRONT"
check "the unlisted table: denied" denied "INSERT INTO later_table VALUES (1)"

expect_exit 0 "audit verify" -- g audit verify

# ---- gmca init --front-db: the key ceremony grants the role in its own transaction ----
DB2=$(pg_createdb gmca2)
mkdir -p "$T/ca2.shares"
init2() {
  "$GMCA" --dir "$T/ca2" init "${cargs[@]}" --shares-out "$T/ca2.shares" --db "$DB2" \
    --root-dn "C=CN, O=测试电子政务认证中心, CN=根 CA 2" \
    --sub-dn "C=CN, ST=北京市, O=测试电子政务认证中心, OU=运营, CN=运营 CA 2" --front-db "$1"
}
expect_exit 6 "init with the owner's own connection as the front: refused" -- init2 "$DB2"
expect_err "role of its own"
check "nothing left: no CA in the database, no directory" \
  test "$(pg_psql "$DB2" "SELECT count(*) FROM cas")" = 0 -a ! -e "$T/ca2"
expect_exit 0 "init with a front role" -- init2 "$DB2&options=-crole%3D$ROLE"
check "gmca.json names it" test "$(jq -r .front_database "$T/ca2/gmca.json")" = "$DB2&options=-crole%3D$ROLE"
check "the front reads the new CA" test "$(pg_psql "$DB2&options=-crole%3D$ROLE" "SELECT count(*) FROM cas")" = 2
check "and may not change it" bash -c "! pg_psql '$DB2&options=-crole%3D$ROLE' 'UPDATE cas SET subject = subject' 2>/dev/null"
check "the ceremony's audit names the role" test \
  "$(pg_psql "$DB2" "SELECT count(*) FROM audit WHERE event = 'db.front_role' AND success = 1")" = 1
finish
