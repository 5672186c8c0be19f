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
 * and merged back when the block is uniform again.  A 1G folio is first
 * split into 512 2M hugetlb folios, and only the 2M blocks that need it go
 * on to 4K; a 1G block whose 2M blocks are all whole again and uniform is
 * merged back into the 1G folio.  The huge page never leaves the pool's
 * accounting: it stays one in-use huge page of its hstate, charged to its
 * subpool and cgroups, which a struct gmem_hugetlb_block remembers while the
 * folio's own fields are gone.  Pieces are ordinary page-cache folios but
 * are never freed on their own: guest_memfd removes them from the page cache
 * only through gmem_hugetlb_punch(), which merges the huge page first, or,
 * while a piece is still referenced, takes the pieces out of the page cache
 * with their page-cache references kept and lets a work item merge and free
 * the huge page once the others are gone.  Pieces do not count in
 * NR_FILE_PAGES: their memory is accounted once, as HugeTLB.
 *
 * A block's states:
 *   whole	one folio in the page cache; no gmem_hugetlb_block
 *   split	smaller folios in the page cache, a record in gh->pmd_blocks
 *		(2M split to 4K) or gh->huge_blocks (1G split to 2M), vmemmap
 *		restored as the pieces need it (hugetlb_free_vmemmap=on)
 *   retiring	pieces out of the page cache, waiting for references to drop,
 *		on no file; the huge page returns to the pool whole
 *
 * Locking: a huge page is allocated under the hugetlb fault mutex of its
 * (mapping, huge index), so concurrent faults of one huge page get one folio
 * and never push the subpool over its maximum.  The fault mutex nests inside
 * the mapping's invalidate_lock, as in hugetlbfs; hugetlb_lock and the
 * subpool lock are taken inside it by mm/hugetlb.c.  Split, merge and punch
 * run under the mapping's invalidate_lock held exclusively, which also
 * guards gh->pmd_blocks and gh->huge_blocks for writers.  They freeze folio
 * references only while holding the huge page's fault mutex: every lookup
 * of the file's folios goes through gmem_hugetlb_get_folio(), which takes
 * that mutex first, so no lookup spins on a frozen folio while a split
 * sleeps (vmemmap restore and optimisation, 262144 struct pages of a 1G
 * folio).  The page cache's xa_lock and hugetlb_lock are leaves.  Nothing
 * here takes KVM's mmu_lock.
 */
#include <linux/gmem_alloc.h>
#include <linux/hugetlb.h>
#include <linux/hugetlb_cgroup.h>
#include <linux/mempolicy.h>
#include <linux/delay.h>
#include <linux/highmem.h>
#include <linux/pagemap.h>
#include <linux/rcupdate_wait.h>
#include <linux/sched/mm.h>
#include <linux/seq_file.h>
#include <linux/slab.h>
#include <linux/wait_bit.h>
#include <linux/workqueue.h>

#include "hugetlb_internal.h"
#include "hugetlb_vmemmap.h"

#define GMEM_PMD_NR	BIT(PMD_ORDER)

struct gmem_hugetlb {
	struct gmem_alloc alloc;
	struct hstate *h;
	/* 2M hstate: a 1G folio splits into 2M hugetlb folios; or NULL. */
	struct hstate *h_pmd;
	struct hugepage_subpool *spool;
	/* The cgroup charged for the file's reservation, NULL if none. */
	struct hugetlb_cgroup *h_cg_rsvd;
	unsigned long nr_pages;		/* base pages reserved */
	/*
	 * Split blocks: 2M blocks split to 4K by 2M index, 1G blocks split to
	 * 2M by 1G index; see the comment at the top.  Their number (2M, 1G)
	 * and the vmemmap the splits hold, for fdinfo.
	 */
	struct xarray pmd_blocks;
	struct xarray huge_blocks;
	unsigned long nr_split[2];
	unsigned long vmemmap_kb;
};

/*
 * What a split huge page's folio held and will hold again when merged: the
 * pool accounting that free_huge_folio() gives back.  The 2M pieces of a
 * split 1G block are hugetlb folios of the 2M hstate that no pool counts;
 * their own records (when split to 4K) hold nothing but their flags.
 */
struct gmem_hugetlb_block {
	unsigned long pfn;
	pgoff_t index;
	struct hstate *h;		/* of the folio before the split */
	struct hstate *h_pieces;	/* of the pieces: 2M, or NULL for 4K */
	unsigned int piece_order;
	bool on_activelist;
	bool vmemmap_optimize;		/* optimise the vmemmap again on merge */
	unsigned long vmemmap_kb;	/* struct page memory the split holds */
	struct hugepage_subpool *spool;
	struct hugetlb_cgroup *h_cg;
	struct hugetlb_cgroup *h_cg_rsvd;
	unsigned long hpg_flags;	/* the folio's HPG_* bits */
	unsigned long memcg_data;
	struct list_head charged;	/* on gmem_hugetlb_charged, if h_cg */
	struct list_head subs;		/* retiring 1G block: its split 2M blocks */
	struct list_head sub_node;
	struct delayed_work retire;
	unsigned int retire_ms;		/* next retry, doubling: pins may be long */
};

/* One folio between ->split_prepare and ->split_commit or ->split_abort. */
struct gmem_split_block {
	struct folio *folio;		/* frozen only inside ->split_commit */
	pgoff_t base;
	unsigned int order;
	bool has_ref;			/* an existing folio: we hold a reference */
	struct gmem_hugetlb_block *blk;
	struct xa_state xas;		/* preallocated xarray nodes */
	struct xa_state xas2;		/* 1G: the second level's nodes */
};

