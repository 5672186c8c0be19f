// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmem_conversions_test - in-place shared <=> private conversion of memory
 * whose state is tracked by guest_memfd (KVM_SET_MEMORY_ATTRIBUTES2 on the
 * guest_memfd fd, kvm.gmem_in_place_conversion=Y).
 *
 * The host sees guest_memfd memory through a MAP_SHARED mmap() of the file:
 * shared pages are accessible, touching a private page raises SIGBUS.  The
 * guest sees the same file through a memslot whose userspace_addr is that
 * mapping, in a KVM_X86_SW_PROTECTED_VM, so a conversion must preserve the
 * contents and keep the page where it is.
 *
 * With -p 2M or -p 1G, the files are backed by HugeTLB pages of that size
 * (GUEST_MEMFD_FLAG_HUGETLB) and a "page" of the scenarios is a huge page:
 * conversions, fallocate() and hole punches cover whole huge pages.  The host
 * and the guest write and check three 4K pieces of each huge page, its first,
 * a middle and its last 4K, and the guest maps only those.  Converting part
 * of a huge page splits its folio (test_precision()).  A file has
 * at most two 1G pages, so some scenarios use fewer pages with -p 1G.
 *
 * With kvm.gmem_in_place_conversion=N the test only checks that the feature
 * is off, i.e. that KVM behaves like it did before it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <linux/falloc.h>
#include <linux/kvm_para.h>
#include <linux/sizes.h>

#include "gmem_hugetlb_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "ucall_common.h"

#include "../../../../../mm/gup_test.h"

#define GMEM_PARAM	"/sys/module/kvm/parameters/gmem_in_place_conversion"
#define HUGEPAGES_DIR	"/sys/kernel/mm/hugepages"

/*
 * Above the guest's code, stack and page tables in slot0, and above MMIO.
 * 1G aligned, for 1G pages.
 */
#define TEST_GPA	SZ_4G
#define TEST_SLOT	10
#define MAX_PAGES	16

/* The largest file a scenario creates, in pages (test_mixed_allocation()). */
#define MAX_SCENARIO_PAGES	8

/* 4K pieces of a huge page that the test writes and checks. */
#define NR_HUGE_SAMPLES		3

/*
 * Page contents: word i of a page tagged @tag holds tag + i, tag 0 means the
 * page is all zeroes.  Tags of different generations and pages differ.
 */
#define TAG(gen, page)	(0x5a00000000000000ull | (u64)(gen) << 40 | (u64)(page) << 20)

static inline u64 tag_word(u64 tag, u64 i)
{
	return tag ? tag + i : 0;
}

/*
 * Byte offset of the @s-th 4K piece of a page of @psize bytes that the test
 * looks at: for a 4K page the page itself, for a huge page its first 4K, the
 * 4K in the middle and its last 4K.
 */
static inline u64 sample_offset(u64 psize, u64 s)
{
	if (!s)
		return 0;
	return s == 1 ? psize / 2 : psize - PAGE_SIZE;
}

/* The guest_memfd backing, -p. */
struct backing {
	const char *name;
	size_t size;		/* 0: the host's base page size */
	u64 flags;		/* guest_memfd flags */
	u64 map_page_sz;	/* KVM_MAP_GPA_RANGE_PAGE_SZ_* */
	size_t max_pages;	/* the largest file, in pages */
};

static const struct backing backings[] = {
	{ "4K", 0, 0, KVM_MAP_GPA_RANGE_PAGE_SZ_4K, MAX_PAGES },
	{ "2M", SZ_2M, GUEST_MEMFD_FLAG_HUGETLB | GUEST_MEMFD_FLAG_HUGE_2MB,
	  KVM_MAP_GPA_RANGE_PAGE_SZ_2M, MAX_PAGES },
	/* The test VM has two free 1G pages, one per NUMA node. */
	{ "1G", SZ_1G, GUEST_MEMFD_FLAG_HUGETLB | GUEST_MEMFD_FLAG_HUGE_1GB,
	  KVM_MAP_GPA_RANGE_PAGE_SZ_1G, 2 },
};

static const struct backing *backing = &backings[0];

/* A "page" of the scenarios: the backing page size. */
static size_t page_size;

/* The host's base page size, for what is done 4K at a time in any case. */
static size_t base_page_size;

/* 4K pieces of a page that the test looks at: 1 or NR_HUGE_SAMPLES. */
static size_t nr_samples = 1;

/* Why the current scenario is skipped, for its KTAP result line. */
static char skip_reason[128];

static bool gmem_hugetlb(void)
{
	return backing->flags & GUEST_MEMFD_FLAG_HUGETLB;
}

/* @n pages, or fewer if the backing allows fewer per file. */
static size_t scenario_pages(size_t n)
{
	return min(n, backing->max_pages);
}

/* One guest_memfd file, mapped by the host and, optionally, by a guest. */
struct gmem_test {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	int fd;
	size_t npages;
	size_t size;
	u8 *mem;
	int nr_map_gpa_range;
};

/* ---------------------------------------------------------------------- */
/* Guest side: a loop that runs one command from the host per KVM_RUN.    */

enum guest_op {
	GUEST_CHECK = 1,	/* every page must hold its tag */
	GUEST_WRITE,		/* fill every page according to its tag */
	GUEST_MAP_PRIVATE,	/* KVM_HC_MAP_GPA_RANGE, encrypted */
	GUEST_MAP_SHARED,	/* KVM_HC_MAP_GPA_RANGE, decrypted */
};

struct guest_cmd {
	u64 op;
	u64 first;
	u64 npages;
	u64 page_size;		/* bytes per page */
	u64 nr_samples;		/* 4K pieces accessed per page */
	u64 map_page_sz;	/* KVM_MAP_GPA_RANGE_PAGE_SZ_* */
	u64 tags[MAX_PAGES];
};

static struct guest_cmd guest_cmd;

/* Access the 4K at @p, which starts at word @word0 of page @page. */
static void guest_access_sample(bool write, u64 *p, u64 word0, u64 tag,
				u64 page)
{
	u64 j, val;

	for (j = 0; j < PAGE_SIZE / sizeof(u64); j++) {
		if (write) {
			WRITE_ONCE(p[j], tag_word(tag, word0 + j));
			continue;
		}
		val = READ_ONCE(p[j]);
		__GUEST_ASSERT(val == tag_word(tag, word0 + j),
			       "Guest read 0x%lx from word %lu of page %lu, expected 0x%lx",
			       val, word0 + j, page, tag_word(tag, word0 + j));
	}
}

static void guest_access_pages(bool write, u64 first, u64 npages)
{
	u64 psize = READ_ONCE(guest_cmd.page_size);
	u64 nr = READ_ONCE(guest_cmd.nr_samples);
	u64 i, s, offset;

	for (i = 0; i < npages; i++) {
		u64 tag = READ_ONCE(guest_cmd.tags[i]);

		for (s = 0; s < nr; s++) {
			offset = sample_offset(psize, s);
			guest_access_sample(write,
					    (u64 *)(TEST_GPA + (first + i) * psize + offset),
					    offset / sizeof(u64), tag, first + i);
		}
	}
}

static void guest_code(void)
{
	for (;;) {
		u64 op = READ_ONCE(guest_cmd.op);
		u64 first = READ_ONCE(guest_cmd.first);
		u64 npages = READ_ONCE(guest_cmd.npages);
		u64 psize = READ_ONCE(guest_cmd.page_size);
		u64 page_sz = READ_ONCE(guest_cmd.map_page_sz);
		u64 gpa = TEST_GPA + first * psize;

		switch (op) {
		case GUEST_CHECK:
		case GUEST_WRITE:
			guest_access_pages(op == GUEST_WRITE, first, npages);
			break;
		case GUEST_MAP_PRIVATE:
			kvm_hypercall_map_gpa_range(gpa, npages * psize,
						    KVM_MAP_GPA_RANGE_ENCRYPTED |
						    page_sz);
			break;
		case GUEST_MAP_SHARED:
			kvm_hypercall_map_gpa_range(gpa, npages * psize,
						    KVM_MAP_GPA_RANGE_DECRYPTED |
						    page_sz);
			break;
		default:
			GUEST_FAIL("Unknown guest op %lu", op);
		}

		GUEST_SYNC(op);
	}
}

/* ---------------------------------------------------------------------- */
/* Host side helpers.                                                     */

/* printf() for a "what" argument; valid until the next call. */
static __printf(1, 2) const char *msg(const char *fmt, ...)
{
	static char buf[128];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	return buf;
}

static u8 *page_ptr(u8 *mem, size_t page)
{
	return mem + page * page_size;
}

static void host_fill(u8 *mem, size_t page, u64 tag)
{
	size_t s, i, offset;
	u64 *p;

	for (s = 0; s < nr_samples; s++) {
		offset = sample_offset(page_size, s);
		p = (u64 *)(page_ptr(mem, page) + offset);

		for (i = 0; i < PAGE_SIZE / sizeof(u64); i++)
			p[i] = tag_word(tag, offset / sizeof(u64) + i);
	}
}

static void set_tags(u64 *tags, size_t npages, u64 gen)
{
	size_t i;

	for (i = 0; i < npages; i++)
		tags[i] = TAG(gen, i);
}

/* Pages [first, first + n) as a bit mask. */
static u64 page_mask(size_t first, size_t n)
{
	return (BIT_ULL(n) - 1) << first;
}

/*
 * A check_pages() string for @npages pages: 'P' for the pages in @private,
 * 'S' for the others.  @buf has room for MAX_PAGES + 1 characters.
 */
