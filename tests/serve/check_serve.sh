#!/usr/bin/env bash
# `thaw serve` against a real daemon on 127.0.0.1 (a free port, a temporary state
# directory): deploy, cold then warm, restore modes, scale to zero, min instances,
# concurrency, the queue and its timeout, a looping and a crashing guest, logs,
# metrics, restart, kill -9 during a deploy, the token, no leaked process or fd.
# Bad input has its own suite (check_serve_input.sh). Prints "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/serve/lib.sh
need_kvm "thaw serve"

make_testfn "$WORK/spin"
start_daemon "$WORK/state" --drain-timeout 30000 || { fail "daemon starts"; finish; exit 1; }
check "healthz says ready" [ "$(http GET /healthz)" = 200 ]
grep -q '"status":"ready"' "$WORK/body" || fail "healthz body" "$(body)"

st=$(deploy spin "$WORK/spin")
check "deploy answers 201 when ready" [ "$st" = 201 ]
st=$(http GET /functions/spin)
[ "$st" = 200 ] && [ "$(json_field snapshot_bytes)" -gt 0 ] && [ "$(json_field version)" = 1 ] \
    && pass "GET /functions/spin: version and snapshot size" || fail "GET /functions/spin" "$st $(body)"

# Cold, then warm on the same instance.
st=$(http POST /invoke/spin -d '{"n": 1}')
kind1=$(header X-Thaw-Start); id1=$(header X-Thaw-Instance)
[ "$st" = 200 ] && [ "$(body)" = '{"n": 1}' ] && [ "$kind1" = cold-reap ] \
    && pass "first invocation is cold-reap and answers" || fail "first invocation" "$st $kind1 $(body)"
for h in X-Thaw-Queue-Us X-Thaw-Restore-Us X-Thaw-Prefetch-Us X-Thaw-Invoke-Us; do
    [[ "$(header $h)" =~ ^[0-9]+$ ]] || fail "header $h is an integer" "$(header $h)"
done
[ "$(header X-Thaw-Restore-Us)" -gt 0 ] && pass "cold start reports its restore time" || fail "restore time" "$(header X-Thaw-Restore-Us)"
# The answer can come before the instance is back in the pool (its stats): wait for it.
WAITED=
wait_instances spin 'idle == 1 and busy == 0'
st=$(http POST /invoke/spin -d '{"n": 2}')
[ -z "$WAITED" ] && [ "$st" = 200 ] && [ "$(header X-Thaw-Start)" = warm ] && [ "$(header X-Thaw-Instance)" = "$id1" ] \
    && [ "$(header X-Thaw-Restore-Us)" = 0 ] && pass "second invocation is warm on the same instance" \
    || fail "second invocation warm" "$st $(header X-Thaw-Start) $(header X-Thaw-Instance) $WAITED"

# Scale to zero after the keep-alive; the next start prefetches the working set.
st=$(http PATCH /functions/spin -d '{"keep_alive_ms": 200}')
check "PATCH keep_alive_ms" [ "$st" = 200 ]
WAITED=
wait_instances spin 'idle == 0 and busy == 0 and starting == 0'
http GET /functions/spin >/dev/null
[ -z "$WAITED" ] && [ "$(json_field instances.idle)" = 0 ] && pass "idle instance torn down after the keep-alive" \
    || fail "scale to zero" "$WAITED $(body)"
st=$(http POST /invoke/spin -d '{"n": 3}')
[ "$(header X-Thaw-Start)" = cold-reap ] && [ "$(header X-Thaw-Instance)" != "$id1" ] \
    && pass "after scale to zero the next invocation is cold again" || fail "cold after zero" "$(header X-Thaw-Start)"
[ "$(header X-Thaw-Prefetch-Us)" -gt 0 ] && pass "second REAP start prefetches the working set" \
    || fail "REAP prefetch" "prefetch $(header X-Thaw-Prefetch-Us) us"

