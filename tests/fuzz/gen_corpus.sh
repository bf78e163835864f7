# Rebuilds tests/fuzz/corpus/ with gen_corpus.c (the project's own encoders;
# see that file for what each seed is). Usage: bash tests/fuzz/gen_corpus.sh [DIR]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/build/fuzz_gen_corpus
mkdir -p "$root/build"
# proto.c connects through TLS (src/proto/tls.c, src/pki) once the tree has it
tls=()
if [ -f "$root/src/proto/tls.c" ]; then tls=("$root/src/proto/tls.c" "$root/src/pki/pki.c" -lssl -lcrypto); fi
clang -g -O1 -D_GNU_SOURCE -I"$root/src" -I/usr/include/json-c "$root/tests/fuzz/gen_corpus.c" \
  "$root/src/proto/proto.c" "$root/src/util/util.c" "$root/src/util/netns.c" "$root/src/util/spawn.c" "$root/src/util/cancel.c" \
  "$root/src/transfer/files.c" "$root/src/memory/pagestore.c" "$root/src/memory/pagestream.c" "$root/src/memory/pagerelay.c" \
  "$root/src/image/store.c" "$root/src/image/digest.c" "$root/src/fleet/fleet.c" "$root/src/proto/validate.c" "$root/src/orch/schema.c" "$root/src/plane/options.c" "$root/src/mobility/coverage.c" "$root/src/mobility/trace.c" "$root/src/mobility/planner.c" "$root/src/scenario/scenario.c" "${tls[@]}" -ljson-c -lexpat -lm -lxxhash -llz4 -lpthread -o "$out"
"$out" "${1:-$root/tests/fuzz/corpus}"
