// SPDX-License-Identifier: GPL-2.0-only
/*
 * In-place shared/private conversion tracked by guest_memfd.
 *
 * With kvm.gmem_in_place_conversion=Y, a guest_memfd inode records per page
 * whether it is private (gmem_inode.attributes, see guest_memfd_internal.h
 * for the locking), KVM's attribute queries for gfns backed by guest_memfd
 * come here, and KVM_SET_MEMORY_ATTRIBUTES2 on the file converts a range in
 * place: the same physical pages, before and after.
 */
#include <linux/gmem_alloc.h>
#include <linux/kvm_host.h>
#include <linux/pagemap.h>
#include <linux/swap.h>

#include "kvm_mm.h"
#include "guest_memfd_internal.h"

/* True if every page in [@start, @end) has @attrs in the bits of @mask. */
static bool kvm_gmem_range_has_attrs(struct inode *inode, pgoff_t start,
				     pgoff_t end, unsigned long mask,
				     unsigned long attrs)
{
	MA_STATE(mas, &GMEM_I(inode)->attributes, start, start);
	pgoff_t index = start;
	bool ret = true;
	void *entry;

	rcu_read_lock();
	mas_for_each(&mas, entry, end - 1) {
		/* A gap (no entry) between runs has no attributes. */
		if ((attrs && mas.index > index) ||
		    (xa_to_value(entry) & mask) != attrs) {
			ret = false;
			break;
		}
		/* Done once a run reaches the end (it may end at ULONG_MAX). */
		if (mas.last >= end - 1) {
			index = end;
			break;
		}
		index = mas.last + 1;
	}
	rcu_read_unlock();

	return ret && (!attrs || index >= end);
}

/* Called under invalidate_lock; merges with equal neighbours. */
static int kvm_gmem_store_attributes(struct inode *inode, pgoff_t start,
				     pgoff_t end, unsigned long attrs)
{
	MA_STATE(mas, &GMEM_I(inode)->attributes, start, start);
	void *entry = attrs ? xa_mk_value(attrs) : NULL;
	pgoff_t first = start, last = end - 1;
	int r;

	mas_lock(&mas);
	if (entry) {
		if (start) {
			mas_set(&mas, start - 1);
			if (mas_walk(&mas) == entry)
				first = mas.index;
		}
		mas_set(&mas, end);
		if (mas_walk(&mas) == entry)
			last = mas.last;
	}
	mas_set_range(&mas, first, last);
	r = mas_store_gfp(&mas, entry, GFP_KERNEL_ACCOUNT);
	mas_unlock(&mas);

	return r;
}

unsigned long kvm_gmem_get_memory_attributes(struct kvm *kvm,
					     struct kvm_memory_slot *slot,
					     gfn_t gfn)
{
	struct file *file;

	if (!slot)
		slot = gfn_to_memslot(kvm, gfn);
	if (!slot || !kvm_slot_has_gmem(slot))
		return 0;

	file = kvm_gmem_peek_file(kvm, slot);
	if (!file)
		return 0;

	return kvm_gmem_attributes(file_inode(file), kvm_gmem_get_index(slot, gfn));
}
EXPORT_SYMBOL_FOR_KVM_INTERNAL(kvm_gmem_get_memory_attributes);

static bool kvm_gmem_slot_range_has_attrs(struct kvm *kvm,
					  struct kvm_memory_slot *slot,
					  gfn_t start, gfn_t end,
					  unsigned long mask, unsigned long attrs)
{
	pgoff_t index;
	struct file *file;

	if (!kvm_slot_has_gmem(slot))
		return !attrs;

	file = kvm_gmem_peek_file(kvm, slot);
	if (!file)
		return !attrs;

	index = kvm_gmem_get_index(slot, start);
	return kvm_gmem_range_has_attrs(file_inode(file), index,
					index + (end - start), mask, attrs);
}

/*
 * KVM's view of [@start, @end) follows the guest_memfd files that back it;
 * gfns without guest_memfd have no attributes.  @slot, if given, covers the
 * whole range (it may not be visible in the memslots yet).
 */
