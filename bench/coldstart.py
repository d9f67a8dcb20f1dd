#!/usr/bin/env python3
"""Cold-start benchmark: boot vs snapshot restores (copy, lazy, uffd, reap) vs warm.

For each function: one snapshot at the ready point; then RUNS cold starts per mode,
each after dropping the snapshot files from the page cache (posix_fadvise DONTNEED,
`thaw restore --drop-cache`). Cold start = restore start to the first response
(restore_us + first invocation). For reap, the first restore records the working set
and is not counted; the RUNS after it prefetch. Warm = an invocation on a running
instance. Prints a Markdown report with medians, ratios, faults and prefetch bandwidth
as a share of the disk's sequential O_DIRECT bandwidth measured in the same run.

Also: the cold-start overhead over warm for lazy and reap and its reduction, REAP's
restore-path breakdown, a different-input row per function (recorded on the first
payload, restored on the second), and (unless --sweep '') REAP cold starts under
concurrency: N restores started together, N in the sweep, of one function ("same") and
cycling through several ("different"), on the snapshots of this run (burst below).

usage: bench/coldstart.py [--runs N] [--boot-runs N] [--sweep 1,2,4,8,16] [--rounds R] [function-dir ...]
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
           "matmul", "image_rotate", "lr_serving", "compression", "matmul_c", "image_rotate_c", "aes_c",
           "stdlib", "image_rotate_pil", "image_process_pil", "matmul_np", "linpack_np", "lr_serving_sk",
           "lr_training_sk", "cnn_serving", "rnn_serving", "video_processing"]
# The fourteen older functions (C and pure Python): the A/B benchmarks' default suite.
SMALL_SUITE = DEFAULT[:14]
CONCURRENCY_FUNCTIONS = ["helloworld", "chameleon", "lr_serving", "hello"]  # the "different" mix


def variant_env(envs):
    """The environment of an A/B variant written as NAME=VALUE,NAME=VALUE (after the ':')."""
    env = dict(os.environ)
    for kv in filter(None, envs.split(",")):
        k, _, x = kv.partition("=")
        env[k] = x
    return env


def parse_variant(v, modes):
    """An A/B variant written MODE[:VAR=VALUE,...], MODE one of modes: (mode, its environment)."""
    mode, _, envs = v.partition(":")
    if mode not in modes:
        raise SystemExit("variant mode must be %s: %s" % (" or ".join(modes), v))
    return mode, variant_env(envs)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cpu_times():
    """/proc/stat's CPU line: (steal, total) jiffies, or None where it cannot be read."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
        if fields[0] != "cpu":
            return None
        v = [int(x) for x in fields[1:9]]  # user nice system idle iowait irq softirq steal
        return v[7], sum(v)
    except (OSError, ValueError, IndexError):
        return None


def steal_note(before, after):
    """What share of the host's CPU time its hypervisor gave to others between two
    cpu_times() readings: this host is itself a guest, and a run with much steal time
    is a noisy one. An empty string when unknown."""
    if not before or not after or after[1] <= before[1]:
        return ""
    return "; the host's CPUs lost %.1f%% of their time to steal (its hypervisor running others)" % (
        100.0 * (after[0] - before[0]) / (after[1] - before[1]))