static const char *page_states(char *buf, size_t npages, u64 private)
{
	size_t i;

	for (i = 0; i < npages; i++)
		buf[i] = private & BIT_ULL(i) ? 'P' : 'S';
	buf[npages] = '\0';
	return buf;
}

/*
 * Check the 4K page at @p, word @word0 of its page: private (reading and
 * writing raise SIGBUS) or shared and holding @tag's words.
 */
static void check_4k(u64 *p, size_t word0, char state, u64 tag,
		     const char *where, const char *what)
{
	size_t i;

	if (state == 'P') {
		TEST_ASSERT(!host_touch((u8 *)p, false),
			    "%s: %s should be private, but the host read it without SIGBUS",
			    what, where);
		TEST_ASSERT(!host_touch((u8 *)p, true),
			    "%s: %s should be private, but the host wrote it without SIGBUS",
			    what, where);
		return;
	}

	TEST_ASSERT(host_touch((u8 *)p, false),
		    "%s: %s should be shared, but reading it through mmap() raised SIGBUS",
		    what, where);
	for (i = 0; i < PAGE_SIZE / sizeof(u64); i++)
		TEST_ASSERT(p[i] == tag_word(tag, word0 + i),
			    "%s: shared %s holds 0x%lx in word %lu, expected 0x%lx",
			    what, where, p[i], word0 + i, tag_word(tag, word0 + i));
}

/* Check 4K piece @s of @page, see check_pages(). */
static void check_sample(u8 *mem, size_t page, size_t s, char state, u64 tag,
			 const char *what)
{
	size_t offset = sample_offset(page_size, s);
	char where[64];

	if (nr_samples > 1)
		snprintf(where, sizeof(where), "page %lu (+0x%lx)", page, offset);
	else
		snprintf(where, sizeof(where), "page %lu", page);

	check_4k((u64 *)(page_ptr(mem, page) + offset), offset / sizeof(u64),
		 state, tag, where, what);
}

/*
 * Check the host's view of each page: @states has one character per page,
 * 'S' for shared (readable, holds tags[page]), 'P' for private (reading and
 * writing raise SIGBUS) and '-' for "don't look".
 */
static void check_pages(u8 *mem, const char *states, const u64 *tags,
			const char *what)
{
	size_t page, s;

	for (page = 0; states[page]; page++) {
		if (states[page] != 'P' && states[page] != 'S')
			continue;

		for (s = 0; s < nr_samples; s++)
			check_sample(mem, page, s, states[page],
				     states[page] == 'S' ? tags[page] : 0, what);
	}
}

/* Free HugeTLB pages of the backing's size, -1 if the host has none. */
static long free_huge_pages(void)
{
	char path[96];
	long nr = -1;
	FILE *f;

	snprintf(path, sizeof(path), HUGEPAGES_DIR "/hugepages-%lukB/free_hugepages",
		 page_size >> 10);
	f = fopen(path, "r");
	if (!f)
		return -1;
	if (fscanf(f, "%ld", &nr) != 1)
		nr = -1;
	fclose(f);
	return nr;
}

/*
 * mmap() all of a guest_memfd file, MAP_SHARED.  Huge pages are mapped at an
 * address aligned to their size, so that the host can map them whole too.
 */
static u8 *gmem_mmap(int fd, size_t size)
{
	u8 *area, *mem;

	if (!gmem_hugetlb())
		return kvm_mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, fd);

	area = kvm_mmap(size + page_size, PROT_NONE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1);
	mem = (u8 *)(((uintptr_t)area + page_size - 1) & ~(uintptr_t)(page_size - 1));
	TEST_ASSERT(mmap(mem, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
			 fd, 0) == mem,
		    "mmap() of a %s HugeTLB guest_memfd at %p failed, errno %d (%s)",
		    backing->name, mem, errno, strerror(errno));

	if (mem != area)
		kvm_munmap(area, mem - area);
	kvm_munmap(mem + size, area + page_size - mem);
	return mem;
}

static const struct vm_shape protected_shape = {
	.mode = VM_MODE_DEFAULT,
	.type = KVM_X86_SW_PROTECTED_VM,
};

/*
 * Create a SW-protected VM and a guest_memfd of @npages pages with @flags
 * (and the backing's), map the whole file in the host.  With @guest, also
 * create a vCPU and a memslot for the file at TEST_GPA whose userspace_addr
 * is the host mapping.  The guest maps only the parts of pages it accesses.
 */
static void gmem_test_init(struct gmem_test *t, size_t npages, u64 flags,
			   bool guest)
{
	size_t i, s;
	u64 gpa;

	TEST_ASSERT(npages <= backing->max_pages, "Too many pages: %lu", npages);

	memset(t, 0, sizeof(*t));
	t->npages = npages;
	t->size = npages * page_size;

	if (guest)
		t->vm = __vm_create_shape_with_one_vcpu(protected_shape, &t->vcpu,
							npages * nr_samples,
							guest_code);
	else
		t->vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);

	t->fd = vm_create_guest_memfd(t->vm, t->size, flags | backing->flags);
	t->mem = gmem_mmap(t->fd, t->size);

	if (!guest)
		return;

	vm_set_user_memory_region2(t->vm, TEST_SLOT, KVM_MEM_GUEST_MEMFD,
				   TEST_GPA, t->size, t->mem, t->fd, 0);
	for (i = 0; i < npages; i++) {
		for (s = 0; s < nr_samples; s++) {
			gpa = TEST_GPA + i * page_size + sample_offset(page_size, s);
			virt_map(t->vm, gpa, gpa, 1);
		}
	}
}

static void gmem_test_destroy(struct gmem_test *t)
{
	kvm_munmap(t->mem, t->size);
	kvm_close(t->fd);
	kvm_vm_free(t->vm);
}

static void handle_map_gpa_range(struct gmem_test *t)
{
	struct kvm_run *run = t->vcpu->run;
	u64 gpa = run->hypercall.args[0];
	u64 size = run->hypercall.args[1] * base_page_size;
	bool private = run->hypercall.args[2] & KVM_MAP_GPA_RANGE_ENCRYPTED;

	TEST_ASSERT(run->hypercall.nr == KVM_HC_MAP_GPA_RANGE,
		    "Wanted KVM_HC_MAP_GPA_RANGE (%u), got hypercall %llu",
		    KVM_HC_MAP_GPA_RANGE, run->hypercall.nr);
	TEST_ASSERT(gpa >= TEST_GPA && gpa + size <= TEST_GPA + t->size,
		    "Guest converted [0x%lx, 0x%lx), outside of the test memory",
		    gpa, gpa + size);

	gmem_set_attributes(t->fd, gpa - TEST_GPA, size,
			    private ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0);
	t->nr_map_gpa_range++;
	run->hypercall.ret = 0;
}

/* Run one guest command on pages [first, first + npages) of the file. */
/* Set by guest_map_4k(): the guest's next op works on 4K pages. */
static bool guest_op_4k;

static void guest_do(struct gmem_test *t, enum guest_op op, size_t first,
		     size_t npages, const u64 *tags, const char *what)
{
	struct kvm_run *run = t->vcpu->run;
	struct ucall uc;
	int r;

	guest_cmd.op = op;
	guest_cmd.first = first;
	guest_cmd.npages = npages;
	guest_cmd.page_size = guest_op_4k ? base_page_size : page_size;
	guest_cmd.nr_samples = nr_samples;
	guest_cmd.map_page_sz = guest_op_4k ? KVM_MAP_GPA_RANGE_PAGE_SZ_4K :
					      backing->map_page_sz;
	if (tags)
		memcpy(guest_cmd.tags, tags, npages * sizeof(*tags));
	sync_global_to_guest(t->vm, guest_cmd);

	for (;;) {
		r = _vcpu_run(t->vcpu);
		TEST_ASSERT(!r || errno != EFAULT || run->exit_reason != KVM_EXIT_MEMORY_FAULT,
			    "%s: guest access exited with KVM_EXIT_MEMORY_FAULT, gpa 0x%llx size 0x%llx flags 0x%llx",
			    what, run->memory_fault.gpa, run->memory_fault.size,
			    run->memory_fault.flags);
		TEST_ASSERT(!r, "%s: KVM_RUN failed, errno %d (%s)",
			    what, errno, strerror(errno));

		if (run->exit_reason != KVM_EXIT_HYPERCALL)
			break;
		handle_map_gpa_range(t);
	}

	switch (get_ucall(t->vcpu, &uc)) {
	case UCALL_SYNC:
		TEST_ASSERT(uc.args[1] == op, "%s: guest finished op %lu, expected %u",
			    what, uc.args[1], op);
		break;
	case UCALL_ABORT:
		REPORT_GUEST_ASSERT(uc);
		break;
	default:
		TEST_FAIL("%s: unexpected exit %s", what,
			  exit_reason_str(run->exit_reason));
	}
}

static void guest_check(struct gmem_test *t, size_t first, size_t npages,
			const u64 *tags, const char *what)
{
	guest_do(t, GUEST_CHECK, first, npages, tags, what);
}

static void guest_write(struct gmem_test *t, size_t first, size_t npages,
			const u64 *tags, const char *what)
{
	guest_do(t, GUEST_WRITE, first, npages, tags, what);
}

/* ---------------------------------------------------------------------- */
/* Scenarios.                                                             */

