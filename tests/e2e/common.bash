# Helpers for end-to-end tests of the gmca binary. Source it; it sets up a
# temporary directory removed on exit, and counts checks.
set -euo pipefail
: "${GMCA:?GMCA must point at the gmca binary}"
: "${GMCA_SRC:?GMCA_SRC must point at the source tree}"
T=$(mktemp -d "${TMPDIR:-/tmp}/gmca-e2e.XXXXXX")
trap 'rm -rf "$T"' EXIT
PASSED=0
FAILED=0
export GMCA_OPERATOR=e2e-operator

ok() { PASSED=$((PASSED + 1)); }
bad() { FAILED=$((FAILED + 1)); echo "FAIL: $*" >&2; }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }

# expect_exit CODE WHAT -- command...: run, compare the exit status, keep
# stderr in $T/err and stdout in $T/out.
expect_exit() {
  local want=$1 what=$2; shift 3
  local got=0
  "$@" >"$T/out" 2>"$T/err" || got=$?
  if [ "$got" = "$want" ]; then ok; else
    bad "$what: exit $got, want $want; stderr: $(head -c 400 "$T/err")"
  fi
}

# The one-line cause on stderr contains TEXT.
expect_err() {
  if [ "$(wc -l <"$T/err")" -le 1 ] && grep -qF -- "$1" "$T/err"; then ok; else
    bad "stderr should be one line containing '$1', was: $(head -c 400 "$T/err")"
  fi
}

finish() {
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}

# new_ca DIR: a fresh CA with passphrase file $T/pass.
new_ca() {
  [ -f "$T/pass" ] || { umask 077; echo "correct horse battery 1" > "$T/pass"; umask 022; }
  "$GMCA" --dir "$1" init --pass-file "$T/pass" \
    --root-dn "C=CN, O=测试电子政务认证中心, CN=测试 SM2 根 CA" \
    --sub-dn "C=CN, ST=北京市, O=测试电子政务认证中心, OU=运营, CN=测试 SM2 运营 CA" >/dev/null
}

# sm2_csr NAME SUBJ [ID]: key $T/NAME.key and CSR $T/NAME.csr made by openssl.
sm2_csr() {
  local id=${3:-1234567812345678}
  openssl genpkey -algorithm SM2 -out "$T/$1.key" 2>/dev/null
  openssl req -new -key "$T/$1.key" -sm3 -sigopt "distid:$id" -utf8 -subj "$2" \
    -out "$T/$1.csr"
}

# count of rows: certificates and audit records, read through the command.
cert_count() { "$GMCA" --dir "$1" cert list --json | grep -c '"serial"' || true; }
audit_count() { "$GMCA" --dir "$1" audit list --json | grep -c '"seq"' || true; }
# Audit records that are not key activations (each command that needs the CA
# key records its activation), and failures.
audit_work_count() { "$GMCA" --dir "$1" audit list --json | grep '"event"' | grep -vc '"key.activate"' || true; }
audit_failures() { "$GMCA" --dir "$1" audit list --json | grep -c '"outcome": "failure"' || true; }
audit_last_outcome() {
  "$GMCA" --dir "$1" audit list --json | grep '"outcome"' | tail -n 1 | sed 's/.*: "\(.*\)".*/\1/'
}
