# The sanitized agent ends cleanly on SIGTERM: exit status 0, no child left,
# and LeakSanitizer ran at its exit and found nothing. It listens on its one
# port only (rsync comes through it: no daemon of its own).
# No testbed: the agent runs in this host's namespaces, as on a real host,
# on a port of its own (test_testbed.sh's real host uses 7199).
#
#   python3 ──ping, list, info──► build-san/fastmigd 127.0.0.1:7198 (its only listening port)
#                 SIGTERM ──────► exit 0, no child left, no file in $logs
#
# A control run first proves that a leak would be seen: the same agent with a
# small library preloaded that leaks one block must end with LSan's report of
# that block. It stands for a leak in the agent without putting one in it.
. "$(dirname "$0")/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)
san=$(cd "$here/../.." && pwd)/build-san
[ -x "$san/fastmigd" ] || fail "sanitizer build missing at $san (meson setup build-san -Db_sanitize=address,undefined -Db_lundef=false)"
port=7198

tmp=$(mktemp -d /tmp/fm-agent-exit.XXXXXX)
agent=
cleanup() {
  [ -n "$agent" ] && kill -9 "$agent" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
"$FASTMIG" pki init --dir "$tmp/pki" --fleet ax >/dev/null
"$FASTMIG" pki issue ax --role host --ip 127.0.0.1 --dir "$tmp/pki" >/dev/null
"$FASTMIG" pki issue operator --role operator --dir "$tmp/pki" >/dev/null

# one block, allocated in a thread (so no stale copy of its address stays on
# a stack LSan scans) and dropped; LD_PRELOAD is not passed on to the
# agent's children (criu, rsync)
cat >"$tmp/leak.c" <<'EOF'
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
void *fm_test_leak(void *arg)
{
        char *p = malloc(4242);
        if (p)
                memset(p, 1, 4242);
        return arg;
}
__attribute__((constructor)) static void leak_once(void)
{
        pthread_t t;
        if (pthread_create(&t, NULL, fm_test_leak, NULL) == 0)
                pthread_join(t, NULL);
        unsetenv("LD_PRELOAD");
}
EOF
cc -g -O0 -shared -fPIC -pthread -o "$tmp/leak.so" "$tmp/leak.c"
libasan=$(ldd "$san/fastmigd" | awk '/libasan/ {print $3}')
[ -n "$libasan" ] || fail "$san/fastmigd is not linked with ASan"

# run_agent NAME [ENV=VALUE...]: starts the agent with its sanitizer logs in
# $tmp/NAME/logs, sends it a few requests, stops it with SIGTERM; sets rc.
run_agent() {
  local d=$tmp/$1; shift
  mkdir -p "$d/lxc" "$d/images" "$d/state" "$d/logs"
  env ASAN_OPTIONS="log_path=$d/logs/asan:detect_leaks=1:abort_on_error=0" \
    UBSAN_OPTIONS="log_path=$d/logs/ubsan:print_stacktrace=1" \
    LSAN_OPTIONS="suppressions=$here/lsan.supp:print_suppressions=0" "$@" \
    "$san/fastmigd" --host ax --listen 127.0.0.1:$port --lxcpath "$d/lxc" --images "$d/images" \
    --state "$d/state" --store "$d/store" --pki "$tmp/pki" 2>"$d/log" &
  agent=$!
  for _ in $(seq 100); do grep -q serving "$d/log" && break; sleep 0.1; done
  grep -q serving "$d/log" || fail "agent did not start: $(cat "$d/log")"
  local ports
  ports=$(ss -Hltnp | grep "pid=$agent," | awk '{print $4}' | sort -u | tr '\n' ' ')
  [ "$ports" = "127.0.0.1:$port " ] || fail "the agent listens on: ${ports:-nothing} (expected 127.0.0.1:$port only)"
  FASTMIG_PKI=$tmp/pki PYTHONPATH=$here python3 - $port <<'PY' || fail "agent does not answer: $(cat "$d/log")"
import sys
import fmtls
def call(req):
    rep = fmtls.call("127.0.0.1:" + sys.argv[1], req, timeout=5)
    assert rep is not None, "connection closed"
    return rep
assert call({"op": "ping"})["ok"]
assert call({"op": "list"})["containers"] == []
assert not call({"op": "info", "name": "nope"})["ok"]
assert not call({"op": "nosuchop"})["ok"]
PY
  # bounded: the agent's grace for requests under way is 5 s
  kill -TERM "$agent"
  local st=
  for _ in $(seq 200); do
    st=$(awk '{print $3}' "/proc/$agent/stat" 2>/dev/null || echo gone)
    if [ "$st" = Z ] || [ "$st" = gone ]; then break; fi
    sleep 0.1
  done
  [ "$st" = Z ] || [ "$st" = gone ] || fail "$1: the agent did not end within 20 s of SIGTERM"
  rc=0
  wait "$agent" || rc=$?
  agent=
}

note "control: a leak present at SIGTERM is reported"
run_agent control LD_PRELOAD="$libasan $tmp/leak.so"
[ "$rc" -ne 0 ] || fail "control: exit status 0 with a leak: LSan did not run ($(cat "$tmp/control/log"))"
# ASan and UBSan share one report file (whichever runtime set log_path
# last names it): look in both
grep -qs "LeakSanitizer: detected memory leaks" "$tmp"/control/logs/* &&
  grep -qs "fm_test_leak" "$tmp"/control/logs/* ||
  fail "control: no LSan report of the preloaded leak (status $rc): $(cat "$tmp"/control/logs/* 2>/dev/null | head -n 20)"

note "the agent: SIGTERM ends it with status 0, no child and no sanitizer report"
run_agent clean
[ "$rc" -eq 0 ] || fail "exit status $rc after SIGTERM: $(cat "$tmp/clean/log"; cat "$tmp"/clean/logs/* 2>/dev/null | head -n 60)"
if ls "$tmp"/clean/logs/* >/dev/null 2>&1; then
  cat "$tmp"/clean/logs/* | head -n 60
  fail "sanitizer reports after SIGTERM"
fi
grep -q "stopped" "$tmp/clean/log" || fail "no clean stop in the log: $(cat "$tmp/clean/log")"
! pgrep -f "$tmp/clean/" >/dev/null || fail "a child of the agent outlived it: $(pgrep -af "$tmp/clean/")"
echo ok
