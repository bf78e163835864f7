# Shared helpers for integration tests (sourced). They run as root on a real
# testbed: network namespaces, LXC, CRIU, rsync.
set -euo pipefail
: "${FASTMIG_BUILD:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build}"
FASTMIG="$FASTMIG_BUILD/fastmig"
[ "$(id -u)" -eq 0 ] || { echo "skip: needs root"; exit 77; }
[ -x "$FASTMIG" ] || { echo "fastmig not built at $FASTMIG"; exit 1; }

fail() { echo "FAIL: $*" >&2; exit 1; }
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