bool kvm_gmem_range_has_memory_attributes(struct kvm *kvm,
					  struct kvm_memory_slot *slot,
					  gfn_t start, gfn_t end,
					  unsigned long mask, unsigned long attrs)
{
	struct kvm_memory_slot *s;
	gfn_t next;

	mask &= KVM_MEMORY_ATTRIBUTE_PRIVATE;
	if (attrs & ~mask)
		return false;

	if (slot)
		return kvm_gmem_slot_range_has_attrs(kvm, slot, start, end, mask, attrs);

	for (; start < end; start = next) {
		s = gfn_to_memslot(kvm, start);
		if (!s) {
			if (attrs)
				return false;
			next = start + 1;
			continue;
		}
		next = min(end, s->base_gfn + s->npages);
		if (!kvm_gmem_slot_range_has_attrs(kvm, s, start, next, mask, attrs))
			return false;
	}
	return true;
}
EXPORT_SYMBOL_FOR_KVM_INTERNAL(kvm_gmem_range_has_memory_attributes);

/*
 * Before pages become private nothing but guest_memfd may hold them: a GUP
 * pin or I/O in flight would let the host reach private memory.  Host
 * mappings were zapped by the caller; a host fault that raced with that zap
 * holds the folio lock until its PTE is in, so zap again under the lock.
 */
static int kvm_gmem_check_unreferenced(struct inode *inode, pgoff_t start,
				       pgoff_t end, pgoff_t *err_index)
{
	struct address_space *mapping = inode->i_mapping;
	struct folio_batch fbatch;
	bool drained = false;
	pgoff_t index;
	int i, r;

retry:
	r = 0;
	index = start;
	folio_batch_init(&fbatch);
	while (!r && filemap_get_folios(mapping, &index, end - 1, &fbatch)) {
		for (i = 0; i < folio_batch_count(&fbatch); i++) {
			struct folio *folio = fbatch.folios[i];
			bool busy;

			folio_lock(folio);
			if (folio_mapped(folio))
				unmap_mapping_pages(mapping, folio->index,
						    folio_nr_pages(folio), false);
			/* The page cache's references plus the batch's. */
			busy = folio_ref_count(folio) != folio_nr_pages(folio) + 1;
			folio_unlock(folio);

			if (busy) {
				*err_index = max(folio->index, start);
				r = -EAGAIN;
				break;
			}
		}
		folio_batch_release(&fbatch);
		cond_resched();
	}

	/* Per-CPU LRU batches hold transient references: flush them once. */
	if (r && !drained) {
		lru_add_drain_all();
		drained = true;
		goto retry;
	}
	return r;
}

/*
 * A conversion of [start, end) to attrs; [zstart, zend) contains the range
 * and the huge pages being split.  KVM's faults stay out of all of it and
 * every mapping in it goes, so that none can map a folio about to be split
 * at its old size.
 */
struct kvm_gmem_conversion {
	pgoff_t start, end, zstart, zend;
	unsigned long attrs;
	bool changed;
	/* A failed split of a private mapping (TDX); nothing was zapped. */
	int err;
};

/* The part of @zrange's memslot in the converted range; false if none. */
static bool kvm_gmem_conversion_range(const struct kvm_gmem_conversion *c,
				      const struct kvm_gfn_range *zrange,
				      struct kvm_gfn_range *range)
{
	struct kvm_memory_slot *slot = zrange->slot;

	if (slot->gmem.pgoff >= c->end || slot->gmem.pgoff + slot->npages <= c->start)
		return false;
	*range = kvm_gmem_gfn_range(slot, c->start, c->end);
	range->arg.attributes = c->attrs;
	return true;
}

/*
 * Where a private zap removes the pages (TDX), split the private leaves the
 * range's bounds fall inside, in every memslot before any is zapped and
 * with no fault able to map the range: then none outlives its folio, none
 * outside the range is zapped, and a failure leaves every mapping in place.
 */
