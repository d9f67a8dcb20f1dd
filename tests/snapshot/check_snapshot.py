#!/usr/bin/env python3
"""Snapshot, restore and REAP tests through the real CLI (microVMs, /dev/kvm).

Prints one line per check and ends with "N passed, N failed"."""
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import thaw_suite  # noqa: E402
from thaw_suite import ROOT, THAW, check  # noqa: E402


def thaw(*args, check_rc=True, env=None):
    p = thaw_suite.thaw(*args, env=env)
    if check_rc and p.returncode != 0:
        raise RuntimeError("thaw %s failed (%d): %s" % (" ".join(args), p.returncode, p.stderr))
    return p


def restore(snap, mode, *payloads, extra=(), env=None):
    args = ["restore", snap, "--mem", mode, "--json"] + list(extra)
    for pl in payloads:
        args += ["--payload", pl]
    p = thaw(*args, env=env)
    lines = p.stdout.strip().splitlines()
    return lines[:-1], json.loads(lines[-1]), p.stderr


def costs_file(path, touch_ns, install_ns, read_ns, chunk_ns, samples=3, boot=None):
    """Writes a host costs file as reap_costs.c does (its layout: reap_costs.h)."""
    import struct
    import zlib
    if boot is None:
        boot = open("/proc/sys/kernel/random/boot_id").read().strip()
    body = struct.pack("<8sII40sQQQQI", b"THAWRCST", 1, samples, boot.encode(), touch_ns, install_ns, read_ns,
                       chunk_ns, 0)
    data = body + struct.pack("<I", zlib.crc32(body))
    if os.path.exists(path):
        os.unlink(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, data)
    os.close(fd)


def check_auto_chunks(tmp, hw, pl, want):
    """The default huge-chunk choice (auto): weighed with the host's measured costs, which
    each REAP restore measures and folds into the host's costs file."""
    path = os.path.join(tmp, "reap-costs")
    env = dict(os.environ, THAW_REAP_COSTS=path, THAW_PREFAULT="1")
    env.pop("THAW_REAP_HUGE", None)
    out, j, _ = restore(hw, "reap", pl, extra=("--drop-cache",), env=env)
    check("auto, with no costs measured on this host: no chunk taken, the same answer, and the restore measures them",
          j["reap"]["huge_policy"] == "auto" and j["reap"]["huge_chunks"] == 0 and out == [want] and
          os.path.exists(path) and os.stat(path).st_size == 96, (j["reap"], out))
    out, j, _ = restore(hw, "reap", pl, extra=("--drop-cache",), env=env)
    hc = j["reap"]["host_costs"]
    check("the next restore weighs the costs measured (first touch, install, read, a huge page's fault)",
          hc["samples"] >= 1 and hc["touch_us"] > 0 and hc["install_us"] > 0 and hc["read_us"] > 0 and
          (hc["huge_fault_us"] is None or hc["huge_fault_us"] > 0) and out == [want], hc)
    # Costs where first touches are dear and huge pages cheap: the dense chunks are taken.
    costs_file(path, touch_ns=200000, install_ns=2000, read_ns=1000, chunk_ns=100000)
    out, j, _ = restore(hw, "reap", pl, extra=("--drop-cache",), env=env)
    check("auto: where this host's costs say so, dense chunks are taken, and the answer is the same",
          j["reap"]["huge_chunks"] > 0 and out == [want] and j["reap"]["host_costs"]["touch_us"] == 200.0,
          j["reap"])
    # And where a huge page's fault outweighs what any chunk saves, none is.
    costs_file(path, touch_ns=1000, install_ns=1000, read_ns=4000, chunk_ns=4200000)
    p = thaw("restore", hw, "--mem", "reap", "--payload", pl, "--timings", env=env)
    check("auto: where a huge page costs more than a chunk saves, none is taken, and --timings says why",
          "REAP huge chunks: auto, 0 taken" in p.stderr and "a huge page's fault 4.20 ms" in p.stderr and
          want in p.stdout, p.stderr)
    # A file that does not check (or is not ours, or is of another boot) steers nothing.
    costs_file(path, touch_ns=200000, install_ns=2000, read_ns=1000, chunk_ns=100000, boot="not-this-boot")
    out, j, _ = restore(hw, "reap", pl, extra=("--drop-cache",), env=env)
    check("auto: a costs file of another boot is ignored (no chunk), and learning starts over",
          j["reap"]["huge_chunks"] == 0 and j["reap"]["host_costs"]["samples"] == 0 and out == [want], j["reap"])
    costs_file(path, touch_ns=200000, install_ns=2000, read_ns=1000, chunk_ns=100000)
    os.chmod(path, 0o666)
    out, j, _ = restore(hw, "reap", pl, extra=("--drop-cache",), env=env)
    check("auto: a costs file others could write is ignored", j["reap"]["huge_chunks"] == 0 and out == [want],
          j["reap"])
    out, j, _ = restore(hw, "reap", pl, extra=("--drop-cache",), env=dict(env, THAW_REAP_HUGE="0"))
    check("THAW_REAP_HUGE=0: off, no chunk", j["reap"]["huge_policy"] == "off" and j["reap"]["huge_chunks"] == 0 and
          out == [want], j["reap"])


