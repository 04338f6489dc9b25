#!/usr/bin/env bash
# gmca app validate (CPS §3.5.2) against a real gmca CA: valid chains; an
# expired certificate and one not yet valid (--at); the wrong use; a missing
# anchor; revocation by CRL served over HTTP from the CA's own crl/
# directory (python3 -m http.server on 127.0.0.1), cached until nextUpdate;
# a tampered CRL, a CRL from another CA and a missing CRL under each policy;
# OCSP against `openssl ocsp` as responder (delegated responder certificate
# issued by the CA) for good and revoked; relying parties across a root
# key rollover holding only the old or only the new root; intermediates from
# --chain-dir; and a cross-check of every certificate a CA holds (valid,
# revoked for several reasons, expired at a later --at, issued by a CA
# superseded in a rollover) against the CA's own records, by CRL and by OCSP.
#
# `openssl ocsp -port` binds every interface and has no bind option (3.0
# takes neither host:port nor -url for that), so it is not run as a server:
# ocsp_front below listens on 127.0.0.1 only and hands each request to
# `openssl ocsp -index ... -reqin -respout`, the same responder code.
. "$(dirname "$0")/common.bash"
export no_proxy=127.0.0.1 NO_PROXY=127.0.0.1
unset http_proxy HTTP_PROXY
D=$T/ca
g() { "$GMCA" --dir "$D" "$@"; }
v() { "$GMCA" app validate "$@"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PIDS=()
cleanup_servers() { local p; for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap 'cleanup_servers; stop_engines; rm -rf "$T"' EXIT
wait_port() { local i; for i in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0; sleep 0.1; done; return 1; }
echo '{"identity_card_number": "11010519491231002X"}' > "$T/id.json"
# issue DIR NAME PROFILE [options]: a certificate for a fresh key, $T/NAME.pem; serial in $T/NAME.serial.
issue() {
  sm2_csr "$2" "/C=CN/O=验证测试/CN=$2" &&
    "$GMCA" --dir "$1" cert issue --profile "$3" --csr "$T/$2.csr" --info "$T/id.json" \
      --out "$T/$2.pem" "${@:4}" > "$T/$2.serial"
}
# the same without subject info (profiles that take none)
issue_plain() {
  sm2_csr "$2" "/C=CN/O=验证测试/CN=$2" &&
    "$GMCA" --dir "$1" cert issue --profile "$3" --csr "$T/$2.csr" --out "$T/$2.pem" > "$T/$2.serial"
}
jqr() { jq -r "$1" "$T/out"; }
# ocsp_front PORT OPENSSL-OCSP-ARGS...: an OCSP responder on 127.0.0.1:PORT (see above).
cat > "$T/ocsp_front.py" <<'PY'
import http.server, subprocess, sys, tempfile, os
port, args = int(sys.argv[1]), sys.argv[2:]
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        if n <= 0 or n > 65536:
            self.send_error(400); return
        with tempfile.TemporaryDirectory() as d:
            rq, rs = os.path.join(d, "req"), os.path.join(d, "resp")
            open(rq, "wb").write(self.rfile.read(n))
            r = subprocess.run(["openssl", "ocsp"] + args + ["-reqin", rq, "-respout", rs],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if r.returncode != 0 or not os.path.exists(rs):
                self.send_error(500); return
            body = open(rs, "rb").read()
        self.send_response(200)
        self.send_header("Content-Type", "application/ocsp-response")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
ocsp_front() { python3 "$T/ocsp_front.py" "$@" >/dev/null 2>&1 & PIDS+=($!); }
# ocsp_index LIST.json OUT: an openssl index.txt from `gmca cert list --json` (V/R, expiry, revocation).
ocsp_index() {
  jq -r '.[] | [(if .status == "revoked" then "R" else "V" end), (.not_after | sub("[-:T]"; ""; "g") | sub("^20"; "")), (if .status == "revoked" then (.revoked_at | sub("[-:T]"; ""; "g") | sub("^20"; "")) + "," + .reason else "" end), .serial, "unknown", "/CN=x"] | join("\t")' "$1" > "$2"
  echo 'unique_subject = no' > "$2.attr"
}

# ---- a CA whose CDP and AIA point at 127.0.0.1:PORT, serving its state dir ----
PORT=$(free_port)
init_ca "$D" --base-url "http://127.0.0.1:$PORT" --root-dn "C=CN, O=验证测试中心, CN=验证测试根 CA" \
  --sub-dn "C=CN, O=验证测试中心, OU=运营, CN=验证测试运营 CA" >/dev/null
activate "$D" >/dev/null
g ca export --ca root > "$T/root.pem"
g ca export --ca sub > "$T/sub.pem"
issue "$D" alice personal-sign
issue "$D" bob personal-sign
issue "$D" enc personal-enc
g crl generate --ca sub >/dev/null
g crl generate --ca root >/dev/null
python3 -m http.server --bind 127.0.0.1 --directory "$D" "$PORT" >/dev/null 2>&1 &
PIDS+=($!)
check "CRL server up" wait_port "$PORT"
check "the CDP is the served CRL" bash -c "openssl x509 -in '$T/alice.pem' -noout -ext crlDistributionPoints | grep -q 'http://127.0.0.1:$PORT/crl/sub.crl'"

openssl genpkey -algorithm SM2 -out "$T/other-root.key" 2>/dev/null
openssl req -new -x509 -key "$T/other-root.key" -sm3 -sigopt distid:1234567812345678 -subj "/C=CN/CN=Other Root" \
  -days 30 -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign -out "$T/other-root.pem"

# ---- chains, validity, use ----
expect_exit 0 "valid chain, no revocation" -- v --cert "$T/alice.pem" --anchor "$T/root.pem" --chain "$T/sub.pem" --revocation none --json
check "json: valid" test "$(jqr .valid)" = true
check "json: chain of three" test "$(jqr '.chain | length')" = 3
expect_exit 0 "valid for signature" -- v --cert "$T/alice.pem" --anchor "$T/root.pem" --chain "$T/sub.pem" --revocation none --use signature
expect_exit 3 "a signature certificate is not for encryption" -- v --cert "$T/alice.pem" --anchor "$T/root.pem" --chain "$T/sub.pem" --revocation none --use encryption
expect_err "wrong-use"
expect_exit 0 "an encryption certificate for encryption" -- v --cert "$T/enc.pem" --anchor "$T/root.pem" --chain "$T/sub.pem" --revocation none --use encryption
expect_exit 3 "an encryption certificate is not for signature" -- v --cert "$T/enc.pem" --anchor "$T/root.pem" --chain "$T/sub.pem" --revocation none --use signature
expect_err "wrong-use"
expect_exit 3 "no intermediate, network off" -- v --cert "$T/alice.pem" --anchor "$T/root.pem" --revocation none --offline
expect_err "no-issuer"
mkdir -p "$D/ca" && cp "$T/sub.pem" "$D/ca/sub.crt"
expect_exit 0 "the intermediate fetched from caIssuers" -- v --cert "$T/alice.pem" --anchor "$T/root.pem" --revocation none
expect_exit 0 "a directly trusted certificate stands by itself" -- v --cert "$T/alice.pem" --anchor "$T/alice.pem" --revocation none --offline
expect_exit 0 "the operational CA as the only anchor" -- v --cert "$T/alice.pem" --anchor "$T/sub.pem" --revocation none --offline
expect_exit 3 "another chain's root" -- v --cert "$T/alice.pem" --anchor "$T/other-root.pem" --revocation none --offline
expect_err "no-issuer"
expect_exit 3 "expired (--at after notAfter)" -- v --cert "$T/alice.pem" --anchor "$T/root.pem" --chain "$T/sub.pem" --revocation none --at 2099-01-01 --json
expect_err "expired"
check "json: reason expired" test "$(jqr .reason)" = expired
expect_exit 3 "not yet valid (--at before notBefore)" -- v --cert "$T/alice.pem" --anchor "$T/root.pem" --chain "$T/sub.pem" --revocation none --at 2001-01-01
expect_err "not-yet-valid"
# A certificate whose signature byte was changed.
openssl x509 -in "$T/alice.pem" -outform DER -out "$T/alice.der"
python3 -c 'import sys; b=bytearray(open(sys.argv[1],"rb").read()); b[-5]^=1; open(sys.argv[2],"wb").write(b)' "$T/alice.der" "$T/bad-sig.der"
expect_exit 3 "a bad signature" -- v --cert "$T/bad-sig.der" --anchor "$T/root.pem" --chain "$T/sub.pem" --revocation none
expect_err "bad-signature"

# ---- CRL over HTTP, cached ----
expect_exit 0 "good by CRL from the CDP" -- v --cert "$T/bob.pem" --anchor "$T/root.pem" --chain "$T/sub.pem" --revocation crl --cache "$T/cache" --json
check "json: revocation by crl" test "$(jqr .revocation)" = crl
check "the CRLs were cached" test "$(ls "$T/cache" | wc -l)" = 2
BEFORE=$(date -u +%Y-%m-%dT%H:%M:%SZ)
sleep 1
expect_exit 0 "revoke bob" -- g cert revoke --serial "$(cat "$T/bob.serial")" --reason keyCompromise
expect_exit 0 "new CRL" -- g crl generate --ca sub
expect_exit 0 "the cached CRL is used until its nextUpdate" -- v --cert "$T/bob.pem" --anchor "$T/root.pem" --chain "$T/sub.pem" --revocation crl --cache "$T/cache"
expect_exit 3 "revoked, by the fresh CRL" -- v --cert "$T/bob.pem" --anchor "$T/root.pem" --chain "$T/sub.pem" --revocation crl
expect_err "revoked (keyCompromise)"
expect_exit 3 "revoked under soft-fail too" -- v --cert "$T/bob.pem" --anchor "$T/root.pem" --chain "$T/sub.pem" --revocation soft-fail
expect_err "revoked"
expect_exit 3 "revoked, by a given CRL, offline" -- v --cert "$T/bob.pem" --anchor "$T/root.pem" --chain "$T/sub.pem" --revocation crl --crl "$D/crl/sub.crl" --crl "$D/crl/root.crl" --offline
expect_err "revoked"
expect_exit 0 "alice still good" -- v --cert "$T/alice.pem" --anchor "$T/root.pem" --chain "$T/sub.pem" --revocation crl
expect_exit 0 "revoked after the validation time is good then" -- v --cert "$T/bob.pem" --anchor "$T/root.pem" --chain "$T/sub.pem" --revocation crl --at "$BEFORE" --crl "$D/crl/sub.crl" --crl "$D/crl/root.crl" --offline
cp "$D/crl/sub.crl" "$T/sub.crl.good"
# Tampered: one byte of the signed part changed.
python3 -c 'import sys; b=bytearray(open(sys.argv[1],"rb").read()); b[40]^=1; open(sys.argv[1],"wb").write(b)' "$D/crl/sub.crl"
expect_exit 3 "a tampered CRL" -- v --cert "$T/alice.pem" --anchor "$T/root.pem" --chain "$T/sub.pem" --revocation crl
expect_err "crl-invalid"
expect_exit 3 "a tampered CRL fails soft-fail too" -- v --cert "$T/alice.pem" --anchor "$T/root.pem" --chain "$T/sub.pem" --revocation soft-fail
expect_err "crl-invalid"
# Another CA's CRL at the same URL.
O=$T/other
init_ca "$O" --root-dn "C=CN, O=另一中心, CN=另一根 CA" --sub-dn "C=CN, O=另一中心, CN=另一运营 CA" >/dev/null
activate "$O" >/dev/null
"$GMCA" --dir "$O" crl generate --ca sub >/dev/null
cp "$O/crl/sub.crl" "$D/crl/sub.crl"
expect_exit 3 "a CRL from another CA" -- v --cert "$T/alice.pem" --anchor "$T/root.pem" --chain "$T/sub.pem" --revocation crl
expect_err "another CA"
# Missing.
rm "$D/crl/sub.crl"
expect_exit 3 "a missing CRL fails the crl policy" -- v --cert "$T/alice.pem" --anchor "$T/root.pem" --chain "$T/sub.pem" --revocation crl
expect_err "revocation-unavailable"
expect_exit 3 "a missing CRL fails prefer-ocsp (no OCSP responder)" -- v --cert "$T/alice.pem" --anchor "$T/root.pem" --chain "$T/sub.pem" --revocation prefer-ocsp --timeout 2
expect_err "revocation-unavailable"
expect_exit 0 "a missing CRL passes soft-fail" -- v --cert "$T/alice.pem" --anchor "$T/root.pem" --chain "$T/sub.pem" --revocation soft-fail --timeout 2 --json
check "json: soft-fail says unavailable" test "$(jqr .revocation)" = unavailable
cp "$T/sub.crl.good" "$D/crl/sub.crl"

# ---- OCSP: openssl ocsp as responder, delegated responder certificate ----
OPORT=$(free_port)
issue_plain "$D" ocsp ocsp
g cert list --json > "$T/list.json"
ocsp_index "$T/list.json" "$T/index.txt"
ocsp_front "$OPORT" -index "$T/index.txt" -CA "$T/sub.pem" -rsigner "$T/ocsp.pem" \
  -rkey "$T/ocsp.key" -rmd sm3 -rsigopt distid:1234567812345678 -nmin 10
check "OCSP responder up" wait_port "$OPORT"
check "the OCSP responder listens on 127.0.0.1 only" bash -c "ss -ltnH | awk '{print \$4}' | grep -qx '127.0.0.1:$OPORT' && ! ss -ltnH | awk '{print \$4}' | grep -Eq '^(\\*|0\\.0\\.0\\.0|\\[::\\]):$OPORT\$'"
# The leaf asks the responder; the operational CA's own status comes from the root's CRL.
expect_exit 0 "good by OCSP" -- v --cert "$T/alice.pem" --anchor "$T/root.pem" --chain "$T/sub.pem" --revocation prefer-ocsp --ocsp-url "http://127.0.0.1:$OPORT/" --json
check "json: revocation by ocsp" test "$(jqr .revocation)" = ocsp
expect_exit 3 "revoked by OCSP" -- v --cert "$T/bob.pem" --anchor "$T/root.pem" --chain "$T/sub.pem" --revocation prefer-ocsp --ocsp-url "http://127.0.0.1:$OPORT/"
expect_err "said OCSP"
expect_exit 3 "no OCSP responder there" -- v --cert "$T/alice.pem" --anchor "$T/root.pem" --chain "$T/sub.pem" --revocation ocsp --ocsp-url "http://127.0.0.1:$PORT/ocsp" --timeout 2
expect_err "revocation-unavailable"

# ---- across a root key rollover ----
expect_exit 0 "deactivate" -- g deactivate
roll() { local i a=(); for i in 1 3 5; do a+=(--share "$D.shares/share-$i.json" --pin-file "$T/pin$i"); done; g ca rollover "${a[@]}" "$@"; }
expect_exit 0 "root rollover" -- roll --ca root
expect_exit 0 "sub rollover" -- roll
expect_exit 0 "activate" -- activate "$D" 2 3 4
NEW=$(g ca list --json | jq -r '.[] | select(.default) | .name')
ROOT2=$(g ca list --json | jq -r '.[] | select(.replaces=="root") | .name')
g ca export --ca "$ROOT2" > "$T/nwn.pem"
g ca export --ca "$ROOT2" --link old-with-new > "$T/own.pem"
g ca export --ca "$ROOT2" --link new-with-old > "$T/nwo.pem"
g ca export --ca "$NEW" > "$T/sub2.pem"
issue "$D" carol personal-sign
ALL=(--chain "$T/sub.pem" --chain "$T/sub2.pem" --chain "$T/own.pem" --chain "$T/nwo.pem" --revocation none --offline)
expect_exit 0 "old-root holder validates a new-CA leaf through NewWithOld" -- v --cert "$T/carol.pem" --anchor "$T/root.pem" "${ALL[@]}" --json
check "the path goes through NewWithOld (4 certificates)" test "$(jqr '.chain | length')" = 4
expect_exit 0 "new-root holder validates an old-CA leaf through OldWithNew" -- v --cert "$T/alice.pem" --anchor "$T/nwn.pem" "${ALL[@]}" --json
check "the path goes through OldWithNew (4 certificates)" test "$(jqr '.chain | length')" = 4
expect_exit 0 "new-root holder validates a new-CA leaf directly" -- v --cert "$T/carol.pem" --anchor "$T/nwn.pem" "${ALL[@]}"
expect_exit 3 "old-root holder without the link" -- v --cert "$T/carol.pem" --anchor "$T/root.pem" --chain "$T/sub2.pem" --revocation none --offline
expect_err "no-issuer"
expect_exit 3 "new-root holder without the link" -- v --cert "$T/alice.pem" --anchor "$T/nwn.pem" --chain "$T/sub.pem" --revocation none --offline
expect_err "no-issuer"
g crl generate --ca "$NEW" >/dev/null
g crl generate --ca "$ROOT2" >/dev/null
expect_exit 0 "new-CA leaf by CRL from the new CA" -- v --cert "$T/carol.pem" --anchor "$T/nwn.pem" --chain "$T/sub2.pem" --revocation crl

# ---- --chain-dir ----
mkdir -p "$T/chaindir"
cp "$T/sub2.pem" "$T/chaindir/sub2.pem"; cp "$T/nwo.pem" "$T/chaindir/nwo.crt"
openssl x509 -in "$T/sub.pem" -outform DER -out "$T/chaindir/sub.der"
echo "not a certificate" > "$T/chaindir/README"
expect_exit 0 "intermediates from --chain-dir (NewWithOld among them)" -- v --cert "$T/carol.pem" --anchor "$T/root.pem" --chain-dir "$T/chaindir" --revocation none --offline --json
check "the path from --chain-dir goes through NewWithOld" test "$(jqr '.chain | length')" = 4
echo "garbage" > "$T/chaindir/bad.pem"
expect_exit 3 "a --chain-dir file that does not parse" -- v --cert "$T/carol.pem" --anchor "$T/root.pem" --chain-dir "$T/chaindir" --revocation none --offline
expect_err "bad.pem"
rm "$T/chaindir/bad.pem"
expect_exit 4 "a --chain-dir that is not there" -- v --cert "$T/carol.pem" --anchor "$T/root.pem" --chain-dir "$T/nosuchdir" --revocation none --offline

# ---- cross-check against the CA's own records ----
# A CA with valid certificates, certificates revoked for several reasons,
# two that expire within a day (expired at --at two days on), and an
# operational CA superseded by a rollover that still publishes its CRL.
# Every certificate `gmca cert list` shows is validated by CRL and by OCSP,
# now and at --at, and the verdict compared with the record.
X=$T/x
XPORT=$(free_port)
gx() { "$GMCA" --dir "$X" "$@"; }
init_ca "$X" --base-url "http://127.0.0.1:$XPORT" --root-dn "C=CN, O=对照中心, CN=对照根 CA" \
  --sub-dn "C=CN, O=对照中心, CN=对照运营 CA" >/dev/null
activate "$X" >/dev/null
gx ca export --ca root > "$T/x-root.pem"
gx ca export --ca sub > "$T/x-sub1.pem"
issue_plain "$X" xocsp1 ocsp
for n in 1 2 3 4 5; do issue "$X" "x$n" personal-sign; done
for n in 6 7; do issue "$X" "x$n" personal-sign --days 1; done
xrevoke() { gx cert revoke --serial "$(cat "$T/$1.serial")" --reason "$2" >/dev/null; }
xrevoke x2 keyCompromise
xrevoke x3 affiliationChanged
xrevoke x4 superseded
xrevoke x7 cessationOfOperation
gx deactivate >/dev/null
rollx() { local i a=(); for i in 1 3 5; do a+=(--share "$X.shares/share-$i.json" --pin-file "$T/pin$i"); done; gx ca rollover "${a[@]}" "$@"; }
expect_exit 0 "rollover of the operational CA" -- rollx
activate "$X" 2 3 4 >/dev/null
XNEW=$(gx ca list --json | jq -r '.[] | select(.default) | .name')
gx ca export --ca "$XNEW" > "$T/x-$XNEW.pem"
cp "$T/x-sub1.pem" "$T/x-sub.pem"
issue_plain "$X" xocsp2 ocsp
for n in 8 9; do issue "$X" "x$n" personal-sign; done
# (not privilegeWithdrawn: the index of `openssl ocsp` cannot express it)
xrevoke x9 cessationOfOperation
for ca in root sub "$XNEW"; do expect_exit 0 "CRL of $ca" -- gx crl generate --ca "$ca" --hours 96; done
python3 -m http.server --bind 127.0.0.1 --directory "$X" "$XPORT" >/dev/null 2>&1 &
PIDS+=($!)
check "cross-check CRL server up" wait_port "$XPORT"
declare -A XOCSP
for ca in sub "$XNEW"; do
  gx cert list --ca "$ca" --json > "$T/x-list-$ca.json"
  ocsp_index "$T/x-list-$ca.json" "$T/x-index-$ca.txt"
  rsp=xocsp1; [ "$ca" = sub ] || rsp=xocsp2
  XOCSP[$ca]=$(free_port)
  ocsp_front "${XOCSP[$ca]}" -index "$T/x-index-$ca.txt" -CA "$T/x-$ca.pem" -rsigner "$T/$rsp.pem" \
    -rkey "$T/$rsp.key" -rmd sm3 -rsigopt distid:1234567812345678 -ndays 4
  check "cross-check OCSP responder for $ca up" wait_port "${XOCSP[$ca]}"
done
check "the store has revoked and soon-expiring certificates under the superseded CA" \
  test "$(jq '[.[] | select(.status == "revoked")] | length' "$T/x-list-sub.json")" -ge 3
AT=$(date -u -d '+2 days' +%Y-%m-%dT%H:%M:%SZ)
AT_S=$(date -u -d "$AT" +%s)
XALL=(--anchor "$T/x-root.pem" --chain "$T/x-sub.pem" --chain "$T/x-$XNEW.pem")
xn=0
for ca in sub "$XNEW"; do
  while IFS=$'\t' read -r serial status na reason; do
    xn=$((xn + 1))
    rm -f "$T/xc.pem"; gx cert export --serial "$serial" --out "$T/xc.pem" >/dev/null
    # What the records say now, and at --at (expiry is checked before revocation).
    want_now=$status
    want_at=$status
    [ "$(date -u -d "$na" +%s)" -lt "$AT_S" ] && want_at=expired
    for when in now at; do
      want=$want_now; atarg=()
      [ "$when" = at ] && want=$want_at && atarg=(--at "$AT")
      for pol in crl ocsp; do
        if [ "$pol" = crl ]; then
          args=("${XALL[@]}" --revocation crl)
        else
          # The responder answers for the leaf; the issuing CA is the anchor,
          # so that the CAs' own status (by the root's CRL) does not enter.
          args=(--anchor "$T/x-$ca.pem" --revocation ocsp --ocsp-url "http://127.0.0.1:${XOCSP[$ca]}/")
        fi
        got=0
        v --cert "$T/xc.pem" "${args[@]}" "${atarg[@]}" --timeout 5 --json >"$T/out" 2>"$T/err" || got=$?
        what="$serial ($ca, $status, $pol, $when)"
        case $want in
          valid) check "$what: valid" test "$got" = 0 ;;
          revoked)
            check "$what: exit 3" test "$got" = 3
            check "$what: reason revoked" test "$(jqr .reason)" = revoked
            check "$what: reason $reason" grep -qF "revoked ($reason)" "$T/out" ;;
          expired)
            check "$what: exit 3" test "$got" = 3
            check "$what: reason expired" test "$(jqr .reason)" = expired ;;
          *) bad "$what: unexpected store status $want" ;;
        esac
      done
    done
  done < <(jq -r '.[] | [.serial, .status, .not_after, (.reason // "")] | @tsv' "$T/x-list-$ca.json")
done
check "every certificate of the CA was cross-checked (11, got $xn)" test "$xn" = 11

# ---- usage ----
expect_exit 2 "no anchor" -- v --cert "$T/alice.pem"
expect_exit 2 "bad policy" -- v --cert "$T/alice.pem" --anchor "$T/root.pem" --revocation maybe
expect_exit 4 "missing anchor file" -- v --cert "$T/alice.pem" --anchor "$T/nosuch.pem"
expect_exit 0 "help" -- v --help
g deactivate >/dev/null
"$GMCA" --dir "$O" deactivate >/dev/null
gx deactivate >/dev/null
finish
