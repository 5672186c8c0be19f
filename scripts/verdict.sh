#!/bin/bash
# Judge one boot: verdict.sh NAME OUTDIR
# Prints each result, the output of failed tests, and any kernel splat; the
# last line is "passed failed" for check.sh to add up.
set -euo pipefail
name=$1 out=$2
res=$out/results.log con=$out/console.log
tr -d '\r' < "$res" > "$out/results.txt"
tr -d '\r' < "$con" > "$out/console.txt"

# Test output sits above its result line: print it for failures only.
awk -v boot="$name" '
/^# ---- / { buf = ""; next }
/^# /      { buf = buf "    " substr($0, 3) "\n"; next }
/^not ok / { printf "%s", buf; buf = ""; sub(/^not ok [0-9]+ /, ""); print "FAIL " boot ":" $0; next }
/^ok /     { buf = ""; sub(/^ok [0-9]+ /, ""); print "PASS " boot ":" $0; next }
' "$out/results.txt" > "$out/verdict.txt"
cat "$out/verdict.txt"
pass=$(grep -c '^PASS ' "$out/verdict.txt" || true)
fail=$(grep -c '^FAIL ' "$out/verdict.txt" || true)

# Every planned test must have reported (a crash, hang or QEMU timeout stops the plan).
while IFS=$'\t' read -r id _; do
	if ! grep -qE "^(not )?ok [0-9]+ $id( |\$)" "$out/results.txt"; then
		echo "FAIL $name:$id # no result: the boot did not get there (see $con)"
		fail=$((fail + 1))
	fi
done < "$out/root/plan"

# Any kernel splat fails the boot, whatever the tests printed.
splat='WARNING:|BUG:|kernel BUG at|Oops|Kernel panic|general protection fault|'
splat+='possible circular locking|possible recursive locking|inconsistent lock state|'
splat+='DEBUG_LOCKS_WARN_ON|suspicious RCU usage|INFO: lockdep|page dumped because|'
splat+='VM_BUG_ON|VM_WARN|blocked for more than|UBSAN:|Call Trace:|RIP: '
if grep -qE "$splat" "$out/console.txt"; then
	echo "FAIL $name:dmesg has a kernel splat:"
	grep -nE -B2 -A25 "$splat" "$out/console.txt" | head -n 80 | sed 's/^/    /'
	fail=$((fail + 1))
fi
echo "$pass $fail"