/* What one conversion splits: at most two ends, each in a 1G and a 2M. */
struct gmem_split {
	struct address_space *mapping;
	int nr_huge, nr_pmd;
	struct gmem_split_block huge[2];
	struct gmem_split_block pmd[2];
};

/*
 * Split huge pages charged to a hugetlb cgroup, all files together: their
 * folios are off the active list that offlining the cgroup walks to move
 * charges to the parent, so gmem_hugetlb_cgroup_offline() moves theirs.
 * Protected by hugetlb_lock.
 */
static LIST_HEAD(gmem_hugetlb_charged);

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
	unsigned int pin_flags;
	struct folio *folio;

	/*
	 * No policy on the file: the allocating task's, as page cache
	 * allocations of a 4K guest_memfd get, so that running the VMM under
	 * numactl places a HugeTLB file too.
	 */
	if (!mpol)
		mpol = get_task_policy(current);
	mpoli.mode = mpol->mode;
	mpoli.nid = mpol_node_for_index(mpol, ilx, htlb_alloc_mask(gh->h),
					&mpoli.nodemask);

	/*
	 * The subpool's minimum covers the whole file, so this cannot need a
	 * new global reservation; it fails only while punched folios are still
	 * referenced and so still count against the file.  -ENOSPC, as in
	 * hugetlbfs: a fault gets SIGBUS, not an OOM retry loop.
	 */
	if (hugepage_subpool_get_pages(gh->spool, 1))
		return ERR_PTR(-ENOSPC);

	/*
	 * Fails with -ENOSPC if the policy's nodes have no free page (the
	 * file's reservation is global: never a surplus page instead, which
	 * would leave the reservation for a page nobody takes), or if the
	 * hugetlb cgroup or memcg refuses the charge.
	 */
	/*
	 * Guest memory is never migrated (private pages cannot be), so take
	 * no pool page where the kernel expects to move pages away: skip those
	 * in ZONE_MOVABLE and CMA, as for a long-term pin, or memory offline
	 * and CMA allocations would fail on them.
	 */
	pin_flags = memalloc_pin_save();
	folio = hugetlb_alloc_folio(gh->h, &mpoli, NULL,
				    HUGETLB_ALLOC_USE_GLOBAL_RESERVATIONS |
				    HUGETLB_ALLOC_POOL_ONLY);
	memalloc_pin_restore(pin_flags);
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

/* Split records of blocks of @order, keyed by index >> @order. */
static struct xarray *gmem_hugetlb_split_xa(struct gmem_hugetlb *gh,
					    unsigned int order)
{
	return order == PMD_ORDER ? &gh->pmd_blocks : &gh->huge_blocks;
}

/* The vmemmap a split of @h's folio into pieces of @piece_order holds back. */
static unsigned long gmem_hugetlb_vmemmap_kb(struct hstate *h,
					     unsigned int piece_order)
{
	if (!piece_order)
		return hugetlb_vmemmap_optimizable_size(h) >> 10;
	/* Each 2M piece keeps its first vmemmap page, the 1G kept one. */
	return ((pages_per_huge_page(h) >> piece_order) - 1) *
	       (HUGETLB_VMEMMAP_RESERVE_SIZE >> 10);
}

/* A staged split of one huge page's folio into pieces of @piece_order. */
static int gmem_hugetlb_stage_block(struct gmem_hugetlb *gh,
				    struct address_space *mapping,
				    struct gmem_split_block *sb,
				    struct folio *folio, pgoff_t base,
				    unsigned int order, bool future)
{
	unsigned int piece_order = order > PMD_ORDER ? PMD_ORDER : 0;
	int i, r = -ENOMEM;

	sb->blk = kzalloc_obj(*sb->blk);
	if (!sb->blk)
		return -ENOMEM;
	sb->folio = folio;
	sb->base = base;
	sb->order = order;
	if (xa_reserve(gmem_hugetlb_split_xa(gh, order), base >> order, GFP_KERNEL))
		goto err_free;

	/*
	 * The page cache's nodes, now: 2M -> 4K is one level of the xarray;
	 * 1G -> 2M is two, 1G -> 4096 pages, then 64 times 4096 -> 2M.
	 */
	if (piece_order) {
		sb->xas = (struct xa_state)__XA_STATE(&mapping->i_pages, base, 12, 0);
		xas_split_alloc(&sb->xas, folio, order, GFP_KERNEL);
		sb->xas2 = (struct xa_state)__XA_STATE(&mapping->i_pages, base, 6, 7);
		for (i = 0; i < 64 && !xas_error(&sb->xas2); i++)
			xas_split_alloc(&sb->xas2, folio, 12, GFP_KERNEL);
	} else {
		sb->xas = (struct xa_state)__XA_STATE(&mapping->i_pages, base, 0, 0);
		xas_split_alloc(&sb->xas, folio, order, GFP_KERNEL);
		sb->xas2 = (struct xa_state)__XA_STATE(&mapping->i_pages, base, 0, 0);
	}
	if (xas_error(&sb->xas) || xas_error(&sb->xas2))
		goto err_destroy;
	/* An existing folio: the caller's lookup reference is ours now. */
	sb->has_ref = !future;
	if (sb->has_ref)
		sb->blk->vmemmap_optimize = folio_test_hugetlb_vmemmap_optimized(folio);
	return 0;

err_destroy:
	xas_destroy(&sb->xas);
	xas_destroy(&sb->xas2);
	xa_release(gmem_hugetlb_split_xa(gh, order), base >> order);
err_free:
	kfree(sb->blk);
	sb->blk = NULL;
	return r;
}

static void gmem_hugetlb_unstage_block(struct gmem_hugetlb *gh,
				       struct gmem_split_block *sb)
{
	struct folio *folio = sb->folio;

