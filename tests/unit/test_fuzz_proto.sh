# Builds the protocol fuzzer with clang's libFuzzer and runs it for a bounded
# time (a smoke run in the suite: about 40 s of fuzzing; run it longer by hand:
#   FASTMIG_FUZZ_DIR=/dev/shm/fastmig-fuzz-manual build/fuzz_proto -max_len=80000 \
#     -len_control=0 -max_total_time=600 tests/fuzz/corpus).
# Seeds: tests/fuzz/gen_corpus.sh rebuilds tests/fuzz/corpus/. A crash (or a
# stream that writes past its cap, or an input running over 10 s) fails the
# test; the input is kept as /tmp/fastmig-fuzz-{crash,timeout,oom}-*.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# clang and its libFuzzer come with scripts/setup.sh like every other
# dependency: without them this is a failure, not a skip.
command -v clang >/dev/null || { echo "FAIL: clang missing: run scripts/setup.sh"; exit 1; }
out=$root/build/fuzz_proto
mkdir -p "$root/build"
# proto.c connects through TLS (src/proto/tls.c, src/pki) once the tree has it
tls=()
if [ -f "$root/src/proto/tls.c" ]; then tls=("$root/src/proto/tls.c" "$root/src/pki/pki.c" -lssl -lcrypto); fi
# --wrap: the target counts what fm_files_recv writes (tests/fuzz/fuzz_proto.c)
clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I"$root/src" -I/usr/include/json-c \
  -Wl,--wrap=fm_write_all \
  "$root/tests/fuzz/fuzz_proto.c" "$root/src/proto/proto.c" "$root/src/util/util.c" "$root/src/util/netns.c" \
  "$root/src/util/spawn.c" "$root/src/util/cancel.c" "$root/src/transfer/files.c" "$root/src/memory/pagestore.c" \
  "$root/src/memory/pagestream.c" "$root/src/memory/pagerelay.c" "$root/src/image/store.c" "$root/src/image/digest.c" "$root/src/fleet/fleet.c" "$root/src/proto/validate.c" "$root/src/orch/schema.c" "$root/src/plane/options.c" \
  "$root/src/mobility/coverage.c" "$root/src/mobility/trace.c" "$root/src/mobility/planner.c" "$root/src/scenario/scenario.c" "${tls[@]}" \
  -ljson-c -lexpat -lm -lxxhash -llz4 -lpthread -o "$out" ||
  { echo "FAIL: cannot build the fuzzer (libFuzzer missing? run scripts/setup.sh)"; exit 1; }
corpus=$(mktemp -d /tmp/fastmig-corpus.XXXXXX)   # libFuzzer adds to its corpus: not to the repo's
scratch=$(mktemp -d /dev/shm/fastmig-fuzz.XXXXXX) # the target's files (it empties it after each input)
log=$(mktemp /tmp/fastmig-fuzz-log.XXXXXX)
trap 'rm -rf "$corpus" "$scratch" "$log"' EXIT
cp "$root"/tests/fuzz/corpus/* "$corpus"/
# -max_len: the seeds' streams (DATA frames of whole files) are up to ~20 KB,
# mutations may make them 80 KB from the start (-len_control=0: more than the
# target's 64 KiB cap fits in an input). -runs is a ceiling; time bounds it
# (about 45 s of wall time on 2 cores, build included).
rc=0
FASTMIG_FUZZ_DIR=$scratch/t "$out" -max_len=80000 -len_control=0 -max_total_time=40 -runs=5000000 -timeout=10 \
  -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix=/tmp/fastmig-fuzz- \
  "$corpus" >"$log" 2>&1 || rc=$?
grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^Done |^stat::(number_of_executed_units|peak_rss_mb)' "$log" || true
if [ "$rc" -ne 0 ] || ! grep -q '^Done ' "$log"; then
  tail -n 60 "$log"
  echo "FAIL: the fuzzer stopped with status $rc (input kept as /tmp/fastmig-fuzz-{crash,timeout,oom}-*)"
  exit 1
fi
