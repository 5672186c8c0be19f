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
 * Split and merge.  When a conversion leaves a 2M block with both shared and
 * private pages, its folio is split in place into order-0 folios ("pieces")
 * and merged back when the block is uniform again.  The huge page never
 * leaves the pool's accounting: it stays one in-use huge page of its hstate,
 * charged to its subpool and cgroups, which a struct gmem_hugetlb_block
 * remembers while the folio's own fields are gone.  Pieces are ordinary
 * page-cache folios but are never freed on their own: guest_memfd removes
 * them from the page cache only through gmem_hugetlb_punch(), which merges
 * the block first, or, while a piece is still referenced, takes the pieces
 * out of the page cache with their page-cache references kept and lets a
 * work item merge and free the huge page once the others are gone.  Pieces
 * do not count in NR_FILE_PAGES: their memory is accounted once, as HugeTLB.
 *
 * A block's states:
 *   whole	one hugetlb folio in the page cache; no gmem_hugetlb_block
 *   split	order-0 pieces in the page cache, gh->blocks[huge index] set,
 *		vmemmap restored (hugetlb_free_vmemmap=on)
 *   retiring	pieces out of the page cache, waiting for references to drop,
 *		on no file; the huge page returns to the pool whole
 *
 * Locking: a huge page is allocated under the hugetlb fault mutex of its
 * (mapping, huge index), so concurrent faults of one huge page get one folio
 * and never push the subpool over its maximum.  The fault mutex nests inside
 * the mapping's invalidate_lock (shared), as in hugetlbfs; hugetlb_lock and the
 * subpool lock are taken inside it by mm/hugetlb.c.  Split, merge and punch
 * run under the mapping's invalidate_lock held exclusively, which also
 * guards gh->blocks for writers; they freeze folio references instead of
 * taking folio locks, take the page cache's xa_lock and hugetlb_lock as
 * leaves, and sleep (vmemmap restore and optimisation) only outside both.
 * Nothing here takes KVM's mmu_lock.
 */
#include <linux/gmem_alloc.h>
#include <linux/hugetlb.h>
#include <linux/hugetlb_cgroup.h>
#include <linux/mempolicy.h>
#include <linux/delay.h>
#include <linux/pagemap.h>
#include <linux/rcupdate_wait.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/wait_bit.h>
#include <linux/workqueue.h>

#include "hugetlb_vmemmap.h"

struct gmem_hugetlb {
	struct gmem_alloc alloc;
	struct hstate *h;
	struct hugepage_subpool *spool;
	/* The cgroup charged for the file's reservation, NULL if none. */
	struct hugetlb_cgroup *h_cg_rsvd;
	unsigned long nr_pages;		/* base pages reserved */
	/* Blocks split, and those of them whose vmemmap was restored. */
	unsigned long nr_split;
	unsigned long nr_vmemmap_restored;
	/* Split blocks by huge index; see the comment at the top. */
	struct xarray blocks;
};

/*
 * What a split huge page's folio held and will hold again when merged: the
 * pool accounting that free_huge_folio() gives back.
 */
struct gmem_hugetlb_block {
	unsigned long pfn;
	struct hstate *h;
	struct hugepage_subpool *spool;
	struct hugetlb_cgroup *h_cg;
	struct hugetlb_cgroup *h_cg_rsvd;
	unsigned long hpg_flags;	/* the folio's HPG_* bits */
	unsigned long memcg_data;
	bool vmemmap_restored;		/* this split restored the vmemmap */
	struct delayed_work retire;
};

/* One block between ->split_prepare and ->split_commit or ->split_abort. */
struct gmem_split {
	struct folio *folio;		/* frozen, vmemmap restored */
	struct address_space *mapping;
	struct gmem_hugetlb_block *blk;
	struct xa_state xas;		/* holds the preallocated xarray nodes */
};

/* Huge pages waiting in the retiring state, all files together. */
static atomic_t gmem_hugetlb_retiring = ATOMIC_INIT(0);

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
	/*
	 * Nothing writes guest memory back: a clean folio would be dropped by
	 * invalidate_mapping_pages() (drop_caches), and a split piece freed
	 * to the page allocator that way would corrupt the pool.
	 */
	folio_set_dirty(folio);
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

/* KVM faults and page-cache lookups hold references for microseconds. */
#define GMEM_HUGETLB_FREEZE_TRIES	100

/*
 * Freeze @folio at @count references.  Other holders are transient (a KVM
 * fault between lookup and mapping, a speculative page-cache lookup): wait
 * for them about 100ms at most, then let the caller report -EAGAIN.
 */
