#!/usr/bin/env python3
"""Synthetic REAP recordings for check_analyze.sh, written in the documented ws.trace
format (docs/snapshot-format.md) independently of thaw's writer.

usage: synth.py trace DIR MEM_MIB PAGE...   write DIR/ws.trace (page numbers, 1 us apart)
       synth.py corrupt FILE OFFSET         flip one bit at OFFSET
       synth.py truncate FILE BYTES         drop the last BYTES
"""
import os
import struct
import sys
import zlib


def trace(d, mem_mib, pages):
    os.makedirs(d, exist_ok=True)
    body = struct.pack("<8sHHIQQ48s", b"THAWTRCE", 2, 0, 4096, mem_mib << 20, len(pages), bytes(48))
    for i, p in enumerate(pages):
        body += struct.pack("<QQ", p * 4096, (i + 1) * 1000)
    with open(os.path.join(d, "ws.trace"), "wb") as f:
        f.write(body + struct.pack("<I", zlib.crc32(body)))


def main():
    cmd = sys.argv[1]
    if cmd == "trace":
        trace(sys.argv[2], int(sys.argv[3]), [int(x) for x in sys.argv[4:]])
    elif cmd == "corrupt":
        with open(sys.argv[2], "r+b") as f:
            f.seek(int(sys.argv[3]))
            b = f.read(1)
            f.seek(int(sys.argv[3]))
            f.write(bytes([b[0] ^ 0x10]))
    elif cmd == "truncate":
        size = os.path.getsize(sys.argv[2])
        os.truncate(sys.argv[2], size - int(sys.argv[3]))


if __name__ == "__main__":
    main()
