# Whoever dies during a migration, the service ends up running on exactly
# one host, its traffic goes there, and its state went on (docs/RECOVERY.md).
# The real processes are killed (SIGKILL) at a moment a test hook holds the
# migration (pause_frozen: dumped and steered; pause_restored: the target
# runs it; pause_committed: the commit is recorded; pause_planned: the
# target prepared, nothing frozen), then restarted as a supervisor would.
. "$(dirname "$0")/lib.sh"
testbed_up --test-hooks
ST=/var/lib/fastmig/testbed
"$FASTMIG" workload start busybox --host mec1 --name svc
same_boot svc

log_lines() { wc -l < "$ST/$1/state/agent.log"; }
# waits until host $1's agent log, after line $2, has $3
wait_log() {
  local i
  for i in $(seq 1 900); do
    tail -n +"$(($2 + 1))" "$ST/$1/state/agent.log" | grep -q "$3" && return 0
    sleep 0.1
  done
  fail "$1's agent never logged \`$3'"
}
# waits until no journal is left on host $1 (its recovery has ended)
wait_recovered() {
  local i
  for i in $(seq 1 900); do
    [ -z "$(ls -A "$ST/$1/state/journal" 2>/dev/null)" ] && return 0
    sleep 0.1
  done
  fail "$1 still holds a journal: $(ls "$ST/$1/state/journal")"
}
# the v1 freezer's state of container $2 on host $1 (LXC's own state does
# not know of that freezer)
freezer_state() {
  local pid cg
  eval "$("$FASTMIG" testbed env "$1")"
  pid=$("$FASTMIG" testbed exec "$1" -- lxc-info -P "$LXC_PATH" -n "$2" -p -H)
  cg=$(awk -F: '$2 == "freezer" {print $3}' "/proc/$pid/cgroup")
  cat "/sys/fs/cgroup/freezer$cg/freezer.state"
}
host_of() { "$FASTMIG" list | awk -v n="$1" '$1 == n {print $2, $3}'; }
# exactly one copy, running on $2, reached through the core's route, its
# counter on from $c, its file written before the freeze there
one_copy_on() {
  local name=$1 on=$2 other=$3 n ip c2
  n=$("$FASTMIG" list | awk -v n="$name" '$1 == n' | wc -l)
  [ "$n" -eq 1 ] || fail "$n copies of $name: $("$FASTMIG" list)"
  [ "$(host_of "$name")" = "$on RUNNING" ] || fail "$name is not running on $on: $(host_of "$name")"
  eval "$("$FASTMIG" testbed env "$other")"
  [ ! -e "$LXC_PATH/$name" ] || fail "$other still holds $LXC_PATH/$name"
  [ -z "$(ls -A "$ST/$other/images/")" ] || fail "images left on $other: $(ls -A "$ST/$other/images/")"
  [ -z "$(ls -A "$ST/$on/images/")" ] || fail "images left on $on: $(ls -A "$ST/$on/images/")"
  ip="10.77.${on#mec}.2"
  ip netns exec fm-core ip route get 10.78.0.10 | grep -q "via $ip" || fail "the route does not lead to $on"
  same_boot "$name"
  c2=$("$FASTMIG" workload write "$name" "after-$RANDOM")
  [ "$c2" -gt "$c" ] || fail "$name's counter went back: $c -> $c2"
  eval "$("$FASTMIG" testbed env "$on")"
  [ "$(cat "$LXC_PATH/$name/rootfs/data/$4")" = "$c" ] || fail "the file written before the freeze is not on $on"
}
# starts the killed agent of host $1 again and waits until its recovery
# logged $2 for svc and left no journal
restart_recovers() {
  local lines
  lines=$(log_lines "$1")
  "$FASTMIG" testbed agent "$1" start
  wait_log "$1" "$lines" "recovery of svc .*$2"
  wait_recovered "$1"
}
# migrate svc from $1 to $2 with the pause hook $3, in the background
start_migration() {
  c=$("$FASTMIG" workload write svc "before-$3")
  from_lines=$(log_lines "$1")
  "$FASTMIG" migrate svc --to "$2" --json --inject-failure "pause_$3" >/tmp/fm-crash-out.$$ 2>/tmp/fm-crash-err.$$ &
  cli=$!
  wait_log "$1" "$from_lines" "svc paused at $3"
}

