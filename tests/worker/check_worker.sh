#!/usr/bin/env bash
# `thaw run` and `thaw restore` with --worker answer exactly as in process, for a C and a
# Python function, in every memory mode (reap twice: record, then prefetch). Ends with
# "N passed, N failed". Needs /dev/kvm and root (the worker's namespaces).
set -u
cd "$(dirname "$0")/../.."
. tests/lib/suite.sh
if [ ! -w /dev/kvm ] || [ "$(id -u)" -ne 0 ]; then
  echo "*** SKIP: --worker checks need /dev/kvm and root ***"
  echo "0 passed, 0 failed"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

same() { # label, expected file, actual file
  if cmp -s "$2" "$3"; then return 0; fi
  echo "  $1 differs:"; diff "$2" "$3" | head -5; return 1
}

for fn in hello helloworld; do
  payloads=(--payload '{"name": "worker"}' --payload '{"name": "again"}')
  "$THAW" run "functions/$fn" "${payloads[@]}" >"$tmp/run.want" 2>/dev/null
  "$THAW" run "functions/$fn" "${payloads[@]}" --worker >"$tmp/run.got" 2>"$tmp/run.err"
  check "$fn: run --worker answers as in process" same "run $fn" "$tmp/run.want" "$tmp/run.got"
  "$THAW" snapshot "functions/$fn" -o "$tmp/$fn-local" >/dev/null 2>&1
  cp -r "$tmp/$fn-local" "$tmp/$fn-worker"
  for mode in copy lazy uffd reap reap share; do
    "$THAW" restore "$tmp/$fn-local" --mem "$mode" "${payloads[@]}" >"$tmp/want" 2>/dev/null
    "$THAW" restore "$tmp/$fn-worker" --mem "$mode" "${payloads[@]}" --worker --json >"$tmp/got.json" 2>"$tmp/err"
    grep -v '^{"id":' "$tmp/got.json" >"$tmp/got"
    check "$fn: restore --mem $mode --worker answers as in process" same "restore $fn $mode" "$tmp/want" "$tmp/got"
    check "$fn: restore --mem $mode --worker reports in_worker" grep -q '"in_worker":true' "$tmp/got.json"
    [ "$mode" = reap ] && cp "$tmp/got.json" "$tmp/reap.json"
  done
  # The caller-side pager recorded the working set in the worker's snapshot directory.
  check "$fn: --worker REAP wrote ws.pages" test -s "$tmp/$fn-worker/ws.pages"
  check "$fn: --worker REAP prefetched on the second restore" grep -q '"start":"reap-prefetch"' "$tmp/reap.json"
done

# A merging restore in a worker on a new input: the caller's pager thread writes the merged
# set while the response goes back, and its answer is still taken (the stats say so).
uni=$(cat functions/helloworld/payloads/unicode.json)
"$THAW" restore "$tmp/helloworld-local" --mem copy --payload "$uni" >"$tmp/want" 2>/dev/null
"$THAW" restore "$tmp/helloworld-worker" --mem reap --payload "$uni" --worker --json >"$tmp/got.json" 2>"$tmp/err"
grep -v '^{"id":' "$tmp/got.json" >"$tmp/got"
check "helloworld: a merging restore in a worker answers as copy" same "merge worker" "$tmp/want" "$tmp/got"
check "helloworld: a merging restore in a worker reports its merge" grep -q '"merged":true,"merge_added":[1-9]' "$tmp/got.json"

# thaw snapshot --worker: booted and saved inside the jail; restores in every mode, in
# process and in a worker, answer as the in-process snapshot does.
for fn in hello helloworld; do
  payloads=(--payload '{"name": "worker"}' --payload '{"name": "again"}')
  "$THAW" snapshot "functions/$fn" -o "$tmp/$fn-local2" >/dev/null 2>&1
  out=$("$THAW" snapshot "functions/$fn" -o "$tmp/$fn-wsnap" --worker --json 2>"$tmp/err")
  check "$fn: snapshot --worker succeeds in a worker" bash -c "printf '%s' \"\$1\" | grep -q '\"in_worker\":true'" _ "$out"
  for mode in copy lazy uffd reap reap; do
    "$THAW" restore "$tmp/$fn-local2" --mem "$mode" "${payloads[@]}" >"$tmp/want" 2>/dev/null
    "$THAW" restore "$tmp/$fn-wsnap" --mem "$mode" "${payloads[@]}" >"$tmp/got" 2>"$tmp/err"
    check "$fn: snapshot --worker, restore --mem $mode answers as usual" same "wsnap $fn $mode" "$tmp/want" "$tmp/got"
    "$THAW" restore "$tmp/$fn-wsnap" --mem "$mode" "${payloads[@]}" --worker >"$tmp/got" 2>"$tmp/err"
    check "$fn: snapshot --worker, restore --mem $mode --worker answers as usual" same "wsnap $fn $mode worker" "$tmp/want" "$tmp/got"
  done
done

# run --worker ends with the program's exit, and its stats say so.
out=$("$THAW" run functions/hello --payload '{"name": "x"}' --worker --json 2>/dev/null | tail -1)
check "run --worker --json: in a worker, program exited 0" bash -c "printf '%s' \"\$1\" | grep -q '\"in_worker\":true' && printf '%s' \"\$1\" | grep -q '\"exit_status\":0'" _ "$out"

# A worker's failure is one clear line and a non-zero exit.
out=$("$THAW" run functions/faulty --payload '{"fault": "null"}' --worker 2>&1); rc=$?
check "faulty: guest fault in a worker is reported" bash -c "[ $rc -ne 0 ] && printf '%s' \"\$1\" | grep -q 'NULL page'" _ "$out"
# The invocation deadline works inside the jail (a timer signal kicks the vCPU).
out=$("$THAW" run functions/faulty --payload '{"fault": "loop"}' --timeout 1 --worker 2>&1); rc=$?
check "faulty loop in a worker: invocation timed out" bash -c "[ $rc -ne 0 ] && printf '%s' \"\$1\" | grep -q 'timed out after 1.0 s'" _ "$out"
# SIGTERM to the caller mid-invocation: no worker is left behind.
"$THAW" run functions/faulty --payload '{"fault": "loop"}' --worker >/dev/null 2>&1 & pid=$!
# Only this caller's own workers count: other runs on a shared machine have theirs.
workers=""
for _ in $(seq 50); do workers=$(pgrep -P $pid -f "^thaw worker --f[d] 3"); [ -n "$workers" ] && break; sleep 0.1; done
sleep 0.5; kill -TERM $pid; wait $pid; rc=$?
alive() { for w in $workers; do kill -0 "$w" 2>/dev/null && return 0; done; return 1; }
for _ in $(seq 50); do alive || break; sleep 0.1; done
check "SIGTERM: the caller exits 143" test $rc -eq 143
check "SIGTERM: the caller had a worker" test -n "$workers"
check "SIGTERM: no worker process left" bash -c "! { $(declare -f alive); workers='$workers'; alive; }"
out=$("$THAW" worker 2>&1); rc=$?
check "thaw worker by hand is refused" bash -c "[ $rc -eq 2 ] && printf '%s' \"\$1\" | grep -q 'not by hand'" _ "$out"
finish
