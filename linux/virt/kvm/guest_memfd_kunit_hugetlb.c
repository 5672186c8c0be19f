// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests of HugeTLB guest_memfd files against the real pool, included
 * by guest_memfd.c so they can reach its mount: what must hold whatever
 * order the last references go in.
 */
#include <kunit/test.h>
#include <linux/delay.h>

/*
 * The last reference to a HugeTLB folio may outlive its file and be dropped
 * in atomic context: a vCPU fault that looked the folio up releases it under
 * mmu_lock, after a close on another CPU evicted the inode.  The free must
 * then not give the file's reservation back to the pool, which frees surplus
 * pages and sleeps (vmemmap restore); the file gave it up at eviction.  The
 * reservation here takes surplus pages, so a free that returned it would
 * free them under preempt_disable() and DEBUG_ATOMIC_SLEEP would report it.
 */
static void gmem_hugetlb_last_put_atomic(struct kunit *test)
{
	struct hstate *h = size_to_hstate(SZ_2M);
	unsigned long overcommit, surplus, resv, free, tries;
	struct gmem_alloc *a;
	struct inode *inode;
	struct folio *folio;

	if (!h || !kvm_gmem_mnt)
		kunit_skip(test, "no 2M HugeTLB pool or no guest_memfd mount");

	spin_lock_irq(&hugetlb_lock);
	overcommit = h->nr_overcommit_huge_pages;
	surplus = h->surplus_huge_pages;
	resv = h->resv_huge_pages;
	free = h->free_huge_pages - h->resv_huge_pages;
	h->nr_overcommit_huge_pages = overcommit + 2;
	spin_unlock_irq(&hugetlb_lock);

	/* Two pages more than the pool has free: two surplus pages. */
	a = gmem_hugetlb_create((free + 2) * SZ_2M, 21);
	if (IS_ERR(a) || READ_ONCE(h->surplus_huge_pages) != surplus + 2) {
		if (!IS_ERR(a))
			a->ops->destroy(a);
		spin_lock_irq(&hugetlb_lock);
		h->nr_overcommit_huge_pages = overcommit;
		spin_unlock_irq(&hugetlb_lock);
		kunit_skip(test, "no surplus 2M pages from the buddy allocator");
	}

	inode = alloc_anon_inode(kvm_gmem_mnt->mnt_sb);
	KUNIT_ASSERT_FALSE(test, IS_ERR(inode));
	inode->i_mapping->a_ops = &kvm_gmem_aops;
	mapping_set_inaccessible(inode->i_mapping);
	inode->i_size = (free + 2) * SZ_2M;
	GMEM_I(inode)->alloc = a;

	folio = a->ops->get_folio(a, inode->i_mapping, 0, NULL);
	KUNIT_ASSERT_FALSE(test, IS_ERR(folio));
	folio_unlock(folio);

	/* Eviction punches the file and destroys the allocator; we hold on. */
	iput(inode);
	KUNIT_EXPECT_EQ(test, folio_ref_count(folio), 1);

	preempt_disable();
	folio_put(folio);
	preempt_enable();

	/* Surplus pages leave through a work item: wait for the pool. */
	for (tries = 0; tries < 100; tries++) {
		if (READ_ONCE(h->surplus_huge_pages) == surplus &&
		    READ_ONCE(h->resv_huge_pages) == resv)
			break;
		msleep(20);
	}
	spin_lock_irq(&hugetlb_lock);
	h->nr_overcommit_huge_pages = overcommit;
	spin_unlock_irq(&hugetlb_lock);
	KUNIT_EXPECT_EQ(test, h->surplus_huge_pages, surplus);
	KUNIT_EXPECT_EQ(test, h->resv_huge_pages, resv);
}

static struct kunit_case gmem_hugetlb_kunit_cases[] = {
	KUNIT_CASE(gmem_hugetlb_last_put_atomic),
	{}
};

static struct kunit_suite gmem_hugetlb_kunit_suite = {
	.name = "kvm-gmem-hugetlb",
	.test_cases = gmem_hugetlb_kunit_cases,
};

kunit_test_suite(gmem_hugetlb_kunit_suite);
