#!/usr/bin/env python3
"""Cold-start benchmark: boot vs snapshot restores (copy, lazy, uffd, reap) vs warm.

For each function: one snapshot at the ready point; then RUNS cold starts per mode,
each after dropping the snapshot files from the page cache (posix_fadvise DONTNEED,
`thaw restore --drop-cache`). Cold start = restore start to the first response
(restore_us + first invocation). For reap, the first restore records the working set
and is not counted; the RUNS after it prefetch. Warm = an invocation on a running
instance. Prints a Markdown report with medians, ratios, faults and prefetch bandwidth
as a share of the disk's sequential O_DIRECT bandwidth measured in the same run.

usage: bench/coldstart.py [--runs N] [function-dir ...]
Note: the disk's read-ahead (8 MiB here) is left as configured; it flatters the lazy
baseline on small memory files.
"""
import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THAW = os.path.join(ROOT, "build", "thaw")
DEFAULT = ["hello", "memtouch", "helloworld", "json_serdes", "pyaes", "chameleon", "float_operation",
           "matmul", "image_rotate", "lr_serving", "compression", "matmul_c", "image_rotate_c", "aes_c"]


def payload_of(fdir):
    pdir = os.path.join(fdir, "payloads")
    names = sorted(os.listdir(pdir))
    with open(os.path.join(pdir, names[0])) as f:
        return f.read().strip()


def thaw(*args):
    p = subprocess.run([THAW] + list(args), capture_output=True, text=True, cwd=ROOT, timeout=600)
    if p.returncode != 0:
        raise RuntimeError("thaw %s: %s" % (" ".join(args[:3]), p.stderr.strip()[-300:]))
    return p


def restore(snap, mode, payload):
    p = thaw("restore", snap, "--mem", mode, "--payload", payload, "--drop-cache", "--json")
    return json.loads(p.stdout.strip().splitlines()[-1])


def disk_direct_mbps(tmpdir):
    path = os.path.join(tmpdir, "ddtest")
    with open(path, "wb") as f:
        for _ in range(64):
            f.write(os.urandom(4 << 20))
        f.flush()
        os.fsync(f.fileno())
    fd = os.open(path, os.O_RDONLY)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
    t = time.time()
    subprocess.run(["dd", "if=" + path, "of=/dev/null", "bs=4M", "iflag=direct"], capture_output=True, check=True)
    dt = time.time() - t
    os.unlink(path)
    return 256 / dt * 1.048576


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("functions", nargs="*")
    a = ap.parse_args()
    names = a.functions or [f for f in DEFAULT if os.path.isdir(os.path.join(ROOT, "functions", f))]
    tmp = tempfile.mkdtemp(prefix="thaw-bench-", dir=ROOT)
    rows, speedups = [], []
    try:
        disk = disk_direct_mbps(tmp)
        for name in names:
            fdir = os.path.join("functions", name)
            pl = payload_of(os.path.join(ROOT, fdir))
            snap = os.path.join(tmp, name)
            try:
                thaw("snapshot", fdir, "-o", snap)
            except RuntimeError as e:
                print("skipping %s: %s" % (name, e), file=sys.stderr)
                continue
            r = {"name": name}
            boots = []
            for _ in range(a.runs):
                j = json.loads(thaw("run", fdir, "--payload", pl, "--json").stderr.strip().splitlines()[-1])
                boots.append(j["boot_to_ready_us"] + j["invocations_us"][0])
            r["boot"] = statistics.median(boots)
            warm = json.loads(thaw("run", fdir, "--payload", pl, "--repeat", "11", "--json").stderr.strip().splitlines()[-1])
            r["warm"] = statistics.median(warm["invocations_us"][1:])
            for mode in ("copy", "lazy", "uffd"):
                js = [restore(snap, mode, pl) for _ in range(a.runs)]
                r[mode] = statistics.median(j["cold_start_us"] for j in js)
                r[mode + "_faults"] = statistics.median(j["pages_served"] + j["zero_pages"] if mode == "uffd"
                                                        else j["host_page_faults"] for j in js)
            rec = restore(snap, "reap", pl)
            assert rec["reap"]["recorded"], rec
            js = [restore(snap, "reap", pl) for _ in range(a.runs)]
            assert all(j["reap"]["prefetched"] for j in js), js[0]
            r["reap"] = statistics.median(j["cold_start_us"] for j in js)
            r["reap_misses"] = statistics.median(j["reap"]["misses"] for j in js)
            r["reap_disk"] = statistics.median(j["pages_served"] for j in js)
            r["ws_mib"] = js[0]["reap"]["ws_bytes"] / 1048576
            r["ws_regions"] = js[0]["reap"]["regions"]
            r["read_mbps"] = statistics.median(j["reap"]["read_mb_s"] for j in js)
            r["alloc_mib"] = os.stat(os.path.join(snap, "memory")).st_blocks * 512 / 1048576
            rows.append(r)
            speedups.append(r["lazy"] / r["reap"])
            print("done %s" % name, file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print("Command: `python3 bench/coldstart.py --runs %d %s`  " % (a.runs, " ".join(a.functions)))
    print("Medians of %d cold starts per mode (page cache dropped before each), in ms; "
          "disk sequential O_DIRECT read measured in this run: %.0f MB/s.\n" % (a.runs, disk))
    print("| function | boot | copy | lazy | uffd | reap | warm | reap speedup vs lazy | faults uffd -> reap "
          "| fault reduction | of which read from disk | WS MiB (regions) | prefetch MB/s (% of disk) | snapshot MiB allocated |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        red = 100.0 * (1 - r["reap_misses"] / r["uffd_faults"]) if r["uffd_faults"] else 0.0
        print("| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f | %.2fx | %d -> %d | %.1f%% | %d | %.2f (%d) | %.0f (%.0f%%) | %.1f |" % (
            r["name"], r["boot"] / 1e3, r["copy"] / 1e3, r["lazy"] / 1e3, r["uffd"] / 1e3, r["reap"] / 1e3,
            r["warm"] / 1e3, r["lazy"] / r["reap"], r["uffd_faults"], r["reap_misses"], red, r["reap_disk"], r["ws_mib"],
            r["ws_regions"], r["read_mbps"], 100 * r["read_mbps"] / disk, r["alloc_mib"]))
    if speedups:
        g = math.exp(sum(math.log(s) for s in speedups) / len(speedups))
        print("\nGeometric mean speedup of reap over lazy: **%.2fx** over %d functions." % (g, len(speedups)))


if __name__ == "__main__":
    main()
