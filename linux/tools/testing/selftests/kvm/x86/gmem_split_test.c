// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmem_split_test - 4K conversions inside 2M and 1G HugeTLB guest_memfd
 * folios (-p 2M, the default, or -p 1G).
 *
 * A conversion that leaves a huge page with both shared and private pages
 * splits its folio, as little as it must: a 1G folio into 2M folios, and only
 * the 2M blocks with both kinds of pages into 4K folios.  A conversion that
 * makes a block uniform again merges it back.  The test keeps a model of the
 * attributes and checks after every step what that must and must not change:
 * the folios of each order and the split blocks the file's fdinfo reports
 * (exactly what the model says minimal splitting gives), the data of the
 * pages, SIGBUS on the host's private pages, the HugeTLB pools' counters
 * (global and per node, both page sizes: a split huge page stays one in-use
 * huge page) and, with a guest, the level KVM maps each block at.  A
 * long-term pin on a piece keeps its block split and a closed file's huge
 * page out of the pool until the unpin.  -r runs only the race scenario,
 * which splits and merges under two vCPUs' faults; -P runs only the
 * hwpoison scenario, which leaves a huge page out of the pool for good.
 *
 * The VM is a KVM_X86_SW_PROTECTED_VM whose guest_memfd tracks the
 * attributes (kvm.gmem_in_place_conversion=Y).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/falloc.h>
#include <linux/sizes.h>

#include "gmem_hugetlb_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"

#define PMD_PAGES	(SZ_2M / PAGE_SIZE)
#define PRIVATE		KVM_MEMORY_ATTRIBUTE_PRIVATE
#define PUNCH_HOLE	(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)

/* Word 0 of 4K page @i of generation @gen; 0 means "zeroed". */
#define PATTERN(gen, i)	(0x5a00000000000000ull | (u64)(gen) << 32 | (u64)(i))

/* The page size under test, -p. */
static struct gmem_huge hs = GMEM_HUGE_2M;

static u64 blk_pages, nr_pages;
static bool hvo;

/* The VM and file of gmem_hugetlb_util, and the model of the file. */
struct split_vm {
	struct gmem_hvm g;
	int fd;
	u8 *mem;
	u64 *expect;		/* word 0 of each page, private or not */
	u8 *private;		/* the model: one byte a page */
	/* 2M blocks whose every page host_check() reads (else a sample). */
	u64 hot[4];
	int nr_hot;
	struct gmem_hp_counts created;	/* after creating, nothing allocated */
};

/* What the file should hold if it splits exactly where it must. */
struct model {
	long huge, f2m, f4k, split;
};

static bool range_uniform(struct split_vm *s, u64 first, u64 n)
{
	u64 i;

	for (i = first + 1; i < first + n; i++)
		if (s->private[i] != s->private[first])
			return false;
	return true;
}

static void model_counts(struct split_vm *s, struct model *m)
{
	u64 b, p;

	memset(m, 0, sizeof(*m));
	for (b = 0; b < nr_pages; b += blk_pages) {
		if (range_uniform(s, b, blk_pages)) {
			m->huge++;
			continue;
		}
		/* A 1G block splits to 2M first: count it, then its 2M blocks. */
		if (blk_pages > PMD_PAGES)
			m->split++;
		for (p = b; p < b + blk_pages; p += PMD_PAGES) {
			if (range_uniform(s, p, PMD_PAGES)) {
				m->f2m++;
			} else {
				m->f4k += PMD_PAGES;
				m->split++;
			}
		}
	}
}

/* The file's folios, split blocks and restored vmemmap are the model's. */
static void check_fdinfo(struct split_vm *s, const char *what)
{
	struct gmem_fdinfo fi;
	struct model m;
	long vmemmap;

	model_counts(s, &m);
	gmem_fdinfo_check(s->fd, m.huge, blk_pages > PMD_PAGES ? m.f2m : -1,
			  m.f4k, m.split, what);

	/* 28 kB a 2M split, 511 head pages more for a 1G split into 2M. */
	vmemmap = m.f4k / PMD_PAGES * 28;
	if (blk_pages > PMD_PAGES)
		vmemmap += (m.split - m.f4k / PMD_PAGES) * 511 * 4;
	gmem_fdinfo_read(s->fd, &fi);
	TEST_ASSERT(fi.vmemmap_restored_kb == (hvo ? vmemmap : 0),
		    "%s: %ld kB of vmemmap restored, expected %ld (hugetlb_optimize_vmemmap %d)",
		    what, fi.vmemmap_restored_kb, hvo ? vmemmap : 0, hvo);
}

/* Both pools as they were: huge pages are split in place, not moved. */
static void check_pools(const struct gmem_hp_counts *huge,
			const struct gmem_hp_counts *pmd, const char *what)
{
	gmem_hp_check(hs.kb, huge, 0, 0, what);
	if (pmd)
		gmem_hp_check(2048, pmd, 0, 0, what);
}

static void split_vm_init(struct split_vm *s)
{
	memset(s, 0, sizeof(*s));
	s->expect = calloc(nr_pages, sizeof(u64));
	s->private = calloc(nr_pages, 1);
	TEST_ASSERT(s->expect && s->private, "calloc");

	gmem_hvm_create(&s->g, nr_pages * PAGE_SIZE, GMEM_FLAGS_SHARED_HUGETLB | hs.flag);
	gmem_hp_read(hs.kb, &s->created);
	s->fd = s->g.fd;
	s->mem = s->g.mem;
}

