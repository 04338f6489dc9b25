#!/usr/bin/env bash
# Install the Debian packages (and npm packages for the interop tests) that
# gmca needs, only when missing. Safe to run repeatedly.
set -euo pipefail

want=(build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
      libssl-dev openssl libsqlite3-dev sqlite3 libjansson-dev libcmocka-dev
      libmicrohttpd-dev libcurl4-openssl-dev libldap2-dev libgfshare-dev faketime
      slapd ldap-utils
      libpq-dev postgresql
      chromium
      jq curl python3
      nodejs npm)
# nodejs from another source may ship npm itself; do not insist on Debian's.
missing=()
for p in "${want[@]}"; do
  if [ "$p" = npm ] && command -v npm >/dev/null 2>&1; then continue; fi
  if [ "$p" = nodejs ] && command -v node >/dev/null 2>&1; then continue; fi
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# Independent SM2 verifier for the interoperability tests.
top=$(cd "$(dirname "$0")/.." && pwd)
if [ "${1:-}" = "--with-npm" ] && [ -f "$top/tests/interop/package.json" ]; then
  if [ ! -d "$top/tests/interop/node_modules/sm-crypto" ] ||
     [ ! -d "$top/tests/interop/node_modules/@peculiar/asn1-x509" ] ||
     [ ! -d "$top/tests/interop/node_modules/playwright-core" ]; then
    echo "deps: installing npm packages for tests/interop"
    (cd "$top/tests/interop" && npm install --no-audit --no-fund --silent)
  fi
fi
