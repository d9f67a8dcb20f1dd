#!/usr/bin/env python3
"""Debian's python3.11 in the guest, through the real CLI (microVMs, /dev/kvm):
runtime behaviour in one VM (SystemExit and KeyboardInterrupt are error responses
and the instance keeps serving, an empty body is the event {}, print() reaches the
log and never the response), a package that is not installed is one build error
naming the apt-get line, /tmp is writable, and a function whose files total over 500 MB (PyTorch) has
a snapshot that is a small part of what is installed.

Prints one line per check and ends with "N passed, N failed"."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import thaw_suite  # noqa: E402
from thaw_suite import BUILD, ROOT, check  # noqa: E402


def thaw(*args):
    return thaw_suite.thaw(*args, timeout=600)  # its builds (PyTorch) take minutes


def allocated(path):
    return os.stat(path).st_blocks * 512


def runtime_behaviour():
    p = thaw("run", "functions/stdlib", "--payload", '{"op": "exit"}', "--payload", '{"op": "interrupt"}',
             "--payload", "", "--payload", '{"op": "print"}', "--payload", '{"values": [1, 2]}')
    lines = p.stdout.strip().splitlines()
    check("stdlib function serves five requests in one VM", p.returncode == 0 and len(lines) == 5, p.stderr[-400:])
    if len(lines) != 5:
        return
    r = [json.loads(l) for l in lines]
    check("SystemExit in a handler is an error response", r[0].get("error", "").startswith("SystemExit"), r[0])
    check("KeyboardInterrupt in a handler is an error response", r[1].get("error", "").startswith("KeyboardInterrupt"),
          r[1])
    check("an empty body is the event {}", r[2].get("sqlite") == [10.0, 4] and r[2].get("asyncio") == [4, "poked"],
          r[2])
    check("print() goes to the log, not the response",
          r[3] == {"printed": True} and "says hello to the log" in p.stderr and "says hello" not in p.stdout, p.stderr)
    check("the instance keeps serving after them", r[4].get("sqlite") == [3.0, 2], r[4])


def writable_tmp():
    p = thaw("run", "functions/stdlib", "--payload", '{"op": "tmp", "rows": 500}')
    try:
        r = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        r = {}
    check("/tmp is writable guest memory (tempfile, a file, os.replace over it, an on-disk SQLite database)",
          r == {"tmpdir": "/tmp", "size": 1004, "replaced": "replaced", "sqlite_rows": 500,
                "files": ["notes.txt", "t.db"], "cleaned": True},
          p.stdout[-300:] + p.stderr[-300:])


def threads_and_pipes():
    p = thaw("run", "functions/stdlib", "--payload", '{"op": "threads"}')
    try:
        r = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        r = None
    check("a blocking pipe read ends by another thread's write; asyncio's run_in_executor on a thread pool",
          r == {"pipe": "from a thread", "executor": [2 ** k for k in range(8)]}, p.stdout[-300:] + p.stderr[-300:])


def poll_timeouts():
    p = thaw("run", "functions/stdlib", "--payload", '{"op": "poll"}')
    try:
        r = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        r = None
    check("poll waits its timeout with nothing ready, reports a ready pipe, and another thread's write ends "
          "a wait without one", r == {"first": 0, "waited_50ms": True, "ready": [1], "woken_by_thread": [1]},
          p.stdout[-300:] + p.stderr[-300:])


def proc_files():
    p = thaw("run", "functions/stdlib", "--payload", '{"op": "proc"}')
    try:
        r = json.loads(p.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        r = {}
    check("/proc/meminfo tells the guest's memory; /proc/self/maps lets glibc's pthread_getattr_np find "
          "the 8 MiB stack", r.get("mem_total_kb") == 256 << 10 and 0 < r.get("mem_free_kb", 0) < 256 << 10 and
          r.get("stack_lines") == 1 and r.get("getattr") == 0 and r.get("stack_mib") == 8 and r.get("heap_mapped"),
          p.stdout[-300:] + p.stderr[-300:])


def missing_package(tmp):
    fdir = os.path.join(tmp, "needs_missing")
    os.makedirs(os.path.join(fdir, "payloads"))
    with open(os.path.join(fdir, "function.json"), "w") as f:
        json.dump({"name": "needs_missing", "runtime": "python", "packages": ["python3-thaw-not-a-package"]}, f)
    with open(os.path.join(fdir, "handler.py"), "w") as f:
        f.write("def handle(event):\n    return {}\n")
    p = thaw("build", fdir, "--out", os.path.join(tmp, "out"))
    err = p.stderr.strip().splitlines()
    check("a missing package is one error naming the apt-get line",
          p.returncode != 0 and len(err) == 1 and
          "apt-get install -y --no-install-recommends python3-thaw-not-a-package" in err[0], p.stderr)


def big_function(tmp):
    name = "cnn_serving"
    p = thaw("build", "functions/" + name)  # the bundle names its image and what it holds
    with open(os.path.join(ROOT, BUILD, "bundles", name, "python.json")) as f:
        installed = json.load(f)["installed_bytes"]
    check("%s's files total over 500 MB (%d MB)" % (name, installed >> 20), installed > 500 << 20)
    snap = os.path.join(tmp, name)
    p = thaw("snapshot", "functions/" + name, "-o", snap)
    check("%s snapshots" % name, p.returncode == 0, p.stderr[-400:])
    if p.returncode != 0:
        return
    snap_bytes = sum(allocated(os.path.join(snap, n)) for n in os.listdir(snap))
    with open(os.path.join(snap, "rootfs")) as f:
        touched = json.load(f)["touched_bytes"]
    print("      %s: installed %d MB, image pages touched by boot %d MB, snapshot allocated %d MB"
          % (name, installed >> 20, touched >> 20, snap_bytes >> 20))
    check("its snapshot is a small part of what is installed (%d of %d MB)" % (snap_bytes >> 20, installed >> 20),
          snap_bytes < installed / 4, snap_bytes)
    expected = open(os.path.join(ROOT, "functions", name, "expected", "4.json")).read()
    for mode in ("lazy", "reap", "reap"):
        p = thaw("restore", snap, "--mem", mode, "--drop-cache", "--payload-file",
                 os.path.join("functions", name, "payloads", "4.json"))
        check("%s restores in %s mode from a cold page cache and answers as host python3" % (name, mode),
              p.returncode == 0 and p.stdout.rstrip("\n") == expected, p.stdout[:200] + p.stderr[-300:])


IMPORTER = """import importlib


