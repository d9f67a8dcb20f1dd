#!/usr/bin/env bash
# Keep-alive policies and instance memory against a real `thaw serve` on 127.0.0.1:
# the fixed policy's memory gauges and memory-seconds; the hybrid histogram policy
# (keep_alive_policy=hybrid) with 100 ms bins: the fixed fallback until it has 10 idle
# times, then teardown when an invocation ends, a pre-warmed instance at the pre-warm
# window that answers warm, and teardown after the keep-alive window. Prints
# "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/serve/lib.sh
need_kvm "keep-alive policies"

now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
metric() { # name labels: the sample's value from /metrics
    curl -s "$URL/metrics" | awk -v k="$1{$2}" '$1 == k { print $2 }'
}

make_testfn "$WORK/spin"
start_daemon "$WORK/state" || { fail "daemon starts"; finish; exit 1; }

# ---- fixed: memory held by idle instances -----------------------------------------
st=$(deploy fixedfn "$WORK/spin" "keep_alive_ms=1500")
check "deploy fixedfn" [ "$st" = 201 ]
http POST /invoke/fixedfn -d '{"n": 1}' >/dev/null
# The instance is sampled (worker and pager asked) after its answer has gone out, then
# goes idle: wait for that (up to 10 s on a loaded host) rather than race it.
for _ in $(seq 200); do
    idle_b=$(metric thaw_instance_memory_bytes 'function="fixedfn",state="idle"')
    [ "${idle_b:-0}" -gt 0 ] && break
    sleep 0.05
done
busy_b=$(metric thaw_instance_memory_bytes 'function="fixedfn",state="busy"')
[ "${idle_b:-0}" -gt 0 ] && [ "$busy_b" = 0 ] && pass "an idle instance's resident memory is in /metrics" \
    || fail "idle memory gauge" "idle $idle_b busy $busy_b"
busy_s=$(metric thaw_instance_memory_byte_seconds_total 'function="fixedfn",state="busy"')
awk -v b="$busy_s" 'BEGIN { exit !(b > 0) }' \
    && pass "busy memory-seconds counted when the invocation ends" || fail "busy memory-seconds" "$busy_s"
sleep 0.5
s1=$(metric thaw_instance_memory_byte_seconds_total 'function="fixedfn",state="idle"')
# At least 0.5 s x the idle memory so far, and less than the keep-alive's worth.
awk -v v="$s1" -v m="$idle_b" 'BEGIN { exit !(0.5 * m <= v && v < 1.5 * m) }' \
    && pass "idle memory-seconds grow with idle time (${s1} B s after ~0.5 s of $idle_b B)" \
    || fail "idle memory-seconds" "$s1 for $idle_b bytes"
sleep 1.5
http GET /functions/fixedfn >/dev/null
[ "$(json_field instances.idle)" = 0 ] && [ "$(json_field memory.idle_bytes)" = 0 ] \
    && pass "after the keep-alive no idle memory is held" || fail "fixed teardown" "$(body)"
s2=$(metric thaw_instance_memory_byte_seconds_total 'function="fixedfn",state="idle"')
# Torn down after 1.5 s idle (the reaper runs every 50 ms): 1.5 s x its memory.
awk -v a="$s1" -v b="$s2" -v m="$idle_b" 'BEGIN { exit !(b > a && 1.45 * m <= b && b < 1.7 * m) }' \
    && pass "idle memory-seconds = memory x keep-alive at teardown (${s2} B s)" || fail "idle memory-seconds at teardown" "$s1 -> $s2 for $idle_b B"

# ---- configuration ------------------------------------------------------------------
st=$(http PATCH /functions/fixedfn -d '{"keep_alive_policy": "hybrid", "hybrid_bin_ms": 0}')
check "hybrid_bin_ms 0 is refused" [ "$st" = 400 ]
st=$(http PATCH /functions/fixedfn -d '{"keep_alive_policy": "lru"}')
[ "$st" = 400 ] && grep -q policy "$WORK/body" && pass "an unknown policy is refused" || fail "unknown policy" "$st $(body)"

# ---- hybrid -----------------------------------------------------------------------
st=$(deploy hyb "$WORK/spin" "keep_alive_policy=hybrid&hybrid_bin_ms=100&keep_alive_ms=60000")
check "deploy with keep_alive_policy=hybrid" [ "$st" = 201 ]
http GET /functions/hyb >/dev/null
[ "$(json_field config.keep_alive_policy)" = hybrid ] && [ "$(json_field keep_alive.decision)" = few-samples ] \
    && [ "$(json_field keep_alive.keep_alive_ms)" = 60000 ] \
    && pass "hybrid starts on its fixed fallback (keep_alive_ms)" || fail "hybrid at start" "$(body)"

# Ten idle times of about 1.0 s and 2.5 s (bins 10 and 25): pre-warm window ~0.9 s,
# keep-alive to ~2.86 s after an invocation ends (wide, for restores on a busy host).
http POST /invoke/hyb -d '{"n": 0}' >/dev/null
first_kind=$(header X-Thaw-Start)
for i in 1 2 3 4 5; do
    sleep 1.0; http POST /invoke/hyb -d '{"n": 1}' >/dev/null
    [ "$i" = 1 ] && kind_fallback=$(header X-Thaw-Start)
    sleep 2.5; http POST /invoke/hyb -d '{"n": 2}' >/dev/null
