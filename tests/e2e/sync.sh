#!/usr/bin/env bash
# The signed certificate and CRL sync push to downstream e-government
# systems (issue 7 item 3, CPS §4.6.1, §4.6.2): the custodians issue the
# CA's sync certificate (profile sync, key encrypted on disk); gmca serve
# pushes every event of the change feed to two receivers (sync_receiver.py):
# one that answers 503 to every third request and is down for a while
# midway, one that refuses everything with 400. Issuance, renewal and
# revocation through the RA, issuance and revocation through the CLI, and
# a CRL all reach the first receiver, in order, each body a GM/T 0010
# SignedData that `gmca sync verify` accepts under the root (and whose
# signature the independent sm-crypto verifier accepts), none lost, repeats
# with the same event_id, with the right business type, and no identity
# number in any payload; the refused events are skipped and audited. The
# verify command refuses a tampered body, a wrong anchor and a signer that
# is not a sync certificate.
. "$(dirname "$0")/common.bash"
D=$T/ca
g() { "$GMCA" --dir "$D" "$@"; }
RECV=$GMCA_SRC/tests/e2e/sync_receiver.py
GMT0010=$GMCA_SRC/tests/interop/gmt0010.mjs
RPIDS=()
trap 'stop_serve; for p in "${RPIDS[@]}"; do kill "$p" 2>/dev/null || true; done; stop_engines; rm -rf "$T"' EXIT

# receiver NAME [options]: sync_receiver.py on $T/NAME, its port in $T/NAME.port.
receiver() {
  local n=$1; shift
  rm -f "$T/$n.port"
  python3 "$RECV" --dir "$T/$n" --port-file "$T/$n.port" "$@" &
  RPIDS+=($!)
  eval "PID_$n=$!"
  for _ in $(seq 100); do [ -s "$T/$n.port" ] && return 0; sleep 0.05; done
  return 1
}
events() { db_sql "$D" 'SELECT COUNT(*) FROM events'; }
# Distinct event ids kept by receiver r1.
kept() { [ -f "$T/r1/index" ] && cut -d' ' -f2 "$T/r1/index" | sort -un | wc -l || echo 0; }
# wait_all: until r1 holds every event of the feed (at most 90 s).
wait_all() {
  for _ in $(seq 900); do [ "$(kept)" -ge "$(events)" ] && return 0; sleep 0.1; done
  return 1
}

expect_exit 0 "new CA" -- new_ca "$D"
g ca export --ca root >"$T/root.pem"
g ca export --ca sub >"$T/sub.pem"
custodians3 "$D"
expect_exit 0 "RA certificate" -- ra_cert "$D"
for op in "opA business_operator" "adminB business_admin" "adminC business_admin"; do
  expect_exit 0 "operator ${op% *}" -- add_operator "$D" $op
done

# ---- the sync certificate: the custodians issue it; its key stays encrypted ----
expect_exit 0 "the engine again, without direct issuance" -- g deactivate
expect_exit 0 "activated by the custodians" -- g activate "${CUST[@]}"
umask 077
echo "sync-key-passphrase-$$" >"$T/sync.pass"
umask 022
openssl genpkey -algorithm SM2 2>/dev/null |
  openssl pkcs8 -topk8 -v2 aes-256-cbc -passout "file:$T/sync.pass" -out "$T/sync.key"
check "the sync key is encrypted on disk" grep -q 'ENCRYPTED PRIVATE KEY' "$T/sync.key"
openssl req -new -key "$T/sync.key" -passin "file:$T/sync.pass" -sm3 -sigopt distid:1234567812345678 \
  -utf8 -subj "/C=CN/O=测试电子政务认证中心/OU=信息服务/CN=证书同步服务" -out "$T/sync.csr"
expect_exit 6 "the sync profile needs the custodians" -- g cert issue --profile sync --csr "$T/sync.csr" --out "$T/x.pem"
expect_exit 0 "the custodians issue the sync certificate" -- \
  g cert issue --profile sync --csr "$T/sync.csr" --out "$T/sync.pem" "${CUST[@]}"
