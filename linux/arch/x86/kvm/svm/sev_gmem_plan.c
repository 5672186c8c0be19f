// SPDX-License-Identifier: GPL-2.0-only
/*
 * SEV-SNP plans for guest_memfd conversions and private faults over huge
 * pages: see sev_gmem_plan.h.  Nothing here touches hardware; the caller
 * snapshots the RMP of the regions concerned (under the locks that keep it
 * stable against KVM's own changes) and runs the plan.
 *
 * The rules, from the RMP's (APM vol. 2, 15.36) and 7.3's SNP code:
 *  - the RMP has 4K and 2M entries; a 2M entry covers a 2M-aligned region
 *    and is assigned (private) or not as a whole;
 *  - changing part of a 2M entry takes a PSMASH into 512 4K entries first,
 *    which inherit its state; nothing turns them back into a 2M entry but a
 *    2M RMPUPDATE of a wholly unassigned region;
 *  - a 4K RMPUPDATE needs the direct map of the page at 4K (set_memory_4k(),
 *    which allocates and may fail), a 2M RMPUPDATE does not;
 *  - KVM never maps NPT larger than the RMP entry: after a PSMASH under a
 *    2M NPT leaf the leaf is zapped, else the guest's accesses fault on the
 *    size mismatch forever (KVM's #NPF handler zaps only when it smashes);
 *  - a 2M private entry maps a 2M-aligned gfn to a 2M-aligned pfn.
 */
#include <linux/bitops.h>
#include <linux/errno.h>
#include <linux/log2.h>
#include <linux/minmax.h>
#include <asm/pgtable_types.h>

#include "sev_gmem_plan.h"

struct snp_plan {
	struct snp_op *ops;
	int n, max;
};

static bool snp_op_is_run(enum snp_op_type type)
{
	return type == SNP_OP_SHARED_4K || type == SNP_OP_PRIVATE_4K;
}

/* Append an operation, extending the last one if it is a 4K run it continues. */
static void snp_plan_add(struct snp_plan *p, enum snp_op_type type, u64 pfn,
			 u64 gfn, u64 nr)
{
	struct snp_op *last = p->n && p->n <= p->max ? &p->ops[p->n - 1] : NULL;

	/* A shared run has no gfn; a private one must stay congruent. */
	if (last && last->type == type && snp_op_is_run(type) &&
	    last->pfn + last->nr == pfn &&
	    (type == SNP_OP_SHARED_4K || last->gfn + last->nr == gfn)) {
		last->nr += nr;
		return;
	}
	if (p->n < p->max) {
		p->ops[p->n].type = type;
		p->ops[p->n].pfn = pfn;
		p->ops[p->n].gfn = gfn;
		p->ops[p->n].nr = nr;
	}
	p->n++;
}

/* The part [*lo, *hi) of region @base that [pfn, pfn + nr) covers. */
static void snp_region_span(u64 base, u64 pfn, u64 nr, unsigned int *lo,
			    unsigned int *hi)
{
	*lo = max(pfn, base) - base;
	*hi = min(pfn + nr, base + SNP_REGION_PAGES) - base;
}

static bool snp_region_any(const struct snp_region *r, unsigned int lo,
			   unsigned int hi)
{
	return find_next_bit(r->assigned, hi, lo) < hi;
}

/* One 2M private entry: the whole region assigned as one. */
static bool snp_region_private_2m(const struct snp_region *r)
{
	return r->rmp_2m && bitmap_full(r->assigned, SNP_REGION_PAGES);
}

/* A 2M entry is assigned whole, or 4K pages but its first under it. */
static bool snp_region_valid(const struct snp_region *r)
{
	return !r->rmp_2m || !test_bit(0, r->assigned) ||
	       bitmap_full(r->assigned, SNP_REGION_PAGES);
}

static int snp_plan_check(u64 pfn, u64 nr, const struct snp_region *regions)
{
	u64 first = ALIGN_DOWN(pfn, SNP_REGION_PAGES);
	u64 i, nr_regions;

	if (!nr || pfn + nr < pfn)
		return -EINVAL;
	nr_regions = (ALIGN(pfn + nr, SNP_REGION_PAGES) - first) / SNP_REGION_PAGES;
	for (i = 0; i < nr_regions; i++)
		if (!snp_region_valid(&regions[i]))
			return -EINVAL;
	return 0;
}

static int snp_plan_end(struct snp_plan *p)
{
	return p->n > p->max ? -E2BIG : p->n;
}

