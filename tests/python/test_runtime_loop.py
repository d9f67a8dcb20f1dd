#!/usr/bin/python3.11
"""Tests runtime.py's /dev/invoke loop on the host, without a guest.

runtime.py runs in a child process under /usr/bin/python3.11 with os.open patched so
that opening /dev/invoke returns one end of a SOCK_SEQPACKET socketpair: like
/dev/invoke, each read there returns one whole message. This side plays the monitor:
it sends requests, reads each response, and finally shuts the socket down so the
runtime's next read returns 0 (EOF) and it must exit with status 0.

Checks: responses in order, the loop survives a handler exception (error response
with "error" and "traceback"), and an invalid JSON request. Prints PASS/FAIL lines
and exits non-zero on failure.
"""
import json
import os
import socket
import subprocess
import sys
import tempfile

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RUNTIME = os.path.join(REPO, "src", "runtime", "python", "runtime.py")

HANDLER = '''
def handle(event):
    if "raise" in event:
        raise KeyError(event["raise"])
    return {"echo": event, "big": "x" * event.get("big", 0)}
'''

CHILD = r"""
import os, sys
fd, runtime, app = int(sys.argv[1]), sys.argv[2], sys.argv[3]
sys.path.insert(0, app)
real_open = os.open
def fake_open(path, flags, *a):
    if path == "/dev/invoke":
        assert flags & os.O_RDWR, flags
        return fd
    return real_open(path, flags, *a)
os.open = fake_open
import fcntl
real_ioctl = fcntl.ioctl
def fake_ioctl(f, req, *a):
    if f == fd:  # this harness ends input only by shutting the socket down
        raise BrokenPipeError("end of input")
    return real_ioctl(f, req, *a)
fcntl.ioctl = fake_ioctl
sys.argv = [runtime]
with open(runtime, "rb") as f:
    code = compile(f.read(), runtime, "exec")
exec(code, {"__name__": "__main__", "__file__": runtime})
"""


def main():
    failures = 0

    def check(name, ok, detail=""):
        nonlocal failures
        print("%s %s%s" % ("PASS" if ok else "FAIL", name, "" if ok else ": " + detail))
        failures += not ok

    with tempfile.TemporaryDirectory() as app:
        with open(os.path.join(app, "handler.py"), "w") as f:
            f.write(HANDLER)
        host, guest = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {k: v for k, v in os.environ.items() if k != "THAW_INVOKE_PATH"}
        child = subprocess.Popen(
            [sys.executable, "-I", "-S", "-B", "-c", CHILD, str(guest.fileno()), RUNTIME, app],
            pass_fds=(guest.fileno(),), env=env)
        guest.close()
        host.settimeout(30)

        def call(request):
            host.send(request)
            return json.loads(host.recv(1 << 20))

        r = call(b'{"a": 1}')
        check("first request", r == {"echo": {"a": 1}, "big": ""}, repr(r))
        r = call(b'{"raise": "boom"}')
        check("handler exception", r.get("error") == "KeyError: 'boom'"
              and "Traceback" in r.get("traceback", ""), repr(r))
        r = call(b'not json')
        check("invalid JSON", r.get("error", "").startswith("JSONDecodeError:"), repr(r))
        r = call(b'{"b": [1, 2], "big": 100000}')
        check("loop continues after errors", r == {"echo": {"b": [1, 2], "big": 100000},
                                                   "big": "x" * 100000}, repr(r)[:200])
        host.shutdown(socket.SHUT_WR)
        try:
            status = child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            status = "timeout"
        check("EOF ends the process with status 0", status == 0, repr(status))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