def burst(jobs, mode):
    """Starts every (snapshot, payload) restore at once; returns each one's cold start in ms."""
    procs = [subprocess.Popen([THAW, "restore", snap, "--mem", mode, "--payload", pl, "--drop-cache", "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
             for snap, pl in jobs]
    out = []
    for p in procs:
        o, e = p.communicate(timeout=600)
        if p.returncode != 0:
            raise RuntimeError("restore failed: %s" % e.strip()[-300:])
        j = json.loads(o.strip().splitlines()[-1])
        if mode == "reap" and not j["reap"]["prefetched"]:
            raise RuntimeError("restore did not prefetch: %s" % j["reap"])
        out.append(j["cold_start_us"] / 1e3)
    return out

def payload_of(fdir):
    pdir = os.path.join(fdir, "payloads")
    names = sorted(os.listdir(pdir))
    with open(os.path.join(pdir, names[0])) as f:
        return f.read().strip()


def thaw(*args, env=None, timeout=600):
    p = subprocess.run([THAW] + list(args), capture_output=True, text=True, cwd=ROOT, env=env, timeout=timeout)
    if p.returncode != 0:
        raise RuntimeError("thaw %s: %s" % (" ".join(args[:3]), p.stderr.strip()[-300:]))
    return p


def last_json(p, key):
    """The --json line: the last JSON object line of stdout or stderr that has key (the
    function's own responses are JSON too)."""
    for text in (p.stdout, p.stderr):
        for line in reversed(text.strip().splitlines()):
            if line.startswith("{") and ('"%s"' % key) in line:
                return json.loads(line)
    raise RuntimeError("no JSON in the output: %s" % p.stderr.strip()[-300:])


def restore(snap, mode, payload, env=None, timeout=600):
    """One restore on a cold page cache (--drop-cache): its --json line."""
    return last_json(thaw("restore", snap, "--mem", mode, "--payload", payload, "--drop-cache", "--json", env=env,
                          timeout=timeout), "cold_start_us")


def payloads_of(fdir):
    return [open(os.path.join(fdir, "payloads", n)).read().strip()
            for n in sorted(os.listdir(os.path.join(fdir, "payloads")))]


def with_working_set(snap, saved):
    """Puts the working set recorded on the first payload back (a restore on another
    payload may mark it stale or re-record it): every different-input run starts alike."""
    for n in os.listdir(snap):
        if n.startswith("ws.") or n in ("rootfs.ws", "rootfs.gens"):
            os.unlink(os.path.join(snap, n))
    for n in os.listdir(saved):
        shutil.copy2(os.path.join(saved, n), os.path.join(snap, n))


def med(js, key):
    return statistics.median(j[key] for j in js)


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
    ap.add_argument("--boot-runs", type=int, default=None,
                    help="boots per function (default: --runs; PyTorch's take 10-20 s each)")
    ap.add_argument("--sweep", default="1,2,4,8,16", help="concurrency sweep ('' for none)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds per concurrency level")
    ap.add_argument("functions", nargs="*")
    a = ap.parse_args()
    names = a.functions or [f for f in DEFAULT if os.path.isdir(os.path.join(ROOT, "functions", f))]
    tmp = tempfile.mkdtemp(prefix="thaw-bench-", dir=ROOT)
    rows, speedups = [], []
    conc = []
    snaps = {}
    steal0 = cpu_times()
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
            boots, readies = [], []
            for _ in range(a.boot_runs or a.runs):
                j = last_json(thaw("run", fdir, "--payload", pl, "--json"), "boot_to_ready_us")
                boots.append(j["boot_to_ready_us"] + j["invocations_us"][0])
                readies.append(j["boot_to_ready_us"])
            r["boot"] = statistics.median(boots)
            r["boot_ready"] = statistics.median(readies)
            warm = last_json(thaw("run", fdir, "--payload", pl, "--repeat", "11", "--json"), "invocations_us")
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
            # The working set's pages, and what ws.pages holds of them on disk (lz4 blocks).
            r["ws_mib"] = js[0]["reap"]["ws_pages"] * 4096 / 1048576
            r["ws_file_mib"] = js[0]["reap"]["ws_bytes"] / 1048576
            r["ws_regions"] = js[0]["reap"]["regions"]
            r["read_mbps"] = statistics.median(j["reap"]["read_mb_s"] for j in js)
            # Everything the prefetch read: ws.pages and the memory file's pages of the chunks
            # read whole as huge pages, queued together, over the time until the last was in.
            r["read_all_mbps"] = statistics.median(
                (j["reap"]["ws_bytes"] + j["reap"].get("huge_data_pages", 0) * 4096) /
                max(j["reap"]["read_us"], j["reap"].get("huge_us", 0)) for j in js if j["reap"]["read_us"] > 0)
            # The snapshot's memory file plus, for a function with a root-filesystem image,
            # the image pages it wrote; file pages only read are not part of it.
            r["alloc_mib"] = sum(os.stat(os.path.join(snap, n)).st_blocks * 512 for n in ("memory", "rootfs.cow")
                                 if os.path.exists(os.path.join(snap, n))) / 1048576
            r["file_ws_mib"] = js[0].get("rootfs", {}).get("ws_pages", 0) * 4096 / 1048576
            # The restore path to the vCPU's first instruction, under REAP.
            for k in ("state_load_us", "memory_setup_us", "vm_create_us", "image_restore_us", "restore_us"):
                r["reap_" + k] = med(js, k)
            r["reap_install_us"] = statistics.median(j["reap"]["install_us"] for j in js)
            # KVM's own count of the first invocation's shadow-MMU faults (absent on a kernel
            # without stats fds), and the 2 MiB chunks read whole as huge pages.
            r["reap_kvm_faults"] = statistics.median(j.get("kvm_first_invocation", {}).get("page_faults", -1)
                                                     for j in js)
            r["reap_huge"] = statistics.median(j["reap"].get("huge_chunks", 0) for j in js)
            # A different input: recorded on the first payload, restored on the second.
            pls = payloads_of(os.path.join(ROOT, fdir))
            if len(pls) > 1:
                saved = os.path.join(tmp, name + ".ws")
                os.mkdir(saved)
                for n in os.listdir(snap):
                    if (n.startswith("ws.") and n != "ws.stale") or n in ("rootfs.ws", "rootfs.gens"):
                        shutil.copy2(os.path.join(snap, n), os.path.join(saved, n))
                dl = [restore(snap, "lazy", pls[1]) for _ in range(a.runs)]
                dr = []
                for _ in range(a.runs):
                    with_working_set(snap, saved)
                    dr.append(restore(snap, "reap", pls[1]))
                assert all(j["reap"]["prefetched"] for j in dr), dr[0]
                r["diff"] = {"payload": sorted(os.listdir(os.path.join(ROOT, fdir, "payloads")))[1],
                             "lazy": med(dl, "cold_start_us"), "reap": med(dr, "cold_start_us"),
                             "misses": statistics.median(j["reap"]["misses"] for j in dr),
                             "warm": r["warm"]}
            rows.append(r)
            speedups.append(r["lazy"] / r["reap"])
            snaps[name] = (snap, pl)
            print("done %s" % name, file=sys.stderr)
            # The different-input runs may leave another working set: record the first payload's again.
            if "diff" in r:
                with_working_set(snap, os.path.join(tmp, name + ".ws"))
        sweep = [int(x) for x in a.sweep.split(",") if x]
        if sweep and snaps:
            diff_names = [n for n in CONCURRENCY_FUNCTIONS if n in snaps] or list(snaps)
            same = diff_names[0]
            for kind, pool in (("same", [snaps[same]]), ("different", [snaps[n] for n in diff_names])):
                base = None
                for n in sweep:
                    ms = []
                    for k in range(a.rounds):
                        jobs = [pool[(i + k) % len(pool)] for i in range(n)]
                        ms += burst(jobs, "reap")
                        time.sleep(0.05)
                    m = statistics.median(ms)
                    base = base or m
                    conc.append((kind, n, m, max(ms), m / base))
            conc_names = (same, diff_names)
            print("done concurrency", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    steal = steal_note(steal0, cpu_times())

    print("Command: `python3 bench/coldstart.py --runs %d%s --sweep '%s' --rounds %d %s`  " % (
        a.runs, " --boot-runs %d" % a.boot_runs if a.boot_runs else "", a.sweep, a.rounds, " ".join(a.functions)))
    print("Medians of %d cold starts per mode (page cache dropped before each), in ms; "
          "disk sequential O_DIRECT read measured in this run: %.0f MB/s%s.\n" % (a.runs, disk, steal))
    print("| function | boot | copy | lazy | uffd | reap | warm | reap speedup vs lazy | faults uffd -> reap "
          "| fault reduction | of which read from disk | WS MiB (regions) | ws.pages MiB | file WS MiB | prefetch MB/s (% of disk): ws.pages / with the huge chunks | snapshot MiB allocated |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        red = 100.0 * (1 - r["reap_misses"] / r["uffd_faults"]) if r["uffd_faults"] else 0.0
        print("| %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.2f | %.2fx | %d -> %d | %.1f%% | %d | %.2f (%d) | %.2f | %.1f | %.0f (%.0f%%) / %.0f (%.0f%%) | %.1f |" % (
            r["name"], r["boot"] / 1e3, r["copy"] / 1e3, r["lazy"] / 1e3, r["uffd"] / 1e3, r["reap"] / 1e3,
            r["warm"] / 1e3, r["lazy"] / r["reap"], r["uffd_faults"], r["reap_misses"], red, r["reap_disk"], r["ws_mib"],
            r["ws_regions"], r["ws_file_mib"], r["file_ws_mib"], r["read_mbps"], 100 * r["read_mbps"] / disk,
            r["read_all_mbps"], 100 * r["read_all_mbps"] / disk, r["alloc_mib"]))
    if speedups:
        g = math.exp(sum(math.log(s) for s in speedups) / len(speedups))
        print("\nGeometric mean speedup of reap over lazy: **%.2fx** over %d functions." % (g, len(speedups)))

    # The per-function summary docs/functions.md keeps.
    print("\nPer function (docs/functions.md): boot to the ready point, a warm invocation, the snapshot's "
          "allocated size (memory file + written image pages), REAP's working set (guest memory + image file "
          "pages), cold starts (ms, medians).\n")
    print("| function | boot to ready | warm | snapshot MiB | WS memory MiB | WS file MiB | lazy | reap | "
          "reap speedup |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print("| %s | %.1f | %.2f | %.1f | %.1f | %.1f | %.1f | %.1f | %.2fx |" % (
            r["name"], r["boot_ready"] / 1e3, r["warm"] / 1e3, r["alloc_mib"], r["ws_mib"], r["file_ws_mib"],
            r["lazy"] / 1e3, r["reap"] / 1e3, r["lazy"] / r["reap"]))

    # Cold-start overhead over warm, and the restore path, per function.
    print("\nCold-start overhead over warm (cold minus warm, ms) and REAP's restore path to the vCPU's first "
          "instruction (medians, us). *Fault-dominated*: lazy's overhead is at least half its cold start.\n")
    print("| function | lazy - warm | reap - warm | reduction | fault-dominated | state load | memory set-up "
          "(incl. prefetch) | of which install | VM + vCPU state | image pages | restore total | state + VM "
          "(goal < 1 ms) | huge chunks | first invocation's shadow-MMU faults |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    reductions = []
    for r in rows:
        lo, ro = r["lazy"] - r["warm"], r["reap"] - r["warm"]
        fd = lo >= 0.5 * r["lazy"]
        red = "%.1fx" % (lo / ro) if ro > 0 and lo > 0 else "n/a (within noise of warm)"
        if fd and ro > 0 and lo > 0:
            reductions.append(lo / ro)
        print("| %s | %.1f | %.1f | %s | %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %s |" % (
            r["name"], lo / 1e3, ro / 1e3, red, "yes" if fd else "no", r["reap_state_load_us"],
            r["reap_memory_setup_us"], r["reap_install_us"], r["reap_vm_create_us"], r["reap_image_restore_us"],
            r["reap_restore_us"], r["reap_state_load_us"] + r["reap_vm_create_us"], r["reap_huge"],
            "%.0f" % r["reap_kvm_faults"] if r["reap_kvm_faults"] >= 0 else "n/a"))
    if reductions:
        g = math.exp(sum(math.log(x) for x in reductions) / len(reductions))
        print("\nGeometric mean reduction of the cold-start overhead on the %d fault-dominated functions: "
              "**%.1fx**." % (len(reductions), g))

    diffs = [r for r in rows if "diff" in r]
    if diffs:
        print("\nA different input: working set recorded on the first payload, restored with the second "
              "(each REAP run starts from that same working set), medians in ms.\n")
        print("| function | restored with | lazy | reap | reap speedup vs lazy | misses |")
        print("|---|---|---|---|---|---|")
        for r in diffs:
            d = r["diff"]
            print("| %s | %s | %.1f | %.1f | %.2fx | %d |" % (r["name"], d["payload"], d["lazy"] / 1e3,
                                                             d["reap"] / 1e3, d["lazy"] / d["reap"], d["misses"]))

    if conc:
        same, diff_names = conc_names
        print("\nREAP cold starts under concurrency (restore + first response, page cache dropped): N "
              "`thaw restore --mem reap` processes started together, %d rounds; medians over all instances, in "
              "ms. \"same\": N instances of %s; \"different\": cycling through %s.\n" % (
                  a.rounds, same, ", ".join(diff_names)))
        print("| functions | N | median | worst | median / N=1 |")
        print("|---|---|---|---|---|")
        for kind, n, m, worst, ratio in conc:
            print("| %s | %d | %.1f | %.1f | %.2fx |" % (kind, n, m, worst, ratio))


if __name__ == "__main__":
    main()
