#!/usr/bin/env python3
"""The suite characterisation: `thaw analyze` over every function, written up as
docs/characterisation.md with tables and figures beside the vHive/REAP paper's findings.

usage: tools/analysis/suite_report.py [--out docs/characterisation.md] [--figures DIR] [function ...]

Each function is analysed with all of its payloads (functions/<f>/payloads/*.json): a
boot for the footprint and the snapshot, then one REAP-recording restore per input on
a fresh copy of the snapshot with a cold page cache (see `thaw analyze --help`).
Figures: PNG per function, PNG and SVG for the suite-wide ones, made by
tools/analysis/plot_analysis.py (Debian's python3-matplotlib).
"""
import argparse
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
THAW = os.path.join(ROOT, "build", "thaw")
PLOT = os.path.join(ROOT, "tools", "analysis", "plot_analysis.py")
PY = "/usr/bin/python3" if os.access("/usr/bin/python3", os.X_OK) else sys.executable
# Not characterised: test helpers (a fault injector, an allocator stress) and the musl
# twins of C functions that are in the suite with glibc.
SKIP = {"faulty", "memalloc", "hello-musl", "memtouch-musl"}
MIB = 1048576.0
REGIONS = ["kernel", "program text", "program data", "file archive", "heap/anonymous", "stack"]


def suite():
    out = []
    for f in sorted(os.listdir(os.path.join(ROOT, "functions"))):
        d = os.path.join(ROOT, "functions", f)
        if f in SKIP or not os.path.exists(os.path.join(d, "function.json")) or not os.path.isdir(os.path.join(d, "payloads")):
            continue
        out.append(f)
    return out


def analyse(name, tmp):
    p = subprocess.run([THAW, "analyze", os.path.join("functions", name), "--json"], cwd=ROOT,
                       capture_output=True, text=True, timeout=1800, env=dict(os.environ, TMPDIR=tmp))
    if p.returncode != 0:
        raise RuntimeError(p.stderr.strip().splitlines()[-1] if p.stderr.strip() else "exit %d" % p.returncode)
    return json.loads(p.stdout.strip().splitlines()[-1])


def plot(args):
    subprocess.run([PY, PLOT] + args, cwd=ROOT, check=True, capture_output=True, text=True)


def runtime_of(name):
    with open(os.path.join(ROOT, "functions", name, "function.json")) as f:
        return json.load(f).get("runtime", "?")


def med(xs):
    return statistics.median(xs) if xs else 0.0


