#!/bin/sh
# Print what a test must leave as it found it, one "name value" a line:
# the HugeTLB counters of both page sizes, globally and per node, and the
# cgroups that exist (a cgroup left behind, or a dying one, holds charges).
# The runner (init) compares this before and after every test.
hp=/sys/kernel/mm/hugepages
for d in $hp/hugepages-*; do
	s=${d##*/}
	for c in nr_hugepages free_hugepages resv_hugepages surplus_hugepages \
		 nr_overcommit_hugepages; do
		echo "$s/$c $(cat $d/$c)"
	done
done
for d in /sys/devices/system/node/node*/hugepages/hugepages-*; do
	n=${d%/hugepages/*}
	for c in nr_hugepages free_hugepages surplus_hugepages; do
		echo "${n##*/}/${d##*/}/$c $(cat $d/$c)"
	done
done
for c in /sys/fs/cgroup/*/; do
	[ -d "$c" ] && echo "cgroup ${c%/}"
done
awk '$1 == "nr_dying_descendants" { print "cgroup_dying " $2 }' \
	/sys/fs/cgroup/cgroup.stat 2>/dev/null
exit 0