# Every restore mode reports its own start kind.
for mode in lazy copy boot; do
    http PATCH /functions/spin -d "{\"restore\": \"$mode\"}" >/dev/null
    WAITED= # the idle instance of the mode before goes after its keep-alive (200 ms)
    wait_instances spin 'idle == 0 and busy == 0 and starting == 0'
    st=$(http POST /invoke/spin -d '{"mode": 1}')
    [ -z "$WAITED" ] && [ "$st" = 200 ] && [ "$(header X-Thaw-Start)" = "cold-$mode" ] && pass "restore $mode: cold-$mode" \
        || fail "restore $mode" "$st $(header X-Thaw-Start) $(body) $WAITED"
done

# Minimum instances stay warm with no traffic.
http PATCH /functions/spin -d '{"restore": "reap", "min_instances": 2, "keep_alive_ms": 100}' >/dev/null
WAITED=
wait_instances spin 'idle == 2'
sleep 0.5 # well past the 100 ms keep-alive: still two
http GET /functions/spin >/dev/null
[ -z "$WAITED" ] && [ "$(json_field instances.idle)" = 2 ] && pass "min_instances=2 keeps two warm" || fail "min instances" "$WAITED $(body)"
st=$(http POST /invoke/spin -d '{"n": 4}')
[ "$(header X-Thaw-Start)" = warm ] && pass "a pre-warmed instance answers warm" || fail "pre-warmed" "$(header X-Thaw-Start)"
http PATCH /functions/spin -d '{"min_instances": 0, "keep_alive_ms": 60000, "max_instances": 4}' >/dev/null

# Concurrent requests get separate instances.
pids=
for i in 1 2 3; do
    curl -s -D "$WORK/h$i" -o /dev/null "$URL/invoke/spin" -d '{"spin_ms": 3000}' &
    pids="$pids $!"
done
wait $pids
ids=$(for i in 1 2 3; do sed -n 's/^X-Thaw-Instance: *//Ip' "$WORK/h$i" | tr -d '\r'; done | sort -u | wc -l)
check "three concurrent invocations ran on three instances" [ "$ids" = 3 ]

# The queue: one instance, one waiting slot, a queue timeout (3 s) well inside the busy
# request's spin (8 s). Each request is sent once the daemon says the one before holds
# its place: the first busy on the one instance, the second queued.
http PATCH /functions/spin -d '{"max_instances": 1, "min_instances": 0, "queue_max": 1, "queue_timeout_ms": 3000}' >/dev/null
WAITED= # the idle instances beyond max_instances go first (the reaper)
wait_instances spin 'idle + busy + starting <= 1 and queued == 0'
curl -s -o /dev/null -w '%{http_code}\n' "$URL/invoke/spin" -d '{"spin_ms": 8000}' >"$WORK/q1" &
p1=$!
wait_instances spin 'busy == 1'
curl -s -o "$WORK/q2body" -w '%{http_code}\n' "$URL/invoke/spin" -d '{"n": 5}' >"$WORK/q2" &
p2=$!
wait_instances spin 'queued == 1'
curl -s -o "$WORK/q3body" -w '%{http_code}\n' "$URL/invoke/spin" -d '{"n": 6}' >"$WORK/q3"
wait $p1 $p2
[ -z "$WAITED" ] && [ "$(cat "$WORK/q1")" = 200 ] && [ "$(cat "$WORK/q2")" = 503 ] && [ "$(cat "$WORK/q3")" = 429 ] \
    && pass "queue: busy instance 200, waiting past the timeout 503, queue full 429" \
    || fail "queue" "$(cat "$WORK/q1") $(cat "$WORK/q2") $(cat "$WORK/q3") $WAITED"
grep -q '"error"' "$WORK/q3body" && pass "429 carries a JSON error" || fail "429 body" "$(cat "$WORK/q3body")"

# A PATCHed timeout applies to the very next request: an idle instance started under
# the old one is never handed out, even before the reaper culls it.
http POST /invoke/spin -d '{"n": 2}' >/dev/null
http PATCH /functions/spin -d '{"timeout_ms": 650}' >/dev/null
t0=$(date +%s%N)
st=$(http POST /invoke/spin -d '{"loop": 1}' -m 8)
t1=$(date +%s%N)
check "a PATCHed timeout applies to the next request at once (status $st after $(( (t1 - t0) / 1000000 )) ms)" \
    [ "$st" = 504 ]

