/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Helpers for tests of HugeTLB guest_memfd: the pool's counters, globally
 * and per NUMA node, and the split state guest_memfd reports in fdinfo.
 */
#ifndef SELFTEST_KVM_GMEM_HUGETLB_UTIL_H
#define SELFTEST_KVM_GMEM_HUGETLB_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#define GMEM_HP_MAX_NODES	4

/* One pool's counters: global, and nr/free per node. */
struct gmem_hp_counts {
	long nr, free, resv, surplus;
	int nr_nodes;
	long node_nr[GMEM_HP_MAX_NODES];
	long node_free[GMEM_HP_MAX_NODES];
};

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
};

void gmem_fdinfo_read(int fd, struct gmem_fdinfo *fi);
/* Assert the file holds these folios and split blocks. */
void gmem_fdinfo_check(int fd, long huge, long f2m, long f4k, long split,
		       const char *what);

#endif /* SELFTEST_KVM_GMEM_HUGETLB_UTIL_H */
