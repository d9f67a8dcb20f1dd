#!/usr/bin/env python3
"""Figures for `thaw analyze --plot DIR`, from its JSON (PNG and SVG, matplotlib).

usage: plot_analysis.py ANALYSIS.json [-o DIR]
       plot_analysis.py --suite A.json B.json ... [-o DIR] [--coldstart docs/benchmarks.md]

One function: working set per input split by region, the reuse matrix as a heat map,
run-length histograms (guest-physical and fault order), the fault timeline and a map of
touched pages in guest-physical memory. --suite: the working set of every function side
by side, and cold-start latency per restore mode from the cold-start benchmark's table.
"""
import argparse
import json
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

REGIONS = ["kernel", "program text", "program data", "file archive", "heap/anonymous", "stack"]
COLOURS = {"kernel": "#7f7f7f", "program text": "#1f77b4", "program data": "#aec7e8",
           "file archive": "#2ca02c", "heap/anonymous": "#ff7f0e", "stack": "#d62728"}
MIB = 1048576.0
FORMATS = ["png", "svg"]


def save(fig, outdir, name):
    fig.tight_layout()
    paths = []
    for ext in FORMATS:
        p = os.path.join(outdir, "%s.%s" % (name, ext))
        fig.savefig(p, dpi=110)
        paths.append(p)
    plt.close(fig)
    return paths


def stacked_regions(ax, labels, per_region, page_size):
    bottom = [0.0] * len(labels)
    for reg in REGIONS:
        vals = [r.get(reg, 0) * page_size / MIB for r in per_region]
        if any(vals):
            ax.bar(labels, vals, bottom=bottom, label=reg, color=COLOURS[reg])
            bottom = [b + v for b, v in zip(bottom, vals)]
    ax.set_ylabel("working set (MiB)")
    ax.legend(fontsize=8)


def plot_working_set(a, outdir):
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(a["payloads"]) + 2), 3.5))
    stacked_regions(ax, [p["name"] for p in a["payloads"]], [p["working_set"]["by_region"] for p in a["payloads"]],
                    a["page_size"])
    ax.set_title("%s: working set per input" % a["function"])
    return save(fig, outdir, "working_set")


def plot_reuse(a, outdir):
    u = a.get("reuse")
    if not u or len(u["payloads"]) < 2:
        return []
    n = len(u["payloads"])
    fig, ax = plt.subplots(figsize=(1.1 * n + 2.5, 1.0 * n + 1.5))
    im = ax.imshow([[100 * v for v in row] for row in u["matrix"]], vmin=0, vmax=100, cmap="viridis")
    ax.set_xticks(range(n), u["payloads"], rotation=30, ha="right")
    ax.set_yticks(range(n), u["payloads"])
    for i in range(n):
        for j in range(n):
            v = 100 * u["matrix"][i][j]
            ax.text(j, i, "%.0f%%" % v, ha="center", va="center", color="white" if v < 60 else "black", fontsize=8)
    ax.set_xlabel("input that reuses")
    ax.set_ylabel("input's working set")
    fig.colorbar(im, ax=ax, label="% of the row's pages touched by the column")
    ax.set_title("%s: reuse across inputs" % a["function"])
    return save(fig, outdir, "reuse_matrix")


def plot_runs(a, outdir):
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
    for ax, key, title in zip(axes, ("guest_order", "fault_order"), ("guest-physical order", "fault order")):
        for p in a["payloads"]:
            r = p["runs"][key]
            total = sum(c for _, c in r["histogram"]) or 1
            xs = [L for L, _ in r["histogram"]]
            ys = [100.0 * c / total for _, c in r["histogram"]]
            ax.plot(xs, ys, marker="o", ms=3, label="%s (mean %.1f)" % (p["name"], r["mean"]))
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("run length (pages)")
        ax.set_title(title)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("% of runs")
    fig.suptitle("%s: contiguous runs of touched pages" % a["function"])
    return save(fig, outdir, "run_lengths")


def plot_timeline(a, outdir):
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for p in a["payloads"]:
        seen, xs, ys = set(), [], []
        for t, gpa in p["timeline"]["points"]:
            if gpa in seen:
                continue
            seen.add(gpa)
            xs.append(t / 1e3)
            ys.append(len(seen) * a["page_size"] / MIB)
        ax.step(xs, ys, where="post", label=p["name"])
    ax.set_xlabel("time since the restore started (ms)")
    ax.set_ylabel("pages touched (MiB)")
    ax.set_title("%s: fault timeline" % a["function"])
    ax.legend(fontsize=8)
    return save(fig, outdir, "fault_timeline")