static bool gmem_hugetlb_freeze(struct folio *folio, int count)
{
	int i;

	for (i = 0; i < GMEM_HUGETLB_FREEZE_TRIES; i++) {
		if (folio_ref_freeze(folio, count))
			return true;
		usleep_range(500, 1000);
	}
	return false;
}

static int gmem_hugetlb_split_prepare(struct gmem_alloc *a,
				      struct address_space *mapping,
				      pgoff_t index, struct gmem_split **spp)
{
	struct gmem_hugetlb *gh = to_gmem_hugetlb(a);
	pgoff_t base = round_down(index, 1UL << a->order);
	struct gmem_hugetlb_block *blk = NULL;
	struct gmem_split *sp = NULL;
	struct folio *folio;
	int r = -ENOMEM;

	*spp = NULL;
	if (a->split_order == a->order)
		return -EOPNOTSUPP;

	folio = filemap_get_folio(mapping, base);
	if (IS_ERR(folio))
		return 0;
	/* A split block's pieces are not hugetlb; poisoned pages stay whole. */
	if (!folio_test_hugetlb(folio) || folio_test_hwpoison(folio)) {
		folio_put(folio);
		return 0;
	}

	sp = kzalloc_obj(*sp);
	blk = kzalloc_obj(*blk);
	if (!sp || !blk)
		goto err_free;
	if (xa_reserve(&gh->blocks, base >> a->order, GFP_KERNEL))
		goto err_free;

	sp->xas = (struct xa_state)__XA_STATE(&mapping->i_pages, base, 0, 0);
	xas_split_alloc(&sp->xas, folio, a->order, GFP_KERNEL);
	if (xas_error(&sp->xas))
		goto err_release;

	/* The page cache's references and ours. */
	r = -EAGAIN;
	if (!gmem_hugetlb_freeze(folio, folio_nr_pages(folio) + 1))
		goto err_destroy;

	/* Pieces are written as ordinary struct pages: they need their own. */
	blk->vmemmap_restored = folio_test_hugetlb_vmemmap_optimized(folio);
	if (hugetlb_vmemmap_restore_folio(gh->h, folio)) {
		folio_ref_unfreeze(folio, folio_nr_pages(folio) + 1);
		r = -ENOMEM;
		goto err_destroy;
	}

	sp->folio = folio;
	sp->mapping = mapping;
	sp->blk = blk;
	*spp = sp;
	return 0;

err_destroy:
	xas_destroy(&sp->xas);
err_release:
	xa_release(&gh->blocks, base >> a->order);
err_free:
	kfree(blk);
	kfree(sp);
	folio_put(folio);
	return r;
}

static void gmem_hugetlb_split_abort(struct gmem_alloc *a, struct gmem_split *sp)
{
	struct gmem_hugetlb *gh = to_gmem_hugetlb(a);
	struct folio *folio = sp->folio;

	if (sp->blk->vmemmap_restored)
		hugetlb_vmemmap_optimize_folio(gh->h, folio);
	xa_release(&gh->blocks, folio->index >> a->order);
	folio_ref_unfreeze(folio, folio_nr_pages(folio) + 1);
	folio_put(folio);
	xas_destroy(&sp->xas);
	kfree(sp->blk);
	kfree(sp);
}

/* Page flags a piece takes from the huge folio, and gives back on merge. */
#define GMEM_HUGETLB_PIECE_FLAGS	(BIT(PG_uptodate) | BIT(PG_dirty))

static void gmem_hugetlb_retire_work(struct work_struct *work);

