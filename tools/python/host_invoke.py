#!/usr/bin/python3.11
"""Runs a function for one payload on the host and prints its response, byte for byte
what the function answers in the guest (no trailing newline).

    host_invoke.py FUNCDIR PAYLOAD.json
    host_invoke.py --write-expected FUNCDIR...   # regenerate FUNCDIR/expected/

Python functions ("runtime": "python") run under Debian's /usr/bin/python3.11, not
thaw-python: the handler's files are staged into a temporary app directory (sources
plus what gen_data.py generates, as build_function.py does) and
src/runtime/python/runtime.py itself serves the request (THAW_INVOKE_PATH mode), so
the JSON encoding is exactly the runtime's. sys.path is the guest's order with the
app directory for /app, plus lib-dynload: this is the reference interpreter.

Native functions ("runtime": "native") have no host reference but themselves: their
static program runs chrooted in its archive (tools/python/run_static.py), so `make`
must have built it.

expected/<payload name> holds the response bytes exactly, without a newline.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in tools/python
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import build_function  # noqa: E402
import run_static  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
RUNTIME = os.path.join(REPO, "src", "runtime", "python", "runtime.py")
HOST_PATH = ("/usr/lib/python3.11", "/app", "/usr/lib/python3.11/lib-dynload",
             "/usr/lib/python3/dist-packages")

# Runs runtime.py as __main__ with sys.path set for the staged app directory.
LAUNCHER = r"""
import sys
runtime, app, path = sys.argv[1], sys.argv[2], sys.argv[3:]
sys.path[:] = [app if p == "/app" else p for p in path]
sys.argv = [runtime]
with open(runtime, "rb") as f:
    code = compile(f.read(), runtime, "exec")
exec(code, {"__name__": "__main__", "__file__": runtime, "__builtins__": __builtins__})
"""


def invoke_python(func_dir, payload, app_dir):
    env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8",
           "THAW_INVOKE_PATH": os.path.abspath(payload)}
    proc = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", LAUNCHER, RUNTIME, app_dir, *HOST_PATH],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, cwd=app_dir)
    if proc.returncode != 0:
        sys.exit("host_invoke.py: %s failed on %s (status %d)"
                 % (func_dir, payload, proc.returncode))
    return proc.stdout


class Function:
    def __init__(self, func_dir, build):
        self.dir = func_dir
        self.build = build
        with open(os.path.join(func_dir, "function.json")) as f:
            self.kind = json.load(f).get("runtime")
        self._tmp = None

    def __enter__(self):
        if self.kind == "python":
            self._tmp = tempfile.TemporaryDirectory(prefix="thaw-app-")
            build_function.stage_app(self.dir, self._tmp.name)
        return self

    def __exit__(self, *exc):
        if self._tmp:
            self._tmp.cleanup()

    def invoke(self, payload):
        if self.kind == "python":
            return invoke_python(self.dir, payload, self._tmp.name)
        status, out = run_static.run(self.dir, payload, self.build)
        if status != 0:
            sys.exit("host_invoke.py: %s exited %d on %s" % (self.dir, status, payload))
        return out


def payloads(func_dir):
    d = os.path.join(func_dir, "payloads")
    return sorted(os.path.join(d, p) for p in os.listdir(d) if p.endswith(".json"))


def main():
    build_function.check_interpreter()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.environ.get("BUILD", "build"))
    ap.add_argument("--write-expected", action="store_true",
                    help="write FUNCDIR/expected/<payload> for every payload")
    ap.add_argument("args", nargs="+", metavar="FUNCDIR [PAYLOAD]")
    a = ap.parse_args()
    if a.write_expected:
        for func_dir in a.args:
            os.makedirs(os.path.join(func_dir, "expected"), exist_ok=True)
            with Function(func_dir, a.build) as fn:
                for p in payloads(func_dir):
                    out = fn.invoke(p)
                    dst = os.path.join(func_dir, "expected", os.path.basename(p))
                    with open(dst, "wb") as f:
                        f.write(out)
                    print("%s: %s" % (dst, out.decode()[:100]))
        return
    if len(a.args) != 2:
        ap.error("expected FUNCDIR PAYLOAD")
    with Function(a.args[0], a.build) as fn:
        sys.stdout.buffer.write(fn.invoke(a.args[1]))


if __name__ == "__main__":
    main()
