#!/usr/bin/env bash
# The LDAP directory (issue 7 items 1 and 2, CPS §3.4.2) against a real
# slapd of our own (slapd.bash): gmca serve --ldap-uri publishes the CA
# certificates and CRLs on cn=<CA CN>,<base> and each subscriber
# certificate on the entry of its subject DN (parents created, RDN values
# escaped), issued through the CLI or through the RA; a revoked certificate
# leaves; a profile with "publish": false (operators, the RA) and an
# application with "publish_directory": false stay out; a reset of the
# channel replays everything with no change. Then the outbox: slapd is
# stopped midway through a batch of 1,000 issuances (some revoked during
# the outage) and restarted; afterwards every one of them is in the
# directory exactly once, the revoked ones absent, with nothing left pending.
. "$(dirname "$0")/common.bash"
. "$(dirname "$0")/slapd.bash"
D=$T/ca
g() { "$GMCA" --dir "$D" "$@"; }
trap 'stop_serve; slapd_stop; stop_engines; rm -rf "$T"' EXIT
ROOT_DN="cn=测试 SM2 根 CA,$LDAP_BASE"
SUB_DN="cn=测试 SM2 运营 CA,$LDAP_BASE"

# until_ok SECONDS COMMAND...: poll every 0.1 s.
until_ok() {
  local n=$(($1 * 10)); shift
  for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  return 1
}
b64der() { openssl "$1" -in "$2" -outform DER | base64 -w0; } # x509|crl FILE
# values DN ATTR: the base64 values of ATTR;binary on entry DN, sorted.
values() { lsearch "$1" -s base "$2;binary" 2>/dev/null | sed -n "s/^$2;binary:: //p" | sort; }
has() { values "$1" "$2" | grep -qxF "$3"; } # DN ATTR B64
hasnt() { ! has "$@"; }
pending() { g publish status --json | jq -r '.[] | select(.channel == "ldap") | .pending'; }
drained() { [ "$(pending)" = 0 ]; }
found() { [ -n "$(lsearch "$LDAP_BASE" "$1" dn)" ]; } # FILTER: some entry matches

slapd_setup
expect_exit 0 "slapd starts" -- slapd_start
expect_exit 0 "new CA" -- new_ca "$D"
custodians3 "$D"
expect_exit 0 "RA certificate" -- ra_cert "$D"
for op in "opA business_operator" "adminB business_admin" "adminC business_admin"; do
  expect_exit 0 "operator ${op% *}" -- add_operator "$D" $op
done
expect_exit 2 "--ldap-uri without --ldap-base" -- g serve --ra ra1 --ra-key "$T/ra.key" \
  --ra-cert "$T/ra.pem" --ldap-uri "$LDAP_URI"
expect_err "--ldap-base"
LDAP_ARGS=(--ldap-uri "$LDAP_URI" --ldap-base "$LDAP_BASE" --ldap-bind-dn "$LDAP_ADMIN"
  --ldap-password-file "$T/ldap.pass")
start_front "$D" "${LDAP_ARGS[@]}"
check "serve is up" test -n "$URL"

# ---- the CAs: certificates and CRLs ----
g ca export --ca root >"$T/root.pem"
g ca export --ca sub >"$T/sub.pem"
check "root CA certificate published" until_ok 10 has "$ROOT_DN" cACertificate "$(b64der x509 "$T/root.pem")"
check "operational CA certificate published" until_ok 10 has "$SUB_DN" cACertificate "$(b64der x509 "$T/sub.pem")"
check "the CA entry's classes" found "(&(cn=测试 SM2 运营 CA)(objectClass=pkiCA)(objectClass=cRLDistributionPoint))"

# ---- a subscriber through the CLI: the entry of its subject DN ----
sm2_csr zs "/C=CN/ST=北京市/O=某市政务服务中心/CN=张三"
echo '{"identity_card_number": "11010519491231002X"}' >"$T/zs.json"
expect_exit 0 "issue personal-sign" -- g cert issue --profile personal-sign --csr "$T/zs.csr" \
  --info "$T/zs.json" --out "$T/zs.pem"
