# A live migration mec1 -> mec2 -> mec1 of the blank workload: the service's
# counter goes on, files it wrote before the freeze are there after it, the
# container is an ordinary LXC container on the target, and gone from the source.
. "$(dirname "$0")/lib.sh"
testbed_up
"$FASTMIG" workload start busybox --host mec1 --name svc
same_boot svc
c0=$("$FASTMIG" workload write svc before-first)
note "counter before: $c0"

out=$("$FASTMIG" migrate svc --to mec2 --json)
echo "$out"
[ "$(jget "$out" ok)" = true ] || fail "migration 1 not ok"
[ "$(jget "$out" from)" = mec1 ] && [ "$(jget "$out" to)" = mec2 ] || fail "from/to wrong"
[ "$(jget "$out" state_continuous)" = true ] || fail "state not continuous"
[ "$(jget "$out" rolled_back)" = false ] || fail "rolled back"
for k in downtime_ms frozen_ms total_ms bytes_disk bytes_memory phases.dump phases.restore strategy mode; do
  [ "$(jget "$out" $k)" != None ] || fail "report lacks $k"
done
# CRIU's own account beside ours: its frozen window within ours, its restore
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); c=d["criu"]; f=c["dump"]["frozen_ms"]; r=c["restore"]["restore_ms"]
assert 0 < f <= d["frozen_ms"] and r > 0 and c["dump"]["pages_written"] > 0, c' "$out" || fail "CRIU's stats missing or implausible"
python3 -c "import sys; d=float(sys.argv[1]); f=float(sys.argv[2]); t=float(sys.argv[3]); assert 0 < d < t and 0 < f < t, (d,f,t)" \
  "$(jget "$out" downtime_ms)" "$(jget "$out" frozen_ms)" "$(jget "$out" total_ms)" || fail "implausible times"
# its network namespace is kept by fastmig, outside CRIU's images, and its
# /dev is the rootfs's (no tmpfs for CRIU to tar): nothing but CRIU itself
# ran on either host while it was frozen (the proc connector's account; the
# positive control, an ordinary LXC container, is below)
NETTOOLS='import json,sys; d=json.loads(sys.argv[1]); fp=d["frozen_programs"]
tools=lambda side: [p["program"] for p in fp[side] if p["program"].split("-")[0] in ("ip","iptables","ip6tables","nft","ebtables","arptables")]'
[ "$(jget "$out" netns)" = fastmig ] || fail "the namespace was not kept outside CRIU's images"
python3 -c "$NETTOOLS
assert fp['source'] is not None and fp['target'] is not None, fp
assert any(p['program'] == 'criu' for p in fp['source']) and any(p['program'] == 'criu' for p in fp['target']), fp
assert all(p['program'] == 'criu' for p in fp['source'] + fp['target']), fp" "$out" || fail "programs other than CRIU ran while frozen"
c1=$("$FASTMIG" workload write svc before-second)
note "counter after first migration: $c1"
[ "$c1" -gt "$c0" ] || fail "counter restarted: $c0 -> $c1"

eval "$("$FASTMIG" testbed env mec2)"
[ "$(cat "$LXC_PATH/svc/rootfs/data/before-first")" = "$c0" ] || fail "file written before the freeze missing on mec2"
"$FASTMIG" testbed exec mec2 -- lxc-info -P "$LXC_PATH" -n svc -s | grep -q RUNNING || fail "lxc-info on mec2"
"$FASTMIG" testbed exec mec2 -- lxc-attach -P "$LXC_PATH" -n svc -- /bin/cat /data/before-first | grep -qx "$c0" \
  || fail "lxc-attach on mec2"
eval "$("$FASTMIG" testbed env mec1)"
[ ! -e "$LXC_PATH/svc" ] || fail "source copy not destroyed"

out=$("$FASTMIG" migrate svc --to mec1 --json)
echo "$out"
[ "$(jget "$out" ok)" = true ] && [ "$(jget "$out" state_continuous)" = true ] || fail "migration 2"
c2=$("$FASTMIG" workload write svc after-second)
[ "$c2" -gt "$c1" ] || fail "counter restarted: $c1 -> $c2"
eval "$("$FASTMIG" testbed env mec1)"
[ "$(cat "$LXC_PATH/svc/rootfs/data/before-first")" = "$c0" ] || fail "first file lost on the way back"
[ "$(cat "$LXC_PATH/svc/rootfs/data/before-second")" = "$c1" ] || fail "second file lost"
"$FASTMIG" list | grep -q "svc *mec1 *RUNNING" || fail "list does not show svc on mec1"
ip netns exec fm-core ip route get 10.78.0.10 | grep -q "via 10.77.1.2" || fail "route not back on mec1"

# "kept" means the user saw it kept: a service that the target restores but
# that never answers again (its traffic dropped on the target) is reported
# as not kept, and the migration as failed, though the agents call it done.
"$FASTMIG" workload start busybox --host mec1 --name dead
same_boot dead
dip=$("$FASTMIG" list | awk '$1 == "dead" {print $4}')
ip netns exec fm-mec2 iptables -I FORWARD -d "$dip" -j DROP
set +e; out=$("$FASTMIG" migrate dead --to mec2 --json 2>/tmp/fm-dead.$$); rc=$?; set -e
ip netns exec fm-mec2 iptables -D FORWARD -d "$dip" -j DROP
echo "$out"
[ $rc -ne 0 ] || fail "a service that never answered again: exit 0"
[ "$(jget "$out" state_continuous)" = false ] || fail "a service that never answered again reported kept"
[ "$(jget "$out" probe.answered_after)" = 0 ] || fail "answers counted after the end"
grep -q "did not answer after the migration" /tmp/fm-dead.$$ || fail "no reason given: $(cat /tmp/fm-dead.$$)"
rm -f /tmp/fm-dead.$$
# it did move and keep its state: with the rule gone it answers from mec2
same_boot dead
"$FASTMIG" list | grep -q "dead *mec2 *RUNNING" || fail "dead is not on mec2"
"$FASTMIG" workload destroy dead

# an ordinary LXC container (as a user's own: LXC makes its network and its
# /dev tmpfs): CRIU dumps both, and the report shows the tools it ran while
# frozen
"$FASTMIG" workload start busybox --plain-lxc --host mec1 --name plainlxc
same_boot plainlxc
out=$("$FASTMIG" migrate plainlxc --to mec2 --json)
[ "$(jget "$out" ok)" = true ] && [ "$(jget "$out" state_continuous)" = true ] || fail "plainlxc migration"
[ "$(jget "$out" netns)" = lxc ] || fail "plainlxc: namespace not LXC's"
python3 -c "$NETTOOLS
assert tools('source') and tools('target'), fp
assert any(p['program'] == 'tar' for p in fp['source']), fp" "$out" || fail "the positive control saw no network tool or tar: $out"
"$FASTMIG" workload destroy plainlxc

# an ordinary LXC container after two restores: the plain tools stop it
"$FASTMIG" testbed exec mec1 -- lxc-stop -k -P "$LXC_PATH" -n svc
"$FASTMIG" testbed exec mec1 -- lxc-info -P "$LXC_PATH" -n svc -s | grep -q STOPPED || fail "lxc-stop on mec1"
echo ok
