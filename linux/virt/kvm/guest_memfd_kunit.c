// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for guest_memfd's own decisions, included by guest_memfd.c so
 * they can reach its static helpers: the per-page attribute ranges, the
 * order KVM may map a folio at, and which blocks a conversion splits.
 */
#include <kunit/test.h>

#define PRIV KVM_MEMORY_ATTRIBUTE_PRIVATE

static struct inode *gmem_kunit_inode(struct kunit *test)
{
	struct gmem_inode *gi = kunit_kzalloc(test, sizeof(*gi), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, gi);
	mt_init_flags(&gi->attributes, MT_FLAGS_USE_RCU);
	return &gi->vfs_inode;
}

static void gmem_kunit_free(struct inode *inode)
{
	kvm_gmem_destroy_attributes(inode);
}

/* Number of runs of non-shared pages: what a conversion's cost scales with. */
static unsigned int gmem_kunit_runs(struct inode *inode)
{
	MA_STATE(mas, &GMEM_I(inode)->attributes, 0, 0);
	unsigned int n = 0;
	void *entry;

	rcu_read_lock();
	mas_for_each(&mas, entry, ULONG_MAX)
		n++;
	rcu_read_unlock();
	return n;
}

static void gmem_attrs_convert_and_merge(struct kunit *test)
{
	struct inode *inode = gmem_kunit_inode(test);
	pgoff_t i;

	/* A 1G file of 4K pages starts private: one run, not 262144 entries. */
	KUNIT_ASSERT_EQ(test, kvm_gmem_store_attributes(inode, 0, SZ_1G >> PAGE_SHIFT, PRIV), 0);
	KUNIT_EXPECT_EQ(test, gmem_kunit_runs(inode), 1);
	KUNIT_EXPECT_TRUE(test, kvm_gmem_range_has_attrs(inode, 0, SZ_1G >> PAGE_SHIFT,
							 ~0ul, PRIV));

	/* One shared page splits the run; its neighbours keep their state. */
	KUNIT_ASSERT_EQ(test, kvm_gmem_store_attributes(inode, 100, 101, 0), 0);
	KUNIT_EXPECT_EQ(test, gmem_kunit_runs(inode), 2);
	KUNIT_EXPECT_EQ(test, kvm_gmem_attributes(inode, 99), PRIV);
	KUNIT_EXPECT_EQ(test, kvm_gmem_attributes(inode, 100), 0);
	KUNIT_EXPECT_EQ(test, kvm_gmem_attributes(inode, 101), PRIV);
	KUNIT_EXPECT_FALSE(test, kvm_gmem_range_has_attrs(inode, 0, 512, ~0ul, PRIV));
	KUNIT_EXPECT_FALSE(test, kvm_gmem_range_has_attrs(inode, 0, 512, ~0ul, 0));
	KUNIT_EXPECT_TRUE(test, kvm_gmem_range_has_attrs(inode, 100, 101, ~0ul, 0));
	KUNIT_EXPECT_TRUE(test, kvm_gmem_range_has_attrs(inode, 101, 512, ~0ul, PRIV));

	/* Converting it back merges with both neighbours. */
	KUNIT_ASSERT_EQ(test, kvm_gmem_store_attributes(inode, 100, 101, PRIV), 0);
	KUNIT_EXPECT_EQ(test, gmem_kunit_runs(inode), 1);

	/* Page-by-page conversion still ends as one run. */
	KUNIT_ASSERT_EQ(test, kvm_gmem_store_attributes(inode, 0, 1024, 0), 0);
	for (i = 0; i < 1024; i++)
		KUNIT_ASSERT_EQ(test, kvm_gmem_store_attributes(inode, i, i + 1, PRIV), 0);
	KUNIT_EXPECT_EQ(test, gmem_kunit_runs(inode), 1);

	gmem_kunit_free(inode);
}

/*
 * A file with tens of thousands of attribute runs has a tree several levels
 * tall, with internal nodes of every fill.  Destroying it as closing the file
 * does must not crash: freeing such a tree from an RCU callback did in 7.3
 * (mt_free_walk() read a node's metadata as a child), so guest_memfd frees it
 * directly.  Several sizes, so that some node ends up with 15 children: with
 * an RCU-deferred free this crashes the kernel in the callback.
 */
