// SPDX-License-Identifier: GPL-2.0-only
/*
 * KUnit tests for the SEV-SNP plans of sev_gmem_plan.c, included by it.
 *
 * Each case is a table row: a snapshot of the RMP, a request, and the
 * operations expected in order.  A small model of the RMP then runs every
 * plan and checks what hardware would: no 4K update inside a 2M entry, no
 * 4K update with a 2M direct map after the point of no return, every page
 * of the range in the state asked for and every other page untouched.
 */
#include <kunit/test.h>

#define MAX_OPS		64
#define NR_REGIONS	4
/* Host pages start at a 2M-aligned pfn, so region i holds PFN(i, 0..511). */
#define PFN0		0x100000ull
#define PFN(r, i)	(PFN0 + (r) * SNP_REGION_PAGES + (i))

struct plan_row {
	const char *name;
	u64 pfn, nr;
	struct snp_op ops[8];
	int n;
};

#define OP(t, p, g, n)	{ .type = SNP_OP_##t, .pfn = (p), .gfn = (g), .nr = (n) }

/* Too big for a kernel stack. */
struct plan_ctx {
	struct snp_region before[NR_REGIONS], r[NR_REGIONS];
	struct snp_op ops[MAX_OPS];
};

static struct plan_ctx *plan_ctx(struct kunit *test)
{
	struct plan_ctx *c = kunit_kzalloc(test, sizeof(*c), GFP_KERNEL);

	KUNIT_ASSERT_NOT_NULL(test, c);
	return c;
}

static void regions_private_2m(struct snp_region *r, int nr, bool dm_4k)
{
	int i;

	for (i = 0; i < nr; i++) {
		r[i].rmp_2m = true;
		r[i].dm_4k = dm_4k;
		bitmap_fill(r[i].assigned, SNP_REGION_PAGES);
	}
}

static void regions_shared_4k(struct snp_region *r, int nr, bool dm_4k)
{
	int i;

	for (i = 0; i < nr; i++) {
		r[i].rmp_2m = false;
		r[i].dm_4k = dm_4k;
		bitmap_zero(r[i].assigned, SNP_REGION_PAGES);
	}
}

/*
 * Run @ops on @r (regions from PFN0) as the hardware would, failing the
 * test on an operation that the hardware or the point of no return forbids.
 */
static void model_run(struct kunit *test, struct snp_region *r,
		      const struct snp_op *ops, int n)
{
	bool committed = false;
	u64 pfn;
	int i;

	for (i = 0; i < n; i++) {
		const struct snp_op *op = &ops[i];
		struct snp_region *rg = &r[(op->pfn - PFN0) / SNP_REGION_PAGES];
		unsigned int off = (op->pfn - PFN0) % SNP_REGION_PAGES;

		switch (op->type) {
		case SNP_OP_SPLIT_DM:
			KUNIT_EXPECT_FALSE_MSG(test, committed,
					       "op %d: direct map split after commit", i);
			rg->dm_4k = true;
			break;
		case SNP_OP_PSMASH:
			KUNIT_EXPECT_FALSE_MSG(test, committed, "op %d: PSMASH after commit", i);
			KUNIT_EXPECT_TRUE_MSG(test, rg->rmp_2m, "op %d: PSMASH of a 4K entry", i);
			rg->rmp_2m = false;
			break;
		case SNP_OP_ZAP_2M:
			break;
		case SNP_OP_COMMIT:
			committed = true;
			break;
		case SNP_OP_SHARED_2M:
			KUNIT_EXPECT_TRUE_MSG(test,
					      rg->rmp_2m && !off && op->nr == SNP_REGION_PAGES &&
					      bitmap_full(rg->assigned, SNP_REGION_PAGES),
					      "op %d: 2M update of a 4K or unassigned entry", i);
			bitmap_zero(rg->assigned, SNP_REGION_PAGES);
			break;
		case SNP_OP_PRIVATE_2M:
			KUNIT_EXPECT_TRUE_MSG(test, !off && op->nr == SNP_REGION_PAGES &&
					      IS_ALIGNED(op->gfn, SNP_REGION_PAGES) &&
					      bitmap_empty(rg->assigned, SNP_REGION_PAGES),
					      "op %d: bad 2M private update", i);
			rg->rmp_2m = true;
			bitmap_fill(rg->assigned, SNP_REGION_PAGES);
			break;
		case SNP_OP_SHARED_4K:
		case SNP_OP_PRIVATE_4K:
			for (pfn = op->pfn; pfn < op->pfn + op->nr; pfn++) {
				rg = &r[(pfn - PFN0) / SNP_REGION_PAGES];
				off = (pfn - PFN0) % SNP_REGION_PAGES;
				KUNIT_EXPECT_TRUE_MSG(test, rg->dm_4k,
						      "op %d: 4K update of pfn %llx with a 2M direct map",
						      i, pfn);
				if (op->type == SNP_OP_SHARED_4K) {
					KUNIT_EXPECT_FALSE_MSG(test, rg->rmp_2m,
							       "op %d: 4K update in a 2M entry",
							       i);
					KUNIT_EXPECT_TRUE(test, test_bit(off, rg->assigned));
					__clear_bit(off, rg->assigned);
				} else {
					/*
					 * Under an unassigned 2M entry only the
					 * update of its first page makes it 4K.
					 */
					KUNIT_EXPECT_FALSE(test, test_bit(off, rg->assigned));
					if (!off)
						rg->rmp_2m = false;
					__set_bit(off, rg->assigned);
				}
			}
			break;
		}
	}
}

