// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmem_numa_test - where the huge pages of a HugeTLB guest_memfd land
 * (-p 2M, the default, or -p 1G), on a host with at least two NUMA nodes
 * that each have free huge pages.
 *
 * The file's shared policy (mbind() on its mapping) places every huge
 * folio, whoever allocates it; without one the allocating task's policy
 * does, as for a 4K guest_memfd.  Each scenario checks the node of every
 * huge page (its PFN from pagemap, the node from sysfs's memory blocks),
 * the per-node counts in the file's fdinfo and the per-node pool counters,
 * and that closing the file gives every page back.  MPOL_BIND is strict:
 * with its nodes drained, allocation fails with ENOSPC (a host fault with
 * SIGBUS) and takes no surplus page even with overcommit allowed.
 *
 * -t bind1 or -t interleave checks only the task's own policy, for runs
 * under numactl --membind=1 or numactl --interleave=0,1.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#include <linux/falloc.h>
#include <linux/mempolicy.h>
#include <linux/sizes.h>

#include "gmem_hugetlb_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"

#define MAX_PAGES	64
#define WI_SYSFS	"/sys/kernel/mm/mempolicy/weighted_interleave/node%d"

/* libnuma's wrapper, without libnuma (mbind: gmem_mbind()). */
static long set_mempolicy(int mode, const unsigned long *mask, unsigned long maxnode)
{
	return syscall(__NR_set_mempolicy, mode, mask, maxnode);
}

/* The page size under test, -p. */
static struct {
	const char *name;
	u64 size;
	u64 flag;
	unsigned long kb;
	int nr;			/* huge pages of a file spread over both nodes */
	int nr_one;		/* huge pages of a file on one node */
} hs = { "2M", SZ_2M, GUEST_MEMFD_FLAG_HUGE_2MB, 2048, 4, 4 };

/* One file, mapped by the host, in a VM of its own. */
struct numa_file {
	struct kvm_vm *vm;
	int fd;
	u8 *mem;
	int nr;
};

static void file_create(struct numa_file *f, int nr, u64 flags)
{
	f->nr = nr;
	f->vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	f->fd = vm_create_guest_memfd(f->vm, nr * hs.size, flags | hs.flag);
	f->mem = kvm_mmap(nr * hs.size, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd);
}

static void file_destroy(struct numa_file *f)
{
	kvm_munmap(f->mem, f->nr * hs.size);
	kvm_close(f->fd);
	kvm_vm_free(f->vm);
}

/* The file's policy over its whole mapping: @mode over the nodes in @mask. */
static void file_mbind(struct numa_file *f, int mode, unsigned long mask)
{
	TEST_ASSERT(!gmem_mbind(f->mem, f->nr * hs.size, mode,
				mode == MPOL_LOCAL ? NULL : &mask,
				mode == MPOL_LOCAL ? 0 : 8 * sizeof(mask), 0),
		    "mbind(mode %d, nodes 0x%lx) failed, errno %d (%s)",
		    mode, mask, errno, strerror(errno));
}

static int fallocate_all(struct numa_file *f)
{
	return fallocate(f->fd, FALLOC_FL_KEEP_SIZE, 0, f->nr * hs.size) ? -errno : 0;
}

/* The node of each huge page of @f, from the host's mapping of its first 4K. */
static void file_nodes(struct numa_file *f, int *node)
{
	int i;

	for (i = 0; i < f->nr; i++) {
		u8 *p = f->mem + i * hs.size;

		TEST_ASSERT(host_touch(p, false), "Huge page %d of the file raised SIGBUS", i);
		node[i] = gmem_pfn_node(gmem_pagemap_pfn(p));
	}
}

/* Huge pages per node: what fdinfo says, and what the pages say. */
static void check_counts(struct numa_file *f, const long *want, const char *what)
{
	int node[MAX_PAGES], n, i;
	long seen[GMEM_HP_MAX_NODES] = {};
	struct gmem_fdinfo fi;

	file_nodes(f, node);
	for (i = 0; i < f->nr; i++)
		seen[node[i]]++;
	gmem_fdinfo_read(f->fd, &fi);
	for (n = 0; n < 2; n++) {
		TEST_ASSERT(seen[n] == want[n],
			    "%s: %ld huge pages on node %d, expected %ld",
			    what, seen[n], n, want[n]);
		TEST_ASSERT(fi.huge_node[n] == want[n],
			    "%s: fdinfo has %ld huge folios on node %d, expected %ld",
			    what, fi.huge_node[n], n, want[n]);
	}
}

/* Pool counters per node: @want more pages in use on each node than @base. */
static void check_pool(const struct gmem_hp_counts *base, const long *want,
		       const char *what)
{
	struct gmem_hp_counts now;
	int n;

	gmem_hp_read(hs.kb, &now);
	for (n = 0; n < 2; n++)
		TEST_ASSERT(base->node_free[n] - now.node_free[n] == want[n],
			    "%s: node %d has %ld free %s pages, expected %ld",
			    what, n, now.node_free[n], hs.name, base->node_free[n] - want[n]);
	TEST_ASSERT(now.surplus == base->surplus && now.nr == base->nr,
		    "%s: %ld surplus and %ld %s pages, %ld and %ld before",
		    what, now.surplus, now.nr, hs.name, base->surplus, base->nr);
}

/* Closing gives every page back, on every node. */
static void close_check(struct numa_file *f, const struct gmem_hp_counts *base,
			const char *what)
{
	const long none[2] = {};

	file_destroy(f);
	check_pool(base, none, what);
	gmem_hp_check(hs.kb, base, 0, 0, what);
}

static int cpu_of_node(int node)
{
	char path[64];
	FILE *fp;
	int cpu;

	snprintf(path, sizeof(path), "/sys/devices/system/node/node%d/cpulist", node);
	fp = fopen(path, "r");
	TEST_ASSERT(fp, "No %s", path);
	TEST_ASSERT(fscanf(fp, "%d", &cpu) == 1, "No CPU on node %d", node);
	fclose(fp);
	return cpu;
}

static void pin_to_node(int node)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu_of_node(node), &set);
	TEST_ASSERT(!sched_setaffinity(0, sizeof(set), &set), "sched_setaffinity");
}

