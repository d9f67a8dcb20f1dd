#!/usr/bin/env bash
# `thaw build`: a new C function and a new Python function, in directories no
# Makefile knows, build into bundles that boot; an unchanged directory is not rebuilt,
# a changed source is; a compile error is one clear line; a handler that prints and
# is slow at import still builds. Prints "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
. tests/lib/suite.sh
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
kvm=1
[ -r /dev/kvm ] && [ -w /dev/kvm ] || { kvm=0; echo "*** SKIP booting built bundles (no usable /dev/kvm)"; }

# A C function of the user's own.
mkdir -p "$work/shout"
cat > "$work/shout/function.json" <<'J'
{"name": "shout", "runtime": "native", "memory_mib": 32}
J
cat > "$work/shout/main.c" <<'C'
#include <ctype.h>
#include "thaw_function.h"
int main(void)
{
    static char req[4096];
    int fd = thaw_open();
    ssize_t n;
    while ((n = thaw_next(fd, req, sizeof req)) > 0) {
        for (ssize_t i = 0; i < n; i++)
            req[i] = (char)toupper((unsigned char)req[i]);
        thaw_respond(fd, req, (size_t)n);
    }
    return 0;
}
C
out=$("$THAW" build "$work/shout" --out "$work/shout.b" 2>&1)
if [ $? -eq 0 ] && [ -x "$work/shout.b/program" ] && grep -q '"program": "program"' "$work/shout.b/function.json"; then
    pass "C function builds into a bundle"; else fail "C function builds into a bundle" "$out"; fi
out=$("$THAW" build "$work/shout" --out "$work/shout.b" 2>&1)
printf '%s' "$out" | grep -q 'up to date' && pass "unchanged sources: no rebuild" || fail "unchanged sources: no rebuild" "$out"
if [ $kvm -eq 1 ]; then
    got=$("$THAW" run "$work/shout.b" --payload 'abc' 2>/dev/null)
    [ "$got" = "ABC" ] && pass "built C bundle boots and answers" || fail "built C bundle boots and answers" "$got"
fi
sed -i 's/toupper/tolower/' "$work/shout/main.c"
out=$("$THAW" build "$work/shout" --out "$work/shout.b" 2>&1)
printf '%s' "$out" | grep -q '^built' && pass "changed source: rebuilt" || fail "changed source: rebuilt" "$out"
if [ $kvm -eq 1 ]; then
    got=$("$THAW" run "$work/shout.b" --payload 'AbC' 2>/dev/null)
    [ "$got" = "abc" ] && pass "rebuilt bundle runs the new code" || fail "rebuilt bundle runs the new code" "$got"
    got=$("$THAW" run "$work/shout" --payload 'XyZ' 2>/dev/null)
    [ "$got" = "xyz" ] && pass "thaw run on the source directory builds it implicitly" || fail "implicit build" "$got"
fi
echo 'int broken = ;' >> "$work/shout/main.c"
out=$("$THAW" build "$work/shout" --out "$work/shout.b" 2>&1); rc=$?
[ $rc -ne 0 ] && [ "$(printf '%s\n' "$out" | wc -l)" -eq 1 ] && printf '%s' "$out" | grep -q 'main.c.*error' \
    && pass "compile error: one line naming the error" || fail "compile error: one line naming the error" "$out"
[ -x "$work/shout.b/program" ] && pass "failed build keeps the previous bundle" || fail "failed build keeps the previous bundle"

# link: only -lNAME is accepted.
mkdir -p "$work/evil" && cp "$work/shout/main.c" "$work/evil/" && sed -i '$d' "$work/evil/main.c"
echo '{"name": "evil", "runtime": "native", "link": ["-Wl,--wrap=main"]}' > "$work/evil/function.json"
out=$("$THAW" build "$work/evil" --out "$work/evil.b" 2>&1); rc=$?
[ $rc -ne 0 ] && printf '%s' "$out" | grep -q 'link\[0\]' && pass "link flags other than -lNAME refused" \
    || fail "link flags other than -lNAME refused" "$out"

# A misspelt key is an error naming it, not a setting that silently does nothing.
mkdir -p "$work/typo" && cp "$work/shout/main.c" "$work/typo/"
echo '{"name": "typo", "runtime": "native", "memroy_mib": 64}' > "$work/typo/function.json"
out=$("$THAW" build "$work/typo" --out "$work/typo.b" 2>&1); rc=$?
[ $rc -ne 0 ] && printf '%s' "$out" | grep -q 'unknown key "memroy_mib"' && [ ! -e "$work/typo.b" ] \
    && pass "unknown function.json key is a clear error" || fail "unknown function.json key is a clear error" "$out"