static void gmem_attrs_tall_tree_destroy(struct kunit *test)
{
	unsigned int n;
	pgoff_t i;

	for (n = 2000; n <= 32000; n += 1500) {
		struct inode *inode = gmem_kunit_inode(test);

		KUNIT_ASSERT_EQ(test, kvm_gmem_store_attributes(inode, 0, n, PRIV), 0);
		for (i = 0; i < n; i += 2)
			KUNIT_ASSERT_EQ(test, kvm_gmem_store_attributes(inode, i, i + 1, 0), 0);
		/* Every other page private: n / 2 runs, gaps not counted. */
		KUNIT_EXPECT_EQ(test, gmem_kunit_runs(inode), n / 2);
		gmem_kunit_free(inode);
		KUNIT_EXPECT_TRUE(test, mtree_empty(&GMEM_I(inode)->attributes));
	}
	/* Whatever the destroy left to RCU callbacks runs before the test ends. */
	rcu_barrier();
}

/* Attributes of the run that holds @index; *@last is set to its last index. */
static unsigned long gmem_kunit_run_of(struct inode *inode, pgoff_t index, pgoff_t *last)
{
	MA_STATE(mas, &GMEM_I(inode)->attributes, index, index);
	void *entry;

	rcu_read_lock();
	entry = mas_walk(&mas);
	*last = mas.last;
	rcu_read_unlock();

	return xa_to_value(entry);
}

static void gmem_attrs_gaps_and_edges(struct kunit *test)
{
	struct inode *inode = gmem_kunit_inode(test);
	pgoff_t last;

	/* Nothing stored: everything shared, one run up to the end of the index space. */
	KUNIT_EXPECT_TRUE(test, kvm_gmem_range_has_attrs(inode, 0, 8, ~0ul, 0));
	KUNIT_EXPECT_FALSE(test, kvm_gmem_range_has_attrs(inode, 0, 8, ~0ul, PRIV));
	KUNIT_EXPECT_EQ(test, gmem_kunit_run_of(inode, 5, &last), 0);
	KUNIT_EXPECT_EQ(test, last, ULONG_MAX);

	/* Private islands: a gap between them is not private. */
	KUNIT_ASSERT_EQ(test, kvm_gmem_store_attributes(inode, 10, 20, PRIV), 0);
	KUNIT_ASSERT_EQ(test, kvm_gmem_store_attributes(inode, 30, 40, PRIV), 0);
	KUNIT_EXPECT_EQ(test, gmem_kunit_runs(inode), 2);
	KUNIT_EXPECT_FALSE(test, kvm_gmem_range_has_attrs(inode, 10, 40, ~0ul, PRIV));
	KUNIT_EXPECT_FALSE(test, kvm_gmem_range_has_attrs(inode, 5, 15, ~0ul, PRIV));
	KUNIT_EXPECT_FALSE(test, kvm_gmem_range_has_attrs(inode, 15, 25, ~0ul, PRIV));
	KUNIT_EXPECT_TRUE(test, kvm_gmem_range_has_attrs(inode, 20, 30, ~0ul, 0));
	/* A mask without PRIVATE sees no attributes at all. */
	KUNIT_EXPECT_TRUE(test, kvm_gmem_range_has_attrs(inode, 0, 50, 0, 0));

	/* Runs report their extent, shared gaps included. */
	KUNIT_EXPECT_EQ(test, gmem_kunit_run_of(inode, 12, &last), PRIV);
	KUNIT_EXPECT_EQ(test, last, 19);
	KUNIT_EXPECT_EQ(test, gmem_kunit_run_of(inode, 25, &last), 0);
	KUNIT_EXPECT_EQ(test, last, 29);

	/* Filling the gap joins the islands. */
	KUNIT_ASSERT_EQ(test, kvm_gmem_store_attributes(inode, 20, 30, PRIV), 0);
	KUNIT_EXPECT_EQ(test, gmem_kunit_runs(inode), 1);
	KUNIT_EXPECT_TRUE(test, kvm_gmem_range_has_attrs(inode, 10, 40, ~0ul, PRIV));

	/* The last index of the space: no overflow when looking past it. */
	KUNIT_ASSERT_EQ(test, kvm_gmem_store_attributes(inode, ULONG_MAX - 3, ULONG_MAX, PRIV), 0);
	KUNIT_EXPECT_TRUE(test, kvm_gmem_range_has_attrs(inode, ULONG_MAX - 3, ULONG_MAX,
							 ~0ul, PRIV));
	KUNIT_EXPECT_EQ(test, gmem_kunit_run_of(inode, ULONG_MAX - 1, &last), PRIV);
	KUNIT_EXPECT_EQ(test, last, ULONG_MAX - 1);

	gmem_kunit_free(inode);
}

