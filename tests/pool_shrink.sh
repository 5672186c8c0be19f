#!/bin/sh
# Runs last in a boot: every huge page of both pools must go back to the
# page allocator whole.  Catches huge pages leaked by earlier tests (the pool
# cannot shrink to zero) and struct pages left dirty by the vmemmap
# optimisation (the free path reports "Bad page state" and leaks the page
# instead of freeing it, so MemFree does not grow).
fail=0
hp=/sys/kernel/mm/hugepages
# Free memory, counting what the per-CPU page lists hold (freed 2M pages
# may sit there without showing in MemFree).
memfree_kb() {
	pcp=$(awk '$1 == "count:" { n += $2 } END { print n * 4 }' /proc/zoneinfo)
	echo $(($(awk '/^MemFree:/ { print $2 }' /proc/meminfo) + pcp))
}
bad_pages() { dmesg | grep -c 'BUG: Bad page state'; }

shrink() {	# shrink SIZE_KB: pool to zero, check MemFree grew by all of it
	d=$hp/hugepages-$1kB
	nr=$(cat $d/nr_hugepages)
	before=$(memfree_kb)
	bad0=$(bad_pages)
	echo 0 > $d/nr_hugepages
	left=$(cat $d/nr_hugepages)
	grown=$(($(memfree_kb) - before))
	want=$((nr * $1))
	echo "$1kB: $nr pages freed, MemFree +${grown}kB (pool held ${want}kB)"
	if [ "$left" != 0 ]; then
		echo "FAIL: $1kB pool still has $left pages (leaked or in use)"
		fail=1
	fi
	# Other allocations may move MemFree a little; a leaked huge page cannot hide.
	if [ $((grown * 10)) -lt $((want * 9)) ]; then
		echo "FAIL: $1kB: MemFree grew ${grown}kB, less than 90% of ${want}kB"
		fail=1
	fi
	if [ "$(bad_pages)" != "$bad0" ]; then
		echo "FAIL: $1kB: 'Bad page state' while freeing the pool"
		fail=1
	fi
}

grep -i huge /proc/meminfo
shrink 1048576
shrink 2048
# A runtime-allocated gigantic page takes the other free path's twin: grow
# and shrink it again (it may not find 1G of contiguous memory: say so).
echo 1 > $hp/hugepages-1048576kB/nr_hugepages
if [ "$(cat $hp/hugepages-1048576kB/nr_hugepages)" = 1 ]; then
	shrink 1048576
else
	echo "note: no runtime 1G page could be allocated; regrow not tested"
fi
exit $fail
