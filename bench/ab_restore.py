#!/usr/bin/env python3
"""Two thaw builds (or two environments) restoring the same snapshots, interleaved, on a
cold page cache: the restore path's parts and the cold start, medians per variant.

A variant is BINARY or BINARY:VAR=VALUE[,VAR=VALUE] (e.g. build/thaw:THAW_VM_POOL=0).
The snapshots and working sets are made with build/thaw (the formats must be the same),
or with --own by each variant itself (its binary and environment: two trees whose file
formats differ, or THAW_WS_COMPRESS=0 against the default). For reap, one recording
restore comes first (page cache dropped, so that it does not take in pages the kernel
mapped around its faults from a warm cache), and the table gives each variant's ws.pages
size. With a root-filesystem image the image's restore is reported too: its part not
overlapped with the memory's (image_restore_us) and the file working set's prefetch
(rootfs.ws_read_us).

With --worker every restore runs in a jailed worker process (`thaw restore --worker`,
as `thaw serve` does), its pager in the caller.

Besides the medians: per function, in how many of the back-to-back (a, b) pairs b was
faster (a sign count: a host whose speed drifts during the run moves it less than the
medians), and over all functions the geometric mean of b / a, which is how b would move
a whole-suite geomean such as REAP's speedup over lazy.

usage: bench/ab_restore.py --a VARIANT --b VARIANT [--runs N] [--mode reap] [--own] [--worker] [function ...]
"""
import argparse
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

import coldstart

ROOT = coldstart.ROOT
KEYS = ("state_load_us", "memory_setup_us", "vm_create_us", "restore_us", "first_response_us", "cold_start_us")
REAP_KEYS = ("ws_kib", "read_us", "install_us", "install_ns_page", "read_mb_s")
IMAGE_KEYS = ("image_restore_us", "file_ws_us")


def add_variants(ap):
    """The two variants every A/B script takes: --a and --b, each BINARY[:VAR=VALUE,...]."""
    ap.add_argument("--a", required=True)
    ap.add_argument("--b", required=True)


def parse(v):
    binary, _, envs = v.partition(":")
    env = coldstart.variant_env(envs)
    return os.path.abspath(os.path.join(ROOT, binary)), env


