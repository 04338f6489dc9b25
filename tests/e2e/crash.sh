#!/usr/bin/env bash
# Crash safety (issue 9 item 4; CPS §6.7, §6.9): a client streams RA
# issuances (apply -> vet -> approve, three operators) and revocations
# through the real front and CA engine, with some revocations by the
# command beside it, while this script kills the front, the engine or both
# with SIGKILL at random moments (CRASH_KILLS of them, 50 by default; the
# random seed is printed, CRASH_SEED=N replays the same schedule) and
# starts them again. Afterwards it proves what a client may rely on: no
# serial twice (store, the files the client kept), every certificate a
# client was answered with (2xx and a serial) is in the store, is the same
# certificate and verifies (openssl and the independent SM2 verifier), every
# revocation acknowledged is on the next CRL and "revoked" in OCSP, no
# application issued twice, one cert.issue change-feed event per
# certificate, and the audit chain verifies. The same for the KM: `gmca km
# serve` killed during a stream of dual issuances; every encryption
# certificate has its escrowed key, and every escrowed key opens (a key
# recovery through the RA delivers it; the subscriber's token takes it).
. "$(dirname "$0")/common.bash"
D=$T/ca
K=$T/km
g() { "$GMCA" --dir "$D" "$@"; }
VERIFY=$GMCA_SRC/tests/interop/sm2verify.mjs
SEED=${CRASH_SEED:-$(( $(date +%s%N) % 1000000 ))}
KILLS=${CRASH_KILLS:-50}
KM_KILLS=${CRASH_KM_KILLS:-10}
echo "crash: seed $SEED (CRASH_SEED=$SEED to replay the kill schedule), $KILLS kills, $KM_KILLS KM kills"
RANDOM=$SEED
KM_PID=
KM_DIR_UP=
ENGINE_PID=
CLIENT_PID=
# Everything this test started, stopped by process id.
cleanup() {
  [ -z "$CLIENT_PID" ] || kill -TERM "$CLIENT_PID" 2>/dev/null || true
  [ -z "$KM_PID" ] || kill -TERM "$KM_PID" 2>/dev/null || true
  stop_serve
  stop_engines
  [ -z "${CRASH_KEEP:-}" ] || cp -a "$T" "$CRASH_KEEP"
  rm -rf "$T"
}
trap cleanup EXIT

expect_exit 0 "new CA" -- new_ca "$D"
g ca export --ca sub >"$T/sub.pem"
custodians3 "$D"
expect_exit 0 "RA certificate" -- ra_cert "$D"
expect_exit 0 "business operator A" -- add_operator "$D" opA business_operator
expect_exit 0 "business admin B" -- add_operator "$D" adminB business_admin
expect_exit 0 "business admin C" -- add_operator "$D" adminC business_admin
sm2_csr responder "/C=CN/O=测试电子政务认证中心/CN=OCSP 响应者"
expect_exit 0 "OCSP responder certificate" -- g cert issue --profile ocsp --csr "$T/responder.csr" \
  --out "$T/responder.pem"
expect_exit 0 "the engine is started by the front" -- g deactivate
OCSP=(--ocsp-cert "$T/responder.pem" --ocsp-key "$T/responder.key")

