#!/usr/bin/env python3
"""The daemon's costs: cold starts through the HTTP API per restore mode against the
same restore done by `thaw restore` / `thaw run`, in process and with --worker (the
daemon runs every instance in a jailed worker, so the --worker column is the like for
like one: the difference is the daemon's overhead), and warm throughput and latency
with `hey` at concurrency 1, 2, 4, 8.

    python3 bench/serve.py [--function functions/hello] [--runs 20] [--hey-seconds 10]

Starts its own `thaw serve` on 127.0.0.1 (a free port, a temporary state directory),
prints a Markdown report (medians in ms) for docs/benchmarks.md. The page cache is left
warm in both columns: this measures the daemon, not the disk.
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THAW = os.path.join(ROOT, "build", "thaw")
PAYLOAD = b'{"name": "bench"}'


def http(url, method="GET", data=None, timeout=60):
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def cli_json(args):
    """Runs a thaw CLI command with --json; returns the object that has the timings."""
    p = subprocess.run([THAW] + args + ["--json"], capture_output=True, text=True, timeout=120)
    for line in (p.stdout + "\n" + p.stderr).splitlines():
        line = line.strip()
        if line.startswith("{") and ("cold_start_us" in line or "boot_to_ready_us" in line):
            return json.loads(line)
    sys.exit("bench/serve.py: no JSON timings from thaw %s: %s" % (" ".join(args), p.stderr[-300:]))


def cli_cold_us(obj):
    if "cold_start_us" in obj:
        return obj["cold_start_us"]
    first = obj.get("first_response_us")
    if first is None and obj.get("invocations_us"):
        first = obj["invocations_us"][0]
    return obj["boot_to_ready_us"] + (first or 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--function", default=os.path.join(ROOT, "functions", "hello"))
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--hey-seconds", type=int, default=10)
    args = ap.parse_args()
    name = "bench"
    work = tempfile.mkdtemp(prefix="thaw-bench-serve-")
    ready = os.path.join(work, "url")
    daemon = subprocess.Popen([THAW, "serve", "--listen", "127.0.0.1:0", "--state-dir",
                               os.path.join(work, "state"), "--ready-file", ready],
                              stderr=open(os.path.join(work, "daemon.log"), "w"))
    try:
        for _ in range(200):
            if os.path.exists(ready):
                break
            time.sleep(0.05)
        url = open(ready).read().strip()
        tar = os.path.join(work, "fn.tar")
        subprocess.run(["tar", "-C", args.function, "-cf", tar, "."], check=True)
        st, _, body = http(url + "/functions/%s?keep_alive_ms=0&max_instances=1" % name, "PUT",
                           open(tar, "rb").read(), timeout=600)
        if st not in (200, 201):
            sys.exit("deploy failed: %d %s" % (st, body[:300]))
        vdir = os.path.join(work, "state", "functions", name)
        vdir = os.path.join(vdir, open(os.path.join(vdir, "current")).read().strip())
        snap, bundle = os.path.join(vdir, "snapshot"), os.path.join(vdir, "bundle")
        # A copy of the snapshot for the CLI, so the two never share REAP files (cp keeps
        # the memory file sparse; a dense copy would make copy mode read every hole).
        cli_snap = os.path.join(work, "cli-snap")
        subprocess.run(["cp", "-a", "--sparse=always", snap, cli_snap], check=True)
        for f in os.listdir(cli_snap):
            if f.startswith("ws."):
                os.unlink(os.path.join(cli_snap, f))

        rows = []
        for mode in ("reap", "lazy", "copy", "boot"):
            http(url + "/functions/" + name, "PATCH", json.dumps({"restore": mode}).encode())
            http_ms, daemon_ms = [], []
            # REAP: the first cold start records; measure the prefetching ones after it.
            warmup = 1 if mode == "reap" else 0
            for i in range(args.runs + warmup):
                time.sleep(0.15)  # keep_alive_ms=0: the reaper has torn the instance down
                t0 = time.perf_counter()
                st, hdr, _ = http(url + "/invoke/" + name, "POST", PAYLOAD)
                t = (time.perf_counter() - t0) * 1e3
                if st != 200 or hdr.get("X-Thaw-Start") != "cold-" + mode:
                    sys.exit("invoke %s: %d %s" % (mode, st, hdr.get("X-Thaw-Start")))
                if i >= warmup:
                    http_ms.append(t)
                    daemon_ms.append((int(hdr["X-Thaw-Restore-Us"]) + int(hdr["X-Thaw-Invoke-Us"])) / 1e3)
            cli = {}
            for worker in (False, True):
                cli_ms = []
                extra = ["--worker"] if worker else []
                for i in range(args.runs + warmup):
                    if mode == "boot":
                        obj = cli_json(["run", bundle, "--payload", PAYLOAD.decode()] + extra)
                    else:
                        obj = cli_json(["restore", cli_snap, "--mem", mode, "--payload", PAYLOAD.decode()] + extra)
                    if i >= warmup:
                        cli_ms.append(cli_cold_us(obj) / 1e3)
                cli[worker] = median(cli_ms)
            rows.append((mode, median(http_ms), median(daemon_ms), cli[False], cli[True]))

        print("### Cold start through the daemon vs the CLI (`%s`, medians of %d)\n"
              % (os.path.basename(args.function.rstrip("/")), args.runs))
        print("| restore | HTTP round trip | daemon: restore + invoke | CLI in process | CLI `--worker` "
              "| HTTP - CLI `--worker` (daemon overhead) |")
        print("|---|---|---|---|---|---|")
        for mode, h, d, c, cw in rows:
            print("| %s | %.2f ms | %.2f ms | %.2f ms | %.2f ms | %+.2f ms (%.2fx) |" % (mode, h, d, c, cw, h - cw, h / cw))
        print()

        # Warm: enough instances for the concurrency, never torn down.
        http(url + "/functions/" + name, "PATCH",
             json.dumps({"restore": "reap", "keep_alive_ms": 600000, "max_instances": 8}).encode())
        print("### Warm invocations with hey (`%s`, %d s each)\n"
              % (os.path.basename(args.function.rstrip("/")), args.hey_seconds))
        print("| concurrency | requests/s | p50 | p99 | non-200 |")
        print("|---|---|---|---|---|")
        for c in (1, 2, 4, 8):
            subprocess.run(["hey", "-n", str(4 * c), "-c", str(c), "-m", "POST", "-d", PAYLOAD.decode(),
                            url + "/invoke/" + name], capture_output=True)
            out = subprocess.run(["hey", "-z", "%ds" % args.hey_seconds, "-c", str(c), "-m", "POST", "-d",
                                  PAYLOAD.decode(), url + "/invoke/" + name],
                                 capture_output=True, text=True).stdout
            rps = float(re.search(r"Requests/sec:\s*([\d.]+)", out).group(1))
            p50 = float(re.search(r"50% in ([\d.]+) secs", out).group(1)) * 1e3
            p99 = float(re.search(r"99% in ([\d.]+) secs", out).group(1)) * 1e3
            codes = re.findall(r"\[(\d+)\]\s+(\d+) responses", out)
            bad = sum(int(n) for code, n in codes if code != "200")
            print("| %d | %.0f | %.2f ms | %.2f ms | %d |" % (c, rps, p50, p99, bad))
        print()
        print("Command: `python3 bench/serve.py --runs %d --hey-seconds %d` (nested PVM host, 2 cores)."
              % (args.runs, args.hey_seconds))
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=30)
        except subprocess.TimeoutExpired:
            daemon.kill()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
