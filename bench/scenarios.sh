#!/bin/bash
# Follow Me Edge (docs/MOBILITY.md): the highway and crossing scenarios,
# each trip driven as a known path and as an unknown path, in real time, in
# one invocation, each run on a fresh testbed built for it. Per run:
# availability (probe requests answered over the trip), follow ratio,
# handovers, deadline misses, the outage per trip (the handovers' summed
# downtime, and the probe requests never answered times their 1 ms), bytes
# moved; then known against unknown.
#   bench/scenarios.sh            (make bench-scenario; SPEEDUP=2 for a quicker look)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
fastmig=$root/build/fastmig
SPEEDUP=${SPEEDUP:-1}
SCENARIOS=${SCENARIOS:-"highway crossing"}
"$fastmig" testbed status >/dev/null 2>&1 &&
  { echo "bench-scenario: a testbed is up; take it down first (each run builds its own)" >&2; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
for s in $SCENARIOS; do
  for p in known unknown; do
    echo "bench-scenario: $s, $p path (speed-up $SPEEDUP)" >&2
    "$fastmig" scenario run "$root/scenarios/$s.json" --path "$p" --speedup "$SPEEDUP" --json >"$dir/$s-$p.json"
  done
done
python3 - "$dir" "$SPEEDUP" $SCENARIOS <<'PY'
import json, os, sys
d, speedup, names = sys.argv[1], sys.argv[2], sys.argv[3:]
print(f"Follow Me Edge on the testbed (1000 Mbit/s links), real time x{speedup}: the same trips as a known and an unknown path")
print(f"{'scenario':9} {'path':7} {'user':6} {'handovers':>9} {'misses':>6} {'availability':>12} {'follow':>8} "
      f"{'downtime sum ms':>15} {'unanswered ms':>13} {'longest ms':>10} {'MB moved':>9} {'strategies':>18}")
rows = {}
for n in names:
    for p in ("known", "unknown"):
        r = json.load(open(os.path.join(d, f"{n}-{p}.json")))
        for u in r["users"]:
            hs = [h for h in r["handovers"] if h["user"] == u["user"]]
            down = sum(h["downtime_ms"] or 0 for h in hs)
            lost = u["probes_sent"] - u["probes_answered"]
            strat = ",".join(sorted(set(h["strategy"] or "-" for h in hs)))
            rows[(n, p, u["user"])] = (u, down, lost)
            print(f"{n:9} {p:7} {u['user']:6} {u['handovers']:9d} {u['deadline_misses']:6d} {100 * u['availability']:11.3f}% "
                  f"{100 * u['follow_ratio']:7.2f}% {down:15.0f} {lost:13d} {u['longest_outage_ms']:10.0f} "
                  f"{u['bytes_moved'] / 1e6:9.1f} {strat:>18} {'' if u['state_kept'] else 'STATE LOST'}")
print("known / unknown:")
for (n, p, user), (u, down, lost) in sorted(rows.items()):
    if p != "known" or (n, "unknown", user) not in rows:
        continue
    v, vdown, vlost = rows[(n, "unknown", user)]
    ratio = lambda a, b: f"{a / b:.2f}" if b else "-"
    print(f"  {n} {user}: follow ratio {100 * u['follow_ratio']:.2f}% vs {100 * v['follow_ratio']:.2f}%, "
          f"unanswered {ratio(lost, vlost)}x, bytes {ratio(u['bytes_moved'], v['bytes_moved'])}x, "
          f"downtime sum {ratio(down, vdown)}x")
hw = [rows[k][0] for k in rows if k[0] == "highway" and k[1] == "known"]
if hw:
    u = hw[0]
    print(f"goals on the highway, known path: every deadline met: {'yes' if u['deadline_misses'] == 0 else 'NO'}; "
          f"availability >= 99.9%: {'yes' if u['availability'] >= 0.999 else 'NO'} ({100 * u['availability']:.3f}%); "
          f"follow ratio >= 99%: {'yes' if u['follow_ratio'] >= 0.99 else 'NO'} ({100 * u['follow_ratio']:.2f}%)")
PY
