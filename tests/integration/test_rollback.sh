# Failures injected during a migration (the agents' --test-hooks switch): the
# migration exits non-zero and says why, the service answers from the source
# with its state, the target keeps nothing, the route points at the source.
. "$(dirname "$0")/lib.sh"
testbed_up --test-hooks
"$FASTMIG" workload start busybox --host mec1 --name rb
same_boot rb
for phase in restore steer transfer dump; do
  c0=$("$FASTMIG" workload write rb before-$phase)
  set +e
  out=$("$FASTMIG" migrate rb --to mec2 --json --inject-failure $phase 2>/tmp/fm-rb.$$)
  rc=$?
  set -e
  echo "$out"
  [ $rc -ne 0 ] || fail "$phase: exit status 0 on a failed migration"
  grep -q "injected" /tmp/fm-rb.$$ || fail "$phase: no reason given: $(cat /tmp/fm-rb.$$)"
  [ "$(jget "$out" ok)" = false ] && [ "$(jget "$out" rolled_back)" = true ] || fail "$phase: not rolled back"
  # the probe watched it all: the source answered again, same boot, counter on from the freeze
  [ "$(jget "$out" state_continuous)" = true ] || fail "$phase: state not kept: $(jget "$out" probe.not_kept)"
  [ "$(jget "$out" probe.answered_after)" -gt 0 ] || fail "$phase: no answer after the rollback"
  same_boot rb
  c1=$("$FASTMIG" workload write rb after-$phase)
  [ "$c1" -gt "$c0" ] || fail "$phase: the service lost its state ($c0 -> $c1)"
  "$FASTMIG" list | grep -q "rb *mec1 *RUNNING" || fail "$phase: not running on mec1"
  ! "$FASTMIG" list | grep -q "mec2" || fail "$phase: something left on mec2"
  [ -z "$(ls -A /var/lib/fastmig/testbed/mec2/images/)" ] || fail "$phase: images left on mec2"
  # the dump, armed before the freeze, is gone with its gate
  [ -z "$(ls -A /var/lib/fastmig/testbed/mec1/images/)" ] ||
    fail "$phase: left on mec1: $(ls -A /var/lib/fastmig/testbed/mec1/images/)"
  ! pgrep -f "lxc-checkpoint .*-n rb " >/dev/null || fail "$phase: an lxc-checkpoint of rb still runs"
  ip netns exec fm-core ip route get 10.78.0.10 | grep -q "via 10.77.1.2" || fail "$phase: route not on mec1"
  [ "$(cat /var/lib/fastmig/testbed/mec1/lxc/rb/rootfs/data/before-$phase)" = "$c0" ] || fail "$phase: file lost"
done
rm -f /tmp/fm-rb.$$
# and after all that, a real migration still works
out=$("$FASTMIG" migrate rb --to mec2 --json)
[ "$(jget "$out" ok)" = true ] && [ "$(jget "$out" state_continuous)" = true ] || fail "clean migration after rollbacks"
same_boot rb
echo ok
