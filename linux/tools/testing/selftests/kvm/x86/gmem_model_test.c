// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmem_model_test - seeded random operations on a HugeTLB guest_memfd file,
 * each checked against a small model of the file.
 *
 * Operations: convert a random range to shared or private (which splits and
 * merges huge folios), punch a hole, fallocate, host read and write of a
 * page, the guest reading every page, and closing and re-creating the file.
 * The model keeps each 4K page's attribute and contents (word 0), whether
 * each huge page is allocated, and which blocks are split, following the
 * policy of Documentation/mm/guest_memfd_hugetlb.rst: at each end of a
 * conversion, the smallest enclosing block left mixed is split one level
 * down if it is allocated; afterwards the split blocks of the range that are
 * uniform are merged, 2M blocks first.  After every step: private pages
 * raise SIGBUS on the host, shared pages hold exactly the model's word, the
 * pool's counters are exactly what the allocated huge pages make them, and
 * fdinfo reports exactly the model's folios, split blocks and vmemmap.
 *
 * Usage: gmem_model_test [-p 2M|1G] [-n operations] [-s seed]
 * A failure names the seed and the step: -s and -n replay it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <linux/falloc.h>
#include <linux/sizes.h>

#include "gmem_hugetlb_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"

#define PMD_PAGES	(SZ_2M / PAGE_SIZE)
#define PRIVATE		KVM_MEMORY_ATTRIBUTE_PRIVATE

static unsigned int seed;
static unsigned long step;

