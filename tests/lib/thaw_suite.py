"""What every Python check suite that drives the real CLI shares: where build/thaw is,
one line per check, a loud SKIP when /dev/kvm is not usable, a crash counted as a
failure (never a silent pass), a scratch directory removed at the end, and the closing
"N passed, N failed" line that tests/run-all.sh reads."""
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("BUILD", "build")
THAW = os.path.join(ROOT, BUILD, "thaw")

_counts = {"passed": 0, "failed": 0}


def check(name, ok, detail=""):
    """Records one check and prints its line; returns ok so callers can chain on it."""
    if ok:
        _counts["passed"] += 1
        print("ok    " + name)
    else:
        _counts["failed"] += 1
        print("FAIL  %s %s" % (name, str(detail)[-1000:]))  # the end of a long stderr says what went wrong
    sys.stdout.flush()  # each line as it happens: a suite that hangs shows where
    return ok


def thaw(*args, timeout=300, env=None):
    """Runs build/thaw from the repository root and returns the CompletedProcess."""
    return subprocess.run([THAW] + list(args), capture_output=True, text=True, cwd=ROOT, timeout=timeout,
                          env=dict(os.environ, **(env or {})))


def payload_args(*payloads):
    """["--payload", p1, "--payload", p2, ...]"""
    out = []
    for p in payloads:
        out += ["--payload", p]
    return out


def main(what, body, cleanup=None):
    """Runs body(tmpdir) as the suite called `what` and returns the process exit code;
    cleanup(tmpdir), if given, runs before the directory is removed, whatever happened."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        print("*** SKIP: /dev/kvm not usable: %s tests did not run ***" % what)
        print("0 passed, 0 failed")
        return 0
    tmp = tempfile.mkdtemp(prefix="thaw-%s-test-" % what.replace(" ", "-"))
    try:
        body(tmp)
    except Exception as e:  # a crash is a failure, never a silent pass
        check("%s suite ran to the end" % what, False, repr(e))
    finally:
        if cleanup:
            cleanup(tmp)
        shutil.rmtree(tmp, ignore_errors=True)
    print("%d passed, %d failed" % (_counts["passed"], _counts["failed"]))
    return 1 if _counts["failed"] else 0
