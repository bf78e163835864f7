#!/usr/bin/env bash
# CPU used by fastmig's long-running helpers, idle and during migrations, on
# a testbed of its own with the video workload (8 Mbit/s to its client):
# CPU time (utime + stime from /proc/PID/stat) over 10 s of steady service,
# then over N memory-mig migrations back and forth. For each agent the CPU of
# the programs it ran and waited for (lxc-checkpoint, CRIU, rsync, ...) is
# counted apart (cutime + cstime). Prints a table in ms of CPU per second of
# wall time. Usage: bench/helpers_cpu.sh [N migrations, default 6]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
F=${FASTMIG_BUILD:-$here/../build}/fastmig
N=${1:-6}
hz=$(getconf CLK_TCK)
"$F" testbed status >/dev/null 2>&1 && { echo "helpers_cpu: a testbed is up; take it down first" >&2; exit 1; }
trap '"$F" testbed down >/dev/null 2>&1 || true' EXIT
"$F" testbed up >/dev/null
"$F" workload start video --host mec1 --name cpuvid >/dev/null
sleep 2

# name pid: the helpers that live as long as the testbed or the workload
helpers() {
  local p
  for p in $(pgrep -x fastmigd); do echo "fastmigd:$(tr '\0' ' ' </proc/$p/cmdline | grep -o -- '--host [^ ]*' | cut -d' ' -f2) $p"; done
  for p in $(pgrep -x fm-videoclient); do echo "fm-videoclient $p"; done
  # the service moves with the container: a restored process starts its
  # CPU count again, so it is measured idle only
  for p in $(pgrep -x fm-seqecho); do echo "fm-seqecho(service) $p"; done
}
# own and waited-for children's CPU ticks of a pid
ticks() { awk '{print $14 + $15, $16 + $17}' "/proc/$1/stat" 2>/dev/null || echo "0 0"; }
declare -A own0 kids0
snap() { while read -r n p; do read -r o k <<<"$(ticks "$p")"; own0[$n]=$o; kids0[$n]=$k; done < <(helpers); }
declare -A idle_own idle_kids mig_own mig_kids
delta() { # into arrays $1 $2, over $3 ms
  local -n ao=$1 ak=$2
  while read -r n p; do
    read -r o k <<<"$(ticks "$p")"
    ao[$n]=$(( (o - ${own0[$n]:-0}) * 1000 * 1000 / hz / $3 ))
    ak[$n]=$(( (k - ${kids0[$n]:-0}) * 1000 * 1000 / hz / $3 ))
  done < <(helpers)
}
now() { echo $(( $(date +%s%N) / 1000000 )); }

snap; t=$(now); sleep 10; delta idle_own idle_kids $(( $(now) - t ))

snap; t=$(now); cli_ms=0
for i in $(seq "$N"); do
  to=mec2; [ $((i % 2)) -eq 0 ] && to=mec1
  # the CLI (management plane with its 1 ms probe) of each migration
  c=$(python3 -c 'import resource, subprocess, sys
subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)
r = resource.getrusage(resource.RUSAGE_CHILDREN)
print(int((r.ru_utime + r.ru_stime) * 1000))' "$F" migrate cpuvid --to "$to" --json)
  cli_ms=$((cli_ms + c))
done
wall=$(( $(now) - t ))
delta mig_own mig_kids "$wall"

printf '\nCPU in ms per second (1000 = one core): 10 s idle, then %d memory-mig migrations in %d ms\n' "$N" "$wall"
printf '%-22s %10s %12s %14s\n' helper idle migrating "its children"
for n in $(printf '%s\n' "${!idle_own[@]}" | sort); do
  case $n in *service*) m=- k=- ;; *) m=${mig_own[$n]:-?} k=${mig_kids[$n]:-?} ;; esac
  printf '%-22s %10s %12s %14s\n' "$n" "${idle_own[$n]}" "$m" "$k"
done
printf '%-22s %10s %12s %14s\n' "fastmig migrate (CLI)" - "$(( cli_ms * 1000 / wall ))" -
"$F" workload destroy cpuvid >/dev/null
