# The video workload (Debian nginx serving a 240 MB file over one HTTP
# connection to a constant-bitrate client in ue) moved by full-, memory- and
# partial-mig: the connection survives every move, every byte the client got
# is the file's, the stream flows again after each move, the echo sequence
# goes on and files written before the freeze are there after it.
. "$(dirname "$0")/lib.sh"
testbed_up
"$FASTMIG" workload start video --host mec1 --name vid
same_boot vid
c=$("$FASTMIG" workload write vid before)
got=0
status=/run/fastmig/streams/stream-vid.json
client=$(jget "$(cat $status)" pid)
# CPU time the client used (utime + stime, in clock ticks) since it started
cpu_ticks() { awk '{print $14 + $15}' "/proc/$client/stat"; }
hz=$(getconf CLK_TCK)
t_start=$(date +%s%N) cpu_start=$(cpu_ticks)

note "the client paces itself: CPU over 5 s of steady streaming"
a=$(cpu_ticks); sleep 5; b=$(cpu_ticks)
echo "client CPU while streaming: $(( (b - a) * 1000 / hz / 5 )) ms/s"
# a resource bound, not a timing one: 8 Mbit/s checked byte by byte needs a
# few percent of a core; a client that spins takes all of one
[ $(( (b - a) * 1000 / hz )) -lt 500 ] || fail "the video client used $(( (b - a) * 1000 / hz )) ms of CPU in 5 s"

note "a frozen server: the status goes on being written and the stall is measured"
eval "$("$FASTMIG" testbed env mec1)"
w0=$(jget "$(cat $status)" window)
kill -USR1 "$client"; sleep 0.3
"$FASTMIG" testbed exec mec1 -- lxc-freeze -P "$LXC_PATH" -n vid
# the stall shows while it lasts: wait for it, then watch it grow
s1=0.0
for _ in $(seq 100); do s1=$(jget "$(cat $status)" window_stall_ms); [ "$s1" != 0.0 ] && break; sleep 0.05; done
sleep 0.5; s2=$(jget "$(cat $status)" window_stall_ms)
sleep 0.7
"$FASTMIG" testbed exec mec1 -- lxc-unfreeze -P "$LXC_PATH" -n vid
sleep 0.5; st=$(cat $status)
echo "stall seen while frozen: $s1 then $s2 ms; after: $(jget "$st" window_stall_ms) ms"
[ "$(jget "$st" window)" -gt "$w0" ] || fail "SIGUSR1 did not start a new window ($w0)"
python3 -c "import sys; a,b=map(float,sys.argv[1:3]); sys.exit(0 if b > a > 0 else 1)" "$s1" "$s2" ||
  fail "the status did not follow the stall while the server was frozen ($s1, $s2)"
python3 -c "import sys; sys.exit(0 if float(sys.argv[1]) >= 1000 else 1)" "$(jget "$st" window_stall_ms)" ||
  fail "a freeze of over 1.2 s measured as a stall of $(jget "$st" window_stall_ms) ms"
[ "$(jget "$st" connected)" = true ] && [ "$(jget "$st" bad_bytes)" = 0 ] || fail "after the freeze: $st"

note "a client pointed at a closed port says which step failed"
"$FASTMIG" workload start busybox --host mec1 --name novid
nip=$("$FASTMIG" list | awk '$1 == "novid" {print $4}')
set +e; "$FASTMIG_BUILD/fm-videoclient" --netns fm-ue --addr "$nip" --status /tmp/fm-novid.$$; rc=$?; set -e
[ $rc -eq 1 ] || fail "client against a closed port exited $rc"
grep -q '"phase":"ended".*"error":"connecting to .*refused' /tmp/fm-novid.$$ || fail "no step named: $(cat /tmp/fm-novid.$$)"
rm -f /tmp/fm-novid.$$
"$FASTMIG" workload destroy novid

mig() {
  local to=$1 strat=$2 want=${3:-auto} out c2 b
  out=$("$FASTMIG" migrate vid --to "$to" --strategy "$want" --json)
  echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print({k: d.get(k) for k in ("ok","strategy","decided_by","downtime_ms","total_ms","stream","error")})'
  [ "$(jget "$out" ok)" = true ] || fail "to $to: $(jget "$out" error)"
  [ "$(jget "$out" strategy)" = "$strat" ] || fail "to $to: strategy $(jget "$out" strategy), want $strat"
  [ "$(jget "$out" state_continuous)" = true ] || fail "to $to: echo sequence broken"
  [ "$(jget "$out" stream.connection_kept)" = true ] || fail "to $to: the video connection broke: $(jget "$out" stream.error)"
  [ "$(jget "$out" stream.bad_bytes)" = 0 ] || fail "to $to: bytes out of place"
  b=$(jget "$out" stream.bytes_verified)
  [ "$b" -gt "$got" ] || fail "to $to: the stream did not flow again ($got -> $b bytes)"
  got=$b
  state_kept vid "$to" before
}

note "full-mig to mec2 (it holds no image) and back (forced)"
mig mec2 full
mig mec1 full full
note "memory-mig there and back"
mig mec2 memory
mig mec1 memory
note "partial-mig: mec2 keeps the base only; and back (forced)"
"$FASTMIG" image rm video --host mec2
mig mec2 partial
mig mec1 partial partial
# nginx is the same process all along: one connection, never a new one
st=$(cat $status)
[ "$(jget "$st" connected)" = true ] && [ "$(jget "$st" bad_bytes)" = 0 ] || fail "client status: $st"
[ "$(jget "$st" pid)" = "$client" ] || fail "the client was replaced"
cpu=$(( ($(cpu_ticks) - cpu_start) * 1000 / hz )) wall=$(( ($(date +%s%N) - t_start) / 1000000 ))
echo "client CPU over the whole test (six migrations): $cpu ms in $wall ms"
[ $(( cpu * 10 )) -lt "$wall" ] || fail "the video client used $cpu ms of CPU in $wall ms"
"$FASTMIG" workload destroy vid
echo ok
