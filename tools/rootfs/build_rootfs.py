#!/usr/bin/python3
"""Builds the file tree a thaw function sees as / from host files.

    build_rootfs.py --out FILES.cpio|ROOTFS.img [--program HOST_ELF]...
                    [--file GUEST=HOST]... [--tree GUEST=HOSTDIR]... [--lib-path DIR]...

--program  a dynamically linked ELF: its PT_INTERP and the shared libraries it needs
           (resolved as the host's loader resolves them, with --lib-path searched
           first) are added at their host paths, symlinks included, so the guest's
           loader finds them where the host's does (libraries from --lib-path are
           the function's own: add them with --file). The program itself is not
           added: the monitor loads it.
--file     one more file (a dlopen'ed library, data) at GUEST path.
--tree     a whole host directory at GUEST (symlinks kept, mtimes kept).

An output ending in .img is a thaw root-filesystem image (include/thaw/rootfs.h):
mapped, not copied, into the guest, every file page-aligned and every ELF shared
object also laid out as the dynamic loader maps it. Anything else is a cpio newc
archive (regular files only, mtime and owners fixed). Both are reproducible.
"""
import argparse
import os
import stat
import struct
import subprocess
import sys

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


def is_shared_object(path):
    with open(path, "rb") as f:
        head = f.read(18)
    return head[:4] == b"\x7fELF" and head[16] == 3


def needed_libraries(program, lib_path):
    """{soname: host path} of every shared library program needs, transitively."""
    if elf_interp(program) is None and not is_shared_object(program):
        return {}
    env = dict(os.environ, LD_LIBRARY_PATH=":".join(lib_path))
    out = subprocess.run(["ldd", program], capture_output=True, text=True, env=env)
    if out.returncode != 0 and "not a dynamic executable" in out.stderr + out.stdout:
        return {}
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


def add_host_path(tree, path, depth=0):
    """Adds path the way the host names it: every symlink on the way (/lib -> usr/lib
    on merged-/usr Debian) becomes the same symlink in the tree and the file it leads
    to a file, so the guest's loader sees one file under every name, as the host's
    does (it tells libraries apart by identity)."""
    if depth > 16:
        sys.exit("build_rootfs.py: too many symlinks resolving %s" % path)
    parts = os.path.normpath(path).strip("/").split("/")
    cur = ""
    for i, part in enumerate(parts):
        cur += "/" + part
        if os.path.islink(cur):
            tree[cur] = cur  # stored as a symlink (write_image uses lstat)
            target = os.path.join(os.path.dirname(cur), os.readlink(cur))
            rest = "/".join(parts[i + 1:])
            add_host_path(tree, target + ("/" + rest if rest else ""), depth + 1)
            return
    if os.path.exists(cur):
        tree[cur] = cur


def collect(programs, files, lib_path, trees=()):
    """{guest path: host path}"""
    tree = {}
    for spec in trees:
        guest, sep, host = spec.partition("=")
        if not sep or not guest.startswith("/"):
            sys.exit("build_rootfs.py: --tree wants /GUEST/DIR=HOST_DIR, got %r" % spec)
        add_tree(tree, guest, host)
    import concurrent.futures
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        needed = list(ex.map(lambda p: needed_libraries(p, lib_path), programs))
    own = [os.path.realpath(d) + "/" for d in lib_path]
    if programs and os.path.exists("/etc/ld.so.cache"):
        # The host loader's cache: the guest's loader then finds libraries in the
        # directories only the cache names (the BLAS alternative, for one).
        tree["/etc/ld.so.cache"] = "/etc/ld.so.cache"
    for prog, libs in zip(programs, needed):
        interp = elf_interp(prog)
        if interp:
            add_host_path(tree, interp)
        for soname, host in libs.items():
            if not any(os.path.realpath(host).startswith(d) for d in own):
                add_host_path(tree, host)  # the function's own libraries come as --file
    for spec in files:
        guest, sep, host = spec.partition("=")
        if not sep or not guest.startswith("/") or ".." in guest.split("/"):
            sys.exit("build_rootfs.py: --file wants /GUEST/PATH=HOST_PATH, got %r" % spec)
        tree[guest] = os.path.realpath(host)  # explicit files are their contents
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
            host = tree[guest]
            if os.path.islink(host):
                f.write(cpio_entry(guest.lstrip("/"), 0o120777, os.readlink(host).encode()))
                continue
            with open(host, "rb") as src:
                f.write(cpio_entry(guest.lstrip("/"), 0o100755, src.read()))
        f.write(cpio_entry("TRAILER!!!", 0, b""))
    os.replace(tmp, out)


