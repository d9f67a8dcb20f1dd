#!/usr/bin/env bash
# Debian's Prometheus scrapes the daemon's /metrics, and its query API returns the
# invocation count this test made. Prints "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/serve/lib.sh
need_kvm "Prometheus scrape"
if ! command -v prometheus >/dev/null; then
    echo "*** SKIP Prometheus scrape: no prometheus (scripts/install-deps.sh installs it)"
    echo "0 passed, 0 failed"; exit 0
fi
PROM_PID=
trap '[ -n "$PROM_PID" ] && kill -9 $PROM_PID 2>/dev/null; cleanup' EXIT

make_testfn "$WORK/counted"
start_daemon "$WORK/state" || { fail "daemon starts"; finish; exit 1; }
check "deploy" [ "$(deploy counted "$WORK/counted")" = 201 ]
N=7
ok=0
for i in $(seq $N); do [ "$(http POST /invoke/counted -d "{\"i\": $i}")" = 200 ] && ok=$((ok + 1)); done
check "$N invocations answered" [ "$ok" = $N ]

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
target=${URL#http://}
cat >"$WORK/prometheus.yml" <<Y
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: thaw
    static_configs:
      - targets: ["$target"]
Y
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/tsdb" \
    --web.listen-address="127.0.0.1:$port" >"$WORK/prometheus.log" 2>&1 &
PROM_PID=$!
q='sum(thaw_invocations_total{function="counted"})'
got=
for _ in $(seq 60); do
    got=$(curl -s "http://127.0.0.1:$port/api/v1/query" --data-urlencode "query=$q" |
        python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; print(r[0]["value"][1] if r else "")' 2>/dev/null)
    [ -n "$got" ] && break
    sleep 0.5
done
[ "$got" = "$N" ] && pass "Prometheus query returns $N invocations" || fail "Prometheus query" "got '$got'"
up=$(curl -s "http://127.0.0.1:$port/api/v1/query" --data-urlencode 'query=up{job="thaw"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["result"][0]["value"][1])' 2>/dev/null)
check "the scrape target is up (the exposition format parsed)" [ "$up" = 1 ]
h=$(curl -s "http://127.0.0.1:$port/api/v1/query" \
    --data-urlencode 'query=sum(thaw_invocation_phase_seconds_count{function="counted",phase="total"})' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["result"][0]["value"][1])' 2>/dev/null)
check "the latency histogram counts them too" [ "$h" = "$N" ]
kill $PROM_PID; wait $PROM_PID 2>/dev/null; PROM_PID=
stop_daemon TERM
finish