	xa_release(gmem_hugetlb_split_xa(gh, sb->order), sb->base >> sb->order);
	xas_destroy(&sb->xas);
	xas_destroy(&sb->xas2);
	if (sb->has_ref)
		folio_put(folio);
	kfree(sb->blk);
}

static void gmem_hugetlb_split_abort(struct gmem_alloc *a, struct gmem_split *sp)
{
	struct gmem_hugetlb *gh = to_gmem_hugetlb(a);
	int i;

	/* Nothing is frozen here; 2M blocks first, as they were staged last. */
	for (i = sp->nr_pmd - 1; i >= 0; i--)
		gmem_hugetlb_unstage_block(gh, &sp->pmd[i]);
	for (i = sp->nr_huge - 1; i >= 0; i--)
		gmem_hugetlb_unstage_block(gh, &sp->huge[i]);
	kfree(sp);
}

static bool gmem_hugetlb_block_has(struct gmem_split_block *sb, pgoff_t index)
{
	return index - sb->base < (1UL << sb->order);
}

/* Stage what it takes for @index to sit in a folio of at most 2^@order. */
static int gmem_hugetlb_stage(struct gmem_hugetlb *gh, struct gmem_split *sp,
			      pgoff_t index, unsigned int order)
{
	struct address_space *mapping = sp->mapping;
	struct gmem_split_block *sb;
	struct folio *folio;
	pgoff_t base;
	int i, r;

	for (i = 0; i < sp->nr_pmd; i++)
		if (gmem_hugetlb_block_has(&sp->pmd[i], index))
			return 0;

	/* Inside a 1G folio staged already: its 2M pieces do not exist yet. */
	for (i = 0; i < sp->nr_huge; i++) {
		if (!gmem_hugetlb_block_has(&sp->huge[i], index))
			continue;
		if (order >= PMD_ORDER)
			return 0;
		if (sp->nr_pmd == ARRAY_SIZE(sp->pmd))
			return -EINVAL;
		/* The 1G split makes this page a 2M folio, still frozen. */
		base = round_down(index, GMEM_PMD_NR);
		folio = (struct folio *)folio_page(sp->huge[i].folio,
						   base - sp->huge[i].base);
		sb = &sp->pmd[sp->nr_pmd];
		r = gmem_hugetlb_stage_block(gh, mapping, sb, folio, base,
					     PMD_ORDER, true);
		if (r)
			return r;
		sb->blk->vmemmap_optimize = sp->huge[i].blk->vmemmap_optimize;
		sp->nr_pmd++;
		return 0;
	}

	folio = filemap_get_folio(mapping, index);
	if (IS_ERR(folio))
		return 0;
	/* Small enough, or poisoned: a poisoned huge page stays whole. */
	if (folio_order(folio) <= order || !folio_test_hugetlb(folio) ||
	    folio_test_hwpoison(folio)) {
		folio_put(folio);
		return 0;
	}

	if (sp->nr_huge == ARRAY_SIZE(sp->huge) ||
	    sp->nr_pmd == ARRAY_SIZE(sp->pmd)) {
		folio_put(folio);
		return -EINVAL;
	}
	if (folio_order(folio) > PMD_ORDER) {
		sb = &sp->huge[sp->nr_huge];
		r = gmem_hugetlb_stage_block(gh, mapping, sb, folio, folio->index,
					     folio_order(folio), false);
		if (r) {
			folio_put(folio);
			return r;
		}
		sp->nr_huge++;
		/* Then the 2M block, if 4K is needed. */
		return order < PMD_ORDER ? gmem_hugetlb_stage(gh, sp, index, order) : 0;
	}

	sb = &sp->pmd[sp->nr_pmd];
	r = gmem_hugetlb_stage_block(gh, mapping, sb, folio, folio->index,
				     PMD_ORDER, false);
	if (r) {
		folio_put(folio);
		return r;
	}
	sp->nr_pmd++;
	return 0;
}

static int gmem_hugetlb_split_prepare(struct gmem_alloc *a,
				      struct address_space *mapping,
				      const struct gmem_split_point *pts, int n,
				      struct gmem_split **spp, pgoff_t *err_index)
{
	struct gmem_hugetlb *gh = to_gmem_hugetlb(a);
	struct gmem_split *sp;
	int i, r;

	*spp = NULL;
	sp = kzalloc_obj(*sp);
	if (!sp)
		return -ENOMEM;
	sp->mapping = mapping;

	for (i = 0; i < n; i++) {
		if (pts[i].order < a->split_order)
			continue;
		r = gmem_hugetlb_stage(gh, sp, pts[i].index, pts[i].order);
		if (r) {
			*err_index = pts[i].index;
			gmem_hugetlb_split_abort(a, sp);
			return r;
		}
	}
	if (!sp->nr_huge && !sp->nr_pmd) {
		kfree(sp);
		return 0;
	}
	*spp = sp;
	return 0;
}

/* Page flags a piece takes from the huge folio. */
#define GMEM_HUGETLB_PIECE_FLAGS	(BIT(PG_uptodate) | BIT(PG_dirty))

static void gmem_hugetlb_retire_work(struct work_struct *work);

/* What free_huge_folio() needs from @folio, kept while it is split. */
static void gmem_hugetlb_save(struct gmem_hugetlb_block *blk,
			      struct folio *folio, struct hstate *h_pieces)
{
	blk->pfn = folio_pfn(folio);
	blk->index = folio->index;
	blk->h = folio_hstate(folio);
	blk->h_pieces = h_pieces;
	blk->piece_order = h_pieces ? huge_page_order(h_pieces) : 0;
	blk->spool = hugetlb_folio_subpool(folio);
	blk->hpg_flags = (unsigned long)folio->private;
#ifdef CONFIG_MEMCG
	blk->memcg_data = folio->memcg_data;
#endif
	INIT_LIST_HEAD(&blk->subs);
	INIT_DELAYED_WORK(&blk->retire, gmem_hugetlb_retire_work);