check "digitalSignature and nonRepudiation, no extKeyUsage" bash -c \
  "openssl x509 -in '$T/sync.pem' -noout -ext keyUsage,extendedKeyUsage 2>/dev/null | tr -d '\n' | grep -q 'Digital Signature, Non Repudiation\$'"

# ---- the receivers and the front ----
check "receiver r1 (503 on every third request)" receiver r1 --fail-every 3
check "receiver bad (400 always)" receiver bad --answer 400
P1=$(cat "$T/r1.port")
SYNC=(--sync-key "$T/sync.key" --sync-pass-file "$T/sync.pass" --sync-cert "$T/sync.pem")
expect_exit 2 "--sync without the key" -- g serve --ra ra1 --ra-key "$T/ra.key" --ra-cert "$T/ra.pem" --sync "r1=http://127.0.0.1:$P1/"
expect_exit 3 "--sync with a bad URL" -- g serve --ra ra1 --ra-key "$T/ra.key" --ra-cert "$T/ra.pem" "${SYNC[@]}" --sync "r1=ftp://x/"
expect_exit 6 "--sync-cert that is not a sync certificate" -- g serve --ra ra1 --ra-key "$T/ra.key" --ra-cert "$T/ra.pem" \
  --sync-key "$T/ra.key" --sync-cert "$T/ra.pem" --sync "r1=http://127.0.0.1:$P1/"
start_front "$D" "${SYNC[@]}" --sync "r1=http://127.0.0.1:$P1/sync" --sync "bad=http://127.0.0.1:$(cat "$T/bad.port")/"
check "serve is up with two receivers" test -n "$URL"

j() { jq -r "$1" "$T/out"; }
sub_of() { api adminB GET "/api/v1/applications/$1" | jq -r .submission; }
vet_approve() {
  api adminB POST "/api/v1/applications/$1/vet" --data "$(jq -nc --arg s "$(sub_of "$1")" \
    '{method: "in_person", documents: ["居民身份证原件"], result: "pass", submission: $s}')" >/dev/null &&
    api adminC POST "/api/v1/applications/$1/approve" \
      --data "$(jq -nc --arg s "$(sub_of "$1")" '{reason: "材料齐全", submission: $s}')" >"$T/out" &&
    test "$(j .state)" = issued
}

# ---- through the RA: new, renew, revoke ----
ID=11010519491231002X
expect_exit 0 "an individual" -- api opA POST /api/v1/applicants \
  --data "{\"kind\":\"individual\",\"name\":\"张三\",\"id_type\":\"resident_id\",\"id_number\":\"$ID\"}"
P=$(j .id)
INFO="{\"identity_card_number\":\"$ID\"}"
sm2_csr p1 "/C=CN/O=某某市大数据局/CN=张三"
expect_exit 0 "applies (30 days)" -- api opA POST /api/v1/applications --data "$(jq -nc --argjson a "$P" \
  --rawfile csr "$T/p1.csr" --argjson info "$INFO" '{applicant: $a, profile: "personal-sign", csr: $csr, subject_info: $info, days: 30}')"
check "new: issued" vet_approve "$(j .id)"
S1=$(j .serial)
openssl req -new -key "$T/p1.key" -sm3 -sigopt distid:1234567812345678 -utf8 -subj "/C=CN/O=某某市大数据局/CN=张三" -out "$T/p1r.csr"
expect_exit 0 "renewal" -- api opA POST "/api/v1/certificates/$S1/renew" \
  --data "$(jq -nc --rawfile csr "$T/p1r.csr" --argjson info "$INFO" '{csr: $csr, subject_info: $info}')"
check "renew: issued" vet_approve "$(j .id)"
S2=$(j .serial)
expect_exit 0 "revocation request" -- api opA POST /api/v1/revocations \
  --data "{\"serial\":\"$S2\",\"reason\":\"H\",\"requester\":\"subscriber\"}"
