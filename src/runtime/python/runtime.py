"""thaw Python runtime: serves invocations of /app/handler.py through /dev/invoke.

Installed into every Python function's archive as /thaw/runtime.py and run by
thaw-python. Everything is imported before the first read of /dev/invoke: that read
is the ready point where the microVM is snapshotted.

Protocol: each read() of /dev/invoke returns one whole request (a JSON document);
the response is written back to the same file and is complete when we read again.
An empty read means there are no more requests.

Host testing: if THAW_INVOKE_PATH is set, ONE request is read from that file, the
response is written to stdout and the process exits 0.
"""
import errno
import fcntl
import gc
import json
import os
import struct
import traceback

import handler  # /app/handler.py (compiled to /app/handler.pyc in the archive)

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
        return json.dumps(handler.handle(json.loads(request))).encode()
    except Exception as exc:
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
        write_all(1, invoke(request))
        return 0

    fd = os.open("/dev/invoke", os.O_RDWR)
    # Everything allocated so far lives for the whole process: keep the collector
    # from walking it after the snapshot.
    gc.collect()
    gc.freeze()
    while True:
        request = read_request(fd)  # the first read is the ready point
        if not request:
            return 0
        write_all(fd, invoke(request))


if __name__ == "__main__":
    raise SystemExit(main())