	/*
	 * PFN walkers check the type under hugetlb_lock, cgroup offlining moves
	 * the charge under it; the active list is its own.
	 */
	spin_lock_irq(&hugetlb_lock);
	blk->h_cg = hugetlb_cgroup_from_folio(folio);
	blk->h_cg_rsvd = hugetlb_cgroup_from_folio_rsvd(folio);
	if (blk->h_cg)
		list_add(&blk->charged, &gmem_hugetlb_charged);
	else
		INIT_LIST_HEAD(&blk->charged);
	blk->on_activelist = !list_empty(&folio->lru);
	list_del_init(&folio->lru);
	__folio_clear_hugetlb(folio);
	spin_unlock_irq(&hugetlb_lock);
}

/*
 * Make every struct page of @folio after the first a clean page: no order,
 * no folio metadata (page[1..3] hold it), no private data.
 */
static void gmem_hugetlb_clean_tails(struct folio *folio, unsigned long nr,
				     unsigned long flags)
{
	unsigned long i;

	for (i = 1; i < nr; i++) {
		struct page *page = folio_page(folio, i);

		page->flags.f &= ~PAGE_FLAGS_CHECK_AT_PREP;
		page->flags.f |= flags;
		((struct folio *)page)->index = 0;
		set_page_private(page, 0);
#ifdef CONFIG_MEMCG
		page->memcg_data = 0;
#endif
		if (!(i % 4096))
			cond_resched();
	}
	folio->private = NULL;
#ifdef CONFIG_MEMCG
	folio->memcg_data = 0;
#endif
}

static bool gmem_hugetlb_staged_piece(struct gmem_split *sp, struct folio *f)
{
	int i;

	for (i = 0; i < sp->nr_pmd; i++)
		if (sp->pmd[i].folio == f)
			return true;
	return false;
}

/* 1G -> 512 x 2M hugetlb folios that no pool counts: the 1G is. */
static void gmem_hugetlb_commit_huge(struct gmem_hugetlb *gh,
				     struct gmem_split *sp,
				     struct gmem_split_block *sb)
{
	struct folio *folio = sb->folio;
	unsigned long nr = folio_nr_pages(folio), keep, k;
	struct gmem_hugetlb_block *blk = sb->blk;
	pgoff_t base = folio->index;
	XA_STATE(xas, &sp->mapping->i_pages, base);
	LIST_HEAD(optimize);

	keep = folio->flags.f & GMEM_HUGETLB_PIECE_FLAGS;
	gmem_hugetlb_save(blk, folio, gh->h_pmd);
	gmem_hugetlb_clean_tails(folio, nr, 0);

	for (k = 0; k < nr; k += GMEM_PMD_NR) {
		struct page *head = folio_page(folio, k);
		struct folio *piece = (struct folio *)head;

		if (k) {
			head->flags.f |= keep;
			clear_compound_head(head);
		}
		prep_compound_page(head, PMD_ORDER);
		piece->mapping = sp->mapping;
		piece->index = base + k;
	}
	spin_lock_irq(&hugetlb_lock);
	for (k = 0; k < nr; k += GMEM_PMD_NR)
		init_new_hugetlb_folio((struct folio *)folio_page(folio, k));
	spin_unlock_irq(&hugetlb_lock);

	xas_lock_irq(&xas);
	xas_split(&sb->xas, folio, sb->order);
	for (k = 0; k < nr; k += 1UL << 12) {
		xas_set(&sb->xas2, base + k);
		xas_split(&sb->xas2, folio, 12);
	}
	for (k = 0; k < nr; k += GMEM_PMD_NR) {
		xas_set_order(&xas, base + k, PMD_ORDER);
		xas_store(&xas, folio_page(folio, k));
	}
	xas_unlock_irq(&xas);
	xas_destroy(&sb->xas);
	xas_destroy(&sb->xas2);

	/* Give back what the 2M pieces do not need, unless split further. */
	for (k = 0; k < nr; k += GMEM_PMD_NR) {
		struct folio *piece = (struct folio *)folio_page(folio, k);

		if (!gmem_hugetlb_staged_piece(sp, piece))
			list_add_tail(&piece->lru, &optimize);
	}
	if (blk->vmemmap_optimize)
		hugetlb_vmemmap_optimize_folios(gh->h_pmd, &optimize);
	while (!list_empty(&optimize)) {
		struct folio *piece = list_first_entry(&optimize, struct folio, lru);

		list_del_init(&piece->lru);
		folio_ref_unfreeze(piece, GMEM_PMD_NR);
	}

	blk->vmemmap_kb = blk->vmemmap_optimize ?
			  gmem_hugetlb_vmemmap_kb(blk->h, PMD_ORDER) : 0;
	xa_store(&gh->huge_blocks, base >> sb->order, blk, GFP_KERNEL);
	gh->nr_split[1]++;
	gh->vmemmap_kb += blk->vmemmap_kb;
}

/* 2M -> 512 x 4K: ordinary order-0 page-cache folios. */
static void gmem_hugetlb_commit_pmd(struct gmem_hugetlb *gh,
				    struct gmem_split *sp,
				    struct gmem_split_block *sb)
{
	struct folio *folio = sb->folio;
	unsigned long nr = folio_nr_pages(folio), i;
	struct gmem_hugetlb_block *blk = sb->blk;
	pgoff_t base = folio->index;

