# Malformed, oversized and invalid requests to a real agent get clear error
# replies, and the agent keeps serving.
. "$(dirname "$0")/lib.sh"
testbed_up
ip netns exec fm-core "$FASTMIG_BUILD/tests/integration/agent_requests" 10.77.1.2:7070
"$FASTMIG" testbed status | grep -q "mec1 .*agent up" || fail "agent of mec1 gone"
[ ! -e /var/lib/fastmig/testbed/mec1/images/evil ] || fail "refused stream left files"
[ ! -e /var/lib/fastmig/testbed/escape ] || fail "stream escaped its directory"
echo ok
