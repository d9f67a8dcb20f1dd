#!/usr/bin/env python3
"""REAP with 2 MiB working-set chunks installed as huge pages (THAW_REAP_HUGE) vs the
4 KiB UFFDIO_COPY install, interleaved in one run on a cold page cache.

For each function: one snapshot, one recording restore, then RUNS rounds; each round
restores once with every variant (THAW_REAP_HUGE=0, then each share given): a chunk is
filled whole from the memory file when the working set holds at least that share of the
chunk's data pages. Reports medians of the memory set-up (incl. the prefetch), the first
response and the cold start, the chunks taken, and the read amplification: memory-file
data pages read for the chunks over the working-set pages they cover.

usage: bench/huge_chunks.py [--runs N] [--shares 0.5,0.25,0.1] [function ...]
"""
import argparse
import os
import shutil
import statistics
import sys
import tempfile

import coldstart

ROOT = coldstart.ROOT
DEFAULT = ["hello", "helloworld", "chameleon", "memtouch", "image_rotate_c"]


def restore(snap, pl, share):
    j = coldstart.restore(snap, "reap", pl, env=dict(os.environ, THAW_REAP_HUGE=share))
    if not j["reap"]["prefetched"]:
        raise RuntimeError("no prefetch: %s" % j["reap"])
    return j


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--shares", default="0.5,0.25,0.1")
    ap.add_argument("functions", nargs="*")
    a = ap.parse_args()
    shares = ["0"] + [s for s in a.shares.split(",") if s]
    names = a.functions or DEFAULT
    tmp = tempfile.mkdtemp(prefix="thaw-huge-", dir=ROOT)
    rows = []
    try:
        for name in names:
            fdir = os.path.join("functions", name)
            pl = coldstart.payload_of(os.path.join(ROOT, fdir))
            snap = os.path.join(tmp, name)
            coldstart.thaw("snapshot", fdir, "-o", snap)
            coldstart.thaw("restore", snap, "--mem", "reap", "--payload", pl)  # records
            res = {s: [] for s in shares}
            for _ in range(a.runs):
                for s in shares:
                    res[s].append(restore(snap, pl, s))
            for s in shares:
                js = res[s]
                rows.append((name, s, statistics.median(j["memory_setup_us"] for j in js) / 1e3,
                             statistics.median(j["first_response_us"] for j in js) / 1e3,
                             statistics.median(j["cold_start_us"] for j in js) / 1e3,
                             js[0]["reap"]["huge_chunks"], js[0]["reap"]["huge_ws_pages"],
                             js[0]["reap"]["huge_data_pages"], js[0]["reap"]["ws_pages"],
                             statistics.median(j["reap"]["misses"] for j in js)))
            print("done %s" % name, file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("Command: `python3 bench/huge_chunks.py --runs %d --shares %s %s`  " % (a.runs, a.shares, " ".join(a.functions)))
    print("Medians of %d reap cold starts per variant, interleaved, page cache dropped before each; ms. "
          "*share*: THAW_REAP_HUGE (0 = every page by UFFDIO_COPY).\n" % a.runs)
    print("| function | share | memory set-up (incl. prefetch) | first response | cold start | vs share 0 "
          "| chunks | WS pages in chunks (of all) | data pages read for them | read amplification | misses |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    base = {}
    for name, s, ms, fr, cs, ch, wsp, dp, allws, miss in rows:
        if s == "0":
            base[name] = cs
        amp = "%.2fx" % (dp / wsp) if wsp else "-"
        print("| %s | %s | %.1f | %.1f | %.1f | %.2fx | %d | %d (%d) | %d | %s | %d |" % (
            name, s, ms, fr, cs, cs / base[name], ch, wsp, allws, dp, amp, miss))


if __name__ == "__main__":
    main()
