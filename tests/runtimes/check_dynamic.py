#!/usr/bin/env python3
"""Dynamically linked programs in the guest, through the real CLI (microVMs, /dev/kvm):
Debian's ld.so loads a program, its shared library and a dlopen'ed one; file-backed
mmap and mprotect behave; a missing interpreter is one clear error; snapshots of a
dynamic program restore in every memory mode.

Prints one line per check and ends with "N passed, N failed"."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
THAW = os.path.join(ROOT, os.environ.get("BUILD", "build"), "thaw")
passed, failed = 0, 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print("ok    " + name)
    else:
        failed += 1
        print("FAIL  %s %s" % (name, detail))


def thaw(*args):
    return subprocess.run([THAW] + list(args), capture_output=True, text=True, cwd=ROOT, timeout=300)


def payloads(*pls):
    out = []
    for p in pls:
        out += ["--payload", p]
    return out


def run_all(tmp):
    p = thaw("run", "functions/dynamic", *payloads('{"a": 6, "b": 7}', '{"a": -3, "b": 5}'))
    lines = p.stdout.strip().splitlines()
    check("dynamic program boots and answers", p.returncode == 0 and len(lines) == 2, p.stderr)
    if p.returncode == 0 and len(lines) == 2:
        r1, r2 = json.loads(lines[0]), json.loads(lines[1])
        check("shared library linked at start-up runs its constructor",
              r1["greeting"] == "Hello from libgreet", r1)
        check("dlopen'ed library answers and keeps its TLS counter",
              (r1["product"], r1["plugin_calls"], r2["product"], r2["plugin_calls"]) == (42, 1, -15, 2), (r1, r2))
        check("file-backed mmap, mprotect and bss checks pass in the guest", r1["checks"] == "ok", r1["checks"])

    p = thaw("run", "functions/badinterp", *payloads("{}"))
    err = p.stderr.strip().splitlines()
    check("a missing interpreter is one clear error",
          p.returncode != 0 and any("/lib/missing/ld-thaw.so.2" in l and "interpreter" in l for l in err), p.stderr)

    snap = os.path.join(tmp, "dyn")
    p = thaw("snapshot", "functions/dynamic", "-o", snap)
    check("dynamic program snapshots", p.returncode == 0, p.stderr)
    for mode in ("copy", "lazy", "uffd", "reap", "reap"):
        p = thaw("restore", snap, "--mem", mode, *payloads('{"a": 9, "b": 9}'))
        ok = p.returncode == 0 and '"product": 81' in p.stdout and '"plugin_calls": 1' in p.stdout
        check("dynamic program restores in %s mode" % mode, ok, p.stdout + p.stderr)


def main():
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("*** SKIP: /dev/kvm not usable: dynamic-program tests did not run ***")
        print("0 passed, 0 failed")
        return 0
    tmp = tempfile.mkdtemp(prefix="thaw-dyn-test-")
    try:
        run_all(tmp)
    except Exception as e:  # a crash is a failure, never a silent pass
        check("dynamic suite ran to the end", False, repr(e))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
