// SPDX-License-Identifier: GPL-2.0-only
/*
 * KUnit tests for tdx_plan_demotes(), included by tdx_gmem_plan.c: a table
 * of leaves and ranges, and a check over many ranges that after the demotes
 * no leaf crosses a bound of the range (the zap is exact) and that no leaf
 * the range does not cut was demoted.
 */
#include <kunit/test.h>

#define G1	BIT_ULL(18)	/* 4K pages in 1G */
#define M2	512ull		/* 4K pages in 2M */

static const struct {
	const char *name;
	u64 leaf, start, end;
	int level;
	struct tdx_demote want[3];
	int n;
} tdx_rows[] = {
	{ "4K inside a 2M leaf", 0x200, 0x205, 0x206, PG_LEVEL_2M,
	  { { 0x200, PG_LEVEL_2M } }, 1 },
	{ "the whole 2M leaf", 0x200, 0x200, 0x400, PG_LEVEL_2M, {}, 0 },
	{ "a range around the 2M leaf", 0x200, 0x100, 0x500, PG_LEVEL_2M, {}, 0 },
	{ "a range next to it", 0x200, 0x400, 0x401, PG_LEVEL_2M, {}, 0 },
	{ "the second half of the 2M leaf", 0x200, 0x300, 0x400, PG_LEVEL_2M,
	  { { 0x200, PG_LEVEL_2M } }, 1 },
	{ "4K inside a 1G leaf", G1, G1 + 0x205, G1 + 0x206, PG_LEVEL_1G,
	  { { G1, PG_LEVEL_1G }, { G1 + 0x200, PG_LEVEL_2M } }, 2 },
	{ "2M-aligned 2M inside a 1G leaf", G1, G1 + M2, G1 + 2 * M2, PG_LEVEL_1G,
	  { { G1, PG_LEVEL_1G } }, 1 },
	{ "bounds in two 2M blocks of a 1G leaf", G1, G1 + 5, G1 + 3 * M2 + 7, PG_LEVEL_1G,
	  { { G1, PG_LEVEL_1G }, { G1, PG_LEVEL_2M }, { G1 + 3 * M2, PG_LEVEL_2M } }, 3 },
	{ "the end of a 1G leaf and beyond", G1, 2 * G1 - 1, 2 * G1 + 1, PG_LEVEL_1G,
	  { { G1, PG_LEVEL_1G }, { 2 * G1 - M2, PG_LEVEL_2M } }, 2 },
};

static void tdx_demote_table(struct kunit *test)
{
	struct tdx_demote out[4];
	int i, j, n;

	for (i = 0; i < ARRAY_SIZE(tdx_rows); i++) {
		n = tdx_plan_demotes(tdx_rows[i].leaf, tdx_rows[i].level, tdx_rows[i].start,
				     tdx_rows[i].end, out, ARRAY_SIZE(out));
		KUNIT_ASSERT_EQ_MSG(test, n, tdx_rows[i].n, "%s", tdx_rows[i].name);
		for (j = 0; j < n; j++)
			KUNIT_EXPECT_TRUE_MSG(test, out[j].gfn == tdx_rows[i].want[j].gfn &&
					      out[j].level == tdx_rows[i].want[j].level,
					      "%s: demote %d is %llx level %d", tdx_rows[i].name,
					      j, out[j].gfn, out[j].level);
	}
}

static void tdx_demote_errors(struct kunit *test)
{
	struct tdx_demote out[1];

	KUNIT_EXPECT_EQ(test, tdx_plan_demotes(0x201, PG_LEVEL_2M, 0x205, 0x206, out, 1), -EINVAL);
	KUNIT_EXPECT_EQ(test, tdx_plan_demotes(0x200, PG_LEVEL_4K, 0x205, 0x206, out, 1), -EINVAL);
	KUNIT_EXPECT_EQ(test, tdx_plan_demotes(0x200, PG_LEVEL_2M, 0x206, 0x206, out, 1), -EINVAL);
	KUNIT_EXPECT_EQ(test, tdx_plan_demotes(G1, PG_LEVEL_1G, G1 + 5, G1 + 3 * M2 + 7,
					       out, 1), -E2BIG);
}

/* The level of the leaf mapping @gfn after @out ran on a 1G leaf at G1. */
static int tdx_leaf_level(const struct tdx_demote *out, int n, u64 gfn)
{
	int i, level = PG_LEVEL_1G;

	for (i = 0; i < n; i++)
		if (gfn >= out[i].gfn && gfn < out[i].gfn + tdx_level_pages(out[i].level) &&
		    out[i].level == level)
			level--;
	return level;
}

/* Over many ranges: bounds never fall inside a leaf afterwards, and no demote is spare. */
static void tdx_demote_exact(struct kunit *test)
{
	static const u64 offs[] = { 0, 1, M2 - 1, M2, M2 + 1, 7 * M2 + 3, G1 - 1, G1, G1 + 9 };
	struct tdx_demote out[4];
	int s, e, i, n, lvl;

	for (s = 0; s < ARRAY_SIZE(offs); s++) {
		for (e = 0; e < ARRAY_SIZE(offs); e++) {
			u64 start = G1 + offs[s], end = G1 + offs[e] + 1, b;

			if (start >= end)
				continue;
			n = tdx_plan_demotes(G1, PG_LEVEL_1G, start, end, out, ARRAY_SIZE(out));
			KUNIT_ASSERT_GE(test, n, 0);
			for (i = 0; i < 2; i++) {
				b = i ? end : start;
				if (b <= G1 || b >= 2 * G1)
					continue;
				lvl = tdx_leaf_level(out, n, b);
				KUNIT_EXPECT_TRUE_MSG(test,
						      IS_ALIGNED(b, tdx_level_pages(lvl)),
						      "[%llx, %llx): bound %llx inside a level %d leaf",
						      start, end, b, lvl);
			}
			/* Each 2M demote holds a bound that needed it. */
			for (i = 1; i < n; i++)
				KUNIT_EXPECT_TRUE(test,
						  (start > out[i].gfn && start < out[i].gfn + M2) ||
						  (end > out[i].gfn && end < out[i].gfn + M2));
		}
	}
}