# ---- the daemons: started, killed, started again ----
# The front's URL changes with each start (port 0): the client reads it from $T/url.
front_up() {
  start_front "$D" "${OCSP[@]}" --crl-interval-seconds 5
  if [ -z "$URL" ]; then
    [ -z "${CRASH_DEBUG:-}" ] || { echo "front $SERVE_PID did not come up" >&2; sleep 600; }
    kill9 "$SERVE_PID"
    SERVE_PID=
    return 1
  fi
  local p
  p=$(sed -n 's/^gmca: CA engine started (pid \([0-9]*\)).*/\1/p' "$T/serve.err")
  [ -z "$p" ] || ENGINE_PID=$p
  echo "$URL" >"$T/url.new" && mv "$T/url.new" "$T/url"
}
engine_up() {
  local out
  out=$(g activate "${CUST[@]}" 2>&1) || return 1
  ENGINE_PID=$(echo "$out" | sed -n 's/.*CA engine running (pid \([0-9]*\)).*/\1/p')
}
# The engine's socket answers (after a kill it may be a stale file).
engine_alive() { [ -n "$ENGINE_PID" ] && kill -0 "$ENGINE_PID" 2>/dev/null; }
kill9() { [ -z "$1" ] || { kill -KILL "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }; }

# ---- the client: one issuance or revocation after another, each step retried ----
# What a client was told (2xx with a serial) goes to $T/told ("APP SERIAL") and
# $T/issued/SERIAL.pem; acknowledged revocations to $T/revoked ("SERIAL how").
mkdir -p "$T/issued"
: >"$T/told"
: >"$T/revoked"
capi() { # WHO METHOD TARGET [options]: a signed request to the front of the moment
  local who=$1; shift
  timeout 30 "$GMCA" api --url "$(cat "$T/url")" --key "$T/$who.key" --cert "$T/$who.pem" "$@" 2>/dev/null
}
ID=11010519491231002X
INFO="{\"identity_card_number\":\"$ID\"}"
told() { # APP FILE: the answer in FILE names an issued certificate
  local s
  s=$(jq -r '.serial // .issued_serial // empty' "$2")
  [ -n "$s" ] || return 1
  echo "$1 $s" >>"$T/told"
  jq -r '.certificate // empty' "$2" >"$T/issued/$s.pem.$1"
  return 0
}
# step APP FILE: one move of the application towards issued; 0 once issued (and told).
step() {
  local app=$1 f=$2 st sub
  capi adminB GET "/api/v1/applications/$app" >"$f" || return 1
  st=$(jq -r .state "$f")
  sub=$(jq -r .submission "$f")
  case $st in
  issued)
    # The GET of the application names the serial; the certificate comes with it.
    capi adminB GET "/api/v1/certificates/$(jq -r .issued_serial "$f")" >"$f.c" || return 1
    jq --arg a "$(jq -r .issued_serial "$f")" '{serial: $a, certificate: .certificate}' "$f.c" >"$f"
    told "$app" "$f"
    return 0
    ;;
  submitted)
    capi adminB POST "/api/v1/applications/$app/vet" --data "$(jq -nc --arg s "$sub" \
      '{method: "in_person", documents: ["居民身份证原件"], result: "pass", submission: $s}')" >/dev/null
    ;;
  vetted)
    capi adminC POST "/api/v1/applications/$app/approve" \
      --data "$(jq -nc --arg s "$sub" '{reason: "材料齐全", submission: $s}')" >"$f" &&
      [ "$(jq -r .state "$f")" = issued ] && told "$app" "$f" && return 0
    ;;
  approved)
    capi adminC POST "/api/v1/applications/$app/issue" >"$f" && [ "$(jq -r .state "$f")" = issued ] &&
      told "$app" "$f" && return 0
    ;;
  *) echo "client: application $app in state $st" >&2 ;;
  esac
  return 1
}
issue_one() { # N PROFILE KEYGEN: apply with a fresh key, then drive it to issued
  local n=$1 f=$T/c$1.json app= i
  "$3" "$n" || return 1
  jq -nc --argjson a "$P" --arg p "$2" --rawfile csr "$T/u$n.csr" --argjson info "$INFO" \
    '{applicant: $a, profile: $p, csr: $csr, subject_info: $info, materials: ["申请表"]}' >"$T/body$n"
  for i in $(seq 50); do
    if capi opA POST /api/v1/applications --data "@$T/body$n" >"$f"; then
      app=$(jq -r .id "$f")
      break
    fi
    sleep 0.2
  done
  [ -n "$app" ] || return 1
  for i in $(seq 100); do
    step "$app" "$f" && return 0
    sleep 0.1
  done
  echo "client: application $app not issued" >&2
  return 1
}
revoke_api() { # SERIAL: keyCompromise by the CA (completed at once)
  local f=$T/rv.json i
  for i in $(seq 50); do
    if capi adminB POST /api/v1/revocations \
      --data "{\"serial\":\"$1\",\"reason\":\"E\",\"requester\":\"ca\"}" >"$f"; then
      [ "$(jq -r .state "$f")" = completed ] && echo "$1 api" >>"$T/revoked"
      return 0
    fi
    # Done by an attempt whose answer was lost: revoked, but nobody was told.
    capi adminB GET "/api/v1/certificates/$1" >"$f" && [ "$(jq -r .status "$f")" = revoked ] && return 0
    sleep 0.2
  done
  return 1
}
revoke_cli() { g cert revoke --serial "$1" --reason superseded >/dev/null 2>&1 && echo "$1 cli" >>"$T/revoked"; }
keygen_openssl() { sm2_csr "u$1" "/C=CN/O=崩溃测试/CN=用户$1" 2>/dev/null; }
# client PROFILE KEYGEN SEED: until $T/stop appears
client() {
  RANDOM=$3
  local n=0 s
  while [ ! -e "$T/stop" ]; do
    n=$((n + 1))
    issue_one "$n" "$1" "$2" || continue
    s=$(tail -n 1 "$T/told" | cut -d' ' -f2)
    case $((RANDOM % 3)) in
    0) revoke_api "$s" ;;
    1) [ "$2" != keygen_openssl ] || revoke_cli "$s" ;;
    esac
  done
}

