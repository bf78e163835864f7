#!/usr/bin/env bash
# The plain way, scripted as well as a competent user would on real hosts,
# without fastmig: lxc-checkpoint -s into the source's tmpfs, rsync of the
# images and of the rootfs delta, lxc-checkpoint -r on the target, route
# switch, destroy the source. The rootfs is pre-synced while the service runs.
#
# What makes it as strong as a script can be:
# - each host's side runs as one shell started before the freeze (as an ssh
#   session opened beforehand would): while the container is frozen nothing
#   starts but lxc-checkpoint (and its CRIU) and rsync;
# - each shell has a tmpfs /run, as a real host has, warmed by `criu check`,
#   so CRIU keeps and reuses its kernel-feature cache there;
# - CRIU's nftables network lock on both sides (no iptables-restore runs);
# - rsync to a daemon at the target, started before and running for this
#   run only (fastmig's agents run none: their rsync goes through the
#   authenticated channel), with TCP_NODELAY (two 40 ms delayed-ACK stalls
#   per run otherwise);
# - the route switch is one line written to an `ip -batch` already running in
#   the core, sent by the target's side as soon as its restore has ended.
#   (Sent earlier, while the target restores, it cost more: the core's
#   neighbour entry for the service fails before the container is there and
#   waits for its 1 s retry; measured 623 and 1217 ms of downtime that way.)
# Prints one JSON line: total_ms (start to source destroyed), presync_ms,
# dump_to_restored_ms (lxc-checkpoint -s started to lxc-checkpoint -r ended).
# The downtime is what the caller's probe measures.
#   bench/baseline.sh FASTMIG NAME FROM TO
set -euo pipefail
FASTMIG=$1 NAME=$2 FROM=$3 TO=$4
ms() { echo $(( $(date +%s%N) / 1000000 )); }
eval "$("$FASTMIG" testbed env "$FROM" | sed 's/^/SRC_/')"
eval "$("$FASTMIG" testbed env "$TO" | sed 's/^/DST_/')"
SRC_IMAGES=${SRC_LXC_PATH%/lxc}/images/$NAME
DST_IMAGES=${DST_LXC_PATH%/lxc}/images/$NAME
DST_ADDR=${DST_FASTMIG_AGENT%:*}
RSYNC="rsync -aHAX --numeric-ids --delete --port=8730 --sockopts=TCP_NODELAY"
ip=$(sed -n 's/^lxc.net.0.ipv4.address *= *\([0-9.]*\).*/\1/p' "$SRC_LXC_PATH/$NAME/config")
[ -n "$ip" ] || { echo "baseline: $NAME has no static IPv4 address" >&2; exit 1; }

dir=$(mktemp -d /tmp/fm-baseline.XXXXXX)
pids=()
cleanup() {
  # a side still waiting on a FIFO reads "abort" and ends (killing the
  # `testbed exec' wrappers would not reach the shells inside the hosts)
  { echo abort >&8; echo abort >&9; } 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -s "$dir/rsyncd.pid" ] && kill "$(cat "$dir/rsyncd.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT
# CRIU configs: restore of an LXC container needs the old mount engine on
# this kernel (docs/PLATFORM notes); dump rejects that option
printf 'network-lock nftables\n' > "$dir/dump.conf"
printf 'mntns-compat-mode\nnetwork-lock nftables\n' > "$dir/restore.conf"
mkfifo "$dir/ready" "$dir/start" "$dir/go" "$dir/route" "$dir/restored"
# held open read-write here: no side blocks opening one, and the cleanup can
# always write "abort" into the ones the sides wait on
exec 6<>"$dir/ready" 7<>"$dir/restored" 8<>"$dir/go" 9<>"$dir/start"

# the target's rsync daemon: the LXC path and the checkpoint tmpfs, written
# as root (chroot keeps absolute symlink targets as they are)
cat > "$dir/rsyncd.conf" <<EOF
port = 8730
address = $DST_ADDR
pid file = $dir/rsyncd.pid
reverse lookup = no
use chroot = yes
socket options = TCP_NODELAY
numeric ids = yes
[lxc]
  path = $DST_LXC_PATH
  read only = no
  munge symlinks = no
  uid = root
  gid = root
