# Any LXC container that CRIU can checkpoint migrates, not only ours: one made
# with the plain LXC tools (busybox template) on a testbed host. Constraints
# are checked up front with a clear message, and a refused container keeps
# running where it was.
. "$(dirname "$0")/lib.sh"
testbed_up
eval "$("$FASTMIG" testbed env mec1)"
ip netns exec "$FASTMIG_NETNS" lxc-create -P "$LXC_PATH" -n own -t busybox >/dev/null
C=$LXC_PATH/own/config
sed -i "s/lxcbr0/$FASTMIG_BRIDGE/" "$C"
printf 'lxc.net.0.ipv4.address = 10.78.0.50/24\nlxc.net.0.ipv4.gateway = %s\n' "$FASTMIG_GATEWAY" >> "$C"
"$FASTMIG" testbed exec mec1 -- lxc-start -P "$LXC_PATH" -n own
"$FASTMIG" testbed exec mec1 -- lxc-info -P "$LXC_PATH" -n own -s | grep -q RUNNING || fail "own did not start"

# as the template makes it: ttys and an AppArmor line -> refused, nothing touched
set +e
"$FASTMIG" migrate own --to mec2 --no-probe 2>/tmp/fm-own.$$
rc=$?
set -e
[ $rc -ne 0 ] || fail "a container with ttys was migrated"
grep -q "lxc.tty.max must be 0" /tmp/fm-own.$$ || fail "unclear refusal: $(cat /tmp/fm-own.$$)"
rm -f /tmp/fm-own.$$
"$FASTMIG" testbed exec mec1 -- lxc-info -P "$LXC_PATH" -n own -s | grep -q RUNNING || fail "refused container stopped"
[ ! -e /var/lib/fastmig/testbed/mec2/lxc/own ] || fail "refusal left state on mec2"

# fixed as the docs say
"$FASTMIG" testbed exec mec1 -- lxc-stop -k -P "$LXC_PATH" -n own
sed -i -e 's/^lxc.tty.max.*/lxc.tty.max = 0/' -e '/^lxc.apparmor/d' "$C"
echo 'lxc.console.path = none' >> "$C"
"$FASTMIG" testbed exec mec1 -- lxc-start -P "$LXC_PATH" -n own
"$FASTMIG" testbed exec mec1 -- lxc-attach -P "$LXC_PATH" -n own -- /bin/sh -c 'echo kept > /root/marker'
out=$("$FASTMIG" migrate own --to mec2 --no-probe --json)
echo "$out"
[ "$(jget "$out" ok)" = true ] || fail "migration of own failed"
eval "$("$FASTMIG" testbed env mec2)"
"$FASTMIG" testbed exec mec2 -- lxc-info -P "$LXC_PATH" -n own -s | grep -q RUNNING || fail "own not running on mec2"
"$FASTMIG" testbed exec mec2 -- lxc-attach -P "$LXC_PATH" -n own -- /bin/cat /root/marker | grep -qx kept \
  || fail "file lost"
echo ok
