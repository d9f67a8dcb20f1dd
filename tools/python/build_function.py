#!/usr/bin/python3.11
"""Builds the archive of one thaw function.

    build_function.py FUNCDIR --out OUT/files.cpio --image-cache DIR   (Python)
    build_function.py FUNCDIR --out OUT/files.cpio [--depfile FILE]    (native)

A Python function runs on Debian's own, unmodified /usr/bin/python3.11: --out is an
archive of /app (the function's files, sources kept and compiled to unchecked-hash
__pycache__, plus what FUNCDIR/gen_data.py writes: its generate(app_dir) is called at
build time) and /thaw/runtime.py, copied into guest memory; the interpreter, the whole
stdlib and every Debian package function.json names in "packages" (with the python3-*
packages they depend on and the shared libraries their extension modules need) come
from a root-filesystem image (tools/rootfs/) shared by every function with the same
packages: DIR/python3.11-KEY.img, KEY a hash of the package versions and the image
writer, built once. Nothing is traced and nothing is installed: a package that is not
installed is one error naming the apt-get line. python.json next to --out names the
image.

A native function ("runtime": "native") with data files gets only app/ (its files
and what gen_data.py writes); files.txt (the member list) and files.json (a summary)
are written next to --out.

Must run under Debian's /usr/bin/python3.11: the .pyc files are for its bytecode.
"""
import argparse
import importlib.util
import json
import os
import py_compile
import shutil
import subprocess
import sys
import tempfile

STDLIB = "/usr/lib/python3.11"
DIST_PACKAGES = "/usr/lib/python3/dist-packages"
APP = "/app"
# Files of a function directory that are not shipped in app/.
NOT_SHIPPED = {"function.json", "payloads", "expected", "gen_data.py", "README.md",
               "__pycache__"}
NOT_SHIPPED_SUFFIXES = (".c", ".h")
# Fixed metadata for reproducible archives.
ARCHIVE_MTIME = 946684800  # 2000-01-01T00:00:00Z

TOOLS_DIR = os.path.dirname(os.path.abspath(__file__))
# gen_data.py and datagen.py are imported from the source tree: leave no __pycache__.
sys.dont_write_bytecode = True


def check_interpreter():
    if sys.version_info[:2] != (3, 11):
        sys.exit("build_function.py: run me with /usr/bin/python3.11 (got %s)"
                 % sys.version.split()[0])


def load_function(func_dir):
    with open(os.path.join(func_dir, "function.json")) as f:
        return json.load(f)


def stage_app(func_dir, app_dir):
    """Copies FUNCDIR's shipped files into app_dir (sources as is) and runs
    gen_data.py there. Returns the files read, for the depfile."""
    deps = []
    os.makedirs(app_dir, exist_ok=True)
    for entry in sorted(os.listdir(func_dir)):
        src = os.path.join(func_dir, entry)
        if entry in NOT_SHIPPED or entry.endswith(NOT_SHIPPED_SUFFIXES) or entry.startswith("."):
            continue
        dst = os.path.join(app_dir, entry)
        if os.path.isdir(src):
            shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__"))
            for dirpath, _, names in os.walk(src):
                deps.extend(os.path.join(dirpath, n) for n in names)
        else:
            shutil.copyfile(src, dst)
            deps.append(src)
    gen = os.path.join(func_dir, "gen_data.py")
    if os.path.exists(gen):
        deps.append(gen)
        if TOOLS_DIR not in sys.path:
            sys.path.insert(0, TOOLS_DIR)  # gen_data.py may import datagen
        spec = importlib.util.spec_from_file_location(
            "gen_data_" + os.path.basename(os.path.abspath(func_dir)), gen)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        mod.generate(app_dir)
        deps.append(os.path.join(TOOLS_DIR, "datagen.py"))
    return deps


def archive_members(root):
    members = []
    for dirpath, dirnames, names in os.walk(root):
        dirnames.sort()
        for n in dirnames + sorted(names):
            members.append(os.path.relpath(os.path.join(dirpath, n), root))
    members.sort()
    return members


def write_archive(root, out):
    members = archive_members(root)
    for m in members + ["."]:
        p = os.path.join(root, m)
        os.chmod(p, 0o755 if os.path.isdir(p) else 0o644)
        os.utime(p, (ARCHIVE_MTIME, ARCHIVE_MTIME))
    tmp = "%s.%d.tmp" % (out, os.getpid())
    with open(tmp, "wb") as f:
        subprocess.run(["cpio", "-o", "-H", "newc", "--quiet", "-R", "0:0", "--reproducible"],
                       cwd=root, input="".join(m + "\n" for m in members).encode(),
                       stdout=f, check=True)
    os.replace(tmp, out)
    return members


