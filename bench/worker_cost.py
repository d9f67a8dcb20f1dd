#!/usr/bin/env python3
"""What a worker process and its jail cost on a cold start: `thaw restore --worker` vs
in process, and `thaw run --worker` vs in process, in one run.

For each function and memory mode: one snapshot (two copies, so that REAP records once
in each), then RUNS cold starts of each variant, interleaved (in process, worker, in
process, ...) so that drift on this noisy host hits both alike. Each restore drops the
snapshot's files from the page cache first (--drop-cache). Cold start = the caller's
restore call to its first response (restore_us + first_response_us); with --worker
restore_us is measured by the caller and includes starting the worker (clone into new
namespaces, exec), its restore, and entering the jail. Boot: boot_to_ready_us + first response.
Prints a Markdown report with medians and the worker/in-process ratio and difference.

usage: bench/worker_cost.py [--runs N] [--modes uffd,reap] [function-dir ...]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THAW = os.path.join(ROOT, "build", "thaw")


def payload_of(fdir):
    pdir = os.path.join(fdir, "payloads")
    if not os.path.isdir(pdir):
        return '{"name": "bench"}'
    with open(os.path.join(pdir, sorted(os.listdir(pdir))[0])) as f:
        return f.read().strip()


def thaw(*args):
    p = subprocess.run([THAW] + list(args), capture_output=True, text=True, cwd=ROOT, timeout=600)
    if p.returncode != 0:
        raise RuntimeError("thaw %s: %s" % (" ".join(args[:4]), p.stderr.strip()[-300:]))
    return json.loads(p.stdout.strip().splitlines()[-1])


def cold_restore(snap, mode, payload, worker):
    extra = ["--worker"] if worker else []
    st = thaw("restore", snap, "--mem", mode, "--payload", payload, "--drop-cache", "--json", *extra)
    assert st["in_worker"] == worker
    return st["restore_us"] + st["first_response_us"]


def cold_boot(fdir, payload, worker):
    extra = ["--worker"] if worker else []
    st = thaw("run", fdir, "--payload", payload, "--json", *extra)
    assert st["in_worker"] == worker
    return st["boot_to_ready_us"] + st["first_response_us"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--modes", default="uffd,reap")
    ap.add_argument("functions", nargs="*", default=["functions/hello", "functions/helloworld"])
    a = ap.parse_args()
    modes = a.modes.split(",")
    tmp = tempfile.mkdtemp(prefix="thaw-worker-bench-")
    rows = []
    try:
        for fdir in a.functions:
            name = os.path.basename(fdir.rstrip("/"))
            payload = payload_of(fdir)
            base = os.path.join(tmp, name)
            subprocess.run([THAW, "snapshot", fdir, "-o", base + "-local"], check=True, capture_output=True, cwd=ROOT)
            shutil.copytree(base + "-local", base + "-worker")
            for mode in modes:
                if mode == "reap":  # record once per copy; the counted runs prefetch
                    cold_restore(base + "-local", mode, payload, False)
                    cold_restore(base + "-worker", mode, payload, True)
                local, worker = [], []
                for _ in range(a.runs):
                    local.append(cold_restore(base + "-local", mode, payload, False))
                    worker.append(cold_restore(base + "-worker", mode, payload, True))
                rows.append((name, "restore --mem " + mode, local, worker))
            local, worker = [], []
            for _ in range(a.runs):
                local.append(cold_boot(fdir, payload, False))
                worker.append(cold_boot(fdir, payload, True))
            rows.append((name, "run (boot)", local, worker))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("| function | start | in process (ms) | --worker (ms) | ratio | worker + jail cost (ms) |")
    print("|---|---|---|---|---|---|")
    for name, what, local, worker in rows:
        l, w = statistics.median(local) / 1e3, statistics.median(worker) / 1e3
        print("| %s | %s | %.2f | %.2f | %.2fx | %+.2f |" % (name, what, l, w, w / l, w - l))
    print("\nmedians of %d cold starts each, interleaved; `%s`" % (a.runs, " ".join(["bench/worker_cost.py"] + sys.argv[1:])))


if __name__ == "__main__":
    main()
