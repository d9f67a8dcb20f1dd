#!/usr/bin/env python3
"""REAP cold starts under concurrency: N restores started at the same moment.

For N in the sweep: N `thaw restore --mem MODE --drop-cache` processes are started
together; each reports its own cold start (restore + first response). "same" restores N
instances of one function; "different" cycles through the given functions. Each N is
repeated ROUNDS times; the median over all instances of all rounds is reported, and the
ratio to the N=1 median of the same kind. The working sets are recorded once first.

usage: bench/concurrency.py [--rounds R] [--sweep 1,2,4,8,16] [--mode reap] [function ...]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THAW = os.path.join(ROOT, "build", "thaw")
DEFAULT = ["helloworld", "chameleon", "lr_serving", "hello"]


def payload_of(fdir):
    pdir = os.path.join(ROOT, fdir, "payloads")
    with open(os.path.join(pdir, sorted(os.listdir(pdir))[0])) as f:
        return f.read().strip()


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{") and "cold_start_us" in line:
            return json.loads(line)
    raise RuntimeError("no JSON result in: %s" % text[-300:])


def burst(jobs, mode):
    """Starts every (snapshot, payload) at once; returns each one's cold start in ms."""
    procs = [subprocess.Popen([THAW, "restore", snap, "--mem", mode, "--payload", pl, "--drop-cache", "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
             for snap, pl in jobs]
    out = []
    for p in procs:
        o, e = p.communicate(timeout=600)
        if p.returncode != 0:
            raise RuntimeError("restore failed: %s" % e.strip()[-300:])
        j = last_json(o + "\n" + e)
        if mode == "reap" and not j["reap"]["prefetched"]:
            raise RuntimeError("restore did not prefetch: %s" % j["reap"])
        out.append(j["cold_start_us"] / 1e3)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--sweep", default="1,2,4,8,16")
    ap.add_argument("--mode", default="reap")
    ap.add_argument("functions", nargs="*")
    a = ap.parse_args()
    names = a.functions or DEFAULT
    sweep = [int(x) for x in a.sweep.split(",")]
    tmp = tempfile.mkdtemp(prefix="thaw-conc-", dir=ROOT)
    rows = []
    try:
        snaps = []
        for n in names:
            fdir = os.path.join("functions", n)
            snap = os.path.join(tmp, n)
            subprocess.run([THAW, "snapshot", fdir, "-o", snap], check=True, cwd=ROOT, capture_output=True)
            pl = payload_of(fdir)
            if a.mode == "reap":
                subprocess.run([THAW, "restore", snap, "--mem", "reap", "--payload", pl], check=True, cwd=ROOT,
                               capture_output=True)
            snaps.append((snap, pl))
        for kind in ("same", "different"):
            base = None
            for n in sweep:
                ms = []
                for _ in range(a.rounds):
                    jobs = [snaps[0] if kind == "same" else snaps[i % len(snaps)] for i in range(n)]
                    if kind == "different" and n == 1:
                        jobs = [snaps[(_ % len(snaps))]]
                    ms += burst(jobs, a.mode)
                    time.sleep(0.05)
                med = statistics.median(ms)
                base = base or med
                rows.append((kind, n, med, max(ms), med / base))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("Command: `python3 bench/concurrency.py --rounds %d --sweep %s --mode %s %s`  " % (
        a.rounds, a.sweep, a.mode, " ".join(a.functions)))
    print("Cold starts (restore + first response, page cache dropped) of N %s restores started together; "
          "medians over all instances of %d rounds, in ms. \"same\": N instances of %s; \"different\": "
          "cycling through %s.\n" % (a.mode, a.rounds, names[0], ", ".join(names)))
    print("| functions | N | median | worst | median / N=1 |")
    print("|---|---|---|---|---|")
    for kind, n, med, worst, ratio in rows:
        print("| %s | %d | %.1f | %.1f | %.2fx |" % (kind, n, med, worst, ratio))


if __name__ == "__main__":
    main()
