#!/usr/bin/env bash
# CA termination (issue 9 item 6; CPS §6.8, §6.11): a CA with certificates,
# revocations, CRLs and RA records is exported with its custodians, signed by
# its key; a successor CA imports it against the old root, keeps it as
# read-only history (the CRLs byte for byte, the tables, the audit chain
# checked record by record) and answers look-ups. Refused: no custodians, the
# engine running, a second import, a wrong anchor, a changed byte, and a
# package whose manifest was recomputed after a change (the signature).
. "$(dirname "$0")/common.bash"
D=$T/old
S=$T/successor
g() { "$GMCA" --dir "$D" "$@"; }
j() { jq -r "$1" "$T/out"; }

expect_exit 0 "old CA" -- new_ca "$D"
custodians3 "$D"
g ca export --ca root >"$T/oldroot.pem"
issue() { # NAME
  sm2_csr "$1" "/C=CN/O=测试/CN=$1" &&
    echo '{"identity_card_number": "11010519491231002X"}' >"$T/$1.json" &&
    g cert issue --profile personal-sign --csr "$T/$1.csr" --info "$T/$1.json" \
      --out "$T/$1.pem" >"$T/$1.serial"
}
for n in c1 c2 c3; do check "issue $n" issue $n; done
check "revoke c2" g cert revoke --serial "$(cat "$T/c2.serial")" --reason cessationOfOperation
check "CRL 1" g crl generate
check "revoke c3" g cert revoke --serial "$(cat "$T/c3.serial")" --reason keyCompromise
check "CRL 2" g crl generate
expect_exit 0 "RA certificate" -- ra_cert "$D"
expect_exit 0 "operator" -- add_operator "$D" opA business_operator
start_front "$D"
check "front up" test -n "$URL"
ID=11010519491231002X
expect_exit 0 "an applicant" -- api opA POST /api/v1/applicants \
  --data "{\"kind\":\"individual\",\"name\":\"张三\",\"id_type\":\"resident_id\",\"id_number\":\"$ID\",\"contact\":\"zs@example.cn\"}"
sm2_csr ap "/C=CN/O=测试/CN=张三"
body=$(jq -nc --argjson a "$(j .id)" --rawfile csr "$T/ap.csr" \
  '{applicant: $a, profile: "personal-sign", csr: $csr, subject_info: {identity_card_number: "11010519491231002X"}, materials: ["申请表"]}')
expect_exit 0 "an application" -- api opA POST /api/v1/applications --data "$body"
stop_serve
sleep 0.3

# ---- export ----
expect_exit 2 "export needs the custodians" -- g export --out "$T/x.gmx"
g activate "${CUST[@]}" >/dev/null 2>&1 || true
expect_exit 6 "export while the CA engine runs: refused" -- g export --out "$T/x.gmx" "${CUST[@]}"
check "no file left" test ! -e "$T/x.gmx"
g deactivate >/dev/null
expect_exit 5 "a wrong PIN" -- g export --out "$T/x.gmx" --share "$D.shares/share-1.json" \
  --pin-file "$T/pin2" --share "$D.shares/share-2.json" --pin-file "$T/pin2" \
  --share "$D.shares/share-3.json" --pin-file "$T/pin3"
AUDIT_BEFORE=$(audit_count "$D")
expect_exit 0 "export" -- g export --out "$T/old.gmx" "${CUST[@]}"
EXP_ID=$(j .id)
check "signed by the operational CA" test "$(j .signer)" = sub
check "every certificate" test "$(j .certificates)" = "$(db_sql "$D" 'SELECT count(*) FROM certificates')"
check "every CRL" test "$(j .crls)" = "$(db_sql "$D" 'SELECT count(*) FROM crls')"
check "the audit chain up to the export" test "$(j .audit_records)" = "$AUDIT_BEFORE"
check "export audited" bash -c "\"$GMCA\" --dir '$D' audit list --event ca.export --json | grep -q '$EXP_ID'"
failures() { "$GMCA" --dir "$1" audit list --event "$2" --json | grep -c '"failure"'; }
check "refusals audited" test "$(failures "$D" ca.export)" -ge 2
check "the file is 0600" test "$(stat -c %a "$T/old.gmx")" = 600
expect_exit 6 "export onto an existing file" -- g export --out "$T/old.gmx" "${CUST[@]}"

# ---- the successor ----
init_ca "$S" --root-dn "C=CN, O=继任电子政务认证中心, CN=继任 SM2 根 CA" \
  --sub-dn "C=CN, O=继任电子政务认证中心, CN=继任 SM2 运营 CA" >/dev/null
