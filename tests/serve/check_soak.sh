#!/usr/bin/env bash
# Soak: `hey` drives a warm function and a scale-to-zero function for SOAK_SECONDS
# each (default 8, so make test stays short; CI allows up to 30 per function (60 s in
# all); run it by hand with SOAK_SECONDS=300 for a long soak). No request
# may fail, the daemon must leak no descriptor or process, and its memory must stay
# flat (the second half of the run may not grow it by more than 10% + 8 MiB).
# Prints "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
SOAK_SECONDS=${SOAK_SECONDS:-8}
. tests/serve/lib.sh
need_kvm "soak"
command -v hey >/dev/null || { echo "*** SKIP soak: no hey (scripts/install-deps.sh installs it)"; echo "0 passed, 0 failed"; exit 0; }

make_testfn "$WORK/warmfn"
make_testfn "$WORK/zerofn"
start_daemon "$WORK/state" || { fail "daemon starts"; finish; exit 1; }
check "deploy warm" [ "$(deploy warmfn "$WORK/warmfn" 'max_instances=4')" = 201 ]
check "deploy scale-to-zero" [ "$(deploy zerofn "$WORK/zerofn" 'keep_alive_ms=30&max_instances=2')" = 201 ]
# The baseline once the deploys' boot workers are gone and the spares are back.
WAITED=
wait_instances warmfn 'idle + busy + starting == 0'
wait_instances zerofn 'idle + busy + starting == 0'
no_children() { [ "$(children_but_spares "$DAEMON_PID")" = 0 ]; }
poll 20 no_children || WAITED="${WAITED:+$WAITED; }children besides the spares: $(children_but_spares "$DAEMON_PID")"
fd0=$(fd_count "$DAEMON_PID") # no instance exists yet
[ -z "$WAITED" ] || fail "no instance before the soak" "$WAITED"

soak() { # name, hey args...
    local name=$1; shift
    local half=$((SOAK_SECONDS / 2)) rss_mid rss_end
    hey -z "${half}s" "$@" >"$WORK/hey1" 2>&1
    rss_mid=$(rss_kb "$DAEMON_PID")
    hey -z "$((SOAK_SECONDS - half))s" "$@" >"$WORK/hey2" 2>&1
    rss_end=$(rss_kb "$DAEMON_PID")
    local ok bad
    ok=$(cat "$WORK/hey1" "$WORK/hey2" | sed -n 's/^ *\[200\][[:space:]]*\([0-9]*\) responses/\1/p' | awk '{s+=$1} END {print s+0}')
    bad=$(cat "$WORK/hey1" "$WORK/hey2" | grep -E '^ *\[[0-9]+\]' | grep -vc '\[200\]')
    if [ "$ok" -gt 0 ] && [ "$bad" = 0 ] && ! grep -q 'Error distribution' "$WORK/hey1" "$WORK/hey2"; then
        pass "$name: $ok requests in ${SOAK_SECONDS}s, none failed"
    else
        fail "$name" "$ok ok, $bad other statuses: $(grep -A3 -E 'Status code|Error distribution' "$WORK/hey2" | tr '\n' ' ')"
    fi
    [ "$rss_end" -le $((rss_mid + rss_mid / 10 + 8192)) ] && pass "$name: daemon memory flat (${rss_mid} -> ${rss_end} KiB)" \
        || fail "$name: daemon memory grew" "${rss_mid} -> ${rss_end} KiB"
    grep -E 'Requests/sec|50%|99%' "$WORK/hey2" | sed "s/^/  $name: /"
}
soak "warm function" -c 4 -m POST -d '{"soak": 1}' "$URL/invoke/warmfn"
# Rate-limited so the 30 ms keep-alive expires between requests: mostly cold starts.
soak "scale-to-zero function" -c 1 -q 5 -m POST -d '{"soak": 1}' "$URL/invoke/zerofn"
http GET /metrics >/dev/null
cold=$(sed -n 's/^thaw_invocations_total{function="zerofn",start="cold-reap"} //p' "$WORK/body")
[ "${cold:-0}" -ge $((SOAK_SECONDS * 2)) ] && pass "the scale-to-zero function really cold-started ($cold times)" || fail "cold starts" "${cold:-0}"
http PATCH /functions/warmfn -d '{"keep_alive_ms": 0}' >/dev/null
WAITED=
wait_instances warmfn 'idle + busy + starting == 0'
wait_instances zerofn 'idle + busy + starting == 0'
http GET /healthz >/dev/null
idle=$(json_field instances.idle)
spares_settled >/dev/null || WAITED="${WAITED:+$WAITED; }$(spares_settled)"
fd1=$(fd_count "$DAEMON_PID") # every instance torn down again
[ -z "$WAITED" ] && [ "$idle" = 0 ] && [ "$fd1" -le "$fd0" ] && pass "scaled to zero, no descriptor leaked ($fd0 -> $fd1)" \
    || fail "descriptors" "$fd0 -> $fd1, $idle idle $WAITED"
n=$(children_but_spares "$DAEMON_PID")
[ "$n" = 0 ] && pass "no child process left" || fail "no child process left" "$n"
stop_daemon TERM
finish
