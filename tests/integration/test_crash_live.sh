# Kills and cuts while the service still runs at the source (the disk sync,
# the pre-copy rounds, a prepared target), and what a migration whose source
# died leaves on the target lapsing after the agents' --expiry (here 15 s)
# without ever making a second copy (docs/RECOVERY.md, "What lapses",
# "Leases"). The agents are killed with SIGKILL and started again as a
# supervisor would; the link is cut in the core. After each: one copy runs,
# with its state, and the other host holds nothing of it.
. "$(dirname "$0")/lib.sh"
testbed_up --test-hooks --agent-expiry 15
"$FASTMIG" workload start busybox --host mec1 --name svc
same_boot svc

# svc migrating from $1 to $2, held at the pause $3 (before the freeze):
# the source agent killed and restarted: nothing was frozen, its recovery
# has the target drop what it prepared
source_killed_before_freeze() {
  start_migration "$1" "$2" "$3"
  "$FASTMIG" testbed agent "$1" kill
  wait $cli && fail "the CLI said the migration succeeded"
  [ "$(freezer_state "$1" svc)" = THAWED ] || fail "$1's copy is not running: $(freezer_state "$1" svc)"
  restart_recovers "$1" "ended before the freeze"
  one_copy_on svc "$1" "$2" "before-$3"
}
# the same with the target agent killed and restarted: the migration fails
# without a freeze; what the target held lapses after the expiry
target_killed_before_freeze() {
  start_migration "$1" "$2" "$3"
  "$FASTMIG" testbed agent "$2" kill
  wait $cli && fail "the CLI said the migration succeeded"
  [ "$(freezer_state "$1" svc)" = THAWED ] || fail "$1's copy is not running: $(freezer_state "$1" svc)"
  lines=$(log_lines "$2")
  "$FASTMIG" testbed agent "$2" start
  wait_log "$2" "$lines" "svc: prepared by a migration silent for 15 s or more: removed"
  one_copy_on svc "$1" "$2" "before-$3"
}

note "the CLI killed in the pre-copy rounds: the source agent carries on and commits"
cli_killed_commits mec1 mec2 rounds

note "the source agent killed in the disk sync, restarted: nothing was frozen, its recovery has the target drop what it prepared"
source_killed_before_freeze mec2 mec1 disk

note "the target agent killed in the pre-copy rounds, restarted: the migration fails without a freeze; what the target held lapses after the expiry"
target_killed_before_freeze mec2 mec1 rounds

note "the link cut in the disk sync, restored after the migration failed: it fails without a freeze (rsync's timeout); what the target held lapses"
start_migration mec2 mec1 disk
lines=$(log_lines mec1) # (with a short expiry the target may let it lapse before the link is back)
"$FASTMIG" testbed link mec1 cut
t0=$(date +%s)
wait $cli && fail "the CLI said the migration succeeded"
note "the migration gave up $(($(date +%s) - t0)) s after the cut"
[ "$(freezer_state mec2 svc)" = THAWED ] || fail "mec2's copy is not running: $(freezer_state mec2 svc)"
"$FASTMIG" testbed link mec1 restore
wait_log mec1 "$lines" "svc: prepared by a migration silent for 15 s or more: removed"
one_copy_on svc mec2 mec1 before-disk
"$FASTMIG" migrate svc --to mec1 --json >/dev/null || fail "moving svc back to mec1"

note "the source agent killed once the target prepared its copy (an early restore held for the images) and left dead: the target removes its copy after the expiry"
start_migration mec1 mec2 planned
lines=$(log_lines mec2)
"$FASTMIG" testbed agent mec1 kill
wait $cli && fail "the CLI said the migration succeeded"
wait_log mec2 "$lines" "svc: prepared by a migration silent for 15 s or more: removed"
eval "$("$FASTMIG" testbed env mec2)"
[ ! -e "$LXC_PATH/svc" ] || fail "mec2 still holds $LXC_PATH/svc"
[ -z "$(ls -A "$ST/mec2/images/")" ] || fail "images left on mec2: $(ls -A "$ST/mec2/images/")"
pgrep -f "fm-fence $LXC_PATH svc" >/dev/null && fail "mec2's fence of svc still runs"
restart_recovers mec1 "ended before the freeze"
one_copy_on svc mec1 mec2 before-planned

note "the source agent killed once the target runs its copy, and left dead: the target's copy is fenced when its lease lapses, its images go after the expiry, and the restarted source rolls back"
start_migration mec1 mec2 restored
lines=$(log_lines mec2)
"$FASTMIG" testbed agent mec1 kill
wait $cli && fail "the CLI said the migration succeeded"
eval "$("$FASTMIG" testbed env mec2)"
wait_log mec2 "$lines" "svc: its migration silent for 15 s or more: its images and page store dropped"
grep -q fenced "$LXC_PATH/svc/fastmig-lease" || fail "mec2's copy is not fenced: $(cat "$LXC_PATH/svc/fastmig-lease")"
[ "$(freezer_state mec2 svc)" = FROZEN ] || fail "mec2's fenced copy is not frozen"
[ "$(freezer_state mec1 svc)" = FROZEN ] || fail "mec1's copy is not held frozen"
restart_recovers mec1 "rolled back"
one_copy_on svc mec1 mec2 before-restored

note "the CLI killed in the disk sync: the source agent carries on and commits"
cli_killed_commits mec1 mec2 disk

note "the source agent killed in the pre-copy rounds, restarted: nothing was frozen, its recovery has the target drop what it prepared"
source_killed_before_freeze mec2 mec1 rounds

note "the target agent killed in the disk sync, restarted: the migration fails without a freeze; what the target held lapses after the expiry"
target_killed_before_freeze mec2 mec1 disk

note "the link cut in the pre-copy rounds, restored after the migration failed: it fails (having frozen meanwhile, the source gives the target up when its lease asks stop); once the link is back the target holds nothing of it"
start_migration mec2 mec1 rounds
"$FASTMIG" testbed link mec1 cut
t0=$(date +%s)
wait $cli && fail "the CLI said the migration succeeded"
note "the migration gave up $(($(date +%s) - t0)) s after the cut: $(tail -n 1 /tmp/fm-crash-err.$$)"
[ "$(freezer_state mec2 svc)" = THAWED ] || fail "mec2's copy is not running: $(freezer_state mec2 svc)"
"$FASTMIG" testbed link mec1 restore
# by the source's recovery (an abort) or the target's expiry
eval "$("$FASTMIG" testbed env mec1)"
for i in $(seq 1 600); do [ ! -e "$LXC_PATH/svc" ] && break; sleep 0.1; done
wait_recovered mec2
one_copy_on svc mec2 mec1 before-rounds

note "and a migration after all that works"
out=$("$FASTMIG" migrate svc --to mec1 --json)
[ "$(jget "$out" ok)" = true ] && [ "$(jget "$out" state_continuous)" = true ] || fail "clean migration after the expiries"
same_boot svc
rm -f /tmp/fm-crash-out.$$ /tmp/fm-crash-err.$$
echo ok
