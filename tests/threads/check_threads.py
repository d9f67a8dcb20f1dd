#!/usr/bin/env python3
"""Threads in the guest, through the real CLI (microVMs, /dev/kvm): the threads
function (a producer/consumer pair on a mutex and condition variables, pthread_join,
thread-local storage, a timed wait) answers correctly dynamically linked with Debian's
glibc, statically with glibc and statically with musl; its snapshots, taken while two
threads exist, restore in every memory mode; a deadlock stops the guest with one clear
error instead of hanging.

Prints one line per check and ends with "N passed, N failed"."""
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from thaw_suite import check, main, payload_args, thaw  # noqa: E402

VARIANTS = ("threads", "threads-static", "threads-musl")


def payloads(*items):
    return payload_args(*(json.dumps({"items": n}) for n in items))


def expected(n, consumer_before):
    """The response for a round of n items after consumer_before items went before."""
    return {"items": n, "sum": n * (n + 1) // 2, "producer_tls": n, "consumer_tls": consumer_before + n,
            "timedwait": "ETIMEDOUT", "checks": "ok"}


def responses_ok(stdout, items, consumer_before=10, first_round=2):
    """Every line answers its round; the consumer's TLS counter carries on across rounds."""
    lines = stdout.strip().splitlines()
    if len(lines) != len(items):
        return False, "%d responses for %d requests" % (len(lines), len(items))
    before = consumer_before
    for i, (line, n) in enumerate(zip(lines, items)):
        r = json.loads(line)
        want = dict(expected(n, before), rounds=first_round + i)
        if {k: r.get(k) for k in want} != want:
            return False, "got %s, want %s" % (r, want)
        before += n
    return True, ""


def run_all(tmp):
    items = (2000, 1, 0, 37)
    for v in VARIANTS:
        p = thaw("run", "functions/" + v, *payloads(*items), timeout=120)
        ok, why = responses_ok(p.stdout, items) if p.returncode == 0 else (False, p.stderr)
        check("%s: producer/consumer, join and TLS answer every request" % v, ok, why)

    for v in ("threads", "threads-musl"):
        snap = os.path.join(tmp, v)
        p = thaw("snapshot", "functions/" + v, "-o", snap)
        check("%s: snapshot with two threads alive" % v, p.returncode == 0, p.stderr)
        for mode in ("copy", "lazy", "uffd", "reap", "reap"):
            p = thaw("restore", snap, "--mem", mode, *payloads(300, 5))
            ok, why = responses_ok(p.stdout, (300, 5)) if p.returncode == 0 else (False, p.stderr)
            check("%s: restore in %s mode resumes both threads" % (v, mode), ok, why)

    p = thaw("run", "functions/threads", "--payload", '{"deadlock": 1}')
    err = p.stderr
    check("a deadlock is one clear guest error, not a hang",
          p.returncode != 0 and "deadlock: all 2 threads are blocked" in err
          and "thread 1 waits in futex wait" in err and "thread 2 waits in futex wait" in err, err)

    # A thread's stack overflow runs into the guard page below its stack (glibc's and
    # musl's PROT_NONE guard, unmapped by the guest kernel): one clear error naming the
    # thread, with every libc.
    for v in VARIANTS:
        p = thaw("run", "functions/" + v, "--payload", '{"overflow": 1}')
        err = p.stderr
        tid = ""
        for line in err.splitlines():
            if "overflow thread " in line and " starts recursing" in line:
                tid = line.split("overflow thread ")[1].split()[0]
        check("%s: a thread's stack overflow is one clear error naming the thread (not silent corruption)" % v,
              p.returncode != 0 and tid and ("stack overflow in thread %s:" % tid) in err
              and "the guard did not stop it" not in err, err[-600:])


if __name__ == "__main__":
    sys.exit(main("threads", run_all))
