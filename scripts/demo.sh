#!/usr/bin/env bash
# `make run`: create (once) a demo CA under var/demo and show it working:
# a subscriber key and CSR made with the openssl CLI, a certificate issued,
# listed and shown, a second one revoked, a CRL generated, the audit chain
# verified. The key ceremony gives five demo custodians one share each; their
# random PINs and shares sit in var/demo-custody/ (0700) only because this is
# a demo: a real CA's custodians keep their share and PIN apart, each alone.
set -euo pipefail
gmca=$(realpath "$1")
dir=$2
base=$(dirname "$dir")
custody="$base/$(basename "$dir")-custody"
work="$base/$(basename "$dir")-subscriber"
mkdir -p "$base" "$work"
names=(张三 李四 王五 赵六 钱七)

if [ ! -f "$dir/gmca.json" ]; then
  rm -rf "$custody"
  mkdir -m 700 "$custody"
  args=()
  umask 077
  for i in 1 2 3 4 5; do
    # letters and digits, never the custodian's name (CPS §7.4.1)
    printf 'Demo%s%s\n' "$i" "$(head -c 12 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 12)" \
      > "$custody/pin$i"
    args+=(--custodian "${names[$((i - 1))]}" --pin-file "$custody/pin$i")
  done
  umask 022
  "$gmca" --dir "$dir" --operator demo-admin init "${args[@]}" --shares-out "$custody" \
    --root-dn "C=CN, O=示范电子政务认证中心, OU=根证书, CN=示范电子政务 SM2 根 CA" \
    --sub-dn "C=CN, ST=北京市, L=北京市, O=示范电子政务认证中心, OU=运营, CN=示范电子政务 SM2 运营 CA"
fi
# Three of the five custodians: they start the CA engine (through gmca serve
# below) and authorise what only custodians may issue.
CUST=(--share "$custody/share-1.json" --pin-file "$custody/pin1"
  --share "$custody/share-3.json" --pin-file "$custody/pin3"
  --share "$custody/share-5.json" --pin-file "$custody/pin5")
g() { "$gmca" --dir "$dir" "$@"; }

# An engine left running by an earlier demo (or a gmca activate) is stopped:
# serve starts its own and stops it again when it stops.
[ -S "$dir/run/engine.sock" ] && g --operator demo-admin deactivate >/dev/null 2>&1 || true
if [ -f "$dir/run/serve.pid" ] && kill -0 "$(cat "$dir/run/serve.pid")" 2>/dev/null; then
  echo "gmca: the demo front already runs (pid $(cat "$dir/run/serve.pid")); stop it first" >&2
  exit 6
fi

# The RA system and five operators, each with their own key (encrypted with
# a demo passphrase kept beside the custody files) and certificate, made
# once with the custodians present (CPS §6.2, §7.1.1).
ops="$base/$(basename "$dir")-operators"
if [ ! -f "$ops/ra.pem" ]; then
  rm -rf "$ops"
  mkdir -m 700 "$ops"
  umask 077
  head -c 18 /dev/urandom | base64 > "$ops/pass"
  umask 022
  newkey() { # NAME SUBJECT
    openssl genpkey -algorithm SM2 -aes-256-cbc -pass "file:$ops/pass" -out "$ops/$1.key" 2>/dev/null
    openssl req -new -key "$ops/$1.key" -passin "file:$ops/pass" -sm3 \
      -sigopt distid:1234567812345678 -utf8 -subj "$2" -out "$ops/$1.csr"
  }
  newkey ra "/C=CN/O=示范电子政务认证中心/OU=注册中心/CN=示范 RA 系统"
  g --operator demo-admin ra cert issue --ra demo-ra --csr "$ops/ra.csr" --out "$ops/ra.pem" \
    "${CUST[@]}" >/dev/null
  for op in "录入员王芳:business_operator" "审核员刘强:business_admin" "审计员陈静:audit_admin" \
    "超级管理员周伟:super_admin"; do
    name=${op%%:*}
    newkey "$name" "/C=CN/O=示范电子政务认证中心/OU=注册中心/CN=$name"
    g --operator demo-admin operator add --name "$name" --role "${op##*:}" \
      --csr "$ops/$name.csr" --out "$ops/$name.pem" "${CUST[@]}" >/dev/null
  done
fi

listen=${GMCA_DEMO_LISTEN:-127.0.0.1:8080}
g --operator demo-front serve --listen "$listen" --ra demo-ra --ra-key "$ops/ra.key" \
  --ra-pass-file "$ops/pass" --ra-cert "$ops/ra.pem" "${CUST[@]}" >"$work/serve.out" &
