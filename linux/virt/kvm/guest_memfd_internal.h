/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * guest_memfd internals shared by guest_memfd.c (files, allocation, KVM
 * bindings) and guest_memfd_attributes.c (in-place shared/private tracking).
 */
#ifndef __KVM_GUEST_MEMFD_INTERNAL_H__
#define __KVM_GUEST_MEMFD_INTERNAL_H__

#include <linux/fs.h>
#include <linux/kvm_host.h>
#include <linux/maple_tree.h>
#include <linux/mempolicy.h>

struct gmem_alloc;

/*
 * A guest_memfd instance can be associated multiple VMs, each with its own
 * "view" of the underlying physical memory.
 *
 * The gmem's inode is effectively the raw underlying physical storage, and is
 * used to track properties of the physical memory, while each gmem file is
 * effectively a single VM's view of that storage, and is used to track assets
 * specific to its associated VM, e.g. memslots=>gmem bindings.
 *
 * With in-place conversion (kvm.gmem_in_place_conversion=Y), whether a page
 * is shared or private is a property of the physical storage, so it lives in
 * the inode (gmem_inode.attributes) and every VM view and host mapping of the
 * file sees the same state.  A page's state is independent of whether it is
 * allocated: punching a hole or allocating does not change it.
 *
 * Locking, outermost first:
 *   kvm->slots_lock			conversion (lpage_info mixed tracking)
 *     mapping->invalidate_lock		exclusive: conversion, punch hole,
 *					release; shared: allocation, host faults
 *       folio lock			host faults hold it from the attribute
 *					check until the PTE is installed
 *       kvm->mmu_lock			KVM's mappings; reads attributes
 *         attributes' maple tree lock	writers only; readers use RCU
 *					(KVM's, under kvm->srcu, without a
 *					file reference: kvm_gmem_peek_file())
 * A conversion holds invalidate_lock exclusively from the first unmap to the
 * last KVM notification, so no host fault can map a page it makes private.
 * KVM's own faults read the attributes and rely on mmu_invalidate_seq,
 * which a conversion bumps, to retry; they take invalidate_lock (shared)
 * only where a conversion to shared resets hardware state (SEV-SNP), since
 * a retry cannot undo making a page private.
 * HugeTLB allocation and every lookup of a HugeTLB file's folios take the
 * hugetlb fault mutex (under invalidate_lock when held, before the folio
 * lock, as hugetlbfs does); splitting and merging folios, under
 * invalidate_lock exclusive, take it after KVM's zap and hold it while
 * folios are frozen (Documentation/mm/guest_memfd_hugetlb.rst).
 * hugetlb_lock and the subpool lock are leaf spinlocks, also taken when a
 * folio is freed (punch hole, or a folio_put() under mmu_lock).
 * memory_failure() calls ->error_remove_folio with the folio locked, i.e. in
 * the opposite order to punch and conversion: it only tries invalidate_lock,
 * and if that fails leaves KVM's zap to gmem_inode.error_work, which takes
 * it with no folio lock held.
 */
struct gmem_file {
	struct kvm *kvm;
	struct xarray bindings;
	struct list_head entry;
};

struct gmem_inode {
	struct shared_policy policy;
	struct inode vfs_inode;
	struct list_head gmem_file_list;

	/*
	 * Per-page attributes of the file with in-place conversion, as ranges:
	 * index -> xa_mk_value(KVM_MEMORY_ATTRIBUTE_*); no entry is shared.
	 * Adjacent ranges with equal attributes are merged, so converting any
	 * range costs O(number of ranges), not O(pages).  Written under
	 * invalidate_lock (exclusive), read under RCU.
	 */
	struct maple_tree attributes;

	/* Where the folios come from; fixed at creation. */
	struct gmem_alloc *alloc;

	/*
	 * KVM's zap of poisoned pages [error_start, error_end), deferred by
	 * kvm_gmem_error_folio(); the range grows to cover every deferred folio.
	 */
	struct work_struct error_work;
	spinlock_t error_lock;		/* protects error_start/end; a leaf lock */
	pgoff_t error_start, error_end;

	u64 flags;
};

static __always_inline struct gmem_inode *GMEM_I(struct inode *inode)
{
	return container_of(inode, struct gmem_inode, vfs_inode);
}

#define kvm_gmem_for_each_file(f, inode) \
	list_for_each_entry(f, &GMEM_I(inode)->gmem_file_list, entry)

static inline pgoff_t kvm_gmem_get_index(struct kvm_memory_slot *slot, gfn_t gfn)
{
	return gfn - slot->base_gfn + slot->gmem.pgoff;
}

static inline unsigned long kvm_gmem_attributes(struct inode *inode, pgoff_t index)
{
	return xa_to_value(mtree_load(&GMEM_I(inode)->attributes, index));
}

static inline struct kvm_gfn_range
kvm_gmem_gfn_range(struct kvm_memory_slot *slot, pgoff_t start, pgoff_t end)
{
	pgoff_t pgoff = slot->gmem.pgoff;

	return (struct kvm_gfn_range) {
		.start = slot->base_gfn + max(pgoff, start) - pgoff,
		.end = slot->base_gfn + min(pgoff + slot->npages, end) - pgoff,
		.slot = slot,
		.may_block = true,
	};
}