def summarise(a):
    ps = a["payloads"]
    page = a["page_size"]
    ws = [p["working_set"]["pages"] for p in ps]
    rss = [p["restore"]["rss_kb"] for p in ps]
    booted = a["booted"]["rss_kb"] if a.get("booted") else None
    mid = sorted(ps, key=lambda p: p["working_set"]["pages"])[len(ps) // 2]
    regions = mid["working_set"]["by_region"]
    u = a.get("reuse") or {}
    return {
        "name": a["function"], "inputs": len(ps),
        "booted_mib": booted / 1024 if booted else None,
        "restored_mib": med(rss) / 1024,
        "reduction": 1 - med(rss) / booted if booted else None,
        "memfile_mib": a["memory_file_allocated"] / MIB if a.get("memory_file_allocated") else 0.0,
        "ws_mib": med(ws) * page / MIB, "ws_min_mib": min(ws) * page / MIB, "ws_max_mib": max(ws) * page / MIB,
        "ws_share_rss": med([p["working_set"]["pages"] * page / 1024 / p["restore"]["rss_kb"]
                             for p in ps if p["restore"]["rss_kb"]]),
        "regions": {r: 100.0 * regions.get(r, 0) / max(1, mid["working_set"]["pages"]) for r in REGIONS},
        "reuse": u.get("mean_cross_share") if len(ps) > 1 else None,
        "common": u.get("common_pages"), "union": u.get("union_pages"),
        "run_guest": med([p["runs"]["guest_order"]["mean"] for p in ps]),
        "run_guest_median": med([p["runs"]["guest_order"]["median"] for p in ps]),
        "run_fault": med([p["runs"]["fault_order"]["mean"] for p in ps]),
        "ra128": med([p["readahead"][0]["useful_share"] for p in ps]),
        "ra128_saved": med([p["readahead"][0]["faults_saved"] for p in ps]),
        "ra8m": med([p["readahead"][1]["useful_share"] for p in ps]),
        "ra8m_saved": med([p["readahead"][1]["faults_saved"] for p in ps]),
        "t90_ms": med([p["timeline"]["t90_us"] / 1e3 for p in ps]),
        "last_ms": med([p["timeline"]["last_us"] / 1e3 for p in ps]),
        "first_ms": med([p["restore"]["first_response_us"] / 1e3 for p in ps]),
    }


def fmt(x, f="%.1f", none="n/a"):
    return none if x is None else f % x


def rng(xs, f="%.1f"):
    xs = [x for x in xs if x is not None]
    return (f + "-" + f) % (min(xs), max(xs)) if xs else "n/a"


def write_doc(path, figdir, rows, failures, runtimes_note, cmd):
    rel = os.path.relpath(figdir, os.path.dirname(path))
    booted = [r for r in rows if r["booted_mib"] is not None]
    multi = [r for r in rows if r["reuse"] is not None]
    L = []
    w = L.append
    w("# Characterisation: what snapshot-restored functions touch")
    w("")
    w("The analyses of the vHive/REAP paper (`../shared/reference/vhive-reap-abstract.txt`), redone on thaw "
      "with `thaw analyze` for every function of the suite. Each input is a fresh copy of the function's "
      "snapshot restored with REAP recording and a cold page cache; the recorded `ws.trace` is the working set. "
      "Produced by `%s` on %s (nested PVM host, 2 cores, shared; times are noisy)." %
      (cmd, datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC")))
    w("")
    w(runtimes_note)
    w("")
    w("## The paper's findings beside thaw's")
    w("")
    w("| finding | paper (Firecracker + Linux guest) | thaw (this run, %d functions) |" % len(rows))
    w("|---|---|---|")
    w("| footprint of a booted instance | 148-256 MB | %s MiB (%s MiB in the snapshot's memory file) |" %
      (rng([r["booted_mib"] for r in booted]), rng([r["memfile_mib"] for r in rows])))
    w("| footprint of a restored instance | 8-99 MB | %s MiB |" % rng([r["restored_mib"] for r in rows], "%.2f"))
    w("| reduction, restored vs booted | 61-96%% | %s%% |" % rng([100 * r["reduction"] for r in booted]))
    w("| working set of one invocation | (the restored footprint) | %s MiB |" % rng([r["ws_mib"] for r in rows], "%.2f"))
    w("| pages reused across inputs | 97%% on average | %s%% on average (%s%% per function) |" %
      (fmt(100 * statistics.mean([r["reuse"] for r in multi])) if multi else "n/a",
       rng([100 * r["reuse"] for r in multi])))
    w("| contiguous runs of touched pages | 2-3 pages on average | %s pages in guest-physical order, %s in fault order |" %
      (rng([r["run_guest"] for r in rows]), rng([r["run_fault"] for r in rows], "%.2f")))
    w("| host read-ahead | ineffective (accesses lack spatial locality) | 128 KiB read-around: %s%% of fetched pages "
      "used; 8 MiB: %s%% |" % (rng([100 * r["ra128"] for r in rows]), rng([100 * r["ra8m"] for r in rows])))
    w("")
    w("## Per function")
    w("")
    w("Medians over each function's inputs. *booted*: resident guest memory of a booted instance after its "
      "first invocation; *restored*: resident guest memory of a restored instance after its invocation; *file*: "
      "allocated blocks of the snapshot's memory file; *WS*: pages REAP recorded; *reuse*: the share of one "
      "input's working set another input touches too, averaged over pairs; *runs*: mean contiguous run length "
      "in guest-physical / fault order; *RA*: share of the pages a read-around of 128 KiB / 8 MiB on each "
      "major fault would fetch that the function uses; *90%*: when 90% of the working set had been touched.")
    w("")
    w("| function | runtime | inputs | booted MiB | restored MiB | reduction | file MiB | WS MiB (min-max) | "
      "WS / restored | reuse | common / union pages | runs | RA 128K | RA 8M | 90% by (ms) | first response (ms) |")
    w("|" + "---|" * 16)
    for r in rows:
        w("| %s | %s | %d | %s | %.2f | %s | %.1f | %.2f (%.2f-%.2f) | %.0f%% | %s | %s | %.1f / %.2f | %.0f%% | %.1f%% | %.1f | %.1f |" % (
            r["name"], r["runtime"], r["inputs"], fmt(r["booted_mib"]), r["restored_mib"],
            fmt(None if r["reduction"] is None else 100 * r["reduction"], "%.1f%%"), r["memfile_mib"], r["ws_mib"],
            r["ws_min_mib"], r["ws_max_mib"], 100 * r["ws_share_rss"],
            fmt(None if r["reuse"] is None else 100 * r["reuse"], "%.1f%%"),
            "%d / %d" % (r["common"], r["union"]) if r["reuse"] is not None else "n/a",
            r["run_guest"], r["run_fault"], 100 * r["ra128"], 100 * r["ra8m"], r["t90_ms"], r["first_ms"]))
    w("")
    w("### The working set by guest memory region")
    w("")
    w("Share of the median input's working set in each region of guest-physical memory, read back from the "
      "snapshot (`include/thaw/abi.h`, the boot info and the program headers): the library OS kernel with its "
      "boot tables and allocator maps, the program's executable and other segments, the read-only file archive, "
      "brk/mmap memory, and the stack.")
    w("")
    w("| function | " + " | ".join(REGIONS) + " |")
    w("|" + "---|" * (len(REGIONS) + 1))
    for r in rows:
        w("| %s | %s |" % (r["name"], " | ".join("%.0f%%" % r["regions"][g] for g in REGIONS)))
    w("")
    w("![working set per function](%s/suite_working_set.png)" % rel)
    w("")
    if os.path.exists(os.path.join(figdir, "coldstart_modes.png")):
        w("Cold-start latency per restore mode, from the cold-start benchmark's table in "
          "[benchmarks.md](benchmarks.md) (`bench/coldstart.py`):")
        w("")
        w("![cold start per restore mode](%s/coldstart_modes.png)" % rel)
        w("")
    if failures:
        w("Not characterised in this run: " + "; ".join("%s (%s)" % f for f in failures) + ".")
        w("")
    w("## Where thaw differs, and why")
    w("")
    small = [r for r in rows if r["reuse"] is not None and r["reuse"] < 0.9]
    red = [100 * r["reduction"] for r in booted]
    above = [r for r in booted if r["booted_mib"] >= r["memfile_mib"]]
    files = [r for r in rows if r["regions"]["file archive"] >= 1]
    w("- **Footprints are an order of magnitude smaller than the paper's.** thaw's guest is a library OS: no "
      "Linux kernel, no guest page cache, no init system or container runtime in the VM. A function's own "
      "files are a read-only archive in guest memory that the library OS serves in place, and a Python "
      "function's runtime (python3.11, its stdlib and packages) is a root-filesystem image mapped from the "
      "host's page cache, outside guest memory and so outside these footprints (REAP prefetches its pages "
      "separately: the file working set, docs/functions.md). The booted footprint is what the host holds for the VM after one invocation; guest memory "
      "is 2 MiB-aligned with `MADV_HUGEPAGE`, so much of it is resident in whole huge pages, and it is larger "
      "than the snapshot's memory file (the 4 KiB pages the guest wrote) for %d of %d functions. A restored "
      "instance is resident in the 4 KiB pages userfaultfd installs plus the anonymous memory it allocates "
      "afresh. The reduction, %s%%, is close to the paper's 61-96%% although the absolute sizes are far "
      "smaller." % (len(above), len(booted), rng(red)))
    w("- **The working set is a smaller share of the restored footprint than in the paper** (median %.0f%%). "
      "REAP records only pages that hold data in the snapshot. Pages that were holes (never written before "
      "the snapshot) or that the guest freed and handed back are plain anonymous memory the host kernel fills "
      "with zeros, never a pager trip. A function that allocates fresh buffers (images, matrices, compression "
      "output) has a restored footprint well above its working set, and nothing to prefetch for that part."
      % (100 * med([r["ws_share_rss"] for r in rows])))
    w("- **Reuse across inputs is close to the paper's 97%%** for most functions (median over functions "
      "%.1f%%): the pages an invocation touches are mostly the interpreter's or program's code and data, the "
      "same for every input." % (100 * med([r["reuse"] for r in multi]) if multi else 0) +
      ((" It is lower for %s, whose inputs differ in size: a larger input touches pages (more heap, more "
        "code paths) that a small one never does, so a small input's working set is reused almost entirely "
        "by a large one but not the other way round (the matrices are asymmetric)."
        % ", ".join(r["name"] for r in small)) if small else ""))
    w("- **Runs are short in guest-physical order and almost absent in fault order**, as in the paper: even "
      "the sorted working set breaks into runs of a few pages, and consecutive faults are rarely neighbours. "
      "A 128 KiB read-around on each fault therefore fetches mostly pages the function never uses; an 8 MiB "
      "one saves most faults only because thaw's guests are small (one window covers much of a program "
      "image), at the cost of reading many times the working set. REAP's one read of exactly the working set "
      "avoids both.")
    w("- **The file archive is in the working set only of functions that read data files while serving** "
      "(%s). Python functions import their modules before the ready point, so the snapshot holds the parsed "
      "code on the heap and their source files are not read again (the packages' shared libraries are "
      "image pages, not counted here)."
      % (", ".join("%s %.0f%%" % (r["name"], r["regions"]["file archive"]) for r in files) or "none"))
    w("- **What thaw does not measure that the paper did:** its functions run in Firecracker with a Linux guest "
      "and containerd; thaw restores on one host with a local disk and the host's page cache dropped per file "
      "(`posix_fadvise(POSIX_FADV_DONTNEED)`), not the whole host cache; times here are from a nested, "
      "shared machine and only ratios within one run are meaningful.")
    w("")
    w("## Figures per function")
    w("")
    w("For each function: the working set per input by region, the reuse matrix, the run-length histograms, "
      "the fault timeline and the map of touched pages in guest-physical memory (`thaw analyze "
      "functions/<f> --plot DIR` makes the same figures as PNG and SVG).")
    w("")
    for r in rows:
        d = "%s/%s" % (rel, r["name"])
        w("### %s" % r["name"])
        w("")
        figs = ["working_set", "reuse_matrix", "run_lengths", "fault_timeline", "memory_map"]
        w(" ".join("![%s](%s/%s.png)" % (f.replace("_", " "), d, f) for f in figs
                   if os.path.exists(os.path.join(figdir, r["name"], f + ".png"))))
        w("")
    with open(path + ".tmp", "w") as f:
        f.write("\n".join(L))
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "characterisation.md"))
    ap.add_argument("--figures", default=os.path.join(ROOT, "docs", "characterisation"))
    ap.add_argument("--runtimes-note", default="")
    ap.add_argument("functions", nargs="*")
    a = ap.parse_args()
    names = a.functions or suite()
    os.makedirs(a.figures, exist_ok=True)
    rows, failures, jsons = [], [], []
    with tempfile.TemporaryDirectory(prefix="thaw-suite-") as tmp:
        for name in names:
            print("analysing %s" % name, file=sys.stderr)
            try:
                an = analyse(name, tmp)
            except (RuntimeError, subprocess.TimeoutExpired, ValueError) as e:
                failures.append((name, str(e)))
                print("  failed: %s" % e, file=sys.stderr)
                continue
            jp = os.path.join(tmp, name + ".json")
            with open(jp, "w") as f:
                json.dump(an, f)
            jsons.append(jp)
            plot([jp, "-o", os.path.join(a.figures, name), "--formats", "png"])
            r = summarise(an)
            r["runtime"] = runtime_of(name)
            rows.append(r)
        if jsons:
            plot(["--suite"] + jsons + ["-o", a.figures, "--coldstart", os.path.join(ROOT, "docs", "benchmarks.md")])
    if not rows:
        sys.exit("suite_report.py: nothing could be analysed")
    cmd = "python3 tools/analysis/suite_report.py" + ("" if not a.functions else " " + " ".join(a.functions))
    write_doc(a.out, a.figures, rows, failures, a.runtimes_note, cmd)
    print("wrote %s" % a.out, file=sys.stderr)


if __name__ == "__main__":
    main()