# A looping guest costs only its own request (504) and instance; a crash is a 502.
http PATCH /functions/spin -d '{"max_instances": 4, "queue_max": 64, "queue_timeout_ms": 10000, "timeout_ms": 700}' >/dev/null
curl -s -o "$WORK/other" -w '%{http_code}' "$URL/invoke/spin" -d '{"spin_ms": 300, "x": 1}' >"$WORK/other_st" &
p1=$!
t0=$(date +%s%N)
st=$(http POST /invoke/spin -d '{"loop": 1}' -m 8)
t1=$(date +%s%N)
wait $p1
if [ "$st" = 000 ]; then
    # No answer at all: the invocation deadline did not stop the guest. A failure, not a
    # skip (deadlines are built); the daemon is restarted so the checks below still run.
    fail "looping guest: 504 after its timeout" "no answer within 8 s"
    stop_daemon KILL
    start_daemon "$WORK/state" --drain-timeout 30000
else
    [ "$st" = 504 ] && [ $(( (t1 - t0) / 1000000 )) -lt 5000 ] && pass "looping guest: 504 after its timeout" \
        || fail "looping guest" "$st after $(( (t1 - t0) / 1000000 )) ms: $(body)"
    grep -q '"error"' "$WORK/body" || fail "504 carries a JSON error" "$(body)"
fi
[ "$(cat "$WORK/other_st")" = 200 ] && pass "a request beside the looping one is served" || fail "beside the loop" "$(cat "$WORK/other_st")"
st=$(http POST /invoke/spin -d '{"crash": 1}')
[ "$st" = 502 ] && grep -q 'guest' "$WORK/body" && pass "crashing guest: 502 with the reason" || fail "crash" "$st $(body)"
# A worker process killed mid-invocation: 502 naming the worker, and only that request.
# Idle instances go first (keep-alive 0), so the one worker left is the busy one.
# The kill lands once the daemon counts the request busy, well inside its 5 s spin (and
# the timeout, 10 s from here on).
http PATCH /functions/spin -d '{"keep_alive_ms": 0, "timeout_ms": 10000}' >/dev/null
WAITED=
wait_instances spin 'idle == 0 and busy == 0 and starting == 0'
curl -s -o "$WORK/wk" -w '%{http_code}' "$URL/invoke/spin" -d '{"spin_ms": 5000}' >"$WORK/wk_st" &
p1=$!
wait_instances spin 'busy == 1'
victim=
poll 20 eval 'ws=$(instance_workers "$DAEMON_PID"); [ "$(echo "$ws" | wc -w)" = 1 ] && victim=$ws'
sleep 0.2
[ -n "$victim" ] && kill -9 "$victim"
wait $p1
[ -z "$WAITED" ] && [ -n "$victim" ] && [ "$(cat "$WORK/wk_st")" = 502 ] && grep -q 'worker process' "$WORK/wk" \
    && pass "worker killed mid-invocation: 502 naming the worker" \
    || fail "worker kill" "victim '$victim' $(cat "$WORK/wk_st") $(cat "$WORK/wk") $WAITED"
st=$(http POST /invoke/spin -d '{"after": 1}')
[ "$st" = 200 ] && pass "the function serves after a crash, a timeout and a dead worker" || fail "after crash" "$st $(body)"
http PATCH /functions/spin -d '{"keep_alive_ms": 60000}' >/dev/null
# A worker that dies while its instance is idle costs no request: the next one gets a
# fresh instance.
http POST /invoke/spin -d '{"idle": 1}' >/dev/null
WAITED=
wait_instances spin 'idle >= 1 and busy == 0'
ws=$(instance_workers "$DAEMON_PID")
kill -9 $ws 2>/dev/null
dead() { # every one of $ws exited (a zombie until the daemon reaps it)
    local w
    for w in $ws; do
        [ -r "/proc/$w/stat" ] && [ "$(awk '{print $3}' "/proc/$w/stat" 2>/dev/null)" != Z ] && return 1
    done
    return 0
}
poll 20 dead || WAITED="workers '$ws' still alive after 20 s"
st=$(http POST /invoke/spin -d '{"idle": 2}')
[ -z "$WAITED" ] && [ -n "$ws" ] && [ "$st" = 200 ] && [ "$(header X-Thaw-Start)" != warm ] \
    && pass "an idle instance's dead worker is dropped: the next request starts a new one" \
    || fail "dead idle worker" "workers '$ws': $st $(header X-Thaw-Start) $(body) $WAITED"