s() { "$GMCA" --dir "$S" "$@"; }
s ca export --ca root >"$T/newroot.pem"
expect_exit 3 "import against the wrong anchor" -- s import --in "$T/old.gmx" --anchor "$T/newroot.pem"
expect_err "anchor"
check "nothing kept" bash -c "! ls '$S/history'/* >/dev/null 2>&1"
# One changed byte (in a certificate row): the manifest.
python3 - "$T/old.gmx" "$T/t1.gmx" <<'PY'
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
i = b.index(b'"status":1')
b[i + 9] = ord('0')
open(sys.argv[2], 'wb').write(bytes(b))
PY
expect_exit 7 "a changed byte" -- s import --in "$T/t1.gmx" --anchor "$T/oldroot.pem"
expect_err "manifest"
# The same change with the manifest recomputed: only the signature can tell.
python3 - "$T/old.gmx" "$T/t2.gmx" <<'PY'
import hashlib, struct, sys
b = open(sys.argv[1], 'rb').read()
n = struct.unpack('>I', b[8:12])[0]
off, ents = 12, []
for _ in range(n):
    nl = struct.unpack('>H', b[off:off + 2])[0]; name = b[off + 2:off + 2 + nl].decode()
    ln = struct.unpack('>Q', b[off + 2 + nl:off + 10 + nl])[0]
    ents.append([name, b[off + 10 + nl:off + 10 + nl + ln]]); off += 10 + nl + ln
seal = b[off:]
for e in ents:
    if e[0] == 'tables/certificates.jsonl':
        e[1] = e[1].replace(b'"status":1', b'"status":0', 1)
man = b''.join(b'%s %d %s\n' % (hashlib.new('sm3', d).hexdigest().encode(), len(d), nm.encode())
              for nm, d in ents if nm != 'MANIFEST')
out = bytearray(b[:12])
for nm, d in ents:
    d = man if nm == 'MANIFEST' else d
    out += struct.pack('>H', len(nm)) + nm.encode() + struct.pack('>Q', len(d)) + d
open(sys.argv[2], 'wb').write(bytes(out + seal))
PY
expect_exit 7 "a recomputed manifest" -- s import --in "$T/t2.gmx" --anchor "$T/oldroot.pem"
expect_err "signature"
expect_exit 0 "import" -- s import --in "$T/old.gmx" --anchor "$T/oldroot.pem"
H=$(j .history)
check "import names the export" test "$(j .id)" = "$EXP_ID"
check "history directory" test -f "$H/history.db" -a -f "$H/export.gmx" -a -f "$H/cas/sub.pem"
check "every CRL byte for byte" bash -c "cmp '$H/crl/sub/1.crl' '$D/crl/sub/1.crl' && cmp '$H/crl/sub/2.crl' '$D/crl/sub/2.crl'"
same() { # SQL: the same rows in the old store and the history
  diff <(db_sql "$D" "$1") <(sqlite3 "$H/history.db" "$1")
}
check "certificates and revocations equal" same "SELECT serial, status, revoked_at, reason, hex(der) FROM certificates ORDER BY serial"
check "the applicant's identity number stays sealed" bash -c "! sqlite3 '$H/history.db' 'SELECT * FROM applicants' | grep -q '$ID'"
check "applicants equal (sealed)" same "SELECT id, name, hex(id_sealed) FROM applicants ORDER BY id"
check "applications equal" same "SELECT id, applicant_id, type, state, ca, profile, hex(csr), info_json, \
  materials, submitted_by, submitted_at, hex(submit_auth), vetted_by, vet_result, hex(vet_auth), \
  decided_by, hex(decide_auth), issued_serial FROM applications ORDER BY id"
check "audit records equal" diff <(db_sql "$D" "SELECT seq, event, hex(hash) FROM audit WHERE seq <= $AUDIT_BEFORE ORDER BY seq") \
  <(sqlite3 "$H/history.db" "SELECT seq, event, hex(hash) FROM audit ORDER BY seq")
expect_exit 6 "a second import" -- s import --in "$T/old.gmx" --anchor "$T/oldroot.pem"
expect_err "already"
expect_exit 0 "look-up of a revoked certificate" -- s import --status "$(cat "$T/c3.serial")"
check "revoked in the history" test "$(j .status)" = revoked
expect_exit 0 "look-up of a valid certificate" -- s import --status "$(cat "$T/c1.serial")"
check "valid in the history" test "$(j .status)" = valid
expect_exit 4 "an unknown serial" -- s import --status 0123456789ABCDEF
check "import audited" bash -c "\"$GMCA\" --dir '$S' audit list --event ca.import --json | grep -q '$EXP_ID'"
check "refused imports audited" test "$(failures "$S" ca.import)" -ge 3
expect_exit 0 "successor audit chain verifies" -- s audit verify
expect_exit 0 "old audit chain verifies" -- g audit verify
finish
