#!/usr/bin/env python3
"""Shared working sets: total PSS of N instances of one function restored at the same
time, --mem share (the working set mapped from the page cache, one copy for all) against
--mem reap (each instance its own copy) and lazy, for N = 1, 2, 4, 8.

Each point is build/bench/share_pss (N threads in one process, each restoring and
invoking its own instance twice; PSS from smaps while all are alive; every answer
checked). memtouch: each instance overwrites its own 1/N of a 16 MiB part of the arena
and checks the rest is the snapshot's; other functions get their first payload. The
working set is recorded once per function beforehand (a reap restore on that payload).
Page cache warm (the instances share it: that is the point); cold-start times are the
median instance's restore + first response, with N restores competing for 2 cores.

Then, one instance with a cold page cache (--drop-cache before each restore), COLD runs
of reap, share and lazy interleaved: what sharing costs when nothing is cached yet.

usage: bench/share_pss.py [--sweep 1,2,4,8] [--cold-runs 5] [function ...]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THAW = os.path.join(ROOT, "build", "thaw")
PSS = os.path.join(ROOT, "build", "bench", "share_pss")
DEFAULT = ["memtouch", "helloworld", "hello"]
MODES = ["reap", "share", "lazy"]


def payload(fn):
    if fn == "memtouch":
        return None
    d = os.path.join(ROOT, "functions", fn, "payloads")
    return open(os.path.join(d, sorted(os.listdir(d))[0])).read().strip()


def point(snap, mode, n, pl):
    args = [PSS, snap, mode, str(n)] + ([pl] if pl else [])
    p = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=900)
    if p.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(args[1:4]), p.stderr.strip()[-400:]))
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sweep", default="1,2,4,8")
    ap.add_argument("--cold-runs", type=int, default=5)
    ap.add_argument("functions", nargs="*", default=DEFAULT)
    a = ap.parse_args()
    sweep = [int(x) for x in a.sweep.split(",")]
    tmp = tempfile.mkdtemp(prefix="thaw-share-")
    rows, cold_rows = [], []
    try:
        for fn in a.functions:
            snap = os.path.join(tmp, fn)
            subprocess.run([THAW, "snapshot", os.path.join("functions", fn), "-o", snap], cwd=ROOT, check=True,
                           capture_output=True)
            pl = payload(fn)
            rec = pl or '{"parts": 8, "part": 0, "mib": 16, "write": 1}'
            subprocess.run([THAW, "restore", snap, "--mem", "reap", "--payload", rec], cwd=ROOT, check=True,
                           capture_output=True)
            for n in sweep:
                r = {m: point(snap, m, n, pl) for m in MODES}
                rows.append((fn, n, r))
            cold = {m: [] for m in MODES}
            for _ in range(a.cold_runs):
                for m in MODES:
                    p = subprocess.run([THAW, "restore", snap, "--mem", m, "--payload", rec, "--drop-cache", "--json"],
                                       cwd=ROOT, check=True, capture_output=True, text=True)
                    cold[m].append(json.loads(p.stdout.strip().splitlines()[-1])["cold_start_us"] / 1000.0)
            cold_rows.append((fn, {m: sorted(v)[len(v) // 2] for m, v in cold.items()}))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("Command: `python3 bench/share_pss.py --sweep %s %s`  " % (a.sweep, " ".join(a.functions)))
    print("Total PSS (MiB) of N instances alive at once, after each answered twice (all answers checked);"
          " cold start = median instance's restore + first response (ms), page cache warm.\n")
    print("| function | N | reap PSS | share PSS | share / reap | lazy PSS | reap cold | share cold | lazy cold "
          "| WS pages per instance |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for fn, n, r in rows:
        rp, sp, lp = (r[m]["pss_kb"] / 1024.0 for m in MODES)
        print("| %s | %d | %.1f | %.1f | %.0f%% | %.1f | %.1f | %.1f | %.1f | %d |" % (
            fn, n, rp, sp, 100.0 * sp / rp, lp, r["reap"]["cold_start_ms_median"],
            r["share"]["cold_start_ms_median"], r["lazy"]["cold_start_ms_median"], r["share"]["ws_pages"] // n))
    print("\nOne instance, cold page cache: medians of %d cold starts (ms), interleaved.\n" % a.cold_runs)
    print("| function | reap | share | lazy | share / reap |")
    print("|---|---|---|---|---|")
    for fn, c in cold_rows:
        print("| %s | %.1f | %.1f | %.1f | %.2fx |" % (fn, c["reap"], c["share"], c["lazy"], c["share"] / c["reap"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
