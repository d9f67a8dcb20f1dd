#!/usr/bin/python3.11
"""Runs a function's program on the host, the way the guest would, for one request,
and prints the response on stdout. A Python function runs on the host's own
python3.11 (Debian's, the one its image is made from) in a staged app/ directory:
the reference its guest responses are checked against. A native function runs as
described below.

    run_reference.py [--build build] FUNCDIR PAYLOAD.json

A native function's archive (if any) is extracted into a fresh directory that becomes the
program's root: chroot as root, else `unshare -r chroot`. So the program sees only
the archive's files, exactly as in the microVM, plus itself at /<basename> and the
request at /request.json. It runs with argv/env from function.json and
THAW_INVOKE_PATH=/request.json: it reads that one request, writes the response to
stdout and exits 0. Its stderr passes through; a non-zero exit is an error (2).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile


def build_path(build, ref):
    if not ref.startswith("build:"):
        sys.exit("run_reference.py: %r is not a build: reference" % ref)
    return os.path.join(build, "functions", ref[len("build:"):])


def chroot_prefix(root):
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    if os.geteuid() == 0:
        return [chroot, root]
    return [shutil.which("unshare") or "/usr/bin/unshare", "--user", "--map-root-user",
            chroot, root]


def run_host_python(func_dir, fn, payload, extra_env):
    """A function on Debian's python3.11: the host's own interpreter runs the runtime
    as the guest does (-I -B, the same environment) in a fresh staging of the
    function's app/ directory (its working directory in the guest too). Returns
    (exit status, stdout bytes)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import build_function
    runtime = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "src", "runtime", "python",
                           "runtime.py")
    with tempfile.TemporaryDirectory(prefix="thaw-app-") as tmp:
        app = os.path.join(tmp, "app")
        build_function.stage_app(func_dir, app)
        env = dict(fn.get("env", {"PATH": "/usr/bin:/bin", "HOME": "/", "LC_ALL": "C.UTF-8"}))
        env["THAW_INVOKE_PATH"] = os.path.abspath(payload)
        env.update(extra_env or {})
        proc = subprocess.run(["/usr/bin/python3.11", "-I", "-B", os.path.abspath(runtime)], cwd=app, env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    return proc.returncode, proc.stdout


def run(func_dir, payload, build="build", extra_env=None):
    """Returns (exit status, stdout bytes)."""
    with open(os.path.join(func_dir, "function.json")) as f:
        fn = json.load(f)
    if fn.get("runtime") == "python":
        return run_host_python(func_dir, fn, payload, extra_env)
    program = build_path(build, fn["program"])
    with tempfile.TemporaryDirectory(prefix="thaw-root-") as root:
        if fn.get("archive"):
            with open(build_path(build, fn["archive"]), "rb") as a:
                subprocess.run(["cpio", "-i", "-d", "--quiet", "--no-absolute-filenames"],
                               stdin=a, cwd=root, check=True)
        prog_name = "/" + os.path.basename(program)
        shutil.copy2(program, root + prog_name)
        shutil.copyfile(payload, os.path.join(root, "request.json"))
        env = dict(fn.get("env", {}))
        env["THAW_INVOKE_PATH"] = "/request.json"
        env.update(extra_env or {})
        argv = [prog_name] + list(fn.get("args", []))
        proc = subprocess.run(chroot_prefix(root) + argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        return proc.returncode, proc.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.environ.get("BUILD", "build"))
    ap.add_argument("func_dir")
    ap.add_argument("payload")
    args = ap.parse_args()
    status, out = run(args.func_dir, args.payload, args.build)
    sys.stdout.buffer.write(out)
    if status != 0:
        print("run_reference.py: %s exited with status %d" % (args.func_dir, status),
              file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