def write_atomic(path, text):
    tmp = "%s.%d.tmp" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def write_depfile(depfile, target, deps):
    deps = sorted(set(os.path.relpath(d) if not d.startswith("/usr/") else d for d in deps))
    text = "%s: %s\n" % (target, " \\\n  ".join(deps))
    text += "".join("\n%s:\n" % d for d in deps)  # like gcc -MP: vanished files are ok
    write_atomic(depfile, text)


def build(func_dir, out, depfile=None):
    fn = load_function(func_dir)
    out_dir = os.path.dirname(os.path.abspath(out))
    os.makedirs(out_dir, exist_ok=True)
    # Stage privately, publish at the end: concurrent builds must not collide.
    root = tempfile.mkdtemp(prefix=".root-", dir=out_dir)
    try:
        summary = stage_and_pack(func_dir, fn, root, out, depfile)
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise
    final = os.path.join(out_dir, "root")
    old = tempfile.mkdtemp(prefix=".old-", dir=out_dir)
    if os.path.exists(final):
        os.replace(final, os.path.join(old, "root"))
    os.replace(root, final)
    shutil.rmtree(old, ignore_errors=True)
    return summary


def stage_and_pack(func_dir, fn, root, out, depfile):
    """A native function's data files: app/ only."""
    if fn.get("runtime") == "python":
        sys.exit("build_function.py: %s is a Python function: build it with --image-cache DIR "
                 "(Debian's python3.11 from a shared image)" % func_dir)
    out_dir = os.path.dirname(os.path.abspath(out))
    deps = stage_app(func_dir, os.path.join(root, "app"))
    members = write_archive(root, out)
    write_atomic(os.path.join(out_dir, "files.txt"), "".join(m + "\n" for m in members))
    summary = {
        "name": fn.get("name"),
        "archive_bytes": os.path.getsize(out),
        "files": sum(1 for m in members if not os.path.isdir(os.path.join(root, m))),
    }
    write_atomic(os.path.join(out_dir, "files.json"), json.dumps(summary, indent=1) + "\n")
    if depfile:
        write_depfile(depfile, out, deps + [os.path.join(func_dir, "function.json"),
                                            os.path.abspath(__file__)])
    return summary


# ---- Debian python3.11 from a root-filesystem image --------------------------------
PYTHON = "/usr/bin/python3.11"
sys.path.insert(0, os.path.join(TOOLS_DIR, "..", "rootfs"))


def dpkg_status(pkg):
    out = subprocess.run(["dpkg-query", "-W", "-f=${Status}\t${Depends}", pkg], capture_output=True, text=True)
    if out.returncode != 0 or not out.stdout.startswith("install ok installed"):
        return None
    return out.stdout.split("\t", 1)[1]


def package_closure(names):
    """The named packages and the python3-* packages they depend on, all installed."""
    missing = [p for p in names if dpkg_status(p) is None]
    if missing:
        sys.exit("build_function.py: the function needs Debian packages that are not installed; "
                 "run: apt-get install -y --no-install-recommends " + " ".join(missing))
    seen, todo = set(), list(names)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        for alt in (dpkg_status(p) or "").split(","):
            for choice in alt.split("|"):
                dep = choice.strip().split(" ")[0].split(":")[0]
                if dep.startswith("python3-") and dpkg_status(dep) is not None:
                    todo.append(dep)
                    break
    return sorted(seen)


def package_roots(pkg):
    """Top-level entries under dist-packages (and lib dirs) the package owns."""
    out = subprocess.run(["dpkg-query", "-L", pkg], capture_output=True, text=True, check=True)
    roots = set()
    for path in out.stdout.splitlines():
        if path.startswith(DIST_PACKAGES + "/"):
            top = path[len(DIST_PACKAGES) + 1:].split("/")[0]
            roots.add(DIST_PACKAGES + "/" + top)
            if top.endswith(".py"):  # a single-module package: its bytecode is shared
                pyc = "%s/__pycache__/%s.cpython-311.pyc" % (DIST_PACKAGES, top[:-3])
                if os.path.exists(pyc):
                    roots.add(pyc)
    return roots


def compile_app_pycache(app_dir):
    """Compiles every .py under app_dir into __pycache__ as unchecked-hash .pyc (the
    archive's fixed mtimes cannot invalidate them), keeping the sources for
    tracebacks."""
    import compileall
    if not compileall.compile_dir(app_dir, quiet=1, ddir=APP,
                                  invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH):
        sys.exit("build_function.py: compiling the function's sources failed")


# Bump when what goes into an image changes: old cached images are then not reused.
IMAGE_FORMAT = 1


def dpkg_version(pkg):
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else ""


