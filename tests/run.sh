#!/usr/bin/env bash
# Runs the whole suite: unit tests (normal and sanitizer builds), then the
# integration tests as root on a real testbed. Ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
export FASTMIG_BUILD=${FASTMIG_BUILD:-$ROOT/build}
pass=0 fail=0
failed=()
logdir=$(mktemp -d /tmp/fastmig-tests.XXXXXX)

# Tests that may skip (exit 77) without failing the suite, by the names
# run_one prints. None today: everything a test needs comes with
# scripts/setup.sh and the suite runs as root, so a skip means the suite did
# not test what it claims to and counts as a failure.
optional=()

is_optional() {
  local o
  for o in "${optional[@]}"; do [ "$o" = "$1" ] && return 0; done
  return 1
}

run_one() { # name, command...
  local name=$1; shift
  local log="$logdir/${name//\//_}.log" t0=$SECONDS rc
  "$@" >"$log" 2>&1; rc=$?
  local dt=$((SECONDS - t0))
  if [ $rc -eq 0 ]; then pass=$((pass + 1)); printf 'PASS %-48s %4ss\n' "$name" "$dt"
  elif [ $rc -eq 77 ] && is_optional "$name"; then printf 'SKIP %-48s %s\n' "$name" "$(tail -n1 "$log")"
  elif [ $rc -eq 77 ]; then fail=$((fail + 1)); failed+=("$name(skipped)")
       printf 'FAIL %-48s skipped, but the suite needs it: %s\n' "$name" "$(tail -n1 "$log")"
  else fail=$((fail + 1)); failed+=("$name"); printf 'FAIL %-48s %4ss\n' "$name" "$dt"
       sed 's/^/    | /' "$log" | tail -n 40
  fi
}

for b in build build-san; do
  for t in "$ROOT"/$b/tests/unit/test_*; do
    [ -x "$t" ] && [ -f "$t" ] || continue
    run_one "unit/$(basename "$t")${b#build}" "$t"
  done
done
run_one "unit/fuzz_proto" bash "$ROOT/tests/unit/test_fuzz_proto.sh"

only=${FASTMIG_TESTS:-}
for t in "$ROOT"/tests/integration/test_*.sh; do
  [ -f "$t" ] || continue
  n=$(basename "$t" .sh)
  if [ -n "$only" ] && [[ ",$only," != *",$n,"* ]]; then continue; fi
  run_one "integration/$n" bash "$t"
done

echo
[ ${#failed[@]} -gt 0 ] && printf 'failed: %s (logs in %s)\n' "${failed[*]}" "$logdir"
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
