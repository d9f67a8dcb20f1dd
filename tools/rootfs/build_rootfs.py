#!/usr/bin/python3
"""Builds the file tree a thaw function sees as / from host files.

    build_rootfs.py --out FILES.cpio [--program HOST_ELF]... [--file GUEST=HOST]...
                    [--lib-path DIR]...

--program  a dynamically linked ELF: its PT_INTERP and the shared libraries it needs
           (resolved as the host's loader resolves them, with --lib-path searched
           first) are added at the paths the guest's loader will look them up under
           (PT_INTERP as named, libraries under /lib/x86_64-linux-gnu). The program
           itself is not added: the monitor loads it.
--file     one more file (a dlopen'ed library, data) at GUEST path.

The output is a cpio newc archive (regular files only, parent directories implied),
reproducible: entries sorted, mtime and owners fixed.
"""
import argparse
import os
import subprocess
import sys

LIB_DIR = "/lib/x86_64-linux-gnu"
ARCHIVE_MTIME = 946684800  # 2000-01-01T00:00:00Z


def elf_interp(path):
    """The PT_INTERP path of an ELF file, or None (reads the program headers)."""
    import struct
    with open(path, "rb") as f:
        data = f.read(1 << 16)
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return None
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type == 3:
            with open(path, "rb") as f:
                f.seek(p_offset)
                return f.read(p_filesz).rstrip(b"\0").decode()
    return None


def needed_libraries(program, lib_path):
    """{soname: host path} of every shared library program needs, transitively."""
    env = dict(os.environ, LD_LIBRARY_PATH=":".join(lib_path))
    out = subprocess.run(["ldd", program], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.exit("build_rootfs.py: ldd %s failed: %s" % (program, out.stderr.strip()))
    libs = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "=>":
            if parts[2] == "not":
                sys.exit("build_rootfs.py: %s needs %s, which is not installed on this host"
                         % (program, parts[0]))
            libs[parts[0]] = parts[2]
    return libs


def collect(programs, files, lib_path):
    """{guest path: host path}"""
    tree = {}
    for prog in programs:
        interp = elf_interp(prog)
        if interp:
            tree[interp] = interp
        for soname, host in needed_libraries(prog, lib_path).items():
            tree[LIB_DIR + "/" + soname] = host
    for spec in files:
        guest, sep, host = spec.partition("=")
        if not sep or not guest.startswith("/") or ".." in guest.split("/"):
            sys.exit("build_rootfs.py: --file wants /GUEST/PATH=HOST_PATH, got %r" % spec)
        tree[guest] = host
    return tree


def cpio_entry(name, mode, data):
    name_b = name.encode() + b"\0"
    hdr = "070701" + "".join("%08x" % v for v in (
        0, mode, 0, 0, 1, ARCHIVE_MTIME, len(data), 0, 0, 0, 0, len(name_b), 0))
    out = hdr.encode() + name_b
    out += b"\0" * (-len(out) % 4) + data
    return out + b"\0" * (-len(out) % 4)


def write_cpio(tree, out):
    tmp = "%s.%d.tmp" % (out, os.getpid())
    with open(tmp, "wb") as f:
        for guest in sorted(tree):
            with open(tree[guest], "rb") as src:
                f.write(cpio_entry(guest.lstrip("/"), 0o100755, src.read()))
        f.write(cpio_entry("TRAILER!!!", 0, b""))
    os.replace(tmp, out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--program", action="append", default=[])
    ap.add_argument("--file", action="append", default=[])
    ap.add_argument("--lib-path", action="append", default=[])
    args = ap.parse_args()
    tree = collect(args.program, args.file, args.lib_path)
    write_cpio(tree, args.out)
    print("%s: %d files" % (args.out, len(tree)))


if __name__ == "__main__":
    main()