def handle(event):
    m = importlib.import_module(event["module"])
    return {"module": m.__name__, "public": len([n for n in dir(m) if not n.startswith("_")])}
"""


def ws_count(snap):
    """Pages rootfs.ws names (its header's count, offset 24), or -1 without one."""
    path = os.path.join(snap, "rootfs.ws")
    if not os.path.exists(path):
        return -1
    with open(path, "rb") as f:
        return int.from_bytes(f.read(32)[24:32], "little")


def file_working_set_follows_inputs(tmp):
    """REAP's file working set (rootfs.ws) merges what a new input read from the image and
    drops, when probed, pages no input uses (keep 1 here: one generation unused)."""
    fdir = os.path.join(tmp, "importer")
    os.makedirs(fdir)
    with open(os.path.join(fdir, "function.json"), "w") as f:
        json.dump({"name": "importer", "runtime": "python", "memory_mib": 128}, f)
    with open(os.path.join(fdir, "handler.py"), "w") as f:
        f.write(IMPORTER)
    snap = os.path.join(tmp, "importer.snap")
    p = thaw("snapshot", fdir, "-o", snap)
    check("a function importing what its input names snapshots", p.returncode == 0, p.stderr[-400:])
    if p.returncode != 0:
        return
    env = {"THAW_WS_KEEP": "1"}
    a, b = '{"module": "json"}', '{"module": "email.mime.multipart"}'

    def restore(payload, module):
        p = thaw_suite.thaw("restore", snap, "--mem", "reap", "--drop-cache", "--json", "--payload", payload,
                            timeout=600, env=env)
        lines = p.stdout.strip().splitlines()
        ok = p.returncode == 0 and len(lines) == 2 and json.loads(lines[0])["module"] == module
        return (json.loads(lines[1]) if ok else None), p.stdout[-300:] + p.stderr[-300:]

    j, out = restore(a, "json")
    check("the first REAP restore records rootfs.ws", j is not None and j["reap"]["recorded"] and ws_count(snap) > 0,
          out)
    recorded = ws_count(snap)
    j, out = restore(b, "email.mime.multipart")
    grown = ws_count(snap)
    check("a new input's image pages join rootfs.ws (%d -> %d pages)" % (recorded, grown),
          j is not None and j["rootfs"]["ws_merged"] and j["rootfs"]["ws_merge_added"] > 0
          and grown == recorded + j["rootfs"]["ws_merge_added"] - j["rootfs"]["ws_merge_dropped"]
          and os.path.exists(os.path.join(snap, "rootfs.gens")), out)
    j, out = restore(b, "email.mime.multipart")
    check("the next restore on it reads the merged pages ahead, probing the old ones",
          j is not None and j["rootfs"]["ws_withheld"] > 0
          and j["rootfs"]["ws_pages"] + j["rootfs"]["ws_withheld"] == grown, out)
    before = ws_count(snap)
    dropped = 0
    for _ in range(2):
        j, out = restore(a, "json")
        if j is None:
            break
        dropped += j["rootfs"]["ws_merge_dropped"]
    after = ws_count(snap)
    check("pages only the other input read leave it once probed unused (%d -> %d pages, %d dropped)"
          % (before, after, dropped), j is not None and dropped > 0 and 0 < after < before, out)
    gens = os.path.join(snap, "rootfs.gens")
    if os.path.exists(gens):
        with open(gens, "r+b") as f:
            f.seek(40)
            f.write(b"\xff\xff\xff\xff")  # a generation past the file's own: fails its checks
    j, out = restore(b, "email.mime.multipart")
    check("a damaged rootfs.gens is ignored (generations only): the restore answers and merges",
          j is not None and j["reap"]["prefetched"] and j["rootfs"]["ws_merge_added"] > 0, out)


def run_all(tmp):
    file_working_set_follows_inputs(tmp)
    runtime_behaviour()
    writable_tmp()
    threads_and_pipes()
    poll_timeouts()
    proc_files()
    missing_package(tmp)
    big_function(tmp)


if __name__ == "__main__":
    sys.exit(thaw_suite.main("Python runtime", run_all))
