#!/bin/bash
# The one definition of the test VM.
#   vm.sh NAME PLAN OUTDIR [kernel parameters...]
# Boots $BUILD/obj's bzImage (obj-$PROFILE's, or $KERNEL) with the base
# initramfs plus PLAN (tab-separated:
# id, timeout, command), and leaves OUTDIR/console.log (kernel log, serial 0)
# and OUTDIR/results.log (TAP from the runner, serial 1).
# TCG_THREAD=multi runs the vCPUs in parallel: faster, but QEMU 7.2's
# multi-threaded TCG is not reliable under nested SVM (README, "How tests run").
# QEMU_CPU replaces -cpu max.  EXTRA_CMDLINE is added to every boot's
# kernel parameters (e.g. the SEV-SNP parameters, to run every test with
# them on).
set -euo pipefail
BUILD=${BUILD:?}
name=$1 plan=$2 out=$3
shift 3

mkdir -p "$out/root"
cp "$plan" "$out/root/plan"
echo "$name" > "$out/root/boot-name"
(cd "$out/root" && printf '%s\n' plan boot-name | cpio -o -H newc --quiet -R 0:0) > "$out/plan.cpio"
# The kernel reads concatenated archives; the second must start 4-byte aligned.
cp "$BUILD/initramfs.cpio.gz" "$out/initramfs"
truncate -s %512 "$out/initramfs"
cat "$out/plan.cpio" >> "$out/initramfs"

# Two NUMA nodes with their own memory and their own 1G and 2M pools;
# vmemmap optimisation on so the split path meets it.
cmdline="console=ttyS0 panic=-1 loglevel=7 hung_task_panic=0
	hugetlb_free_vmemmap=on default_hugepagesz=2M
	hugepagesz=1G hugepages=0:1,1:1 hugepagesz=2M hugepages=0:64,1:64 $*"

# KASAN's shadow (an eighth of RAM) comes out of node 0 before the boot-time
# 1G pages do: give node 0 two more GiB on that kernel, so it still has one.
# Its slow KUnit cases run past the hung-task timeout at boot, before any
# sysctl can raise it: they run in make check, not there.
# The runner gives its tests four times their timeouts (tests/init).
m0=5G
extra=
scale=1
if [ "${PROFILE:-}" = kasan ]; then
	m0=7G
	extra=kunit.filter=speed\>slow
	scale=4
	# movablecore's zone is node 0's top, where the shadow went too.
	cmdline=${cmdline/movablecore=1G/movablecore=3G}
fi
cmdline="$cmdline $extra ${EXTRA_CMDLINE:-}"

# Bounded by the plan's timeouts plus boot time.
limit=$(awk -F'\t' -v k=$scale '{ s += $2 } END { print s * k + 300 }' "$plan")

: > "$out/console.log"
: > "$out/results.log"
rc=0
timeout "$limit" qemu-system-x86_64 \
	-accel tcg,thread=${TCG_THREAD:-single} -cpu ${QEMU_CPU:-max} -smp 2,sockets=2,cores=1,threads=1 -m $((${m0%G} + 4))G \
	-object memory-backend-ram,id=m0,size=$m0 \
	-object memory-backend-ram,id=m1,size=4G \
	-numa node,nodeid=0,cpus=0,memdev=m0 \
	-numa node,nodeid=1,cpus=1,memdev=m1 \
	-nodefaults -display none -no-reboot \
	-serial "file:$out/console.log" -serial "file:$out/results.log" \
	-kernel "${KERNEL:-$BUILD/obj${PROFILE:+-$PROFILE}/arch/x86/boot/bzImage}" -initrd "$out/initramfs" \
	-append "$(echo $cmdline)" || rc=$?
[ $rc -eq 124 ] && echo "vm: $name: QEMU killed after ${limit}s" >&2
exit 0
