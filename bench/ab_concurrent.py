#!/usr/bin/env python3
"""Two thaw builds (or environments) each starting N cold restores at the same moment, of N
snapshots of one function (each variant's binary makes its own: formats may differ),
page cache dropped by every restore; rounds in ABBA order. Prints the median cold start
of each variant over every restore of every round, and b / a.

A variant is BINARY or BINARY:VAR=VALUE[,VAR=VALUE], as in bench/ab_restore.py.

usage: bench/ab_concurrent.py --a VARIANT --b VARIANT [--n 4] [--rounds 10] [--mode reap] [function]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

import ab_restore
import coldstart


def main():
    ap = argparse.ArgumentParser()
    ab_restore.add_variants(ap)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--mode", default="reap")
    ap.add_argument("function", nargs="?", default="cnn_serving")
    a = ap.parse_args()
    var = {"a": ab_restore.parse(a.a), "b": ab_restore.parse(a.b)}
    fdir = os.path.join("functions", a.function)
    pl = coldstart.payload_of(os.path.join(coldstart.ROOT, fdir))
    tmp = tempfile.mkdtemp(prefix="thaw-abc-", dir=coldstart.ROOT)
    res = {"a": [], "b": []}
    try:
        snaps = {}
        for k, v in var.items():
            snaps[k] = []
            for i in range(a.n):
                s = os.path.join(tmp, "%s%d" % (k, i))
                ab_restore.run(v, ["snapshot", fdir, "-o", s])
                if a.mode == "reap":
                    ab_restore.run(v, ["restore", s, "--mem", "reap", "--payload", pl, "--drop-cache"])
                snaps[k].append(s)
        for r in range(a.rounds):
            for k in (("a", "b") if r % 2 == 0 else ("b", "a")):
                binary, env = var[k]
                procs = [subprocess.Popen([binary, "restore", s, "--mem", a.mode, "--payload", pl, "--drop-cache",
                                           "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                          cwd=coldstart.ROOT, env=env) for s in snaps[k]]
                for p in procs:
                    o, e = p.communicate(timeout=600)
                    if p.returncode != 0:
                        raise RuntimeError("restore failed: %s" % e.strip()[-300:])
                    j = json.loads(o.strip().splitlines()[-1])
                    if a.mode == "reap" and not j["reap"]["prefetched"]:
                        raise RuntimeError("restore did not prefetch: %s" % j["reap"])
                    res[k].append(j["cold_start_us"] / 1e3)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("Command: `python3 bench/ab_concurrent.py --a %s --b %s --n %d --rounds %d --mode %s %s`  " % (
        a.a, a.b, a.n, a.rounds, a.mode, a.function))
    ma, mb = statistics.median(res["a"]), statistics.median(res["b"])
    print("%d cold starts of %s at once (--mem %s), medians of %d restores: a %.1f ms, b %.1f ms, b / a %.2fx" % (
        a.n, a.function, a.mode, len(res["a"]), ma, mb, mb / ma))


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