/* Pages in [pfn, pfn + nr) are @assigned now, all others as in @before. */
static void model_check(struct kunit *test, const struct snp_region *before,
			const struct snp_region *after, u64 pfn, u64 nr, bool assigned)
{
	u64 p;

	for (p = PFN0; p < PFN(NR_REGIONS, 0); p++) {
		unsigned int r = (p - PFN0) / SNP_REGION_PAGES, off = (p - PFN0) % SNP_REGION_PAGES;
		bool want = p >= pfn && p < pfn + nr ? assigned : test_bit(off, before[r].assigned);

		if (test_bit(off, after[r].assigned) != want) {
			KUNIT_FAIL(test, "pfn %llx: assigned %d, expected %d", p,
				   test_bit(off, after[r].assigned), want);
			return;
		}
	}
}

static void plan_expect(struct kunit *test, const struct plan_row *row,
			const struct snp_op *ops, int n)
{
	int i;

	KUNIT_ASSERT_EQ_MSG(test, n, row->n, "%s: number of operations", row->name);
	for (i = 0; i < n; i++) {
		KUNIT_EXPECT_EQ_MSG(test, ops[i].type, row->ops[i].type, "%s: op %d", row->name, i);
		KUNIT_EXPECT_EQ_MSG(test, ops[i].pfn, row->ops[i].pfn, "%s: op %d pfn",
				    row->name, i);
		KUNIT_EXPECT_EQ_MSG(test, ops[i].nr, row->ops[i].nr, "%s: op %d nr", row->name, i);
		KUNIT_EXPECT_EQ_MSG(test, ops[i].gfn, row->ops[i].gfn, "%s: op %d gfn",
				    row->name, i);
	}
	KUNIT_EXPECT_TRUE_MSG(test, snp_plan_is_ordered(ops, n), "%s: plan order", row->name);
}

