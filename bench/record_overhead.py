#!/usr/bin/env python3
"""What a REAP recording restore costs over a plain uffd restore, in ABBA order.

For each function, one snapshot; then RUNS rounds, each of two uffd restores and two
recording restores (the working set removed before each) in the order A B B A (odd
rounds) or B A A B (even rounds), every restore on a cold page cache (--drop-cache).
A variant is MODE[:VAR=VALUE,...] with MODE uffd or record, e.g. record:THAW_PAGER_READAHEAD_KB=0.
Cold start = restore start to the first response (cold_start_us). The load average is
printed before and after: on a shared 2-core machine read only the ratios.

usage: bench/record_overhead.py [--runs N] [--a uffd] [--b record] [function ...]
"""
import argparse
import math
import os
import shutil
import statistics
import sys
import tempfile

import coldstart

ROOT = coldstart.ROOT
SUITE = coldstart.SMALL_SUITE


def clear_ws(snap):
    for n in os.listdir(snap):
        if n.startswith("ws.") and n != "ws.lock":
            os.unlink(os.path.join(snap, n))


def restore(snap, variant, payload):
    mode, env = variant
    if mode == "record":
        clear_ws(snap)
    j = coldstart.restore(snap, "reap" if mode == "record" else "uffd", payload, env=env)
    if mode == "record" and not j["reap"]["recorded"]:
        raise RuntimeError("%s: the recording restore did not record (%s)" % (snap, j["reap"]["note"]))
    return j


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5, help="ABBA rounds (each restores both variants twice)")
    ap.add_argument("--a", default="uffd")
    ap.add_argument("--b", default="record")
    ap.add_argument("functions", nargs="*")
    a = ap.parse_args()
    va, vb = (coldstart.parse_variant(v, ("uffd", "record")) for v in (a.a, a.b))
    names = a.functions or SUITE
    tmp = tempfile.mkdtemp(prefix="thaw-recov-")
    rows = []
    load0 = coldstart.loadavg()
    try:
        for name in names:
            fdir = os.path.join(ROOT, "functions", name)
            pl = coldstart.payload_of(fdir)
            snap = os.path.join(tmp, name)
            coldstart.thaw("snapshot", fdir, "-o", snap)
            res = {"a": [], "b": []}
            for r in range(a.runs):
                order = ("a", "b", "b", "a") if r % 2 == 0 else ("b", "a", "a", "b")
                for k in order:
                    res[k].append(restore(snap, va if k == "a" else vb, pl))
            med = {k: statistics.median(j["cold_start_us"] for j in js) / 1e3 for k, js in res.items()}
            pages = {k: statistics.median(j["pages_served"] for j in js) for k, js in res.items()}
            rows.append((name, med["a"], med["b"], pages["a"], pages["b"]))
            print("done %s: %.1f / %.1f ms" % (name, med["a"], med["b"]), file=sys.stderr)
            shutil.rmtree(snap, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load1 = coldstart.loadavg()
    print("Command: `python3 bench/record_overhead.py --runs %d --a %s --b %s %s`  " % (
        a.runs, a.a, a.b, " ".join(a.functions)))
    print("Medians of %d cold starts per variant (ABBA order, page cache dropped before each), in ms; "
          "load average %s before, %s after.\n" % (2 * a.runs, load0, load1))
    print("| function | a: %s | b: %s | b / a | pages served a / b |" % (a.a, a.b))
    print("|---|---|---|---|---|")
    for name, x, y, px, py in rows:
        print("| %s | %.1f | %.1f | %.2fx | %d / %d |" % (name, x, y, y / x, px, py))
    ratios = [y / x for _, x, y, _, _ in rows]
    gm = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
    print("\nGeometric mean of b / a over %d functions: **%.2fx** (median %.2fx, range %.2fx-%.2fx)." % (
        len(rows), gm, statistics.median(ratios), min(ratios), max(ratios)))


if __name__ == "__main__":
    main()
