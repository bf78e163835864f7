# The orchestrator SIGKILLed in each phase of a migration it runs (the
# disk sync, planned, the pre-copy rounds, frozen, restored, committed), then
# started again: before it takes work it waits for the source agent to end
# the migration (docs/RECOVERY.md), and reports it by where the container
# runs: succeeded on the target, rolled back on the source; never
# "running". The service runs on exactly one host with its state, and the
# database says which. Last, the target agent dies with it while frozen:
# the source rolls back, and so does the report.
. "$(dirname "$0")/lib.sh"
testbed_up --test-hooks --orchestrator
orch_env
"$FASTMIG" workload start blank --host mec1 --name svc >/dev/null
same_boot svc
api POST /amsi/v1/app_mobility_services '{"serviceConsumerId":{"appInstanceId":"app-svc"},"fastmig":{"container":"svc"}}'
expect 201 "registering svc"
SID=$(jget "$BODY" appMobilityServiceId)

# migrates svc from $1 to $2, held by the agents' test hook at $3, and
# SIGKILLs the orchestrator there; sets MID
orch_killed_at() {
  c=$("$FASTMIG" workload write svc "before-$3")
  local lines
  lines=$(log_lines "$1")
  api POST /fastmig/v1/migrations "{\"appMobilityServiceId\":\"$SID\",\"to\":\"$2\",\"options\":{\"inject_failure\":\"pause_$3\"}}"
  expect 201 "migrating svc to $2"
  MID=$(jget "$BODY" id)
  wait_log "$1" "$lines" "svc paused at $3"
  "$FASTMIG" testbed orch kill >/dev/null
}
# the migration MID is reported $1 after the restart, svc's host is $2
reported() {
  api GET "/fastmig/v1/migrations/$MID"
  expect 200 "reading migration $MID"
  [ "$(jget "$BODY" status)" = "$1" ] || fail "migration $MID is $(jget "$BODY" status), not $1: $BODY"
  [ "$(jget "$BODY" report.reconciled)" = true ] || fail "migration $MID was not reconciled: $BODY"
  api GET "/amsi/v1/app_mobility_services/$SID"
  [ "$(jget "$BODY" fastmig.host)" = "$2" ] || fail "the database says svc is on $(jget "$BODY" fastmig.host), not $2"
}

from=mec1 to=mec2
for phase in disk planned rounds frozen restored committed; do
  note "the orchestrator killed at $phase ($from -> $to), started again"
  orch_killed_at $from $to $phase
  "$FASTMIG" testbed orch start >/dev/null
  reported succeeded $to
  wait_recovered $from
  one_copy_on svc $to $from "before-$phase"
  read -r from to <<<"$to $from"
done

note "the orchestrator and the target agent killed while frozen ($from -> $to)"
orch_killed_at $from $to frozen
"$FASTMIG" testbed agent $to kill >/dev/null
"$FASTMIG" testbed orch start >/dev/null &
starting=$!
sleep 2
"$FASTMIG" testbed agent $to start >/dev/null
wait $starting || fail "the orchestrator did not start again"
reported rolled_back $from
wait_recovered $from
wait_recovered $to
one_copy_on svc $from $to "before-frozen"
grep -q '"reconcile: migration' /var/lib/fastmig/testbed/orch/orch.log || fail "the log does not tell the reconciliation"
echo ok
