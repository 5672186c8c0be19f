// SPDX-License-Identifier: GPL-2.0
/*
 * HugeTLB allocator for guest_memfd.
 *
 * A guest_memfd file created with GUEST_MEMFD_FLAG_HUGETLB is backed by 2M or
 * 1G folios from the hugetlb pool.  Creation reserves every huge page the file
 * can hold through a hugetlb subpool whose minimum and maximum are the file
 * size, and charges the reservation to the creator's hugetlb cgroup, so a pool
 * that cannot cover the file fails creation instead of a later fault.  Each
 * folio then consumes one of those reservations; freeing it (free_huge_folio,
 * through the subpool set on the folio) gives the reservation back to the
 * subpool, and the last put of the subpool gives the minimum back to the pool.
 *
 * Folios live in the guest_memfd page cache at indices in PAGE_SIZE units,
 * naturally aligned, like hugetlbfs.  They never reach the THP split or the
 * generic truncate paths: punching and eviction go through gmem_hugetlb_punch.
 *
 * Locking: a huge page is allocated under the hugetlb fault mutex of its
 * (mapping, huge index), so concurrent faults of one huge page get one folio
 * and never push the subpool over its maximum.  The fault mutex nests inside
 * the mapping's invalidate_lock (shared), as in hugetlbfs; hugetlb_lock and the
 * subpool lock are taken inside it by mm/hugetlb.c.  Nothing here takes KVM's
 * mmu_lock.
 */
#include <linux/gmem_alloc.h>
#include <linux/hugetlb.h>
#include <linux/hugetlb_cgroup.h>
#include <linux/mempolicy.h>
#include <linux/pagemap.h>
#include <linux/slab.h>

struct gmem_hugetlb {
	struct gmem_alloc alloc;
	struct hstate *h;
	struct hugepage_subpool *spool;
	/* The cgroup charged for the file's reservation, NULL if none. */
	struct hugetlb_cgroup *h_cg_rsvd;
	unsigned long nr_pages;		/* base pages reserved */
};

static struct gmem_hugetlb *to_gmem_hugetlb(struct gmem_alloc *a)
{
	return container_of(a, struct gmem_hugetlb, alloc);
}

static struct folio *gmem_hugetlb_alloc_folio(struct gmem_hugetlb *gh,
					      struct mempolicy *mpol,
					      pgoff_t ilx)
{
	struct mempolicy_interpreted mpoli = {
		.nid = numa_node_id(),
		.mode = MPOL_DEFAULT,
	};
	struct folio *folio;

	if (mpol) {
		mpoli.mode = mpol->mode;
		mpoli.nid = mpol_node_for_index(mpol, ilx, htlb_alloc_mask(gh->h),
						&mpoli.nodemask);
	}

	/*
	 * The subpool's minimum covers the whole file, so this cannot need a
	 * new global reservation; it fails only while punched folios are still
	 * referenced and so still count against the file.  -ENOSPC, as in
	 * hugetlbfs: a fault gets SIGBUS, not an OOM retry loop.
	 */
	if (hugepage_subpool_get_pages(gh->spool, 1))
		return ERR_PTR(-ENOSPC);

	/* Fails with -ENOSPC if the hugetlb cgroup or memcg refuses the charge. */
	folio = hugetlb_alloc_folio(gh->h, &mpoli, NULL,
				    HUGETLB_ALLOC_USE_GLOBAL_RESERVATIONS);
	if (IS_ERR(folio)) {
		hugepage_subpool_put_pages(gh->spool, 1);
		return folio;
	}

	/*
	 * Freeing returns the page to the subpool, which keeps the reservation
	 * for the file: the folio must not restore a global one as well.
	 */
	hugetlb_set_folio_subpool(folio, gh->spool);
	folio_clear_hugetlb_restore_reserve(folio);

	folio_zero_user(folio, 0);
	__folio_mark_uptodate(folio);
	return folio;
}

static struct folio *gmem_hugetlb_get_folio(struct gmem_alloc *a,
					    struct address_space *mapping,
					    pgoff_t index, struct mempolicy *mpol)
{
	struct gmem_hugetlb *gh = to_gmem_hugetlb(a);
	pgoff_t hindex = index >> a->order;
	struct folio *folio;
	u32 hash;
	int err;

	hash = hugetlb_fault_mutex_hash(mapping, hindex);
	mutex_lock(&hugetlb_fault_mutex_table[hash]);

	folio = filemap_lock_folio(mapping, index);
	if (!IS_ERR(folio))
		goto out;

	/* Interleave by huge page; the inode number spreads files apart. */
	folio = gmem_hugetlb_alloc_folio(gh, mpol, mapping->host->i_ino + hindex);
	if (IS_ERR(folio))
		goto out;

	__folio_set_locked(folio);
	err = __filemap_add_folio(mapping, folio, hindex << a->order,
				  GFP_KERNEL, NULL);
	if (err) {
		__folio_clear_locked(folio);
		folio_put(folio);
		folio = ERR_PTR(err);
	}
out:
	mutex_unlock(&hugetlb_fault_mutex_table[hash]);
	return folio;
}

