"""stdlib: a handler on Debian's whole standard library, C accelerators included.
Imports decimal, fractions, statistics, asyncio, sqlite3, ctypes and json (with its C
codec) at import time and uses each per request. {"op": "exit"} raises SystemExit,
{"op": "interrupt"} KeyboardInterrupt, {"op": "print"} prints a line to the log:
they exercise the runtime. {"op": "tmp"} uses the writable /tmp, {"op": "threads"}
threads with a pipe and a thread pool under asyncio, {"op": "poll"} poll's timeouts,
{"op": "proc"} /proc/meminfo, /proc/self/maps and glibc's pthread_getattr_np.

Payload: {"values": [numbers]} (default [1, 2, 3, 4]).
"""
import asyncio
import ctypes
import decimal
import fractions
import json
import sqlite3
import statistics
import sys

import _decimal  # noqa: F401  the C implementations, not the pure-Python fallbacks
import _json  # noqa: F401

LIBC = ctypes.CDLL(None)


async def gather(values):
    """A real event loop (epoll, a socketpair self-pipe): tasks, a timer, a callback
    from call_soon_threadsafe, a queue."""
    loop = asyncio.get_running_loop()
    queue = asyncio.Queue()

    async def produce(v):
        await asyncio.sleep(0.001)
        await queue.put(v)

    poked = loop.create_future()
    loop.call_soon_threadsafe(poked.set_result, "poked")
    await asyncio.gather(*(produce(v) for v in values[:50]))
    got = [queue.get_nowait() for _ in range(queue.qsize())]
    return [len(got), await poked]


def use_tmp(rows):
    """The writable /tmp: a temporary directory, a file, an on-disk SQLite database."""
    import os
    import tempfile
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "notes.txt")
        with open(path, "w") as f:
            f.write("x" * 1000)
        with open(path, "a") as f:
            f.write("tail")
        size = os.path.getsize(path)
        # An atomic replace: write a temporary name, rename it over the real file.
        with tempfile.NamedTemporaryFile("w", dir=d, delete=False) as t:
            t.write("replaced")
        os.replace(t.name, path)
        with open(path) as f:
            replaced = f.read()
        db = sqlite3.connect(os.path.join(d, "t.db"))
        db.execute("create table t (k integer primary key, v text)")
        db.executemany("insert into t (v) values (?)", [("row %d" % i,) for i in range(rows)])
        db.commit()
        count = db.execute("select count(*) from t").fetchone()[0]
        db.close()
        listing = sorted(os.listdir(d))
    return {"tmpdir": os.path.dirname(d), "size": size, "replaced": replaced, "sqlite_rows": count,
            "files": listing, "cleaned": not os.path.exists(d)}


def use_poll():
    """select.poll's timeout is honoured (nothing ready: it waits that long, then
    reports nothing), a ready pipe is reported at once, and a wait without a timeout
    is ended by another thread's write."""
    import os
    import select
    import threading
    import time
    r, w = os.pipe()
    p = select.poll()
    p.register(r, select.POLLIN)
    t0 = time.monotonic()
    first = p.poll(50)
    waited = time.monotonic() - t0
    os.write(w, b"x")
    ready = [mask for _, mask in p.poll(1000)]
    os.read(r, 1)
    t = threading.Thread(target=lambda: (time.sleep(0.02), os.write(w, b"y")))
    t.start()
    woken = [mask for _, mask in p.poll()]  # no timeout: only the thread can end it
    t.join()
    os.close(r)
    os.close(w)
    return {"first": len(first), "waited_50ms": waited >= 0.049, "ready": ready, "woken_by_thread": woken}


def use_threads():
    """Guest threads with pipes: a blocking read that another thread's write ends, and
    an event loop handing work to a thread pool (run_in_executor)."""
    import concurrent.futures
    import os
    import threading
    import time
    r, w = os.pipe()
    t = threading.Thread(target=lambda: (time.sleep(0.01), os.write(w, b"from a thread")))
    t.start()
    got = os.read(r, 100)  # blocks until the other thread writes
    t.join()
    os.close(r)
    os.close(w)

    async def offload():
        loop = asyncio.get_running_loop()
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            return await asyncio.gather(*(loop.run_in_executor(ex, pow, 2, k) for k in range(8)))
    return {"pipe": got.decode(), "executor": asyncio.run(offload())}


def use_proc():
    """/proc/meminfo and /proc/self/maps, and what glibc's pthread_getattr_np (TBB
    calls it) finds in maps for the main thread: its stack."""
    mem = {k: v.strip() for k, v in (l.split(":", 1) for l in open("/proc/meminfo").read().splitlines())}
    maps = open("/proc/self/maps").read().splitlines()
    attr = ctypes.create_string_buffer(128)
    LIBC.pthread_self.restype = ctypes.c_ulong
    rc = LIBC.pthread_getattr_np(ctypes.c_ulong(LIBC.pthread_self()), attr)
    addr, size = ctypes.c_void_p(), ctypes.c_size_t()
    if rc == 0:
        LIBC.pthread_attr_getstack(attr, ctypes.byref(addr), ctypes.byref(size))
        LIBC.pthread_attr_destroy(attr)
    here = ctypes.addressof(ctypes.c_int())  # not on the stack: just a live heap address
    return {"mem_total_kb": int(mem["MemTotal"].split()[0]), "mem_free_kb": int(mem["MemFree"].split()[0]),
            "stack_lines": sum(l.endswith("[stack]") for l in maps), "getattr": rc, "stack_mib": size.value >> 20,
            "heap_mapped": any(int(l.split("-")[0], 16) <= here < int(l.split()[0].split("-")[1], 16) for l in maps)}


def handle(event):
    op = event.get("op", "compute")
    if op == "exit":
        sys.exit(3)
    if op == "interrupt":
        raise KeyboardInterrupt
    if op == "tmp":
        return use_tmp(event.get("rows", 100))
    if op == "threads":
        return use_threads()
    if op == "poll":
        return use_poll()
    if op == "proc":
        return use_proc()
    if op == "print":
        print("stdlib handler says hello to the log")
        return {"printed": True}
    values = event.get("values", [1, 2, 3, 4])
    db = sqlite3.connect(":memory:")
    db.execute("create table t (x real)")
    db.executemany("insert into t values (?)", [(v,) for v in values])
    total, count = db.execute("select sum(x), count(*) from t").fetchone()
    db.close()
    text = json.dumps({"v": values}).encode()
    awaited = asyncio.run(gather(values))
    return {
        "decimal": str(sum(decimal.Decimal(str(v)) for v in values) / decimal.Decimal(3)),
        "fraction": str(sum(fractions.Fraction(v).limit_denominator(1000) for v in values)),
        "mean": statistics.fmean(values),
        "median": statistics.median(values),
        "stdev": round(statistics.stdev(values), 12) if len(values) > 1 else 0,
        "sqlite": [total, count],
        "ctypes_strlen": LIBC.strlen(text),
        "asyncio": awaited,
        "decimal_is_c": decimal.Decimal.__module__ == "decimal" and hasattr(decimal, "__libmpdec_version__"),
    }