/* Private to shared over 2M private entries, direct map 2M. */
static const struct plan_row to_shared_2m_rows[] = {
	{ "4K inside a 2M entry", PFN(0, 5), 1,
	  { OP(SPLIT_DM, PFN(0, 0), 0, 512), OP(PSMASH, PFN(0, 0), 0, 512),
	    OP(ZAP_2M, PFN(0, 0), 0, 512), OP(COMMIT, PFN(0, 5), 0, 1),
	    OP(SHARED_4K, PFN(0, 5), 0, 1) }, 5 },
	{ "the whole 2M entry", PFN(1, 0), 512,
	  { OP(COMMIT, PFN(1, 0), 0, 512), OP(SHARED_2M, PFN(1, 0), 0, 512) }, 2 },
	{ "four whole 2M entries (8M of a 1G page)", PFN(0, 0), 2048,
	  { OP(COMMIT, PFN(0, 0), 0, 2048), OP(SHARED_2M, PFN(0, 0), 0, 512),
	    OP(SHARED_2M, PFN(1, 0), 0, 512), OP(SHARED_2M, PFN(2, 0), 0, 512),
	    OP(SHARED_2M, PFN(3, 0), 0, 512) }, 5 },
	{ "across two 2M entries", PFN(0, 510), 4,
	  { OP(SPLIT_DM, PFN(0, 0), 0, 512), OP(PSMASH, PFN(0, 0), 0, 512),
	    OP(ZAP_2M, PFN(0, 0), 0, 512), OP(SPLIT_DM, PFN(1, 0), 0, 512),
	    OP(PSMASH, PFN(1, 0), 0, 512), OP(ZAP_2M, PFN(1, 0), 0, 512),
	    OP(COMMIT, PFN(0, 510), 0, 4), OP(SHARED_4K, PFN(0, 510), 0, 4) }, 8 },
	{ "a whole entry and the start of the next", PFN(1, 0), 513,
	  { OP(SPLIT_DM, PFN(2, 0), 0, 512), OP(PSMASH, PFN(2, 0), 0, 512),
	    OP(ZAP_2M, PFN(2, 0), 0, 512), OP(COMMIT, PFN(1, 0), 0, 513),
	    OP(SHARED_2M, PFN(1, 0), 0, 512), OP(SHARED_4K, PFN(2, 0), 0, 1) }, 6 },
};

static void snp_to_shared_2m(struct kunit *test)
{
	struct plan_ctx *c = plan_ctx(test);
	struct snp_region *before = c->before, *r = c->r;
	struct snp_op *ops = c->ops;
	int i, n;

	for (i = 0; i < ARRAY_SIZE(to_shared_2m_rows); i++) {
		const struct plan_row *row = &to_shared_2m_rows[i];

		regions_private_2m(before, NR_REGIONS, false);
		memcpy(r, before, sizeof(c->r));
		n = snp_plan_to_shared(row->pfn, row->nr,
				       &r[(ALIGN_DOWN(row->pfn, 512) - PFN0) / 512], ops, MAX_OPS);
		plan_expect(test, row, ops, n);
		model_run(test, r, ops, n);
		model_check(test, before, r, row->pfn, row->nr, false);
	}
}

/* The direct map is 4K already: no split; a PSMASH still. */
static void snp_to_shared_dm_4k(struct kunit *test)
{
	static const struct plan_row row = {
		"4K inside a 2M entry, direct map 4K", PFN(0, 511), 1,
		{ OP(PSMASH, PFN(0, 0), 0, 512), OP(ZAP_2M, PFN(0, 0), 0, 512),
		  OP(COMMIT, PFN(0, 511), 0, 1), OP(SHARED_4K, PFN(0, 511), 0, 1) }, 4 };
	struct plan_ctx *c = plan_ctx(test);
	struct snp_region *before = c->before, *r = c->r;
	struct snp_op *ops = c->ops;
	int n;

	regions_private_2m(before, NR_REGIONS, true);
	memcpy(r, before, sizeof(c->r));
	n = snp_plan_to_shared(row.pfn, row.nr, r, ops, MAX_OPS);
	plan_expect(test, &row, ops, n);
	model_run(test, r, ops, n);
	model_check(test, before, r, row.pfn, row.nr, false);
}