static void unpin(void)
{
	cpu_set_t set;
	int cpu;

	CPU_ZERO(&set);
	for (cpu = 0; cpu < CPU_SETSIZE; cpu++)
		CPU_SET(cpu, &set);
	sched_setaffinity(0, sizeof(set), &set);
}

static void wi_weight(int node, int weight)
{
	char path[96], val[8];

	snprintf(path, sizeof(path), WI_SYSFS, node);
	snprintf(val, sizeof(val), "%d", weight);
	gmem_write_str(path, val);
}

/*
 * Every policy mode as the file's policy, the allocation (fallocate, or
 * host faults) run on node 0's CPU, so only the policy can put pages on
 * node 1.
 */
static void test_file_policies(void)
{
	static const struct {
		const char *name;
		int mode;
		unsigned long mask;
		bool host_fault;	/* allocate by touching, not fallocate */
	} pol[] = {
		{ "bind 1", MPOL_BIND, 2 },
		{ "preferred 1", MPOL_PREFERRED, 2, true },
		{ "preferred_many 1", MPOL_PREFERRED_MANY, 2 },
		{ "interleave 0,1", MPOL_INTERLEAVE, 3, true },
		{ "weighted interleave 0,1", MPOL_WEIGHTED_INTERLEAVE, 3 },
		{ "local", MPOL_LOCAL, 0, true },
	};
	int w1 = hs.nr == 4 ? 3 : 1, i, node[MAX_PAGES];
	struct gmem_hp_counts base;
	struct numa_file f;
	long want[2];

	/* Weighted interleave: node 0 gets 1 page in 1 + w1. */
	wi_weight(0, 1);
	wi_weight(1, w1);

	for (i = 0; i < ARRAY_SIZE(pol); i++) {
		bool spread = pol[i].mask == 3;
		int nr = spread ? hs.nr : hs.nr_one;

		gmem_hp_read(hs.kb, &base);
		file_create(&f, nr, GMEM_FLAGS_SHARED_HUGETLB);
		file_mbind(&f, pol[i].mode, pol[i].mask);
		/* LOCAL follows the allocating CPU: node 1's; the others run on node 0. */
		pin_to_node(pol[i].mode == MPOL_LOCAL ? 1 : 0);
		if (pol[i].host_fault)
			for (int j = 0; j < nr; j++)
				TEST_ASSERT(host_touch(f.mem + j * hs.size, true),
					    "%s: host fault of huge page %d raised SIGBUS",
					    pol[i].name, j);
		else
			TEST_ASSERT(!fallocate_all(&f), "%s: fallocate failed, errno %d",
				    pol[i].name, errno);
		unpin();

		switch (pol[i].mode) {
		case MPOL_INTERLEAVE:
			want[0] = nr / 2;
			want[1] = nr / 2;
			file_nodes(&f, node);
			for (int j = 1; j < f.nr; j++)
				TEST_ASSERT(node[j] != node[j - 1],
					    "interleave: huge pages %d and %d both on node %d",
					    j - 1, j, node[j]);
			break;
		case MPOL_WEIGHTED_INTERLEAVE:
			want[0] = nr / (1 + w1);
			want[1] = nr - want[0];
			break;
		default:
			want[0] = 0;
			want[1] = nr;
		}
		check_counts(&f, want, pol[i].name);
		check_pool(&base, want, pol[i].name);
		close_check(&f, &base, pol[i].name);
	}
	wi_weight(1, 1);
}