static void gmem_hugetlb_split_commit(struct gmem_alloc *a, struct gmem_split *sp)
{
	struct gmem_hugetlb *gh = to_gmem_hugetlb(a);
	struct gmem_hugetlb_block *blk = sp->blk;
	struct folio *folio = sp->folio;
	unsigned long nr = folio_nr_pages(folio);
	pgoff_t base = folio->index;
	unsigned long i;

	blk->pfn = folio_pfn(folio);
	blk->h = gh->h;
	blk->spool = hugetlb_folio_subpool(folio);
	blk->h_cg = hugetlb_cgroup_from_folio(folio);
	blk->h_cg_rsvd = hugetlb_cgroup_from_folio_rsvd(folio);
	blk->hpg_flags = (unsigned long)folio->private;
#ifdef CONFIG_MEMCG
	blk->memcg_data = folio->memcg_data;
#endif
	INIT_DELAYED_WORK(&blk->retire, gmem_hugetlb_retire_work);

	/* PFN walkers check the type under hugetlb_lock; the list is its own. */
	spin_lock_irq(&hugetlb_lock);
	list_del_init(&folio->lru);
	__folio_clear_hugetlb(folio);
	spin_unlock_irq(&hugetlb_lock);

	for (i = 1; i < nr; i++) {
		struct page *page = folio_page(folio, i);
		/* Careful: not a folio of its own until its compound head is gone. */
		struct folio *piece = (struct folio *)page;

		/* Drops the order, PG_head's siblings and page[1..3] metadata. */
		page->flags.f &= ~PAGE_FLAGS_CHECK_AT_PREP;
		page->flags.f |= folio->flags.f & GMEM_HUGETLB_PIECE_FLAGS;
		piece->mapping = sp->mapping;
		piece->index = base + i;
		set_page_private(page, 0);
		atomic_set(&page->_mapcount, -1);
#ifdef CONFIG_MEMCG
		page->memcg_data = 0;
#endif
		/* As in THP split: flags before the page stops being a tail. */
		smp_wmb();
		clear_compound_head(page);
		page->lru.prev = NULL;
	}
	folio->private = NULL;
#ifdef CONFIG_MEMCG
	folio->memcg_data = 0;
#endif
	ClearPageCompound(&folio->page);

	/*
	 * Lookups that still find the old entry fail to get a reference (the
	 * pieces are frozen) and retry until they find their piece.
	 */
	xas_lock_irq(&sp->xas);
	xas_split(&sp->xas, folio, a->order);
	for (i = 0; i < nr; i++) {
		xas_set(&sp->xas, base + i);
		xas_store(&sp->xas, folio_page(folio, i));
	}
	xas_unlock_irq(&sp->xas);
	xas_destroy(&sp->xas);

	for (i = nr - 1; i > 0; i--)
		folio_ref_unfreeze(page_folio(folio_page(folio, i)), 1);
	folio_ref_unfreeze(folio, 1);

	/* The slot was reserved by ->split_prepare: this cannot fail. */
	xa_store(&gh->blocks, base >> a->order, blk, GFP_KERNEL);
	gh->nr_split++;
	if (blk->vmemmap_restored)
		gh->nr_vmemmap_restored++;
	kfree(sp);
}

static bool gmem_hugetlb_block_poisoned(struct gmem_hugetlb_block *blk)
{
	unsigned long i;

	for (i = 0; i < pages_per_huge_page(blk->h); i++)
		if (PageHWPoison(pfn_to_page(blk->pfn + i)))
			return true;
	return false;
}

/*
 * Make @blk's pieces its hugetlb folio again and return it frozen, or NULL
 * (nothing changed) if a piece holds more than its one reference (the page
 * cache's, or the retiring state's) or is poisoned.
 */
static struct folio *gmem_hugetlb_rebuild(struct gmem_hugetlb_block *blk)
{
	unsigned long nr = pages_per_huge_page(blk->h);
	struct folio *folio = pfn_folio(blk->pfn);
	unsigned long i;

	for (i = 0; i < nr; i++)
		if (!folio_ref_freeze(pfn_folio(blk->pfn + i), 1))
			goto undo;
	/* Never merge a poisoned piece: its raw page must stay marked. */
	if (gmem_hugetlb_block_poisoned(blk))
		goto undo;

	for (i = 1; i < nr; i++) {
		struct page *page = folio_page(folio, i);

		page->flags.f &= ~PAGE_FLAGS_CHECK_AT_PREP;
		page->mapping = NULL;
		((struct folio *)page)->index = 0;
		set_page_private(page, 0);
#ifdef CONFIG_MEMCG
		page->memcg_data = 0;
#endif
	}
	prep_compound_page(&folio->page, huge_page_order(blk->h));

	spin_lock_irq(&hugetlb_lock);
	__folio_set_hugetlb(folio);
	folio->private = (void *)blk->hpg_flags;
	hugetlb_set_folio_subpool(folio, blk->spool);
	set_hugetlb_cgroup(folio, blk->h_cg);
	set_hugetlb_cgroup_rsvd(folio, blk->h_cg_rsvd);
#ifdef CONFIG_MEMCG
	folio->memcg_data = blk->memcg_data;
#endif
	list_add(&folio->lru, &blk->h->hugepage_activelist);
	spin_unlock_irq(&hugetlb_lock);

	/* Best effort, as at allocation: a failure only costs memory. */
	if (blk->vmemmap_restored)
		hugetlb_vmemmap_optimize_folio(blk->h, folio);
	return folio;

undo:
	while (i--)
		folio_ref_unfreeze(pfn_folio(blk->pfn + i), 1);
	return NULL;
}