/* 4K entries: only the assigned pages are updated, in runs. */
static void snp_to_shared_4k_entries(struct kunit *test)
{
	static const struct plan_row row = {
		"mixed 4K entries", PFN(0, 0), 16,
		{ OP(SPLIT_DM, PFN(0, 0), 0, 512), OP(COMMIT, PFN(0, 0), 0, 16),
		  OP(SHARED_4K, PFN(0, 2), 0, 3), OP(SHARED_4K, PFN(0, 9), 0, 1) }, 4 };
	struct plan_ctx *c = plan_ctx(test);
	struct snp_region *before = c->before, *r = c->r;
	struct snp_op *ops = c->ops;
	int n;

	regions_shared_4k(before, NR_REGIONS, false);
	bitmap_set(before[0].assigned, 2, 3);
	__set_bit(9, before[0].assigned);
	__set_bit(100, before[0].assigned);	/* outside the range: stays */
	memcpy(r, before, sizeof(c->r));
	n = snp_plan_to_shared(row.pfn, row.nr, r, ops, MAX_OPS);
	plan_expect(test, &row, ops, n);
	model_run(test, r, ops, n);
	model_check(test, before, r, row.pfn, row.nr, false);

	/* Nothing assigned: the commit alone. */
	regions_shared_4k(r, NR_REGIONS, false);
	n = snp_plan_to_shared(PFN(1, 7), 3, &r[1], ops, MAX_OPS);
	KUNIT_ASSERT_EQ(test, n, 1);
	KUNIT_EXPECT_EQ(test, ops[0].type, SNP_OP_COMMIT);
}

static void snp_plan_errors(struct kunit *test)
{
	struct plan_ctx *c = plan_ctx(test);
	struct snp_region *r = c->r;
	struct snp_op *ops = c->ops;

	regions_private_2m(r, NR_REGIONS, false);
	KUNIT_EXPECT_EQ(test, snp_plan_to_shared(PFN0, 0, r, ops, MAX_OPS), -EINVAL);
	KUNIT_EXPECT_EQ(test, snp_plan_to_private(PFN0, 0, 0, r, ops, MAX_OPS), -EINVAL);
	/* A 2M entry cannot be partly assigned: a snapshot saying so is wrong. */
	__clear_bit(3, r[0].assigned);
	KUNIT_EXPECT_EQ(test, snp_plan_to_shared(PFN0, 1, r, ops, MAX_OPS), -EINVAL);
	/* Too little room: no partial plan. */
	regions_private_2m(r, NR_REGIONS, false);
	KUNIT_EXPECT_EQ(test, snp_plan_to_shared(PFN0, 2048, r, ops, 4), -E2BIG);
	KUNIT_EXPECT_EQ(test, snp_plan_to_shared(PFN(0, 1), 1, r, ops, 4), -E2BIG);
}

/* Shared to private at a fault: 2M where the RMP allows it. */
static const struct {
	const char *name;
	u64 pfn, gfn, nr;
	bool part_assigned;
	struct snp_op ops[4];
	int n;
} to_private_rows[] = {
	{ "aligned 2M folio", PFN(0, 0), 0x200, 512, false,
	  { OP(PRIVATE_2M, PFN(0, 0), 0x200, 512) }, 1 },
	{ "gfn not 2M-aligned with the pfn", PFN(0, 0), 0x201, 512, false,
	  { OP(SPLIT_DM, PFN(0, 0), 0, 512), OP(PRIVATE_4K, PFN(0, 0), 0x201, 512) }, 2 },
	{ "part of the region", PFN(0, 8), 0x208, 8, false,
	  { OP(SPLIT_DM, PFN(0, 0), 0, 512), OP(PRIVATE_4K, PFN(0, 8), 0x208, 8) }, 2 },
	{ "region with pages 3 and 4 assigned", PFN(0, 0), 0x200, 512, true,
	  { OP(SPLIT_DM, PFN(0, 0), 0, 512), OP(PRIVATE_4K, PFN(0, 0), 0x200, 3),
	    OP(PRIVATE_4K, PFN(0, 5), 0x205, 507) }, 3 },
	{ "two aligned regions", PFN(0, 0), 0x400, 1024, false,
	  { OP(PRIVATE_2M, PFN(0, 0), 0x400, 512), OP(PRIVATE_2M, PFN(1, 0), 0x600, 512) }, 2 },
};

