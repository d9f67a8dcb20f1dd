#!/usr/bin/env bash
# The Python runtime and the function suite in real microVMs: every payload of every
# function that has payloads/ and expected/ goes through `thaw run` (one fresh VM per
# function serving its payloads in order) and each response must equal
# expected/<payload>. Then one VM serves a
# sequence (ok, handler exception, invalid JSON, ok) to exercise runtime.py's
# /dev/invoke loop. Skips (0 passed, 0 failed) without a usable /dev/kvm or
# $BUILD/thaw. Prints "N passed, N failed"; exits 1 if anything failed.
set -u
cd "$(dirname "$0")/../.."
. tests/lib/suite.sh

if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ] || [ ! -x "$THAW" ]; then
    echo "SKIP microVM checks (no usable /dev/kvm or no $THAW)"
    echo "0 passed, 0 failed"
    exit 0
fi
err=$(mktemp)
out=$(mktemp)
trap 'rm -f "$err" "$out"' EXIT

# One VM per function serves all its payloads in order (one response a line): the
# functions keep no state between requests, and a boot of a function on PyTorch or
# scikit-learn takes seconds.
for dir in functions/*/; do
    dir=${dir%/}
    [ -f "$dir/function.json" ] && [ -d "$dir/payloads" ] && [ -d "$dir/expected" ] || continue
    args=()
    names=()
    for payload in "$dir"/payloads/*.json; do
        args+=(--payload-file "$payload")
        names+=("$(basename "$payload")")
    done
    if ! timeout 600 "$THAW" run "$dir" "${args[@]}" >"$out" 2>"$err"; then
        fail "$dir" "thaw run failed: $(tail -n 3 "$err" | tr '\n' ' ')"
        continue
    fi
    i=0
    for n in "${names[@]}"; do
        i=$((i + 1))
        got=$(sed -n "${i}p" "$out")
        expected="$dir/expected/$n"
        if [ ! -f "$expected" ]; then
            fail "$(basename "$dir")/$n" "no $expected"
        elif [ "$got" == "$(cat "$expected")" ]; then
            pass "$(basename "$dir")/$n"
        else
            fail "$(basename "$dir")/$n" "got $(printf '%s' "$got" | head -c 300)"
        fi
    done
done

# One VM, several requests: the loop survives errors and answers in order.
if [ -d functions/helloworld ]; then
    out=$(timeout 120 "$THAW" run functions/helloworld --payload '{"name": "a"}' \
        --payload '{"raise": "boom"}' --payload 'not json' --payload '{"name": "b"}' 2>"$err")
    if printf '%s\n' "$out" | /usr/bin/python3.11 -c '
import json, sys
r = [json.loads(l) for l in sys.stdin.read().splitlines()]
assert len(r) == 4, r
assert r[0] == {"message": "Hello, a!", "length": 1}, r[0]
assert r[1]["error"] == "ValueError: boom" and "/app/handler.py" in r[1]["traceback"], r[1]
assert r[2]["error"].startswith("JSONDecodeError:"), r[2]
assert r[3] == {"message": "Hello, b!", "length": 1}, r[3]
'; then
        pass "helloworld invoke loop in one VM"
    else
        fail "helloworld invoke loop in one VM" "$(printf '%s' "$out" | head -c 400) $(tail -n 3 "$err")"
    fi
fi

finish
