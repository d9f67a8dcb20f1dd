#!/usr/bin/env bash
# thaw load end to end against a real `thaw serve` on 127.0.0.1 (tests/load/ checks the
# same CLI against a stand-in): an open loop, a closed loop and a short trace replay.
# Each CSV has one row per request sent, and the daemon's own count of invocations
# moved by exactly as many; start kinds come from the daemon (cold first, then warm).
# Prints "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/serve/lib.sh
need_kvm "thaw load against thaw serve"

rows() { echo $(( $(wc -l <"$1") - 1 )); }
# The daemon's count of answered invocations of a function (every start kind).
served() {
    curl -s "$URL/metrics" | awk -v f="function=\"$1\"" 'index($1, "thaw_invocations_total{") == 1 && index($1, f) { s += $2 } END { print s + 0 }'
}
column() { # csv name: the values of one column
    awk -F, -v n="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == n) c = i; next } { print $c }' "$1"
}

make_testfn "$WORK/spin"
start_daemon "$WORK/state" || { fail "daemon starts"; finish; exit 1; }
st=$(deploy spin "$WORK/spin")
check "deploy spin" [ "$st" = 201 ]

# Open loop: 20 requests/s for 2 s, equidistant.
before=$(served spin)
"$THAW" load --server "$URL" --function spin --rps 20 --duration 2 --arrival equidistant \
    --payload '{"n": 1}' --csv "$WORK/open.csv" --quiet >"$WORK/open.txt" 2>&1 \
    && pass "thaw load open loop exits 0" || fail "thaw load open loop" "$(tail -3 "$WORK/open.txt")"
sent=$(sed -n 's/^requests \([0-9]*\) in.*/\1/p' "$WORK/open.txt")
after=$(served spin)
[ -n "$sent" ] && [ "$sent" -ge 38 ] && [ "$(rows "$WORK/open.csv")" = "$sent" ] \
    && pass "open loop: one CSV row per request sent ($sent)" || fail "open loop rows" "sent $sent rows $(rows "$WORK/open.csv")"
[ $((after - before)) = "$sent" ] && pass "the daemon answered exactly the requests sent" \
    || fail "daemon count" "$before -> $after for $sent sent"
kinds=$(column "$WORK/open.csv" startKind | sort | uniq -c | tr -s ' ' | tr '\n' ';')
first=$(column "$WORK/open.csv" startKind | head -1)
ncold=$(column "$WORK/open.csv" startKind | grep -c '^cold-reap$')
nwarm=$(column "$WORK/open.csv" startKind | grep -c '^warm$')
[ "$ncold" -ge 1 ] && [ "$nwarm" -ge 1 ] && [ $((ncold + nwarm)) = "$sent" ] && [ "$first" = cold-reap ] \
    && pass "start kinds from the daemon: cold-reap first, then warm ($kinds)" || fail "start kinds" "$kinds first $first"
errs=$(column "$WORK/open.csv" error | grep -c .)
statuses=$(column "$WORK/open.csv" httpStatus | sort -u | tr '\n' ' ')
[ "$errs" = 0 ] && [ "$statuses" = "200 " ] && pass "no errors, every status 200" || fail "errors" "$errs errors, statuses $statuses"
bad=$(column "$WORK/open.csv" instance | grep -cv '^spin-v1-[0-9]*$')
[ "$bad" = 0 ] && pass "every row names the instance that served it" || fail "instance column" "$bad rows"
# A cold row has a restore time from X-Thaw-Restore-Us; warm rows have none.
coldrestore=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) { if ($i == "startKind") k = i; if ($i == "restoreTime") r = i } next }
    $k == "cold-reap" && $r > 0 { n++ } END { print n + 0 }' "$WORK/open.csv")
[ "$coldrestore" = "$ncold" ] && pass "cold rows carry the daemon's restore time" || fail "restore times" "$coldrestore of $ncold"
grep -q "^  cold-reap " "$WORK/open.txt" && grep -q "^  warm " "$WORK/open.txt" \
    && pass "summary has latency per start kind" || fail "summary" "$(cat "$WORK/open.txt")"

# Closed loop: 2 in flight, exactly 20 requests.
before=$(served spin)
"$THAW" load --server "$URL" --function spin --concurrency 2 --requests 20 --payload '{"n": 2}' \
    --csv "$WORK/closed.csv" --quiet >"$WORK/closed.txt" 2>&1
after=$(served spin)
[ "$(rows "$WORK/closed.csv")" = 20 ] && [ $((after - before)) = 20 ] && grep -q "20 ok, 0 errors" "$WORK/closed.txt" \
    && pass "closed loop: 20 rows, 20 answered by the daemon" || fail "closed loop" "$(rows "$WORK/closed.csv") rows, daemon $before -> $after"

# A short replay of a synthetic trace, every trace function mapped onto spin.
"$THAW" trace-gen -o "$WORK/trace" --functions 8 --minutes 2 --seed 3 --rate-scale 3 >/dev/null
printf '{"n": 3}' >"$WORK/p.json"   # the test function stops on an empty request
printf '*,spin,p.json\n' >"$WORK/map.csv"
want=$(awk -F, 'NR > 1 { for (i = 5; i <= NF; i++) s += $i } END { print s + 0 }' \
    "$WORK/trace/invocations_per_function_md.anon.d01.csv")
before=$(served spin)
"$THAW" load --server "$URL" --trace "$WORK/trace" --mapping "$WORK/map.csv" --minute-seconds 1 \
    --csv "$WORK/replay.csv" --quiet >"$WORK/replay.txt" 2>&1
after=$(served spin)
[ "$want" -gt 0 ] && [ "$(rows "$WORK/replay.csv")" = "$want" ] && [ $((after - before)) = "$want" ] \
    && [ "$(column "$WORK/replay.csv" error | grep -c .)" = 0 ] \
    && pass "trace replay: all $want invocations sent, recorded and answered" \
    || fail "trace replay" "want $want rows $(rows "$WORK/replay.csv") daemon $before -> $after"

if command -v gnuplot >/dev/null; then
    "$THAW" plot "$WORK/open.csv" "$WORK/replay.csv" -o "$WORK/fig" >/dev/null 2>&1
    [ -s "$WORK/fig/latency-cdf.png" ] && [ -s "$WORK/fig/cold-share.png" ] \
        && pass "thaw plot draws the run's figures" || fail "thaw plot" "$(ls "$WORK/fig" 2>&1)"
else
    echo "*** SKIP thaw plot: no gnuplot"
fi

stop_daemon || fail "daemon exits 0 on SIGTERM"
finish