def image_key(packages):
    """The cache key of the image for these packages: what it is made of (package and
    interpreter versions, the image writer), never when it was built."""
    import hashlib
    with open(os.path.join(TOOLS_DIR, "..", "rootfs", "build_rootfs.py"), "rb") as f:
        writer = hashlib.sha256(f.read()).hexdigest()
    core = ["python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib", "libc6"]
    ident = {"format": IMAGE_FORMAT, "writer": writer,
             "packages": [[p, dpkg_version(p)] for p in sorted(set(packages) | set(core))]}
    return hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


def write_runtime_image(packages, out):
    """The image every Python function with these packages shares: Debian's
    python3.11, its whole stdlib, the packages' files under dist-packages, and every
    shared library their extension modules need, at their host paths."""
    import build_rootfs
    trees = ["%s=%s" % (STDLIB, STDLIB)]
    roots = sorted(set().union(*[package_roots(p) for p in packages])) if packages else []
    trees += ["%s=%s" % (r, r) for r in roots if os.path.isdir(r)]
    files = ["%s=%s" % (r, r) for r in roots if not os.path.isdir(r)]
    programs = [PYTHON] + [r for r in roots if not os.path.isdir(r) and ".so" in os.path.basename(r)]
    for d in [os.path.join(STDLIB, "lib-dynload")] + [r for r in roots if os.path.isdir(r)]:
        for dirpath, _, names in os.walk(d):
            programs += [os.path.join(dirpath, n) for n in names if ".so" in n and
                         not os.path.islink(os.path.join(dirpath, n))]
    tree = build_rootfs.collect(programs, ["/usr/bin/python3.11=" + PYTHON] + files, [], trees)
    n, size = build_rootfs.write_image(tree, out)
    installed = sum(os.path.getsize(h) for h in tree.values() if os.path.isfile(h) and not os.path.islink(h))
    return n, size, installed


def runtime_image(packages, cache_dir):
    """Path of the shared image for these packages in cache_dir, built once (under a
    lock: concurrent builds of the same image wait for the first)."""
    import fcntl
    os.makedirs(cache_dir, exist_ok=True)
    key = image_key(packages)
    path = os.path.join(cache_dir, "python3.11-%s.img" % key)
    meta = path[:-4] + ".json"
    with open(os.path.join(cache_dir, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (os.path.exists(path) and os.path.exists(meta)):
            n, size, installed = write_runtime_image(packages, path)
            write_atomic(meta, json.dumps({"image": os.path.basename(path), "packages": packages,
                                           "entries": n, "image_bytes": size,
                                           "installed_bytes": installed}, indent=1) + "\n")
    with open(meta) as f:
        return path, json.load(f)


def build_debian(func_dir, fn, out, runtime, cache_dir):
    """A function on Debian's python3.11: out (a cpio archive) holds /app (sources and
    unchecked-hash bytecode) and /thaw/runtime.py, copied into guest memory; the
    interpreter, the stdlib and the packages come from the shared image, mapped."""
    out_dir = os.path.dirname(os.path.abspath(out))
    os.makedirs(out_dir, exist_ok=True)
    packages = package_closure(fn.get("packages", []))
    image, meta = runtime_image(packages, cache_dir)
    root = tempfile.mkdtemp(prefix=".root-", dir=out_dir)
    try:
        app_dir = os.path.join(root, "app")
        stage_app(func_dir, app_dir)
        compile_app_pycache(app_dir)
        os.makedirs(os.path.join(root, "thaw"))
        shutil.copyfile(runtime, os.path.join(root, "thaw", "runtime.py"))
        members = write_archive(root, out)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    summary = {"name": fn.get("name"), "archive_bytes": os.path.getsize(out),
               "files": len(members), "image": os.path.basename(image), "packages": packages,
               "image_bytes": meta["image_bytes"], "installed_bytes": meta["installed_bytes"]}
    write_atomic(os.path.join(out_dir, "python.json"), json.dumps(summary, indent=1) + "\n")
    return summary


def main():
    check_interpreter()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("func_dir")
    ap.add_argument("--out", required=True)
    ap.add_argument("--runtime", default=os.path.join(TOOLS_DIR, "..", "..", "src",
                                                       "runtime", "python", "runtime.py"))
    ap.add_argument("--depfile")
    ap.add_argument("--image-cache", help="Debian python3.11: the directory of shared runtime images")
    args = ap.parse_args()
    if args.image_cache:
        s = build_debian(args.func_dir, load_function(args.func_dir), args.out, os.path.abspath(args.runtime),
                         os.path.abspath(args.image_cache))
        print("%s: %d bytes, image %s (%d MiB), packages: %s" % (
            args.out, s["archive_bytes"], s["image"], s["image_bytes"] >> 20, " ".join(s["packages"]) or "none"))
        return
    s = build(args.func_dir, args.out, args.depfile)
    print("%s: %d bytes, %d files" % (args.out, s["archive_bytes"], s["files"]))


if __name__ == "__main__":
    main()
