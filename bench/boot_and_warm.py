#!/usr/bin/env python3
"""Boot-to-ready time and warm invocation round trip of thaw microVMs.

For each function: boots it BOOTS times (median boot-to-ready), and on one instance
sends WARM invocations (median warm round trip, measured by the monitor around each
instance_invoke). Uses `thaw run --json`, so the numbers come from the monitor itself.

usage: bench/boot_and_warm.py [--boots N] [--warm N] [function-dir ...]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THAW = os.path.join(ROOT, "build", "thaw")


def first_payload(fdir):
    pdir = os.path.join(fdir, "payloads")
    names = sorted(os.listdir(pdir))
    with open(os.path.join(pdir, names[0])) as f:
        return f.read().strip()


def run(fdir, payload, repeat):
    p = subprocess.run([THAW, "run", fdir, "--payload", payload, "--repeat", str(repeat), "--json"],
                       capture_output=True, text=True, check=True)
    line = p.stdout.strip().splitlines()[-1]  # --json: the stats are the last line on stdout
    return json.loads(line)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--boots", type=int, default=20)
    ap.add_argument("--warm", type=int, default=100)
    ap.add_argument("functions", nargs="*", default=["functions/hello", "functions/hello-musl", "functions/helloworld"])
    a = ap.parse_args()
    print("| function | boot-to-ready median (ms) | warm round trip median (us) | boots | warm invocations |")
    print("|---|---|---|---|---|")
    for fdir in a.functions:
        payload = first_payload(fdir)
        boots = [run(fdir, payload, 1)["boot_to_ready_us"] for _ in range(a.boots)]
        warm = run(fdir, payload, a.warm + 1)["invocations_us"][1:]  # drop the first (cold) call
        print("| %s | %.2f | %.1f | %d | %d |" % (os.path.basename(fdir), statistics.median(boots) / 1e3,
                                                 statistics.median(warm), len(boots), len(warm)))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