static int kvm_gmem_convert_slot_split(struct kvm *kvm, struct kvm_gfn_range *zrange,
				       void *arg)
{
	struct kvm_gmem_conversion *c = arg;
	struct kvm_gfn_range range;

	if ((c->zstart < c->start || c->zend > c->end) &&
	    kvm_arch_gmem_zap_destroys_private(kvm) &&
	    kvm_gmem_conversion_range(c, zrange, &range))
		return kvm_arch_gmem_split_private(kvm, range.start, range.end);
	return 0;
}

static bool kvm_gmem_convert_slot_start(struct kvm *kvm, struct kvm_gfn_range *zrange,
					void *arg)
{
	struct kvm_gmem_conversion *c = arg;
	struct kvm_gfn_range range;
	bool flush = false;

	/* The split pass added all of the range to the invalidation. */
	if (c->zstart < c->start || c->zend > c->end) {
		zrange->attr_filter = KVM_FILTER_SHARED;
		if (!kvm_arch_gmem_zap_destroys_private(kvm))
			zrange->attr_filter |= KVM_FILTER_PRIVATE;
		flush = kvm_mmu_unmap_gfn_range(kvm, zrange);
	}
	if (kvm_gmem_conversion_range(c, zrange, &range))
		flush |= kvm_arch_pre_set_memory_attributes(kvm, &range);
	return flush;
}

static bool kvm_gmem_convert_slot_end(struct kvm *kvm, struct kvm_gfn_range *zrange,
				      void *arg)
{
	struct kvm_gmem_conversion *c = arg;
	struct kvm_gfn_range range;

	/* Recompute huge page eligibility if the attributes changed. */
	if (c->changed && kvm_gmem_conversion_range(c, zrange, &range))
		kvm_arch_post_set_memory_attributes(kvm, &range);
	return false;
}

/*
 * Tell every VM bound to the conversion's range that the attributes change:
 * zap its mappings and keep its faults out until kvm_gmem_convert_end(),
 * which covers the same bindings.
 */
static void kvm_gmem_convert_start(struct inode *inode, struct kvm_gmem_conversion *c)
{
	struct gmem_file *f;

	kvm_gmem_for_each_file(f, inode) {
		bool ok = !c->err;
		int err;

		if (!kvm_gmem_tracks_attributes(f->kvm))
			continue;
		/* After a failure the other files' invalidations only start. */
		err = kvm_gmem_invalidate_slots_start(f, c->zstart, c->zend,
						      ok ? kvm_gmem_convert_slot_split : NULL,
						      ok ? kvm_gmem_convert_slot_start : NULL,
						      c);
		c->err = c->err ?: err;
	}
}

static void kvm_gmem_convert_end(struct inode *inode, struct kvm_gmem_conversion *c)
{
	struct gmem_file *f;

	kvm_gmem_for_each_file(f, inode)
		if (kvm_gmem_tracks_attributes(f->kvm))
			kvm_gmem_invalidate_slots_end(f, c->zstart, c->zend,
						      kvm_gmem_convert_slot_end, c);
}

/*
 * Would the block [@bstart, @bstart + 2^@order) hold both kinds of pages
 * once [@start, @end) has @attrs?
 */
static bool kvm_gmem_block_mixed_after(struct inode *inode, pgoff_t bstart,
				       unsigned int order, pgoff_t start,
				       pgoff_t end, unsigned long attrs)
{
	pgoff_t bend = bstart + (1UL << order);

	return (bstart < start &&
		!kvm_gmem_range_has_attrs(inode, bstart, start, ~0ul, attrs)) ||
	       (end < bend &&
		!kvm_gmem_range_has_attrs(inode, end, bend, ~0ul, attrs));
}

/* The block orders a conversion splits and merges at, smallest first. */
static int kvm_gmem_split_levels(struct gmem_alloc *a, unsigned int levels[2])
{
	int n = 0;

	if (a->split_order == a->order)
		return 0;
	if (a->order > PMD_ORDER)
		levels[n++] = PMD_ORDER;
	levels[n++] = a->order;
	return n;
}

/*
 * Stage the splits the conversion needs: each end of the range whose
 * smallest enclosing block would be left mixed must sit in folios one level
 * below it.  Everything that can fail happens here, before any KVM mapping
 * is zapped; on failure nothing is staged and *@err_index is set.
 */
