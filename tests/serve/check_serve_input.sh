#!/usr/bin/env bash
# `thaw serve` and hostile input: every bad request is a 4xx with a JSON error, and
# nothing is written outside the state directory. Prints "N passed, N failed".
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
. tests/serve/lib.sh
need_kvm "thaw serve input"

start_daemon "$WORK/state" --max-body 1M --max-upload 2M --max-unpacked 4M \
    || { fail "daemon starts"; finish; exit 1; }
make_testfn "$WORK/ok"
check "a good deploy works" [ "$(deploy ok "$WORK/ok")" = 201 ]

expect() { # name, expected status, then http args
    local name=$1 want=$2; shift 2
    local got
    got=$(http "$@")
    if [ "$got" = "$want" ] && grep -q '"error"' "$WORK/body"; then pass "$name: $want"
    else fail "$name" "got $got, want $want: $(head -c 200 "$WORK/body")"; fi
}

# function.json's "serve" object: the function's own defaults, the query wins.
make_testfn "$WORK/own"
python3 - "$WORK/own/function.json" <<'P'
import json, sys
m = json.load(open(sys.argv[1])); m["serve"] = {"restore": "lazy", "keep_alive_ms": 1234}
json.dump(m, open(sys.argv[1], "w"))
P
st=$(deploy own "$WORK/own")
check "function.json \"serve\" sets the deploy's defaults (status $st)" \
    sh -c "[ $st = 201 ] && grep -q '\"restore\": *\"lazy\"' '$WORK/body' && grep -q '\"keep_alive_ms\": *1234' '$WORK/body'"
st=$(deploy own "$WORK/own" "restore=copy")
check "a redeploy's query overrides function.json \"serve\" (status $st)" \
    sh -c "[ $st = 200 ] && grep -q '\"restore\": *\"copy\"' '$WORK/body' && grep -q '\"keep_alive_ms\": *1234' '$WORK/body'"
python3 - "$WORK/own/function.json" <<'P'
import json, sys
m = json.load(open(sys.argv[1])); m["serve"] = {"restore": "sometimes"}
json.dump(m, open(sys.argv[1], "w"))
P
st=$(deploy own "$WORK/own")
check "a bad function.json \"serve\" is a 400 naming it (status $st)" \
    sh -c "[ $st = 400 ] && grep -q 'serve' '$WORK/body' && grep -q 'restore' '$WORK/body'"
python3 - "$WORK/own/function.json" <<'P'
import json, sys
m = json.load(open(sys.argv[1])); m["serve"] = "lazy"
json.dump(m, open(sys.argv[1], "w"))
P
st=$(deploy own "$WORK/own")
check "a function.json \"serve\" that is not an object is a 400 (status $st)" \
    sh -c "[ $st = 400 ] && grep -q 'serve' '$WORK/body' && grep -q 'must be a JSON object' '$WORK/body'"
printf '{"name": "own", "runtime": "native",\n "memory_mib": }' >"$WORK/own/function.json"
st=$(deploy own "$WORK/own")
check "a function.json that is not JSON is a 400 naming it and its line (status $st)" \
    sh -c "[ $st = 400 ] && grep -q 'function.json: .*(line 2)' '$WORK/body'"
echo '{"name": "own", "runtime": "native", "memory_mib": 32, "pakages": []}' >"$WORK/own/function.json"
st=$(deploy own "$WORK/own")
check "an unknown function.json key fails the build: 422 naming it (status $st)" \
    sh -c "[ $st = 422 ] && grep -q 'unknown key .*pakages' '$WORK/body'"
echo '{"name": "own", "runtime": "native", "memory_mib": 32, "serve": {"keep_alive_ms": 4321}}' >"$WORK/own/function.json"
st=$(deploy own "$WORK/own")
http GET /functions/own >/dev/null
check "after the failed deploys, a good one serves with its \"serve\" settings (status $st)" \
    sh -c "[ $st = 200 ] && [ \"\$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[\"config\"][\"keep_alive_ms\"])' '$WORK/body')\" = 4321 ]"
st=$(http POST /invoke/own -d '{"x": 1}')
check "and answers (status $st)" sh -c "[ $st = 200 ] && [ \"\$(cat '$WORK/body')\" = '{\"x\": 1}' ]"