#define CHECK(cond, fmt, ...)						\
	TEST_ASSERT(cond, "seed %u step %lu: " fmt, seed, step, ##__VA_ARGS__)

static struct gmem_huge hs = GMEM_HUGE_2M;
static unsigned long default_ops = 10000;	/* -n: 300 on 1G */
static int guest_permille = 20;			/* how often the guest reads the file */

static u64 blk_pages, nr_pages;
static bool hvo;

/* The model of one file. */
static struct {
	struct gmem_hvm g;
	struct gmem_hp_counts created;	/* pool right after creation */
	u8 *private;			/* per page */
	u64 *word;			/* per page: word 0 */
	bool *allocated;		/* per huge page */
	bool *huge_split;		/* per huge page (1G files): split to 2M */
	bool *pmd_split;		/* per 2M block: split to 4K */
} m;

static u64 rnd(u64 n)
{
	return ((u64)random() << 31 ^ random()) % n;
}

static bool uniform(u64 first, u64 n)
{
	u64 i;

	for (i = first + 1; i < first + n; i++)
		if (m.private[i] != m.private[first])
			return false;
	return true;
}

static void model_reset(void)
{
	memset(m.private, 0, nr_pages);
	memset(m.word, 0, nr_pages * sizeof(u64));
	memset(m.allocated, 0, hs.nr_blocks);
	memset(m.huge_split, 0, hs.nr_blocks);
	memset(m.pmd_split, 0, nr_pages / PMD_PAGES);
}

static void file_open(void)
{
	gmem_hvm_create(&m.g, nr_pages * PAGE_SIZE, GMEM_FLAGS_SHARED_HUGETLB | hs.flag);
	gmem_hp_read(hs.kb, &m.created);
	model_reset();
}

/* A huge page is allocated whole, whatever its pages' attributes. */
static void allocate(u64 page)
{
	u64 b = page / blk_pages;

	if (m.allocated[b])
		return;
	m.allocated[b] = true;
	m.huge_split[b] = false;
	memset(m.pmd_split + b * blk_pages / PMD_PAGES, 0, blk_pages / PMD_PAGES);
}

/* Split so that @page sits in a folio below the smallest mixed block. */
static void model_split_end(u64 page)
{
	u64 b = page / blk_pages, p = page / PMD_PAGES;

	if (!m.allocated[b])
		return;
	if (!uniform(p * PMD_PAGES, PMD_PAGES)) {
		if (blk_pages > PMD_PAGES)
			m.huge_split[b] = true;
		m.pmd_split[p] = true;
	} else if (blk_pages > PMD_PAGES && !uniform(b * blk_pages, blk_pages)) {
		m.huge_split[b] = true;
	}
}

static void model_convert(u64 first, u64 n, bool private)
{
	u64 end = first + n, p, b;

	/* A range that has the attributes already is left alone. */
	if (m.private[first] == private && uniform(first, n))
		return;
	memset(m.private + first, private, n);
	model_split_end(first);
	model_split_end(end - 1);

	for (p = first / PMD_PAGES; p * PMD_PAGES < end; p++)
		if (m.pmd_split[p] && uniform(p * PMD_PAGES, PMD_PAGES))
			m.pmd_split[p] = false;
	if (blk_pages == PMD_PAGES)
		return;
	for (b = first / blk_pages; b * blk_pages < end; b++) {
		if (!m.huge_split[b] || !uniform(b * blk_pages, blk_pages))
			continue;
		m.huge_split[b] = false;
		memset(m.pmd_split + b * blk_pages / PMD_PAGES, 0, blk_pages / PMD_PAGES);
	}
}

static void check_counts(const char *what)
{
	long nalloc = 0, huge = 0, f2m = 0, f4k = 0, split = 0, vmemmap = 0;
	struct gmem_fdinfo fi;
	struct gmem_hp_counts now;
	u64 b, p;

	for (b = 0; b < hs.nr_blocks; b++) {
		if (!m.allocated[b])
			continue;
		nalloc++;
		if (blk_pages == PMD_PAGES) {
			if (m.pmd_split[b]) {
				f4k += PMD_PAGES;
				split++;
				vmemmap += 28;
			} else {
				huge++;
			}
			continue;
		}
		if (!m.huge_split[b]) {
			huge++;
			continue;
		}
		split++;
		vmemmap += 511 * 4;
		for (p = b * blk_pages / PMD_PAGES; p < (b + 1) * blk_pages / PMD_PAGES; p++) {
			if (m.pmd_split[p]) {
				f4k += PMD_PAGES;
				split++;
				vmemmap += 28;
			} else {
				f2m++;
			}
		}
	}

	gmem_fdinfo_read(m.g.fd, &fi);
	CHECK(fi.folios_huge == huge && fi.folios_4k == f4k && fi.split_blocks == split &&
	      (blk_pages == PMD_PAGES || fi.folios_2m == f2m),
	      "%s: fdinfo has %ld huge, %ld 2M, %ld 4K folios, %ld split blocks; the model %ld, %ld, %ld, %ld",
	      what, fi.folios_huge, fi.folios_2m, fi.folios_4k, fi.split_blocks,
	      huge, f2m, f4k, split);
	CHECK(fi.vmemmap_restored_kb == (hvo ? vmemmap : 0),
	      "%s: %ld kB of vmemmap restored, the model %ld", what,
	      fi.vmemmap_restored_kb, hvo ? vmemmap : 0);

	gmem_hp_read(hs.kb, &now);
	CHECK(now.free == m.created.free - nalloc && now.resv == m.created.resv - nalloc &&
	      now.surplus == m.created.surplus && now.nr == m.created.nr,
	      "%s: pool free %ld resv %ld surplus %ld nr %ld, the model %ld %ld %ld %ld",
	      what, now.free, now.resv, now.surplus, now.nr, m.created.free - nalloc,
	      m.created.resv - nalloc, m.created.surplus, m.created.nr);
}

/* The host's view of @page: SIGBUS if private, else the model's word. */
static void check_page(u64 page, const char *what)
{
	u8 *p = m.g.mem + page * PAGE_SIZE;
	u64 val;

	if (m.private[page]) {
		CHECK(!host_touch(p, false), "%s: private page %lu read without SIGBUS",
		      what, page);
		return;
	}
	CHECK(host_touch(p, false), "%s: shared page %lu raised SIGBUS", what, page);
	allocate(page);
	val = *(u64 *)p;
	CHECK(val == m.word[page], "%s: page %lu holds 0x%lx, the model 0x%lx",
	      what, page, val, m.word[page]);
}

/* A random range: mostly small, sometimes across blocks, sometimes large. */
static void rnd_range(u64 *first, u64 *n)
{
	u64 r = rnd(10), max;

	*first = rnd(nr_pages);
	max = nr_pages - *first;
	if (r < 5)
		*n = 1 + rnd(min_t(u64, max, 16));
	else if (r < 8)
		*n = 1 + rnd(min_t(u64, max, (3 * PMD_PAGES)));
	else
		*n = 1 + rnd(max);
	/* Sometimes aligned to 2M or to the huge page, where splits end. */
	if (!rnd(4)) {
		u64 a = rnd(2) ? PMD_PAGES : blk_pages;

		*first = *first / a * a;
		*n = max_t(u64, *n / a * a, a);
		*n = min_t(u64, *n, nr_pages - *first);
	}
}

static void op_convert(void)
{
	u64 first, n, attrs = rnd(2) ? PRIVATE : 0, error_offset = 0;
	int r;

	rnd_range(&first, &n);
	r = __gmem_set_attributes(m.g.fd, first * PAGE_SIZE, n * PAGE_SIZE, attrs,
				  &error_offset);
	CHECK(!r, "converting pages [%lu, %lu) to %s failed: errno %d (%s), error_offset 0x%lx",
	      first, first + n, attrs ? "private" : "shared", errno, strerror(errno),
	      error_offset);
	model_convert(first, n, attrs);
	check_counts("convert");
	check_page(first, "convert, first page");
	check_page(first + n - 1, "convert, last page");
}

static void op_punch(void)
{
	u64 first, n, b;

	rnd_range(&first, &n);
	kvm_fallocate(m.g.fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      first * PAGE_SIZE, n * PAGE_SIZE);
	memset(m.word + first, 0, n * sizeof(u64));
	for (b = DIV_ROUND_UP(first, blk_pages); (b + 1) * blk_pages <= first + n; b++) {
		m.allocated[b] = false;
		m.huge_split[b] = false;
		memset(m.pmd_split + b * blk_pages / PMD_PAGES, 0, blk_pages / PMD_PAGES);
	}
	check_counts("punch");
}

static void op_fallocate(void)
{
	u64 first, n, b;

	rnd_range(&first, &n);
	kvm_fallocate(m.g.fd, FALLOC_FL_KEEP_SIZE, first * PAGE_SIZE, n * PAGE_SIZE);
	for (b = first / blk_pages; b * blk_pages < first + n; b++)
		allocate(b * blk_pages);
	check_counts("fallocate");
}

static void op_host_write(void)
{
	u64 page = rnd(nr_pages);
	u8 *p = m.g.mem + page * PAGE_SIZE;

	if (m.private[page]) {
		CHECK(!host_touch(p, true), "private page %lu written without SIGBUS", page);
		return;
	}
	CHECK(host_touch(p, true), "writing shared page %lu raised SIGBUS", page);
	allocate(page);
	m.word[page] = 0x5a00000000000000ull | (u64)step << 24 | page;
	*(u64 *)p = m.word[page];
	check_counts("host write");
}

static void op_host_read(void)
{
	check_page(rnd(nr_pages), "host read");
	check_counts("host read");
}

static void op_guest(void)
{
	char what[64];

	snprintf(what, sizeof(what), "seed %u step %lu: guest reads every page", seed, step);
	gmem_hvm_guest_check(&m.g, m.word, what);
	memset(m.allocated, 1, hs.nr_blocks);
	check_counts("guest read");
}

static void op_reopen(const struct gmem_hp_counts *pool)
{
	struct gmem_hp_counts now;
	int tries;

	gmem_hvm_destroy(&m.g);
	/* Blocks still referenced retire shortly after the close. */
	for (tries = 0; tries < 100; tries++) {
		gmem_hp_read(hs.kb, &now);
		if (gmem_hp_equal(&now, pool))
			break;
		usleep(10000);
	}
	CHECK(gmem_hp_equal(&now, pool),
	      "after close the pool has free %ld resv %ld, it had %ld %ld",
	      now.free, now.resv, pool->free, pool->resv);
	file_open();
	check_counts("re-created");
}

int main(int argc, char *argv[])
{
	unsigned long ops = 0;
	struct gmem_hp_counts pool;
	int opt, r;

	seed = time(NULL);
	while ((opt = getopt(argc, argv, "p:n:s:")) != -1) {
		switch (opt) {
		case 'p':
			if (!gmem_huge_parse(optarg, &hs))
				goto usage;
			if (hs.size == SZ_1G) {
				default_ops = 300;
				guest_permille = 5;
			}
			break;
		case 'n':
			ops = strtoul(optarg, NULL, 0);
			break;
		case 's':
			seed = strtoul(optarg, NULL, 0);
			break;
		default:
			goto usage;
		}
	}
	if (!ops)
		ops = default_ops;
	blk_pages = hs.size / PAGE_SIZE;
	nr_pages = hs.nr_blocks * blk_pages;

	hvo = gmem_hvm_require(hs.kb, hs.nr_blocks);
	gmem_hp_read(hs.kb, &pool);

	m.private = calloc(nr_pages, 1);
	m.word = calloc(nr_pages, sizeof(u64));
	m.allocated = calloc(hs.nr_blocks, 1);
	m.huge_split = calloc(hs.nr_blocks, 1);
	m.pmd_split = calloc(nr_pages / PMD_PAGES, 1);
	TEST_ASSERT(m.private && m.word && m.allocated && m.huge_split && m.pmd_split,
		    "calloc");

	printf("%s file of %lu huge pages, %lu operations, seed %u (-s %u to replay)\n",
	       hs.name, hs.nr_blocks, ops, seed, seed);
	srandom(seed);
	file_open();
	for (step = 0; step < ops; step++) {
		r = rnd(1000);
		if (r < 450)
			op_convert();
		else if (r < 530)
			op_punch();
		else if (r < 600)
			op_fallocate();
		else if (r < 780)
			op_host_write();
		else if (r < 1000 - guest_permille - 5)
			op_host_read();
		else if (r < 995)
			op_guest();
		else
			op_reopen(&pool);
	}
	step = ops;
	op_reopen(&pool);
	gmem_hvm_destroy(&m.g);
	printf("%lu operations passed\n", ops);
	return 0;

usage:
	printf("usage: %s [-p 2M|1G] [-n operations] [-s seed]\n", argv[0]);
	return KSFT_FAIL;
}