[images]
  path = ${DST_LXC_PATH%/lxc}/images
  read only = no
  munge symlinks = no
  uid = root
  gid = root
EOF
"$FASTMIG" testbed exec "$TO" -- rsync --daemon --no-detach --config="$dir/rsyncd.conf" &
pids+=($!)
for _ in $(seq 100); do
  "$FASTMIG" testbed exec "$TO" -- bash -c "exec 3<>/dev/tcp/$DST_ADDR/8730" 2>/dev/null && break
  sleep 0.05
done

t0=$(ms)
# the core's route switcher, waiting for its one line
ip netns exec fm-core ip -batch - < "$dir/route" & pids+=($!)
exec 5>"$dir/route"

# target: warm CRIU's cache, wait for the images, restore
mkdir -p "$DST_LXC_PATH/$NAME/rootfs" "$DST_IMAGES"
sed "s#$SRC_LXC_PATH#$DST_LXC_PATH#g" "$SRC_LXC_PATH/$NAME/config" > "$DST_LXC_PATH/$NAME/config"
"$FASTMIG" testbed exec "$TO" --private-run -- bash -c '
  criu check >/dev/null 2>&1 || true
  read -r x < "$1"; [ "$x" = go ] || exit 1
  CRIU_CONFIG_FILE=$2 lxc-checkpoint -r -P "$3" -n "$4" -D "$5" </dev/null >"$6/restore.log" 2>&1
  rc=$?
  [ $rc -ne 0 ] || echo "route replace $7/32 via $8" > "$6/route"
  echo $rc > "$6/restored"' _ "$dir/go" "$dir/restore.conf" "$DST_LXC_PATH" "$NAME" "$DST_IMAGES" "$dir" "$ip" "$DST_ADDR" &
pids+=($!)

# source: pre-sync while the service runs, then checkpoint and send
rm -rf "$SRC_IMAGES"; mkdir -p "$SRC_IMAGES"
"$FASTMIG" testbed exec "$FROM" --private-run -- bash -c '
  set -e
  trap "[ -e $6/t_dump ] || echo failed > $6/ready" EXIT
  criu check >/dev/null 2>&1 || true
  $1 "$2/rootfs/" "rsync://$3/lxc/$4/rootfs/" >/dev/null
  echo presynced > "$6/ready"
  read -r x < "$6/start"; [ "$x" = start ] || exit 1
  echo "$(( $(date +%s%N) / 1000000 ))" > "$6/t_dump"
  CRIU_CONFIG_FILE=$6/dump.conf lxc-checkpoint -s -P "$7" -n "$4" -D "$5" </dev/null >"$6/dump.log" 2>&1
  $1 "$5/" "rsync://$3/images/$4/" >/dev/null
  $1 "$2/rootfs/" "rsync://$3/lxc/$4/rootfs/" >/dev/null
  echo go > "$6/go"' _ \
  "$RSYNC" "$SRC_LXC_PATH/$NAME" "$DST_ADDR" "$NAME" "$SRC_IMAGES" "$dir" "$SRC_LXC_PATH" &
src=$!
pids+=($src)

x=; read -r -t 280 -u 6 x || true
[ "$x" = presynced ] || { echo "baseline: the source side did not pre-sync (${x:-no word in 280 s})" >&2; exit 1; }
t1=$(ms)
echo start >&9
wait "$src" || { echo "baseline: source side failed: $(cat "$dir/dump.log" 2>/dev/null)" >&2; exit 1; }
rc=; read -r -t 60 -u 7 rc || true
t2=$(ms)
exec 5>&-   # the route line is written: let ip -batch end
[ "$rc" = 0 ] || {
  echo "baseline: restore failed: $(tail -n 5 "$dir/restore.log" 2>/dev/null)" >&2; exit 1; }
"$FASTMIG" testbed exec "$FROM" -- lxc-destroy -P "$SRC_LXC_PATH" -n "$NAME" >/dev/null 2>&1 || true
rm -rf "$SRC_IMAGES" "$DST_IMAGES"
t3=$(ms)
echo "{\"total_ms\": $((t3 - t0)), \"presync_ms\": $((t1 - t0)), \"dump_to_restored_ms\": $((t2 - $(cat "$dir/t_dump")))}"
