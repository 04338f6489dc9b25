#!/usr/bin/env bash
# Restore drill (issue 9 items 2 and 3; CPS §6.9.1, §6.7.3): a CA with
# certificates, revocations, CRLs and RA applications; a full backup, more
# activity, an incremental, more again; the chain restored onto an empty
# directory must equal the original at the incremental's point — every
# certificate, revocation, CRL (bytes), RA record and audit record — and the
# restored CA activates with the custodians, issues and serves. Tampered
# archives, a wrong key, a missing base and a non-empty target are refused.
. "$(dirname "$0")/common.bash"
D=$T/ca
R=$T/restored
g() { "$GMCA" --dir "$D" "$@"; }
j() { jq -r "$1" "$T/out"; }

expect_exit 0 "new CA" -- new_ca "$D"
custodians3 "$D"

# ---- the backup certificate: a key the custodians keep offline ----
echo "BackupKeyPass2024" >"$T/bk.pass"
openssl genpkey -algorithm SM2 -aes-256-cbc -pass "file:$T/bk.pass" -out "$T/bk.key" 2>/dev/null
openssl req -new -key "$T/bk.key" -passin "file:$T/bk.pass" -sm3 -sigopt distid:1234567812345678 \
  -utf8 -subj "/C=CN/O=测试电子政务认证中心/CN=备份密钥" -out "$T/bk.csr"
expect_exit 6 "create without a backup certificate: refused" -- g backup create --out "$T/none.gbk"
expect_err "backup_cert"
check "no archive left" test ! -e "$T/none.gbk"
expect_exit 0 "issue the backup certificate" -- g cert issue --profile backup --csr "$T/bk.csr" \
  --out "$T/bk.pem"
sm2_csr sig "/C=CN/O=测试电子政务认证中心/CN=签名"
g cert issue --profile ocsp --csr "$T/sig.csr" --out "$T/notenc.pem" >/dev/null 2>&1
expect_exit 6 "a signature certificate is no backup certificate" -- g backup setup --cert "$T/notenc.pem"
expect_err "keyEncipherment"
mkdir -p "$T/offsite"
expect_exit 0 "setup" -- g backup setup --cert "$T/bk.pem" --copy-to "$T/offsite/"
check "gmca.json names it" grep -q '"backup_cert": "certs/backup.pem"' "$D/gmca.json"
# A second key, not the backup key.
openssl genpkey -algorithm SM2 -out "$T/other.key" 2>/dev/null

# ---- activity: certificates, revocations, CRLs, RA applicants and applications ----
issue() { # NAME: a personal-sign certificate; its serial in $T/NAME.serial
  sm2_csr "$1" "/C=CN/O=测试/CN=$1" &&
    echo '{"identity_card_number": "11010519491231002X"}' >"$T/$1.json" &&
    g cert issue --profile personal-sign --csr "$T/$1.csr" --info "$T/$1.json" \
      --out "$T/$1.pem" >"$T/$1.serial"
}
for n in a1 a2 a3 a4; do check "issue $n" issue $n; done
check "revoke a2" g cert revoke --serial "$(cat "$T/a2.serial")" --reason keyCompromise
check "CRL 1" g crl generate
expect_exit 0 "RA certificate" -- ra_cert "$D"
expect_exit 0 "operator" -- add_operator "$D" opA business_operator
start_front "$D"
check "front up" test -n "$URL"
expect_exit 0 "an applicant" -- api opA POST /api/v1/applicants \
  --data '{"kind":"individual","name":"张三","id_type":"resident_id","id_number":"11010519491231002X","contact":"zs@example.cn"}'
P=$(j .id)
sm2_csr ap1 "/C=CN/O=测试/CN=张三"
body=$(jq -nc --argjson a "$P" --rawfile csr "$T/ap1.csr" \
  '{applicant: $a, profile: "personal-sign", csr: $csr, subject_info: {identity_card_number: "11010519491231002X"}, materials: ["申请表"]}')
expect_exit 0 "an application" -- api opA POST /api/v1/applications --data "$body"
APP=$(j .id)
stop_serve
sleep 0.3

expect_exit 0 "full backup" -- g backup create --out "$T/full.gbk"
FULL_ID=$(j .id)
check "full: kind and sequence" test "$(j .kind)/$(j .seq)" = "full/1"
check "archive is 0600" test "$(stat -c %a "$T/full.gbk")" = 600
check "off-site copy made" cmp "$T/full.gbk" "$T/offsite/full.gbk"
check "archive id is its SM3" test "$FULL_ID" = "$(openssl dgst -sm3 -r "$T/full.gbk" | cut -d' ' -f1)"
check "no plaintext in the archive" bash -c "! grep -qa 'BEGIN CERTIFICATE\|SQLite format' '$T/full.gbk'"
check "backup.create audited" bash -c "g() { \"$GMCA\" --dir '$D' \"\$@\"; }; g audit list --event backup.create --json | grep -q '$FULL_ID'"

