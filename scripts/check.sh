#!/bin/bash
# make check: boot once per line of tests/boots that has selected tests, run
# them, judge each boot (results and dmesg), run checkpatch, add it all up.
set -euo pipefail
BUILD=${BUILD:?}
TOP=${TOP:?}
T=${T:-}
# make stress runs tests/stress-plan instead, without checkpatch.
PLAN=${PLAN:-$TOP/tests/plan}
# The gate judges a debug kernel: a splat it would catch must not hide.
# PROFILE=kasan keeps every debug option and adds the sanitizers.
if [ "${PROFILE:-}" = bench ] && [ "$PLAN" = "$TOP/tests/plan" ]; then
	echo "check: make check needs a debug kernel; PROFILE=bench has none" >&2
	exit 1
fi
runs=$BUILD/runs
rm -rf "$runs"
mkdir -p "$runs"

passed=0 failed=0
start=$SECONDS
while read -r boot params; do
	plan=$runs/$boot.plan
	awk -F'\t' -v b="$boot" -v pat="$T" '
		/^#/ || NF < 4 { next }
		$1 == b && (pat == "" || $2 ~ pat) { print $2 "\t" $3 "\t" $4 }' "$PLAN" > "$plan"
	[ -s "$plan" ] || continue
	echo "==== boot $boot${params:+ ($params)}: $(wc -l < "$plan") tests"
	"$TOP/scripts/vm.sh" "$boot" "$plan" "$runs/$boot" $params
	read -r p f _ < <("$TOP/scripts/verdict.sh" "$boot" "$runs/$boot" | tee "$runs/$boot.verdict" | tail -n 1)
	sed '$d' "$runs/$boot.verdict"
	passed=$((passed + p))
	failed=$((failed + f))
done < <(sed -e 's/[[:space:]]*#.*//' -e '/^[[:space:]]*$/d' "$TOP/tests/boots")

if [ "$PLAN" = "$TOP/tests/plan" ] && { [ -z "$T" ] || [[ checkpatch =~ $T ]]; }; then
	echo "==== checkpatch --strict on linux/"
	if "$TOP/scripts/checkpatch.sh"; then
		echo "PASS checkpatch"
		passed=$((passed + 1))
	else
		echo "FAIL checkpatch"
		failed=$((failed + 1))
	fi
fi

if [ $((passed + failed)) -eq 0 ]; then
	echo "check: no test matches T='$T'" >&2
	exit 1
fi
echo "check: $((SECONDS - start))s for boots and checks (QEMU TCG; logs in $runs)"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