	gmem_hugetlb_save(blk, folio, NULL);
	gmem_hugetlb_clean_tails(folio, nr, folio->flags.f & GMEM_HUGETLB_PIECE_FLAGS);
	for (i = 1; i < nr; i++) {
		struct folio *piece = (struct folio *)folio_page(folio, i);

		piece->mapping = sp->mapping;
		piece->index = base + i;
		atomic_set(&piece->_mapcount, -1);
		/* As in THP split: flags before the page stops being a tail. */
		smp_wmb();
		clear_compound_head(&piece->page);
		piece->lru.prev = NULL;
	}
	ClearPageCompound(&folio->page);

	/*
	 * guest_memfd's lookups wait on the fault mutex we hold; lockless ones
	 * that still find the old entry fail to get a reference (the pieces
	 * are frozen) and retry or give up.
	 */
	xas_lock_irq(&sb->xas);
	xas_split(&sb->xas, folio, PMD_ORDER);
	for (i = 0; i < nr; i++) {
		xas_set(&sb->xas, base + i);
		xas_store(&sb->xas, folio_page(folio, i));
	}
	xas_unlock_irq(&sb->xas);
	xas_destroy(&sb->xas);

	for (i = nr - 1; i > 0; i--)
		folio_ref_unfreeze((struct folio *)folio_page(folio, i), 1);
	folio_ref_unfreeze(folio, 1);

	blk->vmemmap_kb = blk->vmemmap_optimize ? gmem_hugetlb_vmemmap_kb(blk->h, 0) : 0;
	xa_store(&gh->pmd_blocks, base >> PMD_ORDER, blk, GFP_KERNEL);
	gh->nr_split[0]++;
	gh->vmemmap_kb += blk->vmemmap_kb;
}

/* The staged folios that exist, huge ones first: what commit freezes. */
static struct gmem_split_block *gmem_hugetlb_staged(struct gmem_split *sp, int i)
{
	if (i < sp->nr_huge)
		return &sp->huge[i];
	i -= sp->nr_huge;
	return i < sp->nr_pmd ? &sp->pmd[i] : NULL;
}

/*
 * Freeze every staged folio at the page cache's references plus ours, and
 * give it its own struct pages back (hugetlb_free_vmemmap), or undo it all:
 * -EAGAIN if one stays referenced, -ENOMEM.
 */
static int gmem_hugetlb_freeze_staged(struct gmem_split *sp, pgoff_t *err_index)
{
	struct gmem_split_block *sb;
	int i, r = 0;

	for (i = 0; (sb = gmem_hugetlb_staged(sp, i)); i++) {
		if (!sb->has_ref)
			continue;
		if (!gmem_hugetlb_freeze(sb->folio, folio_nr_pages(sb->folio) + 1)) {
			r = -EAGAIN;
			break;
		}
		if (hugetlb_vmemmap_restore_folio(folio_hstate(sb->folio), sb->folio)) {
			folio_ref_unfreeze(sb->folio, folio_nr_pages(sb->folio) + 1);
			r = -ENOMEM;
			break;
		}
	}
	if (!r)
		return 0;

	*err_index = sb->base;
	while (i--) {
		sb = gmem_hugetlb_staged(sp, i);
		if (!sb->has_ref)
			continue;
		if (sb->blk->vmemmap_optimize)
			hugetlb_vmemmap_optimize_folio(folio_hstate(sb->folio), sb->folio);
		folio_ref_unfreeze(sb->folio, folio_nr_pages(sb->folio) + 1);
	}
	return r;
}

/*
 * The hugetlb fault mutexes of the huge pages @sp touches (at most two, in
 * hash order), held while their folios are frozen: every guest_memfd lookup
 * of a HugeTLB file takes its huge page's mutex first, so none spins on a
 * frozen folio while this sleeps.
 */
static int gmem_hugetlb_split_mutexes(struct gmem_alloc *a, struct gmem_split *sp,
				      u32 hash[2])
{
	struct gmem_split_block *sb;
	int i, n = 0;
	u32 h;

	for (i = 0; (sb = gmem_hugetlb_staged(sp, i)); i++) {
		h = hugetlb_fault_mutex_hash(sp->mapping, sb->base >> a->order);
		if ((n && hash[0] == h) || (n == 2 && hash[1] == h))
			continue;
		hash[n++] = h;
	}
	if (n == 2 && hash[0] > hash[1])
		swap(hash[0], hash[1]);
	return n;
}

static int gmem_hugetlb_split_commit(struct gmem_alloc *a, struct gmem_split *sp,
				     pgoff_t *err_index)
{
	struct gmem_hugetlb *gh = to_gmem_hugetlb(a);
	u32 hash[2];
	int i, n, r;

	n = gmem_hugetlb_split_mutexes(a, sp, hash);
	mutex_lock(&hugetlb_fault_mutex_table[hash[0]]);
	if (n == 2)
		mutex_lock_nested(&hugetlb_fault_mutex_table[hash[1]],
				  SINGLE_DEPTH_NESTING);

	r = gmem_hugetlb_freeze_staged(sp, err_index);
	if (!r) {
		/* The lookup references are the page cache's now. */
		for (i = 0; i < sp->nr_huge; i++)
			gmem_hugetlb_commit_huge(gh, sp, &sp->huge[i]);
		for (i = 0; i < sp->nr_pmd; i++)
			gmem_hugetlb_commit_pmd(gh, sp, &sp->pmd[i]);
	}

	if (n == 2)
		mutex_unlock(&hugetlb_fault_mutex_table[hash[1]]);
	mutex_unlock(&hugetlb_fault_mutex_table[hash[0]]);
	if (!r)
		kfree(sp);
	return r;
}

