#!/usr/bin/env python3
"""Dynamically linked programs in the guest, through the real CLI (microVMs, /dev/kvm):
Debian's ld.so loads a program, its shared library and a dlopen'ed one; file-backed
mmap and mprotect behave; a missing interpreter is one clear error; snapshots of a
dynamic program restore in every memory mode.

Prints one line per check and ends with "N passed, N failed"."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from thaw_suite import check, main, payload_args, thaw  # noqa: E402


def run_all(tmp):
    p = thaw("run", "functions/dynamic", *payload_args('{"a": 6, "b": 7}', '{"a": -3, "b": 5}'))
    lines = p.stdout.strip().splitlines()
    check("dynamic program boots and answers", p.returncode == 0 and len(lines) == 2, p.stderr)
    if p.returncode == 0 and len(lines) == 2:
        r1, r2 = json.loads(lines[0]), json.loads(lines[1])
        check("shared library linked at start-up runs its constructor",
              r1["greeting"] == "Hello from libgreet", r1)
        check("dlopen'ed library answers and keeps its TLS counter",
              (r1["product"], r1["plugin_calls"], r2["product"], r2["plugin_calls"]) == (42, 1, -15, 2), (r1, r2))
        check("file-backed mmap, mprotect and bss checks pass in the guest", r1["checks"] == "ok", r1["checks"])

    p = thaw("run", "functions/badinterp", *payload_args("{}"))
    err = p.stderr.strip().splitlines()
    check("a missing interpreter is one clear error",
          p.returncode != 0 and any("/lib/missing/ld-thaw.so.2" in l and "interpreter" in l for l in err), p.stderr)

    snap = os.path.join(tmp, "dyn")
    p = thaw("snapshot", "functions/dynamic", "-o", snap)
    check("dynamic program snapshots", p.returncode == 0, p.stderr)
    for mode in ("copy", "lazy", "uffd", "reap", "reap"):
        p = thaw("restore", snap, "--mem", mode, *payload_args('{"a": 9, "b": 9}'))
        ok = p.returncode == 0 and '"product": 81' in p.stdout and '"plugin_calls": 1' in p.stdout
        check("dynamic program restores in %s mode" % mode, ok, p.stdout + p.stderr)


if __name__ == "__main__":
    sys.exit(main("dynamic ELF", run_all))