static void split_vm_destroy(struct split_vm *s)
{
	gmem_hvm_destroy(&s->g);
	free(s->expect);
	free(s->private);
}

/* The host writes generation @gen to every page (all must be shared). */
static void host_fill(struct split_vm *s, u64 gen)
{
	u64 i;

	for (i = 0; i < nr_pages; i++) {
		s->expect[i] = PATTERN(gen, i);
		*(u64 *)(s->mem + i * PAGE_SIZE) = s->expect[i];
	}
}

/* Read all of a small file; of a 1G file the hot 2M blocks and a sample. */
static bool host_checks(struct split_vm *s, u64 i)
{
	u64 in_pmd = i % PMD_PAGES;
	int h;

	if (nr_pages <= 4 * PMD_PAGES || in_pmd < 2 || in_pmd > PMD_PAGES - 3 ||
	    in_pmd == PMD_PAGES / 2)
		return true;
	for (h = 0; h < s->nr_hot; h++)
		if (i / PMD_PAGES == s->hot[h])
			return true;
	return false;
}

/* Every shared page holds its data, every private one raises SIGBUS. */
static void host_check(struct split_vm *s, const char *what)
{
	u64 i, val;
	u8 *p;

	for (i = 0; i < nr_pages; i++) {
		if (!host_checks(s, i))
			continue;
		p = s->mem + i * PAGE_SIZE;
		if (s->private[i]) {
			TEST_ASSERT(!host_touch(p, false),
				    "%s: private page %lu read by the host without SIGBUS",
				    what, i);
			continue;
		}
		TEST_ASSERT(host_touch(p, false),
			    "%s: shared page %lu raised SIGBUS", what, i);
		val = *(u64 *)p;
		TEST_ASSERT(val == s->expect[i],
			    "%s: shared page %lu holds 0x%lx, expected 0x%lx",
			    what, i, val, s->expect[i]);
	}
}

/* Convert [@first, @first + @n) pages; the model follows. */
static void convert(struct split_vm *s, u64 first, u64 n, u64 attrs)
{
	gmem_set_attributes(s->fd, first * PAGE_SIZE, n * PAGE_SIZE, attrs);
	memset(s->private + first, !!(attrs & PRIVATE), n);
	s->nr_hot = 0;
	s->hot[s->nr_hot++] = first / PMD_PAGES;
	s->hot[s->nr_hot++] = (first + n - 1) / PMD_PAGES;
}

/* Convert, then check fdinfo, data and pools against the model. */
static void convert_check(struct split_vm *s, u64 first, u64 n, u64 attrs,
			  const struct gmem_hp_counts *huge,
			  const struct gmem_hp_counts *pmd, const char *what)
{
	char buf[160];

	snprintf(buf, sizeof(buf), "%s to %s", what, attrs ? "private" : "shared");
	convert(s, first, n, attrs);
	check_fdinfo(s, buf);
	check_pools(huge, pmd, buf);
	host_check(s, buf);
}

/* Run the guest over every page: it checks each page's word 0. */
static void guest_touch_all(struct split_vm *s, const char *what)
{
	gmem_hvm_guest_check(&s->g, s->expect, what);
}

struct map_counts {
	u64 p4k, p2m, p1g;
};

static void read_maps(struct split_vm *s, struct map_counts *c)
{
	c->p4k = vm_get_stat(s->g.vm, pages_4k);
	c->p2m = vm_get_stat(s->g.vm, pages_2m);
	c->p1g = vm_get_stat(s->g.vm, pages_1g);
}

/*
 * After the guest touched every page: KVM maps each uniform huge page at
 * its size, each uniform 2M block of a split 1G page at 2M, the rest at 4K.
 * @base: the counts before the guest touched the file, less the 4K pages
 * the guest's own code and data added (*@extra4k, found on the first call).
 */
static void check_maps(struct split_vm *s, const struct map_counts *base,
		       long *extra4k, const char *what)
{
	struct map_counts now;
	struct model m;
	u64 want2m, want1g;

	read_maps(s, &now);
	model_counts(s, &m);
	want1g = blk_pages > PMD_PAGES ? m.huge : 0;
	want2m = blk_pages > PMD_PAGES ? m.f2m : m.huge;
	if (*extra4k < 0) {
		*extra4k = now.p4k - base->p4k - m.f4k;
		TEST_ASSERT(*extra4k >= 0 && *extra4k < 16,
			    "%s: KVM maps %lu 4K pages, the file needs %ld",
			    what, now.p4k - base->p4k, m.f4k);
	}
	TEST_ASSERT(now.p1g - base->p1g == want1g && now.p2m - base->p2m == want2m &&
		    now.p4k - base->p4k - *extra4k == m.f4k,
		    "%s: KVM maps %lu 1G, %lu 2M and %lu 4K pages of the file, expected %lu, %lu and %ld",
		    what, now.p1g - base->p1g, now.p2m - base->p2m,
		    now.p4k - base->p4k - *extra4k, want1g, want2m, m.f4k);
}