/* Which VMs report the capability, and what goes away with it. */
static int test_caps(void)
{
	struct kvm_memory_attributes attr = {
		.address = TEST_GPA,
		.size = page_size,
		.attributes = KVM_MEMORY_ATTRIBUTE_PRIVATE,
	};
	struct kvm_vm *vm;
	u64 val;
	int fd, r;

	val = kvm_check_cap(KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES);
	TEST_ASSERT(val == KVM_MEMORY_ATTRIBUTE_PRIVATE,
		    "/dev/kvm reports KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES = 0x%lx, expected PRIVATE",
		    val);

	/* Other VM types (SEV-SNP, TDX) still set attributes per VM, as in 7.3. */
	val = kvm_check_cap(KVM_CAP_MEMORY_ATTRIBUTES);
	TEST_ASSERT(val == KVM_MEMORY_ATTRIBUTE_PRIVATE,
		    "/dev/kvm reports KVM_CAP_MEMORY_ATTRIBUTES = 0x%lx, expected PRIVATE as 7.3 does",
		    val);

	vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	val = vm_check_cap(vm, KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES);
	TEST_ASSERT(val == KVM_MEMORY_ATTRIBUTE_PRIVATE,
		    "SW-protected VM reports KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES = 0x%lx, expected PRIVATE",
		    val);
	TEST_ASSERT(vm->gmem_attributes == val,
		    "Library cached gmem_attributes = 0x%lx, the VM reports 0x%lx",
		    vm->gmem_attributes, val);

	val = vm_check_cap(vm, KVM_CAP_MEMORY_ATTRIBUTES);
	TEST_ASSERT(!val,
		    "SW-protected VM still reports VM-wide KVM_CAP_MEMORY_ATTRIBUTES = 0x%lx",
		    val);
	r = __vm_ioctl(vm, KVM_SET_MEMORY_ATTRIBUTES, &attr);
	TEST_ASSERT(r == -1 && errno == EINVAL,
		    "VM-wide KVM_SET_MEMORY_ATTRIBUTES(PRIVATE) should fail with EINVAL, got r = %d errno = %d",
		    r, errno);

	val = vm_check_cap(vm, KVM_CAP_GUEST_MEMFD_FLAGS);
	TEST_ASSERT((val & GMEM_FLAGS_SHARED) == GMEM_FLAGS_SHARED,
		    "SW-protected VM supports guest_memfd flags 0x%lx, expected MMAP and INIT_SHARED",
		    val);
	kvm_vm_free(vm);

	vm = vm_create_barebones();
	val = vm_check_cap(vm, KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES);
	TEST_ASSERT(!val,
		    "Default VM (no private memory) reports KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES = 0x%lx",
		    val);
	TEST_ASSERT(!vm->gmem_attributes,
		    "Library cached gmem_attributes = 0x%lx for a default VM",
		    vm->gmem_attributes);

	/* Its guest_memfd tracks nothing: no conversion of either kind. */
	fd = vm_create_guest_memfd(vm, page_size, GMEM_FLAGS_SHARED);
	r = __gmem_set_attributes(fd, 0, page_size, KVM_MEMORY_ATTRIBUTE_PRIVATE, NULL);
	TEST_ASSERT(r == -1 && errno == EINVAL,
		    "Default VM: KVM_SET_MEMORY_ATTRIBUTES2(PRIVATE) should fail with EINVAL, got r = %d errno = %d",
		    r, errno);
	r = __gmem_set_attributes(fd, 0, page_size, 0, NULL);
	TEST_ASSERT(r == -1 && errno == EINVAL,
		    "Default VM: KVM_SET_MEMORY_ATTRIBUTES2(shared) should fail with EINVAL, got r = %d errno = %d",
		    r, errno);
	close(fd);
	kvm_vm_free(vm);

	return KSFT_PASS;
}

/*
 * a. Host writes, private, guest reads and writes, shared, host reads: the
 * data survives both ways and the page stays the same physical page.
 */
static int test_same_pfn(void)
{
	u64 tag_host = TAG(1, 0), tag_guest = TAG(2, 0), tag_host2 = TAG(3, 0);
	u64 pfn, pfn_after;
	struct gmem_test t;
	long nr_free = 0;

	gmem_test_init(&t, 1, GMEM_FLAGS_SHARED, true);

	host_fill(t.mem, 0, tag_host);
	pfn = gmem_pagemap_pfn(t.mem);
	TEST_ASSERT(pfn, "No PFN in /proc/self/pagemap for the page just written (not root?)");

	/* Whatever pagemap tells, converting in place takes no huge page. */
	if (gmem_hugetlb()) {
		nr_free = free_huge_pages();
		TEST_ASSERT(nr_free >= 0, "Can't read the number of free %s HugeTLB pages",
			    backing->name);
	}

	gmem_set_private(t.fd, 0, page_size);
	TEST_ASSERT(!gmem_pagemap_pfn(t.mem),
		    "The host mapping of the page survived the conversion to private");
	check_pages(t.mem, "P", NULL, "shared->private");
	guest_check(&t, 0, 1, &tag_host, "guest reads the host's data after shared->private");
	guest_write(&t, 0, 1, &tag_guest, "guest writes the private page");

	gmem_set_shared(t.fd, 0, page_size);
	check_pages(t.mem, "S", &tag_guest, "private->shared, host reads the guest's data");
	pfn_after = gmem_pagemap_pfn(t.mem);
	TEST_ASSERT(pfn_after == pfn,
		    "The page moved: PFN 0x%lx before the conversions, 0x%lx after",
		    pfn, pfn_after);
	if (gmem_hugetlb())
		TEST_ASSERT(free_huge_pages() == nr_free,
			    "%ld free %s HugeTLB pages before the conversions, %ld after",
			    nr_free, backing->name, free_huge_pages());

	/* The guest's shared view is that same page. */
	host_fill(t.mem, 0, tag_host2);
	guest_check(&t, 0, 1, &tag_host2, "guest reads the host's data after private->shared");

	gmem_test_destroy(&t);
	return KSFT_PASS;
}

/* b. A file starts all shared with INIT_SHARED, all private without it. */
static int test_initial_state(void)
{
	const size_t npages = scenario_pages(4);
	char shared[MAX_PAGES + 1], private[MAX_PAGES + 1];
	u64 zero[MAX_PAGES] = {}, tags[MAX_PAGES];
	struct gmem_test t;
	size_t i;

	page_states(shared, npages, 0);
	page_states(private, npages, page_mask(0, npages));

	gmem_test_init(&t, npages, GMEM_FLAGS_SHARED, false);
	check_pages(t.mem, shared, zero, "new file with INIT_SHARED");
	for (i = 0; i < t.npages; i++)
		TEST_ASSERT(host_touch(page_ptr(t.mem, i), true),
			    "Writing page %lu of a new INIT_SHARED file raised SIGBUS", i);
	gmem_test_destroy(&t);

	gmem_test_init(&t, npages, GUEST_MEMFD_FLAG_MMAP, true);
	check_pages(t.mem, private, NULL, "new file without INIT_SHARED");

	/* The guest can use the private pages, the host still can't. */
	set_tags(tags, t.npages, 1);
	guest_check(&t, 0, t.npages, zero, "guest reads a new private file");
	guest_write(&t, 0, t.npages, tags, "guest writes a new private file");
	check_pages(t.mem, private, NULL, "new file without INIT_SHARED, after guest writes");

	gmem_set_shared(t.fd, 0, t.size);
	check_pages(t.mem, shared, tags, "new private file converted to shared");

	gmem_test_destroy(&t);
	return KSFT_PASS;
}

/*
 * c. Converting page N leaves its neighbours, and their data, alone.  With
 * huge pages, this is "precision_<size>", one huge page at a time.
 */
static int test_precision_pages(void)
{
	const size_t npages = scenario_pages(5);
	char what[64], st[MAX_PAGES + 1];
	u64 tags[MAX_PAGES], private = 0;
	struct gmem_test t;
	const char *odd;
	size_t i, page;

	gmem_test_init(&t, npages, GMEM_FLAGS_SHARED, true);
	set_tags(tags, t.npages, 1);
	for (i = 0; i < t.npages; i++)
		host_fill(t.mem, i, tags[i]);

	for (page = 0; page < npages; page += 2) {
		snprintf(what, sizeof(what), "only page %lu converted to private", page);

		gmem_set_private(t.fd, page * page_size, page_size);
		check_pages(t.mem, page_states(st, npages, BIT_ULL(page)), tags, what);
		guest_check(&t, 0, t.npages, tags, what);

		gmem_set_shared(t.fd, page * page_size, page_size);
		check_pages(t.mem, page_states(st, npages, 0), tags,
			    "page converted back to shared");
	}

	for (page = 1; page < npages; page += 2) {
		gmem_set_private(t.fd, page * page_size, page_size);
		private |= BIT_ULL(page);
	}
	odd = npages > 3 ? "pages 1 and 3 converted to private" : "page 1 converted to private";
	check_pages(t.mem, page_states(st, npages, private), tags, odd);
	guest_check(&t, 0, t.npages, tags, odd);

	gmem_test_destroy(&t);
	return KSFT_PASS;
}

/*
 * c. With 4K pages, see test_precision_pages().  With huge pages, converting
 * part of a huge page splits its folio: exactly the 4K pieces in the range
 * change state, their data and the rest of the file stay, and converting the
 * pages back merges it.
 */
