# Malformed, oversized and invalid requests to a real agent get clear error
# replies, and the agent keeps serving; hostile ones (hooks in a config,
# another peer's container, a flood of silent connections) are refused.
. "$(dirname "$0")/lib.sh"
testbed_up
ip netns exec fm-core "$FASTMIG_BUILD/tests/integration/agent_requests" 10.77.1.2:7070
"$FASTMIG" testbed status | grep -q "mec1 .*agent up" || fail "agent of mec1 gone"
[ ! -e /var/lib/fastmig/testbed/mec1/images/evil ] || fail "refused stream left files"
[ ! -e /var/lib/fastmig/testbed/escape ] || fail "stream escaped its directory"
H="python3 $(dirname "$0")/hostile_requests.py"
ip netns exec fm-core $H config 10.77.1.2:7070
[ ! -e /var/lib/fastmig/testbed/mec1/lxc/hook ] && [ ! -e /var/lib/fastmig/testbed/mec1/lxc/bind ] \
  || fail "a refused config left a container directory"
[ ! -e /tmp/fm-owned ] || fail "a hook ran"
"$FASTMIG" workload start busybox --host mec1 --name victim >/dev/null
ip netns exec fm-core $H not-incoming 10.77.1.2:7070 victim
"$FASTMIG" testbed exec mec1 -- lxc-info -P /var/lib/fastmig/testbed/mec1/lxc -n victim -s | grep -q RUNNING \
  || fail "victim stopped"
ip netns exec fm-core $H prepare 10.77.1.2:7070 incoming
ip netns exec fm-mec2 $H other-peer 10.77.1.2:7070 incoming
[ -e /var/lib/fastmig/testbed/mec1/lxc/incoming ] || fail "another peer removed a prepared container"
ip netns exec fm-core $H abort 10.77.1.2:7070 incoming
[ ! -e /var/lib/fastmig/testbed/mec1/lxc/incoming ] || fail "abort left the prepared container"
ip netns exec fm-core $H flood 10.77.1.2:7070
echo ok