# ---- more activity, then an incremental ----
for n in b1 b2; do check "issue $n" issue $n; done
check "revoke a1 (a row of the full backup changes)" g cert revoke --serial "$(cat "$T/a1.serial")" --reason superseded
check "CRL 2" g crl generate
# What the incremental must bring back (taken just before it).
# (through db_sql: the store is SQLite or, on PostgreSQL runs, a database there)
dump() { # DIR OUT: every table that holds the CA's history, rows in order
  local t
  for t in cas certificates crls requests reissues applicants applications revocation_requests \
    operators notifications events dual_keys; do
    echo "== $t"
    db_sql "$1" "SELECT * FROM $t ORDER BY 1, 2" 2>/dev/null | od -c || true
  done >"$2"
  # The metadata but the audit chain's head (the restore record moves it).
  db_sql "$1" "SELECT * FROM meta WHERE key NOT LIKE 'audit.head%' ORDER BY key" >>"$2"
  db_sql "$1" "SELECT seq, time, event, actor, success, object, coalesce(detail, 'NULL'), $(db_hex prev), $(db_hex hash) FROM audit ORDER BY seq" >"$2.audit"
}
dump "$D" "$T/orig"
cp -r "$D/crl" "$T/orig.crl"
expect_exit 0 "incremental backup" -- g backup create --incremental --out "$T/inc1.gbk"
INC_ID=$(j .id)
check "incremental: base and sequence" test "$(j .base)/$(j .seq)" = "$FULL_ID/2"
check "incremental carries few blocks" test "$(j .blocks_changed)" -ge 1
check "off-site copy of the incremental" cmp "$T/inc1.gbk" "$T/offsite/inc1.gbk"
check "incremental is smaller" test "$(stat -c %s "$T/inc1.gbk")" -lt "$(stat -c %s "$T/full.gbk")"

# ---- activity after the incremental: not in the restore ----
check "issue c1" issue c1
check "revoke a3" g cert revoke --serial "$(cat "$T/a3.serial")" --reason affiliationChanged
check "CRL 3" g crl generate

# ---- verify ----
expect_exit 0 "verify full" -- g backup verify --in "$T/full.gbk" --key "$T/bk.key" --pass-file "$T/bk.pass"
check "verify names the id" test "$(j .id)" = "$FULL_ID"
expect_exit 0 "verify incremental against its base" -- g backup verify --in "$T/inc1.gbk" \
  --key "$T/bk.key" --pass-file "$T/bk.pass" --base "$FULL_ID"
expect_exit 6 "verify incremental against another base" -- g backup verify --in "$T/inc1.gbk" \
  --key "$T/bk.key" --pass-file "$T/bk.pass" --base "$INC_ID"
expect_err "builds on"
expect_exit 5 "verify with another key" -- g backup verify --in "$T/full.gbk" --key "$T/other.key"
expect_err "sealed to backup key"
expect_exit 5 "verify with a wrong passphrase" -- g backup verify --in "$T/full.gbk" --key "$T/bk.key" --pass-file "$T/pin1"
check "verify audited" bash -c "\"$GMCA\" --dir '$D' audit list --event backup.verify --json | grep -q failure"

# Tampering: one flipped byte in the ciphertext, in the header, a cut tail.
tamper() { # IN OUT OFFSET
  cp "$1" "$2" && python3 -c "import sys; p=sys.argv[1]; o=int(sys.argv[2]); b=bytearray(open(p,'rb').read()); b[o]^=0x5a; open(p,'wb').write(bytes(b))" "$2" "$3"
}
SIZE=$(stat -c %s "$T/full.gbk")
tamper "$T/full.gbk" "$T/t1.gbk" $((SIZE / 2))
expect_exit 7 "a changed byte in the body" -- g backup verify --in "$T/t1.gbk" --key "$T/bk.key" --pass-file "$T/bk.pass"
expect_err "SM4-GCM"
tamper "$T/full.gbk" "$T/t2.gbk" 20
expect_exit 7 "a changed byte in the header" -- g backup verify --in "$T/t2.gbk" --key "$T/bk.key" --pass-file "$T/bk.pass"
head -c $((SIZE - 5)) "$T/full.gbk" >"$T/t3.gbk"
expect_exit 7 "a cut archive" -- g backup verify --in "$T/t3.gbk" --key "$T/bk.key" --pass-file "$T/bk.pass"