static int test_precision(void)
{
	const struct {
		const char *what;
		u64 offset;
		u64 size;
		u64 attributes;
	} cases[] = {
		{ "first 4K of shared page 0 to private", 0, base_page_size,
		  KVM_MEMORY_ATTRIBUTE_PRIVATE },
		{ "middle 4K of shared page 0 to private", page_size / 2, base_page_size,
		  KVM_MEMORY_ATTRIBUTE_PRIVATE },
		{ "last 4K of shared page 0 to private", page_size - base_page_size,
		  base_page_size, KVM_MEMORY_ATTRIBUTE_PRIVATE },
		{ "one page's size, 4K into page 0, to private", base_page_size, page_size,
		  KVM_MEMORY_ATTRIBUTE_PRIVATE },
		{ "page 0 and 4K of page 1 to private", 0, page_size + base_page_size,
		  KVM_MEMORY_ATTRIBUTE_PRIVATE },
		{ "first 4K of private page 1 to shared", page_size, base_page_size, 0 },
		{ "middle 4K of private page 1 to shared", page_size + page_size / 2,
		  base_page_size, 0 },
		{ "all but the last 4K of the file to shared", 0,
		  2 * page_size - base_page_size, 0 },
	};
	u64 tags[MAX_PAGES], off;
	struct gmem_test t;
	size_t i, page, smp;
	bool private;
	int r;

	if (!gmem_hugetlb())
		return test_precision_pages();

	/* Page 0 shared, page 1 private, both holding data. */
	gmem_test_init(&t, 2, GMEM_FLAGS_SHARED, true);
	set_tags(tags, t.npages, 1);
	for (i = 0; i < t.npages; i++)
		host_fill(t.mem, i, tags[i]);
	gmem_set_private(t.fd, page_size, page_size);

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		r = __gmem_set_attributes(t.fd, cases[i].offset, cases[i].size,
					  cases[i].attributes, NULL);
		TEST_ASSERT(!r,
			    "Converting %s (offset 0x%lx size 0x%lx) of a %s HugeTLB file failed, errno = %d (%s)",
			    cases[i].what, cases[i].offset, cases[i].size,
			    backing->name, errno, strerror(errno));

		/* Each sampled 4K piece has the state its offset says. */
		for (page = 0; page < t.npages; page++) {
			for (smp = 0; smp < nr_samples; smp++) {
				off = page * page_size + sample_offset(page_size, smp);
				private = page == 1;
				if (off >= cases[i].offset &&
				    off < cases[i].offset + cases[i].size)
					private = cases[i].attributes;
				check_sample(t.mem, page, smp, private ? 'P' : 'S',
					     tags[page], cases[i].what);
			}
		}

		/* Back to one shared and one private page, data intact. */
		gmem_set_shared(t.fd, 0, page_size);
		gmem_set_private(t.fd, page_size, page_size);
		check_pages(t.mem, "SP", tags, "after converting back");
		guest_check(&t, 0, t.npages, tags, cases[i].what);
	}
	guest_check(&t, 0, t.npages, tags, "guest reads the file after the partial conversions");

	/* Whole huge pages still convert. */
	gmem_set_shared(t.fd, page_size, page_size);
	check_pages(t.mem, "SS", tags, "page 1 converted back to shared");

	gmem_test_destroy(&t);
	return KSFT_PASS;
}

/* d. Converting pages that were never allocated, then allocating by fault. */
static int test_convert_unallocated(void)
{
	const size_t npages = scenario_pages(4), nshared = min_t(size_t, npages - 1, 2);
	u64 zero[MAX_PAGES] = {}, tags[MAX_PAGES] = {};
	struct kvm_pre_fault_memory range = {};
	char st[MAX_PAGES + 1];
	struct gmem_test t;
	u64 pfn;
	int r;

	/* INIT_SHARED file, two pages made private before they exist. */
	gmem_test_init(&t, npages, GMEM_FLAGS_SHARED, true);
	gmem_set_private(t.fd, 0, 2 * page_size);

	/* Page 0 is allocated by a guest fault. */
	guest_check(&t, 0, 1, zero, "guest reads a never allocated private page");
	tags[0] = TAG(1, 0);
	guest_write(&t, 0, 1, tags, "guest writes a never allocated private page");

	/* Page 1 is allocated by KVM_PRE_FAULT_MEMORY, if KVM has it. */
	if (kvm_has_cap(KVM_CAP_PRE_FAULT_MEMORY)) {
		range.gpa = TEST_GPA + page_size;
		range.size = page_size;
		do {
			r = __vcpu_ioctl(t.vcpu, KVM_PRE_FAULT_MEMORY, &range);
		} while (r && errno == EINTR);
		TEST_ASSERT(!r && !range.size,
			    "KVM_PRE_FAULT_MEMORY of a private, never allocated page failed, r = %d errno = %d left 0x%llx",
			    r, errno, range.size);
	} else {
		ksft_print_msg("No KVM_PRE_FAULT_MEMORY, the guest allocates page 1\n");
	}
	guest_check(&t, 1, 1, zero, "guest reads page 1 after pre-fault");

	/* Pages 2 and 3, if any, are allocated by host faults. */
	check_pages(t.mem, page_states(st, npages, page_mask(0, 2)), tags,
		    "pages 0-1 converted before allocation");
	if (npages > 2) {
		tags[2] = TAG(1, 2);
		host_fill(t.mem, 2, tags[2]);
		guest_check(&t, 2, 1, &tags[2], "guest reads a page the host allocated");
	}

	gmem_set_shared(t.fd, 0, 2 * page_size);
	check_pages(t.mem, page_states(st, npages, 0), tags,
		    "pages 0-1 converted back to shared");
	gmem_test_destroy(&t);

	/* Private file, pages 1-2 (or just 1) made shared before they exist. */
	gmem_test_init(&t, npages, GUEST_MEMFD_FLAG_MMAP, true);
	gmem_set_shared(t.fd, page_size, nshared * page_size);
	check_pages(t.mem, page_states(st, npages, ~page_mask(1, nshared)), zero,
		    msg("pages 1-%lu converted to shared before allocation", nshared));

	memset(tags, 0, sizeof(tags));
	tags[1] = TAG(2, 1);
	host_fill(t.mem, 1, tags[1]);
	pfn = gmem_pagemap_pfn(page_ptr(t.mem, 1));
	TEST_ASSERT(pfn, "No PFN for page 1 after the host faulted it in");
	guest_check(&t, 0, t.npages, tags, "guest reads pages converted before allocation");

	gmem_test_destroy(&t);
	return KSFT_PASS;
}

/*
 * How test_mixed_allocation() allocates each page of a file: 'F' fallocate(),
 * 'W' a write fault, 'R' a read fault, 'B' both fallocate() and a write fault,
 * '-' not at all; and the pages that one conversion covers.
 */
struct mixed_layout {
	const char *alloc;
	size_t first;
	size_t nconv;
};

static void mixed_allocation(const struct mixed_layout *l)
{
	const size_t npages = strlen(l->alloc), last = l->first + l->nconv - 1;
	u64 before[MAX_PAGES] = {}, after[MAX_PAGES] = {};
	size_t i, written = npages;
	char st[MAX_PAGES + 1];
	struct gmem_test t;
	u64 pfn = 0;

	gmem_test_init(&t, npages, GMEM_FLAGS_SHARED, true);

	for (i = 0; i < npages; i++) {
		if (l->alloc[i] == 'F' || l->alloc[i] == 'B')
			kvm_fallocate(t.fd, FALLOC_FL_KEEP_SIZE, i * page_size, page_size);

		if (l->alloc[i] == 'W' || l->alloc[i] == 'B') {
			before[i] = TAG(1, i);
			host_fill(t.mem, i, before[i]);
		}
		if (l->alloc[i] == 'W' && written == npages)
			written = i;

		if (l->alloc[i] == 'R') {
			memset(st, '-', i);
			st[i] = 'S';
			st[i + 1] = '\0';
			check_pages(t.mem, st, before, msg("read fault of page %lu", i));
		}
	}

	if (written < npages) {
		pfn = gmem_pagemap_pfn(page_ptr(t.mem, written));
		TEST_ASSERT(pfn, "No PFN for page %lu after the host wrote it", written);
	}

	gmem_set_private(t.fd, l->first * page_size, l->nconv * page_size);
	check_pages(t.mem, page_states(st, npages, page_mask(l->first, l->nconv)), before,
		    msg("pages %lu-%lu converted to private", l->first, last));
	guest_check(&t, l->first, l->nconv, &before[l->first],
		    msg("guest reads pages %lu-%lu after the conversion", l->first, last));

	for (i = 0; i < npages; i++)
		after[i] = i >= l->first && i <= last ? TAG(2, i) : before[i];
	guest_write(&t, l->first, l->nconv, &after[l->first],
		    msg("guest writes pages %lu-%lu", l->first, last));

	gmem_set_shared(t.fd, l->first * page_size, l->nconv * page_size);
	check_pages(t.mem, page_states(st, npages, 0), after,
		    msg("pages %lu-%lu converted back to shared", l->first, last));
	if (written < npages)
		TEST_ASSERT(gmem_pagemap_pfn(page_ptr(t.mem, written)) == pfn,
			    "Page %lu moved during the conversions", written);

	gmem_test_destroy(&t);
}

/*
 * e. One conversion across pages allocated in different ways: by fallocate(),
 * by a write fault, by a read fault, by both fallocate() and a write, and not
 * at all.  With at most two pages per file (1G), two kinds at a time.
 */
