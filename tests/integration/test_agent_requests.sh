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
PKI=/var/lib/fastmig/testbed/pki
# a host of the fleet that no migration involves, and a fleet of its own
"$FASTMIG" pki issue intruder --role host --dir $PKI >/dev/null
other=$(mktemp -d /tmp/fm-otherfleet.XXXXXX)
trap 'rm -rf "$other"; testbed_clean' EXIT
"$FASTMIG" pki init --dir "$other/pki" --fleet other >/dev/null
"$FASTMIG" pki issue operator --role operator --dir "$other/pki" >/dev/null
ip netns exec fm-core $H tls 10.77.1.2:7070 "$other/pki"
# a port scan of a host: every TCP port that accepts a connection
open=$(ip netns exec fm-core python3 - <<'PY'
import socket
for p in range(1, 65536):
    s = socket.socket(); s.settimeout(0.2)
    if s.connect_ex(("10.77.1.2", p)) == 0:
        print(p)
    s.close()
PY
)
echo "open TCP ports on mec1:" $open
# 7070 (the agent) answers nothing without the fleet's certificate (the
# tls step above), and nothing else listens: rsync comes through the agent
[ "$(echo $open)" = 7070 ] || fail "open ports of mec1: $(echo $open) (expected 7070 only)"
ip netns exec fm-core $H config 10.77.1.2:7070
[ ! -e /var/lib/fastmig/testbed/mec1/lxc/hook ] && [ ! -e /var/lib/fastmig/testbed/mec1/lxc/bind ] \
  || fail "a refused config left a container directory"
[ ! -e /tmp/fm-owned ] || fail "a hook ran"
"$FASTMIG" workload start busybox --host mec1 --name victim >/dev/null
ip netns exec fm-core $H not-incoming 10.77.1.2:7070 victim
"$FASTMIG" testbed exec mec1 -- lxc-info -P /var/lib/fastmig/testbed/mec1/lxc -n victim -s | grep -q RUNNING \
  || fail "victim stopped"
ip netns exec fm-core $H roles 10.77.1.2:7070
ip netns exec fm-core $H prepare 10.77.1.2:7070 incoming
ip netns exec fm-core $H other-peer 10.77.1.2:7070 incoming
[ -e /var/lib/fastmig/testbed/mec1/lxc/incoming ] || fail "another peer removed a prepared container"
# rsync through the agent (fm-rsync-tunnel, as a migration's source runs
# it): the preparing peer writes the prepared tree, confined to it; a tree
# with a symlink to the host's /etc and a destination climbing out of the
# module land inside it; another host's certificate gets nothing
L=/var/lib/fastmig/testbed/mec1/lxc
tree=$(mktemp -d /tmp/fm-rsynctree.XXXXXX)
echo payload > "$tree/fm-probe"; ln -s /etc "$tree/etc-link"
tun() { # CERT DEST [RSYNC OPTIONS]: rsync of $tree through the tunnel
  local cert=$1 dest=$2; shift 2
  ip netns exec fm-core env FASTMIG_PKI=$PKI FASTMIG_CERT=$cert rsync -a --timeout=30 "$@" \
    -e "$FASTMIG_BUILD/fm-rsync-tunnel 10.77.1.2:7070 container incoming rootfs" "$tree/" "fastmig::ct/$dest"
}
tun mec2 "" || fail "rsync by the preparing peer failed"
[ "$(cat $L/incoming/rootfs/fm-probe)" = payload ] || fail "the file did not arrive"
[ "$(readlink $L/incoming/rootfs/etc-link)" = /etc ] || fail "the symlink did not arrive as it was"
tun mec2 ../../escape/ || true
echo pwned > "$tree/fm-probe"
tun mec2 etc-link/ 2>/dev/null || true
[ "$(cat /etc/fm-probe 2>/dev/null)" != pwned ] || fail "rsync wrote through a symlink into the host's /etc"
left=$(find /var/lib/fastmig/testbed -name escape -not -path "$L/incoming/rootfs/*")
[ -z "$left" ] || fail "rsync escaped the container's tree: $left"
if tun intruder "" 2>"$tree.err"; then fail "rsync with another host's certificate went through"; fi
grep -q "being brought by mec2" "$tree.err" || fail "the refusal does not say why: $(cat "$tree.err")"
# a session still writing when the migration ends is ended with it: a slow
# rsync (100 kB/s of a 4 MB file), then abort by the peer that prepared it
head -c 4000000 /dev/urandom > "$tree/big"
tun mec2 "" --bwlimit=100 2>"$tree.err" & slow=$!
sleep 2
ip netns exec fm-core $H abort 10.77.1.2:7070 incoming
for _ in $(seq 50); do kill -0 $slow 2>/dev/null || break; sleep 0.1; done
! kill -0 $slow 2>/dev/null || fail "the rsync session outlived the abort"
wait $slow && fail "the slow rsync succeeded across the abort"
! pgrep -f "rsync --server --daemon" >/dev/null || fail "an rsync server outlived the abort: $(pgrep -af 'rsync --server')"
[ ! -e $L/incoming ] || fail "the aborted container's directory came back: $(ls -la $L/incoming)"
ip netns exec fm-core $H prepare 10.77.1.2:7070 incoming
# an image's staging: only files travel into it (no symlink, no device)
D=0123456789abcdef0123456789abcdef
ip netns exec fm-core $H staging 10.77.1.2:7070 $D
mkdir -p "$tree/img"; ln -s /dev/zero "$tree/img/image.sqfs"
rc=0
ip netns exec fm-core env FASTMIG_PKI=$PKI FASTMIG_CERT=mec2 rsync -a --timeout=30 \
  -e "$FASTMIG_BUILD/fm-rsync-tunnel 10.77.1.2:7070 image $D" "$tree/img/" fastmig::ct/ 2>"$tree.err" || rc=$?
# 4: "requested action not supported" (the daemon refuses -l, which -a asks for)
[ $rc -eq 4 ] || fail "a symlink into an image's staging: rsync status $rc, not 4: $(cat "$tree.err")"
[ ! -L /var/lib/fastmig/testbed/mec1/store/.incoming-$D/file/image.sqfs ] || fail "the symlink is there"
rm -rf "$tree" "$tree.err"
ip netns exec fm-core $H abort 10.77.1.2:7070 incoming
[ ! -e /var/lib/fastmig/testbed/mec1/lxc/incoming ] || fail "abort left the prepared container"
ip netns exec fm-core $H flood 10.77.1.2:7070
echo ok
