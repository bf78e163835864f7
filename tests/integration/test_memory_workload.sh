# The memory workload: its own page check passes after a migration, for
# 64 MiB with pages being rewritten and for 512 MiB; and the check does catch a
# page that is not what its generation implies (one byte changed from outside).
. "$(dirname "$0")/lib.sh"
testbed_up
"$FASTMIG" workload start memory --host mec1 --name mem --size-mib 64 --dirty-mib-s 1
out=$("$FASTMIG" migrate mem --to mec2 --json)
echo "$out"
[ "$(jget "$out" ok)" = true ] || fail "64 MiB migration failed"
[ "$(jget "$out" memory_verified)" = true ] || fail "64 MiB: memory not verified"
[ "$(jget "$out" memory_pages)" = 16384 ] || fail "64 MiB: wrong page count"
[ "$(jget "$out" state_continuous)" = true ] || fail "64 MiB: state lost"
python3 -c "import sys; assert int(sys.argv[1]) > 64 << 20" "$(jget "$out" bytes_memory)" || fail "images smaller than the memory"

# the checker itself: flip one byte of the workload's memory through /proc/PID/mem
pid=$(pgrep -f 'fm-seqecho --mem-mib 64' | head -n1)
[ -n "$pid" ] || fail "no memory workload process"
python3 - "$pid" <<'PY'
import sys
pid = sys.argv[1]
for line in open(f"/proc/{pid}/maps"):
    lo, hi = (int(x, 16) for x in line.split()[0].split("-"))
    if hi - lo >= 64 << 20:          # the 64 MiB region
        with open(f"/proc/{pid}/mem", "r+b", buffering=0) as m:
            m.seek(lo + 5 * 4096 + 8)
            b = m.read(1)
            m.seek(lo + 5 * 4096 + 8)
            m.write(bytes([b[0] ^ 0xff]))
        break
else:
    sys.exit("region not found")
PY
if v=$("$FASTMIG" workload verify mem); then fail "a changed page was not detected: $v"; fi
echo "$v"
case "$v" in *" 16384 pages, 1 bad"*) ;; *) fail "not exactly one bad page: $v" ;; esac

"$FASTMIG" workload start memory --host mec1 --name big --size-mib 512 --dirty-mib-s 1
out=$("$FASTMIG" migrate big --to mec2 --json)
echo "$out"
[ "$(jget "$out" ok)" = true ] && [ "$(jget "$out" memory_verified)" = true ] || fail "512 MiB not verified"
[ "$(jget "$out" memory_pages)" = 131072 ] || fail "512 MiB: wrong page count"
echo ok
