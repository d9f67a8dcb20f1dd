#!/usr/bin/env python3
"""Empty pages: a handler that allocates and writes ALLOC MiB after a restore.

The memalloc function (memtouch with a 4 MiB arena) answers {"alloc_mib": N} by writing
every page of N MiB of fresh memory and freeing it. Its pages are holes of the snapshot's
memory file, so no restore mode should need the pager for them. For each round, every
mode runs once (page cache dropped before each restore), with 2 MiB huge pages advised
(THAW_HUGEPAGES=1, the default) and without (THAW_HUGEPAGES=0); each round also records the working set anew (its files removed
first) before the reap restore that prefetches it, so the recording is a median too. A
first, uncounted round warms the machine up. Prints medians and ratios to copy.

usage: bench/memalloc.py [--runs N] [--alloc-mib N]
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
MODES = ("copy", "lazy", "uffd", "reap")
RUN_MODES = ("copy", "lazy", "uffd", "record", "reap")  # record: reap with no working set yet


def forget_working_set(snap):
    for f in os.listdir(snap):
        if f.startswith("ws.") and f != "ws.lock":
            os.unlink(os.path.join(snap, f))


def restore(snap, mode, payload, huge):
    env = dict(os.environ, THAW_HUGEPAGES="1" if huge else "0")
    p = subprocess.run([THAW, "restore", snap, "--mem", mode, "--payload", payload, "--drop-cache", "--json"],
                       capture_output=True, text=True, cwd=ROOT, timeout=600, env=env)
    if p.returncode != 0:
        raise RuntimeError("thaw restore %s: %s" % (mode, p.stderr.strip()[-300:]))
    return json.loads(p.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--alloc-mib", type=int, default=200)
    a = ap.parse_args()
    payload = json.dumps({"alloc_mib": a.alloc_mib})
    tmp = tempfile.mkdtemp(prefix="thaw-memalloc-", dir=ROOT)
    try:
        snaps = {}
        for huge in (True, False):
            snaps[huge] = os.path.join(tmp, "huge" if huge else "small")
            subprocess.run([THAW, "snapshot", "functions/memalloc", "-o", snaps[huge]], check=True, cwd=ROOT,
                           capture_output=True)
        res = {(m, h): [] for m in RUN_MODES for h in (True, False)}
        # Round 0 is not counted: a machine's first 200 MiB of huge pages can wait for
        # compaction (a first restore once took 5x the next ones).
        for rnd in range(a.runs + 1):
            for huge in (True, False):
                for m in RUN_MODES:
                    if m == "record":  # a new working set each round: the recording is a median too
                        forget_working_set(snaps[huge])
                    j = restore(snaps[huge], "reap" if m == "record" else m, payload, huge)
                    if m == "record":
                        assert j["reap"]["recorded"], j
                    if m == "reap":
                        assert j["reap"]["prefetched"], j
                    if rnd:
                        res[(m, huge)].append(j)
        ws = {h: os.stat(os.path.join(snaps[h], "ws.pages")).st_size for h in (True, False)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print("Command: `python3 bench/memalloc.py --runs %d --alloc-mib %d`  " % (a.runs, a.alloc_mib))
    print("Cold start (restore + first invocation writing %d MiB of fresh memory), medians of %d, in ms; "
          "pager faults = pages the pager served (pages_served + zero_pages).\n" % (a.alloc_mib, a.runs))
    print("| huge pages | copy | lazy | uffd | reap | reap recording | reap / copy | recording / uffd "
          "| pager faults uffd / reap recording | ws.pages KiB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for huge in (True, False):
        med = {m: statistics.median(j["cold_start_us"] for j in res[(m, huge)]) / 1e3 for m in MODES}
        uf = statistics.median(j["pages_served"] + j["zero_pages"] for j in res[("uffd", huge)])
        rec = res[("record", huge)]
        r = statistics.median(j["cold_start_us"] for j in rec) / 1e3
        rf = statistics.median(j["pages_served"] + j["zero_pages"] for j in rec)
        print("| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.2fx | %.2fx | %d / %d | %.0f |" % (
            "advised (default)" if huge else "off (THAW_HUGEPAGES=0)", med["copy"], med["lazy"], med["uffd"],
            med["reap"], r, med["reap"] / med["copy"], r / med["uffd"],
            uf, rf, ws[huge] / 1024))


if __name__ == "__main__":
    main()