static int test_mixed_allocation(void)
{
	static const struct mixed_layout all = { "FFWWRB--", 1, 6 };
	static const struct mixed_layout pairs[] = {
		{ "WF", 0, 2 }, { "RB", 0, 2 }, { "-W", 0, 2 },
	};
	size_t i;

	if (strlen(all.alloc) <= backing->max_pages) {
		mixed_allocation(&all);
		return KSFT_PASS;
	}

	for (i = 0; i < ARRAY_SIZE(pairs); i++)
		mixed_allocation(&pairs[i]);
	return KSFT_PASS;
}

/* f. PUNCH_HOLE and a failed ftruncate() don't change shared vs. private. */
static int test_punch_hole_truncate(void)
{
	const off_t sizes[] = { 0, page_size, 3 * page_size, 5 * page_size, SZ_1M };
	/* Private page 1 and shared page 2, or 0 if there are only two. */
	const size_t npages = scenario_pages(4), shared = npages > 2 ? 2 : 0;
	u64 tags[MAX_PAGES], zero[MAX_PAGES] = {}, tag1 = TAG(2, 1);
	const int punch = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE;
	char st[MAX_PAGES + 1], all_shared[MAX_PAGES + 1];
	struct gmem_test t;
	struct stat sb;
	size_t i;
	int r;

	page_states(st, npages, BIT_ULL(1));
	page_states(all_shared, npages, 0);

	gmem_test_init(&t, npages, GMEM_FLAGS_SHARED, true);
	set_tags(tags, t.npages, 1);
	for (i = 0; i < t.npages; i++)
		host_fill(t.mem, i, tags[i]);

	gmem_set_private(t.fd, page_size, page_size);
	guest_write(&t, 1, 1, &tag1, "guest writes private page 1");

	/* Punch the private page: it stays private and comes back zeroed. */
	kvm_fallocate(t.fd, punch, page_size, page_size);
	check_pages(t.mem, st, tags, "private page 1 punched");
	guest_check(&t, 1, 1, zero, "guest reads punched private page 1");

	/* Punch a shared page: it stays shared and reads zero. */
	kvm_fallocate(t.fd, punch, shared * page_size, page_size);
	tags[1] = 0;
	tags[shared] = 0;
	check_pages(t.mem, st, tags, msg("shared page %lu punched", shared));
	guest_check(&t, shared, 1, zero, msg("guest reads punched shared page %lu", shared));

	/* ftruncate() fails, whatever the size, and changes nothing. */
	tags[1] = tag1;
	guest_write(&t, 1, 1, &tag1, "guest rewrites private page 1");
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		r = ftruncate(t.fd, sizes[i]);
		TEST_ASSERT(r == -1,
			    "ftruncate(0x%lx) of a guest_memfd succeeded", sizes[i]);
		TEST_ASSERT(!fstat(t.fd, &sb) && sb.st_size == t.size,
			    "guest_memfd size is 0x%lx after a failed ftruncate(0x%lx)",
			    sb.st_size, sizes[i]);
		check_pages(t.mem, st, tags, "after a failed ftruncate()");
	}
	guest_check(&t, 0, t.npages, tags, "guest reads the file after failed ftruncate()s");

	/* Punch everything, then convert page 1 back. */
	kvm_fallocate(t.fd, punch, 0, t.size);
	check_pages(t.mem, st, zero, "whole file punched");
	gmem_set_shared(t.fd, page_size, page_size);
	check_pages(t.mem, all_shared, zero, "punched page 1 converted to shared");

	gmem_test_destroy(&t);
	return KSFT_PASS;
}

/* The first @n 4K pages of page 0, tagged @tag as one run of words. */
static void fill_4k(u8 *mem, size_t n, u64 tag)
{
	u64 *p = (u64 *)mem;
	size_t i;

	for (i = 0; i < n * PAGE_SIZE / sizeof(u64); i++)
		p[i] = tag_word(tag, i);
}

/* Check 4K pages [0, strlen(@states)) of page 0, see fill_4k(). */
static void check_4k_pages(u8 *mem, const char *states, u64 tag,
			   const char *what)
{
	char where[32];
	size_t k;

	for (k = 0; states[k]; k++) {
		snprintf(where, sizeof(where), "4K page %lu", k);
		check_4k((u64 *)(mem + k * PAGE_SIZE), k * PAGE_SIZE / sizeof(u64),
			 states[k], tag, where, what);
	}
}

/*
 * g, with huge pages: GUP pins a page of a whole HugeTLB folio (a special
 * PFN mapping, through the mapping's gup_special_page hook) and a 4K piece of
 * a split block alike.  A pin on a page of a whole folio holds the folio:
 * no page of it can become private (EAGAIN, nothing changed) until the
 * unpin.  A pin on one shared piece makes a conversion over it fail with
 * EAGAIN at that page and change nothing; its neighbours convert, and so
 * does the page once unpinned.
 */
static int gup_pin_hugetlb(int gup_fd)
{
	const u32 pin_flags[] = {
		0, PIN_LONGTERM_TEST_FLAG_USE_WRITE | PIN_LONGTERM_TEST_FLAG_USE_FAST,
	};
	const size_t pinned = 3, first = 1, n = 4;
	struct pin_longterm_test pin = {};
	u64 tag = TAG(1, 0), error_offset, buf_addr;
	struct gmem_test t;
	u8 *buf;
	size_t i;
	int r;

	gmem_test_init(&t, 1, GMEM_FLAGS_SHARED, true);
	host_fill(t.mem, 0, tag);
	fill_4k(t.mem, 8, tag);

	buf = calloc(1, base_page_size);
	TEST_ASSERT(buf, "calloc");
	buf_addr = (uintptr_t)buf;

	/* What a VMM does to preallocate and lock guest memory works. */
	TEST_ASSERT(!madvise(t.mem, page_size, MADV_POPULATE_WRITE),
		    "MADV_POPULATE_WRITE of a whole %s folio, errno %d", backing->name, errno);
	TEST_ASSERT(!mlock(t.mem, page_size) && !munlock(t.mem, page_size),
		    "mlock()/munlock() of a whole %s folio, errno %d", backing->name, errno);
	check_4k_pages(t.mem, "SSSSSSSS", tag, "after MADV_POPULATE_WRITE and mlock()");

	/* GUP-fast cannot take special PTEs: USE_FAST falls back to the slow path. */
	for (i = 0; i < ARRAY_SIZE(pin_flags); i++) {
		pin.addr = (uintptr_t)t.mem + pinned * base_page_size;
		pin.size = base_page_size;
		pin.flags = pin_flags[i];
		r = ioctl(gup_fd, PIN_LONGTERM_TEST_START, &pin);
		TEST_ASSERT(!r,
			    "PIN_LONGTERM_TEST_START (flags 0x%x) of 4K page %lu of a whole %s folio failed, errno %d (%s)",
			    pin.flags, pinned, backing->name, errno, strerror(errno));
		r = ioctl(gup_fd, PIN_LONGTERM_TEST_READ, &buf_addr);
		TEST_ASSERT(!r, "PIN_LONGTERM_TEST_READ failed, errno %d", errno);
		TEST_ASSERT(!memcmp(buf, t.mem + pinned * base_page_size, base_page_size),
			    "The pinned page of the whole folio differs from the host's view");

		/* The pin holds the whole folio: no page of it may go private. */
		error_offset = ~0ull;
		r = __gmem_set_attributes(t.fd, 0, base_page_size,
					  KVM_MEMORY_ATTRIBUTE_PRIVATE, &error_offset);
		TEST_ASSERT(r == -1 && errno == EAGAIN && error_offset < page_size,
			    "Converting 4K page 0 of a %s folio pinned at page %lu: r = %d errno = %d error_offset = 0x%lx, expected EAGAIN",
			    backing->name, pinned, r, errno, error_offset);
		check_4k_pages(t.mem, "SSSSSSSS", tag, "after the EAGAIN of a pinned whole folio");

		r = ioctl(gup_fd, PIN_LONGTERM_TEST_STOP);
		TEST_ASSERT(!r, "PIN_LONGTERM_TEST_STOP failed, errno %d", errno);
	}

	/* 4K page 0 private: the folio splits, page 3 is an ordinary page. */
	gmem_set_private(t.fd, 0, base_page_size);
	pin.addr = (uintptr_t)t.mem + pinned * base_page_size;
	pin.flags = PIN_LONGTERM_TEST_FLAG_USE_WRITE;
	r = ioctl(gup_fd, PIN_LONGTERM_TEST_START, &pin);
	TEST_ASSERT(!r,
		    "PIN_LONGTERM_TEST_START of shared 4K page %lu of a split %s folio failed, errno %d (%s)",
		    pinned, backing->name, errno, strerror(errno));

	/* The pin reaches the page the host maps. */
	r = ioctl(gup_fd, PIN_LONGTERM_TEST_READ, &buf_addr);
	TEST_ASSERT(!r, "PIN_LONGTERM_TEST_READ failed, errno %d", errno);
	TEST_ASSERT(!memcmp(buf, t.mem + pinned * base_page_size, base_page_size),
		    "The pinned page differs from the host's view of 4K page %lu", pinned);

	error_offset = 0;
	r = __gmem_set_attributes(t.fd, first * base_page_size, n * base_page_size,
				  KVM_MEMORY_ATTRIBUTE_PRIVATE, &error_offset);
	TEST_ASSERT(r == -1 && errno == EAGAIN,
		    "Converting 4K pages 1-4 with page %lu pinned should fail with EAGAIN, got r = %d errno = %d",
		    pinned, r, errno);
	TEST_ASSERT(error_offset == pinned * base_page_size,
		    "error_offset = 0x%lx, expected 0x%lx (the pinned page)",
		    error_offset, pinned * base_page_size);
	check_4k_pages(t.mem, "PSSSSSSS", tag, "after the EAGAIN failure");

	/* The neighbours convert; the pinned page alone still fails. */
	gmem_set_private(t.fd, first * base_page_size, 2 * base_page_size);
	gmem_set_private(t.fd, 4 * base_page_size, base_page_size);
	r = __gmem_set_attributes(t.fd, pinned * base_page_size, base_page_size,
				  KVM_MEMORY_ATTRIBUTE_PRIVATE, &error_offset);
	TEST_ASSERT(r == -1 && errno == EAGAIN && error_offset == pinned * base_page_size,
		    "Converting pinned 4K page %lu: r = %d errno = %d error_offset = 0x%lx",
		    pinned, r, errno, error_offset);
	check_4k_pages(t.mem, "PPPSPSSS", tag, "neighbours of the pinned page converted");

	r = ioctl(gup_fd, PIN_LONGTERM_TEST_STOP);
	TEST_ASSERT(!r, "PIN_LONGTERM_TEST_STOP failed, errno %d", errno);
	gmem_set_private(t.fd, pinned * base_page_size, base_page_size);
	check_4k_pages(t.mem, "PPPPPSSS", tag, "pinned page converted after the unpin");

	/* All shared again: one folio, data kept, the guest sees it too. */
	gmem_set_shared(t.fd, 0, page_size);
	check_4k_pages(t.mem, "SSSSSSSS", tag, "converted back to shared");
	guest_check(&t, 0, 1, &tag, "guest reads the page after the pin");

	free(buf);
	close(gup_fd);
	gmem_test_destroy(&t);
	return KSFT_PASS;
}

