#!/bin/bash
# The soak (make soak; CI runs a short one, tests/integration/test_soak.sh):
# N migrations of three services (blank, video, memory) between the
# testbed's two hosts, each to the other host with a random strategy (auto
# or full) and, one in ten, an injected failure (the migration must roll
# back). After each: exactly one copy runs, its state went on (the probe's
# verdict, the counter, its memory checksum), and what the hosts hold is
# back to where it was: the agents' fds and threads, the mounts in their
# mount namespaces, the processes in the hosts' namespaces, the LXC
# cgroups, the bytes in the image tmpfs. Prints a line per migration and a
# table at the end; exits 1 on the first violation.
#   tests/soak.sh [--count N] [--seed S]
. "$(dirname "$0")/integration/lib.sh"
COUNT=200
SEED=$RANDOM
while [ $# -gt 0 ]; do
  case $1 in
    --count) COUNT=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    *) echo "usage: tests/soak.sh [--count N] [--seed S]" >&2; exit 2 ;;
  esac
done
RANDOM=$SEED
ST=/var/lib/fastmig/testbed
FAULTS=(restore steer transfer dump)

testbed_up --test-hooks >/dev/null
"$FASTMIG" workload start blank --host mec1 --name sk-blank >/dev/null
"$FASTMIG" workload start video --host mec2 --name sk-video >/dev/null
"$FASTMIG" workload start memory --host mec1 --name sk-mem --size-mib 64 --dirty-mib-s 4 >/dev/null
SERVICES=(sk-blank sk-video sk-mem)
declare -A AT=([sk-blank]=mec1 [sk-video]=mec2 [sk-mem]=mec1)

agent_pid() { python3 -c 'import json,sys; print(json.load(open("/run/fastmig/testbed.json"))["agent_pids"][int(sys.argv[1]) - 1])' "${1#mec}"; }
# what the hosts hold, one line: per agent fds and threads, then the sums
# of mounts in the agents' namespaces, processes in the hosts' namespaces,
# LXC cgroups and image-tmpfs bytes
held() {
  local h pid mounts=0 procs=0 bytes=0 out=""
  for h in mec1 mec2; do
    pid=$(agent_pid $h)
    out+="$h:fds=$(ls /proc/"$pid"/fd | wc -l),threads=$(awk '/^Threads/ {print $2}' /proc/"$pid"/status) "
    mounts=$((mounts + $(wc -l < /proc/"$pid"/mountinfo)))
    procs=$((procs + $(ip netns pids fm-$h | wc -l)))
    bytes=$((bytes + $(du -sb "$ST/$h/images" | cut -f1)))
  done
  out+="mounts=$mounts procs=$procs cgroups=$(ls -d /sys/fs/cgroup/freezer/lxc.* 2>/dev/null | wc -l) tmpfs=$bytes"
  echo "$out"
}
# held, once it has settled (connections end and threads go shortly after
# a reply): the line equal to $1, or, with $1 empty, two equal lines in a
# row; else the last one seen after about 10 s
held_settled() {
  local now last="" i
  for i in $(seq 1 50); do
    now=$(held)
    if [ -n "$1" ]; then [ "$now" = "$1" ] && break
    else [ "$now" = "$last" ] && break; fi
    last=$now
    sleep 0.2
  done
  echo "$now"
}

# a warm-up round trip each: images placed on both hosts, first-time
# mounts and caches made; then the baseline
note "soak: seed $SEED, $COUNT migrations; warming up"
for s in "${SERVICES[@]}"; do
  other=$([ "${AT[$s]}" = mec1 ] && echo mec2 || echo mec1)
  "$FASTMIG" migrate "$s" --to "$other" --json >/dev/null || fail "warm-up of $s"
  "$FASTMIG" migrate "$s" --to "${AT[$s]}" --json >/dev/null || fail "warm-up of $s back"
done
base=$(held_settled "")
note "held at the start: $base"

