"""A `thaw serve` for the benchmarks: started on 127.0.0.1 (a free port, a temporary
state directory), functions deployed by tar over the HTTP API, metrics scraped. Used by
bench/cold_concurrency.py, bench/keepalive_tradeoff.py and bench/load_vs_hey.py."""
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
THAW = os.path.join(ROOT, "build", "thaw")


def http(url, method="GET", data=None, timeout=600, headers=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


class Daemon:
    def __init__(self, *serve_args):
        self.work = tempfile.mkdtemp(prefix="thaw-bench-", dir=ROOT)
        self.state = os.path.join(self.work, "state")
        ready = os.path.join(self.work, "url")
        self.log = open(os.path.join(self.work, "daemon.log"), "w")
        self.proc = subprocess.Popen([THAW, "serve", "--listen", "127.0.0.1:0", "--state-dir", self.state,
                                      "--ready-file", ready] + list(serve_args), stderr=self.log)
        for _ in range(400):
            if os.path.exists(ready) and open(ready).read().strip():
                break
            if self.proc.poll() is not None:
                raise RuntimeError("thaw serve exited: see %s" % self.log.name)
            time.sleep(0.05)
        self.url = open(ready).read().strip()

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.work, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def deploy(self, name, fdir, **config):
        tar = os.path.join(self.work, "fn.tar")
        subprocess.run(["tar", "-C", fdir, "-cf", tar, "."], check=True)
        query = "&".join("%s=%s" % kv for kv in config.items())
        st, _, body = http("%s/functions/%s%s" % (self.url, name, "?" + query if query else ""), "PUT",
                           open(tar, "rb").read())
        if st not in (200, 201):
            raise RuntimeError("deploy %s: %d %s" % (name, st, body[:300]))
        return json.loads(body)

    def patch(self, name, **config):
        st, _, body = http("%s/functions/%s" % (self.url, name), "PATCH", json.dumps(config).encode())
        if st != 200:
            raise RuntimeError("PATCH %s: %d %s" % (name, st, body[:300]))

    def function(self, name):
        return json.loads(http("%s/functions/%s" % (self.url, name))[2])

    def invoke(self, name, payload):
        t = time.perf_counter()
        st, h, body = http("%s/invoke/%s" % (self.url, name), "POST", payload)
        return st, h, (time.perf_counter() - t) * 1000.0

    def wait_no_instances(self, timeout=60):
        """Until no instance of any function is idle, busy or starting."""
        end = time.time() + timeout
        while time.time() < end:
            h = json.loads(http(self.url + "/healthz")[2])
            if sum(h["instances"].values()) == 0:
                return
            time.sleep(0.05)
        raise RuntimeError("instances still alive after %d s" % timeout)

    def snapshot_files(self, name):
        d = os.path.join(self.state, "functions", name)
        d = os.path.join(d, open(os.path.join(d, "current")).read().strip(), "snapshot")
        return [os.path.join(d, f) for f in os.listdir(d)]

    def drop_cache(self, names):
        """Drops the functions' snapshot files from the page cache (nothing maps them
        while no instance is alive)."""
        for n in names:
            for f in self.snapshot_files(n):
                fd = os.open(f, os.O_RDONLY)
                try:
                    os.fsync(fd)
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                finally:
                    os.close(fd)

    def metrics(self):
        """{(name, labels-string): value} from /metrics."""
        out = {}
        for line in http(self.url + "/metrics")[2].decode().splitlines():
            m = re.match(r"^([a-z_]+)(\{[^}]*\})? (\S+)$", line)
            if m:
                out[(m.group(1), m.group(2) or "")] = float(m.group(3))
        return out


def suite_payload(fdir):
    pdir = os.path.join(fdir, "payloads")
    with open(os.path.join(pdir, sorted(os.listdir(pdir))[0]), "rb") as f:
        return f.read().strip()


def pct(v, p):
    v = sorted(v)
    if not v:
        return float("nan")
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    return v[lo] if lo + 1 >= len(v) else v[lo] + (k - lo) * (v[lo + 1] - v[lo])


def block_device_stat(path):
    """The /sys/block/<dev>/stat file of the disk holding path (partitions resolved)."""
    st = os.stat(path)
    sysdev = os.path.realpath("/sys/dev/block/%d:%d" % (os.major(st.st_dev), os.minor(st.st_dev)))
    stat = os.path.join(sysdev, "stat")
    if not os.path.exists(os.path.join(sysdev, "device")) and os.path.exists(os.path.join(sysdev, "..", "stat")):
        stat = os.path.join(sysdev, "..", "stat")
    return stat if os.path.exists(stat) else None


def sectors_read(stat):
    if not stat:
        return 0
    with open(stat) as f:
        return int(f.read().split()[2])
