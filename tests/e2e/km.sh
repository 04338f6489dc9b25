#!/usr/bin/env bash
# The key management centre (issue 6; CPS §3.10, §6.1.1, §7.2.1.4, §7.3.2):
# its own ceremony with 5 custodians, certificates from the CA (profiles km
# and km-comm), trust installed by 3 custodians, the daemon opened by 3,
# requests from a stand-in CA engine (gmca km test-request) answered with
# envelopes that open with the subscriber's signature key and hold keys
# found nowhere in clear in the KM's database; refusals (wrong custodians,
# unknown CA, replay, stale time) audited; destroy only past retention;
# a SIGKILL mid-stream leaves only whole keys.
. "$(dirname "$0")/common.bash"
CA=$T/ca
KM=$T/km
SOCK=$KM/run/km.sock
g() { "$GMCA" --dir "$CA" "$@"; }
km() {
  local sub=$1; shift
  if [ "$sub" = audit ]; then sub="audit $1"; shift; fi
  # shellcheck disable=SC2086 # "audit verify" is two words
  "$GMCA" km $sub --km-dir "$KM" "$@"
}
kmshares() { local a=() i; for i in "$@"; do a+=(--share "$KM.shares/share-$i.json" --pin-file "$T/pin$i"); done; KS=("${a[@]}"); }
KM_PID=
stop_km() { [ -z "$KM_PID" ] || kill -TERM "$KM_PID" 2>/dev/null || true; }
trap 'stop_km; stop_serve; stop_engines; rm -rf "$T"' EXIT
# start_km i j k: the daemon with KM custodians i j k, once it answers (over a
# stale socket left by a killed KM, a probe: revoking an unknown serial, exit 4).
start_km() {
  local stale=0 rc
  [ -S "$SOCK" ] && stale=1
  kmshares "$@"
  "$GMCA" km serve --km-dir "$KM" "${KS[@]}" 2>"$T/km.log" &
  KM_PID=$!
  for _ in $(seq 1 600); do
    kill -0 "$KM_PID" 2>/dev/null || { cat "$T/km.log" >&2; return 1; }
    if [ -S "$SOCK" ]; then
      [ "$stale" = 0 ] && return 0
      rc=0
      req --kind revoke --serial FFFF >/dev/null 2>&1 || rc=$?
      [ "$rc" = 4 ] && return 0
    fi
    sleep 0.1
  done
  return 1
}
req() { km test-request --socket "$SOCK" --key "$T/comm.key" --cert "$T/comm.pem" --km-cert "$T/km.pem" "$@"; }

# ---- the CA, the KM ceremony, the certificates ----
expect_exit 0 "new CA" -- new_ca "$CA"
g ca export --ca sub > "$T/sub.pem"
make_pins
mkdir -p "$KM.shares"
mapfile -t cargs < <(custodian_args)
expect_exit 0 "km init" -- km init --subject "/C=CN/O=测试电子政务认证中心/CN=密钥管理中心" "${cargs[@]}" \
  --shares-out "$KM.shares" --csr-out "$T/km.csr"
check "five KM shares" test "$(ls "$KM.shares" | wc -l)" = 5
check "KM key encrypted" grep -q "ENCRYPTED PRIVATE KEY" "$KM/keys/km.key"
check "KM key file 0600" test "$(stat -c %a "$KM/keys/km.key")" = 600
expect_exit 6 "second init refused" -- km init --subject "/C=CN/CN=x" "${cargs[@]}" \
  --shares-out "$T/other.shares" --csr-out "$T/km2.csr"
kmshares 1 2 3
expect_exit 6 "serve before trust refused" -- km serve "${KS[@]}"
expect_err "gmca km trust"

expect_exit 0 "CA certifies the KM" -- g cert issue --profile km --csr "$T/km.csr" --out "$T/km.pem"
sm2_csr comm "/C=CN/O=测试电子政务认证中心/CN=CA KM 通信"
expect_exit 0 "CA KM-communication certificate" -- g cert issue --profile km-comm --csr "$T/comm.csr" --out "$T/comm.pem"
# An impostor: a self-signed certificate with the same subject.
openssl req -x509 -new -key "$T/comm.key" -sm3 -sigopt distid:1234567812345678 -utf8 -days 30 \
  -subj "/C=CN/O=测试电子政务认证中心/CN=CA KM 通信" -out "$T/selfcomm.pem" 2>/dev/null
