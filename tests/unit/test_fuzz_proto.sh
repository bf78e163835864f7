# Builds the protocol fuzzer with clang's libFuzzer and runs it for a bounded
# number of inputs (a smoke run in the suite; run it longer by hand:
#   build/fuzz_proto -max_total_time=600 tests/fuzz/corpus).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
command -v clang >/dev/null || { echo "skip: no clang"; exit 77; }
out=$root/build/fuzz_proto
clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I"$root/src" -I/usr/include/json-c \
  "$root/tests/fuzz/fuzz_proto.c" "$root/src/proto/proto.c" "$root/src/util/util.c" "$root/src/util/netns.c" \
  "$root/src/util/spawn.c" "$root/src/transfer/files.c" "$root/src/memory/pagestore.c" \
  "$root/src/memory/pagestream.c" -ljson-c -lxxhash -llz4 -o "$out"
corpus=$(mktemp -d /tmp/fastmig-corpus.XXXXXX)   # libFuzzer adds to its corpus: not to the repo's
trap 'rm -rf "$corpus"' EXIT
cp "$root"/tests/fuzz/corpus/* "$corpus"/
"$out" -runs=200000 -max_len=4096 "$corpus" 2>&1 | tail -n 3
