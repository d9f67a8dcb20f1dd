#!/usr/bin/env python3
"""A second input, seen before: two thaw builds (or environments), each with its own
snapshot of a function, its working set recorded on the first payload and one REAP
restore on the second (a merging restore: what the build merges of that input, it
keeps). Then RUNS rounds of cold starts on the second payload, in ABBA order, and RUNS
on the first again (what a grown set costs the input it was recorded on). Page cache
dropped before each (--drop-cache). Prints medians (ms) of the cold start and of the
first response, the image pages read ahead (rootfs.ws_pages), b / a and the sign count.

A variant is BINARY or BINARY:VAR=VALUE[,VAR=VALUE], as in bench/ab_restore.py.

usage: bench/file_ws_merge.py --a VARIANT --b VARIANT [--runs 6] [function ...]
"""
import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile

import ab_restore
import coldstart

ROOT = coldstart.ROOT


def restore(v, snap, payload):
    p = ab_restore.run(v, ["restore", snap, "--mem", "reap", "--payload", payload, "--drop-cache", "--json"])
    j = json.loads(p.stdout.strip().splitlines()[-1])
    if not j["reap"]["prefetched"]:
        raise RuntimeError("%s: did not prefetch (%s)" % (snap, j["reap"].get("note")))
    return j


def main():
    ap = argparse.ArgumentParser()
    ab_restore.add_variants(ap)
    ap.add_argument("--runs", type=int, default=6)
    ap.add_argument("functions", nargs="*")
    a = ap.parse_args()
    var = {"a": ab_restore.parse(a.a), "b": ab_restore.parse(a.b)}
    names = a.functions or ["cnn_serving", "lr_training_sk", "json_serdes", "linpack_np"]
    tmp = tempfile.mkdtemp(prefix="thaw-fwm-", dir=ROOT)
    rows = []
    try:
        for name in names:
            fdir = os.path.join("functions", name)
            pls = coldstart.payloads_of(os.path.join(ROOT, fdir))
            snaps = {}
            for k, v in var.items():
                snaps[k] = os.path.join(tmp, "%s-%s" % (name, k))
                ab_restore.run(v, ["snapshot", fdir, "-o", snaps[k]])
                ab_restore.run(v, ["restore", snaps[k], "--mem", "reap", "--payload", pls[0], "--drop-cache"])
                restore(v, snaps[k], pls[1])  # the new input, seen once
            for which, pl in (("second", pls[1]), ("first", pls[0])):
                res = {"a": [], "b": []}
                for r in range(a.runs):
                    for k in (("a", "b", "b", "a") if r % 2 == 0 else ("b", "a", "a", "b")):
                        res[k].append(restore(var[k], snaps[k], pl))
                rows.append((name, which, res))
            for s in snaps.values():
                shutil.rmtree(s, ignore_errors=True)
            print("done %s" % name, file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("Command: `python3 bench/file_ws_merge.py --a %s --b %s --runs %d %s`  " % (a.a, a.b, a.runs, " ".join(names)))
    print("Medians of %d cold starts per variant and payload (page cache dropped before each), in ms; "
          "the working set recorded on the first payload, then one restore on the second.\n" % (2 * a.runs))
    print("| function | payload | cold start a | cold start b | b / a | pairs b faster | first response a | "
          "first response b | image pages read ahead a / b |")
    print("|---|---|---|---|---|---|---|---|---|")
    ratios = []
    for name, which, res in rows:
        ca = [j["cold_start_us"] / 1e3 for j in res["a"]]
        cb = [j["cold_start_us"] / 1e3 for j in res["b"]]
        fa = statistics.median(j["first_response_us"] / 1e3 for j in res["a"])
        fb = statistics.median(j["first_response_us"] / 1e3 for j in res["b"])
        wa = statistics.median(j.get("rootfs", {}).get("ws_pages", 0) for j in res["a"])
        wb = statistics.median(j.get("rootfs", {}).get("ws_pages", 0) for j in res["b"])
        ma, mb = statistics.median(ca), statistics.median(cb)
        faster = sum(1 for x, y in zip(ca, cb) if y < x)
        ratios.append(mb / ma)
        print("| %s | %s | %.1f | %.1f | %.2fx | %d of %d | %.1f | %.1f | %d / %d |" % (
            name, which, ma, mb, mb / ma, faster, len(ca), fa, fb, wa, wb))
    print("\nGeometric mean of b / a over %d rows: **%.3fx**" % (
        len(ratios), math.exp(sum(math.log(r) for r in ratios) / len(ratios))))


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