static void snp_to_private(struct kunit *test)
{
	struct plan_ctx *c = plan_ctx(test);
	struct snp_region *before = c->before, *r = c->r;
	struct snp_op *ops = c->ops;
	int i, j, n;

	for (i = 0; i < ARRAY_SIZE(to_private_rows); i++) {
		regions_shared_4k(before, NR_REGIONS, false);
		if (to_private_rows[i].part_assigned)
			bitmap_set(before[0].assigned, 3, 2);
		memcpy(r, before, sizeof(c->r));
		n = snp_plan_to_private(to_private_rows[i].pfn, to_private_rows[i].gfn,
					to_private_rows[i].nr, r, ops, MAX_OPS);
		KUNIT_ASSERT_EQ_MSG(test, n, to_private_rows[i].n, "%s", to_private_rows[i].name);
		for (j = 0; j < n; j++) {
			const struct snp_op *want = &to_private_rows[i].ops[j];

			KUNIT_EXPECT_TRUE_MSG(test, ops[j].type == want->type &&
					      ops[j].pfn == want->pfn && ops[j].gfn == want->gfn &&
					      ops[j].nr == want->nr,
					      "%s: op %d is %d %llx %llx %llu",
					      to_private_rows[i].name, j, ops[j].type,
					      ops[j].pfn, ops[j].gfn, ops[j].nr);
		}
		KUNIT_EXPECT_TRUE(test, snp_plan_is_ordered(ops, n));
		model_run(test, r, ops, n);
		model_check(test, before, r, to_private_rows[i].pfn, to_private_rows[i].nr, true);
	}

	/* Already a 2M private entry: nothing to do. */
	regions_private_2m(r, NR_REGIONS, false);
	KUNIT_EXPECT_EQ(test, snp_plan_to_private(PFN0, 0x200, 512, r, ops, MAX_OPS), 0);
}

/* Every range over every mix of states: the model's invariants hold. */
static void snp_to_shared_model(struct kunit *test)
{
	static const u64 starts[] = { 0, 1, 255, 511, 512, 513, 1023, 1500 };
	static const u64 lens[] = { 1, 2, 511, 512, 513, 1024, 1536 };
	struct plan_ctx *c = plan_ctx(test);
	struct snp_region *before = c->before, *r = c->r;
	struct snp_op *ops = c->ops;
	int mix, s, l, i, n;

	for (mix = 0; mix < 16; mix++) {
		for (s = 0; s < ARRAY_SIZE(starts); s++) {
			for (l = 0; l < ARRAY_SIZE(lens); l++) {
				u64 pfn = PFN0 + starts[s], nr = lens[l];

				if (starts[s] + nr > NR_REGIONS * SNP_REGION_PAGES)
					continue;
				/* Bit i of @mix: region i is a 2M private entry, else mixed 4K. */
				for (i = 0; i < NR_REGIONS; i++) {
					if (mix & BIT(i)) {
						regions_private_2m(&before[i], 1, i & 1);
						continue;
					}
					regions_shared_4k(&before[i], 1, i & 1);
					bitmap_set(before[i].assigned, 0, 300);
					bitmap_set(before[i].assigned, 400, 50);
				}
				memcpy(r, before, sizeof(c->r));
				n = snp_plan_to_shared(pfn, nr,
						       &r[(ALIGN_DOWN(pfn, 512) - PFN0) / 512],
						       ops, MAX_OPS);
				KUNIT_ASSERT_GT(test, n, 0);
				KUNIT_EXPECT_TRUE(test, snp_plan_is_ordered(ops, n));
				model_run(test, r, ops, n);
				model_check(test, before, r, pfn, nr, false);
			}
		}
	}
}

