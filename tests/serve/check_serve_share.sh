#!/usr/bin/env bash
# restore=share in `thaw serve`: eight instances of memtouch alive at once in one daemon
# (jailed workers), started together; each writes its own part of the arena and reads
# every other part unchanged, before and after all of them wrote; every start is
# cold-share on its own instance (the first start records the working set as cold-reap);
# the workers' total PSS (smaps_rollup) is at most 40% of eight reap instances'. Also:
# share is accepted by deploy and PATCH and shown in GET; /metrics' PSS of two share
# instances is below their RSS. Prints "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/serve/lib.sh
need_kvm "restore=share in thaw serve"

python3 bench/serve_share.py --sweep 8 --json >"$WORK/share.json" 2>"$WORK/share.err"
rc=$?
[ -s "$WORK/share.err" ] && head -20 "$WORK/share.err"
check "8 concurrent share instances and 8 reap instances: every answer right, distinct instances" [ $rc -eq 0 ]
check "share PSS of 8 workers at most 40% of 8 reap workers'" python3 -c '
import json, sys
rows = {r["mode"]: r for r in map(json.loads, open(sys.argv[1]))}
s, r = rows["share"], rows["reap"]
print("  PSS of 8 workers (smaps_rollup): share %d KiB, reap %d KiB (%.0f%%); guest memory %d vs %d KiB" % (
    s["pss_kb"], r["pss_kb"], 100.0 * s["pss_kb"] / r["pss_kb"], s["guest_pss_kb"], r["guest_pss_kb"]))
assert s["checked"] == 8 and r["checked"] == 8 and s["pss_kb"] <= 0.4 * r["pss_kb"], (s, r)
' "$WORK/share.json"

make_testfn "$WORK/echo"
start_daemon "$WORK/state" || { fail "daemon starts"; finish; exit 1; }
st=$(deploy echo "$WORK/echo" "restore=share")
check "deploy with restore=share" [ "$st" = 201 ]
http GET /functions/echo >/dev/null
check "GET shows restore share" [ "$(json_field config.restore)" = share ]
st=$(http POST /invoke/echo -d '{"a": 1}')
[ "$st" = 200 ] && [ "$(body)" = '{"a": 1}' ] && [ "$(header X-Thaw-Start)" = cold-reap ] \
    && pass "share without a working set: cold-reap records one" || fail "first share start" "$st $(header X-Thaw-Start) $(body)"
http PATCH /functions/echo -d '{"keep_alive_ms": 0}' >/dev/null
WAITED= # the instance goes (keep-alive 0): the next start is cold
wait_instances echo 'idle + busy + starting == 0'
st=$(http POST /invoke/echo -d '{"a": 2}')
[ -z "$WAITED" ] && [ "$st" = 200 ] && [ "$(body)" = '{"a": 2}' ] && [ "$(header X-Thaw-Start)" = cold-share ] \
    && [ "$(header X-Thaw-Prefetch-Us)" -gt 0 ] \
    && pass "then cold-share, working set mapped in" || fail "second share start" "$st $(header X-Thaw-Start) $(header X-Thaw-Prefetch-Us) $(body) $WAITED"
st=$(http PATCH /functions/echo -d '{"restore": "shared"}')
[ "$st" = 400 ] && grep -q 'boot or share' "$WORK/body" && pass "unknown restore refused, naming share" || fail "bad restore" "$st $(body)"
http GET /metrics >/dev/null
grep -q 'thaw_invocations_total{function="echo",start="cold-share"} 1' "$WORK/body" \
    && pass "metrics count the cold-share start" || fail "metrics cold-share" "$(grep cold-share "$WORK/body" | head -3)"
# Two share instances idle at once (pre-warmed, each sampled when started): their RSS
# counts the shared working set twice, their PSS once, so the PSS total is below the RSS.
http PATCH /functions/echo -d '{"keep_alive_ms": 60000, "min_instances": 2}' >/dev/null
two_idle() { http GET /metrics >/dev/null; grep -q '^thaw_instances{function="echo",state="idle"} 2$' "$WORK/body"; }
poll 20 two_idle
mem_sample() { sed -n "s/^$1{function=\"echo\",state=\"$2\"} //p" "$WORK/body"; }
rss=$(mem_sample thaw_instance_memory_bytes idle) pss=$(mem_sample thaw_instance_pss_bytes idle)
echo "  2 idle share instances: RSS ${rss:-?} bytes, PSS ${pss:-?} bytes"
grep -q '^thaw_instances{function="echo",state="idle"} 2$' "$WORK/body" && [ -n "$rss" ] && [ -n "$pss" ] \
    && [ "$pss" -gt 0 ] && [ "$pss" -lt "$rss" ] \
    && pass "metrics: PSS of two share instances below their RSS" || fail "PSS below RSS" "rss=$rss pss=$pss"
grep -q '^# TYPE thaw_instance_pss_byte_seconds_total counter$' "$WORK/body" \
    && [ -n "$(mem_sample thaw_instance_pss_byte_seconds_total idle)" ] \
    && pass "metrics: PSS memory-seconds by state" || fail "PSS memory-seconds" "$(grep pss_byte "$WORK/body")"
http GET /functions/echo >/dev/null
[ "$(json_field memory.idle_pss_bytes)" -gt 0 ] && [ "$(json_field memory.idle_pss_bytes)" -lt "$(json_field memory.idle_bytes)" ] \
    && pass "GET /functions: idle PSS below idle RSS" || fail "GET memory PSS" "$(body)"
http GET /healthz >/dev/null
[ "$(json_field pss_bytes)" -gt 0 ] && [ "$(json_field pss_bytes)" -lt "$(json_field memory_bytes)" ] \
    && pass "healthz: PSS below resident memory" || fail "healthz PSS" "$(body)"
stop_daemon
finish
