#!/bin/bash
# What encryption costs a migration: the same migrations with fastmig's
# normal build (TLS 1.3 on every connection) and with a benchmark build
# whose connections are authenticated by the same handshake and then carry
# their data in clear (meson -Dbench_cleartext=true, in build-clear; never
# for a fleet). Alternating builds, each round on a fresh testbed of its own:
#   blank (Debian 12 clone): full-mig mec1 -> mec2 (base and app images and
#     the upper layer travel with rsync through the agent), then memory-mig
#     back; downtime and the image stream's rate;
#   memory 1 GiB (random pages, not compressible): pre-copy there and back;
#     downtime and the first round's page stream rate.
# Prints the medians per build and the ratio TLS / clear.
#   bench/tls_migration.sh            (ROUNDS=3; make bench-tls-migration)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ROUNDS=${ROUNDS:-3}
SIZE=${SIZE:-1024}
declare -A bin=([tls]=$root/build [clear]=$root/build-clear)
for b in tls clear; do
  [ -x "${bin[$b]}/fastmig" ] || { echo "tls_migration: ${bin[$b]}/fastmig missing (make bench-tls-migration builds both)" >&2; exit 1; }
done
"$root/build/fastmig" testbed status >/dev/null 2>&1 &&
  { echo "tls_migration: a testbed is up; take it down first" >&2; exit 1; }
out=$(mktemp)
cur=
trap '[ -n "$cur" ] && "$cur/fastmig" testbed down >/dev/null 2>&1; rm -f "$out"' EXIT

# one line per migration: build kind direction strategy downtime_ms rate_MBps
record() { # build kind dir json
  python3 - "$@" >>"$out" <<'PY'
import json, sys
b, kind, d, js = sys.argv[1:5]
r = json.loads(js)
if not r.get("ok") or not r.get("state_continuous"):
    sys.exit("tls_migration: %s %s %s failed: %s" % (b, kind, d, r.get("error")))
rate = 0.0
if kind == "blank":  # the disk phase while the service runs: images and the upper layer
    ms = r["phases"]["disk_live"]
    rate = r["bytes_disk"]["total"] / 1e6 / (ms / 1e3) if ms > 0 else 0
else:               # the first pre-copy round: all the pages, as a stream
    r1 = r["rounds"][0]
    rate = r1["bytes"] / 1e6 / (r1["ms"] / 1e3) if r1["ms"] > 0 else 0
print(b, kind, d, r["strategy"], "%.1f" % r["downtime_ms"], "%.1f" % rate, r["bytes_disk"]["total"] if kind == "blank" else r["rounds"][0]["bytes"])
PY
}

for round in $(seq "$ROUNDS"); do
  order="tls clear"; [ $((round % 2)) = 0 ] && order="clear tls"
  for b in $order; do
    cur=${bin[$b]}
    F="$cur/fastmig"
    echo "tls_migration: round $round/$ROUNDS, $b build" >&2
    "$F" testbed up >/dev/null 2>&1
    "$F" image build blank --host mec1 >/dev/null 2>&1
    "$F" workload start blank --host mec1 --name tb >/dev/null
    record $b blank there "$("$F" migrate tb --to mec2 --json)"
    record $b blank back "$("$F" migrate tb --to mec1 --json)"
    "$F" workload start memory --host mec1 --name tm --size-mib "$SIZE" --dirty-mib-s 1 >/dev/null
    record $b memory there "$("$F" migrate tm --to mec2 --json)"
    record $b memory back "$("$F" migrate tm --to mec1 --json)"
    "$F" testbed down >/dev/null 2>&1
    cur=
  done
done

python3 - "$out" "$ROUNDS" "$SIZE" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
def vals(b, kind, d, col):
    return [float(r[col]) for r in rows if r[0] == b and r[1] == kind and r[2] == d]
def med(b, kind, d, col):
    v = vals(b, kind, d, col)
    return statistics.median(v) if v else float("nan")
def span(b, kind, d, col):
    v = vals(b, kind, d, col)
    return "%.0f-%.0f" % (min(v), max(v)) if v else "-"
print("What encryption costs a migration: %s rounds, builds alternating, 2-host testbed, 1 Gbit/s links" % sys.argv[2])
print("median (min-max) of each; the ratio is of the medians")
print("%-38s %20s %20s %9s" % ("", "clear", "TLS", "TLS/clear"))
for kind, d, label in (("blank", "there", "blank full-mig"), ("blank", "back", "blank memory-mig"),
                       ("memory", "there", "memory %s MiB pre-copy" % sys.argv[3]), ("memory", "back", "memory %s MiB back" % sys.argv[3])):
    for col, what in ((4, "downtime ms"), (5, "stream MB/s")):
        if kind == "blank" and d == "back" and col == 5:
            continue  # memory-mig: the upper layer's few kB, no stream to speak of
        c, t = med("clear", kind, d, col), med("tls", kind, d, col)
        cs = "%.1f (%s)" % (c, span("clear", kind, d, col))
        ts = "%.1f (%s)" % (t, span("tls", kind, d, col))
        print("%-38s %20s %20s %9.2f" % (label + ", " + what, cs, ts, t / c if c else float("nan")))
print("(stream: blank's rsync of images and upper layer while the service runs; memory's first pre-copy round)")
PY
