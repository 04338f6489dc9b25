#!/usr/bin/env python3
"""A downstream e-government system's sync receiver for tests/e2e/sync.sh.

Listens on 127.0.0.1 (port 0: a free one, written to --port-file once
listening), and for each POST writes the body to --dir as NNNNNN.der in the
order received, with a line "NNNNNN EVENT-ID" in --dir/index; it answers 200,
except every --fail-every'th request (counted over the receiver's whole life,
across restarts, in --dir/count), which gets 503 and is not kept, and with
--answer CODE every request gets CODE and is not kept (logged in --dir/refused).
Stop it with SIGTERM; start it again on the same --dir and --port to resume.
"""
import argparse
import http.server
import os
import signal
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--fail-every", type=int, default=0)
    ap.add_argument("--answer", type=int, default=0)
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    count_path = os.path.join(a.dir, "count")

    def bump():
        n = int(open(count_path).read()) if os.path.exists(count_path) else 0
        n += 1
        with open(count_path, "w") as f:
            f.write(str(n))
        return n

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):
            pass

        def do_POST(self):
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            event = self.headers.get("X-Gmca-Event-Id", "?")
            n = bump()
            if a.answer:
                with open(os.path.join(a.dir, "refused"), "a") as f:
                    f.write(f"{event} {a.answer}\n")
                code = a.answer
            elif a.fail_every and n % a.fail_every == 0:
                code = 503
            else:
                kept = sum(1 for _ in open(os.path.join(a.dir, "index"))) \
                    if os.path.exists(os.path.join(a.dir, "index")) else 0
                name = f"{kept + 1:06d}"
                with open(os.path.join(a.dir, name + ".der"), "wb") as f:
                    f.write(body)
                with open(os.path.join(a.dir, "index"), "a") as f:
                    f.write(f"{name} {event}\n")
                code = 200
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

    srv = http.server.HTTPServer(("127.0.0.1", a.port), Handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    tmp = a.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, a.port_file)
    try:
        srv.serve_forever()
    finally:
        srv.server_close()


if __name__ == "__main__":
    main()