S_ZS=$(cat "$T/out")
ZS_DN="cn=张三,o=某市政务服务中心,st=北京市,c=CN,$LDAP_BASE"
check "subscriber certificate published, DER equal to the store's" \
  until_ok 10 has "$ZS_DN" userCertificate "$(g cert export --serial "$S_ZS" --der | base64 -w0)"
check "same DER as issued" has "$ZS_DN" userCertificate "$(b64der x509 "$T/zs.pem")"
check "parents created" found "(&(objectClass=organization)(o=某市政务服务中心))"
check "no identity number in the directory" test "$(lsearch "$LDAP_BASE" | grep -c 11010519491231002X)" = 0
# A value with characters RFC 4514 escapes.
sm2_csr esc "/C=CN/O=某局\\+分局/CN=王五, 副主任"
expect_exit 0 "issue device-ssl with , and + in the subject" -- g cert issue --profile device-ssl \
  --csr "$T/esc.csr" --out "$T/esc.pem"
check "escaped DN" until_ok 10 has "cn=王五\\, 副主任,o=某局\\+分局,c=CN,$LDAP_BASE" userCertificate \
  "$(b64der x509 "$T/esc.pem")"

# ---- not published: the profile says so (operators, the RA), or the application ----
check "no operator entry (profile operator: publish false)" test -z "$(lsearch "$LDAP_BASE" "(cn=opA)" dn)"
check "no RA entry (profile ra-comm: publish false)" test -z "$(lsearch "$LDAP_BASE" "(cn=RA 系统)" dn)"

# ---- through the RA ----
j() { jq -r "$1" "$T/out"; }
sub_of() { api adminB GET "/api/v1/applications/$1" | jq -r .submission; }
vet_approve() {
  api adminB POST "/api/v1/applications/$1/vet" --data "$(jq -nc --arg s "$(sub_of "$1")" \
    '{method: "in_person", documents: ["营业执照"], result: "pass", submission: $s}')" >/dev/null &&
    api adminC POST "/api/v1/applications/$1/approve" --data "$(jq -nc --arg s "$(sub_of "$1")" \
      '{reason: "材料齐全", submission: $s}')" >"$T/out" && test "$(j .state)" = issued
}
apply() { # NAME PUBLISH(true|false): a device certificate for /C=CN/O=某市大数据局/CN=NAME
  sm2_csr "$1" "/C=CN/O=某市大数据局/CN=$1" &&
    api opA POST /api/v1/applications --data "$(jq -nc --argjson a "$P" --rawfile csr "$T/$1.csr" \
      --argjson pub "$2" '{applicant: $a, profile: "device-ssl", csr: $csr, publish_directory: $pub}')" \
      >"$T/out"
}
expect_exit 0 "an organisation applicant" -- api opA POST /api/v1/applicants --data \
  '{"kind":"organization","name":"某市大数据局","uscc":"91350100M000100Y43","address":"某市某路 1 号","contact":"+86 10 1234 5678"}'
P=$(j .id)
expect_exit 0 "application (published)" -- apply web1 true
expect_exit 0 "vetted and approved" -- vet_approve "$(j .id)"
S_WEB1=$(j .serial)
check "RA-issued certificate published" until_ok 10 has "cn=web1,o=某市大数据局,c=CN,$LDAP_BASE" \
  userCertificate "$(g cert export --serial "$S_WEB1" --der | base64 -w0)"
expect_exit 0 "application with publish_directory false" -- apply web2 false
expect_exit 0 "vetted and approved" -- vet_approve "$(j .id)"
S_WEB2=$(j .serial)
check "caught up" until_ok 10 drained
check "the subscriber agreement's false is honoured" test -z "$(lsearch "$LDAP_BASE" "(cn=web2)" dn)"
expect_exit 3 "publish_directory must be a boolean" -- api opA POST /api/v1/applications --data \
  "$(jq -nc --argjson a "$P" --rawfile csr "$T/web2.csr" '{applicant: $a, profile: "device-ssl", csr: $csr, publish_directory: "no"}')"