# ---- restore: refusals ----
rst() { g backup restore --key "$T/bk.key" --pass-file "$T/bk.pass" "$@"; }
expect_exit 6 "an incremental without its full backup" -- rst --in "$T/inc1.gbk" --to "$T/r1"
expect_err "chain starts"
check "nothing left" test ! -e "$T/r1"
check "issue d1 for a second chain" issue d1
expect_exit 0 "a second incremental" -- g backup create --incremental --out "$T/inc2.gbk"
expect_exit 6 "a missing base in the chain" -- rst --in "$T/full.gbk" --in "$T/inc2.gbk" --to "$T/r2"
expect_err "a base is missing"
check "nothing left after a refused chain" bash -c "test ! -e '$T/r2' && ! ls -d '$T'/r2.restore.* 2>/dev/null"
expect_exit 7 "a tampered archive" -- rst --in "$T/t1.gbk" --to "$T/r3"
check "nothing left after tampering" test ! -e "$T/r3"
expect_exit 5 "the wrong key" -- g backup restore --in "$T/full.gbk" --key "$T/other.key" --to "$T/r4"
mkdir -p "$T/busy" && echo x >"$T/busy/file"
expect_exit 6 "a non-empty directory (the global --dir)" -- "$GMCA" --dir "$T/busy" backup restore \
  --in "$T/full.gbk" --key "$T/bk.key" --pass-file "$T/bk.pass"
expect_err "not empty"

# ---- restore: the full chain up to the incremental ----
mkdir "$R"
mapfile -t dbargs < <(db_opt) # on PostgreSQL runs: into a new, empty database
expect_exit 0 "restore full + incremental" -- rst --in "$T/full.gbk" --in "$T/inc1.gbk" --to "$R/" "${dbargs[@]}"
check "restore reports the incremental" test "$(j .id)" = "$INC_ID"
if [ -n "${GMCA_TEST_PG:-}" ]; then
  check "restored into the PostgreSQL database" bash -c "test \"\$(jq -r .database '$R/gmca.json')\" = '${dbargs[1]}' && test ! -e '$R/gmca.db'"
  expect_exit 6 "a database that is not empty: refused" -- rst --in "$T/full.gbk" --to "$T/r5" \
    --db "$(jq -r .database "$D/gmca.json")"
  expect_err "not empty"
  check "nothing left" test ! -e "$T/r5"
  # A restore that fails after the database was found empty leaves it as it was,
  # so that the operator can run it again. The failures come from the test
  # cluster's superuser: event triggers that change the tables gmca creates.
  ntables() { pg_psql "$1" "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()"; }
  on_create() { # URI NAME TABLE SQL: event trigger NAME runs SQL once TABLE is created
    pg_psql "$1" "CREATE FUNCTION $2() RETURNS event_trigger LANGUAGE plpgsql AS \$\$ BEGIN
      IF EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands() WHERE objid = to_regclass('$3'))
      THEN $4; END IF; END \$\$;
      CREATE EVENT TRIGGER $2 ON ddl_command_end WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION $2()"
  }
  gone() { test ! -e "$T/$1" && ! ls -d "$T/$1".restore.* 2>/dev/null; }
  # 1. In the fill (one transaction): every certificate row breaks a CHECK.
  F1=$(pg_createdb gmca)
  check "a trap for the fill" on_create "$F1" no_certs certificates \
    "ALTER TABLE certificates ADD CONSTRAINT drill CHECK (false) NOT VALID"
  expect_exit 1 "a restore failing in the fill" -- rst --in "$T/full.gbk" --to "$T/f1" --db "$F1"
  expect_err 'relation "certificates" violates check constraint "drill"'
  check "no target, no staging directory" gone f1
  check "the database holds no table again" test "$(ntables "$F1")" = 0
  check "untrap" pg_psql "$F1" "DROP EVENT TRIGGER no_certs"
  expect_exit 0 "the same restore again, into the same database" -- rst --in "$T/full.gbk" \
    --to "$T/f1" --db "$F1"
  check "holds the certificates" test "$(db_sql "$T/f1" "SELECT count(*) FROM certificates")" -ge 4
  # 2. After the fill's commit: the read-back finds rows missing (a trigger
  # silently skips every row of events) and the committed tables are dropped.
  F2=$(pg_createdb gmca)
  check "a trap past the commit" pg_psql "$F2" "CREATE FUNCTION skip_row() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN RETURN NULL; END \$\$"
  check "on events" on_create "$F2" skip_events events \
    "CREATE TRIGGER skip BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION skip_row()"
  expect_exit 7 "a restore failing after its commit" -- rst --in "$T/full.gbk" --to "$T/f2" --db "$F2"
  expect_err "differ from the archive's digests"
  check "no target, no staging directory" gone f2
  check "the database holds no table again" test "$(ntables "$F2")" = 0
  # 3. The clean-up itself refused: the error says what is left to do.
  F3=$(pg_createdb gmca)
  check "a trap for the fill" on_create "$F3" no_certs certificates \
    "ALTER TABLE certificates ADD CONSTRAINT drill CHECK (false) NOT VALID"
  check "no drops" pg_psql "$F3" "CREATE FUNCTION no_drop() RETURNS event_trigger LANGUAGE plpgsql AS \$\$ BEGIN RAISE EXCEPTION 'drill: no drops'; END \$\$;
    CREATE EVENT TRIGGER no_drop ON ddl_command_start WHEN TAG IN ('DROP TABLE') EXECUTE FUNCTION no_drop()"
  expect_exit 1 "a failed restore whose clean-up fails" -- rst --in "$T/full.gbk" --to "$T/f3" --db "$F3"
  expect_err "still holds the partial restore: drop its tables before retrying"
  expect_err "drill: no drops"
  check "no target, no staging directory" gone f3
  check "the tables are still there" test "$(ntables "$F3")" -gt 0
