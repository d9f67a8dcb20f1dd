#!/usr/bin/env bash
# CLI checks of thaw load, trace-gen and plot against tests/load/mock_serve.py (a
# stand-in for thaw serve's invoke endpoint on a random loopback port). Prints
# "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
. tests/lib/suite.sh
work=$(mktemp -d)
check() { # name command...; its output is shown only when it fails
  local name=$1; shift
  if "$@" >"$work/out" 2>&1; then pass "$name"; else fail "$name"; tail -20 "$work/out"; fi
}
python3 tests/load/mock_serve.py hello memtouch >"$work/port" &
mock=$!
trap 'kill $mock 2>/dev/null; wait $mock 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
url="http://127.0.0.1:$(cat "$work/port")"
rows() { echo $(( $(wc -l <"$1") - 1 )); }

open_loop() {
  "$THAW" load --server "$url" --function hello --rps 40 --duration 1 --arrival equidistant \
    --payload '{"name": "x"}' --csv "$work/open.csv" --quiet >"$work/open.txt" || return 1
  [ "$(rows "$work/open.csv")" -eq 39 ] && grep -q "requests 39 in" "$work/open.txt" &&
    grep -q "2 cold" "$work/open.txt" && grep -q "^  cold-reap " "$work/open.txt" &&
    head -1 "$work/open.csv" | grep -q '^phase,instance,invocationID,function,startTime'
}
check "open loop: one CSV row per request, summary by start kind" open_loop

closed_loop() {
  printf '{"name": "file"}' >"$work/p.json"
  "$THAW" load --server "$url" --function hello --concurrency 3 --requests 30 --payload-file "$work/p.json" \
    --csv "$work/closed.csv" --quiet >"$work/closed.txt" || return 1
  [ "$(rows "$work/closed.csv")" -eq 30 ] && grep -q "30 ok, 0 errors" "$work/closed.txt"
}
check "closed loop: --requests N sends exactly N" closed_loop

errors() {
  "$THAW" load --server "$url" --function nope --rps 20 --duration 0.5 --arrival equidistant --csv "$work/err.csv" --quiet \
    >"$work/err.txt" || return 1
  grep -q "errors: 9 http 404" "$work/err.txt" && grep -q "http 404: no function nope" "$work/err.csv"
}
check "errors are recorded by kind with the daemon's reason" errors

replay() {
  "$THAW" trace-gen -o "$work/trace" --functions 30 --minutes 3 --seed 4 --rate-scale 2 >/dev/null || return 1
  printf '*,hello\n*,memtouch\n' >"$work/map.csv"
  "$THAW" load --server "$url" --trace "$work/trace" --mapping "$work/map.csv" --minute-seconds 2 \
    --csv "$work/replay.csv" --quiet >"$work/replay.txt" 2>"$work/replay.err" || return 1
  # Every invocation of the trace's 3 minutes is sent once.
  want=$(awk -F, 'NR > 1 { for (i = 5; i <= NF; i++) s += $i } END { print s }' \
    "$work/trace/invocations_per_function_md.anon.d01.csv")
  [ "$want" -gt 0 ] && [ "$(rows "$work/replay.csv")" -eq "$want" ] &&
    grep -q "replaying $want invocations of 30 functions" "$work/replay.err"
}
check "trace replay sends every invocation of the window" replay

bad_trace() {
  mkdir -p "$work/bad"
  printf 'HashOwner,HashApp,HashFunction,Trigger,1,2\no,a,f,http,1\n' \
    >"$work/bad/invocations_per_function_md.anon.d01.csv"
  printf '*,hello\n' >"$work/map1.csv"
  ! "$THAW" load --server "$url" --trace "$work/bad" --mapping "$work/map1.csv" --quiet 2>"$work/bad.err" &&
    grep -q "invocations_per_function_md.anon.d01.csv:2: 5 fields, expected 6" "$work/bad.err"
}
check "a malformed trace row is a clear error naming the line" bad_trace

plot() {
  "$THAW" plot "$work/open.csv" "$work/closed.csv" -o "$work/fig" >/dev/null || return 1
  "$THAW" plot "$work/replay.csv" -o "$work/svg" --format svg >/dev/null || return 1
  for f in latency-cdf latency-time cold-share instances; do
    [ -s "$work/fig/$f.png" ] && head -c 8 "$work/fig/$f.png" | grep -q PNG || return 1
    grep -q "<svg" "$work/svg/$f.svg" || return 1
  done
}
check "thaw plot draws PNG and SVG figures" plot

keepalive_sim() {
  "$THAW" keepalive-sim --trace "$work/trace" --cold-ms 30 --warm-ms 0.3 --policy fixed:600 --policy hybrid \
    --policy zero >"$work/ka.txt" || return 1
  grep -q "^| fixed:600 |" "$work/ka.txt" && grep -q "^| hybrid |" "$work/ka.txt" &&
    grep -q "^| zero | [0-9]* | 100.0% | 30.0 | 30.0 |" "$work/ka.txt" &&
    ! "$THAW" keepalive-sim --trace "$work/trace" --cold-ms 1 --warm-ms 1 --policy sometimes 2>/dev/null
}
check "keepalive-sim compares policies over a trace" keepalive_sim

finish