/*
 * g. A long-term GUP pin on one page makes shared->private of a range fail
 * with EAGAIN, report that page, and change nothing.
 */
static int test_gup_pin(void)
{
	const size_t pinned = 3, first = 1, npages = 4;
	struct pin_longterm_test pin = {};
	u64 tags[MAX_PAGES], error_offset;
	struct gmem_test t;
	int gup_fd, r;
	size_t i;

	gup_fd = open(GMEM_GUP_TEST_FILE, O_RDWR);
	if (gup_fd < 0) {
		ksft_print_msg("Can't open %s (CONFIG_GUP_TEST, debugfs): %s\n",
			       GMEM_GUP_TEST_FILE, strerror(errno));
		return KSFT_SKIP;
	}

	if (gmem_hugetlb())
		return gup_pin_hugetlb(gup_fd);

	gmem_test_init(&t, 6, GMEM_FLAGS_SHARED, true);
	set_tags(tags, t.npages, 1);
	for (i = 0; i < t.npages; i++)
		host_fill(t.mem, i, tags[i]);

	pin.addr = (uintptr_t)page_ptr(t.mem, pinned);
	pin.size = page_size;
	r = ioctl(gup_fd, PIN_LONGTERM_TEST_START, &pin);
	TEST_ASSERT(!r, "PIN_LONGTERM_TEST_START of page %lu failed, errno %d (%s)",
		    pinned, errno, strerror(errno));

	error_offset = 0;
	r = __gmem_set_attributes(t.fd, first * page_size, npages * page_size,
				  KVM_MEMORY_ATTRIBUTE_PRIVATE, &error_offset);
	TEST_ASSERT(r == -1 && errno == EAGAIN,
		    "Converting pages 1-4 with page %lu pinned should fail with EAGAIN, got r = %d errno = %d",
		    pinned, r, errno);
	TEST_ASSERT(error_offset == pinned * page_size,
		    "error_offset = 0x%lx, expected 0x%lx (the pinned page)",
		    error_offset, pinned * page_size);
	check_pages(t.mem, "SSSSSS", tags, "after the EAGAIN failure");
	guest_check(&t, 0, t.npages, tags, "guest reads the file after the EAGAIN failure");

	r = ioctl(gup_fd, PIN_LONGTERM_TEST_STOP);
	TEST_ASSERT(!r, "PIN_LONGTERM_TEST_STOP failed, errno %d", errno);

	gmem_set_private(t.fd, first * page_size, npages * page_size);
	check_pages(t.mem, "SPPPPS", tags, "conversion retried after unpinning");
	guest_check(&t, first, npages, &tags[first], "guest reads pages 1-4 after the retry");

	gmem_set_shared(t.fd, first * page_size, npages * page_size);
	check_pages(t.mem, "SSSSSS", tags, "pages 1-4 converted back to shared");

	close(gup_fd);
	gmem_test_destroy(&t);
	return KSFT_PASS;
}

static void pipe_send(int fd)
{
	char c = 0;

	TEST_ASSERT(write(fd, &c, 1) == 1, "pipe write failed, errno %d", errno);
}

static void pipe_wait(int fd, const char *who)
{
	char c;

	TEST_ASSERT(read(fd, &c, 1) == 1, "%s went away", who);
}

/*
 * h. Two processes, and two mappings, see the same state: the child converts
 * page 1, the parent converts page 2 (page 0 if there are only two), each
 * observes the other's conversion.
 */
static int test_fork(void)
{
	const size_t npages = scenario_pages(4), cpage = 1, ppage = npages > 2 ? 2 : 0;
	int to_child[2], to_parent[2], status;
	char st[MAX_PAGES + 1];
	u64 tags[MAX_PAGES];
	struct gmem_test t;
	u8 *mem2;
	pid_t pid;
	size_t i;

	gmem_test_init(&t, npages, GMEM_FLAGS_SHARED, false);
	set_tags(tags, t.npages, 1);
	for (i = 0; i < t.npages; i++)
		host_fill(t.mem, i, tags[i]);

	TEST_ASSERT(!pipe(to_child) && !pipe(to_parent), "pipe() failed");
	pid = fork();
	TEST_ASSERT(pid >= 0, "fork() failed, errno %d", errno);

	if (!pid) {
		close(to_child[1]);
		close(to_parent[0]);

		gmem_set_private(t.fd, cpage * page_size, page_size);
		check_pages(t.mem, page_states(st, npages, BIT_ULL(cpage)), tags,
			    msg("child, after converting page %lu", cpage));
		pipe_send(to_parent[1]);

		pipe_wait(to_child[0], "parent");
		check_pages(t.mem, page_states(st, npages, BIT_ULL(cpage) | BIT_ULL(ppage)),
			    tags, msg("child, after the parent converted page %lu", ppage));
		gmem_set_shared(t.fd, cpage * page_size, page_size);
		tags[cpage] = TAG(2, cpage);
		host_fill(t.mem, cpage, tags[cpage]);
		pipe_send(to_parent[1]);
		_exit(0);
	}

	close(to_child[0]);
	close(to_parent[1]);

	pipe_wait(to_parent[0], "child");
	mem2 = gmem_mmap(t.fd, t.size);
	page_states(st, npages, BIT_ULL(cpage));
	check_pages(t.mem, st, tags, msg("parent, after the child converted page %lu", cpage));
	check_pages(mem2, st, tags,
		    msg("parent's 2nd mapping, after the child converted page %lu", cpage));

	gmem_set_private(t.fd, ppage * page_size, page_size);
	pipe_send(to_child[1]);

	pipe_wait(to_parent[0], "child");
	tags[cpage] = TAG(2, cpage);
	page_states(st, npages, BIT_ULL(ppage));
	check_pages(t.mem, st, tags,
		    msg("parent, after the child converted page %lu back", cpage));
	check_pages(mem2, st, tags,
		    msg("parent's 2nd mapping, child converted page %lu back", cpage));

	TEST_ASSERT(waitpid(pid, &status, 0) == pid, "waitpid() failed, errno %d", errno);
	TEST_ASSERT(WIFEXITED(status) && !WEXITSTATUS(status),
		    "Child failed, status 0x%x", status);

	gmem_set_shared(t.fd, ppage * page_size, page_size);
	check_pages(mem2, page_states(st, npages, 0), tags,
		    "parent's 2nd mapping, all shared again");

	close(to_child[1]);
	close(to_parent[0]);
	kvm_munmap(mem2, t.size);
	gmem_test_destroy(&t);
	return KSFT_PASS;
}

struct sigbus_thread {
	pthread_barrier_t *barrier;
	size_t page;
	u8 *addr;
	bool read_ok, write_ok;
	int nr_sigbus;	/* host_touch() checks each SIGBUS's address */
};

static void *sigbus_thread_fn(void *data)
{
	struct sigbus_thread *st = data;

	pthread_barrier_wait(st->barrier);
	st->read_ok = host_touch(st->addr, false);
	st->write_ok = host_touch(st->addr, true);
	st->nr_sigbus = sigbus_probe_count;
	return NULL;
}

/*
 * i. Each thread touching a private page gets its own SIGBUS.  Thread i
 * touches page 1 + i (page 1 if there are only two), in the last 4K of a
 * huge page for thread 1.
 */
