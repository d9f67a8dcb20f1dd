#!/usr/bin/env python3
"""Dynamically linked programs in the guest, through the real CLI (microVMs, /dev/kvm):
Debian's ld.so loads a program, its shared library and a dlopen'ed one; file-backed
mmap and mprotect behave; a missing interpreter is one clear error; snapshots of a
dynamic program restore in every memory mode.

Prints one line per check and ends with "N passed, N failed"."""
import json
import os
import shutil
import sys
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from thaw_suite import check, main, payload_args, thaw  # noqa: E402


def run_all(tmp):
    p = thaw("run", "functions/dynamic", *payload_args('{"a": 6, "b": 7}', '{"a": -3, "b": 5}'))
    lines = p.stdout.strip().splitlines()
    check("dynamic program boots and answers", p.returncode == 0 and len(lines) == 2, p.stderr)
    if p.returncode == 0 and len(lines) == 2:
        r1, r2 = json.loads(lines[0]), json.loads(lines[1])
        check("shared library linked at start-up runs its constructor",
              r1["greeting"] == "Hello from libgreet", r1)
        check("dlopen'ed library answers and keeps its TLS counter",
              (r1["product"], r1["plugin_calls"], r2["product"], r2["plugin_calls"]) == (42, 1, -15, 2), (r1, r2))
        check("file-backed mmap, mprotect and bss checks pass in the guest", r1["checks"] == "ok", r1["checks"])

    p = thaw("run", "functions/badinterp", *payload_args("{}"))
    err = p.stderr.strip().splitlines()
    check("a missing interpreter is one clear error",
          p.returncode != 0 and any("/lib/missing/ld-thaw.so.2" in l and "interpreter" in l for l in err), p.stderr)

    snap = os.path.join(tmp, "dyn")
    p = thaw("snapshot", "functions/dynamic", "-o", snap)
    check("dynamic program snapshots", p.returncode == 0, p.stderr)
    for mode in ("copy", "lazy", "uffd", "reap", "reap"):
        p = thaw("restore", snap, "--mem", mode, *payload_args('{"a": 9, "b": 9}'))
        ok = p.returncode == 0 and '"product": 81' in p.stdout and '"plugin_calls": 1' in p.stdout
        check("dynamic program restores in %s mode" % mode, ok, p.stdout + p.stderr)


PACKED = {"THAW_ROOTFS_WS": "packed"}  # rootfs.ws decoded into private copies


