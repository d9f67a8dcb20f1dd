#!/usr/bin/env python3
"""Shared working sets through `thaw serve`: N instances of memtouch alive at once in
one daemon (jailed workers, as deployed), restore=share against restore=reap.

For each mode, memtouch is deployed under its own name (its own snapshot), its working
set recorded by one cold start that reads the 16 MiB the instances will use
({"parts": N, "part": 0, "mib": 16, "write": 0}), and that instance torn down. Then N
client threads post at the same moment {"parts": N, "part": i, "mib": 16, "write": 1,
"hold_ms": 2000} (each answers 2 s after its work, so all N find every instance busy;
the cold-start times reported leave the hold out):
every answer must be a cold start of the mode (X-Thaw-Start), on N distinct instances,
with bad_words 0 (the instance wrote its own part, every other part holds the snapshot's
bytes). Then "write": 0 checks are posted in rounds of N until every instance answered
one after all of them wrote (each checks its own part and every other part again). While
all N are alive, the PSS of every instance's worker process (the daemon's jailed
children: /proc/PID/smaps_rollup) is summed; the guest memory's share of it (the largest mapping in
/proc/PID/smaps) beside it.

usage: bench/serve_share.py [--sweep 1,2,4,8] [--json]
Prints a Markdown table (or, with --json, one JSON object per N and mode); exits 1 if an
answer was wrong, a start was not of its mode or the instances were not distinct.
"""
import argparse
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from daemon import ROOT, Daemon  # noqa: E402

MIB = 16
HOLD_MS = 2000  # see run(): how long each concurrent write holds its instance


def instance_workers(pid):
    """The daemon's children that hold an instance: jailed (Seccomp 2); spare workers,
    started ahead and waiting for one, are not jailed yet."""
    out = []
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/children" % (pid, task)) as f:
                kids = [int(x) for x in f.read().split()]
        except OSError:
            continue
        for k in kids:
            try:
                with open("/proc/%d/status" % k) as f:
                    if any(l.split() == ["Seccomp:", "2"] for l in f):
                        out.append(k)
            except OSError:
                pass
    return out


def rollup_pss_kb(pid):
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def guest_pss_kb(pid):
    """PSS of the process's largest mapping (guest memory)."""
    best_size, best_pss, size, pss = 0, 0, 0, 0
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            if line.startswith("Size:"):
                size = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
                if size > best_size:
                    best_size, best_pss = size, pss
    return best_pss


def concurrently(d, name, payloads):
    res = [None] * len(payloads)
    barrier = threading.Barrier(len(payloads))

    def one(i):
        barrier.wait()
        res[i] = d.invoke(name, payloads[i])

    th = [threading.Thread(target=one, args=(i,)) for i in range(len(payloads))]
    for t in th:
        t.start()
    for t in th:
        t.join()
    return res


