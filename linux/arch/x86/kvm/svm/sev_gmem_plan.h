/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * SEV-SNP on guest_memfd in place: what to do to the RMP, the kernel direct
 * map and KVM's NPT for a conversion or a private fault that covers huge
 * pages, decided by pure functions of a snapshot of the RMP so that every
 * case can be unit tested without SNP hardware (sev_gmem_plan_kunit.c).
 *
 * A plan is a list of operations in the order they must run.  Those that
 * can fail (splitting the direct map, PSMASH) come first; SNP_OP_COMMIT
 * marks the point of no return, where guest_memfd zaps KVM's mappings of
 * the converted range and splits its folios; after it come only the RMP
 * updates, which do not fail on a correct plan (a failure there is a KVM
 * bug and the page is leaked, never returned to the host).
 */
#ifndef __KVM_X86_SVM_SEV_GMEM_PLAN_H
#define __KVM_X86_SVM_SEV_GMEM_PLAN_H

#include <linux/bitmap.h>
#include <linux/types.h>

/* 4K pages in a 2M RMP entry. */
#define SNP_REGION_PAGES	512

/*
 * One 2M-aligned region of host memory as the RMP and the direct map see it.
 * A 2M entry is either assigned as a whole (all bits set) or not assigned;
 * in the latter case 7.3 may still assign 4K pages under it (not its first
 * page, whose update would make the entry 4K), which a 4K update to shared
 * then PSMASHes first, as sev_gmem_make_shared() does.
 */
struct snp_region {
	/* The region's first RMP entry is 2M. */
	bool rmp_2m;
	/* The kernel's direct map of the region uses 4K pages already. */
	bool dm_4k;
	/* 4K pages assigned to the guest (private) in the RMP. */
	DECLARE_BITMAP(assigned, SNP_REGION_PAGES);
};

enum snp_op_type {
	/* set_memory_4k() on the region's direct map (-ENOMEM). */
	SNP_OP_SPLIT_DM,
	/* The region's 2M RMP entry into 512 4K entries (PSMASH, -EIO). */
	SNP_OP_PSMASH,
	/* Zap KVM's 2M NPT mapping of the region: NPT must not exceed the RMP. */
	SNP_OP_ZAP_2M,
	/* The point of no return: nothing after it may fail. */
	SNP_OP_COMMIT,
	/* RMPUPDATE the whole 2M region to shared, then flush it. */
	SNP_OP_SHARED_2M,
	/* RMPUPDATE @nr 4K pages from @pfn to shared, flushing each. */
	SNP_OP_SHARED_4K,
	/* RMPUPDATE the 2M region at @pfn to private for @gfn, as one entry. */
	SNP_OP_PRIVATE_2M,
	/* RMPUPDATE @nr 4K pages from @pfn to private, for @gfn onwards. */
	SNP_OP_PRIVATE_4K,
};

struct snp_op {
	enum snp_op_type type;
	u64 pfn;
	u64 gfn;
	u64 nr;
};

int snp_plan_to_shared(u64 pfn, u64 nr, const struct snp_region *regions,
		       struct snp_op *ops, int max_ops);
int snp_plan_to_private(u64 pfn, u64 gfn, u64 nr,
			const struct snp_region *regions,
			struct snp_op *ops, int max_ops);
u64 snp_plan_fault_block(u64 pfn, u64 gfn, u64 nr, u64 *first_pfn,
			 u64 *first_gfn);
int snp_plan_npt_level(const struct snp_region *region, u64 pfn, u64 gfn);
int snp_plan_fault_level(bool assigned, int level, bool base_assigned);
int snp_psmash_outcome(int rc, bool rmp_2m_after);
bool snp_plan_is_ordered(const struct snp_op *ops, int n);

#endif /* __KVM_X86_SVM_SEV_GMEM_PLAN_H */
