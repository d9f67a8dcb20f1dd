#!/usr/bin/env bash
# thaw serve with the host's memory manager (--pager-socket: a `thaw pager --serve`):
# REAP cold starts record and then prefetch through it, from jailed workers, answering
# right, concurrently too; the manager's descriptors stay flat over many cold starts;
# with the manager gone a cold start fails with 502 (not a hang) and the daemon serves
# again once a manager is back. Prints "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/serve/lib.sh
need_kvm "thaw serve --pager-socket"

SOCK="$WORK/mm.sock"
MGR_PID=
start_manager() {
    "$THAW" pager --serve --socket "$SOCK" --snapshots "$WORK/state/functions" >>"$WORK/manager.log" 2>&1 &
    MGR_PID=$!
    for _ in $(seq 400); do [ -S "$SOCK" ] && break; sleep 0.05; done # 20 s and more
}
trap '{ kill -9 $MGR_PID; wait $MGR_PID; } 2>/dev/null; cleanup' EXIT
mkdir -p "$WORK/state/functions"
start_manager
check "the memory manager listens" [ -S "$SOCK" ]
make_testfn "$WORK/echo"
start_daemon "$WORK/state" --pager-socket "$SOCK" || { fail "daemon starts"; finish; exit 1; }
check "deploy" [ "$(deploy echo "$WORK/echo" 'keep_alive_ms=0&max_instances=4')" = 201 ]

st=$(http POST /invoke/echo -d '{"n": 1}')
[ "$st" = 200 ] && [ "$(body)" = '{"n": 1}' ] && [ "$(header X-Thaw-Start)" = cold-reap ] \
    && pass "first cold start through the manager answers (records)" || fail "first start" "$st $(header X-Thaw-Start) $(body)"
poll 20 test -s "$WORK/state/functions/echo/v1/snapshot/ws.pages"
check "the manager wrote the working set" test -s "$WORK/state/functions/echo/v1/snapshot/ws.pages"
WAITED= # the instance goes (keep-alive 0): the next start is cold
wait_instances echo 'idle + busy + starting == 0'
st=$(http POST /invoke/echo -d '{"n": 2}')
[ -z "$WAITED" ] && [ "$st" = 200 ] && [ "$(body)" = '{"n": 2}' ] && [ "$(header X-Thaw-Prefetch-Us)" -gt 0 ] \
    && pass "the next cold start prefetches through the manager" || fail "prefetch" "$st $(header X-Thaw-Prefetch-Us) $(body) $WAITED"
grep -q 'thaw_pages_prefetched_total' <(curl -s "$URL/metrics") && pass "metrics still count pages" || fail "metrics" ""

# Four at once, each its own connection to the manager.
pids=
for i in 1 2 3 4; do curl -s -o "$WORK/c$i" "$URL/invoke/echo" -d "{\"c\": $i}" & pids="$pids $!"; done
wait $pids
ok=0
for i in 1 2 3 4; do [ "$(cat "$WORK/c$i")" = "{\"c\": $i}" ] && ok=$((ok + 1)); done
check "4 concurrent cold starts through the manager answer right" [ "$ok" = 4 ]

# Counted with no instance alive; the manager closes a gone instance's connection on
# its own time, so the second count waits (20 s at most) for it to come back down.
WAITED=
wait_instances echo 'idle + busy + starting == 0'
sleep 0.5
fd0=$(fd_count "$MGR_PID")
for i in $(seq 30); do curl -s -o /dev/null "$URL/invoke/echo" -d '{"leak": 1}'; done
wait_instances echo 'idle + busy + starting == 0'
fds_back() { [ "$(fd_count "$MGR_PID")" -le "$fd0" ]; }
poll 20 fds_back
fd1=$(fd_count "$MGR_PID")
[ -z "$WAITED" ] && [ "$fd1" -le "$fd0" ] && pass "30 more cold starts: the manager's descriptors flat ($fd0 -> $fd1)" \
    || fail "manager fds" "$fd0 -> $fd1 $WAITED"
# While an instance lives, its memory is the manager's: one more connection there.
http PATCH /functions/echo -d '{"keep_alive_ms": 60000}' >/dev/null
s0=$(ls -l "/proc/$MGR_PID/fd" | grep -c socket)
http POST /invoke/echo -d '{"live": 1}' >/dev/null
s1=$(ls -l "/proc/$MGR_PID/fd" | grep -c socket)
[ "$s1" -gt "$s0" ] && pass "a live instance is served by the manager ($s0 -> $s1 sockets there)" || fail "manager serves" "$s0 -> $s1"
http PATCH /functions/echo -d '{"keep_alive_ms": 0}' >/dev/null
WAITED= # the live instance goes first: the request below must start cold
wait_instances echo 'idle + busy + starting == 0'

{ kill -9 "$MGR_PID"; wait "$MGR_PID"; } 2>/dev/null
rm -f "$SOCK"
st=$(curl -s -o "$WORK/body" -w '%{http_code}' --max-time 20 "$URL/invoke/echo" -d '{"gone": 1}')
[ -z "$WAITED" ] && [ "$st" = 502 ] && pass "manager gone: a cold start fails with 502" || fail "manager gone" "$st $(body) $WAITED"
start_manager
st=$(http POST /invoke/echo -d '{"back": 1}')
[ "$st" = 200 ] && [ "$(body)" = '{"back": 1}' ] && pass "a manager back: cold starts serve again" || fail "manager back" "$st $(body)"
stop_daemon
finish