static void read_pools(struct gmem_hp_counts *huge, struct gmem_hp_counts *pmd,
		       bool *have_pmd)
{
	gmem_hp_read(hs.kb, huge);
	*have_pmd = hs.kb != 2048;
	if (*have_pmd)
		gmem_hp_read(2048, pmd);
}

/*
 * Only the blocks a conversion leaves mixed are split, and converting back
 * merges them; data, pools and the other blocks do not move.
 */
static void test_precision(void)
{
	const struct {
		const char *what;
		u64 first, n;
	} cases[] = {
		{ "one 4K page", 1, 1 },
		{ "the first page of the file", 0, 1 },
		{ "the last page of the file", nr_pages - 1, 1 },
		{ "a 2M-aligned 2M range", PMD_PAGES, PMD_PAGES },
		{ "two pages across a 2M boundary", PMD_PAGES - 1, 2 },
		{ "a 2M block and one page of the next", PMD_PAGES, PMD_PAGES + 1 },
		{ "all but the first and the last page", 1, nr_pages - 2 },
		{ "one whole huge page", 0, blk_pages },
	};
	struct gmem_hp_counts huge, pmd, *pmdp;
	struct split_vm s;
	bool have_pmd;
	int c;

	split_vm_init(&s);
	host_fill(&s, 1);
	check_fdinfo(&s, "every huge page allocated");
	gmem_hp_check(hs.kb, &s.created, -hs.nr_blocks, -hs.nr_blocks,
		      "every huge page allocated");
	read_pools(&huge, &pmd, &have_pmd);
	pmdp = have_pmd ? &pmd : NULL;

	for (c = 0; c < ARRAY_SIZE(cases); c++) {
		convert_check(&s, cases[c].first, cases[c].n, PRIVATE, &huge,
			      pmdp, cases[c].what);
		convert_check(&s, cases[c].first, cases[c].n, 0, &huge,
			      pmdp, cases[c].what);
	}

	/* A split block stays split while it is mixed, with no new work. */
	convert_check(&s, 5, 1, PRIVATE, &huge, pmdp, "page 5");
	convert_check(&s, 7, 3, PRIVATE, &huge, pmdp, "pages 7-9");
	convert_check(&s, 5, 1, 0, &huge, pmdp, "page 5");
	/* Uniform again: one folio, all the way up. */
	convert_check(&s, 0, PMD_PAGES, PRIVATE, &huge, pmdp,
		      "the first 2M block");
	convert_check(&s, 0, nr_pages, 0, &huge, pmdp, "the file");
	split_vm_destroy(&s);
}

/*
 * The guest sees every page's data through splits and merges, and KVM maps
 * each block at the largest size its folio and attributes allow; after a
 * merge the block is mapped huge again.
 */
static void test_kvm_levels(void)
{
	u64 mid = blk_pages + blk_pages / 2 - 100;
	struct map_counts base;
	struct split_vm s;
	long extra4k = -1;

	if (hs.nr_blocks < 2)
		mid = blk_pages / 2 + 100;

	split_vm_init(&s);
	host_fill(&s, 2);

	/* One huge page private but for one page. */
	convert(&s, mid - mid % blk_pages, blk_pages, PRIVATE);
	convert(&s, mid, 1, 0);
	check_fdinfo(&s, "one huge page mixed");

	read_maps(&s, &base);
	guest_touch_all(&s, "guest reads every page, one huge page split");
	check_maps(&s, &base, &extra4k, "one huge page split");
	host_check(&s, "after the guest read the split huge page");

	/* Uniform again: merged, and the next faults map it huge. */
	convert(&s, mid, 1, PRIVATE);
	check_fdinfo(&s, "the huge page private again");
	guest_touch_all(&s, "guest reads every page, huge page merged");
	check_maps(&s, &base, &extra4k, "huge page merged");

	/* Converting back and forth under a running guest keeps its view. */
	convert(&s, nr_pages - PMD_PAGES - 7, 9, 0);
	guest_touch_all(&s, "guest reads every page, the last 2M block split");
	check_maps(&s, &base, &extra4k, "the last 2M block split");
	convert(&s, 0, nr_pages, 0);
	host_check(&s, "everything shared at the end");
	guest_touch_all(&s, "guest reads every page at the end");
	check_maps(&s, &base, &extra4k, "everything shared at the end");
	split_vm_destroy(&s);
}

/*
 * Punching part of a split huge page zeroes it and keeps it split; punching
 * all of it returns the whole huge page to the file's reservation.
 * drop_caches leaves split pages alone.  Closing the file with split pages
 * gives every huge page back, and a file as large as the pool can be created
 * right after.
 */
