# Follow Me Edge (docs/MOBILITY.md): users replayed through the testbed's
# cells by `fastmig scenario run', their services followed by the
# orchestrator. A known path on 3 hosts (images ahead, memory-migs, every
# deadline met, the counter and the video stream unbroken); a user who
# leaves its announced path; an RNIS handover announced and then cancelled;
# unknown paths on shared storage (check 0 by each service's tolerance);
# two users crossing (migrations at once).
. "$(dirname "$0")/lib.sh"
testbed_up --hosts 3 --shared-storage --orchestrator >/dev/null
orch_env
SC=$(cd "$(dirname "$0")" && pwd)/scenarios
SHIPPED=$(cd "$(dirname "$0")/../.." && pwd)/scenarios
OUT=/tmp/fm-follow.$$.json
trap 'rm -f "$OUT"; testbed_clean' EXIT

# Every trip twice as fast as its file says (the users move faster, the
# migrations run as they do): shorter, and tighter deadlines.
run() { # scenario file, path: its report in $OUT
  "$FASTMIG" scenario run "$1" --path "$2" --speedup 2 --json >"$OUT" || fail "scenario $(basename "$1") ($2) failed"
}
# check PYTHON: asserts on the report (r), prints what it checked
check() {
  python3 - "$OUT" "$1" <<'PY' || fail "$2: $(python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))))' "$OUT" | head -c 4000)"
import json, sys
r = json.load(open(sys.argv[1]))
hs, us = r["handovers"], {u["user"]: u for u in r["users"]}
def by(user): return [h for h in hs if h["user"] == user]
exec(sys.argv[2])
PY
}

note "a user off its announced path: the plan dropped, handovers as an unknown path"
run "$SC/deviate.json" known
check '
h = by("walker")
assert h[0]["path"] == "known" and h[0]["to"] == "mec2" and h[0]["status"] == "done", h
assert any(x["path"] == "unknown" and x["to"] == "mec1" and x["status"] == "done" for x in h), h
assert not any(x["to"] == "mec3" and x["status"] == "done" for x in h), h
t = us["walker"]["trajectory"]
assert t["state"] == "off_path" or "off its path" in (t["why"] or ""), t
assert us["walker"]["state_kept"] is True, us
print("deviate:", [(x["path"], x["to"], x["status"]) for x in h], t["why"])
' "the deviation"
api GET "/fastmig/v1/handovers?status=dropped"
expect 200 "the dropped handovers"
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert any(x["why"] == "the user left its path" and x["to"] == "mec3" for x in d), d' "$BODY" ||
  fail "no planned handover to mec3 dropped: $BODY"

note "an RNIS handover announced (IN_PREPARATION), then cancelled: the service never lost, back where the user is"
run "$SC/cancel.json" unknown
check '
h = by("turner")
assert h and h[0]["trigger"] == "rnis:IN_PREPARATION" and h[0]["to"] == "mec2", h
assert h[0]["status"] == "cancelled" or any(x["trigger"] == "rnis:back" and x["to"] == "mec1" and x["status"] in ("done", "skipped") for x in h), h
assert us["turner"]["state_kept"] is True, us
print("cancel:", [(x["trigger"], x["to"], x["status"]) for x in h])
' "the cancelled handover"
[ "$("$FASTMIG" list | awk '$1 == "turner" {print $2}')" = "" ] || fail "turner left behind"

note "unknown path on shared storage: shared while the latency test passes, a local strategy once the tolerance is below it"
# the user crosses into b (check 0 passes: 200 ms tolerated), then stays;
# meanwhile its service's tolerance drops below the storage's latency, and
# the user's way back into a is a local-disk migration
"$FASTMIG" scenario run "$SC/shared2.json" --path unknown --speedup 2 --json >"$OUT" &
sc=$!
into_b() { python3 -c 'import json,sys; sys.exit(not any(h["container"] == "sharer" for h in json.loads(sys.argv[1])))' "$BODY"; }
for i in $(seq 1 240); do
  api GET /fastmig/v1/handovers?status=done
  into_b && break
  sleep 0.25
