#!/usr/bin/env bash
# The plain way, as users do it without fastmig: lxc-checkpoint -s into the
# source's tmpfs, rsync of the images and of the rootfs delta, lxc-checkpoint -r
# on the target, route switch, destroy the source. The rootfs is pre-synced
# while the service runs (not counted as frozen). Prints one JSON line with
# frozen_ms (checkpoint start to restore done) and total_ms.
#   bench/baseline.sh FASTMIG NAME FROM TO
set -euo pipefail
FASTMIG=$1 NAME=$2 FROM=$3 TO=$4
ms() { echo $(( $(date +%s%N) / 1000000 )); }
eval "$("$FASTMIG" testbed env "$FROM" | sed 's/^/SRC_/')"
eval "$("$FASTMIG" testbed env "$TO" | sed 's/^/DST_/')"
SRC_IMAGES=${SRC_LXC_PATH%/lxc}/images/$NAME
DST_ADDR=${DST_FASTMIG_AGENT%:*}
RSYNC="rsync -aHAX --numeric-ids --delete --port=8730 --sockopts=TCP_NODELAY"
ip=$(sed -n 's/^lxc.net.0.ipv4.address *= *\([0-9.]*\).*/\1/p' "$SRC_LXC_PATH/$NAME/config")
inhost() { local h=$1; shift; "$FASTMIG" testbed exec "$h" -- "$@"; }
criu_conf=$(mktemp /tmp/fm-baseline-criu.XXXXXX)
echo mntns-compat-mode > "$criu_conf"   # LXC restore needs it on this kernel (docs/PLATFORM-NOTES.md)
trap 'rm -f "$criu_conf"' EXIT

t0=$(ms)
# target config: the source's, with its paths
mkdir -p "$DST_LXC_PATH/$NAME/rootfs"
sed "s#$SRC_LXC_PATH#$DST_LXC_PATH#g" "$SRC_LXC_PATH/$NAME/config" > "$DST_LXC_PATH/$NAME/config"
inhost "$FROM" $RSYNC "$SRC_LXC_PATH/$NAME/rootfs/" "rsync://$DST_ADDR/lxc/$NAME/rootfs/" >/dev/null
t1=$(ms)
rm -rf "$SRC_IMAGES"; mkdir -p "$SRC_IMAGES"
inhost "$FROM" lxc-checkpoint -s -P "$SRC_LXC_PATH" -n "$NAME" -D "$SRC_IMAGES" </dev/null >/dev/null 2>&1
inhost "$FROM" $RSYNC "$SRC_IMAGES/" "rsync://$DST_ADDR/images/$NAME/" >/dev/null
inhost "$FROM" $RSYNC "$SRC_LXC_PATH/$NAME/rootfs/" "rsync://$DST_ADDR/lxc/$NAME/rootfs/" >/dev/null
DST_IMAGES=${DST_LXC_PATH%/lxc}/images/$NAME
CRIU_CONFIG_FILE=$criu_conf inhost "$TO" lxc-checkpoint -r -P "$DST_LXC_PATH" -n "$NAME" -D "$DST_IMAGES" </dev/null >/dev/null 2>&1
t2=$(ms)
ip netns exec fm-core ip route replace "$ip/32" via "$DST_ADDR"
t3=$(ms)
inhost "$FROM" lxc-destroy -P "$SRC_LXC_PATH" -n "$NAME" >/dev/null 2>&1 || true
rm -rf "$SRC_IMAGES" "$DST_IMAGES"
t4=$(ms)
echo "{\"frozen_ms\": $((t3 - t1)), \"total_ms\": $((t4 - t0)), \"presync_ms\": $((t1 - t0))}"