# Guest output goes to the logs, never into responses.
st=$(http GET /functions/spin/logs)
[ "$st" = 200 ] && grep -q 'request of' "$WORK/body" && pass "guest output reaches GET /functions/spin/logs" \
    || fail "logs" "$st $(head -c 300 "$WORK/body")"

# Metrics count what we did.
http GET /metrics >/dev/null
grep -q '^thaw_invocations_total{function="spin",start="[a-z-]*"} [1-9]' "$WORK/body" \
    && grep -q '^thaw_invocation_errors_total{function="spin",status="502"} 2' "$WORK/body" \
    && grep -q '^# TYPE thaw_invocation_phase_seconds histogram' "$WORK/body" \
    && pass "/metrics: invocations, errors by status, phase histograms" || fail "/metrics" "$(grep spin "$WORK/body" | head -5)"

# No leak: many invocations and scale-to-zero cycles leave the fd count flat.
# Counted with no instance alive: each goes with its keep-alive of 0.
http PATCH /functions/spin -d '{"keep_alive_ms": 0}' >/dev/null
WAITED=
wait_instances spin 'idle == 0 and busy == 0 and starting == 0'
spares_settled >/dev/null || WAITED="${WAITED:+$WAITED; }before: $(spares_settled)"
fd0=$(fd_count "$DAEMON_PID")
for i in $(seq 15); do curl -s -o /dev/null "$URL/invoke/spin" -d '{"leak": 1}'; sleep 0.1; done
wait_instances spin 'idle == 0 and busy == 0 and starting == 0'
spares_settled >/dev/null || WAITED="${WAITED:+$WAITED; }after: $(spares_settled)"
fd1=$(fd_count "$DAEMON_PID")
[ -z "$WAITED" ] && [ "$fd1" -le "$fd0" ] && pass "15 cold starts and teardowns leak no descriptor ($fd0 -> $fd1)" \
    || fail "fd leak" "$fd0 -> $fd1 $WAITED"
n=$(children_but_spares "$DAEMON_PID")
[ "$n" = 0 ] && pass "no child processes left" || fail "no child processes left" "$n"

# A failed build is a 422 and the previous version keeps serving.
cp -r "$WORK/spin" "$WORK/broken" && echo 'int broken = ;' >>"$WORK/broken/main.c"
st=$(deploy spin "$WORK/broken")
[ "$st" = 422 ] && grep -q 'build failed' "$WORK/body" && pass "broken build: 422 with the compiler's message" || fail "broken build" "$st $(body)"
st=$(http POST /invoke/spin -d '{"still": 1}')
[ "$st" = 200 ] && [ "$(header X-Thaw-Instance | grep -c -- '-v1-')" = 1 ] && pass "the previous version keeps serving" \
    || fail "previous version" "$st $(header X-Thaw-Instance)"
# A redeploy replaces it.
sed -i 's/request of/v2 request of/' "$WORK/spin/main.c"
st=$(deploy spin "$WORK/spin")
http POST /invoke/spin -d '{"v": 2}' >/dev/null
[ "$st" = 200 ] && [ "$(header X-Thaw-Instance | grep -c -- '-v2-')" = 1 ] && pass "redeploy: version 2 serves" || fail "redeploy" "$st $(header X-Thaw-Instance)"
check "version 1's directory is gone" [ ! -d "$WORK/state/functions/spin/v1" ]

# PATCH memory_mib: a new version booted and snapshotted with that much guest memory;
# an invocation in flight on the old version finishes there.
curl -s -o /dev/null -D "$WORK/hold" "$URL/invoke/spin" -d '{"spin_ms": 3000}' &
hold=$!
WAITED=
wait_instances spin 'busy == 1'
st=$(http PATCH /functions/spin -d '{"memory_mib": 64}')
[ -z "$WAITED" ] && [ "$st" = 200 ] && [ "$(json_field version)" = 3 ] && [ "$(json_field config.memory_mib)" = 64 ] \
    && [ "$(json_field snapshot_memory_apparent_bytes)" = $(( (64 << 20) + 4096 )) ] \
    && pass "PATCH memory_mib: version 3 with a 64 MiB snapshot" || fail "PATCH memory_mib" "$st $(body) $WAITED"