static void snp_npt_level(struct kunit *test)
{
	struct snp_region r[1];

	regions_private_2m(r, 1, false);
	KUNIT_EXPECT_EQ(test, snp_plan_npt_level(r, PFN(0, 7), 0x207), PG_LEVEL_2M);
	/* Not congruent: a 2M NPT leaf would map the wrong 2M of memory. */
	KUNIT_EXPECT_EQ(test, snp_plan_npt_level(r, PFN(0, 7), 0x208), PG_LEVEL_4K);
	regions_shared_4k(r, 1, false);
	__set_bit(7, r[0].assigned);
	KUNIT_EXPECT_EQ(test, snp_plan_npt_level(r, PFN(0, 7), 0x207), PG_LEVEL_4K);
	/* A 2M entry not assigned: the page is shared, 4K (as 7.3). */
	r[0].rmp_2m = true;
	bitmap_zero(r[0].assigned, SNP_REGION_PAGES);
	KUNIT_EXPECT_EQ(test, snp_plan_npt_level(r, PFN(0, 7), 0x207), PG_LEVEL_4K);
}

/* The fault path's level, from the page's and its region's first entry. */
static void snp_fault_levels(struct kunit *test)
{
	/* Shared: 4K, as 7.3, whatever the entry's size. */
	KUNIT_EXPECT_EQ(test, snp_plan_fault_level(false, PG_LEVEL_2M, true), PG_LEVEL_4K);
	KUNIT_EXPECT_EQ(test, snp_plan_fault_level(false, PG_LEVEL_4K, true), PG_LEVEL_4K);
	/* A 4K entry, or one assigned 2M entry. */
	KUNIT_EXPECT_EQ(test, snp_plan_fault_level(true, PG_LEVEL_4K, true), PG_LEVEL_4K);
	KUNIT_EXPECT_EQ(test, snp_plan_fault_level(true, PG_LEVEL_2M, true), PG_LEVEL_2M);
	/* Assigned at 4K under an unassigned 2M entry: not a 2M page. */
	KUNIT_EXPECT_EQ(test, snp_plan_fault_level(true, PG_LEVEL_2M, false), PG_LEVEL_4K);
	KUNIT_EXPECT_EQ(test, snp_plan_fault_level(true, PG_LEVEL_4K, false), PG_LEVEL_4K);
}

/* Which pages a private fault makes private: at most the 2M around it. */
static void snp_fault_blocks(struct kunit *test)
{
	static const struct {
		const char *name;
		u64 pfn, gfn, nr, first_pfn, first_gfn, size;
	} rows[] = {
		{ "4K folio", PFN(0, 7), 0x1007, 1, PFN(0, 7), 0x1007, 1 },
		{ "2M folio", PFN(0, 7), 0x1207, 512, PFN(0, 0), 0x1200, 512 },
		{ "1G folio: its 2M region", PFN(2, 9), 0x40409, 1 << 18,
		  PFN(2, 0), 0x40400, 512 },
		{ "not congruent: the page", PFN(0, 7), 0x1208, 512, PFN(0, 7), 0x1208, 1 },
		{ "not a power of two: the page", PFN(0, 7), 0x1207, 384,
		  PFN(0, 7), 0x1207, 1 },
	};
	u64 first_pfn, first_gfn, size;
	int i;

	for (i = 0; i < ARRAY_SIZE(rows); i++) {
		size = snp_plan_fault_block(rows[i].pfn, rows[i].gfn, rows[i].nr,
					    &first_pfn, &first_gfn);
		KUNIT_EXPECT_EQ_MSG(test, size, rows[i].size, "%s", rows[i].name);
		KUNIT_EXPECT_EQ_MSG(test, first_pfn, rows[i].first_pfn, "%s", rows[i].name);
		KUNIT_EXPECT_EQ_MSG(test, first_gfn, rows[i].first_gfn, "%s", rows[i].name);
	}
}

/*
 * A 2M block of a HugeTLB file over its life: faulted private as one 2M
 * entry, a 4K page converted to shared inside it, converted back (the block
 * merges), faulted again: the RMP and so the NPT stay 4K until the free.
 */
