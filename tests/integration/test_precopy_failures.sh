# Pre-copy failures abort cleanly: a corrupted final stream (one byte of a page
# flipped in flight, in the lazy dump's answers or in the full dump's files), a target that lost the pages of the rounds (references
# it cannot resolve), a lazy restore whose lazy-pages daemon dies while it
# fills the restored memory (after the service already ran on the target and
# traffic moved there), and a target whose tmpfs is full. Each time the
# migration exits non-zero and says why, the service answers from the source
# with its memory intact, and the target keeps nothing.
. "$(dirname "$0")/lib.sh"
testbed_up --test-hooks
"$FASTMIG" workload start memory --host mec1 --name pf --size-mib 32 --dirty-mib-s 1
same_boot pf
imgs=/var/lib/fastmig/testbed/mec2/images

check_source_ok() { # what
  same_boot pf
  c=$("$FASTMIG" workload write pf "after-$1")
  [ "$c" -gt "$2" ] || fail "$1: service lost its state ($2 -> $c)"
  "$FASTMIG" list | grep -q "pf *mec1 *RUNNING" || fail "$1: not running on mec1"
  "$FASTMIG" workload verify pf >/dev/null || fail "$1: memory damaged on the source"
  ! "$FASTMIG" list | grep -q mec2 || fail "$1: container left on mec2"
  [ -z "$(ls -A "$imgs")" ] || fail "$1: left on mec2: $(ls -A "$imgs")"
}

# both with the lazy final dump (the pages travel on the target's demand)
# and with the full one (they travel as files)
for dump in lazy full; do
for inject in corrupt_pages lose_pages; do
  c0=$("$FASTMIG" workload write pf "before-$inject")
  set +e
  out=$("$FASTMIG" migrate pf --to mec2 --mode precopy --dump $dump --json --inject-failure $inject 2>/tmp/fm-pf.$$)
  rc=$?
  set -e
  echo "$out"
  [ $rc -ne 0 ] || fail "$inject: exit 0"
  [ "$(jget "$out" rolled_back)" = true ] || fail "$inject: not rolled back"
  # a full dump's pages are checked before the target runs: nothing is
  # lost. A lazy dump's are checked as the running target asks for them: a
  # damaged one may come after the target answered a few requests, which
  # the rollback to the source copy takes back (the counter goes back);
  # the source copy itself is intact (check_source_ok)
  if [ $dump = full ] || [ "$(jget "$out" state_continuous)" != false ]; then
    [ "$(jget "$out" state_continuous)" = true ] || fail "$inject: state not kept: $(jget "$out" probe.not_kept)"
  else
    jget "$out" probe.not_kept | grep -q "counter went back" || fail "$inject: $(jget "$out" probe.not_kept)"
  fi
  case $inject in
    corrupt_pages) grep -q "match.* checksum" /tmp/fm-pf.$$ || fail "corrupt: $(cat /tmp/fm-pf.$$)" ;;
    lose_pages) grep -q "page the target lacks" /tmp/fm-pf.$$ || fail "lose: $(cat /tmp/fm-pf.$$)" ;;
  esac
  [ "$(jget "$out" dump)" = $dump ] || fail "$inject: dump $(jget "$out" dump), not $dump"
  check_source_ok "$inject-$dump" "$c0"
done
done

# the lazy-pages daemon dies before the restored memory is complete (the
# test hook stops it between the restore and the thaw, then kills it): the
# service ran on the target and traffic went there, yet the source copy,
# still intact, takes over again. 256 MiB, so the daemon cannot be done
# before it is stopped.
"$FASTMIG" workload start memory --host mec1 --name pl --size-mib 256 --dirty-mib-s 1
same_boot pl
c0=$("$FASTMIG" workload write pl before-settle)
set +e
out=$("$FASTMIG" migrate pl --to mec2 --json --inject-failure settle 2>/tmp/fm-pf.$$)
rc=$?
set -e
echo "$out"
[ $rc -ne 0 ] || fail "settle: exit 0"
[ "$(jget "$out" rolled_back)" = true ] || fail "settle: not rolled back"
[ "$(jget "$out" restore)" = lazy ] || fail "settle: the restore was not lazy"
[ "$(jget "$out" state_continuous)" = true ] || fail "settle: state not kept: $(jget "$out" probe.not_kept)"
grep -q "lazy-pages daemon of pl was killed" /tmp/fm-pf.$$ || fail "settle: $(cat /tmp/fm-pf.$$)"
same_boot pl
c=$("$FASTMIG" workload write pl after-settle)
[ "$c" -gt "$c0" ] || fail "settle: service lost its state ($c0 -> $c)"
"$FASTMIG" list | grep -q "pl *mec1 *RUNNING" || fail "settle: not running on mec1"
"$FASTMIG" workload verify pl >/dev/null || fail "settle: memory damaged on the source"
[ -z "$(ls -A "$imgs")" ] || fail "settle: left on mec2: $(ls -A "$imgs")"
[ -s /var/lib/fastmig/testbed/mec1/lxc/pl/rootfs/data/before-settle ] || fail "settle: a file written before the freeze is gone"

# a full tmpfs on the target: no room for the rounds' pages
avail=$(df -B1 --output=avail "$imgs" | tail -n1)
fallocate -l $((avail - (8 << 20))) "$imgs/.filler"
c0=$("$FASTMIG" workload write pf before-full)
set +e
"$FASTMIG" migrate pf --to mec2 --mode precopy 2>/tmp/fm-pf.$$
rc=$?
set -e
rm -f "$imgs/.filler"
[ $rc -ne 0 ] || fail "full tmpfs: exit 0"
grep -qi "no room\|full\|space" /tmp/fm-pf.$$ || fail "full tmpfs: unclear: $(cat /tmp/fm-pf.$$)"
check_source_ok full "$c0"
rm -f /tmp/fm-pf.$$
# and a clean pre-copy still works afterwards
out=$("$FASTMIG" migrate pf --to mec2 --mode precopy --json)
[ "$(jget "$out" ok)" = true ] && [ "$(jget "$out" memory_verified)" = true ] || fail "clean pre-copy afterwards"
echo ok