wait $hold
grep -qi '^X-Thaw-Instance: spin-v2-' "$WORK/hold" && pass "PATCH memory_mib: the request in flight finished on version 2" \
    || fail "in-flight during PATCH memory_mib" "$(grep -i instance "$WORK/hold")"
st=$(http POST /invoke/spin -d '{"m": 64}')
[ "$st" = 200 ] && [ "$(header X-Thaw-Instance | grep -c -- '-v3-')" = 1 ] && pass "PATCH memory_mib: version 3 serves" \
    || fail "v3 serves" "$st $(header X-Thaw-Instance)"
check "PATCH memory_mib: version 3 keeps source/ and bundle/" \
    test -f "$WORK/state/functions/spin/v3/source/main.c" -a -d "$WORK/state/functions/spin/v3/bundle"
st=$(http PATCH /functions/spin -d '{"memory_mib": 7}')
[ "$st" = 400 ] && pass "PATCH memory_mib out of range: 400" || fail "memory_mib 7" "$st $(body)"
# A size the program does not fit in (16 MiB: its load address is beyond guest memory):
# 422 with the reason, nothing committed, version 3 keeps serving with its config.
st=$(http PATCH /functions/spin -d '{"memory_mib": 16}')
grep -q 'boot failed' "$WORK/body"; bf=$?
st2=$(http POST /invoke/spin -d '{"m": 1}')
inst=$(header X-Thaw-Instance)
http GET /functions/spin >/dev/null
[ "$st" = 422 ] && [ $bf = 0 ] && [ "$st2" = 200 ] && [ "$(echo "$inst" | grep -c -- '-v3-')" = 1 ] \
    && [ "$(json_field config.memory_mib)" = 64 ] && [ ! -d "$WORK/state/functions/spin/v4" ] \
    && pass "PATCH memory_mib that cannot boot: 422, version 3 keeps serving" || fail "bad memory_mib" "$st $bf $st2 $inst"

# Restart: functions, configuration and working sets survive. SIGTERM drains first:
# /healthz says draining (503, for a balancer's health check), new invocations get
# 503, the one in flight finishes.
# The SIGTERM lands once the request is busy, its 8 s spin well inside the drain timeout
# (30 s): the checks below run while it is still in flight.
http PATCH /functions/spin -d '{"keep_alive_ms": 1234, "timeout_ms": 20000}' >/dev/null
curl -s -o /dev/null -w '%{http_code}' "$URL/invoke/spin" -d '{"spin_ms": 8000}' >"$WORK/drain_st" &
p1=$!
WAITED=
wait_instances spin 'busy == 1'
kill -TERM "$DAEMON_PID"
draining() { [ "$(http GET /healthz)" = 503 ]; }
poll 5 draining
st=$(http GET /healthz); hz=$(grep -o '"status":"[a-z]*"' "$WORK/body")
st2=$(http POST /invoke/spin -d '{"late": 1}')
wait $p1
[ -z "$WAITED" ] && [ "$st" = 503 ] && [ "$hz" = '"status":"draining"' ] && [ "$st2" = 503 ] && [ "$(cat "$WORK/drain_st")" = 200 ] \
    && pass "draining: /healthz 503 draining, new invocation 503, in-flight one 200" \
    || fail "draining" "healthz $st $hz, new $st2, in-flight $(cat "$WORK/drain_st"); $WAITED $(tail -3 "$WORK/daemon.log")"
stop_daemon TERM; rc=$?
check "SIGTERM: the daemon drains and exits 0" [ "$rc" = 0 ]
start_daemon "$WORK/state"
st=$(http GET /functions/spin)
[ "$st" = 200 ] && [ "$(json_field config.keep_alive_ms)" = 1234 ] && [ "$(json_field version)" = 3 ] \
    && pass "restart: function, version and config kept" || fail "restart" "$st $(body)"
