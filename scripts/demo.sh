#!/usr/bin/env bash
# `make run`: create (once) a demo CA under var/demo and show it working:
# a subscriber key and CSR made with the openssl CLI, a certificate issued,
# listed and shown, a second one revoked, a CRL generated, the audit chain
# verified. The demo passphrase is random and kept in var/demo.pass (0600):
# a real CA takes it from its custodians, never from a file beside the keys.
set -euo pipefail
gmca=$(realpath "$1")
dir=$2
base=$(dirname "$dir")
pass="$base/$(basename "$dir").pass"
work="$base/$(basename "$dir")-subscriber"
mkdir -p "$base" "$work"

if [ ! -f "$dir/gmca.json" ]; then
  umask 077
  head -c 24 /dev/urandom | base64 | tr -d '\n/+=' > "$pass"
  umask 022
  "$gmca" --dir "$dir" --operator demo-admin init --pass-file "$pass" \
    --root-dn "C=CN, O=示范电子政务认证中心, OU=根证书, CN=示范电子政务 SM2 根 CA" \
    --sub-dn "C=CN, ST=北京市, L=北京市, O=示范电子政务认证中心, OU=运营, CN=示范电子政务 SM2 运营 CA"
fi
g() { "$gmca" --dir "$dir" --operator demo-operator --pass-file "$pass" "$@"; }

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

Demo CA ready in $dir (passphrase in $pass).
Try:  build/gmca --dir $dir cert list --json
      build/gmca --dir $dir audit list
      build/gmca --dir $dir --pass-file $pass cert issue --profile personal-sign \\
          --csr YOUR.csr --info subject.json
TXT
