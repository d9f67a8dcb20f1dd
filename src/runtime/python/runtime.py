"""thaw Python runtime: serves invocations of /app/handler.py through /dev/invoke.

Installed into every Python function as /thaw/runtime.py and run by Debian's
/usr/bin/python3.11 (-I -B) from the function's root-filesystem image, with the
function's directory (/app) as the working directory. Everything is imported before the first read of
/dev/invoke: that read is the ready point where the microVM is snapshotted.

Protocol: each read() of /dev/invoke returns one whole request (a JSON document; an
empty request is the event {}); the response is written back to the same file and is
complete when we read again. A read at the end of input returns nothing: we exit.
Anything the handler raises, SystemExit and KeyboardInterrupt included, becomes an
error response and the instance keeps serving. print() goes to stdout, which is the
instance's log, never the response. The largest request is the monitor's limit
(1 MiB unless the instance is configured otherwise; see docs/functions.md).

Host testing: if THAW_INVOKE_PATH is set, ONE request is read from that file, the
response is written to stdout (the handler's own prints go to stderr) and the process
exits 0.
"""
import errno
import fcntl
import gc
import json
import os
import struct
import sys
import traceback

# The function's own directory: /app in the guest (the working directory there), the
# staged app/ directory on the host. Isolated mode (-I) does not add it itself.
if os.getcwd() not in sys.path:
    sys.path.insert(0, os.getcwd())

import handler  # noqa: E402  /app/handler.py

FIONREAD = 0x541B
FIRST_READ = 64 << 10  # larger requests: /dev/invoke says EMSGSIZE, FIONREAD the size


def read_request(fd):
    """One whole request: /dev/invoke never splits one; a too-small read fails with
    EMSGSIZE and FIONREAD tells the size to read it with."""
    try:
        return os.read(fd, FIRST_READ)
    except OSError as exc:
        if exc.errno != errno.EMSGSIZE:
            raise
    size = struct.unpack("i", fcntl.ioctl(fd, FIONREAD, b"\0\0\0\0"))[0]
    return os.read(fd, size)


def invoke(request):
    """Runs the handler on one request (bytes); returns the response (bytes)."""
    try:
        event = json.loads(request) if request.strip() else {}
        return json.dumps(handler.handle(event)).encode()
    except BaseException as exc:  # SystemExit, KeyboardInterrupt too: keep serving
        return json.dumps({
            "error": "%s: %s" % (type(exc).__name__, exc),
            "traceback": traceback.format_exc(),
        }).encode()


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def main():
    path = os.environ.get("THAW_INVOKE_PATH")
    if path:
        with open(path, "rb") as f:
            request = f.read()
        out, sys.stdout = sys.stdout, sys.stderr  # the handler's prints are not the response
        try:
            response = invoke(request)
        finally:
            sys.stdout = out
        write_all(1, response)
        return 0

    fd = os.open("/dev/invoke", os.O_RDWR)
    # Everything allocated so far lives for the whole process: keep the collector
    # from walking it after the snapshot.
    gc.collect()
    gc.freeze()
    while True:
        request = read_request(fd)  # the first read is the ready point
        if not request and end_of_input(fd):
            return 0
        response = invoke(request)
        sys.stdout.flush()  # the handler's prints reach the log with its invocation
        sys.stderr.flush()
        write_all(fd, response)


def end_of_input(fd):
    """An empty read is an empty request, or the end of input: /dev/invoke refuses
    FIONREAD (EPIPE) once there are no more requests."""
    try:
        fcntl.ioctl(fd, FIONREAD, b"\0\0\0\0")
        return False
    except OSError:
        return True


if __name__ == "__main__":
    raise SystemExit(main())
