# Builds the protocol fuzzer with clang's libFuzzer and runs it for a bounded
# number of inputs (a smoke run in the suite; run it longer by hand:
#   build/fuzz_proto -max_total_time=600 tests/fuzz/corpus).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
# clang and its libFuzzer come with scripts/setup.sh like every other
# dependency: without them this is a failure, not a skip.
command -v clang >/dev/null || { echo "FAIL: clang missing: run scripts/setup.sh"; exit 1; }
out=$root/build/fuzz_proto
clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I"$root/src" -I/usr/include/json-c \
  "$root/tests/fuzz/fuzz_proto.c" "$root/src/proto/proto.c" "$root/src/util/util.c" "$root/src/util/netns.c" \
  "$root/src/util/spawn.c" "$root/src/transfer/files.c" "$root/src/memory/pagestore.c" \
  "$root/src/memory/pagestream.c" -ljson-c -lxxhash -llz4 -o "$out" ||
  { echo "FAIL: cannot build the fuzzer (libFuzzer missing? run scripts/setup.sh)"; exit 1; }
corpus=$(mktemp -d /tmp/fastmig-corpus.XXXXXX)   # libFuzzer adds to its corpus: not to the repo's
trap 'rm -rf "$corpus"' EXIT
cp "$root"/tests/fuzz/corpus/* "$corpus"/
"$out" -runs=200000 -max_len=4096 "$corpus" 2>&1 | tail -n 3