/*
 * No file policy: the allocating task's policy places the pages, as for a
 * 4K guest_memfd (numactl --membind / --interleave on the VMM).  Without
 * -t, the test sets it on itself; with -t it checks the one it was run with.
 */
static void task_policy_check(const char *expect)
{
	struct gmem_hp_counts base;
	struct numa_file f;
	long want[2];
	int nr = strcmp(expect, "bind1") ? hs.nr : hs.nr_one;

	gmem_hp_read(hs.kb, &base);
	file_create(&f, nr, GMEM_FLAGS_SHARED_HUGETLB);
	pin_to_node(0);
	TEST_ASSERT(!fallocate_all(&f), "task policy %s: fallocate failed", expect);
	unpin();
	if (!strcmp(expect, "bind1")) {
		want[0] = 0;
		want[1] = nr;
	} else {
		want[0] = nr / 2;
		want[1] = nr / 2;
	}
	check_counts(&f, want, expect);
	check_pool(&base, want, expect);
	close_check(&f, &base, expect);
}

static void test_task_policy(void)
{
	unsigned long mask = 2;

	TEST_ASSERT(!set_mempolicy(MPOL_BIND, &mask, 8 * sizeof(mask)), "set_mempolicy(BIND)");
	task_policy_check("bind1");
	mask = 3;
	TEST_ASSERT(!set_mempolicy(MPOL_INTERLEAVE, &mask, 8 * sizeof(mask)),
		    "set_mempolicy(INTERLEAVE)");
	task_policy_check("interleave");
	TEST_ASSERT(!set_mempolicy(MPOL_DEFAULT, NULL, 0), "set_mempolicy(DEFAULT)");
}

/*
 * MPOL_BIND to a node with no free huge page: fallocate fails with ENOSPC,
 * a host fault with SIGBUS and a KVM fault makes KVM_RUN fail with ENOSPC
 * and a memory fault exit, with nothing allocated and no surplus page
 * taken although overcommit allows one.  Bound elsewhere, the file works.
 */