def run_image(tmp):
    """The same program with its files in a root-filesystem image, mapped not copied."""
    p = thaw("run", "functions/dynamic-image", *payload_args('{"a": 6, "b": 7}', '{"a": 2, "b": 3}'))
    lines = p.stdout.strip().splitlines()
    ok = p.returncode == 0 and len(lines) == 2 and all(json.loads(l)["checks"] == "ok" for l in lines)
    check("dynamic program runs from a rootfs image (libraries mapped in place)",
          ok and '"product": 42' in lines[0] and '"plugin_calls": 2' in lines[1], p.stdout + p.stderr)
    snap = os.path.join(tmp, "img")
    p = thaw("snapshot", "functions/dynamic-image", "-o", snap)
    check("rootfs snapshot keeps the image out of the memory file",
          p.returncode == 0 and os.path.exists(os.path.join(snap, "rootfs"))
          and os.path.exists(os.path.join(snap, "rootfs.cow")), p.stderr)
    for mode in ("copy", "lazy", "uffd", "reap", "reap"):
        p = thaw("restore", snap, "--mem", mode, "--drop-cache", *payload_args('{"a": 9, "b": 9}'))
        ok = p.returncode == 0 and '"product": 81' in p.stdout and '"checks": "ok"' in p.stdout
        check("rootfs snapshot restores in %s mode (cold page cache)" % mode, ok, p.stdout + p.stderr)
    ws = os.path.join(snap, "rootfs.ws")
    check("REAP recorded the file pages the first invocation touched",
          os.path.exists(ws) and os.path.getsize(ws) > 16)
    head = open(ws, "rb").read() if os.path.exists(ws) else b""
    check("by default rootfs.ws names the pages only (index only: flag 1, no blocks, no data)",
          head[:8] == b"THAWRWS3" and int.from_bytes(head[24:32], "little") > 0 and
          int.from_bytes(head[32:40], "little") == 0 and int.from_bytes(head[48:56], "little") == 0 and
          int.from_bytes(head[104:108], "little") == 1, head[:112].hex())
    p = thaw("restore", snap, "--mem", "reap", "--json", *payload_args('{"a": 9, "b": 9}'), env=PACKED)
    st = json.loads(p.stdout.strip().splitlines()[-1]) if p.returncode == 0 else {}
    check("THAW_ROOTFS_WS=packed with an index-only rootfs.ws reads its pages ahead from the image instead",
          '"product": 81' in p.stdout and st.get("rootfs", {}).get("ws_pages", 0) ==
          int.from_bytes(head[24:32], "little") and not st.get("reap", {}).get("note", ""),
          p.stdout[-600:] + p.stderr[-300:])
    # The same in jailed worker processes: the worker maps the image before its jail,
    # the caller records the file pages from /proc/<worker>/pagemap and the worker reads
    # them ahead on the next prefetching restore.
    p = thaw("run", "--worker", "functions/dynamic-image", *payload_args('{"a": 6, "b": 7}'))
    check("rootfs function boots in a jailed worker", p.returncode == 0 and '"product": 42' in p.stdout,
          p.stdout + p.stderr)
    wsnap = os.path.join(tmp, "img-worker")
    shutil.copytree(snap, wsnap)
    for f in ("rootfs.ws", "ws.trace", "ws.pages"):
        if os.path.exists(os.path.join(wsnap, f)):
            os.unlink(os.path.join(wsnap, f))
    for i, mode in enumerate(("lazy", "uffd", "reap", "reap")):
        p = thaw("restore", "--worker", "--json", wsnap, "--mem", mode, "--drop-cache", *payload_args('{"a": 9, "b": 9}'))
        ok = p.returncode == 0 and '"product": 81' in p.stdout
        st = json.loads(p.stdout.strip().splitlines()[-1]) if ok else {}
        fs = st.get("rootfs", {})
        # The image's restore is timed in the worker and reported across the protocol.
        ok = ok and st.get("in_worker") and fs.get("image_bytes", 0) > 0 and st.get("image_restore_us", 0) > 0
        if i == 2:
            ok = ok and st["start"] == "reap-record" and os.path.getsize(os.path.join(wsnap, "rootfs.ws")) > 16
        if i == 3:
            ok = ok and st["start"] == "reap-prefetch" and fs.get("ws_pages", 0) > 0
        what = ["", "", " (records the file pages)", " (reads them ahead)"][i]
        check("rootfs snapshot restores in a worker in %s mode%s" % (mode, what), ok, p.stdout + p.stderr)
    # A snapshot taken in a jailed worker: the caller reads the image pages the guest
    # wrote from /proc/<worker>/mem; it restores like one taken in process.
    jsnap = os.path.join(tmp, "img-jailed")
    p = thaw("snapshot", "--worker", "functions/dynamic-image", "-o", jsnap)
    with_cow = p.returncode == 0 and os.path.getsize(os.path.join(jsnap, "rootfs.cow")) > 16
    check("a rootfs snapshot taken in a jailed worker keeps the written image pages", with_cow, p.stderr)
    for mode in ("lazy", "reap", "reap"):
        p = thaw("restore", jsnap, "--mem", mode, "--drop-cache", *payload_args('{"a": 9, "b": 9}'))
        ok = p.returncode == 0 and '"product": 81' in p.stdout and '"checks": "ok"' in p.stdout
        check("the worker's rootfs snapshot restores in %s mode" % mode, ok, p.stdout + p.stderr)
    # By default rootfs.cow stores its blocks raw, so a restore maps them from the file
    # (read when first touched) and reads only its header and index.
    good = open(os.path.join(jsnap, "rootfs.cow"), "rb").read()
    n, blocks = int.from_bytes(good[24:32], "little"), int.from_bytes(good[32:40], "little")
    table = good[112 + n * 16:112 + n * 16 + blocks * 8]
    all_raw = blocks > 0 and all(int.from_bytes(table[i * 8 + 4:i * 8 + 8], "little") >> 31 for i in range(blocks))
    p = thaw("restore", jsnap, "--mem", "lazy", "--json", *payload_args('{"a": 9, "b": 9}'))
    st = json.loads([l for l in p.stdout.splitlines() if '"cold_start_us"' in l][-1]) if p.returncode == 0 else {}
    fs = st.get("rootfs", {})
    check("rootfs.cow is stored raw and mapped: the restore reads its index only (%s of %d bytes)"
          % (fs.get("cow_bytes"), len(good)),
          all_raw and '"product": 81' in p.stdout and 0 < fs.get("cow_bytes", 0) < len(good)
          and fs.get("cow_pages") == n, p.stdout[-300:] + p.stderr[-300:])
    # Its header and index are checked all the same; a packed one (THAW_ROOTFS_COW=packed
    # at snapshot time: lz4 blocks, decoded straight into the mapping) has its pages
    # checked too: any damage fails the restore with one line naming the file.
    psnap = os.path.join(tmp, "img-packedcow")
    p = thaw("snapshot", "--worker", "functions/dynamic-image", "-o", psnap, env={"THAW_ROOTFS_COW": "packed"})
    bad = os.path.join(tmp, "img-badcow")
    shutil.copytree(psnap, bad)
    cow = os.path.join(bad, "rootfs.cow")
    good = open(os.path.join(psnap, "rootfs.cow"), "rb").read()
    n, blocks = int.from_bytes(good[24:32], "little"), int.from_bytes(good[32:40], "little")
    data_off = int.from_bytes(good[40:48], "little")
    p = thaw("restore", psnap, "--mem", "reap", *payload_args('{"a": 9, "b": 9}'))
    check("a packed rootfs.cow restores (decoded)", p.returncode == 0 and '"product": 81' in p.stdout,
          p.stdout + p.stderr)

    def with_crc(b):  # the header/index CRC repaired, so the later checks are reached
        b = bytearray(b)
        b[108:112] = bytes(4)
        crc = zlib.crc32(bytes(b[112:112 + n * 16 + blocks * 8]), zlib.crc32(bytes(b[:112])))
        b[108:112] = crc.to_bytes(4, "little")
        return bytes(b)

    def refused(what, content, want):
        with open(cow, "wb") as f:
            f.write(content)
        p = thaw("restore", bad, "--mem", "lazy", *payload_args('{"a": 1, "b": 1}'))
        line = [l for l in p.stderr.splitlines() if "rootfs.cow" in l]
        check("a rootfs.cow %s is refused (%s)" % (what, want),
              p.returncode != 0 and len(line) == 1 and want in line[0], p.stderr[-400:])

    check("rootfs.cow holds pages", n >= 2 and good[:8] == b"THAWCOW2", good[:8])
    refused("truncated by 4 KiB", good[:-4096], "does not match")
    refused("cut inside its header", good[:64], "truncated")
    refused("of the old format", b"THAWCOW1" + good[8:], "from an older thaw")
    swapped = good[:112] + good[128:144] + good[112:128] + good[144:]
    refused("with its pages out of order", with_crc(swapped), "not ascending")
    outside = bytearray(good)
    outside[112 + (n - 1) * 16:112 + (n - 1) * 16 + 8] = (1 << 40).to_bytes(8, "little")
    refused("with a page outside the image", with_crc(outside), "outside the image")
    flipped = bytearray(good)
    flipped[data_off + 40] ^= 0x5A
    refused("with a damaged block", bytes(flipped), "image page")
    sums = bytearray(good)
    sums[112 + 8] ^= 1  # the first page's checksum, CRC repaired: the page fails it
    refused("whose page fails its checksum", with_crc(sums), "checksum mismatch")
    other_cow = os.path.join(tmp, "img-cow-other")
    p = thaw("snapshot", "functions/dynamic-image", "-o", other_cow)
    refused("of another snapshot", open(os.path.join(other_cow, "rootfs.cow"), "rb").read(),
            "belongs to another snapshot")
    # rootfs.ws carries the snapshot's identity: another snapshot's is refused (file
    # pages are then read lazily, the answer is right), the snapshot's own is used.
    other = os.path.join(tmp, "img-other")
    p = thaw("snapshot", "functions/dynamic-image", "-o", other)
    # records its own, with the pages' contents (THAW_ROOTFS_WS=packed at recording)
    p2 = thaw("restore", other, "--mem", "reap", *payload_args('{"a": 9, "b": 9}'), env=PACKED)
    own = open(os.path.join(other, "rootfs.ws"), "rb").read()
    shutil.copy(os.path.join(snap, "rootfs.ws"), os.path.join(other, "rootfs.ws"))
    p = thaw("restore", other, "--mem", "reap", "--json", *payload_args('{"a": 9, "b": 9}'))
    st = json.loads(p.stdout.strip().splitlines()[-1]) if p.returncode == 0 else {}
    check("a rootfs.ws from another snapshot is refused (file pages read lazily, the answer stands)",
          p2.returncode == 0 and st.get("start") == "reap-prefetch" and '"product": 81' in p.stdout and
          st.get("rootfs", {}).get("ws_pages", -1) == 0 and "belongs to another snapshot" in
          st.get("reap", {}).get("note", ""), p.stdout[-600:] + p.stderr[-300:])
    # A damaged rootfs.ws is not optional-breaking: the pages before the bad block are
    # in (verified), the rest are read lazily from the image; the answer stands.
    dmg = bytearray(own)
    wn, wb = int.from_bytes(own[24:32], "little"), int.from_bytes(own[32:40], "little")
    wdata, wlen = int.from_bytes(own[40:48], "little"), int.from_bytes(own[48:56], "little")
    dmg[wdata + wlen - 20] ^= 0x5A  # inside the last block
    with open(os.path.join(other, "rootfs.ws"), "wb") as f:
        f.write(dmg)
    p = thaw("restore", other, "--mem", "reap", "--json", *payload_args('{"a": 9, "b": 9}'), env=PACKED)
    st = json.loads(p.stdout.strip().splitlines()[-1]) if p.returncode == 0 else {}
    check("a damaged rootfs.ws falls back to lazy file pages (the answer stands)",
          own[:8] == b"THAWRWS3" and wn > 0 and wb > 0 and '"product": 81' in p.stdout and
          st.get("rootfs", {}).get("ws_pages", -1) < wn and "rootfs.ws" in st.get("reap", {}).get("note", ""),
          p.stdout[-600:] + p.stderr[-300:])
    with open(os.path.join(other, "rootfs.ws"), "wb") as f:
        f.write(b"THAWRWS2" + own[8:])
    p = thaw("restore", other, "--mem", "reap", "--json", *payload_args('{"a": 9, "b": 9}'))
    st = json.loads(p.stdout.strip().splitlines()[-1]) if p.returncode == 0 else {}
    check("an old-format rootfs.ws is refused (file pages read lazily, the answer stands)",
          '"product": 81' in p.stdout and st.get("rootfs", {}).get("ws_pages", -1) == 0 and
          "from an older thaw" in st.get("reap", {}).get("note", ""), p.stdout[-600:] + p.stderr[-300:])
    with open(os.path.join(other, "rootfs.ws"), "wb") as f:
        f.write(own)
    p = thaw("restore", other, "--mem", "reap", "--json", *payload_args('{"a": 9, "b": 9}'))
    st = json.loads(p.stdout.strip().splitlines()[-1]) if p.returncode == 0 else {}
    check("the snapshot's own rootfs.ws is read ahead (from the image's page cache: its index only read)",
          st.get("rootfs", {}).get("ws_pages", 0) == wn and st.get("rootfs", {}).get("ws_bytes", 0) < len(own),
          p.stdout[-600:] + p.stderr[-300:])
    p = thaw("restore", other, "--mem", "reap", "--json", *payload_args('{"a": 9, "b": 9}'), env=PACKED)
    st = json.loads(p.stdout.strip().splitlines()[-1]) if p.returncode == 0 else {}
    fs = st.get("rootfs", {})
    check("THAW_ROOTFS_WS=packed decodes the same pages from rootfs.ws instead (the answer stands)",
          '"product": 81' in p.stdout and fs.get("ws_pages", 0) == wn and fs.get("ws_bytes", 0) == len(own),
          p.stdout[-600:] + p.stderr[-300:])
    desc = os.path.join(snap, "rootfs")
    d = json.load(open(desc))
    d["mtime_ns"] += 1
    json.dump(d, open(desc, "w"))
    p = thaw("restore", snap, "--mem", "lazy", *payload_args('{"a": 1, "b": 1}'))
    check("a restore refuses an image that changed since the snapshot",
          p.returncode != 0 and "changed since the snapshot" in p.stderr, p.stderr)



if __name__ == "__main__":
    sys.exit(main("dynamic ELF", lambda tmp: (run_all(tmp), run_image(tmp))))