def plot_memory_map(a, outdir):
    n = len(a["payloads"])
    fig, ax = plt.subplots(figsize=(9, 0.6 * n + 1.8))
    for reg in a["layout"]:
        ax.axvspan(reg["start"] / MIB, reg["end"] / MIB, color=COLOURS.get(reg["kind"], "#cccccc"), alpha=0.25, lw=0)
    for i, p in enumerate(a["payloads"]):
        xs = sorted({gpa for _, gpa in p["timeline"]["points"]})
        ax.vlines([x / MIB for x in xs], i - 0.4, i + 0.4, lw=0.6, color="black")
    ax.set_yticks(range(n), [p["name"] for p in a["payloads"]])
    ax.set_xlim(0, a["mem_size"] / MIB)
    ax.set_xlabel("guest-physical address (MiB); shading: %s" %
                  ", ".join("%s" % r for r in REGIONS if any(x["kind"] == r for x in a["layout"])))
    ax.set_title("%s: touched pages in guest memory" % a["function"])
    return save(fig, outdir, "memory_map")


def plot_one(a, outdir):
    out = []
    for f in (plot_working_set, plot_reuse, plot_runs, plot_timeline, plot_memory_map):
        out += f(a, outdir)
    return out


def coldstart_rows(path):
    """The cold-start table of docs/benchmarks.md: {function: {mode: ms}}."""
    rows, header = {}, None
    with open(path) as f:
        for line in f:
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if cells and cells[0] == "function" and "lazy" in cells and "reap" in cells:
                header = cells
                rows = {}
                continue
            if header and len(cells) == len(header) and not re.match(r"^-+$", cells[0]):
                try:
                    rows[cells[0]] = {m: float(cells[header.index(m)]) for m in ("boot", "copy", "lazy", "uffd", "reap", "warm")}
                except ValueError:
                    pass
            elif header and rows and not line.strip():
                break
    return rows


def plot_suite(analyses, outdir, coldstart):
    out = []
    names = [a["function"] for a in analyses]
    regions, page = [], analyses[0]["page_size"]
    for a in analyses:
        # The median input's working set stands for the function.
        ps = sorted(a["payloads"], key=lambda p: p["working_set"]["pages"])
        regions.append(ps[len(ps) // 2]["working_set"]["by_region"])
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(names) + 2), 4))
    stacked_regions(ax, names, regions, page)
    ax.tick_params(axis="x", rotation=45)
    ax.set_title("working set per function, median input (paper: restored footprints of 8-99 MB)")
    out += save(fig, outdir, "suite_working_set")
    if coldstart and os.path.exists(coldstart):
        rows = coldstart_rows(coldstart)
        fns = [n for n in names if n in rows] or sorted(rows)
        if fns:
            modes = ["boot", "copy", "lazy", "uffd", "reap", "warm"]
            fig, ax = plt.subplots(figsize=(max(7, 0.8 * len(fns) + 2), 4))
            w = 0.8 / len(modes)
            for k, m in enumerate(modes):
                ax.bar([i + k * w for i in range(len(fns))], [rows[f][m] for f in fns], w, label=m)
            ax.set_xticks([i + 0.4 - w / 2 for i in range(len(fns))], fns, rotation=45, ha="right")
            ax.set_yscale("log")
            ax.set_ylabel("cold start, median (ms)")
            ax.set_title("cold-start latency per restore mode (%s)" % os.path.basename(coldstart))
            ax.legend(fontsize=8, ncol=3)
            out += save(fig, outdir, "coldstart_modes")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("json", nargs="+")
    ap.add_argument("-o", "--outdir", default=".")
    ap.add_argument("--suite", action="store_true")
    ap.add_argument("--coldstart", help="docs/benchmarks.md (its cold-start table)")
    ap.add_argument("--formats", default="png,svg", help="comma-separated: png, svg")
    a = ap.parse_args()
    FORMATS[:] = [f for f in a.formats.split(",") if f]
    os.makedirs(a.outdir, exist_ok=True)
    analyses = []
    for p in a.json:
        with open(p) as f:
            analyses.append(json.load(f))
    if a.suite:
        out = plot_suite(analyses, a.outdir, a.coldstart)
    else:
        if len(analyses) != 1:
            sys.exit("plot_analysis.py: one analysis at a time (or --suite)")
        out = plot_one(analyses[0], a.outdir)
    for p in out:
        print(p)


if __name__ == "__main__":
    main()
