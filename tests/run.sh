#!/usr/bin/env bash
# Runs the whole suite: unit tests (normal and sanitizer builds), then the
# integration tests as root on a real testbed. Ends with "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
ROOT=$PWD
export FASTMIG_BUILD=${FASTMIG_BUILD:-$ROOT/build}
pass=0 fail=0 skip=0
failed=()
logdir=$(mktemp -d /tmp/fastmig-tests.XXXXXX)

run_one() { # name, command...
  local name=$1; shift
  local log="$logdir/${name//\//_}.log" t0=$SECONDS rc
  "$@" >"$log" 2>&1; rc=$?
  local dt=$((SECONDS - t0))
  if [ $rc -eq 0 ]; then pass=$((pass + 1)); printf 'PASS %-48s %4ss\n' "$name" "$dt"
  elif [ $rc -eq 77 ]; then skip=$((skip + 1)); printf 'SKIP %-48s %s\n' "$name" "$(tail -n1 "$log")"
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
if [ $skip -gt 0 ]; then echo "$pass passed, $fail failed, $skip skipped"; else echo "$pass passed, $fail failed"; fi
[ $fail -eq 0 ]
