#!/usr/bin/env bash
# thaw's main job on a fresh machine: install what is missing, build, and show a
# function answering from inside a microVM (and, once snapshots exist, a cold start).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
make -j2 all
echo
echo "== Booting functions/hello in a KVM microVM and invoking it twice =="
build/thaw run functions/hello --payload '{"name": "thaw"}' --payload '{"name": "microVM"}' --timings
echo
echo "== The same with a static CPython 3.11 function (functions/helloworld) =="
build/thaw run functions/helloworld --payload '{"name": "thaw"}' --timings
