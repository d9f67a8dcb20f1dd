#!/usr/bin/env python3
"""What threads cost in the guest: runs functions/thread_switch in one microVM with
--runs requests of --n repetitions each and prints the median microseconds per
operation (a null syscall, an FS/GS base write in ring 0, sched_yield alone, and a
futex ping-pong round between two threads: two switches with a TLS base write each
plus four futex calls). The first request (warm-up) is dropped.

    bench/thread_switch.py [--runs 7] [--n 2000]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THAW = os.path.join(ROOT, os.environ.get("BUILD", "build"), "thaw")
KEYS = ("syscall_us", "set_base_us", "yield_us", "pingpong_round_us")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--n", type=int, default=2000)
    a = ap.parse_args()
    pl = ["--payload", json.dumps({"n": a.n})] * (a.runs + 1)
    p = subprocess.run([THAW, "run", "functions/thread_switch"] + pl, cwd=ROOT, capture_output=True, text=True,
                       timeout=600)
    if p.returncode != 0:
        sys.exit("thaw run failed: " + p.stderr.strip())
    rows = [json.loads(l) for l in p.stdout.strip().splitlines()][1:]
    print("median of %d requests, %d repetitions each (bench/thread_switch.py --runs %d --n %d)"
          % (len(rows), a.n, a.runs, a.n))
    print("| operation | us (median) | min | max |")
    print("|---|---|---|---|")
    for k in KEYS:
        v = [r[k] for r in rows]
        print("| %s | %.1f | %.1f | %.1f |" % (k[:-3], statistics.median(v), min(v), max(v)))


if __name__ == "__main__":
    main()