static void test_bind_drained(void)
{
	const unsigned long node1 = 2;
	char ovc_path[96], old_ovc[32];
	struct gmem_hp_counts base, full;
	long want[2] = { 0, 0 };
	struct numa_file hog, f;
	struct kvm_run *run;
	struct gmem_hvm g;
	u64 *zero;
	FILE *fp;
	int r;

	snprintf(ovc_path, sizeof(ovc_path),
		 "/sys/kernel/mm/hugepages/hugepages-%lukB/nr_overcommit_hugepages", hs.kb);
	fp = fopen(ovc_path, "r");
	TEST_ASSERT(fp && fgets(old_ovc, sizeof(old_ovc), fp), "Reading %s", ovc_path);
	fclose(fp);
	gmem_write_str(ovc_path, "4");

	/* A file takes every free page of node 1. */
	gmem_hp_read(hs.kb, &base);
	file_create(&hog, base.node_free[1], GMEM_FLAGS_SHARED_HUGETLB);
	file_mbind(&hog, MPOL_BIND, node1);
	TEST_ASSERT(!fallocate_all(&hog), "Allocating all of node 1 failed");
	want[1] = base.node_free[1];
	check_pool(&base, want, "node 1 drained");

	gmem_hvm_create(&g, hs.size, GMEM_FLAGS_SHARED_HUGETLB | hs.flag);
	f = (struct numa_file){ .vm = g.vm, .fd = g.fd, .mem = g.mem, .nr = 1 };
	gmem_hp_read(hs.kb, &full);
	file_mbind(&f, MPOL_BIND, node1);
	r = fallocate_all(&f);
	TEST_ASSERT(r == -ENOSPC, "fallocate bound to drained node 1: %d, expected -ENOSPC", r);
	TEST_ASSERT(!host_touch(f.mem, false), "A host fault bound to drained node 1 succeeded");
	r = __vcpu_run(g.vcpu);
	run = g.vcpu->run;
	TEST_ASSERT(r == -1 && errno == ENOSPC && run->exit_reason == KVM_EXIT_MEMORY_FAULT &&
		    run->memory_fault.gpa == GMEM_HVM_GPA,
		    "KVM fault bound to drained node 1: r %d errno %d exit %u gpa 0x%llx",
		    r, errno, run->exit_reason, run->memory_fault.gpa);
	want[1] = 0;
	check_pool(&full, want, "after the failed allocations");
	gmem_fdinfo_check(f.fd, 0, -1, 0, 0, "after the failed allocations");

	/* Preferring node 1 instead, it falls back to node 0; the guest runs. */
	file_mbind(&f, MPOL_PREFERRED, node1);
	zero = calloc(hs.size / PAGE_SIZE, sizeof(u64));
	TEST_ASSERT(zero, "calloc");
	gmem_hvm_guest_check(&g, zero, "guest on the rebound file");
	free(zero);
	want[0] = 1;
	check_counts(&f, want, "preferring drained node 1");

	gmem_hvm_destroy(&g);
	want[0] = 0;
	check_pool(&full, want, "the bound file closed");
	close_check(&hog, &base, "the hog closed");
	gmem_write_str(ovc_path, old_ovc);
}

/*
 * The flow of a NUMA-pinned confidential guest: a private file, mapped,
 * bound to node 1, converted private (a no-op here), allocated: every huge
 * page on node 1, and the guest runs on it.  A 4K conversion then splits a
 * huge page in place: its pieces stay where it was.
 */
