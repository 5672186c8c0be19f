// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmem_split_test - 4K conversions inside 2M HugeTLB guest_memfd folios.
 *
 * A conversion that leaves a 2M block with both shared and private pages
 * splits its folio into 4K folios; one that makes the block uniform again
 * merges them back.  Each scenario checks what that must and must not
 * change: the folios and split blocks the file's fdinfo reports, the data of
 * every 4K page, SIGBUS on the host's private pages, the HugeTLB pool's
 * counters (global and per node: a split huge page is still one in-use huge
 * page) and, with a guest, the level KVM maps each block at.
 *
 * The file is 4 x 2M in a KVM_X86_SW_PROTECTED_VM whose guest_memfd tracks
 * the attributes (kvm.gmem_in_place_conversion=Y).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include <linux/falloc.h>
#include <linux/sizes.h>

#include "gmem_hugetlb_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "ucall_common.h"

/* Above the guest's code, stack and page tables in slot0, and above MMIO. */
#define TEST_GPA	SZ_4G
#define TEST_SLOT	10

#define NR_BLOCKS	4
#define FILE_SIZE	(NR_BLOCKS * SZ_2M)
#define NR_PAGES	(FILE_SIZE / PAGE_SIZE)
#define PAGES_PER_BLOCK	(SZ_2M / PAGE_SIZE)
#define SIZE_KB		2048

#define GMEM_FLAGS	(GUEST_MEMFD_FLAG_HUGETLB | GUEST_MEMFD_FLAG_HUGE_2MB | \
			 GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED)
#define PRIVATE		KVM_MEMORY_ATTRIBUTE_PRIVATE
#define PUNCH_HOLE	(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)

/* Word 0 of 4K page @i of generation @gen; 0 is reserved for "zeroed". */
#define PATTERN(gen, i)	(0x5a00000000000000ull | (u64)(gen) << 32 | (u64)(i))

/* The guest reads word 0 of every page and checks it holds guest_expect[]. */
static u64 guest_expect[NR_PAGES];

static void guest_code(void)
{
	u64 i, val;

	/* The first run only maps the guest's code, stack and data. */
	for (i = 0; i < NR_PAGES; i += PAGE_SIZE / sizeof(u64))
		READ_ONCE(guest_expect[i]);
	GUEST_SYNC(0);
	for (;;) {
		for (i = 0; i < NR_PAGES; i++) {
			val = READ_ONCE(*(u64 *)(TEST_GPA + i * PAGE_SIZE));
			__GUEST_ASSERT(val == guest_expect[i],
				       "page %lu holds 0x%lx, expected 0x%lx",
				       i, val, guest_expect[i]);
		}
		GUEST_SYNC(0);
	}
}

/* A VM, its vCPU, and one 2M HugeTLB guest_memfd file mapped by both. */
struct split_vm {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	int fd;
	u8 *mem;
	u64 expect[NR_PAGES];	/* word 0 of each page; private or not */
	u64 private[NR_PAGES / 64];
	struct gmem_hp_counts created;	/* after creating, nothing allocated */
};

static bool is_private(struct split_vm *s, u64 page)
{
	return s->private[page / 64] & BIT_ULL(page % 64);
}

static void split_vm_init(struct split_vm *s)
{
	const struct vm_shape shape = {
		.mode = VM_MODE_DEFAULT,
		.type = KVM_X86_SW_PROTECTED_VM,
	};

	memset(s, 0, sizeof(*s));
	s->vm = __vm_create_shape_with_one_vcpu(shape, &s->vcpu, NR_PAGES / 256 + 16,
						guest_code);
	TEST_ASSERT(s->vm->gmem_attributes & PRIVATE,
		    "guest_memfd does not track PRIVATE for a SW-protected VM");
	s->fd = vm_create_guest_memfd(s->vm, FILE_SIZE, GMEM_FLAGS);
	gmem_hp_read(SIZE_KB, &s->created);
	s->mem = kvm_mmap(FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd);
	vm_set_user_memory_region2(s->vm, TEST_SLOT, KVM_MEM_GUEST_MEMFD, TEST_GPA,
				   FILE_SIZE, s->mem, s->fd, 0);
	virt_map(s->vm, TEST_GPA, TEST_GPA, NR_PAGES);
	vcpu_run(s->vcpu);
	TEST_ASSERT_EQ(get_ucall(s->vcpu, NULL), UCALL_SYNC);
}

static void split_vm_destroy(struct split_vm *s)
{
	kvm_munmap(s->mem, FILE_SIZE);
	kvm_close(s->fd);
	kvm_vm_free(s->vm);
}

