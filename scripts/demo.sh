#!/usr/bin/env bash
# thaw's main job on a fresh machine: install what is missing, build, start the daemon,
# deploy a function (built, booted and snapshotted at its ready point), invoke it cold
# (REAP: record, then prefetch) and warm, show the start kinds and /metrics. Then the
# same cold start under the hood, with the CLI: lazy baseline vs REAP, page cache dropped.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
make -j2 all

fn=${1:-functions/helloworld}
name=$(basename "$fn" | tr -c 'a-z0-9_\n-' '-')
payload=$(cat "$fn"/payloads/$(ls "$fn"/payloads | head -1))
work=$(mktemp -d /tmp/thaw-demo-XXXXXX)
daemon=
trap '[ -n "$daemon" ] && kill "$daemon" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

echo
echo "== 1. Start the daemon: thaw serve on 127.0.0.1, state in $work/state =="
build/thaw serve --listen 127.0.0.1:0 --state-dir "$work/state" --ready-file "$work/url" &
daemon=$!
for _ in $(seq 100); do [ -s "$work/url" ] && break; sleep 0.1; done
export THAW_SERVER=$(cat "$work/url")
curl -s "$THAW_SERVER/healthz"; echo
echo
echo "== 2. Deploy $fn: the daemon builds it, boots it, snapshots it at its ready point =="
build/thaw deploy "$name" "$fn" --keep-alive 500
echo
echo "== 3. Invoke: cold (REAP records the working set), warm, then cold again after the"
echo "      500 ms keep-alive scaled it to zero (REAP prefetches the working set) =="
build/thaw invoke "$name" "$payload" -i
build/thaw invoke "$name" "$payload" -i
sleep 1
build/thaw invoke "$name" "$payload" -i
echo
echo "== 4. What the daemon knows: thaw ls, and /metrics (Prometheus text format) =="
build/thaw ls
curl -s "$THAW_SERVER/metrics" | grep -E "^thaw_invocations_total\{function=\"$name\"|^thaw_pages_(prefetched|lazy)_total|^thaw_instances\{function=\"$name\""
kill "$daemon"; wait "$daemon" || true; daemon=

snap="$work/snap"
echo
echo "== 5. Under the hood with the CLI: snapshot, then cold starts with the page cache dropped =="
build/thaw snapshot "$fn" -o "$snap"
echo "-- lazy baseline: every first touch faults to disk"
build/thaw restore "$snap" --mem lazy --drop-cache --payload "$payload" --timings
echo "-- REAP, first restore: records the working set"
build/thaw restore "$snap" --mem reap --drop-cache --payload "$payload" --timings
echo "-- REAP, later restore: one read of the working set, installed before the vCPU runs"
build/thaw restore "$snap" --mem reap --drop-cache --payload "$payload" --timings