static void test_punch_close(void)
{
	struct gmem_hp_counts pool, pmd_pool, filled, pmd_filled, now;
	u64 last = (hs.nr_blocks - 1) * blk_pages, i, val;
	struct split_vm s;
	struct kvm_vm *vm;
	bool have_pmd;
	int fd, tries;
	long nfree;

	read_pools(&pool, &pmd_pool, &have_pmd);
	split_vm_init(&s);
	host_fill(&s, 3);
	read_pools(&filled, &pmd_filled, &have_pmd);

	/* Split the first and the last huge page. */
	convert(&s, 3, 1, PRIVATE);
	convert(&s, last + 3, 1, PRIVATE);
	check_fdinfo(&s, "first and last huge page split");

	/* Four pages: zeroed, still split. */
	kvm_fallocate(s.fd, PUNCH_HOLE, 8 * PAGE_SIZE, 4 * PAGE_SIZE);
	for (i = 8; i < 12; i++)
		s.expect[i] = 0;
	check_fdinfo(&s, "4 pages punched");
	check_pools(&filled, (have_pmd ? &pmd_filled : NULL), "4 pages punched");
	host_check(&s, "4 pages punched");

	/* Nothing is written back: the kernel must not drop split pages. */
	TEST_ASSERT(system("echo 3 > /proc/sys/vm/drop_caches") == 0, "drop_caches");
	check_fdinfo(&s, "after drop_caches");
	check_pools(&filled, (have_pmd ? &pmd_filled : NULL), "after drop_caches");
	host_check(&s, "after drop_caches");

	/* All of the first: its huge page goes back to the file's reservation. */
	kvm_fallocate(s.fd, PUNCH_HOLE, 0, hs.size);
	if (hs.nr_blocks == 1)
		gmem_fdinfo_check(s.fd, 0, 0, 0, 0, "the huge page punched");
	else
		gmem_fdinfo_check(s.fd, hs.nr_blocks - 2, -1, PMD_PAGES, 1,
				  "first huge page punched");
	gmem_hp_check(hs.kb, &s.created, -(hs.nr_blocks - 1), -(hs.nr_blocks - 1),
		      "first huge page punched");
	/* The rest is as it was (reading the punched page would allocate it). */
	s.nr_hot = 0;
	for (i = blk_pages; i < nr_pages; i++) {
		if (!host_checks(&s, i))
			continue;
		TEST_ASSERT(host_touch(s.mem + i * PAGE_SIZE, false) == !s.private[i],
			    "page %lu after the punch", i);
		if (s.private[i])
			continue;
		val = *(u64 *)(s.mem + i * PAGE_SIZE);
		TEST_ASSERT(val == s.expect[i], "page %lu after the punch holds 0x%lx", i, val);
	}

	/* Close with the last huge page split: the pools are whole again. */
	split_vm_destroy(&s);
	for (tries = 0; tries < 100; tries++) {
		gmem_hp_read(hs.kb, &now);
		if (gmem_hp_equal(&now, &pool))
			break;
		usleep(10000);
	}
	check_pools(&pool, (have_pmd ? &pmd_pool : NULL), "file with a split huge page closed");

	/* Every free huge page in one new file, right away. */
	nfree = pool.free - pool.resv;
	vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	fd = __vm_create_guest_memfd(vm, nfree * hs.size, GMEM_FLAGS_SHARED_HUGETLB | hs.flag);
	TEST_ASSERT(fd >= 0,
		    "A file of all %ld free %s pages after the close failed, errno %d (%s)",
		    nfree, hs.name, errno, strerror(errno));
	kvm_close(fd);
	kvm_vm_free(vm);
	check_pools(&pool, (have_pmd ? &pmd_pool : NULL), "after the full-size file");
}

/*
 * The 2M block around page @p held split by a pin: the rest of the file is
 * whole, a 1G file split to 2M around it.
 */
static void check_held_split(struct split_vm *s, const char *what)
{
	bool huge1g = blk_pages > PMD_PAGES;

	gmem_fdinfo_check(s->fd, hs.nr_blocks - 1, huge1g ? blk_pages / PMD_PAGES - 1 : -1,
			  PMD_PAGES, huge1g ? 2 : 1, what);
}

/* The pools before a file is created and once it is filled. */
struct piece_pools {
	struct gmem_hp_counts pool, pmd_pool, filled, pmd_filled;
	bool have_pmd;
};

/*
 * A file filled with generation @gen whose page in the middle of block 0 is
 * a shared 4K piece: the page before it is private, so its 2M block is
 * split.  Returns that page.
 */
static u64 piece_setup(struct split_vm *s, struct piece_pools *pp, u64 gen)
{
	u64 p = blk_pages / 2 + 7;

	read_pools(&pp->pool, &pp->pmd_pool, &pp->have_pmd);
	split_vm_init(s);
	host_fill(s, gen);
	read_pools(&pp->filled, &pp->pmd_filled, &pp->have_pmd);
	convert(s, p - 1, 1, PRIVATE);
	return p;
}

/* check_pools() against the pools of the filled file, or of before it. */
static void piece_pools_check(const struct piece_pools *pp, bool filled, const char *what)
{
	if (filled)
		check_pools(&pp->filled, pp->have_pmd ? &pp->pmd_filled : NULL, what);
	else
		check_pools(&pp->pool, pp->have_pmd ? &pp->pmd_pool : NULL, what);
}

/*
 * A long-term pin on a shared 4K piece (what vhost or VFIO holds): its
 * block stays split while uniform, merges at the next conversion after the
 * unpin, and a file closed while it is pinned gives its huge page back to
 * the pool at the unpin, not before.
 */
