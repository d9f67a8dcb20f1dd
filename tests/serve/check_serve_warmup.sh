#!/usr/bin/env bash
# Deploy-time warm-up (`warmup` key): the daemon invokes a freshly booted function N times
# with the files of its payloads/ directory (in name order, cycled; "{}" without one)
# before it takes the snapshot, so every instance restored from it starts where the
# warm-ups left it. A counting function shows it: its first answer after a cold start
# counts the warm-ups. Also: a PATCH of warmup makes a new version, a failing warm-up
# is a 422 that leaves the old version serving, and bad values and payloads are refused.
# Prints "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/serve/lib.sh
need_kvm "deploy-time warm-up"

# Answers {"n": invocations so far, "sum": the sum of every request's "x"}; crashes on
# {"crash": 1}.
make_counter() {
    mkdir -p "$1"
    echo "{\"name\": \"$(basename "$1")\", \"runtime\": \"native\", \"memory_mib\": 32}" >"$1/function.json"
    cat >"$1/main.c" <<'C'
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "thaw_function.h"

int main(void)
{
    static char req[1 << 16], out[128];
    uint64_t n = 0, sum = 0;
    int fd = thaw_open();
    ssize_t len;
    while ((len = thaw_next(fd, req, sizeof req)) > 0) {
        uint64_t x = 0;
        if (strstr(req, "\"crash\""))
            *(volatile int *)0 = 1;
        if (thaw_json_u64(req, "x", &x) == 0)
            sum += x;
        n++;
        int m = snprintf(out, sizeof out, "{\"n\": %llu, \"sum\": %llu}", (unsigned long long)n,
                         (unsigned long long)sum);
        thaw_respond(fd, out, (size_t)m);
    }
    return 0;
}
C
}

start_daemon "$WORK/state" --max-body 64K || { fail "daemon starts"; finish; exit 1; }

make_counter "$WORK/count"
mkdir -p "$WORK/count/payloads"
echo '{"x": 10}' >"$WORK/count/payloads/a.json"
echo '{"x": 20}' >"$WORK/count/payloads/b.json"
st=$(deploy count "$WORK/count" "warmup=3")
[ "$st" = 201 ] && [ "$(json_field config.warmup)" = 3 ] && python3 -c '
import json, sys; b = json.load(open(sys.argv[1])); assert b["warmup_ms"] > 0, b' "$WORK/body" \
    && pass "deploy with warmup=3: 201, config and warmup_ms say so" || fail "deploy warmup=3" "$st $(body)"
st=$(http POST /invoke/count -d '{"x": 1}')
[ "$st" = 200 ] && [ "$(header X-Thaw-Start)" = cold-reap ] && [ "$(body)" = '{"n": 4, "sum": 41}' ] \
    && pass "the first cold start answers after 3 warm-ups of a, b, a: n 4, sum 41" \
    || fail "cold start after warm-ups" "$st $(header X-Thaw-Start) $(body)"
# The prefetching restore (its working set recorded by the start above) starts there too.
http PATCH /functions/count -d '{"keep_alive_ms": 0}' >/dev/null
WAITED= # the instance goes (keep-alive 0): the next start is cold
wait_instances count 'idle + busy + starting == 0'
st=$(http POST /invoke/count -d '{"x": 2}')
[ -z "$WAITED" ] && [ "$st" = 200 ] && [ "$(header X-Thaw-Start)" = cold-reap ] && [ "$(body)" = '{"n": 4, "sum": 42}' ] \
    && pass "a prefetching cold start answers from the warmed-up snapshot too" \
    || fail "second cold start" "$st $(header X-Thaw-Start) $(body) $WAITED"

# Without warmup, the same function starts from its ready point: n 1.
st=$(deploy count0 "$WORK/count" "keep_alive_ms=0")
st2=$(http POST /invoke/count0 -d '{"x": 1}')
[ "$st" = 201 ] && [ "$st2" = 200 ] && [ "$(body)" = '{"n": 1, "sum": 1}' ] \
    && pass "without warmup the first answer is the first invocation" || fail "no warmup" "$st $st2 $(body)"
# PATCH warmup: a new version, booted and warmed up (one warm-up: payload a).
st=$(http PATCH /functions/count0 -d '{"warmup": 1}')
[ "$st" = 200 ] && [ "$(json_field version)" = 2 ] && [ "$(json_field config.warmup)" = 1 ] \
    && pass "PATCH warmup makes version 2" || fail "PATCH warmup" "$st $(body)"
WAITED= # version 1's instance goes: the next start is from version 2
wait_instances count0 'idle + busy + starting == 0'
st=$(http POST /invoke/count0 -d '{"x": 1}')
[ -z "$WAITED" ] && [ "$st" = 200 ] && [ "$(body)" = '{"n": 2, "sum": 11}' ] \
    && pass "after the PATCH a cold start counts one warm-up" || fail "after PATCH" "$st $(body) $WAITED"

# No payloads/ directory: the warm-ups send {}.
make_counter "$WORK/bare"
st=$(deploy bare "$WORK/bare" "warmup=2")
st2=$(http POST /invoke/bare -d '{"x": 5}')
[ "$st" = 201 ] && [ "$st2" = 200 ] && [ "$(body)" = '{"n": 3, "sum": 5}' ] \
    && pass "without payloads/ the warm-ups send {}" || fail "bare warmup" "$st $st2 $(body)"

# A warm-up that crashes: 422 naming it, and the version before keeps serving.
echo '{"crash": 1}' >"$WORK/count/payloads/c.json"
st=$(deploy count "$WORK/count" "warmup=3")
[ "$st" = 422 ] && grep -q 'warm-up invocation 3 of 3 failed' "$WORK/body" \
    && pass "a crashing warm-up: 422 naming the invocation" || fail "crashing warm-up" "$st $(body)"
http GET /functions/count >/dev/null
[ "$(json_field version)" = 1 ] && pass "the version before keeps serving" || fail "old version" "$(body)"
rm "$WORK/count/payloads/c.json"

# Bad values and payloads.
st=$(deploy count "$WORK/count" "warmup=101")
[ "$st" = 400 ] && grep -q 'warmup.*must be from 0 to 100' "$WORK/body" \
    && pass "warmup=101 refused (400)" || fail "warmup=101" "$st $(body)"
st=$(http PATCH /functions/count -d '{"warmup": -1}')
[ "$st" = 400 ] && pass "PATCH warmup -1 refused (400)" || fail "PATCH warmup -1" "$st $(body)"
head -c 70000 /dev/zero | tr '\0' ' ' >"$WORK/count/payloads/big.json"
st=$(deploy count "$WORK/count" "warmup=1")
[ "$st" = 422 ] && grep -q 'payloads/big.json' "$WORK/body" \
    && pass "a warm-up payload over the request-body limit: 422 naming it" || fail "big payload" "$st $(body)"
rm "$WORK/count/payloads/big.json"
ln -s /etc/passwd "$WORK/count/payloads/link.json"
st=$(deploy count "$WORK/count" "warmup=1")
case $st in
4??) pass "a symlinked warm-up payload is refused ($st)" ;;
*) fail "symlinked payload" "$st $(body)" ;;
esac
http GET /functions/count >/dev/null
[ "$(json_field version)" = 1 ] && pass "after the refused deploys version 1 still serves" || fail "version after" "$(body)"
stop_daemon
finish