/* A raw page of @blk, or a 2M piece of it, is poisoned. */
static bool gmem_hugetlb_block_poisoned(struct gmem_hugetlb_block *blk)
{
	unsigned long i, nr = pages_per_huge_page(blk->h);

	for (i = 0; i < nr; i++) {
		if (PageHWPoison(pfn_to_page(blk->pfn + i)))
			return true;
		if (blk->piece_order && !(i % GMEM_PMD_NR) &&
		    folio_test_hwpoison(pfn_folio(blk->pfn + i)))
			return true;
	}
	return false;
}

/*
 * Make @blk's pieces its folio again and return it frozen, or NULL (nothing
 * changed) if a piece is split itself, holds other references than
 * @piece_refs (the page cache's, or the retiring state's), is poisoned, or
 * (2M pieces) its vmemmap cannot be restored.
 */
static struct folio *gmem_hugetlb_rebuild(struct gmem_hugetlb_block *blk,
					  int piece_refs)
{
	unsigned long nr = pages_per_huge_page(blk->h);
	unsigned long step = 1UL << blk->piece_order;
	struct folio *folio = pfn_folio(blk->pfn);
	unsigned long i, j;

	for (i = 0; i < nr; i += step) {
		struct folio *piece = pfn_folio(blk->pfn + i);

		if (folio_order(piece) != blk->piece_order ||
		    !folio_ref_freeze(piece, piece_refs))
			goto undo;
	}
	/* Never merge a poisoned piece: its raw page must stay marked. */
	if (gmem_hugetlb_block_poisoned(blk))
		goto undo;
	for (j = 0; blk->piece_order && j < nr; j += step) {
		if (!hugetlb_vmemmap_restore_folio(blk->h_pieces,
						   pfn_folio(blk->pfn + j)))
			continue;
		while (j && blk->vmemmap_optimize) {
			j -= step;
			hugetlb_vmemmap_optimize_folio(blk->h_pieces,
						       pfn_folio(blk->pfn + j));
		}
		goto undo;
	}

	if (blk->piece_order) {
		spin_lock_irq(&hugetlb_lock);
		for (j = 0; j < nr; j += step)
			__folio_clear_hugetlb(pfn_folio(blk->pfn + j));
		spin_unlock_irq(&hugetlb_lock);
	}
	gmem_hugetlb_clean_tails(folio, nr, 0);
	prep_compound_page(&folio->page, huge_page_order(blk->h));

	spin_lock_irq(&hugetlb_lock);
	list_del_init(&blk->charged);
	__folio_set_hugetlb(folio);
	folio->private = (void *)blk->hpg_flags;
	hugetlb_set_folio_subpool(folio, blk->spool);
	set_hugetlb_cgroup(folio, blk->h_cg);
	set_hugetlb_cgroup_rsvd(folio, blk->h_cg_rsvd);
#ifdef CONFIG_MEMCG
	folio->memcg_data = blk->memcg_data;
#endif
	if (blk->on_activelist)
		list_add(&folio->lru, &blk->h->hugepage_activelist);
	spin_unlock_irq(&hugetlb_lock);

	/* Best effort, as at allocation: a failure only costs memory. */
	if (blk->vmemmap_optimize)
		hugetlb_vmemmap_optimize_folio(blk->h, folio);
	return folio;

undo:
	while (i) {
		i -= step;
		folio_ref_unfreeze(pfn_folio(blk->pfn + i), piece_refs);
	}
	return NULL;
}

static void gmem_hugetlb_forget(struct gmem_hugetlb *gh,
				struct gmem_hugetlb_block *blk)
{
	unsigned int order = huge_page_order(blk->h);

	xa_erase(gmem_hugetlb_split_xa(gh, order), blk->index >> order);
	gh->nr_split[blk->piece_order ? 1 : 0]--;
	gh->vmemmap_kb -= blk->vmemmap_kb;
}

static bool __gmem_hugetlb_merge(struct gmem_alloc *a,
				 struct address_space *mapping, pgoff_t index,
				 unsigned int order)
{
	struct gmem_hugetlb *gh = to_gmem_hugetlb(a);
	pgoff_t base = round_down(index, 1UL << order);
	XA_STATE(xas, &mapping->i_pages, base);
	struct gmem_hugetlb_block *blk, *sub;
	unsigned long sindex = base >> PMD_ORDER;
	struct folio *folio;

	blk = xa_load(gmem_hugetlb_split_xa(gh, order), base >> order);
	if (!blk)
		return false;

	/* A 1G block's 2M pieces must all be whole first. */
	if (blk->piece_order) {
		xa_for_each_range(&gh->pmd_blocks, sindex, sub, base >> PMD_ORDER,
				  (base >> PMD_ORDER) + (1UL << (order - PMD_ORDER)) - 1)
			if (!__gmem_hugetlb_merge(a, mapping, sindex << PMD_ORDER,
						  PMD_ORDER))
				return false;
	}

	/* The head piece keeps its mapping and index: the folio's own. */
	folio = gmem_hugetlb_rebuild(blk, 1 << blk->piece_order);
	if (!folio)
		return false;

	/* Replaces the pieces' entries; freeing their nodes needs no memory. */
	xas_set_order(&xas, base, order);
	xas_lock_irq(&xas);
	xas_store(&xas, folio);
	xas_unlock_irq(&xas);
	folio_ref_unfreeze(folio, folio_nr_pages(folio));

	gmem_hugetlb_forget(gh, blk);
	kfree(blk);
	return true;
}

/* Merges under the huge page's fault mutex: see gmem_hugetlb_split_mutexes(). */
static bool gmem_hugetlb_merge(struct gmem_alloc *a,
			       struct address_space *mapping, pgoff_t index,
			       unsigned int order)
{
	u32 hash = hugetlb_fault_mutex_hash(mapping, index >> a->order);
	bool merged;

	mutex_lock(&hugetlb_fault_mutex_table[hash]);
	merged = __gmem_hugetlb_merge(a, mapping, index, order);
	mutex_unlock(&hugetlb_fault_mutex_table[hash]);
	return merged;
}

