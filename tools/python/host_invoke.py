#!/usr/bin/python3.11
"""Runs a function for one payload on the host and prints its response, byte for byte
what the function answers in the guest (no trailing newline).

    host_invoke.py FUNCDIR PAYLOAD.json
    host_invoke.py --write-expected FUNCDIR...   # regenerate FUNCDIR/expected/

Both kinds run through tools/python/run_reference.py: a Python function on the host's
own /usr/bin/python3.11 (the reference interpreter: the guest runs the same binary
from the image built from it) with src/runtime/python/runtime.py serving the request
(THAW_INVOKE_PATH mode) in a staged app/ directory, so the JSON encoding is exactly
the runtime's; a native function's static program chrooted in its archive (`make`
must have built it).

expected/<payload name> holds the response bytes exactly, without a newline.
"""
import argparse
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in tools/python
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import build_function  # noqa: E402
import run_reference  # noqa: E402


def invoke(func_dir, payload, build):
    status, out = run_reference.run(func_dir, payload, build)
    if status != 0:
        sys.exit("host_invoke.py: %s exited %d on %s" % (func_dir, status, payload))
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
            for p in payloads(func_dir):
                out = invoke(func_dir, p, a.build)
                dst = os.path.join(func_dir, "expected", os.path.basename(p))
                with open(dst, "wb") as f:
                    f.write(out)
                print("%s: %s" % (dst, out.decode()[:100]))
        return
    if len(a.args) != 2:
        ap.error("expected FUNCDIR PAYLOAD")
    sys.stdout.buffer.write(invoke(a.args[0], a.args[1], a.build))


if __name__ == "__main__":
    main()
