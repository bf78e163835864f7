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
# A counter kept only in a shell's memory, started by the container's own
# init (a process from lxc-attach could not be dumped): it goes on through a
# migration and starts again from 1 after a restart, so a cold restart on
# the target cannot pass for a migration.
# (first in its inittab: the template's rcS never ends, it keeps udhcpc)
it=$LXC_PATH/own/rootfs/etc/inittab
{ printf '%s\n' "::sysinit:/bin/sh -c 'i=0; while true; do i=\$((i+1)); echo \$i > /tmp/count.new; mv /tmp/count.new /tmp/count; sleep 1; done </dev/null >/dev/null 2>&1 &'"
  cat "$it"; } > "$it.new"
mv "$it.new" "$it"
"$FASTMIG" testbed exec mec1 -- lxc-start -P "$LXC_PATH" -n own
"$FASTMIG" testbed exec mec1 -- lxc-attach -P "$LXC_PATH" -n own -- /bin/sh -c 'echo kept > /root/marker'
count() { "$FASTMIG" testbed exec "$1" -- lxc-attach -P "$2" -n own -- /bin/cat /tmp/count 2>/dev/null || echo 0; }
n0=0
for _ in $(seq 100); do n0=$(count mec1 "$LXC_PATH"); [ "$n0" -ge 4 ] && break; sleep 0.2; done
[ "$n0" -ge 4 ] || fail "own's counter does not count ($n0)"
out=$("$FASTMIG" migrate own --to mec2 --no-probe --json)
echo "$out"
[ "$(jget "$out" ok)" = true ] || fail "migration of own failed"
eval "$("$FASTMIG" testbed env mec2)"
"$FASTMIG" testbed exec mec2 -- lxc-info -P "$LXC_PATH" -n own -s | grep -q RUNNING || fail "own not running on mec2"
"$FASTMIG" testbed exec mec2 -- lxc-attach -P "$LXC_PATH" -n own -- /bin/cat /root/marker | grep -qx kept \
  || fail "file lost"
n1=$(count mec2 "$LXC_PATH")
note "in-memory counter: $n0 before the migration, $n1 after"
[ "$n1" -ge "$n0" ] || fail "own was restarted, not migrated: its counter went from $n0 to $n1"
sleep 1.5
n2=$(count mec2 "$LXC_PATH")
[ "$n2" -gt "$n1" ] || fail "own's counter stopped on mec2 ($n1 -> $n2)"
echo ok
