// SPDX-License-Identifier: GPL-2.0-only
/*
 * TDX demote plans for exact zaps of private huge leaves: see
 * tdx_gmem_plan.h.  Nothing here touches hardware.
 */
#include <linux/align.h>
#include <linux/bits.h>
#include <linux/errno.h>
#include <linux/limits.h>
#include <asm/pgtable_types.h>

#include "tdx_arch.h"
#include "tdx_gmem_plan.h"

static u64 tdx_level_pages(int level)
{
	return 1ull << ((level - PG_LEVEL_4K) * 9);
}

/* Is @b strictly inside the leaf of @level at @gfn, i.e. does it cut it? */
static bool tdx_cuts(u64 gfn, int level, u64 b)
{
	return b > gfn && b < gfn + tdx_level_pages(level);
}

/**
 * tdx_plan_demotes - demotes that make a zap of [@start, @end) exact
 * @leaf_gfn: first gfn of a private leaf (aligned to its level)
 * @leaf_level: PG_LEVEL_2M or PG_LEVEL_1G
 * @start: first gfn of the range to zap or convert
 * @end: first gfn after it
 * @out: filled with the demotes, in the order to run them
 * @max: room in @out
 *
 * Only a leaf that a bound of the range cuts is demoted, and only as far as
 * the cut needs: a 1G leaf into 2M leaves, then each 2M leaf a bound cuts
 * (at most two, one if both bounds fall in the same one) into 4K leaves.
 * A leaf the range covers whole, or does not touch, needs nothing.
 *
 * Return: the number of demotes, -EINVAL for a misaligned leaf, an unknown
 * level or an empty range, -E2BIG if they do not fit in @max.
 */
int tdx_plan_demotes(u64 leaf_gfn, int leaf_level, u64 start, u64 end,
		     struct tdx_demote *out, int max)
{
	u64 bounds[2] = { start, end }, done = U64_MAX, b2m;
	int i, n = 0;

	if ((leaf_level != PG_LEVEL_2M && leaf_level != PG_LEVEL_1G) ||
	    !IS_ALIGNED(leaf_gfn, tdx_level_pages(leaf_level)) || start >= end)
		return -EINVAL;

	if (!tdx_cuts(leaf_gfn, leaf_level, start) && !tdx_cuts(leaf_gfn, leaf_level, end))
		return 0;

	if (n++ < max) {
		out[0].gfn = leaf_gfn;
		out[0].level = leaf_level;
	}
	if (leaf_level == PG_LEVEL_1G) {
		for (i = 0; i < 2; i++) {
			if (!tdx_cuts(leaf_gfn, leaf_level, bounds[i]) ||
			    IS_ALIGNED(bounds[i], tdx_level_pages(PG_LEVEL_2M)))
				continue;
			b2m = ALIGN_DOWN(bounds[i], tdx_level_pages(PG_LEVEL_2M));
			if (b2m == done)
				continue;
			if (n < max) {
				out[n].gfn = b2m;
				out[n].level = PG_LEVEL_2M;
			}
			n++;
			done = b2m;
		}
	}
	return n > max ? -E2BIG : n;
}

/**
 * tdx_plan_split_blocks - the 2M blocks to split before changing a range
 * @start: first gfn of the range to zap or convert
 * @end: first gfn after it
 * @out: filled with the first gfn of each block, in ascending order
 *
 * A private 2M leaf the range covers whole goes with it; one a bound of the
 * range falls inside must be split to 4K first (tdx_plan_demotes() for that
 * leaf: one DEMOTE), since zapping it would remove the pages outside the
 * range from the TD.  Those are the 2M blocks holding an unaligned bound:
 * none, one (both bounds in the same block, or one aligned) or two.
 *
 * Return: the number of blocks, or -EINVAL for an empty range.
 */
int tdx_plan_split_blocks(u64 start, u64 end, u64 out[2])
{
	u64 pages = tdx_level_pages(PG_LEVEL_2M);
	int n = 0;

	if (start >= end)
		return -EINVAL;

	if (!IS_ALIGNED(start, pages))
		out[n++] = ALIGN_DOWN(start, pages);
	if (!IS_ALIGNED(end, pages) &&
	    (!n || ALIGN_DOWN(end, pages) != out[0]))
		out[n++] = ALIGN_DOWN(end, pages);
	return n;
}

/**
 * tdx_plan_max_level - the largest Secure-EPT mapping of a fault
 * @is_private: the fault is on private memory
 * @huge_pages: the TD may map private HugeTLB memory huge (tdx_huge_page)
 * @nx_huge_pages: the NX huge page mitigation is on for the VM; it takes X
 *	off huge SPTEs while private ones are always RWX
 * @runnable: the TD runs; its build (TDH.MEM.PAGE.ADD) is 4K only
 *
 * Return: 0 (no limit from TDX: a shared fault), PG_LEVEL_4K or
 * PG_LEVEL_2M (TDH.MEM.PAGE.AUG at 2M; never 1G).
 */
int tdx_plan_max_level(bool is_private, bool huge_pages, bool nx_huge_pages,
		       bool runnable)
{
	if (!is_private)
		return 0;
	if (huge_pages && !nx_huge_pages && runnable)
		return PG_LEVEL_2M;
	return PG_LEVEL_4K;
}

/**
 * tdx_plan_accept_split - the 2M block an ACCEPT exit asks to split
 * @eeq: the exit's extended exit qualification
 * @gfn: the gfn the guest ACCEPTs
 * @start: set to the first gfn of the 2M block holding @gfn
 *
 * A guest ACCEPT below the level of the private leaf mapping the page exits
 * with type ACCEPT and the ACCEPT's level (minus one) in bits 34:32.  A 4K
 * ACCEPT needs the 2M block's leaf split; a 2M one inside a 1G leaf cannot
 * happen, as private leaves are 2M at most.
 *
 * Return: true if the 2M block at *@start must be split.
 */
bool tdx_plan_accept_split(u64 eeq, u64 gfn, u64 *start)
{
	u64 info = (eeq & TDX_EXT_EXIT_QUAL_INFO_MASK) >> TDX_EXT_EXIT_QUAL_INFO_SHIFT;

	if ((eeq & TDX_EXT_EXIT_QUAL_TYPE_MASK) != TDX_EXT_EXIT_QUAL_TYPE_ACCEPT ||
	    (info & GENMASK_ULL(2, 0)) + 1 != PG_LEVEL_4K)
		return false;

	*start = ALIGN_DOWN(gfn, tdx_level_pages(PG_LEVEL_2M));
	return true;
}

#ifdef CONFIG_KVM_INTEL_TDX_GMEM_KUNIT_TEST
#include "tdx_gmem_plan_kunit.c"
#endif
