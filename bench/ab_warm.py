#!/usr/bin/env python3
"""Two thaw builds (or two environments) on warm invocations, interleaved: per function,
ROUNDS boots of each variant in ABBA order, each sending the first payload REPEAT times
(`thaw run --repeat`); a round's warm time is the median of its invocations after the
first. Prints per function the median over rounds for each variant, b / a, in how many
rounds b was faster (a sign count), VM exits per invocation, and the geometric mean of
b / a over the functions.

A variant is BINARY or BINARY:VAR=VALUE[,VAR=VALUE] as for bench/ab_restore.py. Each
binary boots its own tree's guest kernel (build/guest next to it), so two worktrees
compare two guests.

usage: bench/ab_warm.py --a VARIANT --b VARIANT [--rounds N] [--repeat N] [function ...]
"""
import argparse
import json
import math
import os
import statistics
import subprocess
import sys

import ab_restore
import coldstart

ROOT = coldstart.ROOT


def warm(variant, fdir, payload, repeat):
    binary, env = variant
    p = subprocess.run([binary, "run", fdir, "--payload", payload, "--repeat", str(repeat), "--json"],
                       capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    if p.returncode != 0:
        raise RuntimeError("%s run %s: %s" % (binary, fdir, p.stderr.strip()[-300:]))
    j = coldstart.last_json(p, "invocations_us")
    inv = j["invocations_us"]
    return statistics.median(inv[1:]), j["vm_exits"] / max(len(inv), 1)


def main():
    ap = argparse.ArgumentParser()
    ab_restore.add_variants(ap)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("functions", nargs="*")
    a = ap.parse_args()
    if a.rounds < 1 or a.repeat < 2:
        raise SystemExit("--rounds must be at least 1 and --repeat at least 2")
    va, vb = ab_restore.parse(a.a), ab_restore.parse(a.b)
    names = a.functions or ["json_serdes", "matmul_np", "image_rotate", "pyaes", "helloworld", "chameleon"]
    rows = []
    steal0 = coldstart.cpu_times()
    for name in names:
        fdir = os.path.join("functions", name)
        pl = coldstart.payload_of(os.path.join(ROOT, fdir))
        res = {"a": [], "b": []}
        for i in range(a.rounds):  # ABBA: a first on even rounds
            for k, v in ((("a", va), ("b", vb)) if i % 2 == 0 else (("b", vb), ("a", va))):
                res[k].append(warm(v, fdir, pl, a.repeat))
        won = sum(rb[0] < ra[0] for ra, rb in zip(res["a"], res["b"]))
        rows.append((name, {k: (statistics.median(x[0] for x in r), statistics.median(x[1] for x in r))
                            for k, r in res.items()}, won))
        print("done %s" % name, file=sys.stderr)
    print("Command: `python3 bench/ab_warm.py --a %s --b %s --rounds %d --repeat %d %s`  " % (
        a.a, a.b, a.rounds, a.repeat, " ".join(a.functions)))
    print("Medians over %d boots per variant, interleaved ABBA, of each boot's median warm invocation "
          "(invocations 2-%d); ms. a = `%s`, b = `%s`%s.\n" % (a.rounds, a.repeat, a.a, a.b,
                                                        coldstart.steal_note(steal0, coldstart.cpu_times())))
    print("| function | warm a | warm b | b / a | rounds b faster | VM exits per invocation a | b |")
    print("|---|---|---|---|---|---|---|")
    for name, m, won in rows:
        print("| %s | %.2f | %.2f | %.2fx | %d of %d | %.1f | %.1f |" % (
            name, m["a"][0] / 1e3, m["b"][0] / 1e3, m["b"][0] / m["a"][0], won, a.rounds, m["a"][1], m["b"][1]))
    if rows:
        g = math.exp(sum(math.log(m["b"][0] / m["a"][0]) for _, m, _ in rows) / len(rows))
        print("\nGeometric mean of b / a over %d functions: **%.3fx**." % (len(rows), g))


if __name__ == "__main__":
    main()