static bool gmem_hugetlb_merge(struct gmem_alloc *a,
			       struct address_space *mapping, pgoff_t index)
{
	struct gmem_hugetlb *gh = to_gmem_hugetlb(a);
	pgoff_t base = round_down(index, 1UL << a->order);
	XA_STATE(xas, &mapping->i_pages, base);
	struct gmem_hugetlb_block *blk;
	struct folio *folio;

	blk = xa_load(&gh->blocks, base >> a->order);
	if (!blk)
		return false;
	folio = gmem_hugetlb_rebuild(blk);
	if (!folio)
		return false;

	/* Replaces the pieces' entries; freeing their nodes needs no memory. */
	xas_set_order(&xas, base, a->order);
	xas_lock_irq(&xas);
	xas_store(&xas, folio);
	xas_unlock_irq(&xas);
	folio_ref_unfreeze(folio, folio_nr_pages(folio));

	xa_erase(&gh->blocks, base >> a->order);
	gh->nr_split--;
	if (blk->vmemmap_restored)
		gh->nr_vmemmap_restored--;
	kfree(blk);
	return true;
}

static void gmem_hugetlb_retire_work(struct work_struct *work)
{
	struct gmem_hugetlb_block *blk =
		container_of(to_delayed_work(work), struct gmem_hugetlb_block,
			     retire);
	struct folio *folio;

	folio = gmem_hugetlb_rebuild(blk);
	if (!folio) {
		if (!gmem_hugetlb_block_poisoned(blk)) {
			schedule_delayed_work(&blk->retire, msecs_to_jiffies(10));
			return;
		}
		/* Like hugetlbfs with unknown raw errors: keep it out of the pool. */
		pr_warn_ratelimited("guest_memfd: huge page at pfn %#lx has a poisoned piece, not returned to the pool\n",
				    blk->pfn);
	} else {
		folio->mapping = NULL;
		folio_ref_unfreeze(folio, 1);
		folio_put(folio);
	}
	kfree(blk);
	if (atomic_dec_and_test(&gmem_hugetlb_retiring))
		wake_up_var(&gmem_hugetlb_retiring);
}

/*
 * Take a split block that cannot merge now out of the page cache.  Its
 * pieces keep the page cache's references, so they are never freed on their
 * own; the retire work merges and frees the huge page once the other
 * references are gone.
 */
static void gmem_hugetlb_retire(struct gmem_hugetlb *gh,
				struct address_space *mapping, pgoff_t base)
{
	unsigned int order = gh->alloc.order;
	XA_STATE(xas, &mapping->i_pages, base);
	struct gmem_hugetlb_block *blk;
	unsigned long i, nr;

	blk = xa_erase(&gh->blocks, base >> order);
	nr = pages_per_huge_page(blk->h);
	gh->nr_split--;
	if (blk->vmemmap_restored)
		gh->nr_vmemmap_restored--;

	for (i = 0; i < nr; i++)
		folio_lock(pfn_folio(blk->pfn + i));
	xas_set_order(&xas, base, order);
	xas_lock_irq(&xas);
	xas_store(&xas, NULL);
	mapping->nrpages -= nr;
	xas_unlock_irq(&xas);
	for (i = 0; i < nr; i++) {
		struct folio *piece = pfn_folio(blk->pfn + i);

		piece->mapping = NULL;
		folio_unlock(piece);
	}

	atomic_inc(&gmem_hugetlb_retiring);
	schedule_delayed_work(&blk->retire, 1);
}

static pgoff_t gmem_hugetlb_next_split(struct gmem_alloc *a, pgoff_t index)
{
	struct gmem_hugetlb *gh = to_gmem_hugetlb(a);
	unsigned long hindex = index >> a->order;

	if (!xa_find(&gh->blocks, &hindex, ULONG_MAX, XA_PRESENT))
		return ULONG_MAX;
	return hindex << a->order;
}

