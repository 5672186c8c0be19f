// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmem_poison_test - a memory error in a whole HugeTLB page of a guest_memfd
 * file (-p 2M or 1G).
 *
 * The error is injected at one 4K page of a huge page that is not split, via
 * /sys/kernel/debug/hwpoison/corrupt-pfn (memory_failure() as a machine check
 * would call it; MADV_HWPOISON cannot reach a page that GUP cannot pin).  As
 * in hugetlbfs the whole huge page is lost, and everything says so:
 *  - a host read of any of its pages gets SIGBUS, BUS_MCEERR_AR, with
 *    si_addr_lsb the huge page shift; the other huge pages keep their data;
 *  - a guest read exits with KVM_EXIT_MEMORY_FAULT and EHWPOISON, gpa and
 *    size covering the huge page;
 *  - closing the file gives back everything but the poisoned page, which stays
 *    an in-use huge page charged to the creator's hugetlb cgroup, with no
 *    reservation left behind (globally or in the cgroup).
 * The poisoned page is lost until reboot: this runs in a boot of its own.
 * A 1G pool that has no free page left (earlier poison tests took them)
 * grows by one first.
 *
 * Usage: gmem_poison_test -p 2M|1G
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <linux/sizes.h>

#include "gmem_hugetlb_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"

#define CORRUPT_PFN	"/sys/kernel/debug/hwpoison/corrupt-pfn"
#define CG_ROOT		"/sys/fs/cgroup"

static struct gmem_huge hs = GMEM_HUGE_2M;

static u64 tag(u64 page)
{
	return 0xc0ffee0000000000ull | page;
}

static long cg_long(const char *cg, const char *file)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/hugetlb.%sB.%s", cg, hs.name, file);
	return gmem_read_long(path, true);
}

/* Move this process into @cg (a fresh one, or back to the root). */
static void cg_enter(const char *cg)
{
	char path[256], pid[16];

	snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
	snprintf(pid, sizeof(pid), "%d", getpid());
	gmem_write_str(path, pid);
}

/* One more free page in a pool that has none left unreserved. */
static void pool_grow(void)
{
	struct gmem_hp_counts pool;
	char path[128], val[32];

	gmem_hp_read(hs.kb, &pool);
	if (pool.free - pool.resv >= 1)
		return;
	snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%lukB/nr_hugepages",
		 hs.kb);
	snprintf(val, sizeof(val), "%ld", pool.nr + 1);
	gmem_write_str(path, val);
	gmem_hp_read(hs.kb, &pool);
	ksft_print_msg("%s pool grown to %ld pages, %ld free\n", hs.name, pool.nr, pool.free);
}

static void inject(u64 pfn)
{
	char val[32];
	int fd, len;

	fd = open(CORRUPT_PFN, O_WRONLY);
	__TEST_REQUIRE(fd >= 0, "Can't open " CORRUPT_PFN " (CONFIG_HWPOISON_INJECT, debugfs)");
	len = snprintf(val, sizeof(val), "0x%lx", pfn);
	TEST_ASSERT(write(fd, val, len) == len,
		    "memory_failure() of pfn 0x%lx failed, errno %d (%s)",
		    pfn, errno, strerror(errno));
	close(fd);
}

