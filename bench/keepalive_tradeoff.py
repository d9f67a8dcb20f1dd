#!/usr/bin/env python3
"""The memory/latency trade-off of keep-alive policies, by simulation over a synthetic
Azure-like trace (thaw trace-gen: a day of FUNCTIONS functions from the published fits).

First measures, in this run, the start latencies to charge: a REAP and a lazy cold start
of FUNCTION (restore start to first response, page cache dropped; medians of RUNS) and
a warm invocation. Then `thaw keepalive-sim` replays every invocation of the trace
against per-function instance pools under: fixed keep-alive of 1, 10 and 20 minutes
(Azure's is 20), the hybrid histogram policy (falling back to 4 hours, as in the paper, or
to 10 minutes), and scale to zero, each with lazy and with
REAP cold starts. Memory per instance is the trace's application average.

usage: bench/keepalive_tradeoff.py [--functions 200] [--seed 1] [--function helloworld] [--runs 5]
                                   [--plot FILE.svg]   (cold-start share against memory, gnuplot)
Prints Markdown (used for docs/experiments.md).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THAW = os.path.join(ROOT, "build", "thaw")


def thaw(*args):
    p = subprocess.run([THAW] + list(args), capture_output=True, text=True, cwd=ROOT, timeout=900)
    if p.returncode != 0:
        raise RuntimeError("thaw %s: %s" % (" ".join(args[:3]), p.stderr.strip()[-300:]))
    return p


def payload_of(fdir):
    pdir = os.path.join(ROOT, fdir, "payloads")
    with open(os.path.join(pdir, sorted(os.listdir(pdir))[0])) as f:
        return f.read().strip()


def plot(path, table):
    """Cold-start share against memory held, one point per policy (from the REAP table)."""
    dat = path + ".dat"
    with open(dat, "w") as f:
        for line in table.splitlines():
            cells = [c.strip() for c in line.strip("|").split("|")]
            if len(cells) == 8 and cells[0] not in ("policy", "---"):
                f.write("%s %s %s\n" % (cells[0], cells[2].rstrip("%"), cells[5]))
    script = ("set terminal svg size 800,480 dynamic background rgb 'white'\nset output '%s'\n"
              "set title 'Keep-alive policies: cold starts against memory held (simulated day)'\n"
              "set xlabel 'instance memory held (GB-s)'\nset ylabel 'cold starts (%% of invocations)'\n"
              "set logscale y\nset grid\nunset key\n"
              "plot '%s' using 3:2 with points pt 7 ps 1.5, '' using 3:2:1 with labels offset 1,1 left\n"
              % (path, dat))
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    os.unlink(dat)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--functions", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--function", default="helloworld")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--plot")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="thaw-bench-ka-", dir=ROOT)
    try:
        fdir = os.path.join("functions", a.function)
        pl = payload_of(fdir)
        snap = os.path.join(tmp, "snap")
        thaw("snapshot", fdir, "-o", snap)

        def cold(mode):
            return statistics.median(
                json.loads(thaw("restore", snap, "--mem", mode, "--payload", pl, "--drop-cache", "--json")
                           .stdout.strip().splitlines()[-1])["cold_start_us"] for _ in range(a.runs)) / 1000.0

        lazy = cold("lazy")
        thaw("restore", snap, "--mem", "reap", "--payload", pl, "--json")  # records the working set
        reap = cold("reap")
        w = json.loads(thaw("run", fdir, "--payload", pl, "--repeat", "11", "--json").stderr.strip().splitlines()[-1])
        warm = statistics.median(w["invocations_us"][1:]) / 1000.0
        trace = os.path.join(tmp, "trace")
        thaw("trace-gen", "-o", trace, "--functions", str(a.functions), "--minutes", "1440", "--seed", str(a.seed))
        policies = ["fixed:60", "fixed:600", "fixed:1200", "hybrid", "hybrid:600", "zero"]
        out = {}
        for name, ms in (("lazy", lazy), ("reap", reap)):
            args = ["keepalive-sim", "--trace", trace, "--cold-ms", "%.3f" % ms, "--warm-ms", "%.3f" % warm]
            for p in policies:
                args += ["--policy", p]
            out[name] = thaw(*args).stdout
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if a.plot:
        plot(a.plot, out["reap"])
    print("Command: `python3 bench/keepalive_tradeoff.py --functions %d --seed %d --function %s --runs %d%s`  " %
          (a.functions, a.seed, a.function, a.runs, " --plot " + a.plot if a.plot else ""))
    print("Start latencies measured in this run for %s (medians of %d): lazy cold %.1f ms, REAP cold %.1f ms, "
          "warm %.2f ms. Simulated over a synthetic day of %d functions (`thaw trace-gen --seed %d`).\n" %
          (a.function, a.runs, lazy, reap, warm, a.functions, a.seed))
    for name in ("lazy", "reap"):
        print("**cold starts %s** (%.1f ms each)\n" % ("lazy" if name == "lazy" else "with REAP",
                                                     lazy if name == "lazy" else reap))
        print(out[name])


if __name__ == "__main__":
    main()