static void snp_fault_lifecycle(struct kunit *test)
{
	struct plan_ctx *c = plan_ctx(test);
	struct snp_region *r = c->r;
	struct snp_op *ops = c->ops;
	u64 first_pfn, first_gfn, nr;
	int n;

	regions_shared_4k(r, 1, false);
	nr = snp_plan_fault_block(PFN(0, 7), 0x207, 512, &first_pfn, &first_gfn);
	n = snp_plan_to_private(first_pfn, first_gfn, nr, r, ops, MAX_OPS);
	KUNIT_ASSERT_EQ(test, n, 1);
	KUNIT_EXPECT_EQ(test, ops[0].type, SNP_OP_PRIVATE_2M);
	KUNIT_EXPECT_EQ(test, ops[0].gfn, 0x200);
	model_run(test, r, ops, n);
	KUNIT_EXPECT_EQ(test, snp_plan_npt_level(r, PFN(0, 7), 0x207), PG_LEVEL_2M);

	n = snp_plan_to_shared(PFN(0, 7), 1, r, ops, MAX_OPS);
	KUNIT_ASSERT_EQ(test, n, 5);
	KUNIT_EXPECT_TRUE(test, snp_plan_is_ordered(ops, n));
	model_run(test, r, ops, n);
	KUNIT_EXPECT_FALSE(test, test_bit(7, r->assigned));
	KUNIT_EXPECT_EQ(test, snp_plan_npt_level(r, PFN(0, 8), 0x208), PG_LEVEL_4K);

	/* Private again, merged: one 4K update, the direct map is 4K already. */
	n = snp_plan_to_private(first_pfn, first_gfn, nr, r, ops, MAX_OPS);
	KUNIT_ASSERT_EQ(test, n, 1);
	KUNIT_EXPECT_EQ(test, ops[0].type, SNP_OP_PRIVATE_4K);
	KUNIT_EXPECT_EQ(test, ops[0].pfn, PFN(0, 7));
	KUNIT_EXPECT_EQ(test, ops[0].gfn, 0x207);
	model_run(test, r, ops, n);
	KUNIT_EXPECT_TRUE(test, bitmap_full(r->assigned, SNP_REGION_PAGES));
	KUNIT_EXPECT_EQ(test, snp_plan_npt_level(r, PFN(0, 7), 0x207), PG_LEVEL_4K);
}

/*
 * A 2M private entry made shared whole stays a 2M entry, unassigned; a page
 * under it made private at 4K (not its first) leaves it 2M.  Making that
 * page shared again PSMASHes first, and the region can become one 2M
 * private entry again once no page is assigned.
 */
static void snp_unassigned_2m_entry(struct kunit *test)
{
	struct plan_ctx *c = plan_ctx(test);
	struct snp_region *r = c->r;
	struct snp_op *ops = c->ops;
	int n;

	regions_shared_4k(r, 1, false);
	n = snp_plan_to_private(PFN(0, 0), 0x200, 512, r, ops, MAX_OPS);
	model_run(test, r, ops, n);
	n = snp_plan_to_shared(PFN(0, 0), 512, r, ops, MAX_OPS);
	KUNIT_ASSERT_EQ(test, n, 2);
	KUNIT_EXPECT_EQ(test, ops[1].type, SNP_OP_SHARED_2M);
	model_run(test, r, ops, n);
	KUNIT_EXPECT_TRUE(test, r->rmp_2m);

	n = snp_plan_to_private(PFN(0, 9), 0x209, 1, r, ops, MAX_OPS);
	KUNIT_ASSERT_EQ(test, n, 2);
	KUNIT_EXPECT_EQ(test, ops[1].type, SNP_OP_PRIVATE_4K);
	model_run(test, r, ops, n);
	KUNIT_EXPECT_TRUE(test, r->rmp_2m);
	/* Not a 2M private entry: the page maps 4K. */
	KUNIT_EXPECT_EQ(test, snp_plan_npt_level(r, PFN(0, 9), 0x209), PG_LEVEL_4K);

	n = snp_plan_to_shared(PFN(0, 9), 1, r, ops, MAX_OPS);
	KUNIT_ASSERT_EQ(test, n, 4);
	KUNIT_EXPECT_EQ(test, ops[0].type, SNP_OP_PSMASH);
	KUNIT_EXPECT_EQ(test, ops[3].type, SNP_OP_SHARED_4K);
	KUNIT_EXPECT_TRUE(test, snp_plan_is_ordered(ops, n));
	model_run(test, r, ops, n);
	KUNIT_EXPECT_TRUE(test, bitmap_empty(r->assigned, SNP_REGION_PAGES));

	n = snp_plan_to_private(PFN(0, 0), 0x200, 512, r, ops, MAX_OPS);
	KUNIT_ASSERT_EQ(test, n, 1);
	KUNIT_EXPECT_EQ(test, ops[0].type, SNP_OP_PRIVATE_2M);

	/* The same whole 2M conversion with a page under the entry assigned. */
	r->rmp_2m = true;
	bitmap_zero(r->assigned, SNP_REGION_PAGES);
	__set_bit(9, r->assigned);
	n = snp_plan_to_shared(PFN(0, 0), 512, r, ops, MAX_OPS);
	KUNIT_ASSERT_EQ(test, n, 4);
	KUNIT_EXPECT_EQ(test, ops[0].type, SNP_OP_PSMASH);
	KUNIT_EXPECT_EQ(test, ops[3].type, SNP_OP_SHARED_4K);
	KUNIT_EXPECT_EQ(test, ops[3].pfn, PFN(0, 9));
}