static int kvm_gmem_split_points(struct inode *inode, const unsigned int *levels,
				 int nl, unsigned int split_order, pgoff_t start,
				 pgoff_t end, unsigned long attrs,
				 struct gmem_split_point pts[GMEM_SPLIT_MAX_POINTS])
{
	pgoff_t ends[2] = { start, end - 1 }, b;
	int i, e, n = 0;

	for (e = 0; e < 2; e++) {
		for (i = 0; i < nl; i++) {
			b = round_down(ends[e], 1UL << levels[i]);
			if (!kvm_gmem_block_mixed_after(inode, b, levels[i], start,
							end, attrs))
				continue;
			pts[n].index = ends[e];
			pts[n].order = i ? levels[i - 1] : split_order;
			n++;
			break;
		}
	}
	return n;
}

static int kvm_gmem_prepare_splits(struct inode *inode, pgoff_t start,
				   pgoff_t end, unsigned long attrs,
				   struct gmem_split **sp, pgoff_t *err_index)
{
	struct gmem_split_point pts[GMEM_SPLIT_MAX_POINTS];
	struct gmem_alloc *a = GMEM_I(inode)->alloc;
	unsigned int levels[2];
	int nl, n;

	*sp = NULL;
	nl = kvm_gmem_split_levels(a, levels);
	n = kvm_gmem_split_points(inode, levels, nl, a->split_order, start, end,
				  attrs, pts);
	if (!n)
		return 0;
	return a->ops->split_prepare(a, inode->i_mapping, pts, n, sp, err_index);
}

#ifdef CONFIG_HAVE_KVM_ARCH_GMEM_SET_SHARED
/*
 * Tell the architecture that [@start, @end) becomes shared, per run of
 * physically contiguous pages the file holds (holes have no hardware state):
 * the fallible part if !@commit, else the rest.  The folios found before a
 * split are the pieces' memory too (splits are in place).
 */
static int kvm_gmem_arch_set_shared(struct kvm *kvm, struct inode *inode,
				    pgoff_t start, pgoff_t end, bool commit)
{
	struct folio_batch fbatch;
	pgoff_t index = start;
	int i, r = 0;

	folio_batch_init(&fbatch);
	while (!r && filemap_get_folios(inode->i_mapping, &index, end - 1, &fbatch)) {
		for (i = 0; !r && i < folio_batch_count(&fbatch); i++) {
			struct folio *folio = fbatch.folios[i];
			pgoff_t first = max(folio->index, start);
			pgoff_t last = min(folio_next_index(folio), end);
			kvm_pfn_t pfn = folio_pfn(folio) + first - folio->index;

			if (commit)
				kvm_arch_gmem_set_shared(kvm, pfn, last - first);
			else
				r = kvm_arch_gmem_prepare_shared(kvm, pfn, last - first);
		}
		folio_batch_release(&fbatch);
		cond_resched();
	}
	return r;
}

static bool kvm_gmem_needs_arch_set_shared(struct kvm *kvm, unsigned long attrs)
{
	return !(attrs & KVM_MEMORY_ATTRIBUTE_PRIVATE) && kvm_arch_gmem_has_set_shared(kvm);
}
#else
static int kvm_gmem_arch_set_shared(struct kvm *kvm, struct inode *inode,
				    pgoff_t start, pgoff_t end, bool commit)
{
	return 0;
}

static bool kvm_gmem_needs_arch_set_shared(struct kvm *kvm, unsigned long attrs)
{
	return false;
}
#endif

/* The architecture keeps per-page state that a conversion to shared resets. */
bool kvm_gmem_arch_tracks_shared(struct kvm *kvm)
{
	return kvm_gmem_needs_arch_set_shared(kvm, 0);
}

/*
 * A punch frees whole huge folios, whose hardware state the free_folio hook
 * resets, but zeroes the pages of the others in place: there, SEV-SNP's RMP
 * must give them back to the host first.  They stay private to the file; the
 * next private fault assigns them again.  Called with slots_lock and
 * invalidate_lock held and KVM's mappings of [@start, @end) invalidated,
 * before the punch; on failure nothing is punched.
 */
