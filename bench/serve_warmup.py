#!/usr/bin/env python3
"""Deploy-time warm-up through `thaw serve`: cold starts of a function snapshotted at its
ready point (warmup 0) against the same function snapshotted after N warm-up
invocations (warmup N, with its payloads/ files), both deployed in one daemon, per
restore mode.

Each function is deployed twice (NAME-w0, NAME-wN; keep_alive_ms 0, so every call is a
cold start), each first invoked once to record its working set. Then, per mode (the
restore key PATCHed on both), runs in ABBA order: the page cache dropped
(/proc/sys/vm/drop_caches: snapshot files and runtime images), no instance alive, one
call with the function's first payload; every answer must be a 200 and a cold start of
the mode. Reports the client's medians, the first invocation inside the guest
(X-Thaw-Invoke-Us), b / a, in how many back-to-back pairs b was faster, and the size of
the working set each recorded (ws.pages, lz4-compressed).

usage: bench/serve_warmup.py [--runs 8] [--warmup 1] [--modes reap,lazy] function ...
"""
import argparse
import math
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon import ROOT, Daemon, suite_payload  # noqa: E402


def drop_all_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def cold_call(d, name, payload, mode, problems):
    d.wait_no_instances()
    drop_all_caches()
    st, h, ms = d.invoke(name, payload)
    if st != 200 or h.get("X-Thaw-Start") != "cold-" + mode:
        problems.append("%s (%s): %s %s" % (name, mode, st, h.get("X-Thaw-Start")))
    return ms, float(h.get("X-Thaw-Invoke-Us", "nan")) / 1e3


def ws_kib(d, name):
    return d.function(name).get("working_set_bytes", 0) // 1024


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--modes", default="reap,lazy")
    ap.add_argument("functions", nargs="+")
    a = ap.parse_args()
    problems, rows = [], []
    with Daemon() as d:
        for fn in a.functions:
            fdir = os.path.join(ROOT, "functions", fn)
            payload = suite_payload(fdir)
            names = {"a": fn + "-w0", "b": "%s-w%d" % (fn, a.warmup)}
            for k, n in names.items():
                d.deploy(n, fdir, keep_alive_ms=0, warmup=0 if k == "a" else a.warmup)
                st, h, _ = d.invoke(n, payload)  # records the working set
                if st != 200 or h.get("X-Thaw-Start") != "cold-reap":
                    problems.append("%s: the recording start answered %s %s" % (n, st, h.get("X-Thaw-Start")))
            for mode in a.modes.split(","):
                for n in names.values():
                    d.patch(n, restore=mode)
                res = {"a": [], "b": []}
                for i in range(a.runs):
                    for k in ("a", "b") if i % 2 == 0 else ("b", "a"):
                        res[k].append(cold_call(d, names[k], payload, mode, problems))
                ws = {k: ws_kib(d, n) for k, n in names.items()}
                rows.append((fn, mode, res, ws))
                print("done %s %s" % (fn, mode), file=sys.stderr, flush=True)
    load = open("/proc/loadavg").read().split()[:3]
    print("Command: `python3 bench/serve_warmup.py --runs %d --warmup %d --modes %s %s`  " % (
        a.runs, a.warmup, a.modes, " ".join(a.functions)))
    print("Medians of %d cold starts per variant through `thaw serve` (jailed workers), interleaved ABBA, "
          "page cache dropped before each; ms. a = snapshot at the ready point, b = after %d warm-up "
          "invocation(s). Load average at the end: %s.\n" % (a.runs, a.warmup, " ".join(load)))
    print("| function | mode | a: client | a: first invocation | b: client | b: first invocation | b / a "
          "| pairs b faster | ws.pages KiB a -> b |")
    print("|---|---|---|---|---|---|---|---|---|")
    logs = {}
    for fn, mode, res, ws in rows:
        ma = statistics.median(x[0] for x in res["a"])
        mb = statistics.median(x[0] for x in res["b"])
        ia = statistics.median(x[1] for x in res["a"])
        ib = statistics.median(x[1] for x in res["b"])
        won = sum(xb[0] < xa[0] for xa, xb in zip(res["a"], res["b"]))
        logs.setdefault(mode, []).append(math.log(mb / ma))
        print("| %s | %s | %.1f | %.1f | %.1f | %.1f | %.2fx | %d of %d | %d -> %d |" % (
            fn, mode, ma, ia, mb, ib, mb / ma, won, len(res["a"]), ws["a"], ws["b"]))
    print()
    for mode, l in logs.items():
        print("Geometric mean of b / a, %s: %.3fx over %d functions." % (mode, math.exp(sum(l) / len(l)), len(l)))
    for p in problems:
        print("PROBLEM: " + p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
