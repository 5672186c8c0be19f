#!/bin/bash
# make bench / make run: boot once per boot named in PLAN, run it, show the
# benchmark's progress, judge each boot as make check does, and write the
# report (scripts/bench-report.sh) into OUT.
#   bench.sh PLAN OUT
set -euo pipefail
BUILD=${BUILD:?}
TOP=${TOP:?}
plan=$1 out=$2
runs=$out/runs
rm -rf "$runs"
mkdir -p "$runs"

failed=0 results=()
start=$SECONDS
while read -r boot params; do
	p=$runs/$boot.plan
	awk -F'\t' -v b="$boot" '/^#/ || NF < 4 { next } $1 == b { print $2 "\t" $3 "\t" $4 }' \
		"$plan" > "$p"
	[ -s "$p" ] || continue
	echo "==== boot $boot${params:+ ($params)}: $(wc -l < "$p") steps (QEMU TCG)"
	"$TOP/scripts/vm.sh" "$boot" "$p" "$runs/$boot" $params &
	vm=$!
	sleep 1
	# Progress from the kernel log, which streams: the runner logs each
	# step's start and end, the benchmark each of its own steps.
	tail -n +1 -f --pid=$vm "$runs/$boot/console.log" |
		sed -un 's/\r$//; s/^\[[ 0-9.]*\] \(gmem-runner: .*\|gmem_bench: \[.*\)/  \1/p'
	wait $vm || true
	"$TOP/scripts/verdict.sh" "$boot" "$runs/$boot" > "$runs/$boot.verdict" || true
	read -r _ f _ < <(tail -n 1 "$runs/$boot.verdict")
	if [ "$f" -ne 0 ]; then
		grep -v '^PASS ' "$runs/$boot.verdict" | sed '$d'
		failed=$((failed + f))
	fi
	results+=("$runs/$boot/results.txt")
done < <(sed -e 's/[[:space:]]*#.*//' -e '/^[[:space:]]*$/d' "$TOP/tests/boots")

echo "bench: $((SECONDS - start))s of boots (logs in $runs)"
# SHOW: ids of steps whose output to print (make run's layout and guest).
for id in ${SHOW:-}; do
	echo "---- $id"
	awk -v id="$id" '$0 ~ "^# ---- " id ":" { p = 1; next }
		/^# ---- / || /^(not )?ok / { p = 0 } p' "${results[@]}" | sed 's/^# \{0,1\}//'
done
"$TOP/scripts/bench-report.sh" "$out" "${results[@]}"
echo "bench: report $out/report.md, plots $out/*.png"
[ "$failed" -eq 0 ]