# ---- revocation and the CRL ----
expect_exit 0 "revoke 张三" -- g cert revoke --serial "$S_ZS" --reason keyCompromise
check "the revoked certificate leaves" until_ok 10 hasnt "$ZS_DN" userCertificate "$(b64der x509 "$T/zs.pem")"
expect_exit 0 "a CRL" -- g crl generate --ca sub --out "$T/sub.crl"
check "the CRL is published (certificateRevocationList;binary)" until_ok 10 has "$SUB_DN" \
  certificateRevocationList "$(b64der crl "$T/sub.crl")"
check "one CRL value" test "$(values "$SUB_DN" certificateRevocationList | wc -l)" = 1

# ---- status and a reset: everything again, nothing changes ----
expect_exit 0 "publish status" -- g publish status --json
check "ldap channel listed, nothing pending, no attempts" \
  test "$(jq -r '.[] | select(.channel == "ldap") | "\(.pending) \(.attempts)"' "$T/out")" = "0 0"
lsearch "$LDAP_BASE" >"$T/before.ldif"
expect_exit 2 "reset needs --to" -- g publish reset --channel ldap
expect_exit 0 "reset ldap to 0" -- g publish reset --channel ldap --to 0
check "reset audited" test "$(g audit list --json | jq '[.. | objects | select(.event? == "publish.reset")] | length')" = 1
check "replayed" until_ok 20 drained
lsearch "$LDAP_BASE" >"$T/after.ldif"
check "the replay changed nothing in the directory" cmp -s "$T/before.ldif" "$T/after.ldif"

# ---- the outage: slapd stops midway through 1,000 issuances and comes back ----
N=1000
openssl genpkey -algorithm SM2 -out "$T/bulk.key" 2>/dev/null
mkdir "$T/bulk"
for i in $(seq $N); do
  openssl req -new -key "$T/bulk.key" -sm3 -sigopt distid:1234567812345678 -utf8 \
    -subj "/C=CN/O=批量测试单位/OU=组$((i % 10))/CN=用户$i" -out "$T/bulk/$i.csr"
done
fails=0
for i in $(seq $N); do
  g cert issue --profile device-ssl --csr "$T/bulk/$i.csr" --out "$T/bulk/$i.pem" >"$T/bulk/$i.serial" ||
    fails=$((fails + 1))
  if [ "$i" = 300 ]; then slapd_stop; fi
  # During the outage: some are revoked (issued and revoked in the same outage, or before it).
  if [ "$i" -gt 400 ] && [ "$i" -le 420 ]; then
    g cert revoke --serial "$(cat "$T/bulk/$i.serial")" --reason superseded >/dev/null || fails=$((fails + 1))
    g cert revoke --serial "$(cat "$T/bulk/$((i - 200)).serial")" --reason superseded >/dev/null ||
      fails=$((fails + 1))
  fi
  if [ "$i" = 500 ]; then
    check "the failures are counted meanwhile" test "$(g publish status --json | jq -r '.[] | select(.channel == "ldap") | .attempts')" -ge 1
    slapd_start || bad "slapd restarts"
  fi
done
check "1,000 issued, 40 revoked, no failure" test "$fails" = 0
check "the directory catches up" until_ok 60 drained
B_BASE="o=批量测试单位,c=CN,$LDAP_BASE"
lsearch "$B_BASE" "(objectClass=pkiUser)" "userCertificate;binary" | sed -n 's/^userCertificate;binary:: //p' |
  sort >"$T/got"
: >"$T/want"
for i in $(seq $N); do
  if { [ "$i" -gt 400 ] && [ "$i" -le 420 ]; } || { [ "$i" -gt 200 ] && [ "$i" -le 220 ]; }; then continue; fi
  b64der x509 "$T/bulk/$i.pem" >>"$T/want"
  echo >>"$T/want"
done
sort -o "$T/want" "$T/want"
check "every valid one of the 1,000 in the directory exactly once ($(wc -l <"$T/got") values)" \
  cmp -s "$T/want" "$T/got"
check "960 values, no revoked one" test "$(wc -l <"$T/got")" = 960
check "no refusal skipped" test "$(g audit list --json | jq '[.. | objects | select(.event? == "publish.skip")] | length')" = 0
stop_serve
finish