static int test_sigbus_per_thread(void)
{
	const size_t npages = scenario_pages(4), nprivate = min_t(size_t, npages - 1, 2);
	struct sigbus_thread st[2] = {};
	char states[MAX_PAGES + 1];
	pthread_barrier_t barrier;
	u64 tags[MAX_PAGES];
	pthread_t threads[2];
	int nr_main = sigbus_probe_count;
	struct gmem_test t;
	size_t i;

	gmem_test_init(&t, npages, GMEM_FLAGS_SHARED, false);
	set_tags(tags, t.npages, 1);
	for (i = 0; i < t.npages; i++)
		host_fill(t.mem, i, tags[i]);
	gmem_set_private(t.fd, page_size, nprivate * page_size);

	pthread_barrier_init(&barrier, NULL, ARRAY_SIZE(st));
	for (i = 0; i < ARRAY_SIZE(st); i++) {
		st[i].barrier = &barrier;
		st[i].page = 1 + min(i, nprivate - 1);
		st[i].addr = page_ptr(t.mem, st[i].page) +
			     i * (page_size - base_page_size) + 64 * i;
		kvm_pthread_create(&threads[i], NULL, sigbus_thread_fn, &st[i]);
	}
	for (i = 0; i < ARRAY_SIZE(st); i++)
		kvm_pthread_join(threads[i], NULL);
	pthread_barrier_destroy(&barrier);

	for (i = 0; i < ARRAY_SIZE(st); i++) {
		TEST_ASSERT(!st[i].read_ok && !st[i].write_ok,
			    "Thread %lu touched private page %lu without SIGBUS (read %d, write %d)",
			    i, st[i].page, st[i].read_ok, st[i].write_ok);
		TEST_ASSERT(st[i].nr_sigbus == 2,
			    "Thread %lu got %d SIGBUS, expected 2 (one per access)",
			    i, st[i].nr_sigbus);
	}
	TEST_ASSERT(sigbus_probe_count == nr_main,
		    "The main thread got %d SIGBUS for the other threads' accesses",
		    sigbus_probe_count - nr_main);

	/* The process survived and the state is what it was. */
	check_pages(t.mem, page_states(states, npages, page_mask(1, nprivate)), tags,
		    "after the threads' SIGBUS");

	gmem_test_destroy(&t);
	return KSFT_PASS;
}

struct einval_case {
	const char *what;
	u64 offset;
	u64 size;
	u64 flags;
	u64 error_offset;
	int reserved;		/* 1 + index of a non-zero reserved[] entry */
};

static void check_einval(struct gmem_test *t, const struct einval_case *c,
			 u64 attributes, const u64 *tags, const char *states)
{
	struct kvm_memory_attributes2 attr = {
		.offset = c->offset,
		.size = c->size,
		.attributes = attributes,
		.flags = c->flags,
		.error_offset = c->error_offset,
	};
	int r;

	if (c->reserved)
		attr.reserved[c->reserved - 1] = 1;

	r = ioctl(t->fd, KVM_SET_MEMORY_ATTRIBUTES2, &attr);
	TEST_ASSERT(r == -1 && errno == EINVAL,
		    "%s (offset 0x%lx size 0x%lx attributes 0x%lx flags 0x%lx error_offset 0x%lx reserved %d): expected EINVAL, got r = %d errno = %d",
		    c->what, c->offset, c->size, attributes, c->flags,
		    c->error_offset, c->reserved - 1, r, errno);
	check_pages(t->mem, states, tags, c->what);
}

/*
 * j. Invalid arguments fail with EINVAL and change nothing.  With huge pages
 * too: the "unaligned" cases are not 4K aligned.
 */
static int test_einval(void)
{
	const size_t npages = scenario_pages(4);
	const u64 last = (npages - 1) * page_size, size = npages * page_size;
	const struct einval_case cases[] = {
		{ "unaligned offset", 1, page_size },
		{ "unaligned offset", base_page_size / 2, page_size },
		{ "unaligned offset", last + 1, page_size },
		{ "unaligned size", 0, 1 },
		{ "unaligned size", 0, page_size - 1 },
		{ "unaligned size", 0, page_size + 1 },
		{ "zero size", 0, 0 },
		{ "zero size", last, 0 },
		{ "offset + size overflows", -page_size, 2 * page_size },
		{ "offset + size overflows", page_size, -page_size },
		{ "offset + size overflows", last, -(2 * page_size) },
		{ "range beyond the file", 0, size + page_size },
		{ "range beyond the file", last, 2 * page_size },
		{ "range beyond the file", size, page_size },
		{ "range beyond the file", size * 16, page_size },
		{ "non-zero flags", 0, size, .flags = 1 },
		{ "non-zero flags", 0, size, .flags = 1ull << 63 },
		{ "non-zero error_offset", 0, size, .error_offset = 1 },
		{ "non-zero error_offset", 0, size, .error_offset = last },
	};
	const size_t nr_reserved = ARRAY_SIZE(((struct kvm_memory_attributes2 *)0)->reserved);
	const u64 attrs[] = { KVM_MEMORY_ATTRIBUTE_PRIVATE, 0 };
	struct einval_case c = { .offset = 0, .size = size };
	char st[MAX_PAGES + 1];
	u64 tags[MAX_PAGES];
	struct gmem_test t;
	size_t i, j;
	int bit;

	/* The last page private, the others shared: any conversion would show. */
	page_states(st, npages, BIT_ULL(npages - 1));
	gmem_test_init(&t, npages, GMEM_FLAGS_SHARED, false);
	set_tags(tags, t.npages, 1);
	for (i = 0; i < t.npages; i++)
		host_fill(t.mem, i, tags[i]);
	gmem_set_private(t.fd, last, page_size);

	for (j = 0; j < ARRAY_SIZE(attrs); j++) {
		for (i = 0; i < ARRAY_SIZE(cases); i++)
			check_einval(&t, &cases[i], attrs[j], tags, st);

		c.what = "non-zero reserved[]";
		for (i = 0; i < nr_reserved; i++) {
			c.reserved = i + 1;
			check_einval(&t, &c, attrs[j], tags, st);
		}
		c.reserved = 0;
	}

	c.what = "unknown attribute";
	for (bit = 0; bit < 64; bit++) {
		if (BIT_ULL(bit) == KVM_MEMORY_ATTRIBUTE_PRIVATE)
			continue;
		check_einval(&t, &c, BIT_ULL(bit), tags, st);
		check_einval(&t, &c, BIT_ULL(bit) | KVM_MEMORY_ATTRIBUTE_PRIVATE, tags, st);
	}

	/* The ioctl does work, and the last page kept its data while private. */
	gmem_set_shared(t.fd, last, page_size);
	check_pages(t.mem, page_states(st, npages, 0), tags,
		    msg("page %lu converted back to shared", npages - 1));

	gmem_test_destroy(&t);
	return KSFT_PASS;
}

/*
 * k. The guest converts with KVM_HC_MAP_GPA_RANGE, the host handles the exit
 * with KVM_SET_MEMORY_ATTRIBUTES2; data the guest writes while the pages are
 * private is what the host reads once they're shared.  Pages 1-2, or just 1
 * if there are only two.
 */
/* The guest converts the 4K page at byte @offset of the file. */
static void guest_map_4k(struct gmem_test *t, enum guest_op op, u64 offset,
			 const char *what)
{
	guest_op_4k = true;
	guest_do(t, op, offset / base_page_size, 1, NULL, what);
	guest_op_4k = false;
}

static int test_guest_map_gpa_range(void)
{
	const size_t npages = scenario_pages(4), n = min_t(size_t, npages - 1, 2);
	u64 tags[MAX_PAGES], after[MAX_PAGES];
	char st[MAX_PAGES + 1];
	struct gmem_test t;
	size_t i;

	if (!(kvm_check_cap(KVM_CAP_EXIT_HYPERCALL) & BIT(KVM_HC_MAP_GPA_RANGE))) {
		ksft_print_msg("KVM_CAP_EXIT_HYPERCALL doesn't support KVM_HC_MAP_GPA_RANGE\n");
		return KSFT_SKIP;
	}

	gmem_test_init(&t, npages, GMEM_FLAGS_SHARED, true);
	vm_enable_cap(t.vm, KVM_CAP_EXIT_HYPERCALL, BIT(KVM_HC_MAP_GPA_RANGE));

	set_tags(tags, t.npages, 1);
	for (i = 0; i < t.npages; i++)
		host_fill(t.mem, i, tags[i]);
	guest_check(&t, 0, t.npages, tags, "guest reads the host's data");

	guest_do(&t, GUEST_MAP_PRIVATE, 1, n, NULL,
		 msg("guest maps pages 1-%lu private", n));
	TEST_ASSERT(t.nr_map_gpa_range == 1,
		    "Expected one KVM_HC_MAP_GPA_RANGE exit, got %d", t.nr_map_gpa_range);
	page_states(st, npages, page_mask(1, n));
	check_pages(t.mem, st, tags, msg("guest mapped pages 1-%lu private", n));
	guest_check(&t, 0, t.npages, tags,
		    msg("guest reads pages 1-%lu after mapping them private", n));

	memcpy(after, tags, sizeof(after));
	for (i = 1; i <= n; i++)
		after[i] = TAG(2, i);
	guest_write(&t, 1, n, &after[1], msg("guest writes private pages 1-%lu", n));

	guest_do(&t, GUEST_MAP_SHARED, 1, n, NULL,
		 msg("guest maps pages 1-%lu shared", n));
	TEST_ASSERT(t.nr_map_gpa_range == 2,
		    "Expected two KVM_HC_MAP_GPA_RANGE exits, got %d", t.nr_map_gpa_range);
	check_pages(t.mem, page_states(st, npages, 0), after,
		    msg("guest mapped pages 1-%lu shared", n));
	guest_check(&t, 0, t.npages, after,
		    msg("guest reads pages 1-%lu after mapping them shared", n));

	/* Inside a huge page: the guest converts only the 4K in its middle. */
	if (gmem_hugetlb()) {
		guest_map_4k(&t, GUEST_MAP_PRIVATE, page_size + page_size / 2,
			     "guest maps the middle 4K of page 1 private");
		check_sample(t.mem, 1, 0, 'S', after[1], "middle 4K of page 1 private");
		check_sample(t.mem, 1, 1, 'P', 0, "middle 4K of page 1 private");
		check_sample(t.mem, 1, 2, 'S', after[1], "middle 4K of page 1 private");
		guest_check(&t, 0, t.npages, after, "guest reads after the 4K conversion");
		guest_map_4k(&t, GUEST_MAP_SHARED, page_size + page_size / 2,
			     "guest maps the middle 4K of page 1 shared");
		check_pages(t.mem, page_states(st, npages, 0), after,
			    "middle 4K of page 1 shared again");
		TEST_ASSERT(t.nr_map_gpa_range == 4,
			    "Expected four KVM_HC_MAP_GPA_RANGE exits, got %d",
			    t.nr_map_gpa_range);
	}

	gmem_test_destroy(&t);
	return KSFT_PASS;
}

