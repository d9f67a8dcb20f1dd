#!/usr/bin/env bash
# `thaw analyze` end to end:
#   - on synthetic recordings with known answers (working sets, reuse matrix, run lengths,
#     read-around), table and JSON;
#   - malformed and truncated traces are refused with one clear line;
#   - --plot writes every figure as PNG and SVG;
#   - on a real function (hello, in microVMs): the working set it reports for each input
#     is exactly the one REAP recorded (ws.pages), and a REAP restore of that recording
#     prefetches exactly that many pages and misses none.
# Prints "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
. tests/lib/suite.sh
SYNTH="python3 tests/analysis/synth.py"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
check() { # name, then a command that must succeed; its last output lines when it fails
    local name=$1; shift
    if out=$("$@" 2>&1); then pass "$name"; else fail "$name" "$(printf '%s' "$out" | tail -n 5 | tr '\n' ' ')"; fi
}

# Three inputs over 64 MiB of guest memory. A: pages 5 3 4 10 11 12 0, B: 3 4 5 6, C: 100 4.
$SYNTH trace "$tmp/A" 64 5 3 4 10 11 12 0
$SYNTH trace "$tmp/B" 64 3 4 5 6
$SYNTH trace "$tmp/C" 64 100 4

"$THAW" analyze --recorded "$tmp/A" "$tmp/B" "$tmp/C" --json >"$tmp/out.json" 2>"$tmp/err"
check "json: exits 0 and parses" python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$tmp/out.json"
check "json: known answers" python3 - "$tmp/out.json" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))
p = {x["name"]: x for x in a["payloads"]}
assert a["mem_size"] == 64 << 20, a["mem_size"]
assert [p[n]["working_set"]["pages"] for n in "ABC"] == [7, 4, 2]
g = p["A"]["runs"]["guest_order"]            # {0} {3 4 5} {10 11 12}
assert (g["runs"], g["max"], g["median"], g["histogram"]) == (3, 3, 3, [[1, 1], [3, 2]]), g
f = p["A"]["runs"]["fault_order"]            # {5} {3 4} {10 11 12} {0}
assert (f["runs"], f["histogram"]) == (4, [[1, 2], [2, 1], [3, 1]]), f
ra = p["A"]["readahead"][0]                  # 32 pages around page 5: [0, 32) holds all of A
assert (ra["window_bytes"], ra["reads"], ra["pages_fetched"], ra["pages_useful"]) == (131072, 1, 32, 7), ra
rc = p["C"]["readahead"][0]                  # 100 -> [84, 116); 4 -> [0, 32)
assert (rc["reads"], rc["pages_fetched"], rc["pages_useful"]) == (2, 64, 2), rc
u = a["reuse"]                               # union {0 3 4 5 6 10 11 12 100}, common {4}
assert (u["union_pages"], u["common_pages"], u["unique_pages"]) == (9, 1, [4, 1, 1]), u
want = [[1, 3 / 7, 1 / 7], [3 / 4, 1, 1 / 4], [1 / 2, 1 / 2, 1]]
assert all(abs(u["matrix"][i][j] - want[i][j]) < 1e-9 for i in range(3) for j in range(3)), u["matrix"]
assert len(p["B"]["timeline"]["points"]) == 4 and p["B"]["timeline"]["last_us"] == 4.0
assert a["layout"] == [] and a["memory_file_allocated"] is None   # no memory file beside the traces
PY
out=$("$THAW" analyze --recorded "$tmp/A" "$tmp/B" "$tmp/C" 2>&1)
check "table: working sets and reuse" grep -q "1 pages touched by all, 9 by any" <<<"$out"

# Refused inputs: one line naming the file and the problem, non-zero exit.
refused() { # name, expected text, dirs...
    local name=$1 want=$2; shift 2
    local out rc
    out=$("$THAW" analyze --recorded "$@" 2>&1); rc=$?
    if [ $rc -ne 0 ] && printf '%s' "$out" | grep -q -- "$want" && [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ]; then
        pass "$name"
    else
        fail "$name" "rc=$rc: $out"
    fi
}
cp -r "$tmp/A" "$tmp/trunc"; $SYNTH truncate "$tmp/trunc/ws.trace" 5
refused "truncated trace" "ws.trace: size does not match its page count" "$tmp/trunc"
cp -r "$tmp/A" "$tmp/short"; $SYNTH truncate "$tmp/short/ws.trace" 130
refused "trace shorter than its header" "ws.trace: truncated" "$tmp/short"
cp -r "$tmp/A" "$tmp/flip"; $SYNTH corrupt "$tmp/flip/ws.trace" 40
refused "corrupt trace" "checksum mismatch" "$tmp/flip"
python3 - "$tmp/bad" <<'PY'
import os, struct, sys, zlib
os.makedirs(sys.argv[1])
body = struct.pack("<8sHHIQQ48s", b"THAWTRCE", 2, 0, 4096, 64 << 20, 2, bytes(48)) + struct.pack("<QQQQ", 4096, 1, 8192 + 12, 2)
open(os.path.join(sys.argv[1], "ws.trace"), "wb").write(body + struct.pack("<I", zlib.crc32(body)))
PY
refused "unaligned page in a valid file" "entry 1: page 0x200c is not a page" "$tmp/bad"
refused "missing trace" "cannot open" "$tmp/nothing"
$SYNTH trace "$tmp/D" 128 1 2 3
refused "traces of different guests" "not one function" "$tmp/A" "$tmp/D"
out=$("$THAW" analyze "$tmp/A" 2>&1); rc=$?
check "neither function nor snapshot: clear error" grep -q "neither a function directory" <<<"$out"
out=$("$THAW" analyze --recorded "$tmp/A" --payload '{}' 2>&1); rc=$?
check "--recorded takes no inputs: usage" test $rc -eq 2

