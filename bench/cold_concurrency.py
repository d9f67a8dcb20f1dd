#!/usr/bin/env python3
"""Cold starts under concurrency: N simultaneous cold starts (N = 1, 2, 4, 8, 16),
lazy vs reap, of (a) N instances of one function restored from one snapshot and (b) N
different snapshots (distinct files, so nothing is shared in the page cache).

Each cold start is one `thaw restore --drop-cache --json` process; a batch starts the
N processes together after dropping every snapshot file from the page cache, and
waits for all. Latency = the restore's cold_start_us (restore start to first
response). Disk MB/s = sectors read by the snapshot directory's block device during
the batch / the batch's wall time (the machine is shared: other work adds to it).
For reap, each snapshot's working set is recorded once beforehand.

usage: bench/cold_concurrency.py [--function helloworld] [--batches 3] [--levels 1,2,4,8,16] [--plot FILE.svg]
Prints a Markdown section (used for docs/experiments.md); --plot draws p50 latency
against concurrency with gnuplot.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THAW = os.path.join(ROOT, "build", "thaw")


def payload_of(fdir):
    pdir = os.path.join(fdir, "payloads")
    names = sorted(os.listdir(pdir))
    with open(os.path.join(pdir, names[0])) as f:
        return f.read().strip()


def thaw(*args):
    p = subprocess.run([THAW] + list(args), capture_output=True, text=True, cwd=ROOT, timeout=600)
    if p.returncode != 0:
        raise RuntimeError("thaw %s: %s" % (" ".join(args[:3]), p.stderr.strip()[-300:]))
    return p


def block_device_of(path):
    """The /sys/block/<dev>/stat file of the disk holding path (partitions resolved)."""
    st = os.stat(path)
    major, minor = os.major(st.st_dev), os.minor(st.st_dev)
    sysdev = os.path.realpath("/sys/dev/block/%d:%d" % (major, minor))
    stat = os.path.join(sysdev, "stat")
    if not os.path.exists(os.path.join(sysdev, "device")) and os.path.exists(os.path.join(sysdev, "..", "stat")):
        stat = os.path.join(sysdev, "..", "stat")
    return stat if os.path.exists(stat) else None


def sectors_read(stat):
    if not stat:
        return 0
    with open(stat) as f:
        return int(f.read().split()[2])


def batch(snaps, mode, payload, stat):
    procs = []
    before = sectors_read(stat)
    t = time.time()
    for s in snaps:
        procs.append(subprocess.Popen([THAW, "restore", s, "--mem", mode, "--payload", payload, "--drop-cache",
                                       "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                      cwd=ROOT))
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
    mb = (sectors_read(stat) - before) * 512 / 1e6
    return lat, mb / wall


def pct(v, p):
    v = sorted(v)
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    return v[lo] if lo + 1 >= len(v) else v[lo] + (k - lo) * (v[lo + 1] - v[lo])


def plot(path, results, levels, function):
    dat = path + ".dat"
    with open(dat, "w") as f:
        for shape in ("one snapshot", "distinct snapshots"):
            for mode in ("lazy", "reap"):
                f.write("# %s %s: concurrency p50_ms p99_ms\n" % (shape, mode))
                for level in levels:
                    r = results[(shape, mode, level)]
                    f.write("%d %.3f %.3f\n" % (level, r[0], r[1]))
                f.write("\n\n")
    script = ("set terminal svg size 800,480 dynamic background rgb 'white'\nset output '%s'\n"
              "set title 'Concurrent cold starts of %s (p50)'\nset xlabel 'simultaneous cold starts'\n"
              "set ylabel 'cold start (ms)'\nset logscale x 2\nset key left top\nset grid\n"
              "plot '%s' index 0 w lp lw 2 t 'lazy, one snapshot', '' index 1 w lp lw 2 t 'reap, one snapshot', "
              "'' index 2 w lp lw 2 t 'lazy, distinct snapshots', '' index 3 w lp lw 2 t 'reap, distinct snapshots'\n"
              % (path, function, dat))
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    os.unlink(dat)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--function", default="helloworld")
    ap.add_argument("--batches", type=int, default=3)
    ap.add_argument("--levels", default="1,2,4,8,16")
    ap.add_argument("--plot")
    a = ap.parse_args()
    levels = [int(x) for x in a.levels.split(",")]
    fdir = os.path.join("functions", a.function)
    pl = payload_of(os.path.join(ROOT, fdir))
    tmp = tempfile.mkdtemp(prefix="thaw-bench-conc-", dir=ROOT)
    stat = block_device_of(tmp)
    results = {}
    try:
        n = max(levels)
        snaps = []
        for i in range(n):
            s = os.path.join(tmp, "s%d" % i)
            thaw("snapshot", fdir, "-o", s)
            rec = json.loads(thaw("restore", s, "--mem", "reap", "--payload", pl, "--json").stdout.strip().splitlines()[-1])
            assert rec["reap"]["recorded"], rec
            snaps.append(s)
        for shape in ("one snapshot", "distinct snapshots"):
            for mode in ("lazy", "reap"):
                for level in levels:
                    lats, rates = [], []
                    for _ in range(a.batches):
                        use = [snaps[0]] * level if shape == "one snapshot" else snaps[:level]
                        lat, rate = batch(use, mode, pl, stat)
                        lats += lat
                        rates.append(rate)
                    results[(shape, mode, level)] = (statistics.median(lats), pct(lats, 99), statistics.median(rates),
                                                     len(lats))
                    print("done %s %s %d" % (shape, mode, level), file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    if a.plot:
        plot(a.plot, results, levels, a.function)
    print("Command: `python3 bench/cold_concurrency.py --function %s --batches %d --levels %s%s`  " %
          (a.function, a.batches, a.levels, " --plot " + a.plot if a.plot else ""))
    print("Cold start (restore start to first response) of %s, page cache dropped before each batch; "
          "%d batches per cell; latency in ms (median and p99 over every restore of the batches; with few "
          "samples p99 is close to the maximum); disk MB/s is the median over batches of the block device's "
          "read rate during the batch.\n" % (a.function, a.batches))
    for shape in ("one snapshot", "distinct snapshots"):
        print("**%s** (%s)\n" % (shape, "N instances restored from the same snapshot files" if shape == "one snapshot"
                                 else "N different snapshot directories, no file shared"))
        print("| concurrent | lazy p50 | lazy p99 | lazy disk MB/s | reap p50 | reap p99 | reap disk MB/s | lazy/reap (p50) |")
        print("|---|---|---|---|---|---|---|---|")
        for level in levels:
            l, r = results[(shape, "lazy", level)], results[(shape, "reap", level)]
            print("| %d | %.1f | %.1f | %.0f | %.1f | %.1f | %.0f | %.2fx |" % (level, l[0], l[1], l[2], r[0], r[1], r[2],
                                                                             l[0] / r[0]))
        print()


if __name__ == "__main__":
    main()
