# Two migrations at once into one host, from two sources, of containers of
# one image the target does not have: both succeed with their state, and
# the images travel once (the second migration waits for the staging the
# first one started instead of staging over it).
. "$(dirname "$0")/lib.sh"
testbed_up --hosts 3
"$FASTMIG" workload start blank --host mec1 --name ca >/dev/null
"$FASTMIG" workload start blank --host mec2 --name cb >/dev/null
same_boot ca
same_boot cb
"$FASTMIG" image list --host mec3 | grep -q blank && fail "mec3 has the image already"
ca0=$("$FASTMIG" workload write ca before)
cb0=$("$FASTMIG" workload write cb before)

note "ca mec1 -> mec3 and cb mec2 -> mec3, started together"
"$FASTMIG" migrate ca --to mec3 --json >/tmp/fm-conc-a.$$ 2>&1 &
pa=$!
"$FASTMIG" migrate cb --to mec3 --json >/tmp/fm-conc-b.$$ 2>&1 &
pb=$!
ra=0; wait $pa || ra=$?
rb=0; wait $pb || rb=$?
oa=$(tail -n 1 /tmp/fm-conc-a.$$)
ob=$(tail -n 1 /tmp/fm-conc-b.$$)
rm -f /tmp/fm-conc-a.$$ /tmp/fm-conc-b.$$
for x in "a $ra $oa" "b $rb $ob"; do
  read -r n rc out <<<"$x"
  python3 -c 'import json,sys; d=json.loads(sys.argv[1]); print("   ", d["container"], d["strategy"], "downtime %.0f ms" % d["downtime_ms"], "base", d["bytes_disk"]["base"], "app", d["bytes_disk"]["app"], d.get("error"))' "$out"
  [ "$rc" -eq 0 ] && [ "$(jget "$out" ok)" = true ] || fail "c$n failed: $(jget "$out" error)"
  [ "$(jget "$out" state_continuous)" = true ] || fail "c$n: state not continuous"
done
# the base image went over the link once at most
[ "$(jget "$oa" bytes_disk.base)" = 0 ] || [ "$(jget "$ob" bytes_disk.base)" = 0 ] || fail "the base image travelled twice"
"$FASTMIG" list | grep -q "^ca *mec3 *RUNNING" || fail "ca not on mec3: $("$FASTMIG" list)"
"$FASTMIG" list | grep -q "^cb *mec3 *RUNNING" || fail "cb not on mec3: $("$FASTMIG" list)"
[ "$("$FASTMIG" list | grep -c '^c[ab] ')" -eq 2 ] || fail "more than one copy: $("$FASTMIG" list)"
same_boot ca
same_boot cb
[ "$("$FASTMIG" workload write ca after)" -gt "$ca0" ] || fail "ca's counter went back"
[ "$("$FASTMIG" workload write cb after)" -gt "$cb0" ] || fail "cb's counter went back"
eval "$("$FASTMIG" testbed env mec3)"
[ "$(cat "$LXC_PATH/ca/upper/data/before" 2>/dev/null || "$FASTMIG" testbed exec mec3 -- lxc-attach -P "$LXC_PATH" -n ca -- cat /data/before)" = "$ca0" ] ||
  fail "ca's file written before the freeze is missing"
echo ok