sm2_csr evil "/C=CN/O=冒充/CN=CA KM 通信"
openssl req -x509 -new -key "$T/evil.key" -sm3 -sigopt distid:1234567812345678 -utf8 -days 30 \
  -subj "/C=CN/O=冒充/CN=CA KM 通信" -out "$T/evil.pem" 2>/dev/null

# ---- trust: the KM's custodians, certificates that chain to the CA ----
custodians3 "$CA"
expect_exit 5 "trust with the CA's custodians refused" -- km trust --km-cert "$T/km.pem" --ca-cert "$T/sub.pem" \
  --ca-comm-cert "$T/comm.pem" "${CUST[@]}"
kmshares 1 2 3
expect_exit 3 "trust of a comm cert not from the CA refused" -- km trust --km-cert "$T/km.pem" \
  --ca-cert "$T/sub.pem" --ca-comm-cert "$T/selfcomm.pem" "${KS[@]}"
expect_exit 7 "trust of a KM cert for another key refused" -- km trust --km-cert "$T/comm.pem" \
  --ca-cert "$T/sub.pem" --ca-comm-cert "$T/comm.pem" "${KS[@]}"
kmshares 1 4 5
expect_exit 0 "trust" -- km trust --km-cert "$T/km.pem" --ca-cert "$T/sub.pem" --ca-comm-cert "$T/comm.pem" "${KS[@]}"

# ---- serve: 3 of the KM's custodians ----
kmshares 1 2
expect_exit 5 "serve with 2 custodians refused" -- km serve "${KS[@]}"
expect_exit 5 "serve with the CA's custodians refused" -- km serve "${CUST[@]}"
check "KM serving" start_km 2 3 4
check "socket 0600" test "$(stat -c %a "$SOCK")" = 600
check "run dir 0700" test "$(stat -c %a "$KM/run")" = 700

sm2_csr sub1 "/C=CN/CN=订户一"
sm2_csr sub2 "/C=CN/CN=订户一 新签名密钥"
expect_exit 0 "apply" -- req --kind apply --serial 0A11 --sig-key "$T/sub1.key" --check-db "$KM/km.db"
check "envelope opens with the signature key" test "$(jq -r '.items[0].opened' "$T/out")" = true
check "both forms" test "$(jq -r '.items[0].blob_opened' "$T/out")" = true
check "the key is nowhere in clear in km.db" test "$(jq -r '.items[0].key_in_db' "$T/out")" = false
expect_exit 6 "apply twice refused" -- req --kind apply --serial 0A11 --sig-key "$T/sub1.key"
check "errno exists" test "$(jq -r '.items[0].errno' "$T/out")" = 4
expect_exit 0 "restore to the new signature key" -- req --kind restore --serial 0A11 --sig-key "$T/sub2.key" --check-db "$KM/km.db"
check "restored envelope opens" test "$(jq -r '.items[0].pub_matches' "$T/out")" = true
expect_exit 4 "restore of an unknown serial" -- req --kind restore --serial 0B99 --sig-key "$T/sub1.key"
expect_exit 0 "revoke" -- req --kind revoke --serial 0A11
expect_exit 0 "revoke again (idempotent)" -- req --kind revoke --serial 0A11
expect_exit 0 "a revoked key is still restorable (§7.3.2)" -- req --kind restore --serial 0A11 --sig-key "$T/sub1.key"

# ---- refusals: no answer, audited ----
expect_exit 1 "impostor CA (same name, self-signed)" -- req --kind apply --serial 0C01 --sig-key "$T/sub1.key" \
  --cert "$T/selfcomm.pem"
expect_exit 1 "unknown CA key" -- km test-request --socket "$SOCK" --key "$T/evil.key" --cert "$T/evil.pem" \
  --km-cert "$T/km.pem" --kind apply --serial 0C02 --sig-key "$T/sub1.key"
