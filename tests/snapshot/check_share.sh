#!/usr/bin/env bash
# Shared working sets (--mem share): eight memtouch instances restored at the same time
# each overwrite their own part of the arena and check every other part still holds the
# snapshot's bytes (after all of them wrote); their total PSS is at most 40% of eight
# REAP instances' (separate copies). Also: share answers as copy does, and without a
# working set it runs as lazy and says so. Ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
. tests/lib/suite.sh
PSS="$BUILD/bench/share_pss"
if [ ! -w /dev/kvm ]; then
  echo "*** SKIP: shared working sets need /dev/kvm ***"
  echo "0 passed, 0 failed"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$THAW" snapshot functions/memtouch -o "$tmp/mt" >/dev/null 2>&1
check "memtouch snapshot" test -s "$tmp/mt/memory"
pl='{"parts": 8, "part": 3, "mib": 16, "write": 1}'
"$THAW" restore "$tmp/mt" --mem share --payload "$pl" --json >"$tmp/nows.json" 2>&1
check "share without a working set runs as lazy and says so" grep -q '"note":"no working set mapped' "$tmp/nows.json"
"$THAW" restore "$tmp/mt" --mem reap --payload "$pl" >/dev/null 2>&1
check "a reap restore recorded the working set" test -s "$tmp/mt/ws.pages"
"$THAW" restore "$tmp/mt" --mem copy --payload "$pl" --payload '{"mib": 4, "seed": 9}' >"$tmp/copy.out" 2>/dev/null
"$THAW" restore "$tmp/mt" --mem share --payload "$pl" --payload '{"mib": 4, "seed": 9}' --json >"$tmp/share.out" 2>/dev/null
grep -v '^{"id":' "$tmp/share.out" >"$tmp/share.ans"
check "share answers as copy does" cmp -s "$tmp/copy.out" "$tmp/share.ans"
check "share mapped the working set in" python3 -c '
import json, sys
j = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert j["start"] == "share" and j["reap"]["ws_pages"] > 4000 and j["reap"]["note"] == "", j["reap"]
' "$tmp/share.out"

"$PSS" "$tmp/mt" share 8 >"$tmp/share8.json" 2>"$tmp/share8.err"
check "8 share instances: every part written and every other part intact" test $? -eq 0
[ -s "$tmp/share8.err" ] && head -5 "$tmp/share8.err"
"$PSS" "$tmp/mt" reap 8 >"$tmp/reap8.json" 2>"$tmp/reap8.err"
check "8 reap instances: the same answers" test $? -eq 0
check "8 share instances: total PSS at most 40% of 8 reap instances'" python3 -c '
import json, sys
s, r = (json.load(open(f)) for f in sys.argv[1:3])
print("  PSS of 8 instances: share %d KiB, reap %d KiB (%.0f%%)" % (s["pss_kb"], r["pss_kb"], 100.0 * s["pss_kb"] / r["pss_kb"]))
assert s["wrong"] == 0 and r["wrong"] == 0 and s["pss_kb"] <= 0.4 * r["pss_kb"], (s, r)
' "$tmp/share8.json" "$tmp/reap8.json"
finish