int main(int argc, char *argv[])
{
	u64 size, pages, blk_pages, victim_blk, victim, first, i, j, probe[4], *expect;
	struct gmem_hp_counts base, now;
	unsigned int huge_shift;
	struct kvm_run *run;
	struct gmem_hvm g;
	char cg[64];
	int opt, r, tries;

	while ((opt = getopt(argc, argv, "p:")) != -1) {
		if (opt != 'p' || !gmem_huge_parse(optarg, &hs)) {
			printf("usage: %s -p 2M|1G\n", argv[0]);
			exit(KSFT_FAIL);
		}
	}
	huge_shift = __builtin_ctzll(hs.size);
	size = hs.nr_blocks * hs.size;
	pages = size / PAGE_SIZE;
	blk_pages = hs.size / PAGE_SIZE;
	/* The second huge page of a 2M file, the only one of a 1G file. */
	victim_blk = hs.nr_blocks > 1;
	first = victim_blk * blk_pages;
	victim = first + 5;
	probe[0] = first;
	probe[1] = victim;
	probe[2] = first + blk_pages / 2;
	probe[3] = first + blk_pages - 1;

	if (hs.kb == 1048576)
		pool_grow();
	gmem_hvm_require(hs.kb, hs.nr_blocks);

	ksft_print_header();
	ksft_set_plan(3);

	snprintf(cg, sizeof(cg), CG_ROOT "/gmem_poison_%d", getpid());
	gmem_write_str(CG_ROOT "/cgroup.subtree_control", "+hugetlb");
	TEST_ASSERT(!mkdir(cg, 0755), "mkdir %s: errno %d", cg, errno);
	cg_enter(cg);
	gmem_hp_read(hs.kb, &base);

	gmem_hvm_create(&g, size, GMEM_FLAGS_SHARED_HUGETLB | hs.flag);
	expect = calloc(pages, sizeof(u64));
	TEST_ASSERT(expect, "calloc");
	for (i = 0; i < pages; i++) {
		expect[i] = tag(i);
		*(u64 *)(g.mem + i * PAGE_SIZE) = expect[i];
	}
	gmem_hvm_guest_check(&g, expect, "before the error");
	gmem_fdinfo_check(g.fd, hs.nr_blocks, 0, 0, 0, "before the error");

	inject(gmem_pagemap_pfn(g.mem + victim * PAGE_SIZE));

	/* Host: the whole huge page is gone, with its size in the SIGBUS. */
	for (j = 0; j < ARRAY_SIZE(probe); j++) {
		i = probe[j];
		TEST_ASSERT(!host_touch(g.mem + i * PAGE_SIZE, false),
			    "page %lu of the poisoned huge page read without SIGBUS", i);
		TEST_ASSERT(sigbus_probe_code == BUS_MCEERR_AR && sigbus_probe_lsb == huge_shift,
			    "page %lu: SIGBUS si_code %d, lsb %d, expected BUS_MCEERR_AR (%d), %u",
			    i, sigbus_probe_code, sigbus_probe_lsb, BUS_MCEERR_AR, huge_shift);
	}
	for (i = 0; i < pages; i++) {
		if (i - first < blk_pages)
			continue;
		TEST_ASSERT(host_touch(g.mem + i * PAGE_SIZE, false) &&
			    *(u64 *)(g.mem + i * PAGE_SIZE) == expect[i],
			    "page %lu of a healthy huge page lost its data", i);
	}
	ksft_test_result_pass("%s: host SIGBUS over the whole huge page, lsb %u\n",
			      hs.name, huge_shift);

	/* Guest: the memory-fault exit covers the huge page. */
	memcpy(g.gexpect, expect, pages * sizeof(u64));
	r = __vcpu_run(g.vcpu);
	run = g.vcpu->run;
	TEST_ASSERT(r == -1 && errno == EHWPOISON && run->exit_reason == KVM_EXIT_MEMORY_FAULT,
		    "guest read of the poisoned huge page: r %d errno %d exit %u",
		    r, errno, run->exit_reason);
	TEST_ASSERT(run->memory_fault.gpa == (u64)(GMEM_HVM_GPA + first * PAGE_SIZE) &&
		    run->memory_fault.size == hs.size,
		    "memory fault exit gpa 0x%llx size 0x%llx, expected 0x%lx size 0x%lx",
		    run->memory_fault.gpa, run->memory_fault.size,
		    (u64)(GMEM_HVM_GPA + first * PAGE_SIZE), hs.size);
	ksft_test_result_pass("%s: KVM_EXIT_MEMORY_FAULT, EHWPOISON, size 0x%lx\n",
			      hs.name, hs.size);

	/* Close: all back but the poisoned page, no reservation left. */
	gmem_hvm_destroy(&g);
	for (tries = 0; tries < 100; tries++) {
		gmem_hp_read(hs.kb, &now);
		if (now.free == base.free - 1 && now.resv == base.resv)
			break;
		usleep(10000);
	}
	TEST_ASSERT(now.nr == base.nr && now.free == base.free - 1 &&
		    now.resv == base.resv && now.surplus == base.surplus,
		    "%s pool after close: nr/free/resv/surplus %ld/%ld/%ld/%ld, expected %ld/%ld/%ld/%ld",
		    hs.name, now.nr, now.free, now.resv, now.surplus,
		    base.nr, base.free - 1, base.resv, base.surplus);
	TEST_ASSERT(cg_long(cg, "rsvd.current") == 0 && cg_long(cg, "current") == (long)hs.size,
		    "%s cgroup after close: rsvd.current %ld current %ld, expected 0 and %lu",
		    hs.name, cg_long(cg, "rsvd.current"), cg_long(cg, "current"), hs.size);
	cg_enter(CG_ROOT);
	TEST_ASSERT(!rmdir(cg), "rmdir %s: errno %d", cg, errno);
	ksft_test_result_pass("%s: closed, the poisoned page alone stays in use\n", hs.name);
	free(expect);
	ksft_finished();
}
