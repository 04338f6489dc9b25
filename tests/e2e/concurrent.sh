#!/usr/bin/env bash
# Two gmca processes issuing and revoking at once on one state directory:
# every certificate lands once, serials are unique, and the audit chain
# stays intact (SQLite's write lock serialises the transactions).
. "$(dirname "$0")/common.bash"
D=$T/ca
new_ca "$D"
echo '{"identity_card_number": "11010519491231002X"}' > "$T/id.json"
for i in $(seq 1 12); do sm2_csr "c$i" "/C=CN/O=并发测试/CN=用户$i"; done

worker() { # worker FIRST LAST
  for i in $(seq "$1" "$2"); do
    "$GMCA" --dir "$D" cert issue --profile personal-sign \
      --csr "$T/c$i.csr" --info "$T/id.json" --out "$T/c$i.pem" > "$T/s$i" || return 1
    if [ $((i % 3)) -eq 0 ]; then
      "$GMCA" --dir "$D" cert revoke --serial "$(cat "$T/s$i")" --reason superseded >/dev/null || return 1
    fi
  done
}
worker 1 6 & a=$!
worker 7 12 & b=$!
check "first worker" wait $a
check "second worker" wait $b
check "14 certificates (2 CA + 12)" test "$(cert_count "$D")" = 14
check "serials unique" test "$(cat "$T"/s* | sort -u | wc -l)" = 12
expect_exit 0 "4 revoked" -- "$GMCA" --dir "$D" cert list --status revoked --json
check "4 revoked listed" test "$(grep -c '"serial"' "$T/out")" = 4
expect_exit 0 "audit chain intact" -- "$GMCA" --dir "$D" audit verify
check "14 issuances audited (2 at init)" test "$("$GMCA" --dir "$D" audit list --event cert.issue --json | grep -c "\"outcome\": \"success\"")" = 14
finish