def run(variant, args):
    binary, env = variant
    p = subprocess.run([binary] + args, capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    if p.returncode != 0:
        raise RuntimeError("%s %s: %s" % (binary, " ".join(args[:3]), p.stderr.strip()[-300:]))
    return p


def main():
    ap = argparse.ArgumentParser()
    add_variants(ap)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--mode", default="reap")
    ap.add_argument("--worker", action="store_true", help="restore in jailed worker processes")
    ap.add_argument("--own", "--own-snapshots", action="store_true",
                    help="each variant makes its own snapshot and working set")
    ap.add_argument("functions", nargs="*")
    a = ap.parse_args()
    va, vb = parse(a.a), parse(a.b)
    names = a.functions or ["hello", "helloworld", "chameleon", "lr_serving", "aes_c"]
    tmp = tempfile.mkdtemp(prefix="thaw-ab-", dir=ROOT)
    rows = []
    wk = ["--worker"] if a.worker else []
    steal0 = coldstart.cpu_times()
    try:
        for name in names:
            fdir = os.path.join("functions", name)
            pl = coldstart.payload_of(os.path.join(ROOT, fdir))
            snaps = {}
            for k, v in (("a", va), ("b", vb)):
                if not a.own and snaps:
                    snaps[k] = snaps["a"]
                    continue
                snap = snaps[k] = os.path.join(tmp, "%s-%s" % (name, k))
                mk = v if a.own else (coldstart.THAW, dict(os.environ))
                run(mk, ["snapshot", fdir, "-o", snap])
                if a.mode == "reap":
                    run(mk, ["restore", snap, "--mem", "reap", "--payload", pl, "--drop-cache"] + wk)
            ws_kib = {k: os.path.getsize(os.path.join(snaps[k], "ws.pages")) / 1024 if a.mode == "reap" else 0
                      for k in snaps}
            res = {"a": [], "b": []}
            for i in range(a.runs):  # ABBA: a first on even runs, b first on odd ones
                for k, v in ((("a", va), ("b", vb)) if i % 2 == 0 else (("b", vb), ("a", va))):
                    p = run(v, ["restore", snaps[k], "--mem", a.mode, "--payload", pl, "--drop-cache", "--json"] + wk)
                    j = coldstart.last_json(p, "cold_start_us")
                    if a.mode == "reap":  # the prefetch: its read, its install, per page
                        rp = j["reap"]
                        if not rp.get("prefetched"):
                            raise RuntimeError("%s: restore %s did not prefetch: %s" % (name, k, rp))
                        j["read_us"], j["install_us"] = rp["read_us"], rp["install_us"]
                        j["install_ns_page"] = 1e3 * rp["install_us"] / rp["ws_pages"] if rp["ws_pages"] else 0
                        j["read_mb_s"] = rp["read_mb_s"]
                        j["ws_kib"] = ws_kib[k]
                    j.setdefault("image_restore_us", 0.0)
                    j["file_ws_us"] = j.get("rootfs", {}).get("ws_read_us", 0.0)
                    res[k].append(j)
            keys = KEYS + IMAGE_KEYS + (REAP_KEYS if a.mode == "reap" else ())
            m = {k: {f: statistics.median(j[f] for j in js) for f in keys} for k, js in res.items()}
            # Run i's a and b ran back to back: how many of those pairs b won (a sign count,
            # which a drifting host moves less than it moves the medians).
            m["b"]["pairs_won"] = sum(jb["cold_start_us"] < ja["cold_start_us"] for ja, jb in zip(res["a"], res["b"]))
            rows.append((name, m))
            print("done %s" % name, file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("Command: `python3 bench/ab_restore.py --a %s --b %s --runs %d --mode %s%s%s %s`  " % (
        a.a, a.b, a.runs, a.mode, " --own" if a.own else "", " --worker" if a.worker else "", " ".join(a.functions)))
    print("Medians of %d `thaw restore --mem %s --drop-cache` per variant, interleaved ABBA; us (cold start in ms). "
          "a = `%s`, b = `%s`%s.\n" % (a.runs, a.mode, a.a, a.b, coldstart.steal_note(steal0, coldstart.cpu_times())))
    reap = a.mode == "reap"
    print("| function | variant | state load | memory set-up (not overlapped) | VM + vCPU state (not overlapped) "
          "| restore to first instruction | image (not overlapped) | file working set read | first response "
          "| cold start (ms) | b / a | pairs b faster |" +
          (" ws.pages KiB | prefetch read | install | install per page (ns) | prefetch MB/s |" if reap else ""))
    print("|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|---|---|---|---|" if reap else ""))
    for name, m in rows:
        for k in ("a", "b"):
            x = m[k]
            ratio = "%.2fx" % (m["b"]["cold_start_us"] / m["a"]["cold_start_us"]) if k == "b" else ""
            won = "%d of %d" % (m["b"]["pairs_won"], a.runs) if k == "b" else ""
            extra = " %.0f | %.0f | %.0f | %.0f | %.0f |" % (x["ws_kib"], x["read_us"], x["install_us"],
                                                            x["install_ns_page"], x["read_mb_s"]) if reap else ""
            print("| %s | %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.2f | %s | %s |%s" % (
                name, k, x["state_load_us"], x["memory_setup_us"], x["vm_create_us"], x["restore_us"],
                x["image_restore_us"], x["file_ws_us"], x["first_response_us"], x["cold_start_us"] / 1e3, ratio,
                won, extra))
    if rows:
        # Over the functions: how b moves a suite geomean of cold starts (with lazy the same
        # in both, REAP's geomean speedup over lazy divides by this).
        g = math.exp(sum(math.log(m["b"]["cold_start_us"] / m["a"]["cold_start_us"]) for _, m in rows) / len(rows))
        won = sum(m["b"]["pairs_won"] for _, m in rows)
        print("\nGeometric mean of b / a over %d functions: **%.3fx**; b faster in %d of %d pairs." % (
            len(rows), g, won, len(rows) * a.runs))


if __name__ == "__main__":
    main()