static void test_pin(void)
{
	struct gmem_hp_counts now;
	struct piece_pools pp;
	struct split_vm s;
	int gup, tries;
	u64 p;

	p = piece_setup(&s, &pp, 4);
	gup = gmem_pin(s.mem + p * PAGE_SIZE, PAGE_SIZE);

	/* Uniform again, but the pinned piece keeps its 2M block split. */
	convert(&s, p - 1, 1, 0);
	check_held_split(&s, "uniform with a pinned piece");
	piece_pools_check(&pp, true, "uniform with a pinned piece");
	host_check(&s, "uniform with a pinned piece");

	/* Unpinned: the next conversion of the block merges it. */
	gmem_unpin(gup);
	check_held_split(&s, "unpinned");
	convert_check(&s, p, 1, PRIVATE, &pp.filled, pp.have_pmd ? &pp.pmd_filled : NULL,
		      "the unpinned page");
	convert_check(&s, p, 1, 0, &pp.filled, pp.have_pmd ? &pp.pmd_filled : NULL,
		      "the unpinned page");

	/* Closed while pinned: the huge page waits for the unpin. */
	convert(&s, p - 1, 1, PRIVATE);
	gup = gmem_pin(s.mem + p * PAGE_SIZE, PAGE_SIZE);
	split_vm_destroy(&s);
	usleep(100000);
	gmem_hp_read(hs.kb, &now);
	TEST_ASSERT(now.free == pp.pool.free - 1 && now.nr == pp.pool.nr &&
		    now.resv == pp.pool.resv,
		    "Closed with a pinned piece: %s pages nr/free/resv %ld/%ld/%ld, expected %ld/%ld/%ld",
		    hs.name, now.nr, now.free, now.resv, pp.pool.nr, pp.pool.free - 1,
		    pp.pool.resv);
	gmem_unpin(gup);
	/* The retiring block retries at most a second apart. */
	for (tries = 0; tries < 300; tries++) {
		gmem_hp_read(hs.kb, &now);
		if (gmem_hp_equal(&now, &pp.pool))
			break;
		usleep(10000);
	}
	piece_pools_check(&pp, false, "pinned piece of a closed file unpinned");
}

/* Page @p raises SIGBUS for poison, 4K of it, and its neighbours do not. */
static void check_poisoned(struct split_vm *s, u64 p, const char *what)
{
	u64 i;

	TEST_ASSERT(!host_touch(s->mem + p * PAGE_SIZE, false),
		    "%s: the poisoned page was read without SIGBUS", what);
	TEST_ASSERT(sigbus_probe_code == BUS_MCEERR_AR && sigbus_probe_lsb == PAGE_SHIFT,
		    "%s: SIGBUS for the poisoned page: si_code %d, lsb %d, expected BUS_MCEERR_AR (%d), %d",
		    what, sigbus_probe_code, sigbus_probe_lsb, BUS_MCEERR_AR, PAGE_SHIFT);
	for (i = p - 1; i <= p + 1; i += 2) {
		if (s->private[i]) {
			TEST_ASSERT(!host_touch(s->mem + i * PAGE_SIZE, false) &&
				    sigbus_probe_code != BUS_MCEERR_AR,
				    "%s: private page %lu next to the poisoned one", what, i);
			continue;
		}
		TEST_ASSERT(host_touch(s->mem + i * PAGE_SIZE, false) &&
			    *(u64 *)(s->mem + i * PAGE_SIZE) == s->expect[i],
			    "%s: shared page %lu next to the poisoned one", what, i);
	}
}

/*
 * MADV_HWPOISON on a shared 4K piece: memory_failure() unmaps it from the
 * host and sends the caller SIGBUS with BUS_MCEERR_AR for 4K; later host
 * accesses get the same there and nowhere else, KVM's fault on it fails
 * with EHWPOISON, the block never merges again, and at close the rest of
 * the file goes back to the pool while the poisoned huge page stays out of
 * it for good.  So this runs alone (-P), in a boot of its own.
 */