# killer VICTIMS N MS: N kills, each after a random MS..2*MS+200 ms, of a victim chosen
# from VICTIMS (f front, e engine, b both, k KM).
killer() {
  local victims=$1 n=$2 i v d
  for i in $(seq "$n"); do
    d=$(($3 + RANDOM % ($3 + 200)))
    v=${victims:$((RANDOM % ${#victims})):1}
    sleep "$((d / 1000)).$(printf %03d $((d % 1000)))"
    case $v in
    f) kill9 "$SERVE_PID"; SERVE_PID= ;;
    e) kill9 "$ENGINE_PID"; ENGINE_PID= ;;
    b) kill9 "$ENGINE_PID"; kill9 "$SERVE_PID"; SERVE_PID= ENGINE_PID= ;;
    k) kill9 "$KM_PID"; KM_PID= ;;
    esac
    echo "kill $i: $v after ${d} ms" >>"$T/kills"
    restart || { bad "restart after kill $i ($v): $(tail -n 3 "$T/serve.err" "$T/km.err" 2>/dev/null)"; return 1; }
  done
}
restart() {
  local i
  for i in $(seq 20); do
    if [ -n "$KM_DIR_UP" ] && { [ -z "$KM_PID" ] || ! kill -0 "$KM_PID" 2>/dev/null; }; then start_km || { sleep 0.2; continue; }; fi
    if [ -z "$SERVE_PID" ]; then front_up || { sleep 0.2; continue; }; fi
    engine_alive || engine_up || { sleep 0.2; continue; }
    return 0
  done
  return 1
}

check "the front is up (and starts the engine)" front_up
capi opA POST /api/v1/applicants --data \
  "{\"kind\":\"individual\",\"name\":\"张三\",\"id_type\":\"resident_id\",\"id_number\":\"$ID\"}" >"$T/out"
P=$(jq -r .id "$T/out")
check "an applicant" test -n "$P"

# ================= the CA: front and engine killed =================
t0=$(date +%s)
client personal-sign keygen_openssl $((SEED + 1)) >"$T/client1.log" 2>&1 &
CLIENT_PID=$!
killer fbe "$KILLS" 200
touch "$T/stop"
wait "$CLIENT_PID" || true
CLIENT_PID=
rm -f "$T/stop"
check "$KILLS kills done" test "$(wc -l <"$T/kills")" = "$KILLS"
echo "crash: $(wc -l <"$T/told") issuances told, $(wc -l <"$T/revoked") revocations acknowledged," \
  "$(wc -l <"$T/kills") kills in $(($(date +%s) - t0)) s"
# (one issuance told per five kills: 10 for the default 50)
check "the client got work done between the kills" test "$(wc -l <"$T/told")" -ge $((KILLS / 5))
grep -v "^$" "$T/client1.log" | head -n 5 >&2 || true