def run_all(tmp):
    hello = os.path.join(tmp, "hello")
    thaw("snapshot", "functions/hello", "-o", hello)
    st = os.stat(os.path.join(hello, "memory"))
    check("memory file is sparse (allocated < 8 MiB of 256 MiB, + the 4 KiB identity trailer)",
          st.st_size == (256 << 20) + 4096 and st.st_blocks * 512 < 8 << 20, "%d allocated" % (st.st_blocks * 512))
    before = open(os.path.join(hello, "memory"), "rb").read()
    for mode in ("copy", "lazy", "uffd", "reap"):
        out, j, _ = restore(hello, mode, '{"name": "R1"}', '{"name": "R2"}')
        check("hello restores in %s mode" % mode, "Hello, R1!" in out[0] and "Hello, R2!" in out[1], out)
        check("%s timings are complete" % mode, all(k in j for k in (
            "state_load_us", "vm_create_us", "image_restore_us", "memory_setup_us", "first_response_us", "rss_kb")), j)
    check("restores never modify the memory file", open(os.path.join(hello, "memory"), "rb").read() == before)

    # Eight concurrent restores of one snapshot, each with its own payload.
    with concurrent.futures.ThreadPoolExecutor(8) as ex:
        futs = [ex.submit(restore, hello, mode, '{"name": "c%d"}' % i)
                for i, mode in enumerate(["uffd", "lazy", "copy", "uffd"] * 2)]
        res = [f.result() for f in futs]
    check("8 concurrent restores answer their own payloads",
          all("Hello, c%d!" % i in r[0][0] for i, r in enumerate(res)), [r[0] for r in res])

    # State, clocks and entropy across restores.
    probe = os.path.join(tmp, "probe")
    # Each warm-up spins 100 ms of the guest's monotonic clock between its two lines.
    thaw("snapshot", "functions/faulty", "-o", probe, "--warmup", "2", "--payload", '{"print": 2}')
    import time
    a = json.loads(restore(probe, "uffd", '{"probe": "s"}')[0][0])
    b = json.loads(restore(probe, "lazy", '{"probe": "s"}')[0][0])
    check("state created before the snapshot survives it (counter)", a["counter"] == 3 and b["counter"] == 3, (a, b))
    check("two restores draw different random bytes", a["random"] != b["random"], (a, b))
    now = time.time_ns()
    check("wall clock is right after restore (within 5 s)", abs(b["wall_ns"] - now) < 5e9, (b["wall_ns"], now))
    # The guest's clock had run at least the warm-ups' 2 x 100 ms of spinning when it was
    # saved, so a restored guest's must read at least that, and keep rising. (Not a fresh
    # boot's clock at its first call: a slow boot on a busy host took 17 ms against the
    # restored 24, and that comparison failed in CI.)
    two = [json.loads(x) for x in restore(probe, "uffd", '{"probe": "s"}', '{"probe": "s"}')[0]]
    check("monotonic clock does not go backwards across restore",
          min(a["mono_ns"], b["mono_ns"]) >= 200_000_000 and two[1]["mono_ns"] > two[0]["mono_ns"],
          (a["mono_ns"], b["mono_ns"], two))

    # Memory the guest frees reads back as zero when reused, booted and in every mode
    # (discard hypercall: MADV_DONTNEED, or a fresh mapping, or zero pages via uffd).
    reuse = '{"probe": "reuse"}'
    r = [json.loads(x) for x in thaw("run", "functions/faulty", "--payload", reuse, "--payload", reuse).stdout.splitlines()]
    check("booted: freed memory reads back as zero when reused",
          all(x["same_address"] and x["nonzero_bytes"] == 0 for x in r), r)
    for mode in ("copy", "lazy", "uffd", "reap", "reap"):
        r = [json.loads(x) for x in restore(probe, mode, reuse, reuse)[0]]
        check("%s: freed memory reads back as zero when reused" % mode,
              all(x["same_address"] and x["nonzero_bytes"] == 0 for x in r), r)

    # memtouch gives the same answers booted and restored.
    mt = os.path.join(tmp, "memtouch")
    thaw("snapshot", "functions/memtouch", "-o", mt)

    # The guest keeps freed memory for reuse, but a snapshot after warm-up invocations
    # that each allocated and freed 8 MiB holds none of it (THAW_INVOKE_TRIM), and the
    # instance restored from it still answers; the kept memory reads back as zero.
    mtw = os.path.join(tmp, "memtouch-warm")
    thaw("snapshot", "functions/memtouch", "-o", mtw, "--warmup", "2", "--payload", '{"alloc_mib": 8}')
    grown = os.stat(os.path.join(mtw, "memory")).st_blocks * 512 - os.stat(os.path.join(mt, "memory")).st_blocks * 512
    check("a snapshot after warm-ups that freed 8 MiB is not 8 MiB larger", grown < 1 << 20, "%d bytes more" % grown)
    out, _, err = restore(mtw, "lazy", '{"alloc_mib": 8}', '{"mib": 2, "seed": 5}')
    check("the warm-up snapshot restores and answers", len(out) == 2 and '"checksum"' in out[1], (out, err))
    mtj = os.path.join(tmp, "memtouch-warm-worker")
    thaw("snapshot", "functions/memtouch", "-o", mtj, "--worker", "--warmup", "2", "--payload", '{"alloc_mib": 8}')
    grown = os.stat(os.path.join(mtj, "memory")).st_blocks * 512 - os.stat(os.path.join(mt, "memory")).st_blocks * 512
    check("the same snapshot made in a jailed worker is not 8 MiB larger either", grown < 1 << 20,
          "%d bytes more" % grown)
    pls = ['{"mib": 2, "seed": 5}', '{"mib": 4, "seed": 11}']
    booted = thaw("run", "functions/memtouch", "--payload", pls[0], "--payload", pls[1]).stdout.strip().splitlines()
    for mode in ("copy", "lazy", "uffd"):
        out, _, _ = restore(mt, mode, *pls)
        check("memtouch answers match booted vs %s restore" % mode, out == booted, (out, booted))

    # REAP: record, then prefetch with zero lazy faults on the recorded path.
    out, rec, err = restore(mt, "reap", pls[0])
    check("first reap restore records", rec["reap"]["recorded"] and out[0] == booted[0], (rec, err))
    check("trace and working-set files written",
          os.path.exists(os.path.join(mt, "ws.trace")) and os.path.exists(os.path.join(mt, "ws.pages")))
    out, pf, err = restore(mt, "reap", pls[0], extra=("--drop-cache",))
    check("second reap restore prefetches", pf["reap"]["prefetched"], (pf, err))
    check("prefetched restore answers correctly", out[0] == booted[0], out)
    check("prefetched restore takes zero lazy faults on the recorded path", pf["reap"]["misses"] == 0, pf["reap"])
    # With every CPU taken the pre-fault vCPU stays off (it would take CPU time from the
    # restore), says why, and nothing else changes.
    spin = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() + 1)]
    try:
        env = dict(os.environ)
        env.pop("THAW_PREFAULT", None)
        out, bz, err = restore(mt, "reap", pls[0], extra=("--drop-cache",), env=env)
    finally:
        for p in spin:
            p.kill()
            p.wait()
    check("no CPU free: the pre-fault vCPU stays off and says why, the answer is the same",
          "none free" in bz["reap"]["prefault"]["note"] and bz["reap"]["prefault"]["pages"] == 0 and
          bz["reap"]["misses"] == 0 and out[0] == booted[0], (bz["reap"], err))
    for how in ("single", "pipelined"):
        out, pj, err = restore(mt, "reap", pls[0], extra=("--drop-cache",), env={"THAW_REAP_READ": how})
        check("prefetch read %s: installs everything, answers correctly" % how, pj["reap"]["prefetched"] and
              pj["reap"]["misses"] == 0 and out[0] == booted[0], (pj["reap"], err))
    ws_pages = pf["reap"]["ws_pages"]
    check("working set holds at least the pages memtouch read (512 for 2 MiB)", ws_pages >= 512, ws_pages)
    # A payload touching new pages is served lazily and correctly.
    out, nw, _ = restore(mt, "reap", pls[1])
    check("new pages are served lazily and correctly", out[0] == booted[1] and nw["reap"]["misses"] > 0, nw["reap"])
    check("the new input's misses are merged into the working set, not marked stale",
          nw["reap"]["merged"] and nw["reap"]["merge_added"] > 0 and nw["reap"]["generation"] == 1 and
          not os.path.exists(os.path.join(mt, "ws.stale")), nw["reap"])
    for k in (1, 0):
        out, mg, err = restore(mt, "reap", pls[k], extra=("--drop-cache",))
        check("merged set: input %d prefetched with no misses, answer as booted" % k, mg["reap"]["prefetched"] and
              mg["reap"]["misses"] == 0 and out[0] == booted[k] and mg["reap"]["ws_pages"] > ws_pages, (mg["reap"], err))
    with open(os.path.join(mt, "ws.stale"), "w") as f:
        f.write("stale\n")
    out, rr, err = restore(mt, "reap", pls[1])
    check("a stale working set is re-recorded", rr["reap"]["recorded"] and out[0] == booted[1] and
          not os.path.exists(os.path.join(mt, "ws.stale")), err)

    # Corrupted working set: rejected with a clear message, falls back to uffd, snapshot kept.
    with open(os.path.join(mt, "ws.pages"), "r+b") as f:
        f.seek(4096)
        f.write(b"\xff" * 8)
    out, cj, err = restore(mt, "reap", pls[1])
    check("corrupt working set is rejected and the restore falls back", "checksum mismatch" in err and
          out[0] == booted[1] and not cj["reap"]["prefetched"], err)
    with open(os.path.join(mt, "ws.pages"), "r+b") as f:
        f.write(b"NOTMAGIC")
    out, cj, err = restore(mt, "reap", pls[0])
    check("bad working-set magic is rejected", "bad magic" in err or cj["reap"]["recorded"], err)

    # The memory manager as its own process: `thaw pager` serves the restore's guest
    # memory after Firecracker's handshake over a Unix socket.
    ext = os.path.join(tmp, "ext")
    shutil.copytree(hello, ext, ignore=shutil.ignore_patterns("ws.*"))

    def with_pager(mode, mem, payload):
        sock = os.path.join(tmp, "pager.sock")
        pg = subprocess.Popen([THAW, "pager", "--socket", sock, "--snapshot", ext, "--mode", mode],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        for _ in range(500):
            if os.path.exists(sock):
                break
            time.sleep(0.01)
        out, j, err = restore(ext, mem, payload, extra=("--pager-socket", sock))
        pout, perr = pg.communicate(timeout=60)
        return out, j, json.loads(pout.strip().splitlines()[-1]), pg.returncode, err + perr

    out, j, ps, rc, err = with_pager("record", "uffd", '{"name": "ext"}')
    check("external pager (record) serves a restore", "Hello, ext!" in out[0] and rc == 0 and
          ps["pages_served"] > 0 and ps["recorded"] > 0, (out, ps, err))
    check("external pager wrote the working set", os.path.exists(os.path.join(ext, "ws.pages")))
    out, j, ps, rc, err = with_pager("prefetch", "reap", '{"name": "ext2"}')
    check("external pager (prefetch) installs the working set before the vCPU runs",
          "Hello, ext2!" in out[0] and rc == 0 and ps["prefetch_ok"] and j["reap"]["prefetched"] and
          j["reap"]["misses"] == 0, (out, ps, j.get("reap"), err))

    # Bad snapshot files: one clear line, non-zero exit, nothing crashes.
    def broken(name, mutate, expect):
        d = os.path.join(tmp, "bad-" + name)
        shutil.copytree(hello, d)
        mutate(d)
        p = thaw("restore", d, "--mem", "uffd", "--payload", '{"name": "x"}', check_rc=False)
        ok = p.returncode != 0 and expect in p.stderr and p.stdout == "" and len(p.stderr.strip().splitlines()) == 1
        check("bad snapshot: %s" % name, ok, (p.returncode, p.stderr))

    def patch(off, data, fname="state"):
        def m(d):
            with open(os.path.join(d, fname), "r+b") as f:
                f.seek(off)
                f.write(data)
        return m

    def truncate(fname, size):
        def m(d):
            os.truncate(os.path.join(d, fname), size)
        return m

    # Dense 2 MiB chunks as huge pages (THAW_REAP_HUGE=0.15): the guest's first invocation
    # takes far fewer shadow-MMU faults than with every page installed at 4 KiB, as KVM's
    # own counters say (kvm_first_invocation), and answers the same. The pre-fault vCPU is
    # off in both: it would take some of the faults on its own vCPU.
    hw = os.path.join(tmp, "helloworld")
    thaw("snapshot", "functions/helloworld", "-o", hw)
    pl = '{"name": "huge"}'
    want = thaw("run", "functions/helloworld", "--payload", pl).stdout.strip()
    restore(hw, "reap", pl, extra=("--drop-cache",))
    out4k, j4k, _ = restore(hw, "reap", pl, extra=("--drop-cache",),
                            env=dict(os.environ, THAW_REAP_HUGE="0", THAW_PREFAULT="0"))
    outhp, jhp, _ = restore(hw, "reap", pl, extra=("--drop-cache",),
                            env=dict(os.environ, THAW_REAP_HUGE="0.15", THAW_PREFAULT="0"))
    k4k, khp = j4k.get("kvm_first_invocation"), jhp.get("kvm_first_invocation")
    check("the first invocation's KVM counters are reported (exits >= shadow-MMU faults > 0)",
          k4k is not None and khp is not None and k4k["exits"] >= k4k["page_faults"] > 0 and
          khp["exits"] >= khp["page_faults"] > 0, (k4k, khp))
    check("huge chunks: dense chunks taken, the same answer, under 60%% of the 4 KiB install's shadow faults "
          "(%s against %s)" % (khp and khp["page_faults"], k4k and k4k["page_faults"]),
          jhp["reap"]["huge_chunks"] > 0 and j4k["reap"]["huge_chunks"] == 0 and out4k == outhp == [want] and
          k4k and khp and khp["page_faults"] < 0.6 * k4k["page_faults"], (jhp["reap"], j4k["reap"], out4k, outhp))
    p = thaw("restore", hw, "--mem", "reap", "--payload", pl, "--timings",
             env=dict(os.environ, THAW_REAP_HUGE="0.15"))
    check("--timings says what the huge chunks read and what the first invocation cost inside KVM",
          "REAP huge chunks: " in p.stderr and "first invocation inside KVM: " in p.stderr, p.stderr)
    check_auto_chunks(tmp, hw, pl, want)

    broken("truncated state", truncate("state", 100), "")
    broken("wrong magic", patch(0, b"NOTASNAP"), "magic")
    broken("unknown version", patch(8, b"\x09\x00\x00\x00"), "unsupported state file format 9.0")
    broken("format 1 state file", patch(8, b"\x01\x00\x00\x00"), "take the snapshot again")
    broken("checksum mismatch", patch(400, b"\x55\xaa"), "checksum")
    broken("memory file of the wrong size", truncate("memory", 4096), "memory file")
    broken("missing memory file", lambda d: os.unlink(os.path.join(d, "memory")), "memory")
    broken("missing state file", lambda d: os.unlink(os.path.join(d, "state")), "state")


if __name__ == "__main__":
    sys.exit(thaw_suite.main("snapshot", run_all))