note "the CLI killed while the source is frozen: the source agent carries on and commits"
start_migration mec1 mec2 frozen
kill -9 $cli
wait $cli 2>/dev/null || true
for i in $(seq 1 100); do [ "$(host_of svc)" = "mec2 RUNNING" ] && break; sleep 0.1; done
wait_recovered mec1
one_copy_on svc mec2 mec1 before-frozen

note "the source agent killed while frozen, then restarted: no commit was recorded, it rolls back"
start_migration mec2 mec1 frozen
"$FASTMIG" testbed agent mec2 kill
wait $cli && fail "the CLI said the migration succeeded"
[ -e "$ST/mec2/state/journal/svc.json" ] || fail "no journal left by the dead agent"
restart_recovers mec2 "rolled back"
one_copy_on svc mec2 mec1 before-frozen

note "the source agent killed once the target runs it, before the commit: it rolls back"
start_migration mec2 mec1 restored
"$FASTMIG" testbed agent mec2 kill
wait $cli || true
restart_recovers mec2 "rolled back"
one_copy_on svc mec2 mec1 before-restored

note "the source agent killed after the commit was recorded: it finishes the commit"
start_migration mec2 mec1 committed
"$FASTMIG" testbed agent mec2 kill
wait $cli || true
restart_recovers mec2 "committed"
one_copy_on svc mec1 mec2 before-committed

note "the target agent killed while the source is frozen: the source stays frozen until it can learn the target runs no copy"
start_migration mec1 mec2 frozen
"$FASTMIG" testbed agent mec2 kill
wait $cli && fail "the CLI said the migration succeeded"
grep -q "stays frozen" /tmp/fm-crash-err.$$ || fail "the CLI does not say the source stays frozen: $(cat /tmp/fm-crash-err.$$)"
[ "$(freezer_state mec1 svc)" = FROZEN ] || fail "the source copy is not held frozen: $(freezer_state mec1 svc)"
[ -e "$ST/mec1/state/journal/svc.json" ] || fail "the stranded migration is not in the journal"
lines=$(log_lines mec1)
"$FASTMIG" testbed agent mec2 start
wait_log mec1 "$lines" "recovery of svc .*rolled back"
wait_recovered mec1
one_copy_on svc mec1 mec2 before-frozen

note "the link between the hosts cut while the source is frozen, restored a minute later: a dead link is noticed (FM_TCP_DEAD_MS), the source stays frozen until the target answers again, then it rolls back"
start_migration mec1 mec2 frozen
"$FASTMIG" testbed link mec2 cut
t0=$(date +%s)
wait $cli && fail "the CLI said the migration succeeded"
t1=$(date +%s)
note "the source gave up on the target after $((t1 - t0)) s"
[ $((t1 - t0)) -le 90 ] || fail "the dead link was noticed only after $((t1 - t0)) s"
grep -q "stays frozen" /tmp/fm-crash-err.$$ || fail "the CLI does not say the source stays frozen: $(cat /tmp/fm-crash-err.$$)"
[ "$(freezer_state mec1 svc)" = FROZEN ] || fail "the source copy is not held frozen: $(freezer_state mec1 svc)"
lines=$(log_lines mec1)
"$FASTMIG" testbed link mec2 restore
wait_log mec1 "$lines" "recovery of svc .*rolled back"
wait_recovered mec1
one_copy_on svc mec1 mec2 before-frozen

note "and a migration after all that works"
out=$("$FASTMIG" migrate svc --to mec2 --json)
[ "$(jget "$out" ok)" = true ] && [ "$(jget "$out" state_continuous)" = true ] || fail "clean migration after the crashes"
same_boot svc
rm -f /tmp/fm-crash-out.$$ /tmp/fm-crash-err.$$
echo ok