done
into_b || fail "no handover of sharer into b"
api GET /amsi/v1/app_mobility_services
STRICT=$(python3 -c '
import json, sys
s = [x for x in json.loads(sys.argv[1]) if x["fastmig"]["container"] == "sharer"][0]
s["fastmig"]["storageLatencyMs"] = 0.001
del s["fastmig"]["host"]
print(s["appMobilityServiceId"], json.dumps(s))' "$BODY")
api PUT "/amsi/v1/app_mobility_services/${STRICT%% *}" "${STRICT#* }"
expect 200 "lowering sharer's tolerance"
wait $sc || fail "scenario shared2 failed"
check '
h = by("sharer")
assert [(x["to"], x["status"]) for x in h] == [("mec2", "done"), ("mec1", "done")], h
assert h[0]["strategy"] == "shared" and "passed" in " ".join(h[0]["decision_path"]), h[0]
assert h[1]["strategy"] in ("memory", "partial", "full") and "failed" in " ".join(h[1]["decision_path"]), h[1]
assert us["sharer"]["state_kept"], us
print("shared:", [(x["to"], x["strategy"]) for x in h])
' "check 0 by tolerance"

note "two users crossing on 3 hosts: their migrations at once, both services continuous"
"$FASTMIG" scenario run "$SHIPPED/crossing.json" --path unknown --speedup 3 --json >"$OUT" || fail "scenario crossing failed"
check '
e, w = by("east"), by("west")
assert [x["to"] for x in e] == ["mec2", "mec3"] and [x["to"] for x in w] == ["mec2", "mec1"], (e, w)
assert all(x["status"] == "done" for x in e + w), hs
# each pair of handovers at the same crossing ran at the same time
for a, b in zip(e, w):
    assert a["started"] < b["ended"] and b["started"] < a["ended"], (a, b)
assert us["east"]["state_kept"] and us["west"]["state_kept"] and us["west"]["stream_kept"] is True, us
print("crossing:", [(x["user"], x["to"], x["started"], x["ended"]) for x in hs])
' "the crossing"

note "a known path on 3 hosts: images placed ahead, memory-migs, deadlines met, state and stream kept"
# last: the services are new, so their first freeze moments go by the
# fleet's switches (the trips above, on this machine as loaded as it is
# now), as on a fleet that has run before; docs/MOBILITY.md measures what a
# fleet without any history risks on a busy host
# The trips above left the apps' images on mec2 and mec3: removed, so that
# the follower places them ahead again (and removes what it placed).
for h in mec2 mec3; do
  for im in $("$FASTMIG" image list --host $h --json | python3 -c '
import json, sys
print(" ".join(i["digest"] for i in json.load(sys.stdin)["images"] if i["name"] in ("blank", "video")))'); do
    "$FASTMIG" image rm "$im" --host $h >/dev/null || fail "removing image $im from $h"
  done
done
# in real time: a handover's migration (its hold, then the target's settle
# and the source's cleanup) must end before the next one, 12 s later, starts
"$FASTMIG" scenario run "$SC/known3.json" --path known --json >"$OUT" || fail "scenario known3 failed"
check '
for u in ("car", "bus"):
    h = by(u)
    assert [(x["from"], x["to"]) for x in h] == [("mec1", "mec2"), ("mec2", "mec3")], (u, h)
    for x in h:
        assert x["status"] == "done" and x["path"] == "known", x
        assert x["image"]["action"] in ("placed", "present", "removed"), x["image"]
        assert x["strategy"] == "memory" and "check 1: the app image is on" in " ".join(x["decision_path"]), x
        assert x["deadline_met"] is True and x["switched"] <= x["deadline"], x
        assert x["planned_start"] < x["deadline"], x
    assert us[u]["state_kept"] is True and us[u]["deadline_misses"] == 0, us[u]
    assert us[u]["availability"] > 0.97 and us[u]["follow_ratio"] > 0.9, us[u]
assert us["bus"]["stream_kept"] is True, us["bus"]
assert us["car"]["trajectory"]["state"] == "ended", us["car"]
print("known: %s" % [(x["user"], x["to"], x["deadline"] - x["switched"]) for x in hs])
' "the known path"
"$FASTMIG" image list --host mec2 --json | python3 -c '
import json, sys
names = [i["name"] for i in json.load(sys.stdin)["images"]]
assert "blank" not in names and "video" not in names, names' || fail "the images placed ahead stay on mec2, which both services left"
echo "PASS"
