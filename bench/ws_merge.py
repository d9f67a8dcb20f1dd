#!/usr/bin/env python3
"""Working sets that follow inputs: what recording costs, and restores on a new input.

For each function, one snapshot; every restore with a cold page cache (--drop-cache):
  1. recording vs uffd: RUNS interleaved rounds of a uffd restore, a REAP recording
     restore (working set removed first; one page per fault, the default) followed by a
     prefetching restore from that set, and the same with a batched recording
     (THAW_RECORD_BATCH=1: misses in batches of 16, the whole batch logged).
  2. a different input: the working set is recorded on the first payload and put back
     before each round; then lazy on the second payload, the first reap restore on it
     (prefetch + misses, which it merges), and a second reap restore on it (from the
     merged set).
Cold start = restore start to the first response (cold_start_us). Prints Markdown.

usage: bench/ws_merge.py [--runs N] [function ...]
"""
import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THAW = os.path.join(ROOT, "build", "thaw")
DEFAULT = ["hello", "helloworld", "memtouch", "chameleon", "lr_serving", "matmul_c", "aes_c"]


def run(args, env=None):
    e = dict(os.environ)
    e.update(env or {})
    p = subprocess.run([THAW] + args, capture_output=True, text=True, cwd=ROOT, timeout=600, env=e)
    if p.returncode != 0:
        raise RuntimeError("thaw %s: %s" % (" ".join(args[:3]), p.stderr.strip()[-300:]))
    for text in (p.stdout, p.stderr):
        for line in reversed(text.strip().splitlines()):
            if line.startswith("{") and '"cold_start_us"' in line:
                return json.loads(line)
    raise RuntimeError("no JSON line: %s" % p.stderr.strip()[-300:])


def restore(snap, mode, payload, env=None):
    return run(["restore", snap, "--mem", mode, "--payload", payload, "--drop-cache", "--json"], env)


def clear_ws(snap):
    for n in os.listdir(snap):
        if n.startswith("ws."):
            os.unlink(os.path.join(snap, n))


def put_ws(snap, saved):
    clear_ws(snap)
    for n in os.listdir(saved):
        shutil.copy2(os.path.join(saved, n), os.path.join(snap, n))


def payloads(fn):
    d = os.path.join(ROOT, "functions", fn, "payloads")
    return [open(os.path.join(d, n)).read().strip() for n in sorted(os.listdir(d))]


def ms(js):
    return statistics.median(j["cold_start_us"] for j in js) / 1000.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("functions", nargs="*", default=DEFAULT)
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="thaw-wsmerge-")
    rec_rows, diff_rows = [], []
    try:
        for fn in a.functions:
            snap = os.path.join(tmp, fn)
            subprocess.run([THAW, "snapshot", os.path.join("functions", fn), "-o", snap], cwd=ROOT, check=True,
                           capture_output=True)
            pl = payloads(fn)
            res = {k: [] for k in ("uffd", "record", "after", "batched", "after_batched")}
            for _ in range(a.runs):
                res["uffd"].append(restore(snap, "uffd", pl[0]))
                clear_ws(snap)
                res["record"].append(restore(snap, "reap", pl[0]))
                res["after"].append(restore(snap, "reap", pl[0]))
                clear_ws(snap)
                res["batched"].append(restore(snap, "reap", pl[0], {"THAW_RECORD_BATCH": "1"}))
                res["after_batched"].append(restore(snap, "reap", pl[0]))
            assert all(j["reap"]["recorded"] for j in res["record"] + res["batched"])
            assert all(j["reap"]["prefetched"] for j in res["after"] + res["after_batched"])
            rec_rows.append((fn, ms(res["uffd"]), ms(res["record"]), ms(res["batched"]), ms(res["after"]),
                             ms(res["after_batched"]),
                             statistics.median(j["reap"]["ws_pages"] for j in res["after"]),
                             statistics.median(j["reap"]["ws_pages"] for j in res["after_batched"])))
            if len(pl) < 2:
                continue
            clear_ws(snap)
            restore(snap, "reap", pl[0])  # the working set of the first payload
            saved = os.path.join(tmp, fn + ".ws")
            os.makedirs(saved)
            for n in os.listdir(snap):
                if n.startswith("ws.") and n != "ws.lock":
                    shutil.copy2(os.path.join(snap, n), os.path.join(saved, n))
            d = {"lazy": [], "first": [], "again": []}
            for _ in range(a.runs):
                put_ws(snap, saved)
                d["lazy"].append(restore(snap, "lazy", pl[1]))
                d["first"].append(restore(snap, "reap", pl[1]))
                d["again"].append(restore(snap, "reap", pl[1]))
            assert all(j["reap"]["prefetched"] for j in d["first"] + d["again"])
            diff_rows.append((fn, ms(d["lazy"]), ms(d["first"]), ms(d["again"]),
                              statistics.median(j["reap"]["misses"] for j in d["first"]),
                              statistics.median(j["reap"]["misses"] for j in d["again"]),
                              statistics.median(j["reap"]["merge_added"] for j in d["first"])))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("Command: `python3 bench/ws_merge.py --runs %d %s`  " % (a.runs, " ".join(a.functions)))
    print("Medians of %d cold starts (page cache dropped), interleaved, in ms.\n" % a.runs)
    print("| function | uffd | REAP recording | recording / uffd | batched recording | batched / uffd "
          "| prefetch after recording | after batched recording | WS pages: exact / batched |")
    print("|---|---|---|---|---|---|---|---|---|")
    for fn, u, r, b, ar, ab, pr, pb in rec_rows:
        print("| %s | %.1f | %.1f | %.2fx | %.1f | %.2fx | %.1f | %.1f | %d / %d |" % (fn, u, r, r / u, b, b / u, ar, ab,
                                                                                 pr, pb))
    gm = lambda xs: math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")
    print("\nGeometric mean over %d functions: recording / uffd **%.2fx**, batched recording / uffd %.2fx; "
          "prefetch from the batched set / from the exact set %.2fx." % (
              len(rec_rows), gm([r[2] / r[1] for r in rec_rows]), gm([r[3] / r[1] for r in rec_rows]),
              gm([r[5] / r[4] for r in rec_rows])))
    print("\nA different input: working set recorded on the first payload, restored on the second.\n")
    print("| function | lazy | reap, first on the new input | vs lazy | reap again (merged set) | vs lazy "
          "| misses first -> again | pages merged |")
    print("|---|---|---|---|---|---|---|---|")
    for fn, l, f, g, mf, mg, add in diff_rows:
        print("| %s | %.1f | %.1f | %.2fx | %.1f | %.2fx | %d -> %d | %d |" % (fn, l, f, l / f, g, l / g, mf, mg, add))
    if diff_rows:
        print("\nSlowest first restore on a new input against lazy: %.2fx (speedup; below 1 would be slower)." %
              min(l / f for _, l, f, _, _, _, _ in diff_rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
