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
# Three of the five custodians wake the CA keys; the CA engine holds them.
# (exit 6: already activated by an earlier run.)
rc=0
"$gmca" --dir "$dir" --operator demo-admin activate --direct-issue \
  --share "$custody/share-1.json" --pin-file "$custody/pin1" \
  --share "$custody/share-3.json" --pin-file "$custody/pin3" \
  --share "$custody/share-5.json" --pin-file "$custody/pin5" 2>/dev/null || rc=$?
[ "$rc" = 0 ] || [ "$rc" = 6 ] || exit "$rc"
g() { "$gmca" --dir "$dir" --operator demo-operator "$@"; }

n=$(date +%s)
key="$work/zhangsan-$n.key"
openssl genpkey -algorithm SM2 -out "$key" 2>/dev/null
openssl req -new -key "$key" -sm3 -sigopt distid:1234567812345678 -utf8 \
  -subj "/C=CN/ST=北京市/L=北京市/O=示范市政务服务中心/CN=张三" -out "$work/zhangsan-$n.csr"
cat > "$work/zhangsan-$n.json" <<JSON
{"identity_card_number": "11010519491231002X"}
JSON
serial=$(g cert issue --profile personal-sign --csr "$work/zhangsan-$n.csr" \
  --info "$work/zhangsan-$n.json" --out "$work/zhangsan-$n.pem")
echo "== issued $serial to 张三 ($work/zhangsan-$n.pem)"
g cert show --serial "$serial"

openssl genpkey -algorithm SM2 -out "$work/lisi-$n.key" 2>/dev/null
openssl req -new -key "$work/lisi-$n.key" -sm3 -sigopt distid:1234567812345678 -utf8 \
  -subj "/C=CN/O=示范市政务服务中心/CN=李四" -out "$work/lisi-$n.csr"
echo '{"identity_card_number": "110101199003070011"}' > "$work/lisi-$n.json"
lisi=$(g cert issue --profile personal-sign --csr "$work/lisi-$n.csr" \
  --info "$work/lisi-$n.json" --out "$work/lisi-$n.pem")
g cert revoke --serial "$lisi" --reason keyCompromise
g crl generate

echo "== certificates"
g cert list
echo "== openssl checks the chain of 张三's certificate"
"$gmca" --dir "$dir" ca export --ca root > "$work/root.pem"
"$gmca" --dir "$dir" ca export > "$work/sub.pem"
openssl verify -vfyopt distid:1234567812345678 -CAfile "$work/sub.pem" -partial_chain \
  "$work/zhangsan-$n.pem"
openssl crl -inform DER -in "$dir/crl/sub.crl" -noout -text -nameopt utf8 | sed -n "1,14p"
g audit verify
cat <<TXT

Demo CA ready in $dir, activated (CA engine running; demo custody in $custody).
Try:  build/gmca --dir $dir cert list --json
      build/gmca --dir $dir audit list
      build/gmca --dir $dir cert issue --profile personal-sign --csr YOUR.csr --info subject.json
      build/gmca --dir $dir deactivate
TXT
