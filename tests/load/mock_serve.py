#!/usr/bin/env python3
"""A stand-in for `thaw serve`'s invoke endpoint, for the CLI checks of thaw load:
POST /invoke/NAME answers with the daemon's X-Thaw-* headers (the first two requests
of each function are cold-reap, the rest warm; instance ids alternate); an unknown
function gets 404 with {"error": ...}. Prints its port on stdout, then serves until
killed. Known functions: argv[1:] (default: hello). MOCK_DELAY_MS=N makes each
invocation take N ms (a function doing work)."""
import http.server
import json
import os
import socketserver
import sys
import threading
import time

KNOWN = set(sys.argv[1:]) or {"hello"}
DELAY = float(os.environ.get("MOCK_DELAY_MS", "0")) / 1000.0
counts = {}
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave together, not 40 ms apart
    wbufsize = 1 << 16               # one write per response (flushed after each request)

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        name = self.path[len("/invoke/"):] if self.path.startswith("/invoke/") else None
        if name not in KNOWN:
            out = json.dumps({"error": "no function %s" % name}).encode()
            self.send_response(404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)
            return
        with lock:
            n = counts.get(name, 0)
            counts[name] = n + 1
        if DELAY:
            time.sleep(DELAY)
        out = json.dumps({"echo": body.decode(errors="replace")}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.send_header("X-Thaw-Instance", "%s-%d" % (name, n % 2))
        self.send_header("X-Thaw-Start", "cold-reap" if n < 2 else "warm")
        self.send_header("X-Thaw-Queue-Us", "5")
        if n < 2:
            self.send_header("X-Thaw-Restore-Us", "4000")
            self.send_header("X-Thaw-Prefetch-Us", "800")
        self.send_header("X-Thaw-Invoke-Us", str(int(DELAY * 1e6) or 60))
        self.end_headers()
        self.wfile.write(out)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


srv = Server(("127.0.0.1", 0), Handler)
print(srv.server_address[1], flush=True)
srv.serve_forever()