# Figures.
if /usr/bin/python3 -c "import matplotlib" 2>/dev/null; then
    "$THAW" analyze --recorded "$tmp/A" "$tmp/B" "$tmp/C" --plot "$tmp/plots" >/dev/null 2>"$tmp/plot.err"
    missing=""
    for f in working_set reuse_matrix run_lengths fault_timeline memory_map; do
        for ext in png svg; do [ -s "$tmp/plots/$f.$ext" ] || missing="$missing $f.$ext"; done
    done
    check "--plot: every figure as PNG and SVG" test -z "$missing" -a -s "$tmp/plots/analysis.json"
    [ -z "$missing" ] || cat "$tmp/plot.err"
else
    fail "--plot" "Debian's python3-matplotlib is missing (scripts/install-deps.sh)"
fi

# A real function, end to end.
if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
    echo "*** SKIP: /dev/kvm is not usable: the end-to-end analysis of a real function did not run ***"
else
    "$THAW" analyze functions/hello --json --keep "$tmp/keep" >"$tmp/hello.json" 2>"$tmp/hello.err"
    check "real function: analyze exits 0" test $? -eq 0 -a -s "$tmp/hello.json"
    [ -s "$tmp/hello.json" ] || cat "$tmp/hello.err"
    check "real function: working set equals REAP's recording" python3 - "$tmp/hello.json" "$tmp/keep" <<'PY'
import json, os, struct, sys
a = json.load(open(sys.argv[1]))
names = sorted(f[:-5] for f in os.listdir("functions/hello/payloads") if f.endswith(".json"))
assert [p["name"] for p in a["payloads"]] == names, a["payloads"]
assert a["booted"]["rss_kb"] > 0 and a["memory_file_allocated"] > 0
for i, p in enumerate(a["payloads"]):
    ws = open(os.path.join(sys.argv[2], "input-%02d" % (i + 1), "ws.pages"), "rb").read()
    magic, major, _, _, _, count, index_off = struct.unpack_from("<8sHHIQQQ", ws)
    assert magic == b"THAWWSET" and major == 4, (magic, major)
    # ws.pages 4.x index: count x {u64 guest address, u64 page checksum, u32 generation, u32 0}
    recorded = {struct.unpack_from("<Q", ws, index_off + 24 * k)[0] for k in range(count)}
    touched = {gpa for _, gpa in p["timeline"]["points"]}
    assert touched == recorded and p["working_set"]["pages"] == count, (p["name"], len(touched), count)
    assert sum(p["working_set"]["by_region"].values()) == count
    assert p["working_set"]["by_region"]["kernel"] > 0 and p["working_set"]["by_region"]["program text"] > 0
    r = p["restore"]
    assert r["pages_served"] + r["zero_pages"] == count, r    # what the pager served while recording
    assert 0 < r["rss_kb"] <= a["booted"]["rss_kb"], (r, a["booted"])
PY
    payload=$(cat functions/hello/payloads/"$(ls functions/hello/payloads | head -1)")
    "$THAW" restore "$tmp/keep/input-01" --mem reap --payload "$payload" --json >"$tmp/re.json" 2>"$tmp/re.err"
    check "real function: REAP prefetches exactly that working set, no misses" python3 - "$tmp/hello.json" "$tmp/re.json" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))
r = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
assert r["reap"]["prefetched"] and r["reap"]["ws_pages"] == a["payloads"][0]["working_set"]["pages"], r["reap"]
assert r["reap"]["misses"] == 0, r["reap"]
PY
    check "real function: --keep keeps the snapshot and every recorded copy" test -d "$tmp/keep/snapshot"
    before=$(ls /tmp | grep -c '^thaw-analyze-' || true)
    TMPDIR=/tmp "$THAW" analyze functions/hello --payload '{"name": "x"}' >/dev/null 2>&1
    after=$(ls /tmp | grep -c '^thaw-analyze-' || true)
    check "real function: the work directory is removed" test "$before" -eq "$after"
    # A Python function's source directory has no program until it is built: analyze
    # builds it first, as run and snapshot do.
    "$THAW" analyze functions/helloworld --payload '{"name": "x"}' --json >"$tmp/py.json" 2>"$tmp/py.err"
    check "Python function: analyze builds the directory and records its working set" python3 - "$tmp/py.json" <<'PY'
import json, sys
a = json.load(open(sys.argv[1]))
p = a["payloads"]
assert len(p) == 1 and p[0]["working_set"]["pages"] > 100, p
assert a["booted"]["rss_kb"] > 0
PY
    [ -s "$tmp/py.json" ] || cat "$tmp/py.err"
fi

finish
