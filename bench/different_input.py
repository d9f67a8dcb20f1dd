#!/usr/bin/env python3
"""A different input against lazy: the working set recorded on a function's first
payload, restores on its second, in ABBA order.

For each function, one snapshot and one recording restore on the first payload (its
working set saved); then RUNS rounds, each restoring every variant twice on the second
payload, in the order A B ... B A (odd rounds) or reversed (even rounds). Before every
reap restore the recorded set is put back (a reap restore on the new input merges its
misses, so without that every restore after the first would prefetch them), so each
measures the first restore on the new input. Page cache dropped before each
(--drop-cache). A variant is MODE[:VAR=VALUE,...], MODE lazy or reap; the first is the
reference (ratios are reference / variant, above 1 = faster than the reference).

usage: bench/different_input.py [--runs N] [--variants lazy,reap,...] [function ...]
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3, help="ABBA rounds (each restores every variant twice)")
    ap.add_argument("--variants", default="lazy,reap")
    ap.add_argument("functions", nargs="*")
    a = ap.parse_args()
    variants = [(v,) + coldstart.parse_variant(v, ("lazy", "reap")) for v in a.variants.split(",")]
    names = a.functions or SUITE
    tmp = tempfile.mkdtemp(prefix="thaw-diffin-")
    rows = []
    load0 = coldstart.loadavg()
    try:
        for name in names:
            fdir = os.path.join(ROOT, "functions", name)
            pl = coldstart.payloads_of(fdir)
            if len(pl) < 2:
                continue
            snap = os.path.join(tmp, name)
            coldstart.thaw("snapshot", fdir, "-o", snap)
            j = coldstart.restore(snap, "reap", pl[0], timeout=900)
            if not j["reap"]["recorded"]:
                raise RuntimeError("%s: did not record" % name)
            saved = os.path.join(tmp, name + ".ws")
            os.makedirs(saved)
            for n in os.listdir(snap):
                if (n.startswith("ws.") and n != "ws.lock") or n in ("rootfs.ws", "rootfs.gens"):
                    shutil.copy2(os.path.join(snap, n), os.path.join(saved, n))
            res = {v[0]: [] for v in variants}
            for r in range(a.runs):
                order = variants + variants[::-1]
                if r % 2:
                    order = order[::-1]
                for label, mode, env in order:
                    if mode == "reap":
                        coldstart.with_working_set(snap, saved)
                    j = coldstart.restore(snap, mode, pl[1], env=env, timeout=900)
                    if mode == "reap" and not j["reap"]["prefetched"]:
                        raise RuntimeError("%s: reap did not prefetch (%s)" % (name, j["reap"]["note"]))
                    res[label].append(j)
            med = {k: statistics.median(j["cold_start_us"] for j in js) / 1e3 for k, js in res.items()}
            misses = {k: statistics.median(j["reap"]["misses"] for j in js) for k, js in res.items()}
            rows.append((name, med, misses))
            print("done %s: %s" % (name, " / ".join("%.1f" % med[v[0]] for v in variants)), file=sys.stderr)
            shutil.rmtree(snap, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    load1 = coldstart.loadavg()
    ref = variants[0][0]
    print("Command: `python3 bench/different_input.py --runs %d --variants %s %s`  " % (
        a.runs, a.variants, " ".join(a.functions)))
    print("Working set recorded on the first payload, restored on the second; medians of %d cold starts per "
          "variant (ABBA order, page cache dropped, the recorded set put back before each reap restore), in ms; "
          "load average %s before, %s after.\n" % (2 * a.runs, load0, load1))
    others = [v[0] for v in variants[1:]]
    print("| function | %s | %s | misses |" % (" | ".join(v[0] for v in variants),
                                                " | ".join("%s / %s" % (ref, o) for o in others)))
    print("|---|" + "---|" * (len(variants) + len(others) + 1))
    for name, med, misses in rows:
        print("| %s | %s | %s | %s |" % (name, " | ".join("%.1f" % med[v[0]] for v in variants),
                                         " | ".join("%.2fx" % (med[ref] / med[o]) for o in others),
                                         " / ".join("%d" % misses[o] for o in others)))
    for o in others:
        r = [med[ref] / med[o] for _, med, _ in rows]
        print("\n%s: speedup over %s, geometric mean **%.2fx**, slowest %.2fx (%s)." % (
            o, ref, math.exp(sum(math.log(x) for x in r) / len(r)), min(r),
            rows[r.index(min(r))][0]))


if __name__ == "__main__":
    main()
