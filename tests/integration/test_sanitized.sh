# The rollback (migrations that fail at every phase and are undone),
# agent-request and orchestrator tests again with the ASan+UBSan build of
# fastmig, fastmigd and fastmig-orchd; any sanitizer report fails the test.
# (test_migrate and test_precopy ran here too until the suite's 30 minutes
# needed their 105 s: `FASTMIG_SAN_TESTS="test_migrate test_precopy"` runs
# them sanitized by hand.)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
san=$(cd "$here/../.." && pwd)/build-san
[ -x "$san/fastmig" ] || { echo "sanitizer build missing at $san"; exit 1; }
logs=$(mktemp -d /tmp/fastmig-san.XXXXXX)
export ASAN_OPTIONS="log_path=$logs/asan:log_exe_name=1:detect_leaks=1:abort_on_error=0"
export UBSAN_OPTIONS="log_path=$logs/ubsan:log_exe_name=1:print_stacktrace=1"
export LSAN_OPTIONS="suppressions=$here/lsan.supp:print_suppressions=0"
for t in ${FASTMIG_SAN_TESTS:-test_rollback test_agent_requests test_orch}; do
  echo "== $t (sanitized)"
  FASTMIG_BUILD=$san bash "$here/$t.sh"
done
if ls "$logs"/* >/dev/null 2>&1; then
  cat "$logs"/* | head -n 80
  echo "FAIL: sanitizer reports in $logs"
  exit 1
fi
rm -rf "$logs"
echo ok
