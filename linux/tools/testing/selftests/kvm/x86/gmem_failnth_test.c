// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmem_failnth_test - every allocation of guest_memfd's operations fails
 * once, in turn (failslab and fail_page_alloc through the task's fail-nth).
 *
 * For each operation - creating a HugeTLB file, fallocate(), a conversion
 * that splits a 2M or a 1G huge page, the conversion back that merges it, a
 * punch of part of a huge page - the test makes the first, the second, ...
 * slab or page allocation the calling task makes fail, until the operation
 * completes with no failure injected.  A call that fails must fail with an
 * errno its documentation lists and change nothing: the attributes (SIGBUS
 * on the host), the data, the folios and split blocks fdinfo reports and the
 * HugeTLB pools are checked against their state before the call.  A call
 * that succeeds despite the failure must have done all of its work.  The
 * runner fails the boot on any kernel warning.
 *
 * Usage: gmem_failnth_test [-p 2M|1G]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include <linux/falloc.h>
#include <linux/sizes.h>

#include "gmem_hugetlb_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"

#define PMD_PAGES	(SZ_2M / PAGE_SIZE)
#define PRIVATE		KVM_MEMORY_ATTRIBUTE_PRIVATE
#define PUNCH_HOLE	(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)
#define DEBUGFS		"/sys/kernel/debug"
/*
 * Past the 64th allocation the walk grows by a 16th: this bound costs about
 * 220 tries, and a KASAN + kmemleak kernel allocates more than 5000 times
 * to split 1G.
 */
#define MAX_NTH		1000000

static struct gmem_huge hs = GMEM_HUGE_2M;

static u64 nr_pages;
static struct kvm_vm *vm;
static int fd, nth_fd;
static u8 *mem;
static u8 *private;
static u64 *word;

/* Everything a failed call must leave as it was. */
struct snapshot {
	struct gmem_hp_counts huge, pmd;
	struct gmem_fdinfo fi;
};

static void snap(struct snapshot *s)
{
	memset(s, 0, sizeof(*s));
	gmem_hp_read(hs.kb, &s->huge);
	if (hs.kb != 2048)
		gmem_hp_read(2048, &s->pmd);
	if (fd >= 0)
		gmem_fdinfo_read(fd, &s->fi);
}

static void snap_check(const struct snapshot *a, const char *what, unsigned int nth)
{
	struct snapshot b;

	snap(&b);
	TEST_ASSERT(gmem_hp_equal(&a->huge, &b.huge) && gmem_hp_equal(&a->pmd, &b.pmd),
		    "%s, allocation %u failed: the pools moved", what, nth);
	TEST_ASSERT(!memcmp(&a->fi, &b.fi, sizeof(a->fi)),
		    "%s, allocation %u failed: fdinfo changed (%ld/%ld/%ld folios, %ld split, now %ld/%ld/%ld, %ld)",
		    what, nth, a->fi.folios_huge, a->fi.folios_2m, a->fi.folios_4k,
		    a->fi.split_blocks, b.fi.folios_huge, b.fi.folios_2m, b.fi.folios_4k,
		    b.fi.split_blocks);
}

/* Pages [first, first + n) and their neighbours are what the model says. */
static void model_check(u64 first, u64 n, const char *what)
{
	u64 i, lo = first ? first - 1 : 0, hi = min(first + n + 1, nr_pages);

	if (!n)
		return;
	for (i = lo; i < hi; i++) {
		u8 *p = mem + i * PAGE_SIZE;

		if (private[i]) {
			TEST_ASSERT(!host_touch(p, false), "%s: private page %lu read by the host",
				    what, i);
			continue;
		}
		TEST_ASSERT(host_touch(p, false), "%s: shared page %lu raised SIGBUS", what, i);
		TEST_ASSERT(*(u64 *)p == word[i], "%s: page %lu holds 0x%lx, expected 0x%lx",
			    what, i, *(u64 *)p, word[i]);
	}
}

static void fail_nth(unsigned int n)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%u", n);

	TEST_ASSERT(pwrite(nth_fd, buf, len, 0) == len, "writing fail-nth, errno %d", errno);
}

/* True if the failure set up by fail_nth() was injected. */
static bool fail_nth_hit(void)
{
	char buf[16] = "";

	TEST_ASSERT(pread(nth_fd, buf, sizeof(buf) - 1, 0) > 0, "reading fail-nth");
	fail_nth(0);
	return atoi(buf) == 0;
}

typedef int (*op_fn)(void *arg);