static void gmem_max_order_congruence(struct kunit *test)
{
	struct kvm_memory_slot slot = {};

	/* gfn and file offset congruent modulo 1G: a 1G folio maps 1G. */
	slot.base_gfn = SZ_4G >> PAGE_SHIFT;
	slot.gmem.pgoff = 0;
	KUNIT_EXPECT_EQ(test, kvm_gmem_max_order(&slot, 18), 18);

	/* Off by 2M: only 2M mappings line up. */
	slot.gmem.pgoff = SZ_2M >> PAGE_SHIFT;
	KUNIT_EXPECT_EQ(test, kvm_gmem_max_order(&slot, 18), 9);
	KUNIT_EXPECT_EQ(test, kvm_gmem_max_order(&slot, 9), 9);

	/* Off by 4M: still only 2M, KVM has no 4M level. */
	slot.gmem.pgoff = SZ_4M >> PAGE_SHIFT;
	KUNIT_EXPECT_EQ(test, kvm_gmem_max_order(&slot, 18), 9);

	/* Off by 1M: below a PMD, so 4K. */
	slot.gmem.pgoff = SZ_1M >> PAGE_SHIFT;
	KUNIT_EXPECT_EQ(test, kvm_gmem_max_order(&slot, 18), 0);
	KUNIT_EXPECT_EQ(test, kvm_gmem_max_order(&slot, 9), 0);

	/* Off by 4K: 4K only, whatever the folio. */
	slot.gmem.pgoff = 1;
	KUNIT_EXPECT_EQ(test, kvm_gmem_max_order(&slot, 18), 0);

	/* The offset ahead of the gfn works the same way. */
	slot.base_gfn = 0;
	slot.gmem.pgoff = (SZ_1G + SZ_2M) >> PAGE_SHIFT;
	KUNIT_EXPECT_EQ(test, kvm_gmem_max_order(&slot, 18), 9);

	/* Order-0 folios stay order 0. */
	slot.gmem.pgoff = 0;
	KUNIT_EXPECT_EQ(test, kvm_gmem_max_order(&slot, 0), 0);
}

/* A private fault's block never reaches past its memslot. */
static void gmem_private_block_in_slot(struct kunit *test)
{
	struct kvm_memory_slot slot = {
		.base_gfn = SZ_4G >> PAGE_SHIFT,
		.npages = SZ_1G >> PAGE_SHIFT,
	};
	gfn_t gfn = slot.base_gfn + 0x205;

	KUNIT_EXPECT_EQ(test, kvm_gmem_private_block(&slot, gfn, 18), 1ULL << 18);
	KUNIT_EXPECT_EQ(test, kvm_gmem_private_block(&slot, gfn, 9), 512);
	KUNIT_EXPECT_EQ(test, kvm_gmem_private_block(&slot, gfn, 0), 1);

	/* The slot ends 4M in: the 1G block is cut, its 2M blocks are not. */
	slot.npages = SZ_4M >> PAGE_SHIFT;
	KUNIT_EXPECT_EQ(test, kvm_gmem_private_block(&slot, gfn, 18), 512);

	/* The slot starts 4K into its first 2M block: there, only the page ... */
	slot.base_gfn += 1;
	KUNIT_EXPECT_EQ(test, kvm_gmem_private_block(&slot, slot.base_gfn + 4, 18), 1);
	KUNIT_EXPECT_EQ(test, kvm_gmem_private_block(&slot, slot.base_gfn + 4, 9), 1);

	/* ... but the next 2M block is whole in it. */
	KUNIT_EXPECT_EQ(test, kvm_gmem_private_block(&slot, gfn, 18), 512);
}

/*
 * Where a conversion needs smaller folios: each end whose smallest
 * enclosing block is left mixed, down to one level below that block.
 */