def run(d, mode, n, problems):
    name = "mt%s%d" % (mode, n)
    d.deploy(name, os.path.join(ROOT, "functions", "memtouch"), restore=mode, max_instances=max(n, 1),
             keep_alive_ms=0, queue_timeout_ms=120000)
    rec = ('{"parts": %d, "part": 0, "mib": %d, "write": 0}' % (n, MIB)).encode()
    st, h, _ = d.invoke(name, rec)
    if st != 200 or h.get("X-Thaw-Start") != "cold-reap":
        problems.append("%s: the recording start answered %s %s" % (name, st, h.get("X-Thaw-Start")))
    d.wait_no_instances()
    d.patch(name, keep_alive_ms=600000)
    want = "cold-" + mode
    # Each write answers HOLD_MS after its work: all N requests arrive while every
    # instance is still busy, so a daemon that reuses an instance on its way back to
    # idle (as it should) cannot make two of them land on one instance.
    res = concurrently(d, name, [('{"parts": %d, "part": %d, "mib": %d, "write": 1, "hold_ms": %d}'
                                  % (n, i, MIB, HOLD_MS)).encode() for i in range(n)])
    part_of, cold = {}, []
    for i, (st, h, ms) in enumerate(res):
        inst = h.get("X-Thaw-Instance")
        if st != 200 or h.get("X-Thaw-Start") != want:
            problems.append("%s part %d: %s %s" % (name, i, st, h.get("X-Thaw-Start")))
        part_of[inst] = i
        cold.append(ms - HOLD_MS)
    if len(part_of) != n:
        problems.append("%s: %d requests went to %d instances" % (name, n, len(part_of)))
    for i, (st, h, ms) in enumerate(res):
        if st == 200 and h["_json"].get("bad_words") != 0:
            problems.append("%s part %d: %s" % (name, i, h["_json"]))
    # All wrote: each instance checks its own part and every other part again.
    checked = set()
    for _ in range(12):
        if len(checked) == n:
            break
        for st, h, _ in concurrently(d, name, [('{"parts": %d, "part": 0, "mib": %d, "write": 0}' % (n, MIB)).encode()] * n):
            inst = h.get("X-Thaw-Instance")
            j = h.get("_json") or {}
            if st != 200 or h.get("X-Thaw-Start") != "warm" or j.get("bad_words") != 0 or j.get("part") != part_of.get(inst):
                problems.append("%s check on %s: %s %s %s" % (name, inst, st, h.get("X-Thaw-Start"), j))
            checked.add(inst)
    if len(checked) != n:
        problems.append("%s: only %d of %d instances answered a check" % (name, len(checked), n))
    workers = instance_workers(d.proc.pid)
    fn = d.function(name)
    alive = fn["instances"]["idle"] + fn["instances"]["busy"]
    if alive != n or len(workers) != n:
        problems.append("%s: %d instances, %d worker processes alive (want %d)" % (name, alive, len(workers), n))
    pss = sum(rollup_pss_kb(p) for p in workers)
    gpss = sum(guest_pss_kb(p) for p in workers)
    d.patch(name, keep_alive_ms=0)
    d.wait_no_instances()
    cold.sort()
    return {"mode": mode, "n": n, "pss_kb": pss, "guest_pss_kb": gpss, "cold_median_ms": cold[len(cold) // 2],
            "checked": len(checked)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sweep", default="1,2,4,8")
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    problems = []
    rows = []
    # Responses carry JSON bodies: keep them with the headers.
    orig = Daemon.invoke

    def invoke(self, name, payload):
        import daemon as dm
        t = time.perf_counter()
        st, h, body = dm.http("%s/invoke/%s" % (self.url, name), "POST", payload)
        try:
            h["_json"] = json.loads(body)
        except ValueError:
            h["_json"] = {"raw": body[:200].decode(errors="replace")}
        return st, h, (time.perf_counter() - t) * 1000.0

    Daemon.invoke = invoke
    with Daemon() as d:
        for n in [int(x) for x in a.sweep.split(",")]:
            r = {m: run(d, m, n, problems) for m in ("reap", "share")}
            rows.append(r)
            if a.json:
                for m in ("reap", "share"):
                    print(json.dumps(r[m]), flush=True)
    Daemon.invoke = orig
    load = open("/proc/loadavg").read().split()[:3]
    if not a.json:
        print("| N | reap PSS (MiB) | share PSS (MiB) | share / reap | guest memory: reap | share | share / reap "
              "| reap cold median (ms) | share cold median (ms) |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            s, p = r["share"], r["reap"]
            print("| %d | %.1f | %.1f | %.0f%% | %.1f | %.1f | %.0f%% | %.1f | %.1f |" % (
                s["n"], p["pss_kb"] / 1024, s["pss_kb"] / 1024, 100.0 * s["pss_kb"] / max(p["pss_kb"], 1),
                p["guest_pss_kb"] / 1024, s["guest_pss_kb"] / 1024, 100.0 * s["guest_pss_kb"] / max(p["guest_pss_kb"], 1),
                p["cold_median_ms"], s["cold_median_ms"]))
        print("\nload average at the end: %s" % " ".join(load))
    for p in problems:
        print("PROBLEM: " + p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