# A Python function whose handler prints and sleeps at import time.
mkdir -p "$work/greet/payloads"
echo '{"name": "greet", "runtime": "python", "memory_mib": 128}' > "$work/greet/function.json"
cat > "$work/greet/handler.py" <<'P'
import time
print("loading greet")
time.sleep(1)

def handle(event):
    return {"hi": event.get("who", "nobody")}
P
echo '{"who": "ada"}' > "$work/greet/payloads/ada.json"
out=$("$THAW" build "$work/greet" --out "$work/greet.b" 2>&1)
[ $? -eq 0 ] && [ -s "$work/greet.b/files.cpio" ] && pass "Python function (prints, slow import) builds" \
    || fail "Python function (prints, slow import) builds" "$out"
if [ $kvm -eq 1 ]; then
    got=$("$THAW" run "$work/greet.b" --payload '{"who": "ada"}' 2>/dev/null)
    [ "$got" = '{"hi": "ada"}' ] && pass "built Python bundle answers" || fail "built Python bundle answers" "$got"
fi
# One Python runtime: a function.json asking for the removed static interpreter is
# one clear error, not a silent switch.
mkdir -p "$work/oldpy" && cp "$work/greet/handler.py" "$work/oldpy/"
echo '{"name": "oldpy", "runtime": "python", "interpreter": "static"}' > "$work/oldpy/function.json"
out=$("$THAW" build "$work/oldpy" --out "$work/oldpy.b" 2>&1); rc=$?
[ $rc -ne 0 ] && printf '%s' "$out" | grep -q 'static interpreter was removed' \
    && pass "\"interpreter\": \"static\" refused with a clear error" \
    || fail "\"interpreter\": \"static\" refused with a clear error" "$out"
# thaw build --gc: runtime images nothing names are evicted, in a build directory of
# its own (THAW_BUILD_DIR), so the suite's real images are never touched.
tb="$work/gcbuild"; imgs="$tb/functions/python3.11-images"
mkdir -p "$imgs" "$tb/bundles/fn" "$work/state/fn/v1/snap"
for k in aaaaaaaaaaaaaaaaaaaa bbbbbbbbbbbbbbbbbbbb cccccccccccccccccccc dddddddddddddddddddd; do
    head -c 8192 /dev/urandom > "$imgs/python3.11-$k.img"; echo '{}' > "$imgs/python3.11-$k.json"
    touch -d '2 hours ago' "$imgs/python3.11-$k.img"
done
touch "$imgs/python3.11-cccccccccccccccccccc.img" # just built: its bundle may not be written yet
echo '{"name": "fn", "rootfs": "build:python3.11-images/python3.11-aaaaaaaaaaaaaaaaaaaa.img"}' > "$tb/bundles/fn/function.json"
echo "{\"image\": \"$imgs/python3.11-dddddddddddddddddddd.img\", \"size\": 8192}" > "$work/state/fn/v1/snap/rootfs"
out=$(THAW_BUILD_DIR="$tb" "$THAW" build --gc --keep "$work/state" 2>&1); rc=$?
left=$(cd "$imgs" && ls | tr '\n' ' ')
[ $rc -eq 0 ] && printf '%s' "$out" | grep -q 'removed 1 unused runtime image' &&
    [ "$left" = "python3.11-aaaaaaaaaaaaaaaaaaaa.img python3.11-aaaaaaaaaaaaaaaaaaaa.json python3.11-cccccccccccccccccccc.img python3.11-cccccccccccccccccccc.json python3.11-dddddddddddddddddddd.img python3.11-dddddddddddddddddddd.json " ] &&
    pass "build --gc evicts the unused image, keeps those a bundle, a --keep snapshot or a fresh build needs" ||
    fail "build --gc evicts the unused image, keeps those a bundle, a --keep snapshot or a fresh build needs" "$out / $left"
out=$(THAW_BUILD_DIR="$tb" "$THAW" build --gc 2>&1); rc=$?
[ $rc -eq 0 ] && [ ! -e "$imgs/python3.11-dddddddddddddddddddd.img" ] && [ -e "$imgs/python3.11-aaaaaaaaaaaaaaaaaaaa.img" ] &&
    pass "build --gc without --keep evicts what only that snapshot named" ||
    fail "build --gc without --keep evicts what only that snapshot named" "$out"
out=$("$THAW" build --gc functions/hello 2>&1); rc=$?
[ $rc -eq 2 ] && pass "build --gc takes no function directory" || fail "build --gc takes no function directory" "$out"

out=$("$THAW" build "$work/nope" 2>&1); rc=$?
[ $rc -ne 0 ] && printf '%s' "$out" | grep -q 'nope' && pass "missing directory: clear error" || fail "missing directory: clear error" "$out"

finish
