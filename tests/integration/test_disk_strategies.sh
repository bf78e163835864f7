# The disk strategies on the blank workload (a Debian 12 overlay clone):
# auto picks full, memory and partial in turn as images come and go on the
# target; a forced strategy the target cannot serve, a same-named image of
# other content, and a target without room are refused before the freeze.
# Every move keeps the service's counter and the files it wrote before the
# freeze.
. "$(dirname "$0")/lib.sh"
testbed_up --test-hooks
"$FASTMIG" workload start blank --host mec1 --name dk
same_boot dk
c=$("$FASTMIG" workload write dk f0)

# migrate NAME TO WANT(auto|...) EXPECT_STRATEGY EXPECT_CHECK: checks the
# report and that every file written so far is there and the counter grew
mig() {
  local to=$1 want=$2 strat=$3 check=$4 out c2 f
  out=$("$FASTMIG" migrate dk --to "$to" --strategy "$want" --json)
  echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print({k: d.get(k) for k in ("ok","strategy","decided_by","bytes_disk","downtime_ms","total_ms","error")})'
  [ "$(jget "$out" ok)" = true ] || fail "$want-mig to $to failed: $(jget "$out" error)"
  [ "$(jget "$out" strategy)" = "$strat" ] || fail "to $to: strategy $(jget "$out" strategy), want $strat"
  [ "$(jget "$out" decided_by)" = "$check" ] || fail "to $to: decided by check $(jget "$out" decided_by), want $check"
  [ "$(jget "$out" state_continuous)" = true ] || fail "to $to: service state not continuous"
  LAST=$out
  state_kept dk "$to" f0
}
bytes() { jget "$LAST" "bytes_disk.$1"; }
untouched() { [ "$(jget "$1" rolled_back)" = false ] && python3 -c 'import sys; assert float(sys.argv[1]) == 0' "$(jget "$1" frozen_ms)"; }

note "1. mec2 holds nothing: full-mig (check 3), base and app travel"
mig mec2 auto full 3
[ "$(bytes base)" -gt 10000000 ] && [ "$(bytes app)" -gt 100000 ] || fail "full-mig did not send the images"
"$FASTMIG" image list --host mec2 | grep -q "^blank " || fail "mec2 did not keep the app image"

note "2. back: mec1 holds the app image: memory-mig (check 1), only the upper layer"
mig mec1 auto memory 1
[ "$(bytes base)" = 0 ] && [ "$(bytes app)" = 0 ] || fail "memory-mig sent images"

note "3. mec2 kept the image from step 1: memory-mig"
mig mec2 auto memory 1

note "4. mec1 loses the app image, keeps the base: partial-mig (check 2)"
"$FASTMIG" image rm blank --host mec1
mig mec1 auto partial 2
[ "$(bytes base)" = 0 ] && [ "$(bytes app)" -gt 100000 ] || fail "partial-mig sent the wrong layers"

note "5. forced full-mig although mec2 has everything: the whole tree travels"
mig mec2 full full 1
[ "$(bytes base)" -gt 10000000 ] || fail "forced full-mig skipped the base"

note "6. a forced memory-mig to a host without the app image is refused, the service never stops"
"$FASTMIG" image rm blank --host mec1
out=$("$FASTMIG" migrate dk --to mec1 --strategy memory --json) && fail "memory-mig without the image went through"
untouched "$out" || fail "refusal touched the service"
echo "$(jget "$out" error)" | grep -q "lacks app image" || fail "unclear refusal: $(jget "$out" error)"
c2=$("$FASTMIG" workload write dk after-refusal); [ "$c2" -gt "$c" ] || fail "counter"; c=$c2

note "7. same name, other content on mec1: never a match (partial-mig)"
"$FASTMIG" image build blank --host mec1 --seed 7
"$FASTMIG" image list --host mec1 --json | python3 -c '
import json,sys; d=json.load(sys.stdin); n=[i for i in d["images"] if i["name"]=="blank"]; assert len(n)==1, n'
mig mec1 auto partial 2
"$FASTMIG" image list --host mec1 --json | python3 -c '
import json,sys; d=json.load(sys.stdin); n=[i for i in d["images"] if i["name"]=="blank"]; assert len(n)==2, n' \
  || fail "mec1 should now hold both images named blank"

note "8. a target without room refuses before the freeze (injected: no free space)"
out=$("$FASTMIG" migrate dk --to mec2 --inject-failure room --json) && fail "migration without room went through"
echo "$(jget "$out" error)" | grep -q "MB free" || fail "unclear refusal: $(jget "$out" error)"
untouched "$out" || fail "refusal touched the service"
c2=$("$FASTMIG" workload write dk after-room); [ "$c2" -gt "$c" ] || fail "counter"
"$FASTMIG" list | grep -q "dk *mec1 *RUNNING" || fail "dk not running on mec1"

note "9. an image in use cannot be removed"
"$FASTMIG" image rm debian12 --host mec1 && fail "removed the base of a running clone"

note "10. push places an image ahead of time; the next migration there is a memory-mig"
"$FASTMIG" image rm blank --host mec2
"$FASTMIG" image list --host mec2 | grep -q "^blank " && fail "blank still on mec2"
eval "$("$FASTMIG" testbed env mec1)"
app=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["app"])' "$LXC_PATH/dk/fastmig-image")
"$FASTMIG" image push "${app:0:16}" --to mec2
"$FASTMIG" image list --host mec2 --json | grep -q "$app" || fail "push did not place $app on mec2"
mig mec2 auto memory 1

note "11. the images fail after the freeze began (injected): rollback, the service runs on mec2, nothing lost"
out=$("$FASTMIG" migrate dk --to mec1 --strategy full --inject-failure images_tail --json) \
  && fail "migration with failing images went through"
[ "$(jget "$out" rolled_back)" = true ] || fail "not rolled back: $out"
python3 -c 'import sys; assert float(sys.argv[1]) > 0' "$(jget "$out" frozen_ms)" || fail "failed before the freeze"
echo "$(jget "$out" error)" | grep -q "images failed after the freeze" || fail "unclear error: $(jget "$out" error)"
"$FASTMIG" list | grep -q "dk *mec2 *RUNNING" || fail "dk not running on mec2 after the rollback"
c2=$("$FASTMIG" workload write dk after-tail); [ "$c2" -gt "$c" ] || fail "counter after rollback: $c -> $c2"; c=$c2
eval "$("$FASTMIG" testbed env mec2)"
"$FASTMIG" testbed exec mec2 -- lxc-attach -P "$LXC_PATH" -n dk -- cat /data/f0 >/dev/null || fail "f0 lost"
"$FASTMIG" list | grep -q "dk *mec1" && fail "a copy of dk left on mec1"
note "... and the next full-mig there goes through"
mig mec1 full full 1
echo ok
