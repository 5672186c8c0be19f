#!/bin/bash
# make run: boot the VM, show its NUMA and hugetlb layout, run a guest on guest_memfd.
set -euo pipefail
BUILD=${BUILD:?}
TOP=${TOP:?}
out=$BUILD/runs/run
rm -rf "$out"
mkdir -p "$out"
printf 'run/topology\t120\t/tests/topology.sh\nrun/gmem_run_1g\t600\t/tests/gmem_run -p 1G\n' > "$out.plan"
echo "run: booting the test VM (QEMU TCG, about a minute)"
"$TOP/scripts/vm.sh" run "$out.plan" "$out" &
vm=$!
# Show what the VM prints while it runs.
sleep 1
tail -n +1 -f --pid=$vm "$out/results.log" | tr -d '\r' | sed -n 's/^# \{0,1\}//p; /^\(not \)\{0,1\}ok /p'
wait $vm
"$TOP/scripts/verdict.sh" run "$out" > "$out/verdict" || true
read -r _ f _ < <(tail -n 1 "$out/verdict")
if [ "$f" -ne 0 ]; then
	sed '$d' "$out/verdict"
	exit 1
fi
echo "run: done (kernel log: $out/console.log)"
