# testbed up builds hosts, links and agents; down leaves nothing behind;
# up on a half-built testbed refuses clearly.
. "$(dirname "$0")/lib.sh"
testbed_up --hosts 3 --link-mbit 500
"$FASTMIG" testbed status | tee /tmp/fm-status.$$
grep -q "mec3 .*agent up" /tmp/fm-status.$$ || fail "mec3 agent not up"
rm -f /tmp/fm-status.$$
ip netns exec fm-core tc qdisc show dev mec2 | grep -q "tbf.*rate 500Mbit" || fail "core-mec2 link not shaped"
ip netns exec fm-mec1 tc qdisc show dev eth0 | grep -q "tbf.*rate 500Mbit" || fail "mec1 uplink not shaped"
eval "$("$FASTMIG" testbed env mec2)"
[ "$FASTMIG_NETNS" = fm-mec2 ] && [ -d "$LXC_PATH" ] || fail "testbed env: $FASTMIG_NETNS $LXC_PATH"
"$FASTMIG" testbed exec mec2 -- ip -4 addr show eth0 | grep -q 10.77.2.2 || fail "exec does not run in mec2"
# the image tmpfs is there
grep -q " /var/lib/fastmig/testbed/mec1/images tmpfs" /proc/mounts || fail "no images tmpfs"
# a second up refuses
if "$FASTMIG" testbed up 2>/tmp/fm-err.$$; then fail "second up succeeded"; fi
grep -q "already here" /tmp/fm-err.$$ || fail "unclear refusal: $(cat /tmp/fm-err.$$)"
# a container, so that down has something to stop, migrated once so that
# LXC and CRIU leave cgroups of two names behind
"$FASTMIG" workload start busybox --host mec1 --name tb1
"$FASTMIG" migrate tb1 --to mec2 >/dev/null

check_nothing_left() {
  ! ls /run/netns 2>/dev/null | grep -q '^fm-' || fail "namespaces left: $(ls /run/netns)"
  ! grep -q /var/lib/fastmig/testbed /proc/mounts || fail "mounts left"
  [ ! -e /var/lib/fastmig/testbed ] || fail "state dir left"
  [ ! -e /run/fastmig/testbed.json ] || fail "state file left"
  # live processes only (the sandbox's init may not reap zombies)
  for p in $(pgrep -f 'fastmigd|fm-seqecho|rsync' || true); do
    st=$(awk '{print $3}' /proc/$p/stat 2>/dev/null || echo Z)
    [ "$st" = Z ] || fail "process left: $(cat /proc/$p/cmdline | tr '\0' ' ')"
  done
  ! ip link | grep -q ' fm-' || fail "links left in the root namespace"
  ! ls /sys/fs/cgroup/*/ 2>/dev/null | grep -q '^lxc\.payload\.tb1' || fail "cgroups of tb1 left"
}
"$FASTMIG" testbed down
check_nothing_left

# half-built: one namespace of a testbed but no state
ip netns add fm-mec1
if "$FASTMIG" testbed up 2>/tmp/fm-err.$$; then fail "up reused a half-built testbed"; fi
grep -q "fm-mec1" /tmp/fm-err.$$ || fail "refusal does not name what is left: $(cat /tmp/fm-err.$$)"
rm -f /tmp/fm-err.$$
"$FASTMIG" testbed down
check_nothing_left
# bad arguments
if "$FASTMIG" testbed up --hosts 1 2>/dev/null; then fail "--hosts 1 accepted"; fi
if "$FASTMIG" testbed up --link-mbit fast 2>/dev/null; then fail "--link-mbit fast accepted"; fi
check_nothing_left

# An agent started as on a real host: in the host's own namespaces. Its
# private /run (CRIU's feature cache) and its image store's mount stay in a
# mount namespace of its own: the host's mounts are untouched while it runs
# and after it ends.
rh=$(mktemp -d /tmp/fm-realhost.XXXXXX)
mkdir -p "$rh/lxc" "$rh/images" "$rh/state"
before=$(awk '{print $5}' /proc/self/mountinfo | sort | md5sum)
"$FASTMIG" pki init --dir "$rh/pki" --fleet rh >/dev/null
"$FASTMIG" pki issue rh --role host --ip 127.0.0.1 --dir "$rh/pki" >/dev/null
"$FASTMIG" pki issue operator --role operator --dir "$rh/pki" >/dev/null
"$FASTMIG_BUILD/fastmigd" --host rh --listen 127.0.0.1:7199 --lxcpath "$rh/lxc" --images "$rh/images" \
  --state "$rh/state" --store "$rh/store" --pki "$rh/pki" 2>"$rh/log" &
agent=$!
for _ in $(seq 50); do grep -q serving "$rh/log" && break; sleep 0.1; done
grep -q serving "$rh/log" || fail "real-host agent did not start: $(cat "$rh/log")"
FASTMIG_PKI=$rh/pki PYTHONPATH=$(dirname "$0") python3 - <<'PY' || fail "real-host agent does not answer a ping"
from fmtls import call
rep = call("127.0.0.1:7199", {"op": "ping"})
assert rep and rep["ok"], rep
PY
[ "$(awk '{print $5}' /proc/self/mountinfo | sort | md5sum)" = "$before" ] ||
  fail "the agent changed the host's mounts: $(grep -E 'fastmig-run|fm-realhost' /proc/self/mountinfo)"
grep -q " /run .*fastmig-run" "/proc/$agent/mountinfo" || fail "the agent has no private /run"
kill "$agent"; wait "$agent" 2>/dev/null || true
! pgrep -f "$rh/" >/dev/null || fail "a child of the agent outlived it: $(pgrep -af "$rh/")"
[ "$(awk '{print $5}' /proc/self/mountinfo | sort | md5sum)" = "$before" ] || fail "mounts left by the agent"
rm -rf "$rh"
echo ok
