/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers for tests of HugeTLB guest_memfd: the pool's counters, globally
 * and per NUMA node, the split state guest_memfd reports in fdinfo, and a
 * VM whose guest checks the whole file.
 */
#ifndef SELFTEST_KVM_GMEM_HUGETLB_UTIL_H
#define SELFTEST_KVM_GMEM_HUGETLB_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#include <linux/sizes.h>

#include "kvm_util.h"

#define GMEM_HP_MAX_NODES	4

/* The HugeTLB page size a test runs on (-p 2M|1G) and its test file. */
struct gmem_huge {
	const char *name;
	u64 size;
	u64 flag;		/* GUEST_MEMFD_FLAG_HUGE_* */
	unsigned long kb;	/* as in /sys/kernel/mm/hugepages/hugepages-<kb>kB */
	u64 nr_blocks;		/* huge pages in a test file: 4 of 2M, 1 of 1G */
};

/* A file the host can map, starting shared: the tests' usual guest_memfd. */
#define GMEM_FLAGS_SHARED	(GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED)
/* The same on HugeTLB pages (with a GUEST_MEMFD_FLAG_HUGE_* size, or the default). */
#define GMEM_FLAGS_SHARED_HUGETLB	(GMEM_FLAGS_SHARED | GUEST_MEMFD_FLAG_HUGETLB)

#define GMEM_HUGE_2M	{ "2M", SZ_2M, GUEST_MEMFD_FLAG_HUGE_2MB, 2048, 4 }
#define GMEM_HUGE_1G	{ "1G", SZ_1G, GUEST_MEMFD_FLAG_HUGE_1GB, 1048576, 1 }

/* Set *@h to the size @arg names ("2M" or "1G"); false if it names none. */
bool gmem_huge_parse(const char *arg, struct gmem_huge *h);

/* mbind(2), without libnuma. */
long gmem_mbind(void *addr, unsigned long len, int mode, const unsigned long *mask,
		unsigned long maxnode, unsigned int flags);

/* One pool's counters: global, and nr/free per node. */
struct gmem_hp_counts {
	long nr, free, resv, surplus;
	int nr_nodes;
	long node_nr[GMEM_HP_MAX_NODES];
	long node_free[GMEM_HP_MAX_NODES];
};

/* A number from the first line of @path; -1 if it is missing and !@must. */
long gmem_read_long(const char *path, bool must);
/* Write @val to @path (sysfs, cgroupfs), asserting it worked. */
void gmem_write_str(const char *path, const char *val);

/* Read the pool of @size_kb huge pages. */
void gmem_hp_read(unsigned long size_kb, struct gmem_hp_counts *c);
/* Are all counters of @a and @b equal? */
bool gmem_hp_equal(const struct gmem_hp_counts *a, const struct gmem_hp_counts *b);
/* Assert the pool is @base with @dfree free and @dresv reserved pages more. */
void gmem_hp_check(unsigned long size_kb, const struct gmem_hp_counts *base,
		   long dfree, long dresv, const char *what);

/* What /proc/self/fdinfo/@fd says of a HugeTLB guest_memfd file. */
struct gmem_fdinfo {
	long folios_huge;	/* folios of the file's huge page size */
	long folios_2m;		/* 2M folios, in a 1G file */
	long folios_4k;
	long split_blocks;
	long vmemmap_restored_kb;
	/* The folios above, per NUMA node. */
	long huge_node[GMEM_HP_MAX_NODES];
	long f2m_node[GMEM_HP_MAX_NODES];
	long f4k_node[GMEM_HP_MAX_NODES];
};

void gmem_fdinfo_read(int fd, struct gmem_fdinfo *fi);
/* Assert the file holds these folios and split blocks. */
void gmem_fdinfo_check(int fd, long huge, long f2m, long f4k, long split,
		       const char *what);

/* The PFN mapped at @addr in this process (root), 0 if none. */
u64 gmem_pagemap_pfn(void *addr);
/* The NUMA node of @pfn, from the zones' spans in /proc/zoneinfo. */
int gmem_pfn_node(u64 pfn);

/*
 * A KVM_X86_SW_PROTECTED_VM with one vCPU and one HugeTLB guest_memfd file
 * of @size bytes, mapped by the host (MAP_SHARED) and bound at GMEM_HVM_GPA.
 * The guest, each time it runs, reads word 0 of every 4K page of the file
 * and checks it against the array at @gexpect (the host's view of it), that
 * gmem_hvm_guest_check() fills.
 */
#define GMEM_HVM_GPA		SZ_4G
#define GMEM_HVM_SLOT		10
#define GMEM_HVM_SLOT2		12

struct gmem_hvm {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	int fd;
	u8 *mem;
	u64 size;
	u64 *gexpect;
};

/*
 * Skip unless the host can run a gmem_hvm on @nr_pages free huge pages of
 * @size_kb; install the SIGBUS probe.  Returns whether the vmemmap of huge
 * pages is optimised (hugetlb_free_vmemmap).
 */
bool gmem_hvm_require(unsigned long size_kb, long nr_pages);
void gmem_hvm_create(struct gmem_hvm *g, u64 size, u64 flags);
/* The same with only the first @bound bytes of the file bound and checked. */
void gmem_hvm_create_bound(struct gmem_hvm *g, u64 size, u64 flags, u64 bound);
/*
 * The same bound through two memslots, GMEM_HVM_SLOT for [0, @split) and
 * GMEM_HVM_SLOT2 for [@split, @bound), contiguous in guest memory.
 */
void gmem_hvm_create_split(struct gmem_hvm *g, u64 size, u64 flags, u64 bound,
			   u64 split);
void gmem_hvm_destroy(struct gmem_hvm *g);
void gmem_hvm_guest_check(struct gmem_hvm *g, const u64 *expect, const char *what);
/* Another vCPU running the same guest code. */
struct kvm_vcpu *gmem_hvm_add_vcpu(struct gmem_hvm *g, u32 id);
/*
 * One pass of @vcpu over the file against the expect array as it is (no
 * copy); returns how many KVM_EXIT_MEMORY_FAULTs it entered again after.
 */
unsigned long gmem_hvm_guest_pass(struct gmem_hvm *g, struct kvm_vcpu *vcpu,
				  const char *what);

/*
 * Pin [@addr, @addr + @size) of this process long-term and writable, as a
 * vhost or VFIO user would, through CONFIG_GUP_TEST (skip without it);
 * returns the handle gmem_unpin() takes.
 */
#define GMEM_GUP_TEST_FILE	"/sys/kernel/debug/gup_test"
int gmem_pin(void *addr, size_t size);
void gmem_unpin(int fd);

#endif /* SELFTEST_KVM_GMEM_HUGETLB_UTIL_H */