done
t_end=$(now_ms)
# Watch the pool for 3.8 s after the invocation ended (curl only: a Python start can
# take most of a second here): no instance, then one pre-warmed, then none.
(
    while t=$(( $(now_ms) - t_end )); [ "$t" -lt 3800 ]; do
        b=$(curl -s "$URL/functions/hyb")
        echo "$t $(grep -o '"idle": *[0-9]*' <<<"$b" | grep -o '[0-9]*$') $(grep -o '"starting": *[0-9]*' <<<"$b" | grep -o '[0-9]*$')"
        sleep 0.04
    done >"$WORK/watch"
) &
watcher=$!
id_before=$(header X-Thaw-Instance)
[ "$first_kind" = cold-reap ] && [ "$kind_fallback" = warm ] \
    && pass "while on the fallback the instance stays warm" || fail "fallback warm" "$first_kind $kind_fallback"
http GET /functions/hyb >/dev/null
pre=$(json_field keep_alive.prewarm_ms); keep=$(json_field keep_alive.keep_alive_ms)
[ "$(json_field keep_alive.decision)" = histogram ] && [ "$(json_field keep_alive.idle_times)" = 10 ] \
    && [ "$pre" -ge 800 ] && [ "$pre" -le 1300 ] && [ $((pre + keep)) -ge 2700 ] && [ $((pre + keep)) -le 3400 ] \
    && pass "ten idle times: windows from the histogram (pre-warm $pre ms, keep-alive $keep ms)" \
    || fail "hybrid windows" "$(body)"

wait $watcher
# The reaper runs every 50 ms; a restore takes tens of milliseconds (more on a busy host).
end=$((pre + keep))
early=$(awk -v p="$pre" '$1 >= 250 && $1 < p - 50 && $2 > 0' "$WORK/watch" | wc -l)
warm=$(awk -v p="$pre" -v e="$end" '$1 >= p && $1 < e - 50 && $2 == 1' "$WORK/watch" | wc -l)
late=$(awk -v e="$end" '$1 >= e + 300 && ($2 > 0 || $3 > 0)' "$WORK/watch" | wc -l)
[ "$(awk -v p="$pre" '$1 >= 250 && $1 < p - 50' "$WORK/watch" | wc -l)" -gt 0 ] && [ "$early" = 0 ] \
    && pass "torn down when the invocation ended (inside the pre-warm window)" || fail "teardown at end" "$(tr '\n' ';' <"$WORK/watch")"
[ "$warm" -gt 0 ] && pass "an instance is pre-warmed at the pre-warm window" || fail "pre-warm" "$(tr '\n' ';' <"$WORK/watch")"
[ "$(awk -v e="$end" '$1 >= e + 300' "$WORK/watch" | wc -l)" -gt 0 ] && [ "$late" = 0 ] \
    && pass "the pre-warmed instance goes after the keep-alive window" || fail "teardown after window" "$(tr '\n' ';' <"$WORK/watch")"

# The next cycle: invoke inside the window and get the pre-warmed instance, warm.
http POST /invoke/hyb -d '{"n": 3}' >/dev/null   # cold (the window passed)
t_end=$(now_ms)
cold_kind=$(header X-Thaw-Start)
while [ $(( $(now_ms) - t_end )) -lt $(( end - 250 )) ]; do sleep 0.02; done
http GET /functions/hyb >/dev/null; idle_now=$(json_field instances.idle)
mem_now=$(metric thaw_instance_memory_bytes 'function="hyb",state="idle"')
http POST /invoke/hyb -d '{"n": 4}' >/dev/null
[ "$cold_kind" = cold-reap ] && pass "after the window the next start is cold" || fail "cold after window" "$cold_kind"
[ "$idle_now" = 1 ] && [ "${mem_now:-0}" -gt 0 ] && [ "$(header X-Thaw-Start)" = warm ] \
    && [ "$(header X-Thaw-Instance)" != "$id_before" ] \
    && pass "an invocation inside the window is warm on the pre-warmed instance ($(header X-Thaw-Instance))" \
    || fail "warm on pre-warmed" "idle $idle_now mem $mem_now $(header X-Thaw-Start) $(header X-Thaw-Instance)"

# Back to fixed: the histogram goes, the idle instance stays for keep_alive_ms.
st=$(http PATCH /functions/hyb -d '{"keep_alive_policy": "fixed"}')
http POST /invoke/hyb -d '{"n": 5}' >/dev/null
sleep 0.5
http GET /functions/hyb >/dev/null
[ "$st" = 200 ] && [ "$(json_field keep_alive.decision)" = fixed ] && [ "$(json_field instances.idle)" = 1 ] \
    && pass "PATCH back to fixed keeps the idle instance" || fail "back to fixed" "$st $(body)"

stop_daemon || fail "daemon exits 0 on SIGTERM"
finish