static void test_vmm_flow(void)
{
	struct gmem_hp_counts base;
	struct gmem_fdinfo fi;
	struct gmem_hvm g;
	int nr = hs.nr_one, node;
	u64 *zero;

	gmem_hp_read(hs.kb, &base);
	gmem_hvm_create(&g, nr * hs.size, GUEST_MEMFD_FLAG_HUGETLB | GUEST_MEMFD_FLAG_MMAP |
			hs.flag);
	TEST_ASSERT(!gmem_mbind(g.mem, g.size, MPOL_BIND, (unsigned long []){ 2 }, 64, 0),
		    "mbind failed, errno %d", errno);
	gmem_set_private(g.fd, 0, g.size);
	TEST_ASSERT(!fallocate(g.fd, FALLOC_FL_KEEP_SIZE, 0, g.size),
		    "fallocate failed, errno %d", errno);
	gmem_fdinfo_read(g.fd, &fi);
	TEST_ASSERT(fi.huge_node[1] == nr && fi.huge_node[0] == 0,
		    "VMM flow: fdinfo has %ld huge folios on node 0 and %ld on node 1, expected 0 and %d",
		    fi.huge_node[0], fi.huge_node[1], nr);
	zero = calloc(g.size / PAGE_SIZE, sizeof(u64));
	TEST_ASSERT(zero, "calloc");
	gmem_hvm_guest_check(&g, zero, "guest on node 1's pages");

	/* One 4K page shared: its huge page splits on node 1. */
	gmem_set_shared(g.fd, 5 * PAGE_SIZE, PAGE_SIZE);
	TEST_ASSERT(host_touch(g.mem + 5 * PAGE_SIZE, false), "The shared page raised SIGBUS");
	node = gmem_pfn_node(gmem_pagemap_pfn(g.mem + 5 * PAGE_SIZE));
	TEST_ASSERT(node == 1, "The shared 4K piece is on node %d, expected 1", node);
	gmem_fdinfo_read(g.fd, &fi);
	TEST_ASSERT(fi.f4k_node[1] == SZ_2M / PAGE_SIZE && fi.f4k_node[0] == 0,
		    "After the split: fdinfo has %ld and %ld 4K folios on nodes 0 and 1",
		    fi.f4k_node[0], fi.f4k_node[1]);
	TEST_ASSERT(fi.huge_node[1] == nr - 1,
		    "After the split: %ld huge folios on node 1, expected %d",
		    fi.huge_node[1], nr - 1);
	gmem_hvm_guest_check(&g, zero, "guest after the split");

	gmem_hvm_destroy(&g);
	free(zero);
	gmem_hp_check(hs.kb, &base, 0, 0, "VMM flow file closed");
}

static const struct {
	const char *name;
	void (*fn)(void);
} scenarios[] = {
	{ "file_policies", test_file_policies },
	{ "task_policy", test_task_policy },
	{ "bind_drained", test_bind_drained },
	{ "vmm_flow", test_vmm_flow },
};

int main(int argc, char *argv[])
{
	struct gmem_hp_counts pool;
	const char *task = NULL;
	int i, opt;

	while ((opt = getopt(argc, argv, "p:t:")) != -1) {
		if (opt == 't' && (!strcmp(optarg, "bind1") || !strcmp(optarg, "interleave"))) {
			task = optarg;
		} else if (opt == 'p' && !strcmp(optarg, "1G")) {
			hs.name = "1G";
			hs.size = SZ_1G;
			hs.flag = GUEST_MEMFD_FLAG_HUGE_1GB;
			hs.kb = 1048576;
			hs.nr = 2;
			hs.nr_one = 1;
		} else if (opt != 'p' || strcmp(optarg, "2M")) {
			printf("usage: %s [-p 2M|1G] [-t bind1|interleave]\n", argv[0]);
			exit(KSFT_FAIL);
		}
	}

	gmem_hvm_require(hs.kb, hs.nr);
	gmem_hp_read(hs.kb, &pool);
	TEST_REQUIRE(pool.nr_nodes >= 2 && pool.node_free[0] >= hs.nr_one &&
		     pool.node_free[1] >= hs.nr_one);

	ksft_print_header();
	if (task) {
		ksft_set_plan(1);
		task_policy_check(task);
		ksft_test_result_pass("task policy %s %s\n", task, hs.name);
	} else {
		ksft_set_plan(ARRAY_SIZE(scenarios));
		for (i = 0; i < ARRAY_SIZE(scenarios); i++) {
			scenarios[i].fn();
			ksft_test_result_pass("%s %s\n", scenarios[i].name, hs.name);
		}
	}
	gmem_hp_check(hs.kb, &pool, 0, 0, "end of the test");
	ksft_finished();
}