static void gmem_hugetlb_retire_work(struct work_struct *work)
{
	struct gmem_hugetlb_block *blk =
		container_of(to_delayed_work(work), struct gmem_hugetlb_block,
			     retire);
	struct gmem_hugetlb_block *sub, *tmp;
	struct folio *folio;

	/* A 1G block's split 2M pieces, then the 1G: as in merge. */
	list_for_each_entry_safe(sub, tmp, &blk->subs, sub_node) {
		folio = gmem_hugetlb_rebuild(sub, 1);
		if (!folio)
			goto later;
		folio_ref_unfreeze(folio, folio_nr_pages(folio));
		list_del(&sub->sub_node);
		kfree(sub);
	}
	folio = gmem_hugetlb_rebuild(blk, 1 << blk->piece_order);
	if (!folio)
		goto later;
	folio->mapping = NULL;
	folio_ref_unfreeze(folio, 1);
	folio_put(folio);
	goto done;

later:
	if (!gmem_hugetlb_block_poisoned(blk)) {
		blk->retire_ms = clamp(blk->retire_ms * 2, 10U, 1000U);
		schedule_delayed_work(&blk->retire, msecs_to_jiffies(blk->retire_ms));
		return;
	}
	/*
	 * Like hugetlbfs with unknown raw errors: keep it out of the pool, and
	 * its record, which may hold a cgroup charge, with it.
	 */
	pr_warn_ratelimited("guest_memfd: huge page at pfn %#lx has a poisoned piece, not returned to the pool\n",
			    blk->pfn);
	list_for_each_entry_safe(sub, tmp, &blk->subs, sub_node)
		kfree(sub);
	goto leaked;
done:
	kfree(blk);
leaked:
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
	unsigned long nr = 1UL << order, sindex = base >> PMD_ORDER;
	XA_STATE(xas, &mapping->i_pages, base);
	struct gmem_hugetlb_block *blk, *sub;
	struct folio *folio;

	blk = xa_load(gmem_hugetlb_split_xa(gh, order), base >> order);
	gmem_hugetlb_forget(gh, blk);
	if (blk->piece_order) {
		xa_for_each_range(&gh->pmd_blocks, sindex, sub, base >> PMD_ORDER,
				  (base + nr - 1) >> PMD_ORDER) {
			gmem_hugetlb_forget(gh, sub);
			list_add_tail(&sub->sub_node, &blk->subs);
		}
	}

	xas_lock_irq(&xas);
	xas_for_each(&xas, folio, base + nr - 1) {
		xas_pause(&xas);
		xas_unlock_irq(&xas);
		folio_lock(folio);
		xas_lock_irq(&xas);
	}
	xas_set(&xas, base);
	xas_set_order(&xas, base, order);
	xas_store(&xas, NULL);
	mapping->nrpages -= nr;
	xas_unlock_irq(&xas);

	/*
	 * The pieces leave the page cache here, not when the huge page is
	 * freed: tell the owner now, as filemap_remove_folio() would (KVM
	 * gives SEV-SNP private pages back to the host).
	 */
	for (sindex = 0; sindex < nr; sindex += folio_nr_pages(folio)) {
		folio = pfn_folio(blk->pfn + sindex);
		folio->mapping = NULL;
		if (mapping->a_ops->free_folio)
			mapping->a_ops->free_folio(folio);
		folio_unlock(folio);
	}

	atomic_inc(&gmem_hugetlb_retiring);
	schedule_delayed_work(&blk->retire, 1);
}

#ifdef CONFIG_CGROUP_HUGETLB
/**
 * gmem_hugetlb_cgroup_offline - move split huge pages' charges to the parent
 * @h_cg: the hugetlb cgroup going offline
 *
 * Called by hugetlb_cgroup_css_offline(), which would otherwise wait for
 * charges it cannot find on the active lists.
 */
void gmem_hugetlb_cgroup_offline(struct hugetlb_cgroup *h_cg)
{
	struct gmem_hugetlb_block *blk;

	spin_lock_irq(&hugetlb_lock);
	list_for_each_entry(blk, &gmem_hugetlb_charged, charged)
		if (blk->h_cg == h_cg)
			blk->h_cg = hugetlb_cgroup_reparent(hstate_index(blk->h), h_cg,
							    pages_per_huge_page(blk->h),
							    pfn_to_nid(blk->pfn));
	spin_unlock_irq(&hugetlb_lock);
}
#endif

static pgoff_t gmem_hugetlb_next_split(struct gmem_alloc *a, pgoff_t index,
				       unsigned int order)
{
	struct gmem_hugetlb *gh = to_gmem_hugetlb(a);
	unsigned long bindex = index >> order;

	if (order != PMD_ORDER && order != a->order)
		return ULONG_MAX;
	if (!xa_find(gmem_hugetlb_split_xa(gh, order), &bindex, ULONG_MAX,
		     XA_PRESENT))
		return ULONG_MAX;
	return bindex << order;
}

/*
 * Zero bytes [@from, @to) of @folio a page at a time: up to 1G - 4K of a 1G
 * folio are not zeroed without a chance to reschedule.  A poisoned folio is
 * not written at all: no fault or KVM lookup hands out any page of it, and
 * finding its poisoned raw pages would take mf_mutex, which memory_failure()
 * holds while it takes the folio lock we hold here.
 */
