# The shared volume cut off from one host during a migration by the shared
# strategy (the rootfs on GlusterFS, only the memory moves), at the moments
# the test hook pause_AT holds it (docs/RECOVERY.md): the service ends up
# running on exactly one host, its traffic goes there, its state went on,
# and once the volume is back it answers with the file written before the
# freeze. The cut is real: the host's link to the storage drops its packets.
. "$(dirname "$0")/lib.sh"
testbed_up --shared-storage --test-hooks
"$FASTMIG" workload start blank --host mec1 --name svc --shared
same_boot svc

# migrate svc by the shared strategy from $1 to $2, held at $3
start_shared() {
  c=$("$FASTMIG" workload write svc "before-$3")
  from_lines=$(log_lines "$1")
  "$FASTMIG" migrate svc --to "$2" --stay-shared --storage-latency-ms 200 --json --inject-failure "pause_$3" \
    >/tmp/fm-crash-out.$$ 2>/tmp/fm-crash-err.$$ &
  cli=$!
  wait_log "$1" "$from_lines" "svc paused at $3"
}
# the volume back on host $1: its client reconnects a few seconds after the
# link returns (until then a migration is refused by the latency test)
storage_back() {
  local i d
  "$FASTMIG" testbed storage restore --host "$1"
  eval "$("$FASTMIG" testbed env "$1")"
  d=$FASTMIG_SHARED/.crash-test-$$
  for i in $(seq 1 60); do
    timeout 3 mkdir "$d" 2>/dev/null && rmdir "$d" && return 0
    sleep 1
  done
  fail "the volume did not come back on $1"
}
show() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print({k: d.get(k) for k in ("ok","rolled_back","strategy","frozen_ms","error")})' /tmp/fm-crash-out.$$ || cat /tmp/fm-crash-err.$$; }

note "the source's volume cut in the pre-copy rounds: its final flush fails within its deadline, it rolls back, and answers once the volume is back"
start_shared mec1 mec2 rounds
"$FASTMIG" testbed storage cut --host mec1
wait $cli && fail "the migration succeeded with the source's volume cut"
show
[ "$(jget "$(cat /tmp/fm-crash-out.$$)" rolled_back)" = true ] || fail "not rolled back"
storage_back mec1
one_copy_on svc mec1 mec2 before-rounds

note "the target's volume cut while the source is frozen: the restore cannot read the rootfs, the migration rolls back to the source"
start_shared mec1 mec2 frozen
"$FASTMIG" testbed storage cut --host mec2
t0=$(date +%s)
wait $cli && fail "the migration succeeded with the target's volume cut"
show
note "the service ran on mec1 again $(($(date +%s) - t0)) s after the cut"
[ "$(freezer_state mec1 svc)" = THAWED ] || fail "mec1's copy is not running: $(freezer_state mec1 svc)"
storage_back mec2
wait_recovered mec1
one_copy_on svc mec1 mec2 before-frozen

note "the target's volume cut once it runs the copy: the migration commits (the copy waits for its files), and the service answers on mec2 once the volume is back"
start_shared mec1 mec2 restored
"$FASTMIG" testbed storage cut --host mec2
wait $cli || true # its probe of the service may wait for the volume
show
storage_back mec2
wait_recovered mec1
one_copy_on svc mec2 mec1 before-restored

note "the source's volume cut after the commit was recorded: the source copy goes all the same, the service runs on mec1"
start_shared mec2 mec1 committed
"$FASTMIG" testbed storage cut --host mec2
wait $cli || fail "the committed migration failed: $(show)"
show
wait_recovered mec2
storage_back mec2
one_copy_on svc mec1 mec2 before-committed

note "and a migration after all that works"
out=$("$FASTMIG" migrate svc --to mec2 --stay-shared --storage-latency-ms 200 --json)
[ "$(jget "$out" ok)" = true ] && [ "$(jget "$out" state_continuous)" = true ] || fail "clean migration after the cuts"
same_boot svc
rm -f /tmp/fm-crash-out.$$ /tmp/fm-crash-err.$$
echo ok
