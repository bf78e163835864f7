# Pre-copy with the content-hash tracker: rounds while the service runs, a
# final frozen dump of which only what changed travels whole, and the
# workload's own page check after it. Also a workload that rewrites pages
# faster than the link carries: the no-progress rule fires and the migration
# is still correct. And compression, and the plain stop-and-copy path.
. "$(dirname "$0")/lib.sh"
testbed_up
"$FASTMIG" workload start memory --host mec1 --name pc --size-mib 64 --dirty-mib-s 1
out=$("$FASTMIG" migrate pc --to mec2 --mode precopy --json)
echo "$out"
[ "$(jget "$out" ok)" = true ] || fail "pre-copy migration failed"
[ "$(jget "$out" mode)" = precopy ] && [ "$(jget "$out" tracker)" = hash ] || fail "mode/tracker not reported"
[ "$(jget "$out" restore)" = lazy ] || fail "restore is not lazy by default: $(jget "$out" restore)"
# the final dump is lazy by default too: the memory stayed in the frozen
# tasks and the target's daemon asked for all of it (64 MiB: 16384 pages
# and the few the service's own mappings add), nearly all as references
[ "$(jget "$out" dump)" = lazy ] || fail "dump is not lazy by default: $(jget "$out" dump)"
[ "$(jget "$out" lazy_pages)" -ge 16384 ] || fail "the target asked for $(jget "$out" lazy_pages) pages"
for h in mec1 mec2; do
  [ ! -e /var/lib/fastmig/testbed/$h/images/.pc.ps ] || fail "page-server socket left on $h"
done
[ ! -e /var/lib/fastmig/testbed/mec2/images/.pc.lazy ] || fail "lazy marker left on the target"
[ "$(jget "$out" memory_verified)" = true ] || fail "memory not verified"
[ "$(jget "$out" state_continuous)" = true ] || fail "state lost"
python3 - "$out" <<'PY' || fail "rounds or final round implausible"
import json, sys
d = json.loads(sys.argv[1])
r = d["rounds"]
assert len(r) >= 1, r
assert r[0]["pages_sent"] >= 16000, r[0]            # the first round carries the 64 MiB
assert all(k in r[0] for k in ("pages_scanned", "pages_sent", "bytes", "ms", "stall_ms")), r[0]
assert d["stop_rule"] in ("dirty_threshold", "max_rounds", "no_progress"), d["stop_rule"]
assert d["final_pages"] < 16384 * 0.05, d["final_pages"]   # the final round: under 5% of the pages whole
assert d["final_bytes"] < 0.05 * (64 << 20), d["final_bytes"]
PY
# back again, pre-copy once more, with the eager restore (all memory in
# place before the service resumes)
out=$("$FASTMIG" migrate pc --to mec1 --mode precopy --restore eager --json)
[ "$(jget "$out" ok)" = true ] && [ "$(jget "$out" memory_verified)" = true ] || fail "second pre-copy"
[ "$(jget "$out" restore)" = eager ] || fail "--restore eager not honoured"
[ "$(jget "$out" dump)" = full ] || fail "an eager restore took a lazy dump"
# and lazily again from a full dump (the target's daemon on its own images)
out=$("$FASTMIG" migrate pc --to mec2 --dump full --json)
[ "$(jget "$out" ok)" = true ] && [ "$(jget "$out" memory_verified)" = true ] || fail "lazy restore of a full dump"
[ "$(jget "$out" dump)" = full ] && [ "$(jget "$out" restore)" = lazy ] || fail "--dump full not honoured"
out=$("$FASTMIG" migrate pc --to mec1 --dump lazy --json)
[ "$(jget "$out" ok)" = true ] && [ "$(jget "$out" memory_verified)" = true ] && [ "$(jget "$out" dump)" = lazy ] ||
  fail "--dump lazy"

# compressible memory (half of every page one repeated word): LZ4, the
# default, about halves what travels; stop-and-copy raw (no page encoding,
# no compression, eager restore) carries all of it and is still correct
"$FASTMIG" workload start memory --host mec1 --name cz --size-mib 32 --fill half
out=$("$FASTMIG" migrate cz --to mec2 --mode stopcopy --json)
echo "$out"
[ "$(jget "$out" ok)" = true ] && [ "$(jget "$out" memory_verified)" = true ] || fail "stop-and-copy with lz4"
[ "$(jget "$out" compress)" = lz4 ] || fail "lz4 is not the default"
[ "$(jget "$out" bytes_wire)" -lt $(( (32 << 20) * 6 / 10 )) ] || fail "lz4 did not shrink the stream: $(jget "$out" bytes_wire)"
out=$("$FASTMIG" migrate cz --to mec1 --mode stopcopy --compress none --restore eager --json)
[ "$(jget "$out" ok)" = true ] && [ "$(jget "$out" memory_verified)" = true ] || fail "raw stop-and-copy"
[ "$(jget "$out" compress)" = none ] && [ "$(jget "$out" final_bytes)" = null ] || fail "raw stop-and-copy paged"
[ "$(jget "$out" bytes_wire)" -gt $((32 << 20)) ] || fail "raw stop-and-copy sent less than the memory"

# faster than the link: 32 MiB rewritten at 400 MiB/s over 1000 Mbit/s
"$FASTMIG" workload start memory --host mec1 --name hot --size-mib 32 --dirty-mib-s 400
out=$("$FASTMIG" migrate hot --to mec2 --mode precopy --max-rounds 10 --json)
echo "$out"
[ "$(jget "$out" ok)" = true ] || fail "non-converging migration failed"
[ "$(jget "$out" stop_rule)" = no_progress ] || fail "no-progress rule did not fire: $(jget "$out" stop_rule)"
[ "$(jget "$out" memory_verified)" = true ] && [ "$(jget "$out" state_continuous)" = true ] || fail "non-converging: state"
[ ! -e /var/lib/fastmig/testbed/mec2/images/.hot.pagestore ] || fail "page store left on the target"
echo ok
