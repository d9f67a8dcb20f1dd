#!/usr/bin/env python3
"""thaw load against a peer client: the same paced warm workload driven by `thaw load`
(open loop, equidistant arrivals at RATE/s) and by `hey` (Debian; C workers, each
rate-limited to RATE/C per second, keep-alive connections), against the same server,
alternating the two clients ROUNDS times. Compares the latency percentiles each client
measures (its own per-request response times: thaw load's CSV, hey's -o csv).

By default the script starts its own `thaw serve` (bench/daemon.py) and deploys
functions/FUNCTION with min_instances = max_instances = concurrency + 2, so every
request finds a warm instance (each CSV row's start kind is checked; hey cannot see
it). --server URL uses a running daemon whose FUNCTION is warm; --mock starts
tests/load/mock_serve.py (a stand-in for the daemon's invoke endpoint) instead.

usage: bench/load_vs_hey.py [--server URL | --mock [--delay-ms D]] [--function hello] [--payload JSON] [--rate 50]
                            [--seconds 20] [--concurrency 2] [--rounds 3]
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon import ROOT, THAW, Daemon, pct  # noqa: E402

BODY = '{"name": "bench"}'


def run_thaw(url, fn, rate, seconds, tmp, body):
    out = os.path.join(tmp, "thaw.csv")
    subprocess.run([THAW, "load", "--server", url, "--function", fn, "--rps", str(rate), "--duration", str(seconds),
                    "--arrival", "equidistant", "--payload", body, "--csv", out, "--quiet"], check=True,
                   capture_output=True)
    with open(out) as f:
        rows = list(csv.DictReader(f))
    errors = sum(1 for r in rows if r["error"])
    not_warm = sum(1 for r in rows if not r["error"] and r["startKind"] not in ("warm", "unknown"))
    # The daemon's own time for each request (queue + invocation, from its X-Thaw-* headers).
    server = [(int(r["queueTime"] or 0) + int(r["invocationTime"] or 0)) / 1000.0 for r in rows
              if not r["error"] and r["invocationTime"]]
    return [int(r["responseTime"]) / 1000.0 for r in rows if not r["error"]], errors, not_warm, server


def run_hey(url, fn, rate, seconds, conc, body):
    n = int(rate * seconds)
    p = subprocess.run(["hey", "-n", str(n), "-c", str(conc), "-q", "%.3f" % (rate / conc), "-m", "POST",
                        "-T", "application/octet-stream", "-d", body, "-o", "csv", "%s/invoke/%s" % (url, fn)],
                       check=True, capture_output=True, text=True)
    lines = p.stdout.strip().splitlines()
    rows = list(csv.DictReader(lines))
    ok = [float(r["response-time"]) * 1000.0 for r in rows if r["status-code"] == "200"]
    return ok, len(rows) - len(ok)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--server")
    ap.add_argument("--mock", action="store_true")
    ap.add_argument("--function", default="hello")
    ap.add_argument("--payload", default=BODY, help="the request body (JSON)")
    ap.add_argument("--rate", type=float, default=50)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--concurrency", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--delay-ms", type=float, default=0, help="stand-in only: each invocation takes this long")
    a = ap.parse_args()
    mock = daemon = None
    url = a.server
    if not url and not a.mock:
        daemon = Daemon()
        n = a.concurrency + 2
        daemon.deploy(a.function, os.path.join(ROOT, "functions", a.function), min_instances=n, max_instances=n,
                      keep_alive_ms=600000)
        url = daemon.url
        for _ in range(600):  # the pre-warmed instances
            if daemon.function(a.function)["instances"]["idle"] >= n:
                break
            time.sleep(0.1)
    elif not url:
        env = dict(os.environ, MOCK_DELAY_MS=str(a.delay_ms))
        mock = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests/load/mock_serve.py"), a.function],
                                stdout=subprocess.PIPE, text=True, env=env)
        url = "http://127.0.0.1:%s" % mock.stdout.readline().strip()
    tmp = tempfile.mkdtemp(prefix="thaw-hey-")
    res = {"thaw load": [], "hey": [], "server": []}
    errs = {"thaw load": 0, "hey": 0}
    not_warm = 0
    load0 = os.getloadavg()[0]
    try:
        # Warm up both the server and the function.
        run_thaw(url, a.function, a.rate, 2, tmp, a.payload)
        for _ in range(a.rounds):
            v, e, nw, srv = run_thaw(url, a.function, a.rate, a.seconds, tmp, a.payload)
            res["thaw load"].append(v)
            if srv:
                res["server"].append(srv)
            errs["thaw load"] += e
            not_warm += nw
            v, e = run_hey(url, a.function, a.rate, a.seconds, a.concurrency, a.payload)
            res["hey"].append(v)
            errs["hey"] += e
    finally:
        if mock:
            mock.kill()
            mock.wait()
        if daemon:
            daemon.close()
    print("Command: `python3 bench/load_vs_hey.py %s--function %s --rate %g --seconds %g --concurrency %d "
          "--rounds %d%s%s`  " % ("--server URL " if a.server else "--mock " if a.mock else "", a.function, a.rate,
                                  a.seconds, a.concurrency, a.rounds, " --delay-ms %g" % a.delay_ms if a.delay_ms else "",
                                  " --payload '%s'" % a.payload if a.payload != BODY else ""))
    server = ("a running thaw serve" if a.server else
              "tests/load/mock_serve.py (stand-in for thaw serve's invoke endpoint)" if a.mock else
              "thaw serve started by the script (jailed workers), functions/%s deployed with %d pre-warmed instances; "
              "%d of thaw load's requests were not warm" % (a.function, a.concurrency + 2, not_warm))
    print("Server: %s%s. %g requests/s for %g s per round, %d rounds alternating the clients; "
          "percentiles in ms are medians over the rounds of each round's percentile. Load average %.1f at the "
          "start, %.1f at the end (2 cores shared with other work).\n" %
          (server, ", each invocation taking %g ms" % a.delay_ms if a.delay_ms else "", a.rate, a.seconds, a.rounds,
           load0, os.getloadavg()[0]))
    print("| client | requests | errors | p50 | p90 | p99 |")
    print("|---|---|---|---|---|---|")
    summary = {}
    for name in ("thaw load", "hey"):
        rounds = res[name]
        p = [statistics.median(pct(r, q) for r in rounds) for q in (50, 90, 99)]
        summary[name] = p
        print("| %s | %d | %d | %.3f | %.3f | %.3f |" % (name, sum(len(r) for r in rounds), errs[name], *p))
    t, h = summary["thaw load"], summary["hey"]
    if res["server"]:
        p = [statistics.median(pct(r, q) for r in res["server"]) for q in (50, 90, 99)]
        print("| (the daemon's own time for thaw load's requests: queue + invocation) | | | %.3f | %.3f | %.3f |" % tuple(p))
    print("\nthaw load / hey: p50 %.2f, p90 %.2f, p99 %.2f." % (t[0] / h[0], t[1] / h[1], t[2] / h[2]))


if __name__ == "__main__":
    main()
