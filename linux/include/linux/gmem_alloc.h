/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Allocators behind guest_memfd.
 *
 * A guest_memfd inode owns one struct gmem_alloc for its lifetime.  The
 * allocator decides the size of the folios that back the file (its order),
 * reserves at creation whatever the file may need later, and puts folios into
 * and takes them out of the file's page cache.  guest_memfd itself keeps the
 * private/shared attributes, the KVM bindings and the invalidation protocol.
 *
 * Locking: ->get_folio is called with the mapping's invalidate_lock held
 * shared or not at all (KVM faults); ->punch with it held exclusively.
 * Files whose allocator splits folios must be looked up through
 * ->get_folio only (see ->split_commit).
 * Allocators may take hugetlb_lock and their own locks inside; they never
 * call back into guest_memfd or KVM.
 */
#ifndef _LINUX_GMEM_ALLOC_H
#define _LINUX_GMEM_ALLOC_H

#include <linux/fs.h>
#include <linux/mempolicy.h>

struct gmem_alloc;
struct gmem_split;
struct seq_file;

/* At most this many points per ->split_prepare: the two ends of a range. */
#define GMEM_SPLIT_MAX_POINTS	2

/* @index must sit in a folio of at most 2^@order pages. */
struct gmem_split_point {
	pgoff_t index;
	unsigned int order;
};

struct gmem_alloc_ops {
	/*
	 * Return the folio holding @index locked and with a reference,
	 * allocating it (zeroed and uptodate, placed by @mpol, which may be
	 * NULL) and adding it to @mapping if absent.  Concurrent callers for
	 * the same folio get the same folio.
	 */
	struct folio *(*get_folio)(struct gmem_alloc *a,
				   struct address_space *mapping,
				   pgoff_t index, struct mempolicy *mpol);
	/*
	 * Remove the folios wholly inside [@start, @end) (bytes) from
	 * @mapping and zero the covered part of partially covered ones.
	 * Host mappings of the range are already gone.
	 */
	void (*punch)(struct gmem_alloc *a, struct address_space *mapping,
		      loff_t start, loff_t end);
	/*
	 * Splitting and merging folios in place.  A split is staged so that a
	 * caller can do what may fail before its point of no return:
	 * ->split_prepare stages what it takes for each point's index to sit
	 * in a folio of at most 2^order pages (page cache nodes, bookkeeping;
	 * -ENOMEM) and changes nothing.  The caller then keeps KVM from
	 * mapping the staged huge pages (an invalidation over all of them) and
	 * zaps their mappings, and calls ->split_commit: it freezes the folios
	 * and restores their struct pages, and may still fail without changing
	 * anything (-EAGAIN: a folio stayed referenced, -ENOMEM; *@err_index is
	 * set), else splits them, which cannot fail.  ->split_abort releases a
	 * staged split that was not committed.  *@sp is left NULL when nothing
	 * needs splitting (not allocated, small enough, or a poisoned folio,
	 * which stays whole).  ->merge is best effort: it returns true if the
	 * block of 2^@order pages at @index is one folio again.  The caller
	 * holds the mapping's invalidate_lock exclusively for all four.
	 */
	int (*split_prepare)(struct gmem_alloc *a, struct address_space *mapping,
			     const struct gmem_split_point *pts, int n,
			     struct gmem_split **sp, pgoff_t *err_index);
	int (*split_commit)(struct gmem_alloc *a, struct gmem_split *sp,
			    pgoff_t *err_index);
	void (*split_abort)(struct gmem_alloc *a, struct gmem_split *sp);
	bool (*merge)(struct gmem_alloc *a, struct address_space *mapping,
		      pgoff_t index, unsigned int order);
	/* First split block of 2^@order at or after @index, or ULONG_MAX. */
	pgoff_t (*next_split)(struct gmem_alloc *a, pgoff_t index,
			      unsigned int order);
	/* Folios by order and split state, for the file's fdinfo. */
	void (*show_fdinfo)(struct gmem_alloc *a, struct address_space *mapping,
			    struct seq_file *m);
	/* Give back what creation reserved; no folio is in the file anymore. */
	void (*destroy)(struct gmem_alloc *a);
};

/**
 * struct gmem_alloc - one guest_memfd file's allocator
 * @ops: the allocator's operations
 * @order: order of the folios it puts into the file; ranges that KVM may
 *	   map huge are aligned to it
 * @split_order: the smallest folios a conversion may split down to;
 *		 conversions must be aligned to it.  Equal to @order for
 *		 allocators that cannot split.  Files above PMD_ORDER split
 *		 through PMD_ORDER folios.
 */
struct gmem_alloc {
	const struct gmem_alloc_ops *ops;
	unsigned int order;
	unsigned int split_order;
};

struct hugetlb_cgroup;

#ifdef CONFIG_GMEM_HUGETLB
struct gmem_alloc *gmem_hugetlb_create(loff_t size, unsigned int size_log);
bool gmem_hugetlb_supported(void);
void gmem_hugetlb_cgroup_offline(struct hugetlb_cgroup *h_cg);
#else
static inline void gmem_hugetlb_cgroup_offline(struct hugetlb_cgroup *h_cg)
{
}

static inline struct gmem_alloc *gmem_hugetlb_create(loff_t size,
						     unsigned int size_log)
{
	return ERR_PTR(-EINVAL);
}

static inline bool gmem_hugetlb_supported(void)
{
	return false;
}
#endif

#endif /* _LINUX_GMEM_ALLOC_H */
