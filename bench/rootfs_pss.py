#!/usr/bin/env python3
"""Memory of N REAP instances of a function with a root-filesystem image, alive at once in
one `thaw serve` (jailed workers, as deployed): the RSS and PSS of every instance's worker
(/proc/PID/smaps_rollup) summed, and of the image mapping alone (every mapping inside the
image's address range: the image file's page-cache pages and the private copies over it).

With the file working set read ahead into the image's page cache, N instances share one
copy of it (PSS counts 1/N of each page to each); with it decoded into private copies
(rootfs.ws 3.0) each instance holds its own. Run it with each tree's binary to compare.

usage: bench/rootfs_pss.py [--thaw BINARY] [--n 4] [function]   (default cnn_serving)
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import coldstart  # noqa: E402
import daemon  # noqa: E402
from serve_share import concurrently, instance_workers  # noqa: E402


def rollup(pid):
    out = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            k = line.split(":")[0]
            if k in ("Rss", "Pss"):
                out[k] = int(line.split()[1])
    return out


def image_kb(pid):
    """RSS and PSS of the mappings inside the image's range (file and anonymous runs)."""
    vmas, cur = [], None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            head = line.split()
            if "-" in head[0] and len(head) >= 5 and ":" not in head[0]:
                lo, hi = (int(x, 16) for x in head[0].split("-"))
                cur = {"lo": lo, "hi": hi, "path": head[5] if len(head) > 5 else "", "Rss": 0, "Pss": 0}
                vmas.append(cur)
            elif cur is not None and head[0] in ("Rss:", "Pss:"):
                cur[head[0][:-1]] = int(head[1])
    img = [v for v in vmas if v["path"].endswith(".img")]
    if not img:
        return {"Rss": 0, "Pss": 0}
    lo, hi = min(v["lo"] for v in img), max(v["hi"] for v in img)
    inside = [v for v in vmas if v["lo"] >= lo and v["hi"] <= hi]
    return {k: sum(v[k] for v in inside) for k in ("Rss", "Pss")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--thaw", default=daemon.THAW)
    ap.add_argument("--n", type=int, default=4)
    ap.add_argument("function", nargs="?", default="cnn_serving")
    a = ap.parse_args()
    daemon.THAW = os.path.abspath(a.thaw)
    fdir = os.path.join(daemon.ROOT, "functions", a.function)
    pl = coldstart.payload_of(fdir).encode()
    with daemon.Daemon() as d:
        d.deploy(a.function, fdir, restore="reap", max_instances=a.n, keep_alive_ms=0, queue_timeout_ms=120000)
        st, h, _ = d.invoke(a.function, pl)  # records the working sets
        if st != 200 or h.get("X-Thaw-Start") != "cold-reap":
            raise SystemExit("recording start: %s %s" % (st, h.get("X-Thaw-Start")))
        d.wait_no_instances()
        d.patch(a.function, keep_alive_ms=600000)
        res = concurrently(d, a.function, [pl] * a.n)
        starts = sorted(set(h.get("X-Thaw-Start") for _, h, _ in res))
        if any(s != 200 for s, _, _ in res) or starts != ["cold-reap"]:
            raise SystemExit("starts: %s" % [(s, h.get("X-Thaw-Start")) for s, h, _ in res])
        workers = instance_workers(d.proc.pid)
        if len(workers) != a.n:
            raise SystemExit("%d workers alive, want %d" % (len(workers), a.n))
        tot = [rollup(p) for p in workers]
        img = [image_kb(p) for p in workers]
        out = {"thaw": a.thaw, "function": a.function, "n": a.n,
               "rss_mib": sum(t["Rss"] for t in tot) / 1024, "pss_mib": sum(t["Pss"] for t in tot) / 1024,
               "image_rss_mib": sum(t["Rss"] for t in img) / 1024,
               "image_pss_mib": sum(t["Pss"] for t in img) / 1024}
        d.patch(a.function, keep_alive_ms=0)
        d.wait_no_instances()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
