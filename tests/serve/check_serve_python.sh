#!/usr/bin/env bash
# thaw serve with a Python function on Debian's python3.11 (a root-filesystem image):
# the deploy builds it (the shared image from the build cache), boots and snapshots it
# in a jailed worker;
# invocations restore it in jailed workers (lazy, then REAP recording and prefetching
# file pages too) and answer exactly as the host's python3.11 does.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/serve/lib.sh
need_kvm check_serve_python

fn=functions/stdlib
start_daemon "$WORK/state" || { fail "daemon starts"; finish; exit 1; }
st=$(deploy stdlib "$fn" "restore=lazy&keep_alive_ms=0")
check "deploy of a Debian-python function (status $st)" [ "$st" = 201 ]
check "the deploy booted and snapshotted it in a jailed worker (its written image pages read by the daemon)" \
    [ "$(json_field boot_in_worker)" = True ]
starts=""
for mode in lazy reap reap; do
    st=$(http PATCH /functions/stdlib -d "{\"restore\": \"$mode\", \"keep_alive_ms\": 0}")
    [ "$st" = 200 ] || fail "PATCH restore=$mode" "status $st"
    sleep 1 # the idle instance (keep-alive 0) goes: the next invocation starts cold
    for p in default five; do
        st=$(http POST /invoke/stdlib --data-binary @"$fn/payloads/$p.json")
        starts="$starts $(header X-Thaw-Start)"
        if [ "$st" = 200 ] && [ "$(body)" = "$(cat "$fn/expected/$p.json")" ]; then
            pass "invoke $p ($mode) answers as the host's python3.11"
        else
            fail "invoke $p ($mode)" "status $st: $(body | head -c 300)"
        fi
        if [ "$mode" = reap ] && [ -z "${first_note:-}" ]; then # the first REAP cold start records
            for _ in $(seq 50); do # its stats (and note) are taken after the answer went out
                http GET /functions/stdlib >/dev/null
                first_note=$(json_field reap_note)
                [ -n "$first_note" ] && break
                sleep 0.1
            done
            check "GET /functions says why the first REAP cold start recorded ($first_note)" \
                sh -c "echo '$first_note' | grep -q 'no working set yet: recording one'"
        fi
    done
done
echo "start kinds:$starts"
check "cold starts restored lazily and with REAP" sh -c "echo '$starts' | grep -q cold-lazy && [ \$(echo '$starts' | grep -o cold-reap | wc -l) -ge 2 ]"
# A call right after a recording cold start's answer waits for that instance, whose stats
# (and working set) are still being taken, instead of cold-starting another.
st=$(deploy stdlib-b "$fn" "restore=reap")
[ "$st" = 201 ] || fail "deploy of a second copy" "status $st"
next=""
for i in 1 2; do
    http POST /invoke/stdlib-b --data-binary @"$fn/payloads/default.json" >/dev/null
    next="$next $(header X-Thaw-Start)/$(header X-Thaw-Instance)"
done
check "the call right after the recording cold start is warm, on the same instance ($next)" \
    sh -c "echo '$next' | grep -Eq '^ cold-reap/stdlib-b-v1-1 warm/stdlib-b-v1-1$'"
if find "$WORK/state" -name rootfs.ws -size +0 | grep -q .; then
    pass "REAP recorded the function's file pages in the daemon's snapshot"
else # the daemon logs why a restore did not record
    fail "REAP recorded the function's file pages in the daemon's snapshot" "$(grep 'REAP:' "$WORK/daemon.log" | head -5)"
fi
check "the daemon logged no failed REAP step" sh -c "! grep -E 'REAP: .*(cannot|writing|recording the file)' '$WORK/daemon.log'"
st=$(http POST /invoke/stdlib -d '{"op": "exit"}')
check "SystemExit is an error response, not a dead instance (status $st)" grep -q SystemExit "$WORK/body"
st=$(http POST /invoke/stdlib --data-binary @"$fn/payloads/default.json")
check "the instance keeps serving (status $st)" [ "$(body)" = "$(cat "$fn/expected/default.json")" ]
stop_daemon
finish
