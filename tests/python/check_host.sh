#!/usr/bin/env bash
# Host check of the Python runtime and the function suite, before any microVM:
#   - every payload of every function that has payloads/ and expected/ is run on the
#     host (tools/python/run_reference.py: a native binary chrooted in its archive, a
#     Python function on the host's python3.11 in its staged app/), and the response must
#     equal expected/<payload> byte for byte;
#   - the runtime's error response (helloworld, {"raise": ...});
#   - the runtime's /dev/invoke loop (tests/python/test_runtime_loop.py).
# Needs `make python-functions` first (the C functions) and root (or unprivileged user namespaces) for
# chroot. Prints "N passed, N failed"; exits 1 if anything failed.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/suite.sh
PY=/usr/bin/python3.11
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for dir in functions/*/; do
    dir=${dir%/}
    [ -f "$dir/function.json" ] && [ -d "$dir/payloads" ] && [ -d "$dir/expected" ] || continue
    for payload in "$dir"/payloads/*.json; do
        name="$(basename "$dir")/$(basename "$payload")"
        expected="$dir/expected/$(basename "$payload")"
        if [ ! -f "$expected" ]; then
            fail "$name" "no $expected"
            continue
        fi
        if ! BUILD=$BUILD $PY tools/python/run_reference.py "$dir" "$payload" >"$tmp/out" 2>"$tmp/err"; then
            fail "$name" "$(tail -n 3 "$tmp/err" | tr '\n' ' ')"
        elif cmp -s "$tmp/out" "$expected"; then
            pass "$name"
        else
            fail "$name" "got $(head -c 300 "$tmp/out")"
        fi
    done
done

# Native twins agree with their Python functions (each side is checked against its
# own expected/ above, so this ties the C programs to the Python reference):
# aes_c == pyaes and matmul_c == matmul byte for byte; image_rotate_c rotates to the
# same pixels as image_rotate (its PNG encoder differs, so only pixels_crc32).
twins() {
    $PY - "$@" <<'EOF'
import json, os, sys
mode, a, b = sys.argv[1:]
names = sorted(os.listdir(os.path.join("functions", a, "expected")))
assert names == sorted(os.listdir(os.path.join("functions", b, "expected"))), "payload sets differ"
for n in names:
    x = open(os.path.join("functions", a, "expected", n), "rb").read()
    y = open(os.path.join("functions", b, "expected", n), "rb").read()
    if mode == "same":
        assert x == y, (n, x, y)
    else:
        x, y = json.loads(x), json.loads(y)
        assert (x["width"], x["height"], x["pixels_crc32"]) == \
               (y["width"], y["height"], y["pixels_crc32"]), (n, x, y)
EOF
}
for t in "same aes_c pyaes" "same matmul_c matmul" "pixels image_rotate_c image_rotate"; do
    set -- $t
    if [ -d "functions/$2" ] && [ -d "functions/$3" ]; then
        if out=$(twins "$@" 2>&1); then pass "twins $2 ~ $3"; else fail "twins $2 ~ $3" "$(echo "$out" | tail -n 1)"; fi
    fi
done

# The error path, through the host's python3.11: handler exception -> error response.
printf '{"raise": "no luck"}' >"$tmp/raise.json"
if BUILD=$BUILD $PY tools/python/run_reference.py functions/helloworld "$tmp/raise.json" >"$tmp/out" 2>"$tmp/err" &&
   $PY -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r["error"] == "ValueError: no luck", r
assert r["traceback"].startswith("Traceback (most recent call last):"), r
assert "/app/handler.py" in r["traceback"], r
' "$tmp/out" 2>"$tmp/err"; then
    pass "helloworld error response (host python3.11)"
else
    fail "helloworld error response (host python3.11)" "$(cat "$tmp/out" "$tmp/err" | head -c 400)"
fi

# The /dev/invoke loop of runtime.py (socketpair stand-in, host python3.11).
if $PY tests/python/test_runtime_loop.py >"$tmp/loop" 2>&1; then
    pass "runtime.py invoke loop"
else
    fail "runtime.py invoke loop" "$(grep -v ^PASS "$tmp/loop" | head -c 400)"
fi

finish
