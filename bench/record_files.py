#!/usr/bin/env python3
"""What recording the file working set costs: two thaw builds (or environments), each
doing REAP's recording restore of the same snapshot (its working-set files removed
first, page cache dropped), interleaved ABBA. Reports the whole command's wall time
(the recording of rootfs.ws runs off the response path but the command waits for it
before it exits), the cold start, and rootfs.ws's size.

A variant is BINARY or BINARY:VAR=VALUE[,VAR=VALUE], as for bench/ab_restore.py.

usage: bench/record_files.py --a VARIANT --b VARIANT [--runs N] function ...
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time

import coldstart
from ab_restore import parse  # BINARY[:VAR=VALUE,...] -> (binary, environment)

ROOT = coldstart.ROOT
WS_FILES = ("ws.pages", "ws.trace", "ws.gens", "ws.stale", "rootfs.ws")


def record(variant, snap, payload):
    binary, env = variant
    for f in WS_FILES:
        if os.path.exists(os.path.join(snap, f)):
            os.unlink(os.path.join(snap, f))
    t0 = time.monotonic()
    p = subprocess.run([binary, "restore", snap, "--mem", "reap", "--payload", payload, "--drop-cache", "--json"],
                       capture_output=True, text=True, cwd=ROOT, timeout=600, env=dict(os.environ, **env))
    wall = (time.monotonic() - t0) * 1e3
    if p.returncode != 0:
        raise RuntimeError("%s restore: %s" % (binary, p.stderr.strip()[-300:]))
    j = json.loads(p.stdout.strip().splitlines()[-1])
    assert j["reap"]["recorded"], j
    ws = os.path.join(snap, "rootfs.ws")
    return {"wall": wall, "cold": j["cold_start_us"] / 1e3, "ws_kib": os.path.getsize(ws) / 1024 if os.path.exists(ws) else 0}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)
    ap.add_argument("--runs", type=int, default=6)
    ap.add_argument("functions", nargs="+")
    a = ap.parse_args()
    variants = {"a": parse(a.a), "b": parse(a.b)}
    tmp = tempfile.mkdtemp(prefix="thaw-record-files-", dir=ROOT)
    rows = []
    try:
        for fn in a.functions:
            fdir = os.path.join("functions", fn)
            snap = os.path.join(tmp, fn)
            subprocess.run([coldstart.THAW, "snapshot", fdir, "-o", snap], check=True, cwd=ROOT, capture_output=True)
            payload = coldstart.payload_of(os.path.join(ROOT, fdir))
            res = {"a": [], "b": []}
            for i in range(a.runs):
                for k in (("a", "b") if i % 2 == 0 else ("b", "a")):
                    res[k].append(record(variants[k], snap, payload))
            rows.append((fn, res))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("Command: `python3 bench/record_files.py --a %s --b %s --runs %d %s`  " % (a.a, a.b, a.runs, " ".join(a.functions)))
    print("Medians of %d recording restores per variant (`thaw restore --mem reap --drop-cache`, working-set files "
          "removed first), interleaved ABBA; ms. *command*: the whole command, which waits for the recording of "
          "rootfs.ws before it exits.\n" % a.runs)
    print("| function | variant | command | b / a | cold start | rootfs.ws KiB |")
    print("|---|---|---|---|---|---|")
    for fn, res in rows:
        med = {k: {m: statistics.median(r[m] for r in res[k]) for m in ("wall", "cold", "ws_kib")} for k in res}
        for k in ("a", "b"):
            print("| %s | %s | %.1f | %s | %.1f | %.0f |" % (fn, k, med[k]["wall"],
                  "%.2fx" % (med["b"]["wall"] / med["a"]["wall"]) if k == "b" else "", med[k]["cold"], med[k]["ws_kib"]))


if __name__ == "__main__":
    main()