static void test_poison(void)
{
	struct gmem_hp_counts now;
	struct piece_pools pp;
	struct kvm_run *run;
	struct split_vm s;
	int tries, r;
	u64 p;

	p = piece_setup(&s, &pp, 6);
	host_check(&s, "before the poison");

	/* An action-required error: the process that touched it gets SIGBUS. */
	TEST_ASSERT(!host_madvise(s.mem + p * PAGE_SIZE, MADV_HWPOISON, &r),
		    "MADV_HWPOISON of shared piece %lu returned %d (errno %d) without SIGBUS",
		    p, r, errno);
	TEST_ASSERT(sigbus_probe_code == BUS_MCEERR_AR && sigbus_probe_lsb == PAGE_SHIFT,
		    "SIGBUS from MADV_HWPOISON: si_code %d, lsb %d, expected BUS_MCEERR_AR (%d), %d",
		    sigbus_probe_code, sigbus_probe_lsb, BUS_MCEERR_AR, PAGE_SHIFT);
	check_poisoned(&s, p, "poisoned");

	/* The guest faults on it: KVM_RUN fails with EHWPOISON. */
	memcpy(s.g.gexpect, s.expect, nr_pages * sizeof(u64));
	r = __vcpu_run(s.g.vcpu);
	run = s.g.vcpu->run;
	TEST_ASSERT(r == -1 && errno == EHWPOISON && run->exit_reason == KVM_EXIT_MEMORY_FAULT &&
		    run->memory_fault.gpa == GMEM_HVM_GPA + p * PAGE_SIZE,
		    "Guest access to the poisoned page: r %d errno %d exit %u gpa 0x%llx",
		    r, errno, run->exit_reason, run->memory_fault.gpa);

	/* Uniform again, but a poisoned piece is never merged. */
	convert(&s, p - 1, 1, 0);
	check_held_split(&s, "uniform with a poisoned piece");
	piece_pools_check(&pp, true, "uniform with a poisoned piece");
	check_poisoned(&s, p, "uniform with a poisoned piece");

	split_vm_destroy(&s);
	for (tries = 0; tries < 100; tries++) {
		gmem_hp_read(hs.kb, &now);
		if (now.free == pp.pool.free - 1)
			break;
		usleep(10000);
	}
	TEST_ASSERT(now.nr == pp.pool.nr && now.free == pp.pool.free - 1 &&
		    now.resv == pp.pool.resv && now.surplus == pp.pool.surplus,
		    "Closed with a poisoned piece: %s pages nr/free/resv/surplus %ld/%ld/%ld/%ld, expected %ld/%ld/%ld/%ld",
		    hs.name, now.nr, now.free, now.resv, now.surplus,
		    pp.pool.nr, pp.pool.free - 1, pp.pool.resv, pp.pool.surplus);
}

struct race_vcpu {
	struct split_vm *s;
	struct kvm_vcpu *vcpu;
	unsigned long passes, memory_faults;
};

static bool race_stop;

static void *race_vcpu_fn(void *data)
{
	struct race_vcpu *rv = data;

	while (!READ_ONCE(race_stop)) {
		rv->memory_faults += gmem_hvm_guest_pass(&rv->s->g, rv->vcpu,
							 "guest reads during the race");
		rv->passes++;
	}
	return NULL;
}

/*
 * Two vCPUs read and check every page of the file in a loop while the host
 * converts single pages and 2M ranges of the first huge page back and forth,
 * i.e. splits and merges it again and again under the guest's faults.
 * Conversions may fail with EAGAIN (a fault held the folio) and are retried;
 * the data never changes, the file ends up whole, the pools do not move.
 */
static void test_race(void)
{
	const int rounds = blk_pages > PMD_PAGES ? 40 : 200;
	struct gmem_hp_counts huge, pmd, *pmdp;
	unsigned long eagain = 0, faults = 0;
	struct race_vcpu rv[2] = {};
	pthread_t threads[2];
	u64 first, n, err;
	struct split_vm s;
	bool have_pmd;
	int i, r;

	split_vm_init(&s);
	host_fill(&s, 4);
	memcpy(s.g.gexpect, s.expect, nr_pages * sizeof(u64));
	read_pools(&huge, &pmd, &have_pmd);
	pmdp = have_pmd ? &pmd : NULL;

	rv[0].vcpu = s.g.vcpu;
	rv[1].vcpu = gmem_hvm_add_vcpu(&s.g, 1);
	WRITE_ONCE(race_stop, false);
	for (i = 0; i < 2; i++) {
		rv[i].s = &s;
		pthread_create(&threads[i], NULL, race_vcpu_fn, &rv[i]);
	}

	srandom(12345);
	for (i = 0; i < rounds; i++) {
		if (i % 4 == 3) {
			first = random() % (blk_pages / PMD_PAGES) * PMD_PAGES;
			n = PMD_PAGES;
		} else {
			first = random() % blk_pages;
			n = 1 + random() % 3;
		}
		n = min_t(u64, n, blk_pages - first);
		for (r = 0; r < 2; r++) {
			u64 attrs = r ? 0 : PRIVATE;

			while (__gmem_set_attributes(s.fd, first * PAGE_SIZE, n * PAGE_SIZE,
						     attrs, &err)) {
				TEST_ASSERT(errno == EAGAIN,
					    "race: converting [%lu, %lu) failed, errno %d (%s)",
					    first, first + n, errno, strerror(errno));
				eagain++;
			}
			memset(s.private + first, !r, n);
		}
		host_check(&s, "race: converted back to shared");
	}

	WRITE_ONCE(race_stop, true);
	for (i = 0; i < 2; i++) {
		pthread_join(threads[i], NULL);
		faults += rv[i].memory_faults;
	}
	ksft_print_msg("race %s: %d rounds, guest passes %lu and %lu, %lu %s, %lu EAGAIN\n",
		       hs.name, rounds, rv[0].passes, rv[1].passes, faults,
		       "KVM_EXIT_MEMORY_FAULT", eagain);
	TEST_ASSERT(rv[0].passes && rv[1].passes, "a vCPU made no pass during the race");

	check_fdinfo(&s, "after the race");
	check_pools(&huge, pmdp, "after the race");
	guest_touch_all(&s, "guest reads every page after the race");
	split_vm_destroy(&s);
}

#define CG_ROOT		"/sys/fs/cgroup"
#define CG_PARENT	CG_ROOT "/gmem_split"
#define CG_CHILD	CG_PARENT "/child"

static long cg_current(const char *cg)
{
	char path[128];

	snprintf(path, sizeof(path), "%s/hugetlb.%sB.current", cg, hs.name);
	return gmem_read_long(path, true);
}