/* The host writes generation @gen to every page (all must be shared). */
static void host_fill(struct split_vm *s, u64 gen)
{
	u64 i;

	for (i = 0; i < NR_PAGES; i++) {
		s->expect[i] = PATTERN(gen, i);
		*(u64 *)(s->mem + i * PAGE_SIZE) = s->expect[i];
	}
}

/* Every shared page holds its data, every private one raises SIGBUS. */
static void host_check(struct split_vm *s, const char *what)
{
	u64 i, val;
	u8 *p;

	for (i = 0; i < NR_PAGES; i++) {
		p = s->mem + i * PAGE_SIZE;
		if (is_private(s, i)) {
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
	u64 i;

	gmem_set_attributes(s->fd, first * PAGE_SIZE, n * PAGE_SIZE, attrs);
	for (i = first; i < first + n; i++) {
		if (attrs & PRIVATE)
			s->private[i / 64] |= BIT_ULL(i % 64);
		else
			s->private[i / 64] &= ~BIT_ULL(i % 64);
	}
}

/* Run the guest over every page: it checks each page's word 0. */
static void guest_touch_all(struct split_vm *s, const char *what)
{
	struct ucall uc;

	memcpy(guest_expect, s->expect, sizeof(guest_expect));
	sync_global_to_guest(s->vm, guest_expect);
	vcpu_run(s->vcpu);
	switch (get_ucall(s->vcpu, &uc)) {
	case UCALL_SYNC:
		break;
	case UCALL_ABORT:
		REPORT_GUEST_ASSERT(uc);
		break;
	default:
		TEST_FAIL("%s: unexpected exit %s", what,
			  exit_reason_str(s->vcpu->run->exit_reason));
	}
}

/* Blocks split by the conversion of [@first, @first + @n) and back. */
struct precision_case {
	const char *what;
	u64 first, n;
	int split;	/* blocks split while the range is private */
};

/*
 * Only the blocks a conversion leaves mixed are split, and converting back
 * merges them; data, pool and the other blocks do not move.
 */
static void test_precision(void)
{
	static const struct precision_case cases[] = {
		{ "one 4K page inside block 0", 1, 1, 1 },
		{ "the first page of the file", 0, 1, 1 },
		{ "the last page of the file", NR_PAGES - 1, 1, 1 },
		{ "a 2M-aligned 2M range", PAGES_PER_BLOCK, PAGES_PER_BLOCK, 0 },
		{ "two pages across the block 0/1 boundary", PAGES_PER_BLOCK - 1, 2, 2 },
		{ "block 1 and one page of block 2", PAGES_PER_BLOCK, PAGES_PER_BLOCK + 1, 1 },
		{ "all but the first and the last page", 1, NR_PAGES - 2, 2 },
	};
	struct gmem_hp_counts filled;
	struct gmem_fdinfo fi;
	bool hvo = false;
	struct split_vm s;
	char what[128];
	FILE *f;
	int c;

	f = fopen("/proc/sys/vm/hugetlb_optimize_vmemmap", "r");
	if (f) {
		hvo = fgetc(f) == '1';
		fclose(f);
	}

	split_vm_init(&s);
	host_fill(&s, 1);
	gmem_fdinfo_check(s.fd, NR_BLOCKS, -1, 0, 0, "every block allocated");
	gmem_hp_check(SIZE_KB, &s.created, -NR_BLOCKS, -NR_BLOCKS, "every block allocated");
	gmem_hp_read(SIZE_KB, &filled);

	for (c = 0; c < ARRAY_SIZE(cases); c++) {
		const struct precision_case *pc = &cases[c];

		snprintf(what, sizeof(what), "%s converted to private", pc->what);
		convert(&s, pc->first, pc->n, PRIVATE);
		gmem_fdinfo_check(s.fd, NR_BLOCKS - pc->split, -1,
				  pc->split * PAGES_PER_BLOCK, pc->split, what);
		gmem_fdinfo_read(s.fd, &fi);
		TEST_ASSERT(fi.vmemmap_restored_kb == (hvo ? pc->split * 28 : 0),
			    "%s: %ld kB of vmemmap restored, expected %d (hugetlb_optimize_vmemmap %d)",
			    what, fi.vmemmap_restored_kb, hvo ? pc->split * 28 : 0, hvo);
		gmem_hp_check(SIZE_KB, &filled, 0, 0, what);
		host_check(&s, what);

		snprintf(what, sizeof(what), "%s converted back to shared", pc->what);
		convert(&s, pc->first, pc->n, 0);
		gmem_fdinfo_check(s.fd, NR_BLOCKS, -1, 0, 0, what);
		gmem_fdinfo_read(s.fd, &fi);
		TEST_ASSERT(!fi.vmemmap_restored_kb, "%s: %ld kB of vmemmap still restored",
			    what, fi.vmemmap_restored_kb);
		gmem_hp_check(SIZE_KB, &filled, 0, 0, what);
		host_check(&s, what);
	}

	/* A block already split stays split while it is mixed. */
	convert(&s, 5, 1, PRIVATE);
	convert(&s, 7, 3, PRIVATE);
	gmem_fdinfo_check(s.fd, NR_BLOCKS - 1, -1, PAGES_PER_BLOCK, 1, "two ranges in block 0");
	convert(&s, 5, 1, 0);
	gmem_fdinfo_check(s.fd, NR_BLOCKS - 1, -1, PAGES_PER_BLOCK, 1, "one range left in block 0");
	/* The whole block private: uniform again, one folio. */
	convert(&s, 0, PAGES_PER_BLOCK, PRIVATE);
	gmem_fdinfo_check(s.fd, NR_BLOCKS, -1, 0, 0, "block 0 all private");
	host_check(&s, "block 0 all private");

	convert(&s, 0, NR_PAGES, 0);
	host_check(&s, "whole file shared again");
	gmem_hp_check(SIZE_KB, &filled, 0, 0, "whole file shared again");
	split_vm_destroy(&s);
}

/*
 * The guest sees every page's data through splits and merges, and KVM maps
 * each uniform block at 2M and a split one at 4K; after the merge the block
 * is mapped at 2M again.
 */
static void test_kvm_levels(void)
{
	u64 p2m0, p4k0, p2m, p4k;
	struct split_vm s;

	split_vm_init(&s);
	host_fill(&s, 2);

	/* Block 1 private but for one page. */
	convert(&s, PAGES_PER_BLOCK, PAGES_PER_BLOCK, PRIVATE);
	convert(&s, PAGES_PER_BLOCK + 100, 1, 0);
	gmem_fdinfo_check(s.fd, NR_BLOCKS - 1, -1, PAGES_PER_BLOCK, 1, "block 1 mixed");

	/* Count only what the guest maps of the file. */
	p2m0 = vm_get_stat(s.vm, pages_2m);
	p4k0 = vm_get_stat(s.vm, pages_4k);
	guest_touch_all(&s, "guest reads every page, block 1 split");
	p2m = vm_get_stat(s.vm, pages_2m) - p2m0;
	p4k = vm_get_stat(s.vm, pages_4k) - p4k0;
	/* The loop's own code and data pages may add a few 4K mappings. */
	TEST_ASSERT(p2m == NR_BLOCKS - 1 && p4k >= PAGES_PER_BLOCK &&
		    p4k < PAGES_PER_BLOCK + 16,
		    "block 1 split: KVM mapped %lu 2M and %lu 4K pages, expected %d 2M and %d 4K",
		    p2m, p4k, NR_BLOCKS - 1, PAGES_PER_BLOCK);
	host_check(&s, "after the guest read block 1 split");

	/* Uniform again: merged, and the next faults map it at 2M. */
	p4k0 += p4k - PAGES_PER_BLOCK;
	convert(&s, PAGES_PER_BLOCK + 100, 1, PRIVATE);
	gmem_fdinfo_check(s.fd, NR_BLOCKS, -1, 0, 0, "block 1 private again");
	guest_touch_all(&s, "guest reads every page, block 1 merged");
	p2m = vm_get_stat(s.vm, pages_2m) - p2m0;
	p4k = vm_get_stat(s.vm, pages_4k) - p4k0;
	TEST_ASSERT(p2m == NR_BLOCKS && p4k == 0,
		    "block 1 merged: KVM maps %lu 2M and %lu 4K pages of the file, expected %d and 0",
		    p2m, p4k, NR_BLOCKS);

	/* Converting back and forth under a running guest keeps its view. */
	convert(&s, 3 * PAGES_PER_BLOCK + 7, 9, PRIVATE);
	guest_touch_all(&s, "guest reads every page, block 3 split");
	convert(&s, 3 * PAGES_PER_BLOCK, PAGES_PER_BLOCK, 0);
	convert(&s, PAGES_PER_BLOCK, PAGES_PER_BLOCK, 0);
	host_check(&s, "everything shared at the end");
	guest_touch_all(&s, "guest reads every page at the end");
	split_vm_destroy(&s);
}

/*
 * Punching part of a split block zeroes it and keeps the block split;
 * punching all of it returns the whole huge page to the file's reservation.
 * drop_caches leaves split blocks alone.  Closing the file with split
 * blocks gives every huge page back, and a file as large as the pool can be
 * created right after.
 */
static void test_punch_close(void)
{
	struct gmem_hp_counts pool, filled, now;
	struct split_vm s;
	int fd, tries;
	long nfree;
	u64 i;

	gmem_hp_read(SIZE_KB, &pool);
	split_vm_init(&s);
	host_fill(&s, 3);
	gmem_hp_read(SIZE_KB, &filled);

	convert(&s, PAGES_PER_BLOCK + 3, 1, PRIVATE);
	convert(&s, 2 * PAGES_PER_BLOCK + 3, 1, PRIVATE);
	gmem_fdinfo_check(s.fd, NR_BLOCKS - 2, -1, 2 * PAGES_PER_BLOCK, 2, "blocks 1, 2 split");

	/* Part of block 1: zeroed, still split. */
	kvm_fallocate(s.fd, PUNCH_HOLE, (PAGES_PER_BLOCK + 8) * PAGE_SIZE, 4 * PAGE_SIZE);
	for (i = PAGES_PER_BLOCK + 8; i < PAGES_PER_BLOCK + 12; i++)
		s.expect[i] = 0;
	gmem_fdinfo_check(s.fd, NR_BLOCKS - 2, -1, 2 * PAGES_PER_BLOCK, 2,
			  "4 pages of block 1 punched");
	gmem_hp_check(SIZE_KB, &filled, 0, 0, "4 pages of block 1 punched");
	host_check(&s, "4 pages of block 1 punched");

	/* Nothing is written back: the kernel must not drop split pages. */
	TEST_ASSERT(system("echo 3 > /proc/sys/vm/drop_caches") == 0, "drop_caches");
	gmem_fdinfo_check(s.fd, NR_BLOCKS - 2, -1, 2 * PAGES_PER_BLOCK, 2, "after drop_caches");
	gmem_hp_check(SIZE_KB, &filled, 0, 0, "after drop_caches");
	host_check(&s, "after drop_caches");

	/* All of block 1: its huge page goes back to the file's reservation. */
	kvm_fallocate(s.fd, PUNCH_HOLE, SZ_2M, SZ_2M);
	for (i = PAGES_PER_BLOCK; i < 2 * PAGES_PER_BLOCK; i++)
		s.expect[i] = 0;
	gmem_fdinfo_check(s.fd, NR_BLOCKS - 2, -1, PAGES_PER_BLOCK, 1, "block 1 punched");
	gmem_hp_check(SIZE_KB, &s.created, -(NR_BLOCKS - 1), -(NR_BLOCKS - 1),
		      "block 1 punched");
	host_check(&s, "block 1 punched");

	/* Close with block 2 split: the pool is whole again. */
	split_vm_destroy(&s);
	for (tries = 0; tries < 100; tries++) {
		gmem_hp_read(SIZE_KB, &now);
		if (gmem_hp_equal(&now, &pool))
			break;
		usleep(10000);
	}
	gmem_hp_check(SIZE_KB, &pool, 0, 0, "file with a split block closed");

	/* Every free 2M page in one new file, right away. */
	nfree = pool.free - pool.resv;
	s.vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	fd = __vm_create_guest_memfd(s.vm, nfree * SZ_2M, GMEM_FLAGS);
	TEST_ASSERT(fd >= 0, "A file of all %ld free 2M pages after the close failed, errno %d (%s)",
		    nfree, errno, strerror(errno));
	kvm_close(fd);
	kvm_vm_free(s.vm);
	gmem_hp_check(SIZE_KB, &pool, 0, 0, "after the full-size file");
}

static const struct {
	const char *name;
	void (*fn)(void);
} scenarios[] = {
	{ "precision", test_precision },
	{ "kvm_levels", test_kvm_levels },
	{ "punch_close", test_punch_close },
};

int main(int argc, char *argv[])
{
	struct gmem_hp_counts pool;
	int i;

	TEST_REQUIRE(kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(KVM_X86_SW_PROTECTED_VM));
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES) & PRIVATE);
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_GUEST_MEMFD_FLAGS) & GUEST_MEMFD_FLAG_HUGETLB);
	gmem_hp_read(SIZE_KB, &pool);
	TEST_REQUIRE(pool.free - pool.resv >= NR_BLOCKS);
	sigbus_probe_install();

	ksft_print_header();
	ksft_set_plan(ARRAY_SIZE(scenarios));
	for (i = 0; i < ARRAY_SIZE(scenarios); i++) {
		scenarios[i].fn();
		ksft_test_result_pass("%s\n", scenarios[i].name);
	}
	gmem_hp_check(SIZE_KB, &pool, 0, 0, "end of the test");
	ksft_finished();
}