/**
 * snp_plan_to_shared - plan a private to shared conversion of host pages
 * @pfn: first page
 * @nr: number of 4K pages
 * @regions: the RMP of each 2M region that [@pfn, @pfn + @nr) touches, the
 *	first being the one holding @pfn
 * @ops: filled with the plan
 * @max_ops: room in @ops
 *
 * A 2M private entry wholly in the range becomes shared with one 2M
 * RMPUPDATE; any other 2M entry with assigned pages in the range (one partly
 * in it, or an unassigned one with 4K pages assigned under it) is split
 * first (direct map, PSMASH, then its 2M NPT zapped), before the point of no
 * return, and its pages in the range become shared one by one after it.
 * Pages not assigned are left alone.  The plan always holds SNP_OP_COMMIT,
 * even when there is nothing else to do.
 *
 * Return: the number of operations, -EINVAL for an empty range or an
 * inconsistent snapshot, -E2BIG if they do not fit in @max_ops.
 */
int snp_plan_to_shared(u64 pfn, u64 nr, const struct snp_region *regions,
		       struct snp_op *ops, int max_ops)
{
	struct snp_plan p = { .ops = ops, .max = max_ops };
	u64 base, first = ALIGN_DOWN(pfn, SNP_REGION_PAGES);
	const struct snp_region *r;
	unsigned int lo, hi, i;
	int ret;

	ret = snp_plan_check(pfn, nr, regions);
	if (ret)
		return ret;

	/* What can fail, region by region. */
	for (base = first, r = regions; base < pfn + nr; base += SNP_REGION_PAGES, r++) {
		snp_region_span(base, pfn, nr, &lo, &hi);
		if (!snp_region_any(r, lo, hi))
			continue;
		if (snp_region_private_2m(r) && lo == 0 && hi == SNP_REGION_PAGES)
			continue;
		if (!r->dm_4k)
			snp_plan_add(&p, SNP_OP_SPLIT_DM, base, 0, SNP_REGION_PAGES);
		if (r->rmp_2m) {
			snp_plan_add(&p, SNP_OP_PSMASH, base, 0, SNP_REGION_PAGES);
			snp_plan_add(&p, SNP_OP_ZAP_2M, base, 0, SNP_REGION_PAGES);
		}
	}

	snp_plan_add(&p, SNP_OP_COMMIT, pfn, 0, nr);

	/* The RMP updates, which cannot fail once the above succeeded. */
	for (base = first, r = regions; base < pfn + nr; base += SNP_REGION_PAGES, r++) {
		snp_region_span(base, pfn, nr, &lo, &hi);
		if (snp_region_private_2m(r) && lo == 0 && hi == SNP_REGION_PAGES) {
			snp_plan_add(&p, SNP_OP_SHARED_2M, base, 0, SNP_REGION_PAGES);
			continue;
		}
		for_each_set_bitrange_from(lo, i, r->assigned, hi)
			snp_plan_add(&p, SNP_OP_SHARED_4K, base + lo, 0, i - lo);
	}
	return snp_plan_end(&p);
}

/**
 * snp_plan_to_private - plan making host pages private for a guest fault
 * @pfn: first page
 * @gfn: the guest frame @pfn backs
 * @nr: number of 4K pages (the part of a folio KVM may map)
 * @regions: the RMP of each 2M region touched, as for snp_plan_to_shared()
 * @ops: filled with the plan
 * @max_ops: room in @ops
 *
 * A wholly covered, wholly unassigned region whose gfn is 2M-aligned too
 * becomes one 2M private entry (no direct map split); anything else is done
 * a 4K page at a time, for the pages not yet assigned, after splitting the
 * direct map of their region.  There is no point of no return: the fault
 * fails and retries.
 *
 * Return: the number of operations (0: all assigned already), -EINVAL or
 * -E2BIG as snp_plan_to_shared().
 */
int snp_plan_to_private(u64 pfn, u64 gfn, u64 nr,
			const struct snp_region *regions,
			struct snp_op *ops, int max_ops)
{
	struct snp_plan p = { .ops = ops, .max = max_ops };
	u64 base, first = ALIGN_DOWN(pfn, SNP_REGION_PAGES);
	const struct snp_region *r;
	unsigned int lo, hi, i;
	int ret;

	ret = snp_plan_check(pfn, nr, regions);
	if (ret)
		return ret;

	for (base = first, r = regions; base < pfn + nr; base += SNP_REGION_PAGES, r++) {
		u64 rgfn = gfn + base - pfn;

		snp_region_span(base, pfn, nr, &lo, &hi);
		if (lo == 0 && hi == SNP_REGION_PAGES &&
		    bitmap_empty(r->assigned, SNP_REGION_PAGES) &&
		    IS_ALIGNED(rgfn, SNP_REGION_PAGES)) {
			snp_plan_add(&p, SNP_OP_PRIVATE_2M, base, rgfn, SNP_REGION_PAGES);
			continue;
		}
		if (find_next_zero_bit(r->assigned, hi, lo) >= hi)
			continue;
		/* 4K updates: the direct map first, so they cannot fail midway. */
		if (!r->dm_4k)
			snp_plan_add(&p, SNP_OP_SPLIT_DM, base, 0, SNP_REGION_PAGES);
		for (i = find_next_zero_bit(r->assigned, hi, lo); i < hi;
		     i = find_next_zero_bit(r->assigned, hi, i + 1))
			snp_plan_add(&p, SNP_OP_PRIVATE_4K, base + i,
				     gfn + base + i - pfn, 1);
	}
	return snp_plan_end(&p);
}