static long cg_dying(const char *cg)
{
	char path[128], line[128];
	long val = -1;
	FILE *f;

	snprintf(path, sizeof(path), "%s/cgroup.stat", cg);
	f = fopen(path, "r");
	TEST_ASSERT(f, "Opening %s failed", path);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "nr_dying_descendants %ld", &val) == 1)
			break;
	fclose(f);
	return val;
}

static void cg_enter(const char *cg)
{
	char path[128], pid[32];

	snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
	snprintf(pid, sizeof(pid), "%d", getpid());
	gmem_write_str(path, pid);
}

/*
 * Removing the hugetlb cgroup charged for a split huge page while the file
 * is open: offlining the cgroup moves the charge to the parent (the split
 * folio is off the active list that offlining walks) and completes; the
 * parent holds the charge until the file is closed.
 */
static void test_cgroup(void)
{
	const long charged = hs.nr_blocks * hs.size;
	struct split_vm s;
	int tries;

	TEST_ASSERT(!mkdir(CG_PARENT, 0755) || errno == EEXIST, "mkdir " CG_PARENT);
	gmem_write_str(CG_ROOT "/cgroup.subtree_control", "+hugetlb");
	gmem_write_str(CG_PARENT "/cgroup.subtree_control", "+hugetlb");
	TEST_ASSERT(!mkdir(CG_CHILD, 0755), "mkdir " CG_CHILD ", errno %d", errno);

	/* The file's reservation in the root, its huge pages in the child. */
	split_vm_init(&s);
	cg_enter(CG_CHILD);
	host_fill(&s, 5);
	cg_enter(CG_ROOT);
	TEST_ASSERT_EQ(cg_current(CG_CHILD), charged);

	convert(&s, 1, 1, PRIVATE);
	check_fdinfo(&s, "first huge page split");
	TEST_ASSERT(!rmdir(CG_CHILD), "rmdir " CG_CHILD ", errno %d", errno);
	for (tries = 0; tries < 500 && cg_dying(CG_PARENT); tries++)
		usleep(10000);
	TEST_ASSERT(!cg_dying(CG_PARENT),
		    "the removed cgroup is still going offline after 5s");
	TEST_ASSERT_EQ(cg_current(CG_PARENT), charged);

	/* Merged, closed: the parent's charge goes with the pages. */
	convert(&s, 1, 1, 0);
	check_fdinfo(&s, "merged again");
	split_vm_destroy(&s);
	for (tries = 0; tries < 100 && cg_current(CG_PARENT); tries++)
		usleep(10000);
	TEST_ASSERT_EQ(cg_current(CG_PARENT), 0);
	TEST_ASSERT(!rmdir(CG_PARENT), "rmdir " CG_PARENT ", errno %d", errno);
}

/* KVM_RUN retries on EINTR in the library: report a stuck guest and exit. */
static void guest_stuck(int sig)
{
	static const char msg[] =
		"the guest's fault did not complete in 30s\n";

	write(STDOUT_FILENO, msg, sizeof(msg) - 1);
	_exit(KSFT_FAIL);
}

/*
 * A memslot bound to part of a huge page: a conversion in the other part
 * splits the huge page, which keeps KVM's faults out of all of it while it
 * runs, and must let them in again afterwards even though the converted
 * pages themselves are bound to no memslot.
 */
static void test_partial_binding(void)
{
	struct sigaction sa = { .sa_handler = guest_stuck };
	u64 bound = blk_pages / 2, i;
	struct gmem_hvm g;
	u64 *expect;

	expect = calloc(bound, sizeof(u64));
	TEST_ASSERT(expect, "calloc");
	gmem_hvm_create_bound(&g, nr_pages * PAGE_SIZE, GMEM_FLAGS_SHARED_HUGETLB | hs.flag,
			      bound * PAGE_SIZE);
	for (i = 0; i < bound; i++) {
		expect[i] = PATTERN(6, i);
		*(u64 *)(g.mem + i * PAGE_SIZE) = expect[i];
	}
	gmem_hvm_guest_check(&g, expect, "guest reads the bound half");

	/* A fault that never completes ends the test after 30s. */
	TEST_ASSERT(!sigaction(SIGALRM, &sa, NULL), "sigaction");
	for (i = 0; i < 2; i++) {
		gmem_set_attributes(g.fd, (bound + 1 + i) * PAGE_SIZE, PAGE_SIZE, PRIVATE);
		/* Only the huge page the host wrote is allocated: now split. */
		gmem_fdinfo_check(g.fd, 0, -1, PMD_PAGES, blk_pages > PMD_PAGES ? 2 : 1,
				  "a page of the unbound half private");
		alarm(30);
		gmem_hvm_guest_check(&g, expect, "guest reads the bound half after a split");
		gmem_set_attributes(g.fd, (bound + 1 + i) * PAGE_SIZE, PAGE_SIZE, 0);
		gmem_hvm_guest_check(&g, expect, "guest reads the bound half after a merge");
		alarm(0);
	}
	signal(SIGALRM, SIG_DFL);
	gmem_hvm_destroy(&g);
	free(expect);
}