static inline struct file *kvm_gmem_get_file(struct kvm_memory_slot *slot)
{
	/*
	 * Do not return slot->gmem.file if it has already been closed;
	 * there might be some time between the last fput() and when
	 * kvm_gmem_release() clears slot->gmem.file.
	 */
	return get_file_active(&slot->gmem.file);
}

/*
 * The file bound to @slot, for a short read of its attributes that takes no
 * reference, so that KVM's page faults need no atomic on a file all vCPUs
 * share.  The caller holds kvm->srcu or slots_lock (as for the memslot
 * itself), and kvm_gmem_release() waits for SRCU readers after unbinding the
 * file (in place, the only mode that reads attributes here): the file and
 * its inode outlive the read.  NULL once it is released.
 */
static inline struct file *kvm_gmem_peek_file(struct kvm *kvm,
					      struct kvm_memory_slot *slot)
{
	lockdep_assert_once(srcu_read_lock_held(&kvm->srcu) ||
			    lockdep_is_held(&kvm->slots_lock) ||
			    !refcount_read(&kvm->users_count));
	return READ_ONCE(slot->gmem.file);
}

/*
 * KVM may map a folio at its own order only where the memslot's gfns and file
 * offsets are congruent at that size; below that it falls back to the next
 * page table level that is (PMD, then PTE) instead of tripping over a
 * misaligned pfn.
 */
static inline int kvm_gmem_max_order(const struct kvm_memory_slot *slot, int order)
{
	u64 skew = slot->base_gfn - slot->gmem.pgoff;

	if (skew && __ffs64(skew) < order)
		order = __ffs64(skew) >= PMD_ORDER ? PMD_ORDER : 0;
	return order;
}

/*
 * The pages around @gfn that a private fault hands the architecture to make
 * private at once (kvm_arch_gmem_make_private()): the aligned block of
 * 2^@order pages (@order from kvm_gmem_max_order()) if the memslot binds all
 * of it, else its 2M block if that fits, else the page.  A huge folio may
 * straddle two bindings, and its pages bound elsewhere have other gfns.
 */
static inline kvm_pfn_t kvm_gmem_private_block(const struct kvm_memory_slot *slot,
					       gfn_t gfn, int order)
{
	while (order) {
		gfn_t start = ALIGN_DOWN(gfn, 1ULL << order);

		if (start >= slot->base_gfn &&
		    start + (1ULL << order) <= slot->base_gfn + slot->npages)
			break;
		order = order > PMD_ORDER ? PMD_ORDER : 0;
	}
	return 1ULL << order;
}

void kvm_gmem_zap_range(struct inode *inode, pgoff_t start, pgoff_t end);
void kvm_gmem_remap_range(struct inode *inode, pgoff_t start, pgoff_t end);

/* Work on one memslot's part of an invalidated range, under mmu_lock. */
typedef bool (*kvm_gmem_slot_fn)(struct kvm *kvm, struct kvm_gfn_range *range, void *arg);
typedef int (*kvm_gmem_slot_prep_fn)(struct kvm *kvm, struct kvm_gfn_range *range,
				     void *arg);
int kvm_gmem_invalidate_slots_start(struct gmem_file *f, pgoff_t start, pgoff_t end,
				    kvm_gmem_slot_prep_fn prep, kvm_gmem_slot_fn fn,
				    void *arg);
void kvm_gmem_invalidate_slots_end(struct gmem_file *f, pgoff_t start, pgoff_t end,
				   kvm_gmem_slot_fn fn, void *arg);

/*
 * Free the attributes of an inode that is going away.  Every reader walks
 * them holding a reference to the file (or to a mapping of it), so none is
 * left and the nodes can be freed now rather than after a grace period.
 * That also stays clear of 7.3's RCU-deferred free of a tree, which crashes
 * when an internal node has 15 children: mt_free_walk() takes the node's
 * metadata in the last slot for a child (fixed upstream in "maple_tree: fix
 * maple_range_64 crashes in RCU mode"; KUnit gmem_attrs_tall_tree_destroy).
 */
static inline void kvm_gmem_destroy_attributes(struct inode *inode)
{
	mt_clear_in_rcu(&GMEM_I(inode)->attributes);
	mtree_destroy(&GMEM_I(inode)->attributes);
}

bool kvm_gmem_arch_tracks_shared(struct kvm *kvm);
int kvm_gmem_punch_arch(struct kvm *kvm, struct inode *inode, pgoff_t start,
			pgoff_t end);

#ifdef CONFIG_KVM_GENERIC_MEMORY_ATTRIBUTES
int kvm_gmem_init_attributes(struct inode *inode, loff_t size, u64 flags);
long kvm_gmem_set_attributes(struct file *file, void __user *argp);
#else
static inline int kvm_gmem_init_attributes(struct inode *inode, loff_t size,
					   u64 flags)
{
	return 0;
}
#endif

#endif /* __KVM_GUEST_MEMFD_INTERNAL_H__ */