st=$(http POST /invoke/spin -d '{"r": 1}')
[ "$st" = 200 ] && [ "$(header X-Thaw-Start)" = cold-reap ] && [ "$(header X-Thaw-Prefetch-Us)" -gt 0 ] \
    && pass "restart: cold start prefetches the kept working set" || fail "restart invoke" "$st $(header X-Thaw-Start) $(header X-Thaw-Prefetch-Us)"

cp -r functions/helloworld "$WORK/py"
# A handler slow at import keeps the deploy (its build and boot) busy for seconds, so
# the checks below always land in the middle of it, however fast the machine is.
printf 'import time\ntime.sleep(3)\n' | cat - functions/helloworld/handler.py > "$WORK/py/handler.py"

# The deploy's first boot (hostile code) runs in a jailed worker: seen from /proc
# while it boots, and said by the deploy's answer.
deploy pyjail "$WORK/py" >"$WORK/pyjail_st" &
dpid=$!
jailed=
for _ in $(seq 300); do
    for c in $(pgrep -P "$DAEMON_PID"); do
        [ "$(tr '\0' ' ' 2>/dev/null <"/proc/$c/cmdline")" = "thaw worker --fd 3 " ] || continue
        s=$(awk '/^Seccomp:/ {s=$2} /^Uid:/ {u=$2} /^CapEff:/ {c=$2} END {print s, u, c}' "/proc/$c/status" 2>/dev/null)
        [ "$s" = "2 65534 0000000000000000" ] && jailed=$c && break 2
    done
    sleep 0.05
done
wait $dpid
[ -n "$jailed" ] && pass "deploy boots in a jailed worker (Seccomp 2, uid 65534, no capabilities)" \
    || fail "deploy boot jailed" "no jailed worker seen"
[ "$(cat "$WORK/pyjail_st")" = 201 ] && [ "$(json_field boot_in_worker)" = True ] \
    && pass "deploy from a jailed boot: 201, boot_in_worker" || fail "jailed deploy" "$(cat "$WORK/pyjail_st") $(body)"
st=$(http POST /invoke/pyjail -d '{"name": "J"}')
[ "$st" = 200 ] && grep -q 'Hello, J' "$WORK/body" && pass "the worker-made snapshot serves" || fail "pyjail invoke" "$st $(body)"
http DELETE /functions/pyjail >/dev/null

# kill -9 during a deploy: no broken function, no leftovers, the next deploy works.
# The kill lands once the deploy's boot worker runs (the slow import keeps it there).
deploy py "$WORK/py" >/dev/null &
dpid=$!
workers=
for _ in $(seq 300); do
    workers=$(instance_workers "$DAEMON_PID")
    [ -n "$workers" ] && break
    sleep 0.05
done
workers="$workers $(pgrep -P "$DAEMON_PID" | tr '\n' ' ')" # the spares too: all die with the daemon
stop_daemon KILL
wait $dpid 2>/dev/null
alive_workers() { # those not dead yet (a zombie waits for its new parent to reap it)
    local n=0 w
    for w in $workers; do
        [ -r "/proc/$w/stat" ] && [ "$(awk '{print $3}' "/proc/$w/stat" 2>/dev/null)" != Z ] && n=$((n + 1))
    done
    echo $n
}
for _ in $(seq 400); do [ "$(alive_workers)" = 0 ] && break; sleep 0.05; done # 20 s and more
alive=$(alive_workers)
[ -n "$workers" ] && [ "$alive" = 0 ] && pass "kill -9 of the daemon: its worker processes die with it" \
    || fail "workers after kill -9" "workers '$workers', $alive alive"
start_daemon "$WORK/state"
st=$(http GET /functions/py)
left=$(find "$WORK/state/functions" -maxdepth 2 -name '.deploy-*' | wc -l)
[ "$st" = 404 ] && [ "$left" = 0 ] && [ ! -e "$WORK/state/functions/py" ] \
    && pass "kill -9 mid-deploy: no half function, no staging left" || fail "kill -9 mid-deploy" "$st, $left staging dirs"
st=$(http POST /invoke/spin -d '{"k": 1}')
check "kill -9 mid-deploy: other functions still serve" [ "$st" = 200 ]
st=$(deploy py "$WORK/py")
st2=$(http POST /invoke/py -d '{"name": "K"}')
[ "$st" = 201 ] && [ "$st2" = 200 ] && grep -q 'Hello, K' "$WORK/body" && pass "the interrupted deploy succeeds when retried" \
    || fail "retry deploy" "$st $st2 $(body)"

