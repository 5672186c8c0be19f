#!/bin/sh
# The test VM must look like the machines this project is for: two NUMA
# nodes, each with its own memory and its own 1G and 2M hugetlb pages,
# KVM usable, and hugetlb vmemmap optimisation on.
fail=0
check() {
	if [ "$2" = "$3" ]; then
		echo "ok: $1 = $2"
	else
		echo "FAIL: $1 = $2, want $3"
		fail=1
	fi
}
check "online nodes" "$(cat /sys/devices/system/node/online)" "0-1"
for n in 0 1; do
	d=/sys/devices/system/node/node$n/hugepages
	check "node$n 1G pages" "$(cat $d/hugepages-1048576kB/nr_hugepages)" 1
	check "node$n 2M pages" "$(cat $d/hugepages-2048kB/nr_hugepages)" 64
done
check "/dev/kvm" "$(test -c /dev/kvm && echo present)" present
check "hugetlb_optimize_vmemmap" "$(cat /proc/sys/vm/hugetlb_optimize_vmemmap)" 1
numactl -H
grep -i huge /proc/meminfo
exit $fail