expect_exit 0 "revocation completed" -- api adminB POST "/api/v1/revocations/$(j .id)/complete"

# ---- the receiver goes down for a while; the CLI issues and revokes meanwhile ----
kill "$PID_r1"
wait "$PID_r1" 2>/dev/null || true
sm2_csr d1 "/C=CN/O=某某市大数据局/CN=api.example.gov.cn"
expect_exit 0 "CLI issue while the receiver is down" -- \
  g cert issue --profile device-ssl --csr "$T/d1.csr" --out "$T/d1.pem" "${CUST[@]}"
S3=$(cat "$T/out")
expect_exit 0 "CLI revoke" -- g cert revoke --serial "$S3" --reason superseded
expect_exit 0 "a CRL" -- g crl generate --ca sub
sleep 3
check "receiver r1 back on its port" receiver r1 --port "$P1" --fail-every 3
check "every event arrives (503s and the outage included)" wait_all

# ---- what arrived ----
N=$(events)
check "as many distinct events as the feed holds ($N)" test "$(kept)" = "$N"
check "the feed's ids, each at least once" \
  diff <(cut -d' ' -f2 "$T/r1/index" | sort -un) <(db_sql "$D" 'SELECT id FROM events ORDER BY id')
check "in order (a repeat only right after itself)" bash -c "cut -d' ' -f2 '$T/r1/index' | sort -c -n"
check "some requests were answered 503" test "$(cat "$T/r1/count")" -gt "$(wc -l <"$T/r1/index")"
mkdir -p "$T/pl"
verified=0 idmismatch=0
while read -r name ev; do
  if "$GMCA" sync verify --in "$T/r1/$name.der" --anchor "$T/root.pem" --chain "$T/sub.pem" --json \
    >"$T/pl/$name.json" 2>"$T/err"; then
    verified=$((verified + 1))
    [ "$(jq -r .event_id "$T/pl/$name.json")" = "$ev" ] || idmismatch=$((idmismatch + 1))
    jq -c .payload "$T/pl/$name.json" >"$T/pl/$name.p"
  else
    bad "sync verify $name: $(cat "$T/err")"
  fi