declare -A N=() OK=() RB=() DOWN=()
printf '%4s  %-8s %-4s -> %-4s %-8s %-8s %-9s %9s\n' "#" service from to strategy fault outcome downtime
for i in $(seq 1 "$COUNT"); do
  s=${SERVICES[$((RANDOM % 3))]}
  from=${AT[$s]}
  to=$([ "$from" = mec1 ] && echo mec2 || echo mec1)
  strat=$([ $((RANDOM % 2)) -eq 0 ] && echo auto || echo full)
  fault=-
  [ $((i % 10)) -eq 5 ] && fault=${FAULTS[$((RANDOM % 4))]} # one in ten
  c0=$("$FASTMIG" workload write "$s" "soak-$i")
  args=(--to "$to" --strategy "$strat" --json)
  [ "$fault" = - ] || args+=(--inject-failure "$fault")
  rc=0
  out=$("$FASTMIG" migrate "$s" "${args[@]}" 2>/tmp/fm-soak-err.$$) || rc=$?
  ok=$(jget "$out" ok 2>/dev/null || echo None)
  if [ "$fault" = - ]; then
    [ $rc -eq 0 ] && [ "$ok" = true ] || fail "#$i $s $from->$to $strat: failed: $(cat /tmp/fm-soak-err.$$)"
    AT[$s]=$to
    outcome=moved
  else
    [ $rc -ne 0 ] && [ "$(jget "$out" rolled_back)" = true ] ||
      fail "#$i $s: the injected $fault did not roll back: $(cat /tmp/fm-soak-err.$$)"
    outcome=rolled-back
  fi
  [ "$(jget "$out" state_continuous)" = true ] || fail "#$i $s: state not continuous: $(jget "$out" probe.not_kept)"
  [ "$(jget "$out" stream)" = null ] || [ "$(jget "$out" stream.connection_kept)" = true ] ||
    fail "#$i $s: the video stream broke"
  [ "$(jget "$out" memory_verified)" != false ] || fail "#$i $s: its memory does not checksum"
  # one copy, where it should be, its counter on
  where=$("$FASTMIG" list | awk -v n="$s" '$1 == n {print $2 "/" $3}')
  [ "$where" = "${AT[$s]}/RUNNING" ] || fail "#$i $s: expected running on ${AT[$s]} alone, found: $where"
  c1=$("$FASTMIG" workload write "$s" "soak-$i-after")
  [ "$c1" -gt "$c0" ] || fail "#$i $s: counter went back ($c0 -> $c1)"
  now=$(held_settled "$base")
  [ "$now" = "$base" ] || fail "#$i $s: the hosts hold more than at the start:
  start: $base
  now:   $now"
  down=$(jget "$out" downtime_ms)
  printf '%4d  %-8s %-4s -> %-4s %-8s %-8s %-11s %7.1f ms\n' "$i" "$s" "$from" "$to" "$strat" "$fault" "$outcome" "$down"
  key="$s $strat $([ "$fault" = - ] && echo clean || echo fault)"
  N[$key]=$((${N[$key]:-0} + 1))
  DOWN[$key]="${DOWN[$key]:-} $down"
done
rm -f /tmp/fm-soak-err.$$

echo
echo "soak: $COUNT migrations, seed $SEED: each left one running copy, its state kept, and the hosts holding what they held at the start"
printf '%-9s %-9s %-6s %5s %16s %16s\n' service strategy kind runs "downtime median" "downtime max"
for key in $(printf '%s\n' "${!N[@]}" | sort | tr ' ' '|'); do
  k=${key//|/ }
  read -r med max < <(echo "${DOWN[$k]}" | tr ' ' '\n' | grep . | sort -n | awk '{v[NR]=$1} END {m = NR % 2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2; printf "%.1f %.1f\n", m, v[NR]}')
  read -r sv st kd <<<"$k"
  printf '%-9s %-9s %-6s %5d %13.1f ms %13.1f ms\n' "$sv" "$st" "$kd" "${N[$k]}" "$med" "$max"
done
echo "held at the end: $(held)"
