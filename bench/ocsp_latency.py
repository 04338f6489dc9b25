#!/usr/bin/env python3
"""Revocation-to-OCSP latency for bench/ocsp.sh.

For each certificate (serial and the URL path of its GET request): ask the
front once (so that a pre-signed "good" is cached), revoke it with the gmca
CLI (another process, as an operator would), and from the moment the
command returns ask again every millisecond until the front answers
"revoked". Prints one latency per certificate in milliseconds, then
"median MS max MS". The status is read from the DER with a small walker
(OCSPResponse -> BasicOCSPResponse -> first SingleResponse -> certStatus
tag), not from a library, so no SM2 support is needed here.
"""
import http.client
import subprocess
import sys
import time


def tlv(b, i):
    """(tag, content start, content end) of the TLV at b[i]."""
    tag = b[i]
    n = b[i + 1]
    j = i + 2
    if n & 0x80:
        k = n & 0x7F
        n = int.from_bytes(b[j:j + k], "big")
        j += k
    return tag, j, j + n


def status(der):
    """'good', 'revoked', 'unknown' or 'error:<detail>'."""
    try:
        _, s, _ = tlv(der, 0)                    # OCSPResponse
        tag, es, ee = tlv(der, s)                # responseStatus
        if tag != 0x0A or der[es] != 0:
            return "error:status"
        _, s, _ = tlv(der, ee)                   # [0] responseBytes
        _, s, _ = tlv(der, s)                    # ResponseBytes
        _, _, oe = tlv(der, s)                   # responseType
        _, s, _ = tlv(der, oe)                   # OCTET STRING
        _, s, _ = tlv(der, s)                    # BasicOCSPResponse
        _, s, _ = tlv(der, s)                    # ResponseData
        tag, a, e = tlv(der, s)
        if tag == 0xA0:                          # version
            tag, a, e = tlv(der, e)
        _, _, e = tlv(der, e)                    # producedAt
        _, s, _ = tlv(der, e)                    # responses
        _, s, _ = tlv(der, s)                    # SingleResponse
        _, _, e = tlv(der, s)                    # certID
        return {0x80: "good", 0xA1: "revoked", 0x82: "unknown"}.get(der[e], "error:tag")
    except IndexError:
        return "error:short"


def main():
    gmca, state, host, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    pairs = [line.split() for line in open(sys.argv[5]) if line.strip()]
    conn = http.client.HTTPConnection(host, port, timeout=5)

    def ask(path):
        conn.request("GET", path)
        r = conn.getresponse()
        return status(r.read())

    lat = []
    for serial, path in pairs:
        if ask(path) != "good":
            sys.exit("bench: %s is not good before its revocation" % serial)
        subprocess.run([gmca, "--dir", state, "cert", "revoke", "--serial", serial,
                        "--reason", "keyCompromise"], check=True, stdout=subprocess.DEVNULL)
        t0 = time.monotonic()
        while True:
            st = ask(path)
            if st == "revoked":
                break
            if st != "good":
                sys.exit("bench: %s: %s" % (serial, st))
            if time.monotonic() - t0 > 10:
                sys.exit("bench: %s still good 10 s after its revocation" % serial)
            time.sleep(0.001)
        ms = (time.monotonic() - t0) * 1000
        lat.append(ms)
        print("%s revoked -> OCSP revoked in %.1f ms" % (serial, ms))
    lat.sort()
    n = len(lat)
    med = lat[n // 2] if n % 2 else (lat[n // 2 - 1] + lat[n // 2]) / 2
    print("median %.1f max %.1f" % (med, lat[-1]))


main()
