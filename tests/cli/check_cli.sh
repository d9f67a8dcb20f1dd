#!/usr/bin/env bash
# The thaw command's dispatch: the HTTP commands run in thaw-http (an exec, same pid and
# arguments) so that thaw itself loads none of their libraries. Ends with "N passed, N
# failed". Needs no /dev/kvm.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/suite.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
no_http_libs() { ! needed "$THAW" | grep -E 'libcurl|libmicrohttpd|libarchive'; }
check "thaw links no HTTP or archive library" no_http_libs
has_http_libs() { needed "$(dirname "$THAW")/thaw-http" | grep -q libcurl; }
check "thaw-http links libcurl" has_http_libs

help_lists() { "$THAW" --help | grep -q "^  $1 "; }
for c in serve deploy invoke load restore; do
  check "thaw --help lists $c" help_lists "$c"
done

usage_via_exec() { # command, expected text in its --help
  "$THAW" "$1" --help >"$tmp/out" 2>&1 && grep -q "$2" "$tmp/out"
}
check "thaw deploy --help comes from thaw-http" usage_via_exec deploy "usage: thaw deploy"
check "thaw serve --help comes from thaw-http" usage_via_exec serve "usage: thaw serve"
check "thaw load --help comes from thaw-http" usage_via_exec load "thaw load"

# The client's error for a daemon that is not there, through the exec (exit status kept).
no_daemon() {
  "$THAW" ls --server http://127.0.0.1:9 >"$tmp/out" 2>&1
  local rc=$?
  [ $rc -ne 0 ] && [ $rc -ne 127 ] && grep -qi "127.0.0.1:9" "$tmp/out"
}
check "thaw ls keeps the client's error and exit status" no_daemon

# Same pid: the exec replaces thaw (a daemon's pid is the one its caller started).
same_pid() {
  "$THAW" serve --listen 127.0.0.1:0 --state-dir "$tmp/state" --ready-file "$tmp/ready" >"$tmp/serve.log" 2>&1 &
  local pid=$! i
  for i in $(seq 1 100); do [ -s "$tmp/ready" ] && break; sleep 0.05; done
  local exe ready=no
  [ -s "$tmp/ready" ] && ready=yes # the daemon removes it when it stops
  exe=$(readlink "/proc/$pid/exe")
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  [ $ready = yes ] && [ "$(basename "$exe")" = thaw-http ] || { echo "  ready $ready, exe $exe"; cat "$tmp/serve.log"; return 1; }
}
check "thaw serve runs as thaw-http in the pid it was started as" same_pid

# A thaw without thaw-http beside it says what is missing, and still restores locally.
mkdir "$tmp/alone"
cp "$THAW" "$tmp/alone/thaw"
missing() {
  "$tmp/alone/thaw" invoke f >"$tmp/out" 2>&1
  [ $? -eq 1 ] && grep -q "thaw-http" "$tmp/out" && grep -q "next to thaw" "$tmp/out"
}
check "without thaw-http, its commands fail with a clear error" missing
local_works() { "$tmp/alone/thaw" restore --help 2>&1 | grep -q "usage: thaw restore"; }
check "without thaw-http, the local commands still run" local_works

finish