# DELETE.
st=$(http DELETE /functions/py)
st2=$(http POST /invoke/py -d '{}')
[ "$st" = 200 ] && [ "$st2" = 404 ] && [ ! -e "$WORK/state/functions/py" ] && pass "DELETE removes the function and its files" \
    || fail "delete" "$st $st2"
stop_daemon TERM

# The token.
head -c 24 /dev/urandom | base64 | tr -d '/+=' >"$WORK/token"
start_daemon "$WORK/state" --token-file "$WORK/token"
tok=$(cat "$WORK/token")
st=$(http PATCH /functions/spin -d '{"keep_alive_ms": 5}')
st2=$(http PATCH /functions/spin -d '{"keep_alive_ms": 5}' -H "Authorization: Bearer wrong-token-wrong-token")
st3=$(http PATCH /functions/spin -d '{"keep_alive_ms": 5}' -H "Authorization: Bearer $tok")
[ "$st" = 401 ] && [ "$st2" = 401 ] && [ "$st3" = 200 ] && pass "token: management needs the bearer token" \
    || fail "token management" "$st $st2 $st3"
st=$(deploy spin "$WORK/spin"); st2=$(http DELETE /functions/spin)
[ "$st" = 401 ] && [ "$st2" = 401 ] && pass "token: deploy and delete refused without it" || fail "token deploy/delete" "$st $st2"
st=$(http POST /invoke/spin -d '{"t": 1}')
check "token: invoke stays open by default" [ "$st" = 200 ]
stop_daemon TERM
start_daemon "$WORK/state" --token-file "$WORK/token" --token-for-invoke
st=$(http POST /invoke/spin -d '{"t": 1}'); st2=$(http POST /invoke/spin -d '{"t": 1}' -H "Authorization: Bearer $tok")
[ "$st" = 401 ] && [ "$st2" = 200 ] && pass "token: --token-for-invoke guards invoke" || fail "token invoke" "$st $st2"
# The CLI client with the token.
out=$(THAW_SERVER=$URL "$THAW" invoke spin '{"cli": 1}' --token-file "$WORK/token" 2>&1)
[ "$out" = '{"cli": 1}' ] && pass "thaw invoke with --token-file" || fail "thaw invoke" "$out"
out=$(THAW_SERVER=$URL "$THAW" invoke nosuch '{}' --token-file "$WORK/token" 2>&1); rc=$?
[ $rc -ne 0 ] && [ "$(printf '%s\n' "$out" | wc -l)" = 1 ] && printf '%s' "$out" | grep -q '404: no function named nosuch' \
    && pass "thaw invoke of an unknown function: one line, non-zero exit" || fail "thaw invoke unknown" "$rc $out"
out=$(THAW_SERVER=$URL "$THAW" ls 2>&1)
printf '%s' "$out" | grep -q '^spin ' && pass "thaw ls lists the function" || fail "thaw ls" "$out"
stop_daemon TERM
check "no thaw process left behind" [ -z "$(pgrep -f "$WORK/state")" ]

# A function is one directory: copied into another state directory (another host), it
# is served there, its working set included.
mkdir -p "$WORK/host2/functions"
cp -a "$WORK/state/functions/spin" "$WORK/host2/functions/"
start_daemon "$WORK/host2"
st=$(http GET /functions/spin); ver=$(json_field version)
st2=$(http POST /invoke/spin -d '{"moved": 1}')
[ "$st" = 200 ] && [ "$ver" = 3 ] && [ "$st2" = 200 ] && [ "$(body)" = '{"moved": 1}' ] \
    && [ "$(header X-Thaw-Start)" = cold-reap ] && [ "$(header X-Thaw-Prefetch-Us)" -gt 0 ] \
    && pass "a copied function directory serves on another daemon, prefetching its working set" \
    || fail "copied function" "$st $ver $st2 $(header X-Thaw-Start) $(header X-Thaw-Prefetch-Us) $(body)"
stop_daemon TERM
finish