done <"$T/r1/index"
check "every body verifies under the root" test "$verified" = "$(wc -l <"$T/r1/index")"
check "the event_id inside is the one announced" test "$idmismatch" = 0
cat "$T"/pl/*.p >"$T/all.jsonl"
# type SERIAL KIND: the business types of SERIAL's KIND events.
btype() { jq -r --arg s "$1" --arg k "$2" 'select(.type == $k and .certificate.serial == $s) | .business_type' "$T/all.jsonl" | sort -u; }
check "S1 issued: new" test "$(btype "$S1" cert.issue)" = new
check "S2 issued: renew" test "$(btype "$S2" cert.issue)" = renew
check "S2 revoked: revoke" test "$(btype "$S2" cert.revoke)" = revoke
check "S3 issued: cli" test "$(btype "$S3" cert.issue)" = cli
check "S3 revoked: cli" test "$(btype "$S3" cert.revoke)" = cli
# has JQ-CONDITION [jq args]: some payload satisfies it.
has() { local c=$1; shift; jq -s -e "$@" "any(.[]; $c)" "$T/all.jsonl" >/dev/null; }
check "the sync certificate's own issuance arrived too" has '.certificate.profile == "sync"'
check "S2's revocation: time and reason" has '.type == "cert.revoke" and .certificate.serial == $s and
  .certificate.status == "revoked" and .certificate.reason == "unspecified" and (.certificate.revoked_at | test("Z$"))' --arg s "$S2"
check "subscriber info: kind, organisation-less, the DN" has '.type == "cert.issue" and .certificate.serial == $s and
  .subscriber.kind == "individual" and .subscriber.organisation == null and
  ([.subscriber.subject[] | keys[0]] == ["C", "O", "CN"]) and .subscriber.subject[2].CN == "张三"' --arg s "$S1"
check "CA identifier" has '.certificate.serial == $s and .ca.name == "sub" and (.ca.subject | contains("运营 CA"))' --arg s "$S1"
jq -r --arg s "$S1" 'select(.type == "cert.issue" and .certificate.serial == $s) | .certificate.pem' "$T/all.jsonl" >"$T/s1.pem"
check "the certificate PEM is the issued one" test "$(openssl x509 -in "$T/s1.pem" -noout -serial | cut -d= -f2)" = "$S1"
# The CRL: complete and delta, each with its DER.
jq -r 'select(.type == "crl.issue" and .crl.delta_base == null) | .crl.der_base64' "$T/all.jsonl" | tail -n 1 | base64 -d >"$T/crl.der"
check "a complete CRL arrived, and parses" openssl crl -inform DER -in "$T/crl.der" -noout
check "it lists S3" bash -c "openssl crl -inform DER -in '$T/crl.der' -noout -text | tr -d ' :' | grep -qi '$S3'"
check "its number and times" has '.type == "crl.issue" and .crl.number > 0 and .crl.next_update > .crl.this_update'
check "no identity number in any payload" bash -c "! grep -q '$ID' '$T/all.jsonl' && ! grep -aq '$ID' $T/r1/*.der"

# ---- the independent verifier (sm-crypto) on one body's signature ----
F=$(head -n 1 "$T/r1/index" | cut -d' ' -f1)
"$GMCA" sync verify --in "$T/r1/$F.der" --anchor "$T/root.pem" --chain "$T/sub.pem" >"$T/content.nl"
head -c -1 "$T/content.nl" >"$T/content"
if [ -d "$GMCA_SRC/tests/interop/node_modules/sm-crypto" ] && command -v node >/dev/null; then
  check "sm-crypto verifies the SignedData" node "$GMT0010" signed "$T/r1/$F.der" "$T/sync.pem" "$T/content"
else
  echo "SKIP: sm-crypto not installed (tests/interop)"
fi

# ---- the receiver that refuses: skipped, audited ----
check "bad refused every event" test "$(cut -d' ' -f1 "$T/bad/refused" | sort -un | wc -l)" = "$N"
check "each refusal on the audit chain (publish.skip)" test \
  "$(g audit list --json | jq '[.. | objects | select(.event? == "publish.skip") | select((.detail // "") | tostring | contains("sync:bad"))] | length')" -ge "$N"
expect_exit 0 "the audit chain verifies" -- g audit verify

# ---- gmca sync verify refuses ----
B=$T/r1/$F.der
python3 - "$B" "$T/tampered.der" <<'EOF'
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
i = b.find(b'"event_id"')
b[i + 1] ^= 0x20  # "Event_id": the signed content changed
open(sys.argv[2], 'wb').write(b)
EOF
expect_exit 3 "a tampered body" -- g sync verify --in "$T/tampered.der" --anchor "$T/root.pem" --chain "$T/sub.pem"
expect_err "sync"
openssl req -x509 -newkey sm2 -nodes -keyout "$T/other.key" -sm3 -sigopt distid:1234567812345678 \
  -subj "/C=CN/O=其他/CN=其他根" -days 30 -out "$T/other.pem" 2>/dev/null
expect_exit 3 "another root as anchor" -- g sync verify --in "$B" --anchor "$T/other.pem" --chain "$T/sub.pem"
expect_exit 3 "no path without the operational CA" -- g sync verify --in "$B" --anchor "$T/root.pem"
jq -c .payload "$T/pl/$F.json" | head -c -1 >"$T/payload.json"
expect_exit 0 "the RA key signs a payload" -- g app sign --cert "$T/ra.pem" --key "$T/ra.key" --in "$T/payload.json" --out "$T/ra-signed.der"
expect_exit 6 "a signer that is not a sync certificate" -- g sync verify --in "$T/ra-signed.der" --anchor "$T/root.pem" --chain "$T/sub.pem"
expect_err "keyUsage"
expect_exit 2 "sync verify needs --anchor" -- g sync verify --in "$B"

finish
