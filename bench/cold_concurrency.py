#!/usr/bin/env python3
"""Cold starts under concurrency: N simultaneous cold starts (N = 1, 2, 4, 8, 16),
lazy vs reap, of (a) N instances of one function and (b) N different functions.

Default: through the daemon. One `thaw serve` (jailed workers, as deployed) with the
function deployed once as "one" (max_instances 16) and N times as "f0".."f15" (each its
own snapshot files: nothing shared in the page cache), keep_alive_ms 0 so every batch
starts from zero instances. A batch drops every snapshot file from the page cache, then
N client threads post at the same moment (to "one", or one each to f0..fN-1); every
answer must be a cold start of the mode under test (X-Thaw-Start). Latency is the
client's response time (HTTP, queue, restore, first invocation); the daemon's restore
time (X-Thaw-Restore-Us) is reported beside it. Disk MB/s = sectors read by the state
directory's block device during the batch / the batch's wall time. REAP's working sets
are recorded by one invocation of each function first.

--direct: the same batches with `thaw restore --drop-cache` processes instead of the
daemon (what bench/concurrency.py measured before it was folded in here).

--modes: the restore modes compared (default lazy,reap; share too: the working set mapped
from the page cache, one copy for every instance). --serve-args: options for the daemon
(e.g. "--spare-workers 0").

usage: bench/cold_concurrency.py [--function helloworld] [--batches 3] [--levels 1,2,4,8,16]
                                 [--modes lazy,reap] [--serve-args ARGS] [--plot FILE.png] [--direct]
Prints a Markdown section (used for docs/experiments.md); --plot draws p50 latency
against concurrency with gnuplot (PNG or SVG by the file's extension).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon import ROOT, THAW, Daemon, block_device_stat, pct, sectors_read, suite_payload  # noqa: E402

SHAPES = ("one function", "different functions")


def serve_batch(d, names, mode, payload, stat):
    d.wait_no_instances()
    d.drop_cache(set(names))
    results = [None] * len(names)
    barrier = threading.Barrier(len(names))

    def one(i):
        barrier.wait()
        results[i] = d.invoke(names[i], payload)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(names))]
    before = sectors_read(stat)
    t = time.time()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    wall = time.time() - t
    mb = (sectors_read(stat) - before) * 512 / 1e6
    lat, restore = [], []
    for st, h, ms in results:
        if st == 200 and h.get("X-Thaw-Start") == "warm" and names[0] == names[-1]:
            # One function: a request that reached the daemon after another one's instance
            # had answered and gone idle took it (client threads start a few ms apart).
            WARM[0] += 1
            continue
        if st != 200 or h.get("X-Thaw-Start") != "cold-" + mode:
            raise RuntimeError("not a cold-%s answer: %d %s" % (mode, st, h.get("X-Thaw-Start")))
        lat.append(ms)
        restore.append(int(h["X-Thaw-Restore-Us"]) / 1000.0)
        ph = dict(kv.split("=") for kv in h.get("X-Thaw-Restore-Phases-Us", "").split(",") if "=" in kv)
        PHASES.append((len(names), mode, names[0] == names[-1], int(h["X-Thaw-Restore-Us"]) / 1000.0,
                       int(ph.get("state", 0)) / 1000.0, int(ph.get("memory", 0)) / 1000.0,
                       int(ph.get("vm", 0)) / 1000.0, int(h["X-Thaw-Invoke-Us"]) / 1000.0, ms))
    return lat, restore, mb / wall


PHASES = []  # (N, mode, same function, restore, state, memory, vm, invoke, client) per cold start
WARM = [0]   # answers left out: one function's request that found an instance idle


def run_serve(a, levels, fdir, payload):
    results = {}
    n = max(levels)
    with Daemon(*a.serve_args.split()) as d:
        stat = block_device_stat(d.work)
        d.deploy("one", fdir, keep_alive_ms=0, max_instances=max(n, 1), queue_max=64)
        for i in range(n):
            d.deploy("f%d" % i, fdir, keep_alive_ms=0)
        for name in ["one"] + ["f%d" % i for i in range(n)]:
            st, h, _ = d.invoke(name, payload)  # records REAP's working set
            if st != 200:
                raise RuntimeError("first invocation of %s: %d" % (name, st))
        for mode in a.modes:
            for name in ["one"] + ["f%d" % i for i in range(n)]:
                d.patch(name, restore=mode)
            for shape in SHAPES:
                for level in levels:
                    lats, restores, rates = [], [], []
                    for _ in range(a.batches):
                        names = ["one"] * level if shape == SHAPES[0] else ["f%d" % i for i in range(level)]
                        lat, restore, rate = serve_batch(d, names, mode, payload, stat)
                        lats += lat
                        restores += restore
                        rates.append(rate)
                    results[(shape, mode, level)] = (statistics.median(lats), pct(lats, 99), statistics.median(rates),
                                                     statistics.median(restores))
                    print("done %s %s %d" % (shape, mode, level), file=sys.stderr)
    return results


def thaw(*args):
    p = subprocess.run([THAW] + list(args), capture_output=True, text=True, cwd=ROOT, timeout=600)
    if p.returncode != 0:
        raise RuntimeError("thaw %s: %s" % (" ".join(args[:3]), p.stderr.strip()[-300:]))
    return p


def direct_batch(snaps, mode, payload, stat):
    before = sectors_read(stat)
    t = time.time()
    procs = [subprocess.Popen([THAW, "restore", s, "--mem", mode, "--payload", payload, "--drop-cache", "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT) for s in snaps]
    lat = []
    for p in procs:
        out, err = p.communicate(timeout=600)
        if p.returncode != 0:
            raise RuntimeError("restore failed: %s" % err.strip()[-300:])
        j = json.loads(out.strip().splitlines()[-1])
        if mode == "reap" and not j["reap"]["prefetched"]:
            raise RuntimeError("reap restore did not prefetch: %s" % j["reap"])
        lat.append(j["cold_start_us"] / 1000.0)
    wall = time.time() - t
    return lat, lat, (sectors_read(stat) - before) * 512 / 1e6 / wall


def run_direct(a, levels, fdir, payload):
    payload = payload.decode()
    tmp = tempfile.mkdtemp(prefix="thaw-bench-conc-", dir=ROOT)
    stat = block_device_stat(tmp)
    results = {}
    try:
        snaps = []
        for i in range(max(levels)):
            s = os.path.join(tmp, "s%d" % i)
            thaw("snapshot", fdir, "-o", s)
            rec = json.loads(thaw("restore", s, "--mem", "reap", "--payload", payload, "--json").stdout.strip()
                             .splitlines()[-1])
            assert rec["reap"]["recorded"], rec
            snaps.append(s)
        for mode in a.modes:
            for shape in SHAPES:
                for level in levels:
                    lats, rates = [], []
                    for _ in range(a.batches):
                        use = [snaps[0]] * level if shape == SHAPES[0] else snaps[:level]
                        lat, _, rate = direct_batch(use, mode, payload, stat)
                        lats += lat
                        rates.append(rate)
                    results[(shape, mode, level)] = (statistics.median(lats), pct(lats, 99), statistics.median(rates),
                                                     statistics.median(lats))
                    print("done %s %s %d" % (shape, mode, level), file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return results


def plot(path, results, levels, function, direct):
    dat = path + ".dat"
    with open(dat, "w") as f:
        for shape in SHAPES:
            for mode in ("lazy", "reap"):
                f.write("# %s %s: concurrency p50_ms p99_ms\n" % (shape, mode))
                for level in levels:
                    r = results[(shape, mode, level)]
                    f.write("%d %.3f %.3f\n" % (level, r[0], r[1]))
                f.write("\n\n")
    term = "svg size 800,480 dynamic background rgb 'white'" if path.endswith(".svg") else \
        "pngcairo size 800,480 background rgb 'white'"
    script = ("set terminal %s\nset output '%s'\n"
              "set title 'Concurrent cold starts of %s%s (p50)'\nset xlabel 'simultaneous cold starts'\n"
              "set ylabel 'cold start (ms)'\nset logscale x 2\nset key left top\nset grid\n"
              "plot '%s' index 0 w lp lw 2 t 'lazy, one function', '' index 1 w lp lw 2 t 'reap, one function', "
              "'' index 2 w lp lw 2 t 'lazy, different functions', '' index 3 w lp lw 2 t 'reap, different functions'\n"
              % (term, path, function, " (thaw restore)" if direct else " through thaw serve", dat))
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    os.unlink(dat)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--function", default="helloworld")
    ap.add_argument("--batches", type=int, default=3)
    ap.add_argument("--levels", default="1,2,4,8,16")
    ap.add_argument("--plot")
    ap.add_argument("--direct", action="store_true")
    ap.add_argument("--modes", default="lazy,reap")
    ap.add_argument("--serve-args", default="")
    a = ap.parse_args()
    a.modes = a.modes.split(",")
    levels = [int(x) for x in a.levels.split(",")]
    fdir = os.path.join(ROOT, "functions", a.function)
    payload = suite_payload(fdir)
    t0 = time.time()
    load0 = os.getloadavg()[0]
    results = (run_direct if a.direct else run_serve)(a, levels, fdir, payload)
    if a.plot and "lazy" in a.modes and "reap" in a.modes:
        plot(a.plot, results, levels, a.function, a.direct)
    print("Command: `python3 bench/cold_concurrency.py --function %s --batches %d --levels %s --modes %s%s%s%s`  " %
          (a.function, a.batches, a.levels, ",".join(a.modes), " --direct" if a.direct else "",
           " --serve-args '%s'" % a.serve_args if a.serve_args else "", " --plot " + a.plot if a.plot else ""))
    if a.direct:
        print("Cold start (restore start to first response, as `thaw restore --json` reports it) of %s, one "
              "process each, page cache dropped before each batch; " % a.function, end="")
    else:
        print("Cold start of %s through `thaw serve` (client response time: HTTP, restore in a jailed worker, "
              "first invocation), page cache dropped before each batch; every answer checked to be a cold start of "
              "the mode; " % a.function, end="")
    print("%d batches per cell; latency in ms (median and p99 over every cold start of the batches; with few samples "
          "p99 is close to the maximum); disk MB/s is the median over batches of the block device's read rate during "
          "the batch. Run took %.0f s; load average %.1f at the start, %.1f at the end (2 cores shared with other "
          "work).%s\n" % (a.batches, time.time() - t0, load0, os.getloadavg()[0],
                           " %d answers of one function were warm (their request arrived after an instance of the "
                           "batch had answered) and are left out." % WARM[0] if WARM[0] else ""))
    for shape in SHAPES:
        print("**%s** (%s)\n" % (shape, "N instances of one function, from the same snapshot files"
                                 if shape == SHAPES[0] else "N functions, each its own snapshot files, one cold "
                                 "start each"))
        head = "| concurrent |"
        for m in a.modes:
            head += " %s p50 | %s p99 | %s p50 / N=1 | %s disk MB/s |" % (m, m, m, m)
            if not a.direct:
                head += " %s daemon restore p50 |" % m
        print(head)
        print("|---|" + ("---|" * ((4 if a.direct else 5) * len(a.modes))))
        for level in levels:
            row = "| %d |" % level
            for m in a.modes:
                r, one = results[(shape, m, level)], results[(shape, m, levels[0])]
                row += " %.1f | %.1f | %.2fx | %.0f |" % (r[0], r[1], r[0] / one[0], r[2])
                if not a.direct:
                    row += " %.1f |" % r[3]
            print(row)
        print()
    if PHASES:
        print("Where a cold start's time goes through the daemon (medians over every cold start of the cell, ms): "
              "the daemon's restore (worker start or spare taken, restore, jail) and inside it the worker's state "
              "read, memory set-up (with the working set's read and install by the pager) and VM set-up; the first "
              "invocation in the guest; the client's whole response.\n")
        print("| functions | mode | N | restore | state | memory | VM | first invocation | client |")
        print("|---|---|---|---|---|---|---|---|---|")
        for same in (True, False):
            for m in a.modes:
                for level in levels:
                    rows = [p for p in PHASES if p[0] == level and p[1] == m and (p[2] == same or level == 1)]
                    if not rows:
                        continue
                    med = [statistics.median(r[i] for r in rows) for i in range(3, 9)]
                    print("| %s | %s | %d | %s |" % ("one" if same else "different", m, level,
                                                     " | ".join("%.1f" % v for v in med)))
        print()


if __name__ == "__main__":
    main()