static void gmem_hugetlb_zero_range(struct folio *folio, size_t from, size_t to)
{
	if (folio_test_hwpoison(folio))
		return;

	while (from < to) {
		size_t len = min_t(size_t, to - from, PAGE_SIZE - offset_in_page(from));

		memzero_page(folio_page(folio, from >> PAGE_SHIFT), offset_in_page(from), len);
		from += len;
		if (IS_ALIGNED(from, PMD_SIZE))
			cond_resched();
	}
}

static void gmem_hugetlb_punch(struct gmem_alloc *a,
			       struct address_space *mapping,
			       loff_t start, loff_t end)
{
	struct gmem_hugetlb *gh = to_gmem_hugetlb(a);
	pgoff_t index = start >> PAGE_SHIFT;
	pgoff_t last = (end - 1) >> PAGE_SHIFT;
	pgoff_t size = 1UL << a->order, b;
	struct folio_batch fbatch;
	int i;

	/* Split huge pages leave whole: merged now, or retired if in use. */
	for (b = gmem_hugetlb_next_split(a, index, a->order); b <= last;
	     b = gmem_hugetlb_next_split(a, b + size, a->order)) {
		if (start <= (loff_t)b << PAGE_SHIFT &&
		    (loff_t)(b + size) << PAGE_SHIFT <= end &&
		    !gmem_hugetlb_merge(a, mapping, b, a->order))
			gmem_hugetlb_retire(gh, mapping, b);
		if (b + size < b)
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
			/* Pieces of a partly punched huge page stay, zeroed. */
			if (start <= fstart && fend <= end &&
			    folio_order(folio) == a->order)
				filemap_remove_folio(folio);
			else
				gmem_hugetlb_zero_range(folio, max(start, fstart) - fstart,
							min(end, fend) - fstart);
			folio_unlock(folio);
		}
		folio_batch_release(&fbatch);
		cond_resched();
	}
}

/*
 * Row @k of @node_nr, the folios of @order per node, as numa_maps shows
 * them: N<node>=<folios> for the nodes that have some.
 */
static void gmem_hugetlb_show_nodes(struct seq_file *m, unsigned int order,
				    const unsigned long *node_nr, int k)
{
	const char *sep = "";
	int nid;

	if (!node_nr)
		return;
	node_nr += k * nr_node_ids;
	seq_printf(m, "folios_order_%u_nodes:\t", order);
	for_each_node(nid) {
		if (!node_nr[nid])
			continue;
		seq_printf(m, "%sN%d=%lu", sep, nid, node_nr[nid]);
		sep = " ";
	}
	seq_putc(m, '\n');
}

static void gmem_hugetlb_show_fdinfo(struct gmem_alloc *a,
				     struct address_space *mapping,
				     struct seq_file *m)
{
	struct gmem_hugetlb *gh = to_gmem_hugetlb(a);
	XA_STATE(xas, &mapping->i_pages, 0);
	unsigned long nr[3] = {};	/* huge, PMD (in 1G files), base pages */
	unsigned long *node_nr;		/* the same, per node */
	struct folio *folio;
	int k;

	node_nr = kcalloc(3 * nr_node_ids, sizeof(*node_nr), GFP_KERNEL);
	rcu_read_lock();
	xas_for_each(&xas, folio, ULONG_MAX) {
		if (xas_retry(&xas, folio) || xa_is_value(folio))
			continue;
		if (folio_order(folio) == a->order)
			k = 0;
		else if (folio_order(folio) == PMD_ORDER)
			k = 1;
		else
			k = 2;
		nr[k]++;
		if (node_nr)
			node_nr[k * nr_node_ids + folio_nid(folio)]++;
		if (need_resched()) {
			xas_pause(&xas);
			cond_resched_rcu();
		}
	}
	rcu_read_unlock();

	seq_printf(m, "hugetlb_page_size:\t%lu kB\n", huge_page_size(gh->h) >> 10);
	seq_printf(m, "folios_order_%u:\t%lu\n", a->order, nr[0]);
	gmem_hugetlb_show_nodes(m, a->order, node_nr, 0);
	if (a->order > PMD_ORDER) {
		seq_printf(m, "folios_order_%u:\t%lu\n", PMD_ORDER, nr[1]);
		gmem_hugetlb_show_nodes(m, PMD_ORDER, node_nr, 1);
	}
	seq_printf(m, "folios_order_0:\t%lu\n", nr[2]);
	gmem_hugetlb_show_nodes(m, 0, node_nr, 2);
	kfree(node_nr);
	seq_printf(m, "split_blocks:\t%lu\n", gh->nr_split[0] + gh->nr_split[1]);
	if (a->order > PMD_ORDER)
		seq_printf(m, "split_blocks_1g:\t%lu\n", gh->nr_split[1]);
	seq_printf(m, "vmemmap_restored_kB:\t%lu\n", gh->vmemmap_kb);
}

static void gmem_hugetlb_destroy(struct gmem_alloc *a)
{
	struct gmem_hugetlb *gh = to_gmem_hugetlb(a);

	hugetlb_cgroup_uncharge_cgroup_rsvd(hstate_index(gh->h), gh->nr_pages,
					    gh->h_cg_rsvd);
	/*
	 * The reservation of every page the file does not hold goes now:
	 * pages still retiring, or poisoned for good, are freed to the pool
	 * unreserved, if ever.
	 */
	hugepage_subpool_release_min(gh->spool);
	hugepage_put_subpool(gh->spool);
	xa_destroy(&gh->pmd_blocks);
	xa_destroy(&gh->huge_blocks);
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
	/* 1G folios split through 2M ones, which need the 2M hstate. */
	gh->h_pmd = size_to_hstate(PMD_SIZE);
	gh->alloc.split_order = gh->h_pmd ? 0 : gh->alloc.order;
	xa_init(&gh->pmd_blocks);
	xa_init(&gh->huge_blocks);

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