expect_exit 0 "task 77" -- req --kind apply --serial 0C03 --sig-key "$T/sub1.key" --task 77
expect_exit 1 "task 77 replayed" -- req --kind apply --serial 0C04 --sig-key "$T/sub1.key" --task 77
expect_exit 1 "stale request time" -- req --kind apply --serial 0C05 --sig-key "$T/sub1.key" --time-offset -900
expect_exit 0 "list" -- km list
check "refused serials never escrowed" test "$(jq '[.[] | select(.serial | test("^0C0[1245]$"))] | length' "$T/out")" = 0
check "list has no secret field" bash -c "! grep -qiE 'priv|enc_' '$T/out'"
check "0A11 revoked" test "$(jq -r '.[] | select(.serial=="0A11") | .state' "$T/out")" = revoked
check "retention notAfter + 10 years" test "$(jq -r '.[] | select(.serial=="0C03") | .retain_until[0:4]' "$T/out")" = \
  "$(( $(jq -r '.[] | select(.serial=="0C03") | .not_after[0:4]' "$T/out") + 10 ))"
expect_exit 0 "list revoked" -- km list --state revoked
check "one revoked" test "$(jq length "$T/out")" = 1
expect_exit 3 "list --state bogus" -- km list --state bogus

# ---- destroy: 3 custodians, only past retention ----
kmshares 3 4 5
expect_exit 6 "destroy before retention refused" -- km destroy --serial 0A11 "${KS[@]}"
expect_err "§7.2.1.4"
kmshares 1 2
expect_exit 5 "destroy with 2 custodians refused" -- km destroy --serial 0A11 "${KS[@]}"
kmshares 3 4 5
# No clock but the system's: a date in the environment does not shorten §7.2.1.4.
expect_exit 6 "destroy with GMCA_TEST_KM_NOW far ahead still refused" -- env GMCA_TEST_KM_NOW=2060-01-01 \
  "$GMCA" km destroy --km-dir "$KM" --serial 0A11 "${KS[@]}"
expect_err "§7.2.1.4"
# Its retention date reached (moved into the past in the KM's records):
db_sql "$KM" "UPDATE km_keys SET retain_until = 1000 WHERE serial = '0A11'" >/dev/null
expect_exit 0 "destroy past retention" -- km destroy --serial 0A11 "${KS[@]}"
expect_exit 6 "restore of a destroyed key" -- req --kind restore --serial 0A11 --sig-key "$T/sub1.key"
check "errno state" test "$(jq -r '.items[0].errno' "$T/out")" = 3
expect_exit 0 "list" -- km list --state destroyed
check "destroyed: no ciphertext kept" test "$(jq -r '.[0].escrowed' "$T/out")" = false

# ---- SIGKILL mid-stream: every key listed afterwards is whole ----
(for i in $(seq 10 60); do req --kind apply --serial "$(printf 'D%03d' "$i")" --sig-key "$T/sub1.key" >/dev/null 2>&1 || true; done) &
LOOP=$!
sleep 1.5
kill -KILL "$KM_PID"
wait "$KM_PID" 2>/dev/null || true
KM_PID=
wait "$LOOP" 2>/dev/null || true
check "KM restarts over a stale socket" start_km 1 3 5
expect_exit 0 "list after the kill" -- km list --state active
N=0
for s in $(jq -r '.[] | select(.serial | startswith("D")) | .serial' "$T/out"); do
  N=$((N + 1))
  expect_exit 0 "key $s opens after the kill" -- req --kind restore --serial "$s" --sig-key "$T/sub2.key" --check-db "$KM/km.db"
done
check "some keys were escrowed before the kill" test "$N" -gt 0

# ---- stop, audit ----
kill -TERM "$KM_PID"
check "SIGTERM stops the KM" wait "$KM_PID"
KM_PID=
check "socket removed" test ! -e "$SOCK"
expect_exit 0 "KM audit chain" -- km audit verify
km expire >/dev/null
refusals() { db_sql "$KM" "SELECT COUNT(*) FROM audit WHERE event='$1' AND success=0"; }
check "request refusals on the KM chain" test "$(refusals km.request)" -ge 4
check "activation refusals on the KM chain" test "$(refusals km.activate)" -ge 3
check "trust refusals on the KM chain" test "$(refusals km.trust)" -ge 3
check "destroy refusal on the KM chain" test "$(refusals km.destroy)" -ge 1
finish