static void gmem_hugetlb_punch(struct gmem_alloc *a,
			       struct address_space *mapping,
			       loff_t start, loff_t end)
{
	pgoff_t index = start >> PAGE_SHIFT;
	struct folio_batch fbatch;
	int i;

	folio_batch_init(&fbatch);
	while (filemap_get_folios(mapping, &index, (end - 1) >> PAGE_SHIFT, &fbatch)) {
		for (i = 0; i < folio_batch_count(&fbatch); i++) {
			struct folio *folio = fbatch.folios[i];
			loff_t fstart = folio_pos(folio);
			loff_t fend = fstart + folio_size(folio);

			folio_lock(folio);
			if (folio->mapping != mapping) {
				folio_unlock(folio);
				continue;
			}
			if (start <= fstart && fend <= end)
				filemap_remove_folio(folio);
			else
				folio_zero_range(folio, max(start, fstart) - fstart,
						 min(end, fend) - max(start, fstart));
			folio_unlock(folio);
		}
		folio_batch_release(&fbatch);
		cond_resched();
	}
}

static int gmem_hugetlb_split(struct gmem_alloc *a, struct folio *folio,
			      unsigned int order)
{
	return -EOPNOTSUPP;
}

static int gmem_hugetlb_merge(struct gmem_alloc *a,
			      struct address_space *mapping, pgoff_t index)
{
	return -EOPNOTSUPP;
}

static void gmem_hugetlb_destroy(struct gmem_alloc *a)
{
	struct gmem_hugetlb *gh = to_gmem_hugetlb(a);

	hugetlb_cgroup_uncharge_cgroup_rsvd(hstate_index(gh->h), gh->nr_pages,
					    gh->h_cg_rsvd);
	/* Gives the minimum back now, or when the last folio is freed. */
	hugepage_put_subpool(gh->spool);
	kfree(gh);
}

static const struct gmem_alloc_ops gmem_hugetlb_ops = {
	.get_folio	= gmem_hugetlb_get_folio,
	.punch		= gmem_hugetlb_punch,
	.split		= gmem_hugetlb_split,
	.merge		= gmem_hugetlb_merge,
	.destroy	= gmem_hugetlb_destroy,
};

/**
 * gmem_hugetlb_supported - whether HugeTLB guest_memfd files can be created
 *
 * Return: true if the kernel has a HugeTLB page size at all.
 */
bool gmem_hugetlb_supported(void)
{
	return hugepages_supported() && hugetlb_max_hstate;
}
EXPORT_SYMBOL_FOR_MODULES(gmem_hugetlb_supported, "kvm");

/**
 * gmem_hugetlb_create - a HugeTLB allocator for one guest_memfd file
 * @size: file size in bytes, a multiple of the huge page size
 * @size_log: log2 of the huge page size, as in MFD_HUGE_*; 0 for the default
 *
 * Reserves every huge page of the file from the pool and charges them to the
 * current task's hugetlb cgroup reservation counter.
 *
 * Return: the allocator, ERR_PTR(-EINVAL) for a page size without a pool or
 * a file size that is not a multiple of it, ERR_PTR(-ENOMEM) if the pool or
 * the cgroup cannot cover the file.
 */
struct gmem_alloc *gmem_hugetlb_create(loff_t size, unsigned int size_log)
{
	struct gmem_hugetlb *gh;
	struct hstate *h;
	long nr;

	if (!gmem_hugetlb_supported())
		return ERR_PTR(-EINVAL);

	h = hstate_sizelog(size_log);
	if (!h || size <= 0 || size & (huge_page_size(h) - 1))
		return ERR_PTR(-EINVAL);

	gh = kzalloc_obj(*gh);
	if (!gh)
		return ERR_PTR(-ENOMEM);

	nr = size >> huge_page_shift(h);
	gh->h = h;
	gh->nr_pages = nr * pages_per_huge_page(h);
	gh->alloc.ops = &gmem_hugetlb_ops;
	gh->alloc.order = huge_page_order(h);

	if (hugetlb_cgroup_charge_cgroup_rsvd(hstate_index(h), gh->nr_pages,
					      &gh->h_cg_rsvd))
		goto err_free;

	gh->spool = hugepage_new_subpool(h, nr, nr);
	if (!gh->spool)
		goto err_uncharge;

	return &gh->alloc;

err_uncharge:
	hugetlb_cgroup_uncharge_cgroup_rsvd(hstate_index(h), gh->nr_pages,
					    gh->h_cg_rsvd);
err_free:
	kfree(gh);
	return ERR_PTR(-ENOMEM);
}
EXPORT_SYMBOL_FOR_MODULES(gmem_hugetlb_create, "kvm");
