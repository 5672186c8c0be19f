// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmem_movable_test - HugeTLB guest_memfd takes no pool page from
 * ZONE_MOVABLE.
 *
 * Guest memory is never migrated, so a guest_memfd huge page in ZONE_MOVABLE
 * (or CMA) would make memory offline and CMA allocations fail.  In a boot
 * with a movable zone (movablecore=), where a growing 2M pool takes its pages
 * first, the test grows the pool, creates a file as large as all its free
 * pages (the reservation counts every one) and allocates it a huge page at a
 * time until fallocate() fails with ENOSPC: every page it got lies outside
 * the movable zones (pagemap), and the pages it was refused are still free.
 * The pool is restored at the end.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include <linux/falloc.h>
#include <linux/sizes.h>

#include "gmem_hugetlb_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"

#define GROW		64
#define POOL_2M		"/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"

struct pfn_range {
	u64 start, end;
};

/* The movable zones' PFN spans, from /proc/zoneinfo; returns how many. */
static int movable_zones(struct pfn_range *r, int max, u64 *pages)
{
	bool movable = false;
	char line[256];
	u64 start = 0, spanned;
	int n = 0;
	FILE *f;

	*pages = 0;
	f = fopen("/proc/zoneinfo", "r");
	TEST_ASSERT(f, "/proc/zoneinfo");
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, "Node", 4)) {
			movable = strstr(line, "zone  Movable") || strstr(line, "zone Movable");
			continue;
		}
		if (!movable)
			continue;
		if (sscanf(line, " spanned %lu", &spanned) == 1) {
			*pages += spanned;
			continue;
		}
		if (sscanf(line, " start_pfn: %lu", &start) == 1 && n < max) {
			/* start_pfn follows spanned in the zone's block. */
			r[n].start = start;
			r[n].end = start + spanned;
			n += spanned > 0;
		}
	}
	fclose(f);
	return n;
}

int main(int argc, char *argv[])
{
	struct gmem_hp_counts pool;
	struct pfn_range zones[8];
	u64 movable_pages, i, n, got, pfn;
	long old_nr;
	struct kvm_vm *vm;
	char val[32];
	int nz, z, fd;
	u8 *mem;

	nz = movable_zones(zones, ARRAY_SIZE(zones), &movable_pages);
	TEST_REQUIRE(nz > 0);
	gmem_hvm_require(2048, 0);

	ksft_print_header();
	ksft_set_plan(1);
	/* Growing pages land in the movable zones first. */
	old_nr = gmem_read_long(POOL_2M, true);
	snprintf(val, sizeof(val), "%ld", old_nr + GROW);
	gmem_write_str(POOL_2M, val);
	gmem_hp_read(2048, &pool);
	n = pool.free - pool.resv;
	ksft_print_msg("%d movable zones of %lu pages; 2M pool %ld -> %ld, %lu free\n", nz,
		       movable_pages, old_nr, pool.nr, n);

	vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	fd = vm_create_guest_memfd(vm, n * SZ_2M,
				   GMEM_FLAGS_SHARED_HUGETLB | GUEST_MEMFD_FLAG_HUGE_2MB);
	mem = kvm_mmap(n * SZ_2M, PROT_READ, MAP_SHARED, fd);
	for (got = 0; got < n; got++) {
		if (fallocate(fd, FALLOC_FL_KEEP_SIZE, got * SZ_2M, SZ_2M)) {
			TEST_ASSERT(errno == ENOSPC, "fallocate of huge page %lu: errno %d",
				    got, errno);
			break;
		}
	}
	for (i = 0; i < got; i++) {
		TEST_ASSERT(host_touch(mem + i * SZ_2M, false), "huge page %lu raised SIGBUS", i);
		pfn = gmem_pagemap_pfn(mem + i * SZ_2M);
		TEST_ASSERT(pfn, "no PFN for huge page %lu", i);
		for (z = 0; z < nz; z++)
			TEST_ASSERT(pfn < zones[z].start || pfn >= zones[z].end,
				    "huge page %lu (pfn 0x%lx) is in ZONE_MOVABLE [0x%lx, 0x%lx)",
				    i, pfn, zones[z].start, zones[z].end);
	}
	/* The refused pages are free, reserved for the file, and movable. */
	gmem_hp_check(2048, &pool, -(long)got, (long)(n - got), "after allocating the file");
	TEST_ASSERT(got < n, "all %lu free pages were taken: none in ZONE_MOVABLE?", n);
	ksft_print_msg("%lu of %lu free huge pages taken, %lu (movable) refused\n",
		       got, n, n - got);
	kvm_munmap(mem, n * SZ_2M);
	close(fd);
	kvm_vm_free(vm);

	snprintf(val, sizeof(val), "%ld", old_nr);
	gmem_write_str(POOL_2M, val);
	ksft_test_result_pass("%lu huge pages taken, none in ZONE_MOVABLE\n", got);
	ksft_finished();
}