/*
 * A huge page bound through two memslots: a conversion across their
 * boundary invalidates both memslots' parts before it zaps either, and
 * lets faults into both again; the data of both stays, private or not.
 */
static void test_two_slots(void)
{
	struct sigaction sa = { .sa_handler = guest_stuck };
	u64 half = PMD_PAGES / 2, i, gen;
	struct gmem_hvm g;
	u64 *expect;

	expect = calloc(PMD_PAGES, sizeof(u64));
	TEST_ASSERT(expect, "calloc");
	gmem_hvm_create_split(&g, nr_pages * PAGE_SIZE, GMEM_FLAGS_SHARED_HUGETLB | hs.flag,
			      SZ_2M, half * PAGE_SIZE);
	TEST_ASSERT(!sigaction(SIGALRM, &sa, NULL), "sigaction");
	for (gen = 0; gen < 2; gen++) {
		for (i = 0; i < PMD_PAGES; i++) {
			expect[i] = PATTERN(7 + gen, i);
			*(u64 *)(g.mem + i * PAGE_SIZE) = expect[i];
		}
		gmem_hvm_guest_check(&g, expect, "guest reads both memslots");
		gmem_fdinfo_check(g.fd, 1, -1, 0, 0, "one whole huge page");

		/* Two pages on each side of the boundary, then back. */
		gmem_set_attributes(g.fd, (half - 2) * PAGE_SIZE, 4 * PAGE_SIZE, PRIVATE);
		gmem_fdinfo_check(g.fd, 0, -1, PMD_PAGES, blk_pages > PMD_PAGES ? 2 : 1,
				  "private pages across the memslots' boundary");
		TEST_ASSERT(!host_touch(g.mem + (half - 1) * PAGE_SIZE, false) &&
			    !host_touch(g.mem + half * PAGE_SIZE, false),
			    "the host read a private page next to the boundary");
		TEST_ASSERT(host_touch(g.mem + (half - 3) * PAGE_SIZE, false) &&
			    host_touch(g.mem + (half + 2) * PAGE_SIZE, false),
			    "a shared page next to the private ones raised SIGBUS");
		alarm(30);
		gmem_hvm_guest_check(&g, expect, "guest reads both memslots, split");
		gmem_set_attributes(g.fd, (half - 2) * PAGE_SIZE, 4 * PAGE_SIZE, 0);
		gmem_hvm_guest_check(&g, expect, "guest reads both memslots, merged");
		alarm(0);
	}
	/* A hole across the boundary zeroes it in both memslots, nothing else. */
	TEST_ASSERT(!fallocate(g.fd, PUNCH_HOLE, (half - 1) * PAGE_SIZE, 2 * PAGE_SIZE),
		    "punch across the memslots' boundary: %s", strerror(errno));
	expect[half - 1] = 0;
	expect[half] = 0;
	alarm(30);
	gmem_hvm_guest_check(&g, expect, "guest reads both memslots after a punch");
	alarm(0);
	signal(SIGALRM, SIG_DFL);
	gmem_hvm_destroy(&g);
	free(expect);
}

static const struct {
	const char *name;
	void (*fn)(void);
	char only;		/* run only with this option, -r or -P */
} scenarios[] = {
	{ "precision", test_precision },
	{ "kvm_levels", test_kvm_levels },
	{ "punch_close", test_punch_close },
	{ "cgroup", test_cgroup },
	{ "pin", test_pin },
	{ "partial_binding", test_partial_binding },
	{ "two_slots", test_two_slots },
	{ "race", test_race, 'r' },
	{ "poison", test_poison, 'P' },
};

/* Scenario @i runs: the default ones, or with -r the race, with -P the poison. */
static bool selected(int i, bool race, bool poison)
{
	if (poison)
		return scenarios[i].only == 'P';
	if (race)
		return scenarios[i].only == 'r';
	return !scenarios[i].only;
}

int main(int argc, char *argv[])
{
	bool race = false, poison = false;
	struct gmem_hp_counts pool;
	int i, opt, n = 0;

	while ((opt = getopt(argc, argv, "p:rP")) != -1) {
		if (opt == 'r') {
			race = true;
		} else if (opt == 'P') {
			poison = true;
		} else if (opt != 'p' || !gmem_huge_parse(optarg, &hs)) {
			printf("usage: %s [-p 2M|1G] [-r | -P]\n", argv[0]);
			exit(KSFT_FAIL);
		}
	}
	blk_pages = hs.size / PAGE_SIZE;
	nr_pages = hs.nr_blocks * blk_pages;

	hvo = gmem_hvm_require(hs.kb, hs.nr_blocks);
	gmem_hp_read(hs.kb, &pool);

	for (i = 0; i < ARRAY_SIZE(scenarios); i++)
		n += selected(i, race, poison);
	ksft_print_header();
	ksft_set_plan(n);
	for (i = 0; i < ARRAY_SIZE(scenarios); i++) {
		if (!selected(i, race, poison))
			continue;
		scenarios[i].fn();
		ksft_test_result_pass("%s %s\n", scenarios[i].name, hs.name);
	}
	/* A poisoned huge page never comes back: test_poison() counted it. */
	if (!poison)
		gmem_hp_check(hs.kb, &pool, 0, 0, "end of the test");
	ksft_finished();
}