def add_tree(tree, guest, host):
    """Adds host directory host at guest path guest (files and symlinks; what a
    symlink leading out of the directory names is added at its host path)."""
    top = os.path.realpath(host) + "/"
    for dirpath, dirnames, names in os.walk(host):
        rel = os.path.relpath(dirpath, host)
        gdir = guest if rel == "." else guest.rstrip("/") + "/" + rel
        for n in dirnames + names:
            full = os.path.join(dirpath, n)
            if os.path.islink(full):
                real = os.path.realpath(full)
                if not os.path.exists(real):
                    continue  # dangling
                if not real.startswith(top):  # leads out: bring what it names along
                    add_host_path(tree, os.path.join(dirpath, os.readlink(full)))
            if os.path.islink(full) or not os.path.isdir(full):
                tree[gdir.rstrip("/") + "/" + n] = full
        if rel != "." and not dirnames and not names:
            tree[gdir] = dirpath


# ---- the image (include/thaw/rootfs.h) ----------------------------------------------
PAGE = 4096
HEADER = struct.Struct("<8sIIQQIIQQQ")
NODE = struct.Struct("<QIHHIIQQQQII")
SEG = struct.Struct("<QQQQ")
KIND_DIR, KIND_FILE, KIND_SYMLINK = 1, 2, 3


def align(x, a=PAGE):
    return (x + a - 1) // a * a


def load_layout(data):
    """(layout bytes, [(at, file_off, len, zero_len)]) for an x86-64 ELF shared object,
    as glibc's loader maps it: the whole span mapped from the first segment's file
    offset, every later segment mapped over it, bss pages zero. None if not one."""
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        return None
    e_type, e_machine = struct.unpack_from("<HH", data, 16)
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    if e_type != 3 or e_machine != 62 or phentsize != 56 or phoff + phnum * 56 > len(data):
        return None
    loads = []
    for i in range(phnum):
        p_type, _, off, vaddr, _, filesz, memsz, p_align = struct.unpack_from("<IIQQQQQQ", data, phoff + i * 56)
        if p_type == 1 and memsz:
            if p_align > PAGE or off % PAGE != vaddr % PAGE or filesz > memsz:
                return None  # the loader would reserve and align first: map by copying
            loads.append((vaddr, off, filesz, memsz))
    if not loads:
        return None
    loads.sort()
    start = loads[0][0] // PAGE * PAGE
    size = align(loads[-1][0] + loads[-1][3]) - start
    if size > 1 << 31:
        return None
    off0 = loads[0][1] // PAGE * PAGE
    layout = bytearray(size)
    first = data[off0:off0 + size]
    layout[:len(first)] = first
    segs = []
    for i, (vaddr, off, filesz, memsz) in enumerate(loads):
        mapstart, mapend = vaddr // PAGE * PAGE, align(vaddr + filesz)
        at, foff = mapstart - start, off // PAGE * PAGE
        if i:
            chunk = data[foff:foff + (mapend - mapstart)]
            layout[at:at + (mapend - mapstart)] = chunk + bytes(mapend - mapstart - len(chunk))
        zero_len = max(0, align(vaddr + memsz) - mapend)
        layout[mapend - start:mapend - start + zero_len] = bytes(zero_len)
        segs.append((at, foff, mapend - mapstart, zero_len))
    return bytes(layout), segs


