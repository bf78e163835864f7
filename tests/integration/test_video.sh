# The video workload (Debian nginx serving a 240 MB file over one HTTP
# connection to a constant-bitrate client in ue) moved by full-, memory- and
# partial-mig: the connection survives every move, every byte the client got
# is the file's, the stream flows again after each move, the echo sequence
# goes on and files written before the freeze are there after it.
. "$(dirname "$0")/lib.sh"
testbed_up
"$FASTMIG" workload start video --host mec1 --name vid
c=$("$FASTMIG" workload write vid before)
got=0

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
st=$(cat /var/lib/fastmig/testbed/ue/stream-vid.json)
[ "$(jget "$st" connected)" = true ] && [ "$(jget "$st" bad_bytes)" = 0 ] || fail "client status: $st"
"$FASTMIG" workload destroy vid
echo ok
