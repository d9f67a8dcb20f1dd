#!/usr/bin/env python3
"""REAP prefetch: one large read then install (single) vs chunks installed as they land
from an io_uring (pipelined). Same snapshots, runs alternated, page cache dropped
before each; medians of restore time (which contains the prefetch) and cold start.

usage: bench/reap_read.py [--runs N] [function ...]"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from coldstart import ROOT, THAW, payload_of, thaw  # noqa: E402

import json  # noqa: E402


def restore(snap, payload, how):
    env = dict(os.environ, THAW_REAP_READ=how)
    p = subprocess.run([THAW, "restore", snap, "--mem", "reap", "--payload", payload, "--drop-cache", "--json"],
                       capture_output=True, text=True, cwd=ROOT, env=env, check=True)
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("functions", nargs="*", default=["helloworld", "chameleon", "image_rotate", "memtouch"])
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="thaw-bench-", dir=ROOT)
    print("Command: `python3 bench/reap_read.py --runs %d %s`\n" % (a.runs, " ".join(a.functions)))
    print("| function | WS MiB | restore single (ms) | restore pipelined (ms) | ratio | cold start single (ms) | "
          "cold start pipelined (ms) | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    try:
        for name in a.functions:
            fdir = os.path.join("functions", name)
            pl = payload_of(os.path.join(ROOT, fdir))
            snap = os.path.join(tmp, name)
            thaw("snapshot", fdir, "-o", snap)
            restore(snap, pl, "single")  # records
            res = {"single": [], "pipelined": []}
            for _ in range(a.runs):
                for how in res:
                    j = restore(snap, pl, how)
                    assert j["reap"]["prefetched"], j
                    res[how].append(j)
            med = {h: (statistics.median(j["restore_us"] for j in v), statistics.median(j["cold_start_us"] for j in v))
                   for h, v in res.items()}
            print("| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |" % (
                name, res["single"][0]["reap"]["ws_bytes"] / 1048576, med["single"][0] / 1e3,
                med["pipelined"][0] / 1e3, med["single"][0] / med["pipelined"][0], med["single"][1] / 1e3,
                med["pipelined"][1] / 1e3, med["single"][1] / med["pipelined"][1]))
            sys.stdout.flush()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