fi
dump "$R" "$T/rest"
check "every certificate, revocation, CRL and RA record equal" diff "$T/orig" "$T/rest"
check "restore recorded last in the restored chain" bash -c "tail -n 1 '$T/rest.audit' | grep -q '|backup.restore|'"
check "every earlier audit record equal" diff "$T/orig.audit" <(head -n -1 "$T/rest.audit")
check "CRL files equal (bytes)" diff -r "$T/orig.crl" "$R/crl"
check "the revocation after the incremental is not there" test "$(db_sql "$R" "SELECT status FROM certificates WHERE serial = '$(cat "$T/a3.serial")'")" = 0
check "the revocation in the incremental is" test "$(db_sql "$R" "SELECT status FROM certificates WHERE serial = '$(cat "$T/a1.serial")'")" = 1
# The same chain onto the SQLite file (from a PostgreSQL CA: a move between the backends).
expect_exit 0 "restore into SQLite" -- rst --in "$T/full.gbk" --in "$T/inc1.gbk" --to "$T/moved" --db sqlite
check "the SQLite copy has no database URI" bash -c "! jq -e .database '$T/moved/gmca.json' >/dev/null"
check "the SQLite copy holds every certificate and status" diff \
  <(sqlite3 "$T/moved/gmca.db" "SELECT serial, status, hex(der) FROM certificates ORDER BY serial") \
  <(db_sql "$R" "SELECT serial, status, $(db_hex der) FROM certificates ORDER BY serial")
expect_exit 0 "the SQLite copy's audit chain verifies" -- "$GMCA" --dir "$T/moved" audit verify
if [ -n "${GMCA_TEST_PG:-}" ]; then # and back: a SQLite CA onto PostgreSQL
  expect_exit 0 "a backup of the SQLite copy" -- "$GMCA" --dir "$T/moved" backup create --out "$T/moved.gbk"
  mapfile -t dbargs2 < <(db_opt)
  expect_exit 0 "restored onto PostgreSQL" -- rst --in "$T/moved.gbk" --to "$T/back" "${dbargs2[@]}"
  check "every certificate and status back on PostgreSQL" diff \
    <(sqlite3 "$T/moved/gmca.db" "SELECT serial, status, hex(der) FROM certificates ORDER BY serial") \
    <(db_sql "$T/back" "SELECT serial, status, hex(der) FROM certificates ORDER BY serial")
  expect_exit 0 "its audit chain verifies" -- "$GMCA" --dir "$T/back" audit verify
fi
check "key store equal" diff -r "$D/keys" "$R/keys"
expect_exit 0 "restored audit chain verifies" -- "$GMCA" --dir "$R" audit verify
# The restored CA activates with the same custodians, issues and serves.
g deactivate >/dev/null 2>&1 || true
mkdir -p "$R.shares" && cp "$D.shares"/share-*.json "$R.shares/"
expect_exit 0 "restored CA activates" -- activate "$R"
sm2_csr e1 "/C=CN/O=测试/CN=e1"
echo '{"identity_card_number": "11010519491231002X"}' >"$T/e1.json"
expect_exit 0 "restored CA issues" -- "$GMCA" --dir "$R" cert issue --profile personal-sign \
  --csr "$T/e1.csr" --info "$T/e1.json" --out "$T/e1.pem"
expect_exit 0 "restored CA makes a CRL" -- "$GMCA" --dir "$R" crl generate
check "its CRL number follows the incremental's" test -f "$R/crl/sub/3.crl"
custodians3 "$R"
start_front "$R"
check "restored CA serves" test -n "$URL"
expect_exit 0 "serves the application recorded before the backup" -- api opA GET "/api/v1/applications/$APP"
check "with its applicant" test "$(j .applicant)" = "$P"
check "serves the CRL of the incremental" bash -c "curl -sf '$URL/crl/sub.crl' -o '$T/served.crl' && test -s '$T/served.crl'"
stop_serve
"$GMCA" --dir "$R" deactivate >/dev/null 2>&1 || true
finish