front=$!
trap 'kill -TERM "$front" 2>/dev/null || true' INT TERM
for _ in $(seq 200); do
  grep -q '^gmca: serving on ' "$work/serve.out" 2>/dev/null && break
  kill -0 "$front" 2>/dev/null || { echo "gmca: the front did not start" >&2; exit 1; }
  sleep 0.1
done
url=$(sed -n 's/^gmca: serving on //p' "$work/serve.out")
api() { # OPERATOR METHOD TARGET [--data ...]
  local who=$1; shift
  "$gmca" api --url "$url" --key "$ops/$who.key" --pass-file "$ops/pass" --cert "$ops/$who.pem" "$@"
}

# 张三 applies (CPS §3.1): the data-entry operator records him and his
# application, the reviewer vets his identity and approves, the CA engine
# checks both steps again and issues.
n=$(date +%s)
openssl genpkey -algorithm SM2 -out "$work/zhangsan-$n.key" 2>/dev/null
openssl req -new -key "$work/zhangsan-$n.key" -sm3 -sigopt distid:1234567812345678 -utf8 \
  -subj "/C=CN/ST=北京市/L=北京市/O=示范市政务服务中心/CN=张三" -out "$work/zhangsan-$n.csr"
applicant=$(api 录入员王芳 POST /api/v1/applicants --data \
  '{"kind":"individual","name":"张三","id_type":"resident_id","id_number":"11010519491231002X","contact":"zhangsan@example.gov.cn"}' |
  jq -r .id)
app=$(jq -nc --argjson a "$applicant" --rawfile csr "$work/zhangsan-$n.csr" \
  '{applicant:$a, profile:"personal-sign", csr:$csr, subject_info:{identity_card_number:"11010519491231002X"}, materials:["个人数字证书申请表","居民身份证复印件"]}' |
  api 录入员王芳 POST /api/v1/applications --data @- | jq -r .id)
# Each step names the submission its operator read (docs/api.md, "submission").
sub=$(api 审核员刘强 GET "/api/v1/applications/$app" | jq -r .submission)
api 审核员刘强 POST "/api/v1/applications/$app/vet" --data \
  "{\"method\":\"in_person\",\"documents\":[\"居民身份证\"],\"result\":\"pass\",\"submission\":\"$sub\"}" >/dev/null
api 审核员刘强 POST "/api/v1/applications/$app/approve" \
  --data "{\"reason\":\"材料齐全\",\"submission\":\"$sub\"}" >"$work/zhangsan-$n.json"
serial=$(jq -r .serial "$work/zhangsan-$n.json")
jq -r .certificate "$work/zhangsan-$n.json" >"$work/zhangsan-$n.pem"
echo "== application $app: vetted and approved by two people, issued $serial to 张三"
g cert show --serial "$serial"

# A revocation (CPS §3.9): 张三 reports his key lost (reason E); the business
# admin's request is carried out at once; then the CRL.
api 审核员刘强 POST /api/v1/revocations --data \
  "{\"serial\":\"$serial\",\"reason\":\"E\",\"requester\":\"subscriber\",\"note\":\"USB key 遗失\"}" |
  jq -c '{id, state, serial, reason_code}'
g --operator demo-operator crl generate

echo "== openssl checks the chain of 张三's certificate"
g ca export --ca root > "$work/root.pem"
g ca export > "$work/sub.pem"
openssl verify -vfyopt distid:1234567812345678 -CAfile "$work/sub.pem" -partial_chain \
  "$work/zhangsan-$n.pem"
curl -fsS "$url/crl/sub.crl" | openssl crl -inform DER -noout -text -nameopt utf8 | sed -n "1,14p"
echo "== the audit admin verifies the trail and reads its last records"
records=$(api 审计员陈静 GET /api/v1/audit/verify | jq -r .records)
api 审计员陈静 GET "/api/v1/audit?after=$((records > 10 ? records - 10 : 0))" |
  jq -r '.items[] | "\(.seq) \(.time) \(.event) \(.actor) \(.outcome) \(.object)"'
g audit verify
cat <<TXT

Demo CA serving on $url (CA engine started by the front; demo custody in
$custody, operators' keys in $ops). Ctrl-C stops both.
Try:  build/gmca --dir $dir operator list
      build/gmca api --url $url --key $ops/审核员刘强.key --pass-file $ops/pass \\
        --cert $ops/审核员刘强.pem GET '/api/v1/applications?state=issued'
      curl $url/ca/sub.crt | openssl x509 -inform DER -noout -subject -nameopt utf8
      (the API: docs/api.md)
TXT
wait "$front"