def write_image(tree, out):
    """tree: {guest path: host path}. Directories come from the paths."""
    entries = {}  # relative path -> (kind, mode, mtime, host path or symlink target)
    for guest in sorted(tree):
        host = tree[guest]
        rel = guest.strip("/")
        st = os.lstat(host)
        if stat.S_ISLNK(st.st_mode):
            entries[rel] = (KIND_SYMLINK, 0o120777, int(st.st_mtime), os.readlink(host))
        elif stat.S_ISDIR(st.st_mode):
            entries[rel] = (KIND_DIR, 0o40755, int(st.st_mtime), None)
        else:
            entries[rel] = (KIND_FILE, 0o100000 | (st.st_mode & 0o777), int(os.stat(host).st_mtime), host)
        parts = rel.split("/")
        for i in range(1, len(parts)):
            entries.setdefault("/".join(parts[:i]), (KIND_DIR, 0o40755, ARCHIVE_MTIME, None))
    names = list(sorted(entries))
    paths = b""
    path_at = {}
    for n in names:
        path_at[n] = len(paths)
        paths += n.encode()
    nodes_off = align(HEADER.size, 64)
    segs_off = nodes_off + NODE.size * len(names)
    # Segments are known only after reading the ELF files: collect them first.
    contents = {}
    seg_table = []
    node_segs = {}
    for n in names:
        kind, _, _, src = entries[n]
        if kind == KIND_FILE:
            with open(src, "rb") as f:
                data = f.read()
            lay = load_layout(data)
            contents[n] = (data, lay)
            if lay:
                node_segs[n] = (len(seg_table), len(lay[1]))
                seg_table.extend(lay[1])
    names_off = segs_off + SEG.size * len(seg_table)
    pos = align(names_off + len(paths))
    tmp = "%s.%d.tmp" % (out, os.getpid())
    node_bytes = []
    with open(tmp, "wb") as f:
        for n in names:
            kind, mode, mtime, src = entries[n]
            data_off = load_off = load_size = size = 0
            first_seg = seg_count = 0
            if kind == KIND_FILE:
                data, lay = contents.pop(n)
                size = len(data)
                data_off = pos
                f.seek(pos)
                f.write(data)
                pos = align(pos + size)
                if lay:
                    load_off, load_size = pos, len(lay[0])
                    f.seek(pos)
                    f.write(lay[0].rstrip(b"\0"))  # trailing zeros: a hole
                    pos = align(pos + load_size)
                    first_seg, seg_count = node_segs[n]
            elif kind == KIND_SYMLINK:
                target = src.encode()
                size, data_off = len(target), pos
                f.seek(pos)
                f.write(target)
                pos = align(pos + size)
            node_bytes.append(NODE.pack(path_at[n], len(n.encode()), kind, 0, mode, mtime, size, data_off,
                                        load_off, load_size, first_seg, seg_count))
        image_size = align(pos)
        f.seek(0)
        f.write(HEADER.pack(b"THAWROOT", 1, len(names), nodes_off, segs_off, len(seg_table), 0,
                            names_off, len(paths), image_size))
        f.seek(nodes_off)
        f.write(b"".join(node_bytes))
        f.seek(segs_off)
        f.write(b"".join(SEG.pack(*s) for s in seg_table))
        f.seek(names_off)
        f.write(paths)
        f.truncate(image_size)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, out)
    return len(names), image_size


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--program", action="append", default=[])
    ap.add_argument("--file", action="append", default=[])
    ap.add_argument("--tree", action="append", default=[])
    ap.add_argument("--lib-path", action="append", default=[])
    args = ap.parse_args()
    tree = collect(args.program, args.file, args.lib_path, args.tree)
    if args.out.endswith(".img"):
        n, size = write_image(tree, args.out)
        print("%s: %d entries, %d bytes" % (args.out, n, size))
    else:
        write_cpio(tree, args.out)
        print("%s: %d files" % (args.out, len(tree)))


if __name__ == "__main__":
    main()
