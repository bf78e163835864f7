# Shared helpers for integration tests (sourced). They run as root on a real
# testbed: network namespaces, LXC, CRIU, rsync.
set -euo pipefail
: "${FASTMIG_BUILD:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build}"
FASTMIG="$FASTMIG_BUILD/fastmig"
[ "$(id -u)" -eq 0 ] || { echo "skip: needs root"; exit 77; }
[ -x "$FASTMIG" ] || { echo "fastmig not built at $FASTMIG"; exit 1; }

# A failure shows the end of each testbed agent's log: the testbed is gone
# when the test has exited.
fail() {
  local l
  echo "FAIL: $*" >&2
  for l in /var/lib/fastmig/testbed/mec*/state/agent.log; do
    [ -f "$l" ] || continue
    echo "   $l, its end:" >&2
    tail -n 60 "$l" | sed 's/^/   | /' >&2
  done
  exit 1
}
note() { echo "-- $*"; }
# jq is not assumed: read JSON fields with python3's json module.
jget() { python3 -c 'import json,sys; d=json.loads(sys.argv[1]); v=d
for k in sys.argv[2].split("."):
    v = v[int(k)] if isinstance(v, list) else v.get(k)
print(json.dumps(v) if isinstance(v,(dict,list,bool)) or v is None else v)' "$1" "$2"; }

testbed_clean() { "$FASTMIG" testbed down >/dev/null 2>&1 || true; }
testbed_up() { testbed_clean; trap testbed_clean EXIT; "$FASTMIG" testbed up "$@"; }
# The service NAME's boot id (fm-seqecho draws a new one at every start):
# remembered at the first call, and each later call fails if it changed, so
# a service restarted from scratch is told from one that kept its state.
declare -A BOOT=()
same_boot() {
  local b
  b=$("$FASTMIG" workload state "$1" | cut -d' ' -f2)
  [ -n "$b" ] || fail "$1 does not answer"
  if [ -z "${BOOT[$1]:-}" ]; then BOOT[$1]=$b
  else [ "$b" = "${BOOT[$1]}" ] || fail "$1 restarted: boot id ${BOOT[$1]} -> $b"; fi
}
# After a migration of container $1 to host $2: its counter moved on from $c
# (which it updates), and /data/$3, written before the first freeze, is there.
state_kept() {
  local c2
  same_boot "$1"
  c2=$("$FASTMIG" workload write "$1" "f$RANDOM")
  [ "$c2" -gt "$c" ] || fail "counter went back: $c -> $c2"
  c=$c2
  eval "$("$FASTMIG" testbed env "$2")"
  "$FASTMIG" testbed exec "$2" -- lxc-attach -P "$LXC_PATH" -n "$1" -- cat "/data/$3" >/dev/null \
    || fail "file written before the first freeze missing on $2"
}
counter_of() { "$FASTMIG" workload write "$1" "probe-$RANDOM"; }

# ---- killing and breaking the real thing (test_crash, test_expiry) ----
# start_migration and restart_recovers work on the container svc.
ST=/var/lib/fastmig/testbed

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
  # (read inside: the rootfs may be on the shared volume)
  [ "$("$FASTMIG" testbed exec "$on" -- lxc-attach -P "$LXC_PATH" -n "$name" -- cat "/data/$4")" = "$c" ] ||
    fail "the file written before the freeze is not on $on"
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
# the CLI migrating svc from $1 to $2 killed at the pause $3: the source
# agent carries on and commits by itself
cli_killed_commits() {
  start_migration "$1" "$2" "$3"
  kill -9 $cli
  wait $cli 2>/dev/null || true
  for i in $(seq 1 300); do [ "$(host_of svc)" = "$2 RUNNING" ] && break; sleep 0.1; done
  wait_recovered "$1"
  one_copy_on svc "$2" "$1" "before-$3"
}

# ---- the orchestrator's API (test_orch*, test_openapi): after
# `testbed up --orchestrator' ----
orch_env() {
  eval "$("$FASTMIG" testbed env orch)"
  export FASTMIG_API_URL FASTMIG_API_TOKEN FASTMIG_API_CA
}
# api METHOD PATH [BODY [CONTENT-TYPE]]: sets HTTP (the status), BODY and
# HDRS (the answer's headers); API_TOKEN overrides the token ("" sends none)
api() {
  local args=(-sS --cacert "$FASTMIG_API_CA" -X "$1" -D /tmp/fm-api-hdr.$$ -w '\n%{http_code}')
  local tok=${API_TOKEN-$FASTMIG_API_TOKEN} out
  [ -z "$tok" ] || args+=(-H "Authorization: Bearer $tok")
  if [ $# -ge 3 ]; then args+=(-H "Content-Type: ${4:-application/json}" --data-binary "$3"); fi
  out=$(curl "${args[@]}" "$FASTMIG_API_URL$2") || fail "curl $1 $2 failed"
  HTTP=${out##*$'\n'}
  BODY=${out%$'\n'*}
  HDRS=$(tr -d '\r' < /tmp/fm-api-hdr.$$)
  rm -f /tmp/fm-api-hdr.$$
}
# expect STATUS WHAT: the last answer had that status
expect() { [ "$HTTP" = "$1" ] || fail "$2: HTTP $HTTP, not $1: $BODY"; }
# expect_problem STATUS WHAT [WORDS]: an RFC 9457 problem with that status
# whose detail has WORDS
expect_problem() {
  expect "$1" "$2"
  grep -qi '^content-type: application/problem+json' <<<"$HDRS" || fail "$2: not a problem: $HDRS"
  [ "$(jget "$BODY" status)" = "$1" ] || fail "$2: the problem's status is not $1: $BODY"
  [ -z "${3:-}" ] || grep -q -- "$3" <<<"$(jget "$BODY" detail)" || fail "$2: the detail does not say \`$3': $BODY"
}
# waits until migration $1 of the orchestrator has ended; prints it
orch_wait() {
  local i
  for i in $(seq 1 1200); do
    api GET "/fastmig/v1/migrations/$1"
    case "$(jget "$BODY" status)" in queued|running) sleep 0.2 ;; *) echo "$BODY"; return 0 ;; esac
  done
  fail "migration $1 did not end: $BODY"
}
