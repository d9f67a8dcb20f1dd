#!/usr/bin/env python3
"""Cold starts through `thaw serve` with and without spare workers (--spare-workers):
a worker process started ahead, exec'd and jailed-to-be, with its empty VM made, which a
cold start takes instead of starting its own.

Two daemons run side by side (--spare-workers 0 and N), each with the function deployed
with keep_alive_ms 0; cold starts alternate between them (ABBA), each after the previous
instance is gone and the spares are back at their target, with the snapshot's files dropped
from the page cache. Reported per daemon: the
client's response time of a cold start (HTTP + restore + first invocation) and the
daemon's restore time (X-Thaw-Restore-Us: worker start or take, restore, jail), and inside
the worker's restore (X-Thaw-Restore-Phases-Us) the state load and the VM + vCPU set-up,
whose sum is the restore path without the working set's read and the image, medians.

usage: bench/serve_spares.py [--runs 20] [--spares 2] [--function hello] [--mode reap]
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon import ROOT, Daemon, http, suite_payload  # noqa: E402


def settle(d, want):
    for _ in range(400):
        h = json.loads(http(d.url + "/healthz")[2])
        if sum(h["instances"].values()) == 0 and h["spares"]["ready"] == want:
            return
        time.sleep(0.01)
    raise RuntimeError("daemon did not settle")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--spares", type=int, default=2)
    ap.add_argument("--function", default="hello")
    ap.add_argument("--mode", default="reap")
    a = ap.parse_args()
    fdir = os.path.join(ROOT, "functions", a.function)
    payload = suite_payload(fdir)
    res = {0: ([], [], [], []), a.spares: ([], [], [], [])}
    with Daemon("--spare-workers", "0") as d0, Daemon("--spare-workers", str(a.spares)) as d1:
        ds = {0: d0, a.spares: d1}
        for k, d in ds.items():
            d.deploy("f", fdir, restore=a.mode, keep_alive_ms=0)
            d.invoke("f", payload)  # records the working set (reap)
        for i in range(a.runs):
            order = [0, a.spares] if i % 4 in (0, 3) else [a.spares, 0]
            for k in order:
                settle(ds[k], k)
                ds[k].drop_cache(["f"])  # a cold start: the snapshot's files off the page cache
                st, h, ms = ds[k].invoke("f", payload)
                if st != 200 or not h.get("X-Thaw-Start", "").startswith("cold"):
                    raise RuntimeError("spares %d: %s %s" % (k, st, h.get("X-Thaw-Start")))
                res[k][0].append(ms)
                res[k][1].append(int(h["X-Thaw-Restore-Us"]) / 1000.0)
                ph = dict(kv.split("=") for kv in h.get("X-Thaw-Restore-Phases-Us", "").split(",") if "=" in kv)
                res[k][2].append(int(ph["state"]) / 1000.0)
                res[k][3].append(int(ph["vm"]) / 1000.0)
        taken = json.loads(http(d1.url + "/healthz")[2])["spares"]
    load = open("/proc/loadavg").read().split()[:3]
    m = {k: [statistics.median(x) for x in v] + [statistics.median(s + w for s, w in zip(v[2], v[3]))]
         for k, v in res.items()}
    print("| spare workers | cold start, client (ms) | daemon restore (ms) | state load (ms) | VM + vCPU (ms) "
          "| state + VM (ms) |")
    print("|---|---|---|---|---|---|")
    for k in (0, a.spares):
        print("| %d | %.1f | %.1f | %.2f | %.2f | %.2f |" % (k, m[k][0], m[k][1], m[k][2], m[k][3], m[k][4]))
    print("\n%s, restore=%s, medians of %d cold starts each, ABBA; with spares: %d taken, %d missed; "
          "ratio with/without: client %.2fx, restore %.2fx; load average %s" % (
              a.function, a.mode, a.runs, taken["taken"], taken["missed"], m[a.spares][0] / m[0][0],
              m[a.spares][1] / m[0][1], " ".join(load)))


if __name__ == "__main__":
    main()
