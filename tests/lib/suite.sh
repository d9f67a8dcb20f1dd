# Sourced by the shell check suites (after `cd` to the repository root): BUILD and THAW,
# one line per check, and `finish`, which prints the "N passed, N failed" line that
# tests/run-all.sh reads and fails when any check failed.
BUILD=${BUILD:-build}
THAW="$BUILD/thaw"
passed=0
failed=0
pass() { passed=$((passed + 1)); echo "PASS $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1${2:+: $2}"; }
check() { # name, then a command whose success means pass
    local name=$1; shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}
finish() {
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
