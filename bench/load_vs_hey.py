#!/usr/bin/env python3
"""thaw load against a peer client: the same paced warm workload driven by `thaw load`
(open loop, equidistant arrivals at RATE/s) and by `hey` (Debian; C workers, each
rate-limited to RATE/C per second, keep-alive connections), against the same server,
alternating the two clients ROUNDS times. Compares the latency percentiles each client
measures (its own per-request response times: thaw load's CSV, hey's -o csv).

SERVER is a URL of a running thaw serve whose FUNCTION is warm; without --server the
script starts tests/load/mock_serve.py (a stand-in for the daemon's invoke endpoint) on
a loopback port and measures against it.

usage: bench/load_vs_hey.py [--server URL] [--function hello] [--rate 50] [--seconds 20]
                            [--concurrency 2] [--rounds 3]
Prints Markdown (used for docs/experiments.md).
"""
import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THAW = os.path.join(ROOT, "build", "thaw")
BODY = '{"name": "bench"}'


def pct(v, p):
    v = sorted(v)
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    return v[lo] if lo + 1 >= len(v) else v[lo] + (k - lo) * (v[lo + 1] - v[lo])


def run_thaw(url, fn, rate, seconds, tmp):
    out = os.path.join(tmp, "thaw.csv")
    subprocess.run([THAW, "load", "--server", url, "--function", fn, "--rps", str(rate), "--duration", str(seconds),
                    "--arrival", "equidistant", "--payload", BODY, "--csv", out, "--quiet"], check=True,
                   capture_output=True)
    with open(out) as f:
        rows = list(csv.DictReader(f))
    errors = sum(1 for r in rows if r["error"])
    return [int(r["responseTime"]) / 1000.0 for r in rows if not r["error"]], errors


def run_hey(url, fn, rate, seconds, conc):
    n = int(rate * seconds)
    p = subprocess.run(["hey", "-n", str(n), "-c", str(conc), "-q", "%.3f" % (rate / conc), "-m", "POST",
                        "-T", "application/octet-stream", "-d", BODY, "-o", "csv", "%s/invoke/%s" % (url, fn)],
                       check=True, capture_output=True, text=True)
    lines = p.stdout.strip().splitlines()
    rows = list(csv.DictReader(lines))
    ok = [float(r["response-time"]) * 1000.0 for r in rows if r["status-code"] == "200"]
    return ok, len(rows) - len(ok)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server")
    ap.add_argument("--function", default="hello")
    ap.add_argument("--rate", type=float, default=50)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--delay-ms", type=float, default=0, help="stand-in only: each invocation takes this long")
    a = ap.parse_args()
    mock = None
    url = a.server
    if not url:
        env = dict(os.environ, MOCK_DELAY_MS=str(a.delay_ms))
        mock = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests/load/mock_serve.py"), a.function],
                                stdout=subprocess.PIPE, text=True, env=env)
        url = "http://127.0.0.1:%s" % mock.stdout.readline().strip()
    tmp = tempfile.mkdtemp(prefix="thaw-hey-")
    res = {"thaw load": [], "hey": []}
    errs = {"thaw load": 0, "hey": 0}
    try:
        # Warm up both the server and the function.
        run_thaw(url, a.function, a.rate, 2, tmp)
        for _ in range(a.rounds):
            v, e = run_thaw(url, a.function, a.rate, a.seconds, tmp)
            res["thaw load"].append(v)
            errs["thaw load"] += e
            v, e = run_hey(url, a.function, a.rate, a.seconds, a.concurrency)
            res["hey"].append(v)
            errs["hey"] += e
    finally:
        if mock:
            mock.kill()
            mock.wait()
    print("Command: `python3 bench/load_vs_hey.py %s--function %s --rate %g --seconds %g --concurrency %d "
          "--rounds %d%s`  " % ("--server URL " if a.server else "", a.function, a.rate, a.seconds, a.concurrency,
                                a.rounds, " --delay-ms %g" % a.delay_ms if a.delay_ms else ""))
    print("Server: %s%s. %g requests/s for %g s per round, %d rounds alternating the clients; "
          "percentiles in ms are medians over the rounds of each round's percentile.\n" %
          (a.server and "thaw serve" or "tests/load/mock_serve.py (stand-in for thaw serve's invoke endpoint)",
           ", each invocation taking %g ms" % a.delay_ms if a.delay_ms else "", a.rate, a.seconds, a.rounds))
    print("| client | requests | errors | p50 | p90 | p99 |")
    print("|---|---|---|---|---|---|")
    summary = {}
    for name in ("thaw load", "hey"):
        rounds = res[name]
        p = [statistics.median(pct(r, q) for r in rounds) for q in (50, 90, 99)]
        summary[name] = p
        print("| %s | %d | %d | %.3f | %.3f | %.3f |" % (name, sum(len(r) for r in rounds), errs[name], *p))
    t, h = summary["thaw load"], summary["hey"]
    print("\nthaw load / hey: p50 %.2f, p90 %.2f, p99 %.2f." % (t[0] / h[0], t[1] / h[1], t[2] / h[2]))


if __name__ == "__main__":
    main()