expect "unknown function" 404 POST /invoke/nosuch -d '{}'
expect "unknown function GET" 404 GET /functions/nosuch
expect "unknown endpoint" 404 GET /nothing-here
expect "name with a dot" 400 POST /invoke/a.b -d '{}'
expect "name with a path separator" 400 POST /invoke/a/b -d '{}'
expect "name with dot-dot" 400 PUT /functions/.. --data-binary @/dev/null
expect "encoded slash in the name" 400 PUT /functions/x%2F..%2Fy -d 'x'
expect "empty name" 400 POST /invoke/ -d '{}'
expect "name too long" 400 POST /invoke/$(printf 'a%.0s' $(seq 64)) -d '{}'
expect "non-ASCII name" 400 POST /invoke/caf%C3%A9 -d '{}'
expect "upper case name" 400 GET /functions/Hello
expect "wrong method" 405 GET /invoke/ok
head -c $((1024 * 1024 + 1)) /dev/zero >"$WORK/big"
expect "invoke body over --max-body" 400 POST /invoke/ok --data-binary @"$WORK/big"
expect "PATCH not JSON" 400 PATCH /functions/ok -d '{not json'
expect "PATCH unknown key" 400 PATCH /functions/ok -d '{"colour": "red"}'
expect "PATCH wrong type" 400 PATCH /functions/ok -d '{"max_instances": "four"}'
expect "PATCH out of range" 400 PATCH /functions/ok -d '{"max_instances": 0}'
expect "PATCH min above max" 400 PATCH /functions/ok -d '{"min_instances": 9, "max_instances": 2}'
expect "PATCH bad restore mode" 400 PATCH /functions/ok -d '{"restore": "teleport"}'
expect "deploy bad query parameter" 400 PUT "/functions/ok2?restore=teleport" -d 'x'
expect "deploy with an empty body" 400 PUT /functions/ok2
expect "deploy a non-tar" 400 PUT /functions/ok2 -d 'this is not a tar'

# Hostile tars, made with Python's tarfile; each tries to write $WORK/escaped.
mk_tar() { python3 - "$WORK/evil.tar" "$1" "$WORK" <<'PY'
import io, sys, tarfile
out, kind, work = sys.argv[1], sys.argv[2], sys.argv[3]
t = tarfile.open(out, "w")
def add(name, data=b"x", **kw):
    ti = tarfile.TarInfo(name); ti.size = len(data)
    for k, v in kw.items(): setattr(ti, k, v)
    t.addfile(ti, io.BytesIO(data) if ti.isreg() else None)
add("function.json", b'{"name": "evil", "runtime": "native"}')
if kind == "absolute": add(work + "/escaped")
elif kind == "dotdot": add("../../../../../../" + work.lstrip("/") + "/escaped")
elif kind == "symlink": add("link", type=tarfile.SYMTYPE, linkname=work, size=0); add("link/escaped")
elif kind == "symlink-abs": add("etc", type=tarfile.SYMTYPE, linkname="/etc", size=0)
elif kind == "symlink-up": add("up", type=tarfile.SYMTYPE, linkname="../..", size=0)
elif kind == "hardlink": add("hl", type=tarfile.LNKTYPE, linkname="/etc/passwd", size=0)
elif kind == "device": add("dev", type=tarfile.CHRTYPE, devmajor=1, devminor=3, size=0)
elif kind == "fifo": add("fifo", type=tarfile.FIFOTYPE, size=0)
elif kind == "bomb":
    for i in range(6): add("f%d" % i, b"\0" * (1 << 20))
elif kind == "many":
    for i in range(10001): add("n%d" % i, b"")
t.close()
if kind == "bomb":  # gzip it: 6 MiB of zeros in a few KiB, under --max-upload
    import gzip, shutil
    with open(out, "rb") as f, gzip.open(out + ".gz", "wb") as g: shutil.copyfileobj(f, g)
    shutil.move(out + ".gz", out)
PY
}
for kind in absolute dotdot symlink symlink-abs symlink-up hardlink device fifo bomb many; do
    mk_tar $kind
    st=$(http PUT /functions/evil --data-binary @"$WORK/evil.tar")
    if [ "$st" = 400 ] && grep -q '"error"' "$WORK/body" && [ ! -e "$WORK/escaped" ]; then
        pass "tar with $kind: 400, nothing written outside"
    else
        fail "tar with $kind" "$st $(head -c 200 "$WORK/body")"
    fi
done
check "no function was created by a refused upload" [ "$(http GET /functions/evil)" = 404 ]
check "no staging directory left behind" [ -z "$(find "$WORK/state" -name '.deploy-*')" ]
head -c $((3 * 1024 * 1024)) /dev/urandom >"$WORK/huge"
expect "upload over --max-upload" 400 PUT /functions/evil --data-binary @"$WORK/huge"

# A function that does not boot: 422, and nothing replaces the old one.
mkdir -p "$WORK/noboot"
echo '{"name": "noboot", "runtime": "native", "memory_mib": 32}' >"$WORK/noboot/function.json"
printf 'int main(void) { return 3; }\n' >"$WORK/noboot/main.c"
st=$(deploy ok "$WORK/noboot")
[ "$st" = 422 ] && grep -q 'boot failed' "$WORK/body" && pass "a function that exits before its ready point: 422" \
    || fail "no-boot deploy" "$st $(body)"
st=$(http POST /invoke/ok -d '{"still": "here"}')
check "after the 422 the previous version still serves" [ "$st" = 200 ]
check "the daemon is healthy after all of it" [ "$(http GET /healthz)" = 200 ]
stop_daemon TERM
finish