int kvm_gmem_punch_arch(struct kvm *kvm, struct inode *inode, pgoff_t start,
			pgoff_t end)
{
	int r;

	r = kvm_gmem_arch_set_shared(kvm, inode, start, end, false);
	if (!r)
		kvm_gmem_arch_set_shared(kvm, inode, start, end, true);
	return r;
}

/*
 * Best effort: make each split block in [@start, @end) that is uniform now
 * one folio again, and drop its smaller mappings so the next fault maps it
 * huge.
 */
static void kvm_gmem_merge_blocks(struct inode *inode, pgoff_t start,
				  pgoff_t end)
{
	struct gmem_alloc *a = GMEM_I(inode)->alloc;
	unsigned int levels[2];
	pgoff_t size, b;
	int nl, i;

	nl = kvm_gmem_split_levels(a, levels);
	for (i = 0; i < nl; i++) {
		size = 1UL << levels[i];
		for (b = a->ops->next_split(a, round_down(start, size), levels[i]);
		     b < end; b = a->ops->next_split(a, b + size, levels[i])) {
			if (!kvm_gmem_range_has_attrs(inode, b, b + size, ~0ul,
						      kvm_gmem_attributes(inode, b)))
				continue;
			/* Host PTEs of pieces hold references: they refault. */
			unmap_mapping_pages(inode->i_mapping, b, size, false);
			if (a->ops->merge(a, inode->i_mapping, b, levels[i]))
				kvm_gmem_remap_range(inode, b, b + size);
		}
	}
}

/*
 * Convert [@start, @end) of the file to @attrs in place.  All or nothing: on
 * any error the attributes are unchanged (zapped mappings simply refault).
 *
 * Huge blocks that end up with both kinds of pages are split first and
 * blocks that end up uniform are merged after.  Staging a split allocates
 * what it needs; kvm_gmem_convert_start() then keeps KVM's faults out of the
 * whole huge pages and zaps them, so no KVM mapping is ever larger than its
 * folio; committing freezes the folios and may still fail (mappings simply
 * refault), and once they are frozen the split cannot fail.  Pages becoming
 * shared may need hardware state changed (SEV-SNP's RMP): what can fail of
 * it runs with KVM's mappings zapped, before the split commits, the rest
 * once the attributes are stored, before anything can map the pages.
 */
static int kvm_gmem_convert(struct gmem_file *f, struct inode *inode,
			    pgoff_t start, pgoff_t end, unsigned long attrs,
			    pgoff_t *err_index)
{
	struct address_space *mapping = inode->i_mapping;
	struct gmem_alloc *a = GMEM_I(inode)->alloc;
	struct kvm_gmem_conversion c = {
		.start = start,
		.end = end,
		.attrs = attrs,
	};
	bool arch = kvm_gmem_needs_arch_set_shared(f->kvm, attrs);
	struct gmem_split *sp;
	int r = 0;

	/*
	 * slots_lock stabilises the bindings' memslots and lpage_info.  In 7.3
	 * a guest_memfd inode has exactly one file, i.e. one VM.
	 */
	mutex_lock(&f->kvm->slots_lock);
	filemap_invalidate_lock(mapping);

	if (kvm_gmem_range_has_attrs(inode, start, end, ~0ul, attrs))
		goto out;

	if (attrs & KVM_MEMORY_ATTRIBUTE_PRIVATE) {
		unmap_mapping_pages(mapping, start, end - start, false);
		r = kvm_gmem_check_unreferenced(inode, start, end, err_index);
		if (r)
			goto out;
	}

	r = kvm_gmem_prepare_splits(inode, start, end, attrs, &sp, err_index);
	if (r)
		goto out;

	/* Splits take whole huge pages out of KVM's reach first. */
	c.zstart = sp ? round_down(start, 1UL << a->order) : start;
	c.zend = sp ? round_up(end, 1UL << a->order) : end;
	kvm_gmem_convert_start(inode, &c);
	r = c.err;
	/*
	 * A zap that the hardware refused (TDX's removal of a private page)
	 * bugs the VM: then the pages may still be the guest's, and must not
	 * become the host's.
	 */
	if (!r && READ_ONCE(f->kvm->vm_bugged))
		r = -EIO;
	if (!r && arch)
		r = kvm_gmem_arch_set_shared(f->kvm, inode, start, end, false);
	if (r) {
		if (sp)
			a->ops->split_abort(a, sp);
		kvm_gmem_convert_end(inode, &c);
		goto out;
	}
	if (sp) {
		/*
		 * The host maps whole huge folios as special PFNs, which GUP
		 * cannot pin: make it refault the pieces as ordinary pages.
		 */
		unmap_mapping_pages(mapping, c.zstart, c.zend - c.zstart, false);
		r = a->ops->split_commit(a, sp, err_index);
		if (r) {
			a->ops->split_abort(a, sp);
			kvm_gmem_convert_end(inode, &c);
			goto out;
		}
	}
	r = kvm_gmem_store_attributes(inode, start, end, attrs);
	c.changed = !r;
	if (!r && arch)
		kvm_gmem_arch_set_shared(f->kvm, inode, start, end, true);
	kvm_gmem_convert_end(inode, &c);
	if (!r)
		kvm_gmem_merge_blocks(inode, start, end);
out:
	filemap_invalidate_unlock(mapping);
	mutex_unlock(&f->kvm->slots_lock);
	return r;
}

