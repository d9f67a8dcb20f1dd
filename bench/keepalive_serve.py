#!/usr/bin/env python3
"""The memory/latency trade-off of keep-alive policies on the real daemon: a
time-compressed synthetic Azure-like trace replayed with `thaw load --trace` against
`thaw serve`, once per policy.

The trace: `thaw trace-gen` (the published distributions of Shahrad et al., ATC'20) for
MINUTES minutes; FUNCTIONS trace functions are picked from it, spread over the range of
invocation counts (the busiest ones are left out so two shared cores keep up: at most
CAP invocations in any trace minute), and each is deployed as its own thaw function,
t0, t1, ..., cycling through the SUITE's function directories (so each has its own
snapshot, pool and policy state). One trace minute lasts MINUTE_SECONDS seconds.

Policies (every function, restore=reap): fixed keep-alive of 1, 5 and 10 trace minutes;
hybrid (histogram bins of one trace minute, falling back to 10 trace minutes while a
function's histogram is not representative; each run starts with an empty histogram);
and scale to zero with REAP (keep_alive_ms 0). Before each run every instance is torn
down. Reported per policy: the cold-start share and the response-time p50/p99 from
thaw load's CSV, and instance-memory-seconds (resident memory x time, idle and busy)
from the daemon's thaw_instance_memory_byte_seconds_total over the run.

usage: bench/keepalive_serve.py [--functions 12] [--minutes 20] [--minute-seconds 3] [--seed 1]
                                [--cap 20] [--suite hello,helloworld,...] [--plot DIR]
Prints Markdown (used for docs/experiments.md); --plot DIR draws the trade-off
(keepalive_serve.png) and thaw plot's latency CDFs of the runs into DIR.
"""
import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon import ROOT, THAW, Daemon, pct  # noqa: E402

SUITE = "hello,helloworld,json_serdes,float_operation,aes_c,matmul_c"


def pick_functions(inv_csv, minutes, k, cap):
    with open(inv_csv) as f:
        rows = list(csv.reader(f))
    cand = []
    for r in rows[1:]:
        counts = [int(x) for x in r[4:4 + minutes]]
        if sum(counts) >= 2 and max(counts) <= cap:
            cand.append((sum(counts), r[2]))
    cand.sort()
    if len(cand) < k:
        raise RuntimeError("only %d trace functions fit (want %d): raise --cap or the trace's size" % (len(cand), k))
    step = (len(cand) - 1) / float(k - 1) if k > 1 else 0
    picked = [cand[round(i * step)] for i in range(k)]
    return picked


def memory_seconds(m):
    idle = sum(v for (n, l), v in m.items() if n == "thaw_instance_memory_byte_seconds_total" and 'state="idle"' in l)
    busy = sum(v for (n, l), v in m.items() if n == "thaw_instance_memory_byte_seconds_total" and 'state="busy"' in l)
    return idle, busy


def plot_tradeoff(png, rows):
    """Cold-start share against instance memory, one labelled point per policy."""
    dat = png + ".dat"
    with open(dat, "w") as f:
        for r in rows:
            f.write("\"%s\" %.3f %.2f\n" % (r["policy"], r["mem_mb_s"], 100.0 * r["cold_share"]))
    script = ("set terminal pngcairo size 800,480 background rgb 'white'\nset output '%s'\n"
              "set title 'Keep-alive policies on thaw serve: cold starts against instance memory'\n"
              "set xlabel 'instance memory (MB x s, resident)'\nset ylabel 'cold starts (%% of invocations)'\n"
              "set grid\nunset key\nset offsets graph 0.05, graph 0.2, graph 0.1, graph 0.1\n"
              "plot '%s' using 2:3 with points pt 7 ps 1.5, '' using 2:3:1 with labels offset 1,1 left\n" % (png, dat))
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    os.unlink(dat)


