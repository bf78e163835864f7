# A fleet that is not the testbed, driven the way an operator's hosts are:
# fastmig installed (meson install into a scratch root, as `make install`
# does), two hosts that are plain `ip netns` namespaces set up here by hand,
# each running the installed fastmigd with its own certificate, a router
# whose routes an operator's steering hook moves, and a user. The fleet file
# names it all; nothing of the testbed is used.
#
#   fx-user 10.88.0.2 ── fx-rt ── 10.88.1.2 fx-h1 (fxbr0 10.89.0.1, containers 10.89.0.x)
#                              └─ 10.88.2.2 fx-h2 (fxbr0 10.89.0.1)
#
# fleet check; the blank and the video workloads there and back (state
# kept, the stream unbroken, the hook called for each phase); then the
# agent as a service: SIGTERM ends it with status 0, the containers keep
# running, a restart finds its images and containers and migrates again.
. "$(dirname "$0")/lib.sh"
tmp=$(mktemp -d /tmp/fm-fleet.XXXXXX)
inst=$tmp/root/usr/local
F=
agents=()
cleanup() {
  set +e
  for p in "${agents[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  for h in h1 h2; do
    for c in "$tmp/$h"/lxc/*/; do
      [ -d "$c" ] && ip netns exec fx-$h lxc-stop -k -P "$tmp/$h/lxc" -n "$(basename "$c")" >/dev/null 2>&1
    done
  done
  for ns in fx-h1 fx-h2 fx-rt fx-user; do
    for p in $(ip netns pids $ns 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    ip netns del $ns 2>/dev/null
  done
  for h in h1 h2; do
    grep -q " $tmp/$h/store/" /proc/mounts && grep " $tmp/$h/store/" /proc/mounts | awk '{print $2}' | xargs -r -n1 umount -l
    umount -l "$tmp/$h/images" 2>/dev/null
  done
  for d in /sys/fs/cgroup/*/lxc.payload.fx* /sys/fs/cgroup/*/lxc.monitor.fx*; do rmdir "$d" 2>/dev/null; done
  rm -f /run/fastmig/streams/stream-fx*.json
  rm -rf "$tmp"
}
trap cleanup EXIT

note "install: meson install into $tmp/root (what make install runs)"
DESTDIR=$tmp/root meson install -C "$FASTMIG_BUILD" --no-rebuild --quiet >/dev/null
[ -x "$inst/sbin/fastmigd" ] && [ -x "$inst/bin/fastmig" ] && [ -x "$inst/lib/fastmig/bin/fm-rsync-tunnel" ] \
  || fail "installed layout incomplete: $(find "$tmp/root" -type f -o -type l | head -20)"
grep -q "^ExecStart=/usr/local/sbin/fastmigd \$FASTMIGD_ARGS" "$inst/lib/systemd/system/fastmigd.service" \
  || fail "systemd unit: $(cat "$inst/lib/systemd/system/fastmigd.service")"
[ -x "$inst/sbin/fastmig-orchd" ] && grep -q "^ExecStart=/usr/local/sbin/fastmig-orchd \$FASTMIG_ORCHD_ARGS" \
  "$inst/lib/systemd/system/fastmig-orchd.service" || fail "the orchestrator's program or unit was not installed"
FM="$inst/bin/fastmig"

note "two hosts, a router and a user as plain network namespaces"
for ns in fx-h1 fx-h2 fx-rt fx-user; do ip netns add $ns; ip -n $ns link set lo up; done
ip netns exec fx-rt sysctl -qw net.ipv4.ip_forward=1
ip link add eth0 netns fx-user type veth peer name user netns fx-rt
ip -n fx-user addr add 10.88.0.2/24 dev eth0; ip -n fx-rt addr add 10.88.0.1/24 dev user
ip -n fx-user link set eth0 up; ip -n fx-rt link set user up
ip -n fx-user route add default via 10.88.0.1
for i in 1 2; do
  ns=fx-h$i
  ip netns exec $ns sysctl -qw net.ipv4.ip_forward=1
  ip link add eth0 netns $ns type veth peer name h$i netns fx-rt
  ip -n $ns addr add 10.88.$i.2/24 dev eth0; ip -n fx-rt addr add 10.88.$i.1/24 dev h$i
  ip -n $ns link set eth0 up; ip -n fx-rt link set h$i up
  ip -n $ns route add default via 10.88.$i.1
  # the services' gateway: the same address and MAC on every host
  ip -n $ns link add fxbr0 address 02:fa:58:00:00:01 type bridge
  ip -n $ns addr add 10.89.0.1/24 dev fxbr0; ip -n $ns link set fxbr0 up
  mkdir -p "$tmp/h$i/lxc" "$tmp/h$i/images" "$tmp/h$i/store" "$tmp/h$i/state"
  mount -t tmpfs -o size=25%,mode=0700 fx-images "$tmp/h$i/images"
done

note "PKI: a CA, a certificate per host naming its address, the operator's"
"$FM" pki init --dir "$tmp/pki" --fleet fx >/dev/null
"$FM" pki issue h1 --role host --ip 10.88.1.2 --dir "$tmp/pki" >/dev/null
"$FM" pki issue h2 --role host --ip 10.88.2.2 --dir "$tmp/pki" >/dev/null
"$FM" pki issue operator --role operator --dir "$tmp/pki" >/dev/null

# the operator's steering hook: the router's host route to the new host
cat >"$tmp/steer.sh" <<EOF
#!/bin/sh
echo "\$*" >> "$tmp/steer.log"
exec ip -n fx-rt route replace "\$2/32" via "\$FASTMIG_NEW_ROUTE_VIA"
EOF
chmod +x "$tmp/steer.sh"
cat >"$tmp/fleet.json" <<EOF
{
  "fleet": "fx",
  "pki": "$tmp/pki",
  "agents_netns": "fx-rt",
  "users_netns": "fx-user",
  "services": {"subnet": "10.89.0.0/24", "gateway": "10.89.0.1"},
  "steering": {"kind": "command", "command": "$tmp/steer.sh"},
  "hosts": [
    {"name": "h1", "agent": "10.88.1.2:7070", "bridge": "fxbr0",
     "lxcpath": "$tmp/h1/lxc", "images": "$tmp/h1/images", "store": "$tmp/h1/store"},
    {"name": "h2", "agent": "10.88.2.2:7070", "bridge": "fxbr0",
     "lxcpath": "$tmp/h2/lxc", "images": "$tmp/h2/images", "store": "$tmp/h2/store"}
  ]
}
EOF
F="$FM --fleet $tmp/fleet.json"

# start_agent N: the installed agent of host hN, in the foreground as
# systemd runs it (its stderr is the journal)
start_agent() {
  [ -e "$tmp/h$1/log" ] && cat "$tmp/h$1/log" >>"$tmp/h$1/log.old" && : >"$tmp/h$1/log"
  "$inst/sbin/fastmigd" --netns fx-h$1 --host h$1 --listen 10.88.$1.2:7070 --lxcpath "$tmp/h$1/lxc" \
    --images "$tmp/h$1/images" --state "$tmp/h$1/state" --store "$tmp/h$1/store" --pki "$tmp/pki" \
    --bridge fxbr0 --fleet "$tmp/fleet.json" 2>>"$tmp/h$1/log" &
  agents[$1]=$!
  for _ in $(seq 100); do grep -q serving "$tmp/h$1/log" && return 0; sleep 0.1; done
  fail "agent h$1 did not start: $(cat "$tmp/h$1/log")"
}
start_agent 1
start_agent 2

note "fleet check"
out=$($F fleet check) || fail "fleet check: $out"
echo "$out"
echo "$out" | grep -q "2 of 2 hosts can take part" || fail "fleet check does not pass both hosts"
js=$($F fleet check --json)
for i in 0 1; do
  [ "$(jget "$js" hosts.$i.authenticated)" = true ] || fail "host $i not authenticated"
  [ "$(jget "$js" hosts.$i.check.tmpfs.is_tmpfs)" = true ] || fail "host $i: tmpfs not seen"
  [ "$(jget "$js" hosts.$i.check.criu.version)" != None ] || fail "host $i: no CRIU version"
  [ "$(jget "$js" hosts.$i.check.leases)" = true ] || fail "host $i: its copies run on no lease"
done
# a host whose agent is down says so, and why
FASTMIG_FLEET=$tmp/fleet.json "$FM" fleet show >/dev/null || fail "FASTMIG_FLEET not read"

# migrate NAME TO: one migration, ok, state kept
migrate() {
  local out
  out=$($F migrate "$1" --to "$2" --json) || fail "migration of $1 to $2: $out"
  echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print("   ", d["container"], d["from"], "->", d["to"], d["strategy"], "downtime %.0f ms" % d["downtime_ms"], "stream", (d.get("stream") or {}).get("connection_kept"))'
  [ "$(jget "$out" ok)" = true ] && [ "$(jget "$out" state_continuous)" = true ] || fail "$1 to $2: $out"
  [ "$(jget "$out" stream)" = null ] || [ "$(jget "$out" stream.connection_kept)" = true ] || fail "$1: the stream broke"
}

for kind in blank video; do
  name=fx$kind
  note "$kind: built into h1's store, started, there and back"
  $F image build $kind --host h1 >/dev/null 2>"$tmp/build.log" || fail "image build: $(tail -n 5 "$tmp/build.log")"
  $F workload start $kind --host h1 --name $name || fail "workload start $kind"
  c0=$($F workload write $name before)
  migrate $name h2
  migrate $name h1
  c1=$($F workload write $name after)
  [ "$c1" -gt "$c0" ] || fail "$name: counter went back $c0 -> $c1"
  [ -e "$tmp/h1/lxc/$name" ] && [ ! -e "$tmp/h2/lxc/$name" ] || fail "$name not on h1 alone"
  ip -n fx-rt route get "$(ip netns exec fx-h1 lxc-info -P "$tmp/h1/lxc" -n $name -iH | head -n1)" | grep -q "via 10.88.1.2" \
    || fail "the router does not send $name's traffic to h1"
done
for phase in place source frozen commit; do
  grep -q "^$phase " "$tmp/steer.log" || fail "the hook was not called for $phase: $(cat "$tmp/steer.log")"
done

note "the agent as a service: SIGTERM, restart"
kill -TERM "${agents[2]}"
rc=0; wait "${agents[2]}" || rc=$?
[ "$rc" -eq 0 ] || fail "agent h2 ended with status $rc after SIGTERM: $(tail -n 5 "$tmp/h2/log")"
grep -q "stopped" "$tmp/h2/log" || fail "no clean stop in h2's log: $(cat "$tmp/h2/log")"
$F fleet check >"$tmp/check" 2>&1 && fail "fleet check passed with h2's agent down"
grep -q "h2 .* no " "$tmp/check" && grep -q "does not answer" "$tmp/check" || fail "h2 down not reported: $(cat "$tmp/check")"
[ "$($F workload state fxvideo | cut -d' ' -f1)" -gt 0 ] || fail "fxvideo stopped while h2's agent was down"
start_agent 2
$F image list --host h2 | grep -q blank || fail "h2's images lost across the restart: $($F image list --host h2)"
migrate fxblank h2
$F list | grep -q "fxblank *h2 *RUNNING" || fail "list after the restart: $($F list)"
echo ok