/*
 * Run @op with its 1st, 2nd, ... allocation failing until it runs with no
 * failure injected (past the 64th, every 16th part of the way: a 1G split
 * restores its struct pages a page at a time).  A failed run must change
 * nothing (@first, @n: the pages to check); a run that succeeds although an
 * allocation failed (a fallback) must have done its work, and @undo (without
 * failures) takes it back before the next one.  Returns how many
 * allocations failed in turn.
 */
static unsigned int each_allocation_fails(const char *what, op_fn op, op_fn undo,
					  void *arg, u64 first, u64 n)
{
	unsigned int nth, tried = 0, failed = 0;
	struct snapshot before;
	bool hit;
	int r;

	for (nth = 1; nth < MAX_NTH; nth += nth < 64 ? 1 : nth / 16) {
		snap(&before);
		fail_nth(nth);
		r = op(arg);
		hit = fail_nth_hit();
		tried += hit;
		if (!r) {
			model_check(first, n, what);
			if (!hit)
				break;
			TEST_ASSERT(!undo(arg), "%s: undoing it failed, errno %d", what, errno);
			continue;
		}
		TEST_ASSERT(hit, "%s failed with errno %d (%s) with no failure injected",
			    what, errno, strerror(errno));
		TEST_ASSERT(errno == ENOMEM || errno == EAGAIN || errno == ENOSPC,
			    "%s, allocation %u failed: errno %d (%s), which it does not document",
			    what, nth, errno, strerror(errno));
		snap_check(&before, what, nth);
		model_check(first, n, what);
		failed++;
	}
	TEST_ASSERT(nth < MAX_NTH, "%s still failed after %u allocations failed", what, nth);
	ksft_print_msg("%s: %u of its allocations failed in turn, %u of them failed the call\n",
		       what, tried, failed);
	return tried;
}

struct conv {
	u64 first, n, attrs;
};

static int op_convert(void *arg)
{
	struct conv *c = arg;
	int r = __gmem_set_attributes(fd, c->first * PAGE_SIZE, c->n * PAGE_SIZE, c->attrs,
				      NULL);

	if (!r)
		memset(private + c->first, !!c->attrs, c->n);
	return r;
}

static int op_convert_back(void *arg)
{
	struct conv c = *(struct conv *)arg;

	c.attrs ^= PRIVATE;
	return op_convert(&c);
}

static int op_nothing(void *arg)
{
	return 0;
}

static int op_create(void *arg)
{
	u64 size = *(u64 *)arg;
	int r = __vm_create_guest_memfd(vm, size, GMEM_FLAGS_SHARED_HUGETLB | hs.flag);

	if (r < 0)
		return r;
	close(r);
	return 0;
}

/*
 * One huge page at a time: a fallocate() over several that fails may keep
 * those it allocated before, as on other filesystems.
 */
static int op_fallocate(void *arg)
{
	return fallocate(fd, FALLOC_FL_KEEP_SIZE, *(u64 *)arg * hs.size, hs.size);
}

static int op_unallocate(void *arg)
{
	return fallocate(fd, PUNCH_HOLE, *(u64 *)arg * hs.size, hs.size);
}

static int op_punch(void *arg)
{
	struct conv *c = arg;
	int r = fallocate(fd, PUNCH_HOLE, c->first * PAGE_SIZE, c->n * PAGE_SIZE);

	if (!r)
		memset(word + c->first, 0, c->n * sizeof(u64));
	return r;
}

/* Write the pages' words again (all shared here). */
static int op_refill(void *arg)
{
	struct conv *c = arg;
	u64 i;

	for (i = c->first; i < c->first + c->n; i++) {
		word[i] = 0x5a00000000000000ull | i;
		*(u64 *)(mem + i * PAGE_SIZE) = word[i];
	}
	return 0;
}

/*
 * Inject only through fail-nth, silently, into any slab or page allocation:
 * each knob's value for the test and its default, restored afterwards.
 */
static const struct {
	const char *file;
	const char *on, *off;
} knobs[] = {
	{ DEBUGFS "/failslab/ignore-gfp-wait", "N", "Y" },
	{ DEBUGFS "/failslab/verbose", "0", "2" },
	{ DEBUGFS "/fail_page_alloc/ignore-gfp-wait", "N", "Y" },
	{ DEBUGFS "/fail_page_alloc/ignore-gfp-highmem", "N", "Y" },
	{ DEBUGFS "/fail_page_alloc/min-order", "0", "1" },
	{ DEBUGFS "/fail_page_alloc/verbose", "0", "2" },
};

