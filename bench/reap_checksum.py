#!/usr/bin/env python3
"""REAP prefetch bandwidth with and without the ws.pages page checksums, in one run.

Builds a second thaw binary from this tree with the page checks compiled out
(-DTHAW_BENCH_NO_PAGE_CHECKS, into a temporary build directory; it uses the main build's
kernel and functions through THAW_BUILD_DIR), then restores the same snapshot and
working set with both binaries alternately (ABBA order), page cache dropped before each
restore.
Reported: medians of the prefetch time (read + install, from `thaw restore --json`),
the prefetch bandwidth (working-set bytes / that time) and the ratio with/without.

usage: bench/reap_checksum.py [--runs N] [function ...]"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def payload_of(fdir):
    """The function's first sample payload."""
    pdir = os.path.join(fdir, "payloads")
    with open(os.path.join(pdir, sorted(os.listdir(pdir))[0])) as f:
        return f.read().strip()


BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))


def run(thaw, *args):
    env = dict(os.environ, THAW_BUILD_DIR=BUILD)
    p = subprocess.run([thaw] + list(args), capture_output=True, text=True, cwd=ROOT, timeout=600, env=env)
    if p.returncode != 0:
        raise RuntimeError("%s %s: %s" % (thaw, " ".join(args[:2]), p.stderr.strip()[-300:]))
    return p


def build_unchecked(tmp):
    out = os.path.join(tmp, "build-nocheck")
    flags = ("-std=c11 -D_GNU_SOURCE -O2 -g -Wall -Wextra -Werror -Iinclude -Isrc -MMD -MP -DTHAW_HAVE_SERVE "
             "-DTHAW_BENCH_NO_PAGE_CHECKS")
    subprocess.run(["make", "-j2", "BUILD=" + out, "HOST_CFLAGS=" + flags, out + "/thaw"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    return os.path.join(out, "thaw")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("functions", nargs="*", default=["helloworld", "chameleon", "image_rotate", "memtouch"])
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="thaw-bench-", dir=ROOT)
    try:
        builds = {"with": os.path.join(BUILD, "thaw"), "without": build_unchecked(tmp)}
        print("Command: `python3 bench/reap_checksum.py --runs %d %s`\n" % (a.runs, " ".join(a.functions)))
        print("| function | WS MiB | prefetch without (ms) | prefetch with (ms) | ratio | MB/s without | MB/s with |"
              " read without (ms) | read with (ms) | install without (ms) | install with (ms) | install ratio |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for name in a.functions:
            fdir = os.path.join("functions", name)
            pl = payload_of(os.path.join(ROOT, fdir))
            snap = os.path.join(tmp, name)
            run(builds["with"], "snapshot", fdir, "-o", snap)
            run(builds["with"], "restore", snap, "--mem", "reap", "--payload", pl)  # records
            res = {b: [] for b in builds}
            for k in range(a.runs):
                order = list(builds.items())
                for b, thaw in (order if k % 2 == 0 else order[::-1]):  # ABBA: no order effect
                    p = run(thaw, "restore", snap, "--mem", "reap", "--payload", pl, "--drop-cache", "--json")
                    j = json.loads(p.stdout.strip().splitlines()[-1])
                    assert j["reap"]["prefetched"], j
                    res[b].append(j["reap"])
            med = {}
            for b, v in res.items():
                pre = statistics.median(r["read_us"] + r["install_us"] for r in v)
                inst = statistics.median(r["install_us"] for r in v)
                mbs = statistics.median(r["ws_bytes"] / (r["read_us"] + r["install_us"]) for r in v)
                rd = statistics.median(r["read_us"] for r in v)
                med[b] = (pre, inst, mbs, rd)
            ws = res["with"][0]["ws_bytes"] / 1048576
            wo, wi = med["without"], med["with"]
            print("| %s | %.2f | %.2f | %.2f | %.2f | %.0f | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f |" % (
                name, ws, wo[0] / 1e3, wi[0] / 1e3, wi[0] / wo[0], wo[2], wi[2], wo[3] / 1e3, wi[3] / 1e3,
                wo[1] / 1e3, wi[1] / 1e3, wi[1] / wo[1]))
            sys.stdout.flush()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
