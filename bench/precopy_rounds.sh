#!/bin/bash
# Sweeps pre-copy's round controls on the memory workload, to choose their
# defaults: the dirty threshold (pages; the final dump starts once a round
# sends no more) at a few dirty rates, the round limit at a dirty rate the
# link cannot keep up with, and the no-progress share (min_shrink) at dirty
# rates close to what the link carries. Prints median downtime, total time and rounds
# per setting, and which stop rule fired. Uses the testbed that is up, or
# builds one (and takes it down again).
#   bench/precopy_rounds.sh            (RUNS=3 SIZE=256 by default)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
FASTMIG=${FASTMIG:-$here/../build/fastmig}
RUNS=${RUNS:-3}
SIZE=${SIZE:-256}
own=0
if ! "$FASTMIG" testbed status >/dev/null 2>&1; then
  "$FASTMIG" testbed up >/dev/null
  own=1
fi
cleanup() {
  "$FASTMIG" workload destroy $name >/dev/null 2>&1 || true
  [ $own = 1 ] && "$FASTMIG" testbed down >/dev/null 2>&1 || true
}
trap cleanup EXIT

name=rounds
results=$(mktemp)
run_case() { # rate threshold max_rounds [min_shrink]
  for i in $(seq "$RUNS"); do
    h=$("$FASTMIG" list | awk -v n=$name '$1==n{print $2}')
    t=mec2; [ "$h" = mec2 ] && t=mec1
    out=$("$FASTMIG" migrate $name --to $t --dirty-threshold "$2" --max-rounds "$3" --min-shrink "${4:-0.9}" --json) ||
      { echo "precopy_rounds: migration failed: $out" >&2; exit 1; }
    echo "$1 $2 $3 ${4:-0.9} $out" >>"$results"
  done
}
start() { # rate
  "$FASTMIG" workload destroy $name >/dev/null 2>&1 || true
  "$FASTMIG" workload start memory --host mec1 --name $name --size-mib "$SIZE" --dirty-mib-s "$1" >/dev/null
}
for rate in 1 10; do
  start $rate
  for thr in 64 256 1024 4096; do run_case $rate $thr 8; done
done
start 200
for mr in 2 4 8 16; do run_case 200 1024 $mr; done
# the no-progress share, at dirty rates close to what the link carries
for rate in 60 100; do
  start $rate
  for ms in 0.5 0.75 0.9 1.0; do run_case $rate 1024 16 $ms; done
done

python3 - "$results" "$SIZE" "$RUNS" <<'PY'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    rate, thr, mr, ms, js = line.split(" ", 4)
    d = json.loads(js)
    assert d["ok"] and d["memory_verified"], d
    rows.setdefault((float(rate), int(thr), int(mr), float(ms)), []).append(d)
print(f"memory workload {sys.argv[2]} MiB, {sys.argv[3]} runs each (medians)")
print(f"{'MiB/s':>6} {'threshold':>9} {'max_rounds':>10} {'min_shrink':>10} {'downtime_ms':>11} {'total_ms':>9} {'rounds':>6} {'final_MB':>8}  stop_rule")
for (rate, thr, mr, ms), ds in rows.items():
    med = lambda k: statistics.median(x[k] for x in ds)
    rules = ",".join(sorted({x["stop_rule"] for x in ds}))
    print(f"{rate:6g} {thr:9d} {mr:10d} {ms:10g} {med('downtime_ms'):11.1f} {med('total_ms'):9.1f} "
          f"{statistics.median(len(x['rounds']) for x in ds):6g} {med('final_bytes')/1e6:8.2f}  {rules}")
PY
rm -f "$results"
