#!/usr/bin/env bash
# Several fronts on one PostgreSQL database (issue 9 item 1): the CA state
# directory copied to a second "machine" (its own CA engine and `gmca serve`
# front, the same database in gmca.json), both fronts taking applications
# through vetting, approval and issuance and revoking at once, and the CLI
# issuing and revoking beside them. Only the database serialises them (its
# transaction advisory lock, store_pg.c): no serial twice, every issuance
# and revocation on the one audit chain, which verifies.
#
# Runs on the cluster of GMCA_TEST_PG when given (make test), else on a
# throwaway cluster of its own.
. "$(dirname "$0")/common.bash"
source "$GMCA_SRC/tests/pg.bash"
if [ -z "${GMCA_TEST_PG:-}" ]; then
  export GMCA_TEST_PG=$T/pg.state
  pg_start "$GMCA_TEST_PG" || { echo "FAIL: cannot start PostgreSQL" >&2; exit 1; }
fi
D=$T/ca
D2=$T/ca2
P1="" P2=""
stop_fronts() {
  local p
  for p in $P1 $P2; do kill -TERM "$p" 2>/dev/null || true; done
  for p in $P1 $P2; do wait "$p" 2>/dev/null || true; done
}
cleanup() {
  stop_fronts; stop_engines
  [ "$GMCA_TEST_PG" != "$T/pg.state" ] || pg_stop "$GMCA_TEST_PG"
  rm -rf "$T"
}
trap cleanup EXIT

expect_exit 0 "a CA on PostgreSQL" -- init_ca "$D" --root-dn "C=CN, O=测试电子政务认证中心, CN=测试根 CA" \
  --sub-dn "C=CN, O=测试电子政务认证中心, CN=测试运营 CA"
DB=$(jq -r .database "$D/gmca.json")
check "gmca.json names the database" bash -c "case '$DB' in postgresql://*) true ;; *) false ;; esac"
check "no SQLite file beside it" test ! -e "$D/gmca.db"
mapfile -t cargs < <(custodian_args)
mkdir -p "$T/other.shares"
expect_exit 6 "a second CA is refused on the same database" -- "$GMCA" --dir "$T/other" init \
  "${cargs[@]}" --shares-out "$T/other.shares" --db "$DB" --root-dn "C=CN, O=另一个, CN=x" --sub-dn "C=CN, O=另一个, CN=y"
expect_err "already holds a CA"
check "and leaves no share behind" test -z "$(ls "$T/other.shares")"
expect_exit 3 "a password in the URI is refused" -- "$GMCA" --dir "$T/pw" init "${cargs[@]}" \
  --shares-out "$T/other.shares" --db "postgresql://u:secret@/x" --root-dn "C=CN, CN=x" --sub-dn "C=CN, CN=y"
expect_err "no password"

# The second machine: the same state directory (keys sealed as on the first), no run/.
cp -a "$D" "$D2" && rm -rf "${D2:?}/run" && mkdir -m 700 "$D2/run" && cp -a "$D.shares" "$D2.shares"
expect_exit 0 "engine 1" -- activate "$D"
expect_exit 0 "engine 2 (the copy)" -- activate "$D2"
custodians3 "$D"
expect_exit 0 "RA certificate" -- ra_cert "$D"
expect_exit 0 "business operator A" -- add_operator "$D" opA business_operator
expect_exit 0 "business admin B" -- add_operator "$D" adminB business_admin
expect_exit 0 "business admin C" -- add_operator "$D" adminC business_admin

start_front "$D"; P1=$SERVE_PID; URL1=$URL
start_front "$D2"; P2=$SERVE_PID; URL2=$URL
SERVE_PID=
check "front 1 is up" test -n "$URL1"
check "front 2 is up" test -n "$URL2"
check "two fronts" test "$URL1" != "$URL2"

ID=11010519491231002X
URL=$URL1
expect_exit 0 "A records the applicant" -- api opA POST /api/v1/applicants \
  --data "{\"kind\":\"individual\",\"name\":\"张三\",\"id_type\":\"resident_id\",\"id_number\":\"$ID\"}"
APPLICANT=$(jq -r .id "$T/out")
INFO="{\"identity_card_number\":\"$ID\"}"

N=6 # certificates per front and by the CLI
for w in 1 2 3; do for i in $(seq 1 $N); do sm2_csr "w$w-$i" "/C=CN/O=并发测试/CN=用户$w-$i"; done; done