/* The blocks a conversion splits first, and their agreement with the demotes. */
static void tdx_split_blocks(struct kunit *test)
{
	static const u64 offs[] = { 0, 1, M2 - 1, M2, M2 + 1, 3 * M2 + 7, 4 * M2 };
	u64 blocks[2], leaf;
	struct tdx_demote out[1];
	int s, e, n, i, want;

	memset(blocks, 0, sizeof(blocks));
	KUNIT_EXPECT_EQ(test, tdx_plan_split_blocks(M2, 2 * M2, blocks), 0);
	KUNIT_EXPECT_EQ(test, tdx_plan_split_blocks(M2 + 5, M2 + 6, blocks), 1);
	KUNIT_EXPECT_EQ(test, blocks[0], M2);
	KUNIT_EXPECT_EQ(test, tdx_plan_split_blocks(M2 + 5, 3 * M2 + 1, blocks), 2);
	KUNIT_EXPECT_EQ(test, blocks[0], M2);
	KUNIT_EXPECT_EQ(test, blocks[1], 3 * M2);
	KUNIT_EXPECT_EQ(test, tdx_plan_split_blocks(M2, 3 * M2 + 1, blocks), 1);
	KUNIT_EXPECT_EQ(test, blocks[0], 3 * M2);
	KUNIT_EXPECT_EQ(test, tdx_plan_split_blocks(5, 5, blocks), -EINVAL);

	/* A 2M leaf is split exactly when tdx_plan_demotes() demotes it. */
	for (s = 0; s < ARRAY_SIZE(offs); s++) {
		for (e = 0; e < ARRAY_SIZE(offs); e++) {
			u64 start = G1 + offs[s], end = G1 + offs[e] + 1;

			if (start >= end)
				continue;
			n = tdx_plan_split_blocks(start, end, blocks);
			KUNIT_ASSERT_GE(test, n, 0);
			for (leaf = G1; leaf < G1 + 5 * M2; leaf += M2) {
				want = tdx_plan_demotes(leaf, PG_LEVEL_2M, start, end, out, 1);
				for (i = 0; i < n && blocks[i] != leaf; i++)
					;
				KUNIT_EXPECT_EQ_MSG(test, i < n, want == 1,
						    "[%llx, %llx): leaf %llx", start, end, leaf);
			}
		}
	}
}

/* Which ACCEPT exits split a 2M block, and which one. */
static void tdx_accept_exits(struct kunit *test)
{
	/* Type 1 (ACCEPT); bits 34:32 hold the ACCEPT level minus one. */
	const u64 accept_4k = 1, accept_2m = 1 | (1ull << 32);
	/* Type 6: an access before ACCEPT, not an ACCEPT. */
	const u64 pending = 6;
	u64 start = 0;

	KUNIT_EXPECT_TRUE(test, tdx_plan_accept_split(accept_4k, 3 * M2 + 9, &start));
	KUNIT_EXPECT_EQ(test, start, 3 * M2);
	KUNIT_EXPECT_FALSE(test, tdx_plan_accept_split(accept_2m, 3 * M2, &start));
	KUNIT_EXPECT_FALSE(test, tdx_plan_accept_split(pending, 3 * M2 + 9, &start));
	/* Other bits of the qualification do not matter. */
	KUNIT_EXPECT_TRUE(test, tdx_plan_accept_split(accept_4k | (0x1full << 40) | 0x30,
						      G1 + M2 + 1, &start));
	KUNIT_EXPECT_EQ(test, start, G1 + M2);
}

/* The fault's largest mapping: 2M only for a running TD's private memory. */
static void tdx_max_levels(struct kunit *test)
{
	int bits;

	/* Shared faults: no limit from TDX, whatever else holds. */
	for (bits = 0; bits < 8; bits++)
		KUNIT_EXPECT_EQ(test, tdx_plan_max_level(false, bits & 1, bits & 2,
							 bits & 4), 0);
	/* Private: 2M needs all three; with tdx_huge_page off, 4K as 7.3. */
	for (bits = 0; bits < 8; bits++)
		KUNIT_EXPECT_EQ_MSG(test, tdx_plan_max_level(true, bits & 1, !(bits & 2),
							     bits & 4),
				    bits == 7 ? PG_LEVEL_2M : PG_LEVEL_4K, "bits %d", bits);
}

static struct kunit_case tdx_gmem_plan_cases[] = {
	KUNIT_CASE(tdx_demote_table),
	KUNIT_CASE(tdx_demote_errors),
	KUNIT_CASE(tdx_demote_exact),
	KUNIT_CASE(tdx_split_blocks),
	KUNIT_CASE(tdx_accept_exits),
	KUNIT_CASE(tdx_max_levels),
	{}
};

static struct kunit_suite tdx_gmem_plan_suite = {
	.name = "kvm-tdx-gmem-plan",
	.test_cases = tdx_gmem_plan_cases,
};

kunit_test_suite(tdx_gmem_plan_suite);
