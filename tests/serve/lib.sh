# Shared by the daemon's shell suites: start/stop a `thaw serve` on 127.0.0.1 with a
# free port and a temporary state directory, HTTP helpers; counting from tests/lib/suite.sh.
# Sourced; expects BUILD and sets THAW, WORK, URL, DAEMON_PID.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/suite.sh"
WORK=$(mktemp -d)
DAEMON_PID=
cleanup() {
    [ -n "$DAEMON_PID" ] && kill -9 "$DAEMON_PID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

need_kvm() {
    if ! "$THAW" serve --help >/dev/null 2>&1; then
        echo "*** SKIP $1: this build has no thaw serve (the lifecycle layer's implementation is missing)"
        echo "0 passed, 0 failed"
        exit 0
    fi
    if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
        echo "*** SKIP $1: no usable /dev/kvm"
        echo "0 passed, 0 failed"
        exit 0
    fi
}

# start_daemon STATE_DIR [serve options...]: waits for the ready file.
start_daemon() {
    local state=$1; shift
    rm -f "$WORK/url"
    "$THAW" serve --listen 127.0.0.1:0 --state-dir "$state" --ready-file "$WORK/url" "$@" \
        >>"$WORK/daemon.log" 2>&1 &
    DAEMON_PID=$!
    for _ in $(seq 400); do # 20 s and more: a loaded CI machine starts it slowly
        [ -s "$WORK/url" ] && break
        kill -0 "$DAEMON_PID" 2>/dev/null || break
        sleep 0.05
    done
    URL=$(cat "$WORK/url" 2>/dev/null)
    [ -n "$URL" ] || { echo "daemon did not start:"; tail -5 "$WORK/daemon.log"; return 1; }
}

# stop_daemon [signal]: SIGTERM by default; returns the daemon's exit status.
stop_daemon() {
    local sig=${1:-TERM} rc
    kill -"$sig" "$DAEMON_PID" 2>/dev/null
    wait "$DAEMON_PID"; rc=$?
    DAEMON_PID=
    return $rc
}

# http METHOD PATH [curl args...]: prints the status code; body in $WORK/body,
# headers in $WORK/headers.
http() {
    local method=$1 path=$2; shift 2
    curl -s --path-as-is -X "$method" -o "$WORK/body" -D "$WORK/headers" -w '%{http_code}' "$@" "$URL$path"
}
header() { sed -n "s/^$1: *//Ip" "$WORK/headers" | tr -d '\r'; }
body() { cat "$WORK/body"; }
json_field() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); exec("for k in sys.argv[2].split(\".\"): d=d[k]"); print(d)' "$WORK/body" "$1"; }

# deploy NAME DIR [query]: prints the status.
deploy() {
    tar -C "$2" -cf "$WORK/upload.tar" .
    http PUT "/functions/$1${3:+?$3}" --data-binary @"$WORK/upload.tar" -H 'Content-Type: application/x-tar' "${@:4}"
}

# A C test function: echoes; {"spin_ms": N} busy-waits; {"loop": 1} never answers;
# {"crash": 1} writes through NULL; prints one line per request.
make_testfn() {
    mkdir -p "$1"
    echo "{\"name\": \"$(basename "$1")\", \"runtime\": \"native\", \"memory_mib\": 32}" >"$1/function.json"
    cat >"$1/main.c" <<'C'
#include <stdio.h>
#include <string.h>
#include <time.h>
#include "thaw_function.h"

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(void)
{
    static char req[1 << 16];
    char v[32];
    int fd = thaw_open();
    ssize_t n;
    while ((n = thaw_next(fd, req, sizeof req)) > 0) {
        printf("request of %zd bytes\n", n);
        fflush(stdout);
        if (thaw_json_string(req, "crash", v, sizeof v) == 0 || strstr(req, "\"crash\""))
            *(volatile int *)0 = 1;
        if (strstr(req, "\"loop\""))
            for (;;) {
            }
        const char *ms = thaw_json_find(req, "spin_ms");
        if (ms) {
            double end = now_ms() + atoi(ms);
            while (now_ms() < end) {
            }
        }
        thaw_respond(fd, req, (size_t)n);
    }
    return 0;
}
C
}

# poll SECONDS COMMAND...: runs COMMAND every 50 ms until it succeeds; non-zero once
# SECONDS have passed without. Orders a check's events on the daemon's own state, not
# on fixed sleeps: CI's machine is shared, and at times much slower than a desk's.
poll() {
    local end=$(( $(date +%s%N) + $1 * 1000000000 )); shift
    until "$@"; do
        [ "$(date +%s%N)" -lt "$end" ] || return 1
        sleep 0.05
    done
}
# instances_are NAME COND: the instance counts of GET /functions/NAME (idle, busy,
# starting, queued) satisfy COND, a Python expression over them ("busy == 1"). Leaves
# the counts seen in $WORK/instances and $WORK/body alone.
instances_are() {
    curl -s -o "$WORK/fn.json" "$URL/functions/$1"
    python3 - "$WORK/fn.json" "$2" >"$WORK/instances" 2>&1 <<'PY'
import json, sys
try:
    i = json.load(open(sys.argv[1]))["instances"]
except Exception as e:
    print("no instance counts (%s)" % e)
    sys.exit(1)
print(" ".join("%s=%s" % kv for kv in sorted(i.items())))
sys.exit(0 if eval(sys.argv[2], {}, dict(i)) else 1)
PY
}
# wait_instances NAME COND [SECONDS]: waits up to SECONDS (default 20) for instances_are
# NAME COND. On a timeout it returns 1 and appends what it waited for and the counts
# last seen to $WAITED, which the caller's check then fails with (callers clear it).
WAITED=
wait_instances() {
    poll "${3:-20}" instances_are "$1" "$2" && return 0
    WAITED="${WAITED:+$WAITED; }$1 not '$2' within ${3:-20} s (last: $(cat "$WORK/instances"))"
    return 1
}

fd_count() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
children() { pgrep -P "$1" | wc -l; }
# The daemon's workers that hold an instance: jailed (Seccomp 2). Spare workers, started
# ahead and waiting for one, are not jailed yet.
instance_workers() {
    local c
    for c in $(pgrep -P "$1"); do
        [ "$(tr '\0' ' ' 2>/dev/null <"/proc/$c/cmdline")" = "thaw worker --fd 3 " ] || continue
        [ "$(awk '/^Seccomp:/ {print $2}' "/proc/$c/status" 2>/dev/null)" = 2 ] && echo "$c"
    done
}
# spares_settled: prints the spare workers ready (started ahead, --spare-workers) once
# they are back at their target. Not there within 20 s: prints "ready R of target T"
# and returns 1, which the caller fails a check with.
spares_settled() {
    local rt end=$(( $(date +%s%N) + 20000000000 ))
    while :; do
        curl -s -o "$WORK/spares.json" "$URL/healthz"
        rt=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1]))["spares"]; print(s["ready"], s["target"])' "$WORK/spares.json" 2>/dev/null)
        [ -n "$rt" ] && [ "${rt% *}" = "${rt#* }" ] && { echo "${rt% *}"; return 0; }
        [ "$(date +%s%N)" -lt "$end" ] || break
        sleep 0.05
    done
    echo "spares not settled within 20 s: ready ${rt% *} of target ${rt#* }"
    return 1
}
# children_but_spares PID: the daemon's children other than its spare workers (once
# those are at their target); spares_settled's message when they do not settle.
children_but_spares() {
    local ready
    ready=$(spares_settled) || { echo "$ready"; return 1; }
    echo $(( $(children "$1") - ready ))
}
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