# front URL W: apply, vet, approve (issues), revoke every second; serials to $T/serials.W.
front_worker() {
  local url=$1 w=$2 i app sub serial out=$T/w$2.out
  at() { local who=$1; shift; "$GMCA" api --url "$url" --key "$T/$who.key" --cert "$T/$who.pem" "$@"; }
  for i in $(seq 1 $N); do
    at opA POST /api/v1/applications --data "$(jq -nc --argjson a "$APPLICANT" \
      --rawfile csr "$T/w$w-$i.csr" --argjson info "$INFO" \
      '{applicant: $a, profile: "personal-sign", csr: $csr, subject_info: $info, days: 30}')" >"$out" || return 1
    app=$(jq -r .id "$out")
    sub=$(at adminB GET "/api/v1/applications/$app" | jq -r .submission) || return 1
    at adminB POST "/api/v1/applications/$app/vet" --data "$(jq -nc --arg s "$sub" \
      '{method: "in_person", documents: ["居民身份证原件"], result: "pass", submission: $s}')" >/dev/null || return 1
    sub=$(at adminB GET "/api/v1/applications/$app" | jq -r .submission) || return 1
    at adminC POST "/api/v1/applications/$app/approve" --data "$(jq -nc --arg s "$sub" \
      '{reason: "材料齐全", submission: $s}')" >"$out" || return 1
    [ "$(jq -r .state "$out")" = issued ] || { echo "front $w: $(cat "$out")" >&2; return 1; }
    serial=$(jq -r .serial "$out")
    echo "$serial" >>"$T/serials.$w"
    if [ $((i % 2)) -eq 0 ]; then
      at adminB POST /api/v1/revocations --data "{\"serial\":\"$serial\",\"reason\":\"E\",\"requester\":\"ca\"}" >"$out" || return 1
      [ "$(jq -r .state "$out")" = completed ] || return 1
      echo "$serial" >>"$T/revoked.$w"
    fi
  done
}
cli_worker() {
  local i
  for i in $(seq 1 $N); do
    "$GMCA" --dir "$D" cert issue --profile personal-sign --csr "$T/w3-$i.csr" --info <(echo "$INFO") \
      --out "$T/w3-$i.pem" >>"$T/serials.3" || return 1
    if [ $((i % 2)) -eq 0 ]; then
      "$GMCA" --dir "$D2" cert revoke --serial "$(tail -n 1 "$T/serials.3")" --reason superseded >/dev/null || return 1
      tail -n 1 "$T/serials.3" >>"$T/revoked.3"
    fi
  done
}
issued_audited() { "$GMCA" --dir "$D" audit list --event cert.issue --json | grep -c '"outcome": "success"'; }
N0=$(cert_count "$D")
A0=$(issued_audited)
front_worker "$URL1" 1 2>"$T/w1.err" & a=$!
front_worker "$URL2" 2 2>"$T/w2.err" & b=$!
cli_worker 2>"$T/w3.err" & c=$!
check "front 1 worker ($(head -c 300 "$T/w1.err" 2>/dev/null))" wait $a
check "front 2 worker" wait $b
check "CLI worker" wait $c
[ ! -s "$T/w2.err" ] || echo "front 2: $(head -c 300 "$T/w2.err")" >&2
[ ! -s "$T/w3.err" ] || echo "CLI: $(head -c 300 "$T/w3.err")" >&2

TOTAL=$((3 * N))
check "every issuance returned a serial" test "$(cat "$T"/serials.* | grep -c .)" = "$TOTAL"
check "no serial twice" test "$(cat "$T"/serials.* | sort -u | grep -c .)" = "$TOTAL"
check "every certificate in the store ($N0 + $TOTAL)" test "$(cert_count "$D")" = $((N0 + TOTAL))
check "the copy reads the same store" test "$(cert_count "$D2")" = $((N0 + TOTAL))
check "each returned serial is there" bash -c "for s in \$(cat '$T'/serials.*); do '$GMCA' --dir '$D2' cert show --serial \$s >/dev/null || exit 1; done"
expect_exit 0 "revoked list" -- "$GMCA" --dir "$D" cert list --status revoked --json
check "every acknowledged revocation is there" test "$(grep -c '"serial"' "$T/out")" = "$(cat "$T"/revoked.* | grep -c .)"
expect_exit 0 "audit chain intact (engine 1's view)" -- "$GMCA" --dir "$D" audit verify
expect_exit 0 "audit chain intact (engine 2's view)" -- "$GMCA" --dir "$D2" audit verify
check "every issuance audited once" test "$(issued_audited)" = $((A0 + TOTAL))
check "every revocation audited once" test \
  "$("$GMCA" --dir "$D" audit list --event cert.revoke --json | grep -c '"outcome": "success"')" = "$(cat "$T"/revoked.* | grep -c .)"
check "audit sequence numbers dense (no gap, no twin)" test \
  "$(pg_psql "$DB" 'SELECT COUNT(*) = MAX(seq) AND COUNT(DISTINCT seq) = COUNT(*) FROM audit')" = t
finish