/* With kvm.gmem_in_place_conversion=N, KVM is what it was without it. */
static void test_disabled(void)
{
	unsigned long type = KVM_X86_SW_PROTECTED_VM;
	struct kvm_vm *vm;
	u64 val;
	int fd, r;

	val = kvm_check_cap(KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES);
	TEST_ASSERT(!val, "/dev/kvm reports KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES = 0x%lx", val);

	if (!(kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(type)))
		type = VM_TYPE_DEFAULT;
	vm = vm_create_barebones_type(type);

	val = vm_check_cap(vm, KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES);
	TEST_ASSERT(!val, "VM type %lu reports KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES = 0x%lx",
		    type, val);
	TEST_ASSERT(!vm->gmem_attributes, "Library cached gmem_attributes = 0x%lx",
		    vm->gmem_attributes);

	fd = vm_create_guest_memfd(vm, page_size, 0);
	r = __gmem_set_attributes(fd, 0, page_size, KVM_MEMORY_ATTRIBUTE_PRIVATE, NULL);
	TEST_ASSERT(r == -1 && errno == ENOTTY,
		    "KVM_SET_MEMORY_ATTRIBUTES2 on a guest_memfd should fail with ENOTTY, got r = %d errno = %d",
		    r, errno);

	/* VM-wide attributes work as they always did. */
	if (vm_check_cap(vm, KVM_CAP_MEMORY_ATTRIBUTES) & KVM_MEMORY_ATTRIBUTE_PRIVATE) {
		vm_mem_set_private(vm, TEST_GPA, page_size);
		vm_mem_set_shared(vm, TEST_GPA, page_size);
	}

	kvm_close(fd);
	kvm_vm_free(vm);
}

static bool in_place_conversion_enabled(void)
{
	char val = 'N';
	int fd;

	/* No parameter means a KVM that predates in-place conversion. */
	fd = open(GMEM_PARAM, O_RDONLY);
	if (fd < 0)
		return false;
	TEST_ASSERT(read(fd, &val, 1) == 1, "Reading %s failed", GMEM_PARAM);
	close(fd);

	return val == 'Y' || val == 'y' || val == '1';
}

/*
 * With huge pages: enough free ones for the largest file, and a KVM that takes
 * the flags.  Skip otherwise.
 */
static void require_huge_pages(void)
{
	const size_t needed = scenario_pages(MAX_SCENARIO_PAGES);
	long nr_free = free_huge_pages();
	struct kvm_vm *vm;
	u64 supported;
	int fd;

	if (nr_free < 0)
		ksft_exit_skip("No %s HugeTLB pages on this host\n", backing->name);
	if ((size_t)nr_free < needed)
		ksft_exit_skip("%ld free %s HugeTLB pages, the test needs %lu\n",
			       nr_free, backing->name, needed);

	vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	supported = vm_check_cap(vm, KVM_CAP_GUEST_MEMFD_FLAGS);
	fd = __vm_create_guest_memfd(vm, page_size, GMEM_FLAGS_SHARED | backing->flags);
	if (fd < 0 && errno == EINVAL)
		ksft_exit_skip("guest_memfd rejects flags 0x%lx (%s HugeTLB), supported 0x%lx\n",
			       (u64)(GMEM_FLAGS_SHARED | backing->flags), backing->name,
			       supported);
	TEST_ASSERT(fd >= 0, "Creating a %s HugeTLB guest_memfd failed, errno %d (%s)",
		    backing->name, errno, strerror(errno));

	kvm_close(fd);
	kvm_vm_free(vm);
}

/*
 * Many attribute runs, then close: 64 MiB (or one 1G page) with every other
 * 4K page shared leaves the file's attribute tree several levels tall, and
 * closing the file frees it.  That free once crashed in an RCU callback
 * (mt_free_walk); the test waits for the callbacks and checks the kernel
 * survives, and that the attributes were what was asked before the close.
 */
static int test_many_runs(void)
{
	const size_t n4k = SZ_64M / base_page_size;
	struct gmem_test t = {};
	size_t i;

	/* Larger than gmem_test_init() allows: there is no guest here. */
	t.size = round_up(SZ_64M, page_size);
	t.vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	t.fd = vm_create_guest_memfd(t.vm, t.size, GUEST_MEMFD_FLAG_MMAP | backing->flags);
	t.mem = gmem_mmap(t.fd, t.size);
	for (i = 0; i < n4k; i += 2)
		gmem_set_shared(t.fd, i * base_page_size, base_page_size);
	for (i = 0; i < n4k; i += n4k / 64) {
		TEST_ASSERT(host_touch(t.mem + i * base_page_size, false),
			    "shared 4K page %lu raised SIGBUS", i);
		TEST_ASSERT(!host_touch(t.mem + (i + 1) * base_page_size, false),
			    "private 4K page %lu did not raise SIGBUS", i + 1);
	}
	gmem_test_destroy(&t);
	/* RCU callbacks free the tree: let them run before the next test. */
	sleep(2);
	return KSFT_PASS;
}

static const struct {
	const char *name;
	int (*fn)(void);
	bool huge_only;		/* only with huge pages, as <name>_<size> */
} tests[] = {
	{ "caps", test_caps },
	{ "same_pfn", test_same_pfn },
	{ "initial_state", test_initial_state },
	{ "precision", test_precision },
	{ "precision", test_precision_pages, true },
	{ "convert_unallocated", test_convert_unallocated },
	{ "mixed_allocation", test_mixed_allocation },
	{ "punch_hole_truncate", test_punch_hole_truncate },
	{ "gup_pin", test_gup_pin },
	{ "fork", test_fork },
	{ "sigbus_per_thread", test_sigbus_per_thread },
	{ "einval", test_einval },
	{ "guest_map_gpa_range", test_guest_map_gpa_range },
	{ "many_runs", test_many_runs },
};

static void help(const char *name)
{
	printf("usage: %s [-p 4K|2M|1G]\n", name);
	printf(" -p: guest_memfd backing page size, 2M and 1G are HugeTLB pages (default: 4K)\n");
}

static void parse_page_size(const char *arg, const char *name)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(backings); i++) {
		if (!strcasecmp(arg, backings[i].name)) {
			backing = &backings[i];
			return;
		}
	}

	help(name);
	exit(KSFT_FAIL);
}

int main(int argc, char *argv[])
{
	size_t i, nr_tests = 0;
	char name[64];
	int opt, r;

	while ((opt = getopt(argc, argv, "hp:")) != -1) {
		switch (opt) {
		case 'p':
			parse_page_size(optarg, argv[0]);
			break;
		case 'h':
			help(argv[0]);
			exit(KSFT_PASS);
		default:
			help(argv[0]);
			exit(KSFT_FAIL);
		}
	}

	TEST_REQUIRE(kvm_has_cap(KVM_CAP_GUEST_MEMFD));
	base_page_size = getpagesize();
	page_size = backing->size ? backing->size : base_page_size;
	if (gmem_hugetlb())
		nr_samples = NR_HUGE_SAMPLES;
	sigbus_probe_install();

	ksft_print_header();

	if (!in_place_conversion_enabled()) {
		ksft_set_plan(1);
		test_disabled();
		ksft_test_result_pass("in_place_conversion_disabled\n");
		ksft_finished();
	}

	TEST_REQUIRE(kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(KVM_X86_SW_PROTECTED_VM));

	if (gmem_hugetlb()) {
		require_huge_pages();
		ksft_print_msg("guest_memfd backed by %s HugeTLB pages\n", backing->name);
	}

	for (i = 0; i < ARRAY_SIZE(tests); i++)
		nr_tests += !tests[i].huge_only || gmem_hugetlb();
	ksft_set_plan(nr_tests);

	for (i = 0; i < ARRAY_SIZE(tests); i++) {
		if (tests[i].huge_only && !gmem_hugetlb())
			continue;

		if (tests[i].huge_only)
			snprintf(name, sizeof(name), "%s_%s", tests[i].name, backing->name);
		else
			snprintf(name, sizeof(name), "%s", tests[i].name);

		skip_reason[0] = '\0';
		r = tests[i].fn();
		if (r == KSFT_SKIP && skip_reason[0])
			ksft_test_result_code(KSFT_SKIP, name, "%s", skip_reason);
		else if (r == KSFT_SKIP)
			ksft_test_result_skip("%s\n", name);
		else
			ksft_test_result_pass("%s\n", name);
	}

	ksft_finished();
}