# ---- after: the front and engine up, a CRL generated, OCSP asked ----
check "up again" restart
expect_exit 0 "a CRL now" -- g crl generate
g cert list --json >"$T/certs.json"
check "no serial twice in the store" test "$(jq '[.[].serial] | length' "$T/certs.json")" = \
  "$(jq '[.[].serial] | unique | length' "$T/certs.json")"
check "no serial told for two applications" test "$(cut -d' ' -f2 "$T/told" | sort -u | wc -l)" = \
  "$(sort -u "$T/told" | wc -l)"
check "no application told two serials" test "$(cut -d' ' -f1 "$T/told" | sort -u | wc -l)" = \
  "$(sort -u "$T/told" | wc -l)"
# Every certificate a client holds: in the store, the same bytes, verifying.
same_as_store() { # SERIAL: every copy the client kept is the store's
  local f
  g cert export --serial "$1" >"$T/store.pem" 2>/dev/null || return 1
  for f in "$T/issued/$1.pem".*; do
    cmp -s <(openssl x509 -in "$T/store.pem" -outform DER) <(openssl x509 -in "$f" -outform DER) || return 1
  done
}
missing=0 differ=0
while read -r s; do
  jq -e --arg s "$s" 'any(.[]; .serial == $s)' "$T/certs.json" >/dev/null || missing=$((missing + 1))
  same_as_store "$s" || differ=$((differ + 1))