long kvm_gmem_set_attributes(struct file *file, void __user *argp)
{
	struct gmem_file *f = file->private_data;
	struct inode *inode = file_inode(file);
	struct kvm_memory_attributes2 attrs;
	pgoff_t err_index = 0;
	int r;

	if (copy_from_user(&attrs, argp, sizeof(attrs)))
		return -EFAULT;

	if (attrs.flags || attrs.error_offset ||
	    memchr_inv(attrs.reserved, 0, sizeof(attrs.reserved)))
		return -EINVAL;
	/* Only VMs whose guest_memfd tracks attributes can convert in place. */
	if (!kvm_gmem_tracks_attributes(f->kvm) ||
	    attrs.attributes & ~kvm_gmem_settable_mem_attributes(f->kvm))
		return -EINVAL;
	if (!attrs.size || attrs.offset + attrs.size < attrs.offset)
		return -EINVAL;
	if (!PAGE_ALIGNED(attrs.offset) || !PAGE_ALIGNED(attrs.size))
		return -EINVAL;
	if (attrs.offset + attrs.size > i_size_read(inode))
		return -EINVAL;

	/* Allocators that cannot split convert whole folios only. */
	if (!IS_ALIGNED(attrs.offset | attrs.size,
			PAGE_SIZE << GMEM_I(inode)->alloc->split_order))
		return -EOPNOTSUPP;

	r = kvm_gmem_convert(f, inode, attrs.offset >> PAGE_SHIFT,
			     (attrs.offset + attrs.size) >> PAGE_SHIFT,
			     attrs.attributes, &err_index);
	if (r == -EAGAIN) {
		attrs.error_offset = (u64)err_index << PAGE_SHIFT;
		if (copy_to_user(argp, &attrs, sizeof(attrs)))
			return -EFAULT;
	}
	return r;
}

/* A file starts all private, or all shared with INIT_SHARED. */
int kvm_gmem_init_attributes(struct inode *inode, loff_t size, u64 flags)
{
	if (!kvm_gmem_in_place_conversion || (flags & GUEST_MEMFD_FLAG_INIT_SHARED))
		return 0;

	return mtree_store_range(&GMEM_I(inode)->attributes, 0,
				 (size >> PAGE_SHIFT) - 1,
				 xa_mk_value(KVM_MEMORY_ATTRIBUTE_PRIVATE),
				 GFP_KERNEL_ACCOUNT);
}

#if IS_ENABLED(CONFIG_KVM_GMEM_KUNIT_TEST)
#include "guest_memfd_kunit.c"
#endif
