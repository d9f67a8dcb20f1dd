#!/usr/bin/env python3
"""Every function of the suite through snapshot + restore in each memory mode: the
answer from the restored microVM must equal the same handler run on the host
(tools/python/host_invoke.py, Debian's python3.11, run live by this test).
Ends with "N passed, N failed"."""
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
THAW = os.path.join(ROOT, os.environ.get("BUILD", "build"), "thaw")
SUITE = ["helloworld", "json_serdes", "pyaes", "chameleon", "float_operation", "matmul", "image_rotate",
         "lr_serving", "compression", "matmul_c", "image_rotate_c", "aes_c",
         # Debian's python3.11 from a root-filesystem image, FunctionBench on Debian packages
         "stdlib", "image_rotate_pil", "image_process_pil", "matmul_np", "linpack_np", "lr_serving_sk",
         "lr_training_sk", "cnn_serving", "rnn_serving", "video_processing"]


def main():
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("*** SKIP: /dev/kvm not usable: suite restore tests did not run ***")
        print("0 passed, 0 failed")
        return 0
    passed = failed = 0
    tmp = tempfile.mkdtemp(prefix="thaw-suite-restore-")
    try:
        for name in SUITE:
            fdir = os.path.join("functions", name)
            pdir = os.path.join(ROOT, fdir, "payloads")
            if not os.path.isdir(pdir):
                continue
            pfile = os.path.join(pdir, sorted(os.listdir(pdir))[0])
            host = subprocess.run(["/usr/bin/python3.11", "tools/python/host_invoke.py", fdir, pfile],
                                  capture_output=True, text=True, cwd=ROOT)
            snap = os.path.join(tmp, name)
            s = subprocess.run([THAW, "snapshot", fdir, "-o", snap], capture_output=True, text=True, cwd=ROOT)
            for mode in ("copy", "lazy", "uffd", "reap", "reap"):
                r = subprocess.run([THAW, "restore", snap, "--mem", mode, "--payload-file", pfile],
                                   capture_output=True, text=True, cwd=ROOT)
                ok = host.returncode == 0 and s.returncode == 0 and r.returncode == 0 and \
                    r.stdout.rstrip("\n") == host.stdout
                passed += ok
                failed += not ok
                print("%s  %s restored (%s) equals host python3" % ("ok  " if ok else "FAIL", name, mode))
                if not ok:
                    print("   host:", host.stdout[:200], host.stderr[-300:])
                    print("   vm:  ", r.stdout[:200], r.stderr[-300:], s.stderr[-300:])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