static void snp_psmash_policy(struct kunit *test)
{
	KUNIT_EXPECT_EQ(test, snp_psmash_outcome(0, false), 0);
	/* Lost a race with KVM's own PSMASH: the entry is 4K, which is the goal. */
	KUNIT_EXPECT_EQ(test, snp_psmash_outcome(1, false), 0);
	KUNIT_EXPECT_EQ(test, snp_psmash_outcome(1, true), -EIO);
	KUNIT_EXPECT_EQ(test, snp_psmash_outcome(-EFAULT, true), -EIO);
}

static void snp_plan_order_check(struct kunit *test)
{
	const struct snp_op late_psmash[] = {
		OP(COMMIT, PFN0, 0, 1), OP(PSMASH, PFN0, 0, 512), OP(ZAP_2M, PFN0, 0, 512),
	};
	const struct snp_op no_zap[] = {
		OP(PSMASH, PFN0, 0, 512), OP(COMMIT, PFN0, 0, 1),
	};
	const struct snp_op split_after_update[] = {
		OP(PRIVATE_4K, PFN0, 0, 1), OP(SPLIT_DM, PFN(1, 0), 0, 512),
	};

	KUNIT_EXPECT_FALSE(test, snp_plan_is_ordered(late_psmash, ARRAY_SIZE(late_psmash)));
	KUNIT_EXPECT_FALSE(test, snp_plan_is_ordered(no_zap, ARRAY_SIZE(no_zap)));
	KUNIT_EXPECT_FALSE(test, snp_plan_is_ordered(split_after_update,
						     ARRAY_SIZE(split_after_update)));
}

static struct kunit_case sev_gmem_plan_cases[] = {
	KUNIT_CASE(snp_to_shared_2m),
	KUNIT_CASE(snp_to_shared_dm_4k),
	KUNIT_CASE(snp_to_shared_4k_entries),
	KUNIT_CASE(snp_plan_errors),
	KUNIT_CASE(snp_to_private),
	KUNIT_CASE(snp_to_shared_model),
	KUNIT_CASE(snp_npt_level),
	KUNIT_CASE(snp_fault_levels),
	KUNIT_CASE(snp_fault_blocks),
	KUNIT_CASE(snp_fault_lifecycle),
	KUNIT_CASE(snp_unassigned_2m_entry),
	KUNIT_CASE(snp_psmash_policy),
	KUNIT_CASE(snp_plan_order_check),
	{}
};

static struct kunit_suite sev_gmem_plan_suite = {
	.name = "kvm-sev-gmem-plan",
	.test_cases = sev_gmem_plan_cases,
};

kunit_test_suite(sev_gmem_plan_suite);