/**
 * snp_plan_fault_block - the pages a private fault makes private together
 * @pfn: the faulting page
 * @gfn: the guest frame it backs
 * @nr: the pages of its folio KVM may map, aligned around it (a power of
 *	two, with @pfn and @gfn congruent modulo it)
 * @first_pfn: set to the block's first page
 * @first_gfn: set to the guest frame of @first_pfn
 *
 * No RMP entry, hence no private NPT mapping, is larger than 2M: a fault
 * takes the aligned block of at most 2M around @pfn, and a 1G folio's other
 * regions wait for their own faults.  A request that breaks the rules above
 * gets the single page.
 *
 * Return: the number of pages in the block.
 */
u64 snp_plan_fault_block(u64 pfn, u64 gfn, u64 nr, u64 *first_pfn,
			 u64 *first_gfn)
{
	u64 size = min_t(u64, nr, SNP_REGION_PAGES);

	if (!size || !is_power_of_2(size) || ((pfn ^ gfn) & (size - 1)))
		size = 1;
	*first_pfn = ALIGN_DOWN(pfn, size);
	*first_gfn = gfn - (pfn - *first_pfn);
	return size;
}

/**
 * snp_plan_npt_level - the largest NPT mapping of a private page
 * @region: the RMP of the page's 2M region
 * @pfn: the page
 * @gfn: the guest frame it backs
 *
 * Return: PG_LEVEL_2M if the page is in a 2M private entry at the same
 * offset in its 2M block of guest memory, else PG_LEVEL_4K.
 */
int snp_plan_npt_level(const struct snp_region *region, u64 pfn, u64 gfn)
{
	if (snp_region_private_2m(region) &&
	    (pfn % SNP_REGION_PAGES) == (gfn % SNP_REGION_PAGES))
		return PG_LEVEL_2M;
	return PG_LEVEL_4K;
}

/**
 * snp_plan_fault_level - the largest NPT mapping of a page, from the RMP
 * @assigned: the page's RMP entry is assigned
 * @level: the size of the RMP entry covering it, as snp_lookup_rmpentry()
 *	reports it (that of its 2M region's first entry)
 * @base_assigned: the region's first entry is assigned; only read when
 *	@level is 2M
 *
 * What KVM's fault path applies (sev_gmem_max_mapping_level()): the rule of
 * snp_plan_npt_level() without the guest frame, which the MMU checks.  A
 * page that 7.3 assigned at 4K under an unassigned 2M entry reports 2M, but
 * only a 2M entry that is assigned makes its pages one 2M private page.
 *
 * Return: PG_LEVEL_4K or PG_LEVEL_2M.
 */
int snp_plan_fault_level(bool assigned, int level, bool base_assigned)
{
	if (!assigned || level <= PG_LEVEL_4K || !base_assigned)
		return PG_LEVEL_4K;
	return PG_LEVEL_2M;
}

/**
 * snp_psmash_outcome - what a PSMASH result means for a plan
 * @rc: PSMASH's return code, after retrying PSMASH_FAIL_INUSE
 * @rmp_2m_after: the entry is still 2M when read again
 *
 * A PSMASH racing KVM's own (its #NPF handler smashes on a size mismatch)
 * may fail and still leave what the plan needs, 4K entries.
 *
 * Return: 0 to go on, -EIO to abort the plan (before its point of no return).
 */
int snp_psmash_outcome(int rc, bool rmp_2m_after)
{
	if (!rc || !rmp_2m_after)
		return 0;
	return -EIO;
}

static bool snp_op_may_fail(enum snp_op_type type)
{
	return type == SNP_OP_SPLIT_DM || type == SNP_OP_PSMASH;
}

/**
 * snp_plan_is_ordered - does a plan keep its failures before its changes?
 * @ops: the plan
 * @n: its length
 *
 * Return: true if no operation that may fail comes after SNP_OP_COMMIT or
 * after an RMP update, and a zap of a 2M mapping follows each PSMASH.
 */
bool snp_plan_is_ordered(const struct snp_op *ops, int n)
{
	bool changed = false;
	int i;

	for (i = 0; i < n; i++) {
		if (snp_op_may_fail(ops[i].type) && changed)
			return false;
		if (ops[i].type == SNP_OP_PSMASH &&
		    (i + 1 == n || ops[i + 1].type != SNP_OP_ZAP_2M ||
		     ops[i + 1].pfn != ops[i].pfn))
			return false;
		if (!snp_op_may_fail(ops[i].type) && ops[i].type != SNP_OP_ZAP_2M)
			changed = true;
	}
	return true;
}

#ifdef CONFIG_KVM_AMD_SEV_GMEM_KUNIT_TEST
#include "sev_gmem_plan_kunit.c"
#endif
