#!/usr/bin/env bash
# Runs thaw's whole test suite and ends with one line: "N passed, N failed".
#  - every cmocka binary in build/tests (unit tests under ASan+UBSan, microVM
#    integration tests, guest-kernel code compiled for the host);
#  - CLI end-to-end checks of build/thaw;
#  - every shell suite tests/*/check_*.sh that prints "N passed, N failed";
#  - each libFuzzer target for FUZZ_SECONDS (default 20) on its seed corpus.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
passed=0
failed=0
failures=()

record() { # name status
  if [ "$2" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$1"); fi
}

if [ ! -r /dev/kvm ] || [ ! -w /dev/kvm ]; then
  echo "*** WARNING: /dev/kvm is not usable: microVM tests will report SKIP ***"
fi

for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] || continue
  name=$(basename "$t")
  out=$("$t" 2>&1); rc=$?
  p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test(s)\./\1/p' | awk '{s+=$1} END {print s+0}')
  f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test(s), listed below:/\1/p' | awk '{s+=$1} END {print s+0}')
  if printf '%s\n' "$out" | grep -q '\*\*\* SKIP'; then
    echo "SKIP  $name (no /dev/kvm)"; continue
  fi
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi   # crashed or sanitizer report
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$f" -ne 0 ]; then
    failures+=("$name"); echo "FAIL  $name ($p passed, $f failed)"; printf '%s\n' "$out" | grep -v '^\[       OK' | tail -40
  else
    echo "ok    $name ($p passed)"
  fi
done

# CLI end to end: the README's demo path.
if [ -r /dev/kvm ]; then
  out=$("$BUILD"/thaw run functions/hello --payload '{"name": "CLI"}' 2>&1)
  printf '%s' "$out" | grep -q 'Hello, CLI!'; record "cli: run hello" $?
  out=$("$BUILD"/thaw run functions/does-not-exist --payload '{}' 2>&1); rc=$?
  [ $rc -ne 0 ] && printf '%s' "$out" | grep -q 'function.json'; record "cli: missing function is a clear error" $?
  out=$("$BUILD"/thaw run functions/faulty --payload '{"fault": "null"}' 2>&1); rc=$?
  [ $rc -ne 0 ] && printf '%s' "$out" | grep -q 'NULL page'; record "cli: guest fault is reported" $?
  out=$("$BUILD"/thaw run functions/hello --memory 16 --payload '{}' 2>&1); rc=$?
  [ $rc -ne 0 ] && printf '%s' "$out" | grep -q '16 MiB of guest memory leaves no room'; record "cli: too little memory is a clear error" $?
  out=$("$BUILD"/thaw run functions/hello --payload '{"name": "t"}' --json 2>/dev/null | tail -1)
  printf '%s' "$out" | grep -q '"boot_to_ready_us"'; record "cli: --json timings" $?
  echo "ok    cli checks ran"
fi

for s in tests/*/check_*.sh; do
  [ -x "$s" ] || continue
  out=$(BUILD="$BUILD" "$s" 2>&1); rc=$?
  line=$(printf '%s\n' "$out" | grep -E '^[0-9]+ passed, [0-9]+ failed' | tail -1)
  p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p'); f=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
  p=${p:-0}; f=${f:-0}
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$f" -ne 0 ]; then
    # The failed checks first (a tail alone may start after them), then the end.
    failures+=("$s"); echo "FAIL  $s"; printf '%s\n' "$out" | grep -E '^(FAIL|SKIP)' | cut -c1-2000
    echo "  ... the last lines:"; printf '%s\n' "$out" | tail -30
  else echo "ok    $s ($p passed)"; fi
done

for fz in "$BUILD"/fuzz/fuzz_*; do
  [ -x "$fz" ] || continue
  name=$(basename "$fz"); corpus="tests/fuzz/corpus/${name#fuzz_}"
  work=$(mktemp -d)
  [ -d "$corpus" ] && cp -r "$corpus"/. "$work"/ 2>/dev/null
  out=$("$fz" -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 "$work" 2>&1); rc=$?
  rm -rf "$work"
  record "fuzz: $name" $rc
  if [ $rc -ne 0 ]; then echo "FAIL  $name"; printf '%s\n' "$out" | tail -30
  else echo "ok    $name ($(printf '%s\n' "$out" | sed -n 's/^stat::number_of_executed_units: *//p') runs in ${FUZZ_SECONDS}s)"; fi
done

if [ ${#failures[@]} -ne 0 ]; then printf 'failed: %s\n' "${failures[@]}"; fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
