#!/bin/bash
# make run: boot the VM, show its NUMA and hugetlb layout and a guest running
# on 1G guest_memfd, then a small benchmark (tests/run-plan) and its summary.
set -euo pipefail
BUILD=${BUILD:?}
TOP=${TOP:?}
echo "run: two boots of the test VM (QEMU TCG), a few minutes"
SHOW="run/topology run/gmem_run_1g" exec "$TOP/scripts/bench.sh" "$TOP/tests/run-plan" "$BUILD/run"