static void gmem_split_points(struct kunit *test)
{
	static const unsigned int lv2m[] = { 9 }, lv1g[] = { 9, 18 };
	struct inode *inode = gmem_kunit_inode(test);
	struct gmem_split_point pts[GMEM_SPLIT_MAX_POINTS];
	const pgoff_t g = 1UL << 18;
	int n;

	/* A file of two 1G blocks, all private. */
	KUNIT_ASSERT_EQ(test, kvm_gmem_store_attributes(inode, 0, 2 * g, PRIV), 0);

	/* One page to shared: its 2M block goes to 4K. */
	n = kvm_gmem_split_points(inode, lv1g, 2, 0, 5, 6, 0, pts);
	KUNIT_ASSERT_EQ(test, n, 2);
	KUNIT_EXPECT_EQ(test, pts[0].index, 5);
	KUNIT_EXPECT_EQ(test, pts[0].order, 0);
	KUNIT_EXPECT_EQ(test, pts[1].index, 5);
	/* A 2M-aligned 2M range: its 1G block goes to 2M, no 4K. */
	n = kvm_gmem_split_points(inode, lv1g, 2, 0, 512, 1024, 0, pts);
	KUNIT_ASSERT_EQ(test, n, 2);
	KUNIT_EXPECT_EQ(test, pts[0].order, 9);
	KUNIT_EXPECT_EQ(test, pts[1].order, 9);
	/* A whole 1G block, or to what it already is: nothing. */
	KUNIT_EXPECT_EQ(test, kvm_gmem_split_points(inode, lv1g, 2, 0, g, 2 * g, 0, pts), 0);
	KUNIT_EXPECT_EQ(test, kvm_gmem_split_points(inode, lv1g, 2, 0, 5, 6, PRIV, pts), 0);
	/* Across the 1G boundary: both ends, each in its own 2M block. */
	n = kvm_gmem_split_points(inode, lv1g, 2, 0, g - 1, g + 1, 0, pts);
	KUNIT_ASSERT_EQ(test, n, 2);
	KUNIT_EXPECT_EQ(test, pts[0].index, g - 1);
	KUNIT_EXPECT_EQ(test, pts[1].index, g);
	KUNIT_EXPECT_EQ(test, pts[1].order, 0);
	/* The 2M file's only level. */
	n = kvm_gmem_split_points(inode, lv2m, 1, 0, 512, 1025, 0, pts);
	KUNIT_ASSERT_EQ(test, n, 1);
	KUNIT_EXPECT_EQ(test, pts[0].index, 1024);
	KUNIT_EXPECT_EQ(test, pts[0].order, 0);

	/* Page 5 shared: converting it back leaves every block uniform. */
	KUNIT_ASSERT_EQ(test, kvm_gmem_store_attributes(inode, 5, 6, 0), 0);
	KUNIT_EXPECT_EQ(test, kvm_gmem_split_points(inode, lv1g, 2, 0, 5, 6, PRIV, pts), 0);

	gmem_kunit_free(inode);
}

/* A block is split only if the conversion leaves it with both kinds of pages. */
static void gmem_split_mixed_after(struct kunit *test)
{
	struct inode *inode = gmem_kunit_inode(test);

	/* Block 0 private, block 1 shared, page 600 of block 1 private. */
	KUNIT_ASSERT_EQ(test, kvm_gmem_store_attributes(inode, 0, 512, PRIV), 0);
	KUNIT_ASSERT_EQ(test, kvm_gmem_store_attributes(inode, 600, 601, PRIV), 0);

	/* One page of a uniform block: mixed. */
	KUNIT_EXPECT_TRUE(test, kvm_gmem_block_mixed_after(inode, 0, 9, 5, 6, 0));
	/* To what the rest of the block has: uniform. */
	KUNIT_EXPECT_FALSE(test, kvm_gmem_block_mixed_after(inode, 0, 9, 5, 6, PRIV));
	/* The whole block: uniform whatever it held. */
	KUNIT_EXPECT_FALSE(test, kvm_gmem_block_mixed_after(inode, 512, 9, 512, 1024, 0));
	/* The last odd page back to shared: uniform, so it can merge. */
	KUNIT_EXPECT_FALSE(test, kvm_gmem_block_mixed_after(inode, 512, 9, 600, 601, 0));
	/* Another page of block 1 to private: still mixed. */
	KUNIT_EXPECT_TRUE(test, kvm_gmem_block_mixed_after(inode, 512, 9, 700, 701, PRIV));
	/* The range's start is in the block, its end past it. */
	KUNIT_EXPECT_TRUE(test, kvm_gmem_block_mixed_after(inode, 0, 9, 100, 700, 0));
	KUNIT_EXPECT_FALSE(test, kvm_gmem_block_mixed_after(inode, 0, 9, 100, 700, PRIV));

	gmem_kunit_free(inode);
}

static struct kunit_case gmem_kunit_cases[] = {
	KUNIT_CASE(gmem_attrs_convert_and_merge),
	KUNIT_CASE(gmem_attrs_gaps_and_edges),
	KUNIT_CASE_SLOW(gmem_attrs_tall_tree_destroy),
	KUNIT_CASE(gmem_max_order_congruence),
	KUNIT_CASE(gmem_private_block_in_slot),
	KUNIT_CASE(gmem_split_points),
	KUNIT_CASE(gmem_split_mixed_after),
	{}
};

static struct kunit_suite gmem_kunit_suite = {
	.name = "kvm-guest-memfd",
	.test_cases = gmem_kunit_cases,
};

kunit_test_suite(gmem_kunit_suite);
