#!/usr/bin/env bash
# thaw's main job on a fresh machine: install what is missing, build, boot a function
# in a microVM, snapshot it at its ready point, and cold-start it from the snapshot:
# lazily (the baseline) and with REAP (record once, then prefetch).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
make -j2 all

fn=${1:-functions/helloworld}
payload=$(cat "$fn"/payloads/$(ls "$fn"/payloads | head -1))
snap=$(mktemp -d /tmp/thaw-demo-XXXXXX)
trap 'rm -rf "$snap"' EXIT

echo
echo "== 1. Boot $fn in a KVM microVM and invoke it =="
build/thaw run "$fn" --payload "$payload" --timings
echo
echo "== 2. Snapshot it at its ready point (first read of /dev/invoke) =="
build/thaw snapshot "$fn" -o "$snap"
echo
echo "== 3. Cold start, lazy baseline: page cache dropped, every first touch faults to disk =="
build/thaw restore "$snap" --mem lazy --drop-cache --payload "$payload" --timings
echo
echo "== 4. REAP, first restore: records the working set =="
build/thaw restore "$snap" --mem reap --drop-cache --payload "$payload" --timings
echo
echo "== 5. REAP, later restore: one O_DIRECT read of the working set, installed before the vCPU runs =="
build/thaw restore "$snap" --mem reap --drop-cache --payload "$payload" --timings