def plot(dirname, rows, csvs):
    os.makedirs(dirname, exist_ok=True)
    png = os.path.join(dirname, "keepalive_serve.png")
    plot_tradeoff(png, rows)
    subprocess.run([THAW, "plot"] + csvs + ["-o", os.path.join(dirname, "keepalive_serve")], check=True,
                   capture_output=True)
    for f in os.listdir(os.path.join(dirname, "keepalive_serve")):  # keep the figures only
        if f.endswith((".dat", ".gp")):
            os.unlink(os.path.join(dirname, "keepalive_serve", f))
    return png


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--functions", type=int, default=12)
    ap.add_argument("--minutes", type=int, default=20)
    ap.add_argument("--minute-seconds", type=float, default=3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cap", type=int, default=20)
    ap.add_argument("--suite", default=SUITE)
    ap.add_argument("--plot")
    a = ap.parse_args()
    minute_ms = int(a.minute_seconds * 1000)
    policies = [("fixed 1 min", dict(keep_alive_policy="fixed", keep_alive_ms=minute_ms)),
                ("fixed 5 min", dict(keep_alive_policy="fixed", keep_alive_ms=5 * minute_ms)),
                ("fixed 10 min", dict(keep_alive_policy="fixed", keep_alive_ms=10 * minute_ms)),
                ("hybrid", dict(keep_alive_policy="hybrid", keep_alive_ms=10 * minute_ms, hybrid_bin_ms=minute_ms)),
                ("zero (REAP)", dict(keep_alive_policy="fixed", keep_alive_ms=0))]
    suite = a.suite.split(",")
    tmp = tempfile.mkdtemp(prefix="thaw-bench-kas-", dir=ROOT)
    rows, csvs = [], []
    t0 = time.time()
    load0 = os.getloadavg()[0]
    try:
        trace = os.path.join(tmp, "trace")
        subprocess.run([THAW, "trace-gen", "-o", trace, "--functions", "400", "--minutes", str(a.minutes),
                        "--seed", str(a.seed)], check=True, capture_output=True)
        picked = pick_functions(os.path.join(trace, "invocations_per_function_md.anon.d01.csv"), a.minutes,
                                a.functions, a.cap)
        total = sum(c for c, _ in picked)
        mapping = os.path.join(tmp, "map.csv")
        with Daemon() as d:
            with open(mapping, "w") as m:
                for i, (count, h) in enumerate(picked):
                    fn = suite[i % len(suite)]
                    fdir = os.path.join(ROOT, "functions", fn)
                    pdir = os.path.join(fdir, "payloads")
                    payload = os.path.join(pdir, sorted(os.listdir(pdir))[0])
                    d.deploy("t%d" % i, fdir, max_instances=8, keep_alive_ms=0)
                    m.write("%s,t%d,%s\n" % (h, i, payload))
                    print("deployed t%d (%s, %d invocations)" % (i, fn, count), file=sys.stderr)
            names = ["t%d" % i for i in range(len(picked))]
            for name, cfg in policies:
                for n in names:
                    d.patch(n, keep_alive_policy="fixed", keep_alive_ms=0)
                d.wait_no_instances(timeout=120)
                for n in names:
                    d.patch(n, **cfg)
                before = memory_seconds(d.metrics())
                out = os.path.join(tmp, name.replace(" ", "_").replace("(", "").replace(")", "") + ".csv")
                t = time.time()
                p = subprocess.run([THAW, "load", "--server", d.url, "--trace", trace, "--mapping", mapping,
                                    "--minute-seconds", str(a.minute_seconds), "--minutes", str(a.minutes),
                                    "--csv", out, "--quiet", "--phase", name.replace(" ", "_")],
                                   capture_output=True, text=True)
                wall = time.time() - t
                after = memory_seconds(d.metrics())
                if p.returncode != 0:
                    raise RuntimeError("thaw load: %s" % p.stderr[-300:])
                with open(out) as f:
                    recs = list(csv.DictReader(f))
                ok = [r for r in recs if not r["error"]]
                lat = [int(r["responseTime"]) / 1000.0 for r in ok]
                cold = sum(1 for r in ok if r["startKind"].startswith("cold"))
                idle, busy = after[0] - before[0], after[1] - before[1]
                rows.append(dict(policy=name, requests=len(recs), errors=len(recs) - len(ok),
                                 cold=cold, cold_share=cold / float(len(ok) or 1), p50=statistics.median(lat),
                                 p99=pct(lat, 99), cold_p50=statistics.median(
                                     [int(r["responseTime"]) / 1000.0 for r in ok if r["startKind"] != "warm"] or
                                     [float("nan")]),
                                 mem_mb_s=(idle + busy) / 1e6, idle_share=idle / (idle + busy) if idle + busy else 0,
                                 wall=wall))
                csvs.append(out)
                print("done %s" % name, file=sys.stderr)
            png = plot(a.plot, rows, csvs) if a.plot else None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("Command: `python3 bench/keepalive_serve.py --functions %d --minutes %d --minute-seconds %g --seed %d "
          "--cap %d --suite %s%s`  " % (a.functions, a.minutes, a.minute_seconds, a.seed, a.cap, a.suite,
                                         " --plot " + a.plot if a.plot else ""))
    print("%d trace functions of a synthetic trace (`thaw trace-gen --functions 400 --minutes %d --seed %d`), "
          "%d invocations in %d trace minutes, one trace minute per %g s (a run lasts %.0f s), each trace function "
          "deployed as its own thaw function from %s, restore=reap, jailed workers. Page cache warm (snapshots "
          "stay cached between runs). Memory is the instances' resident guest memory x time over the run. The "
          "experiment took %.0f s; load average %.1f at the start, %.1f at the end (2 cores shared with other "
          "work).\n" % (len(picked), a.minutes, a.seed, total, a.minutes, a.minute_seconds,
                       a.minutes * a.minute_seconds, a.suite.replace(",", ", "), time.time() - t0, load0,
                       os.getloadavg()[0]))
    print("| policy | requests | errors | cold starts | cold share | p50 ms | p99 ms | cold p50 ms | memory MB-s | "
          "idle share | memory vs fixed 10 min |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    ref = next(r for r in rows if r["policy"] == "fixed 10 min")["mem_mb_s"]
    for r in rows:
        print("| %s | %d | %d | %d | %.1f%% | %.1f | %.1f | %.1f | %.1f | %.0f%% | %.2fx |" % (
            r["policy"], r["requests"], r["errors"], r["cold"], 100 * r["cold_share"], r["p50"], r["p99"],
            r["cold_p50"], r["mem_mb_s"], 100 * r["idle_share"], r["mem_mb_s"] / ref if ref else 0))
    if png:
        print("\n![cold-start share against instance memory](%s)" % os.path.relpath(png, os.path.join(ROOT, "docs")))


if __name__ == "__main__":
    main()