static void gmem_hugetlb_punch(struct gmem_alloc *a,
			       struct address_space *mapping,
			       loff_t start, loff_t end)
{
	struct gmem_hugetlb *gh = to_gmem_hugetlb(a);
	pgoff_t index = start >> PAGE_SHIFT;
	pgoff_t last = (end - 1) >> PAGE_SHIFT;
	struct folio_batch fbatch;
	pgoff_t b;
	int i;

	/* Split blocks leave whole: merged now, or retired if still in use. */
	for (b = gmem_hugetlb_next_split(a, index); b <= last;
	     b = gmem_hugetlb_next_split(a, b + (1UL << a->order))) {
		loff_t bstart = (loff_t)b << PAGE_SHIFT;

		if (start <= bstart &&
		    bstart + (PAGE_SIZE << a->order) <= end &&
		    !gmem_hugetlb_merge(a, mapping, b))
			gmem_hugetlb_retire(gh, mapping, b);
		if (b + (1UL << a->order) < b)
			break;
	}

	folio_batch_init(&fbatch);
	while (filemap_get_folios(mapping, &index, last, &fbatch)) {
		for (i = 0; i < folio_batch_count(&fbatch); i++) {
			struct folio *folio = fbatch.folios[i];
			loff_t fstart = folio_pos(folio);
			loff_t fend = fstart + folio_size(folio);

			folio_lock(folio);
			if (folio->mapping != mapping) {
				folio_unlock(folio);
				continue;
			}
			/* A piece of a partly punched block stays, zeroed. */
			if (start <= fstart && fend <= end &&
			    folio_test_hugetlb(folio))
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

static void gmem_hugetlb_show_fdinfo(struct gmem_alloc *a,
				     struct address_space *mapping,
				     struct seq_file *m)
{
	struct gmem_hugetlb *gh = to_gmem_hugetlb(a);
	XA_STATE(xas, &mapping->i_pages, 0);
	unsigned long nr[3] = {};	/* huge, PMD (in 1G files), base pages */
	struct folio *folio;

	rcu_read_lock();
	xas_for_each(&xas, folio, ULONG_MAX) {
		if (xas_retry(&xas, folio) || xa_is_value(folio))
			continue;
		if (folio_order(folio) == a->order)
			nr[0]++;
		else if (folio_order(folio) == PMD_ORDER)
			nr[1]++;
		else
			nr[2]++;
		if (need_resched()) {
			xas_pause(&xas);
			cond_resched_rcu();
		}
	}
	rcu_read_unlock();

	seq_printf(m, "hugetlb_page_size:\t%lu kB\n", huge_page_size(gh->h) >> 10);
	seq_printf(m, "folios_order_%u:\t%lu\n", a->order, nr[0]);
	if (a->order > PMD_ORDER)
		seq_printf(m, "folios_order_%u:\t%lu\n", PMD_ORDER, nr[1]);
	seq_printf(m, "folios_order_0:\t%lu\n", nr[2]);
	seq_printf(m, "split_blocks:\t%lu\n", gh->nr_split);
	seq_printf(m, "vmemmap_restored_kB:\t%lu\n",
		   gh->nr_vmemmap_restored *
		   (hugetlb_vmemmap_optimizable_size(gh->h) >> 10));
}

static void gmem_hugetlb_destroy(struct gmem_alloc *a)
{
	struct gmem_hugetlb *gh = to_gmem_hugetlb(a);

	hugetlb_cgroup_uncharge_cgroup_rsvd(hstate_index(gh->h), gh->nr_pages,
					    gh->h_cg_rsvd);
	/* Gives the minimum back now, or when the last folio is freed. */
	hugepage_put_subpool(gh->spool);
	xa_destroy(&gh->blocks);
	kfree(gh);
}

static const struct gmem_alloc_ops gmem_hugetlb_ops = {
	.get_folio	= gmem_hugetlb_get_folio,
	.punch		= gmem_hugetlb_punch,
	.split_prepare	= gmem_hugetlb_split_prepare,
	.split_commit	= gmem_hugetlb_split_commit,
	.split_abort	= gmem_hugetlb_split_abort,
	.merge		= gmem_hugetlb_merge,
	.next_split	= gmem_hugetlb_next_split,
	.show_fdinfo	= gmem_hugetlb_show_fdinfo,
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
	/* 2M blocks split to 4K; 1G folios are not split yet. */
	gh->alloc.split_order = gh->alloc.order == PMD_ORDER ? 0 : gh->alloc.order;
	xa_init(&gh->blocks);

	if (hugetlb_cgroup_charge_cgroup_rsvd(hstate_index(h), gh->nr_pages,
					      &gh->h_cg_rsvd))
		goto err_free;

	gh->spool = hugepage_new_subpool(h, nr, nr);
	/*
	 * Huge pages of closed files still retiring come back to the pool
	 * shortly: wait for them rather than fail.
	 */
	while (!gh->spool && atomic_read(&gmem_hugetlb_retiring)) {
		if (wait_var_event_killable(&gmem_hugetlb_retiring,
					    !atomic_read(&gmem_hugetlb_retiring)))
			break;
		gh->spool = hugepage_new_subpool(h, nr, nr);
	}
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