static void fault_injection_setup(void)
{
	char path[64];
	int i;

	__TEST_REQUIRE(!access(DEBUGFS "/failslab/ignore-gfp-wait", W_OK) &&
		       !access(DEBUGFS "/fail_page_alloc/min-order", W_OK),
		       "needs CONFIG_FAILSLAB, CONFIG_FAIL_PAGE_ALLOC and their debugfs");
	for (i = 0; i < ARRAY_SIZE(knobs); i++)
		gmem_write_str(knobs[i].file, knobs[i].on);
	snprintf(path, sizeof(path), "/proc/self/task/%ld/fail-nth", syscall(SYS_gettid));
	nth_fd = open(path, O_RDWR);
	TEST_ASSERT(nth_fd >= 0, "open %s, errno %d", path, errno);
}

static void fault_injection_restore(void)
{
	int i;

	close(nth_fd);
	for (i = 0; i < ARRAY_SIZE(knobs); i++)
		gmem_write_str(knobs[i].file, knobs[i].off);
}

int main(int argc, char *argv[])
{
	u64 file_size, mid, i;
	struct gmem_hp_counts base_huge, base_pmd;
	struct conv c;
	int opt;

	while ((opt = getopt(argc, argv, "p:")) != -1) {
		if (opt != 'p' || !gmem_huge_parse(optarg, &hs)) {
			printf("usage: %s [-p 2M|1G]\n", argv[0]);
			exit(KSFT_FAIL);
		}
	}
	nr_pages = hs.nr_blocks * hs.size / PAGE_SIZE;
	file_size = nr_pages * PAGE_SIZE;
	gmem_hvm_require(hs.kb, hs.nr_blocks);
	fault_injection_setup();
	ksft_print_header();
	ksft_set_plan(5);

	vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	gmem_hp_read(hs.kb, &base_huge);
	gmem_hp_read(2048, &base_pmd);
	fd = -1;
	each_allocation_fails("create", op_create, op_nothing, &file_size, 0, 0);
	ksft_test_result_pass("create %s\n", hs.name);

	fd = vm_create_guest_memfd(vm, file_size, GMEM_FLAGS_SHARED_HUGETLB | hs.flag);
	mem = kvm_mmap(file_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
	private = calloc(nr_pages, 1);
	word = calloc(nr_pages, sizeof(u64));
	TEST_ASSERT(private && word, "calloc");

	for (i = 0; i < hs.nr_blocks; i++)
		each_allocation_fails("fallocate", op_fallocate, op_unallocate, &i,
				      i * hs.size / PAGE_SIZE, 1);
	gmem_fdinfo_check(fd, hs.nr_blocks, -1, 0, 0, "after fallocate");
	for (i = 0; i < nr_pages; i += nr_pages > 4096 ? 97 : 1) {
		word[i] = 0x5a00000000000000ull | i;
		*(u64 *)(mem + i * PAGE_SIZE) = word[i];
	}
	ksft_test_result_pass("fallocate %s\n", hs.name);

	/* One page in the middle of the first huge page: a split. */
	mid = hs.size / PAGE_SIZE / 2 + 3;
	c = (struct conv){ mid, 1, PRIVATE };
	each_allocation_fails("split", op_convert, op_convert_back, &c, mid, 1);
	gmem_fdinfo_check(fd, hs.nr_blocks - 1, -1, PMD_PAGES, hs.kb == 2048 ? 1 : 2,
			  "after the split");
	model_check(mid, 1, "after the split");
	ksft_test_result_pass("a conversion that splits a %s page\n", hs.name);

	/* Back: the merge is best effort, the conversion must succeed. */
	c.attrs = 0;
	each_allocation_fails("merge", op_convert, op_convert_back, &c, mid, 1);
	model_check(mid, 1, "after the merge");
	ksft_test_result_pass("a conversion that merges a %s page\n", hs.name);

	/* Zero part of a huge page: a punch that frees nothing. */
	c = (struct conv){ mid - 2, 4 };
	each_allocation_fails("partial punch", op_punch, op_refill, &c, mid - 2, 4);
	model_check(mid - 2, 4, "after the punch");
	ksft_test_result_pass("a punch of part of a %s page\n", hs.name);

	kvm_munmap(mem, file_size);
	close(fd);
	kvm_vm_free(vm);
	fault_injection_restore();
	gmem_hp_check(hs.kb, &base_huge, 0, 0, "every file closed");
	ksft_finished();
}