done < <(cut -d' ' -f2 "$T/told" | sort -u)
check "every certificate told is in the store ($missing missing)" test "$missing" = 0
check "and is the certificate the client got ($differ differ)" test "$differ" = 0
mapfile -t PEMS < <(ls "$T"/issued/*.pem.* | sort -t. -k2,2 -u)
check "openssl verifies every certificate told" bash -c \
  "openssl verify -vfyopt distid:1234567812345678 -partial_chain -CAfile '$T/sub.pem' ${PEMS[*]} >/dev/null"
nv=0
for f in "${PEMS[@]}"; do node "$VERIFY" cert "$f" "$T/sub.pem" >/dev/null 2>&1 || nv=$((nv + 1)); done
check "the independent SM2 verifier too ($nv fail)" test "$nv" = 0
# One issuance per application, one application per issued certificate.
db_sql "$D" "SELECT issued_serial FROM applications WHERE issued_serial IS NOT NULL" | sort >"$T/app_serials"
check "no application issued twice (audit)" bash -c "[ -z \"\$(g() { '$GMCA' --dir '$D' \"\$@\"; }; g audit list \
  --event ra.application.issue --json | jq -r '.[] | select(.outcome == \"success\") | .object' | sort | uniq -d)\" ]"
check "each issued serial belongs to one application" test "$(uniq -d "$T/app_serials" | wc -l)" = 0
check "every personal-sign certificate came from an application" test \
  "$(jq '[.[] | select(.profile == "personal-sign")] | length' "$T/certs.json")" = "$(wc -l <"$T/app_serials")"
check "every application the client saw issued is recorded issued" bash -c \
  "cut -d' ' -f2 '$T/told' | sort -u | comm -23 - '$T/app_serials' | grep -q . && exit 1 || exit 0"
# The change feed: exactly one cert.issue per certificate.
feed() { db_sql "$D" "$1"; }
check "one cert.issue event per certificate" test \
  "$(feed "SELECT count(*) FROM events WHERE kind = 'cert.issue'"),$(feed "SELECT count(DISTINCT serial) FROM events WHERE kind = 'cert.issue'")" = \
  "$(jq length "$T/certs.json"),$(jq length "$T/certs.json")"
check "... and for every certificate of the store" test "$(feed "SELECT count(*) FROM certificates c WHERE \
  (SELECT count(*) FROM events e WHERE e.kind = 'cert.issue' AND e.serial = c.serial) <> 1")" = 0
check "one cert.revoke event per revoked certificate" test \
  "$(feed "SELECT count(*) FROM events WHERE kind = 'cert.revoke'")" = "$(jq '[.[] | select(.status == "revoked")] | length' "$T/certs.json")"
# Every acknowledged revocation: on the CRL just made, revoked in OCSP.
openssl crl -inform DER -in "$D/crl/sub.crl" -noout -text >"$T/crl.txt"
ocsp_revoked() { # SERIAL
  openssl ocsp -issuer "$T/sub.pem" -serial "0x$1" -no_nonce -reqout "$T/oreq.der" >/dev/null 2>&1 &&
    curl -s -o "$T/oresp.der" -H 'Content-Type: application/ocsp-request' --data-binary "@$T/oreq.der" \
      "$(cat "$T/url")/ocsp" &&
    openssl ocsp -respin "$T/oresp.der" -noverify -resp_text 2>/dev/null | grep -q 'Cert Status: revoked'
}
nocrl=0 noocsp=0
while read -r s _; do
  grep -q "Serial Number: $s\$" "$T/crl.txt" || nocrl=$((nocrl + 1))
  ocsp_revoked "$s" || noocsp=$((noocsp + 1))
done <"$T/revoked"
check "every acknowledged revocation is on the CRL ($nocrl missing)" test "$nocrl" = 0
check "and revoked in OCSP ($noocsp not)" test "$noocsp" = 0
if [ "$KILLS" -ge 50 ]; then # a short run (CRASH_KILLS=10) revokes too few to be sure of both
  check "revocations by the command and the API both acknowledged" bash -c \
    "grep -q ' cli\$' '$T/revoked' && grep -q ' api\$' '$T/revoked'"
else
  check "a revocation acknowledged" test -s "$T/revoked"
fi
check "OCSP says good for a certificate not revoked" bash -c "$(declare -f ocsp_revoked); T='$T'; \
  s=\$(cut -d' ' -f2 '$T/told' | grep -vxFf <(cut -d' ' -f1 '$T/revoked') | head -n 1); [ -n \"\$s\" ] && \
  openssl ocsp -issuer '$T/sub.pem' -serial 0x\$s -no_nonce -reqout '$T/oreq.der' >/dev/null 2>&1 && \
  curl -s -o '$T/oresp.der' --data-binary @'$T/oreq.der' -H 'Content-Type: application/ocsp-request' \"\$(cat '$T/url')/ocsp\" && \
  openssl ocsp -respin '$T/oresp.der' -noverify -resp_text 2>/dev/null | grep -q 'Cert Status: good'"
expect_exit 0 "the audit chain verifies after $KILLS kills" -- g audit verify

# ================= the KM: killed during dual issuances =================
if [ -n "${CRASH_CA_ONLY:-}" ]; then finish; exit; fi
mkdir -p "$K.shares"
km() { local sub=$1; shift; "$GMCA" km "$sub" --km-dir "$K" "$@"; }
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
  for _ in $(seq 100); do
    "$GMCA" km list --km-dir "$K" >/dev/null 2>&1 && [ -S "$K/run/km.sock" ] && return 0
    kill -0 "$KM_PID" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}
KM_DIR_UP=1
check "the KM serves" start_km
# The engine learns of its KM link when it starts: started again.
kill9 "$SERVE_PID"
SERVE_PID=
expect_exit 0 "the engine stopped" -- g deactivate
check "the front and the engine again, linked to the KM" front_up
echo "TokenPin2026" >"$T/tpin"
keygen_token() { # N: the subscriber's token makes the key and the CSR
  "$GMCA" token init --token "$T/tok$1" >/dev/null 2>&1 &&
    "$GMCA" token csr --token "$T/tok$1" --pin-file "$T/tpin" --subject "/C=CN/O=崩溃测试/CN=双证用户$1" \
      --out "$T/u$1.csr" >/dev/null 2>&1
}
mv "$T/told" "$T/told.ca"
mv "$T/revoked" "$T/revoked.ca"
: >"$T/told"
: >"$T/revoked"
rm -f "$T"/c*.json
t0=$(date +%s)
client personal-sign keygen_token $((SEED + 2)) >"$T/client2.log" 2>&1 &
CLIENT_PID=$!
killer kkkkfe "$KM_KILLS" 1500
touch "$T/stop"
wait "$CLIENT_PID" || true
CLIENT_PID=
echo "crash: KM: $(wc -l <"$T/told") dual issuances told, $KM_KILLS kills in $(($(date +%s) - t0)) s"
check "dual issuances between the KM kills" test "$(wc -l <"$T/told")" -ge 3
check "up again" restart

# Every encryption certificate of the CA has its key escrowed at the KM.
db() { db_sql "$D" "$1"; }
db "SELECT enc_serial FROM dual_keys" | sort -u >"$T/enc"
km list >"$T/kmlist.json"
jq -r '.[] | select(.escrowed == 1 or .escrowed == true) | .serial' "$T/kmlist.json" | sort -u >"$T/escrowed"
check "encryption certificates were issued" test -s "$T/enc"
check "no encryption certificate without its escrowed key" test -z "$(comm -23 "$T/enc" "$T/escrowed")"
check "every dual issuance told has its encryption certificate" test "$(cut -d' ' -f2 "$T/told" | sort -u |
  while read -r s; do db "SELECT count(*) FROM dual_keys WHERE sig_serial = '$s'"; done | grep -vc '^1$')" = 0
# Every escrowed key of an issued certificate opens, revoked ones too (§7.3.2): the
# KM gives each back in a judicial recovery to a carrier's token, which takes it.
"$GMCA" token init --token "$T/carrier" >/dev/null
"$GMCA" token csr --token "$T/carrier" --pin-file "$T/tpin" --subject "/C=CN/O=某市公安局/CN=取证介质" \
  --out "$T/carrier.csr" >/dev/null
openssl req -in "$T/carrier.csr" -noout -pubkey >"$T/carrier.pub"
recovered=0 unopened=0
while read -r app s; do
  e=$(db "SELECT enc_serial FROM dual_keys WHERE sig_serial = '$s'")
  : >"$T/rq.json"
  : >"$T/ra.json"
  capi opA POST /api/v1/recoveries --data "$(jq -nc --arg e "$e" --rawfile k "$T/carrier.pub" \
    '{kind: "judicial", encryption_serial: $e, authority: "某市公安局", document: "(2026)某01刑初1号",
      reason: "侦查需要", recipient_public_key: $k}')" >"$T/rq.json" &&
    capi adminC POST "/api/v1/recoveries/$(jq -r .id "$T/rq.json")/approve" \
      --data "$(jq -nc --arg s "$(jq -r .submission "$T/rq.json")" '{submission: $s, reason: "核验无误"}')" >"$T/ra.json" &&
    [ "$(jq -r .state "$T/ra.json")" = delivered ] &&
    capi adminB GET "/api/v1/certificates/$e" | jq -r .certificate >"$T/e.pem" &&
    "$GMCA" token import-cert --token "$T/carrier" "$T/e.pem" >/dev/null 2>&1 &&
    jq -r .enveloped_key "$T/ra.json" | base64 -d >"$T/r.env" &&
    "$GMCA" token import-key --token "$T/carrier" --pin-file "$T/tpin" "$T/r.env" >/dev/null 2>&1 &&
    recovered=$((recovered + 1)) || {
    unopened=$((unopened + 1))
    echo "recovery of $e for $s: $(head -c 300 "$T/rq.json") $(head -c 300 "$T/ra.json")" >&2
  }
done < <(sort -u "$T/told")
check "every escrowed key of a dual issuance opens ($recovered recovered, $unopened not)" \
  test "$unopened,$recovered" = "0,$(sort -u "$T/told" | wc -l)"
kill -TERM "$KM_PID" 2>/dev/null || true
wait "$KM_PID" 2>/dev/null || true
KM_PID=
KM_DIR_UP=
stop_serve
wait "$SERVE_PID" 2>/dev/null || true
SERVE_PID=
stop_engines
expect_exit 0 "the CA's audit chain verifies" -- g audit verify
expect_exit 0 "the KM's audit chain verifies after $KM_KILLS kills" -- "$GMCA" km audit verify --km-dir "$K"
finish
