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
 * With kvm.gmem_in_place_conversion=N the test only checks that the feature
 * is off, i.e. that KVM behaves like it did before it.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <linux/falloc.h>
#include <linux/kvm_para.h>
#include <linux/sizes.h>

#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "ucall_common.h"

#include "../../../../../mm/gup_test.h"

#define GMEM_PARAM	"/sys/module/kvm/parameters/gmem_in_place_conversion"
#define GUP_TEST_FILE	"/sys/kernel/debug/gup_test"

/* Above the guest's code, stack and page tables in slot0, and above MMIO. */
#define TEST_GPA	SZ_4G
#define TEST_SLOT	10
#define MAX_PAGES	16

#define GMEM_SHARED_FLAGS	(GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED)

/*
 * Page contents: word i of a page tagged @tag holds tag + i, tag 0 means the
 * page is all zeroes.  Tags of different generations and pages differ.
 */
#define TAG(gen, page)	(0x5a00000000000000ull | (u64)(gen) << 40 | (u64)(page) << 20)

static inline u64 tag_word(u64 tag, u64 i)
{
	return tag ? tag + i : 0;
}

static size_t page_size;

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
	u64 tags[MAX_PAGES];
};

static struct guest_cmd guest_cmd;

static void guest_access_pages(bool write, u64 first, u64 npages)
{
	u64 i, j, val;

	for (i = 0; i < npages; i++) {
		u64 *p = (u64 *)(TEST_GPA + (first + i) * PAGE_SIZE);
		u64 tag = READ_ONCE(guest_cmd.tags[i]);

		for (j = 0; j < PAGE_SIZE / sizeof(u64); j++) {
			if (write) {
				WRITE_ONCE(p[j], tag_word(tag, j));
				continue;
			}
			val = READ_ONCE(p[j]);
			__GUEST_ASSERT(val == tag_word(tag, j),
				       "Guest read 0x%lx from word %lu of page %lu, expected 0x%lx",
				       val, j, first + i, tag_word(tag, j));
		}
	}
}

static void guest_code(void)
{
	for (;;) {
		u64 op = READ_ONCE(guest_cmd.op);
		u64 first = READ_ONCE(guest_cmd.first);
		u64 npages = READ_ONCE(guest_cmd.npages);
		u64 gpa = TEST_GPA + first * PAGE_SIZE;

		switch (op) {
		case GUEST_CHECK:
		case GUEST_WRITE:
			guest_access_pages(op == GUEST_WRITE, first, npages);
			break;
		case GUEST_MAP_PRIVATE:
			kvm_hypercall_map_gpa_range(gpa, npages * PAGE_SIZE,
						    KVM_MAP_GPA_RANGE_ENCRYPTED |
						    KVM_MAP_GPA_RANGE_PAGE_SZ_4K);
			break;
		case GUEST_MAP_SHARED:
			kvm_hypercall_map_gpa_range(gpa, npages * PAGE_SIZE,
						    KVM_MAP_GPA_RANGE_DECRYPTED |
						    KVM_MAP_GPA_RANGE_PAGE_SZ_4K);
			break;
		default:
			GUEST_FAIL("Unknown guest op %lu", op);
		}

		GUEST_SYNC(op);
	}
}

/* ---------------------------------------------------------------------- */
/* Host side helpers.                                                     */

/* Per thread: where to go on SIGBUS, the last SIGBUS address, SIGBUS count. */
struct sigbus_state {
	sigjmp_buf *jmp;
	void *addr;
	int nr;
};

static __thread struct sigbus_state sigbus;

static void sigbus_handler(int sig, siginfo_t *info, void *ctx)
{
	if (!sigbus.jmp)
		TEST_FAIL("Unexpected SIGBUS at %p", info->si_addr);

	sigbus.addr = info->si_addr;
	sigbus.nr++;
	siglongjmp(*sigbus.jmp, 1);
}

/* Touch @addr from the calling thread, return false if that raised SIGBUS. */
static bool host_touch(u8 *addr, bool write)
{
	sigjmp_buf env;

	sigbus.jmp = &env;
	if (sigsetjmp(env, 1)) {
		sigbus.jmp = NULL;
		TEST_ASSERT(sigbus.addr == addr,
			    "SIGBUS reported address %p, the access was to %p",
			    sigbus.addr, addr);
		return false;
	}

	if (write)
		WRITE_ONCE(*addr, 0);
	else
		(void)READ_ONCE(*addr);

	sigbus.jmp = NULL;
	return true;
}

static u8 *page_ptr(u8 *mem, size_t page)
{
	return mem + page * page_size;
}

static void host_fill(u8 *mem, size_t page, u64 tag)
{
	u64 *p = (u64 *)page_ptr(mem, page);
	size_t i;

	for (i = 0; i < page_size / sizeof(u64); i++)
		p[i] = tag_word(tag, i);
}

static void set_tags(u64 *tags, size_t npages, u64 gen)
{
	size_t i;

	for (i = 0; i < npages; i++)
		tags[i] = TAG(gen, i);
}

/*
 * Check the host's view of each page: @states has one character per page,
 * 'S' for shared (readable, holds tags[page]), 'P' for private (reading and
 * writing raise SIGBUS) and '-' for "don't look".
 */
static void check_pages(u8 *mem, const char *states, const u64 *tags,
			const char *what)
{
	size_t page, i;

	for (page = 0; states[page]; page++) {
		u64 *p = (u64 *)page_ptr(mem, page);

		if (states[page] == 'P') {
			TEST_ASSERT(!host_touch((u8 *)p, false),
				    "%s: page %lu should be private, but the host read it without SIGBUS",
				    what, page);
			TEST_ASSERT(!host_touch((u8 *)p, true),
				    "%s: page %lu should be private, but the host wrote it without SIGBUS",
				    what, page);
			continue;
		}
		if (states[page] != 'S')
			continue;

		TEST_ASSERT(host_touch((u8 *)p, false),
			    "%s: page %lu should be shared, but reading it through mmap() raised SIGBUS",
			    what, page);
		for (i = 0; i < page_size / sizeof(u64); i++)
			TEST_ASSERT(p[i] == tag_word(tags[page], i),
				    "%s: shared page %lu holds 0x%lx in word %lu, expected 0x%lx",
				    what, page, p[i], i, tag_word(tags[page], i));
	}
}

/* The PFN backing @addr in the host's page tables, 0 if not mapped. */
static u64 pagemap_pfn(void *addr)
{
	off_t offset = (uintptr_t)addr / page_size * sizeof(u64);
	u64 entry;
	int fd;

	fd = open("/proc/self/pagemap", O_RDONLY);
	TEST_ASSERT(fd >= 0, "Opening /proc/self/pagemap failed, errno %d", errno);
	TEST_ASSERT(pread(fd, &entry, sizeof(entry), offset) == sizeof(entry),
		    "Reading /proc/self/pagemap failed, errno %d", errno);
	close(fd);

	if (!(entry & (1ull << 63)))
		return 0;
	return entry & ((1ull << 55) - 1);
}

static const struct vm_shape protected_shape = {
	.mode = VM_MODE_DEFAULT,
	.type = KVM_X86_SW_PROTECTED_VM,
};

/*
 * Create a SW-protected VM and a guest_memfd of @npages pages with @flags,
 * map the whole file in the host.  With @guest, also create a vCPU and a
 * memslot for the file at TEST_GPA whose userspace_addr is the host mapping.
 */
static void gmem_test_init(struct gmem_test *t, size_t npages, u64 flags,
			   bool guest)
{
	TEST_ASSERT(npages <= MAX_PAGES, "Too many pages: %lu", npages);

	memset(t, 0, sizeof(*t));
	t->npages = npages;
	t->size = npages * page_size;

	if (guest)
		t->vm = __vm_create_shape_with_one_vcpu(protected_shape, &t->vcpu,
							npages, guest_code);
	else
		t->vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);

	t->fd = vm_create_guest_memfd(t->vm, t->size, flags);
	t->mem = kvm_mmap(t->size, PROT_READ | PROT_WRITE, MAP_SHARED, t->fd);

	if (!guest)
		return;

	vm_set_user_memory_region2(t->vm, TEST_SLOT, KVM_MEM_GUEST_MEMFD,
				   TEST_GPA, t->size, t->mem, t->fd, 0);
	virt_map(t->vm, TEST_GPA, TEST_GPA, npages);
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
	u64 size = run->hypercall.args[1] * page_size;
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
static void guest_do(struct gmem_test *t, enum guest_op op, size_t first,
		     size_t npages, const u64 *tags, const char *what)
{
	struct kvm_run *run = t->vcpu->run;
	struct ucall uc;
	int r;

	guest_cmd.op = op;
	guest_cmd.first = first;
	guest_cmd.npages = npages;
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
	int r;

	val = kvm_check_cap(KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES);
	TEST_ASSERT(val == KVM_MEMORY_ATTRIBUTE_PRIVATE,
		    "/dev/kvm reports KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES = 0x%lx, expected PRIVATE",
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
	TEST_ASSERT((val & GMEM_SHARED_FLAGS) == GMEM_SHARED_FLAGS,
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

	gmem_test_init(&t, 1, GMEM_SHARED_FLAGS, true);

	host_fill(t.mem, 0, tag_host);
	pfn = pagemap_pfn(t.mem);
	TEST_ASSERT(pfn, "No PFN in /proc/self/pagemap for the page just written (not root?)");

	gmem_set_private(t.fd, 0, page_size);
	TEST_ASSERT(!pagemap_pfn(t.mem),
		    "The host mapping of the page survived the conversion to private");
	check_pages(t.mem, "P", NULL, "shared->private");
	guest_check(&t, 0, 1, &tag_host, "guest reads the host's data after shared->private");
	guest_write(&t, 0, 1, &tag_guest, "guest writes the private page");

	gmem_set_shared(t.fd, 0, page_size);
	check_pages(t.mem, "S", &tag_guest, "private->shared, host reads the guest's data");
	pfn_after = pagemap_pfn(t.mem);
	TEST_ASSERT(pfn_after == pfn,
		    "The page moved: PFN 0x%lx before the conversions, 0x%lx after",
		    pfn, pfn_after);

	/* The guest's shared view is that same page. */
	host_fill(t.mem, 0, tag_host2);
	guest_check(&t, 0, 1, &tag_host2, "guest reads the host's data after private->shared");

	gmem_test_destroy(&t);
	return KSFT_PASS;
}

/* b. A file starts all shared with INIT_SHARED, all private without it. */
static int test_initial_state(void)
{
	u64 zero[MAX_PAGES] = {}, tags[MAX_PAGES];
	struct gmem_test t;
	size_t i;

	gmem_test_init(&t, 4, GMEM_SHARED_FLAGS, false);
	check_pages(t.mem, "SSSS", zero, "new file with INIT_SHARED");
	for (i = 0; i < t.npages; i++)
		TEST_ASSERT(host_touch(page_ptr(t.mem, i), true),
			    "Writing page %lu of a new INIT_SHARED file raised SIGBUS", i);
	gmem_test_destroy(&t);

	gmem_test_init(&t, 4, GUEST_MEMFD_FLAG_MMAP, true);
	check_pages(t.mem, "PPPP", NULL, "new file without INIT_SHARED");

	/* The guest can use the private pages, the host still can't. */
	set_tags(tags, t.npages, 1);
	guest_check(&t, 0, t.npages, zero, "guest reads a new private file");
	guest_write(&t, 0, t.npages, tags, "guest writes a new private file");
	check_pages(t.mem, "PPPP", NULL, "new file without INIT_SHARED, after guest writes");

	gmem_set_shared(t.fd, 0, t.size);
	check_pages(t.mem, "SSSS", tags, "new private file converted to shared");

	gmem_test_destroy(&t);
	return KSFT_PASS;
}

/* c. Converting page N leaves its neighbours, and their data, alone. */
static int test_precision(void)
{
	static const char * const states[] = { "PSSSS", "SSPSS", "SSSSP" };
	u64 tags[MAX_PAGES];
	struct gmem_test t;
	char what[64];
	size_t i, page;

	gmem_test_init(&t, 5, GMEM_SHARED_FLAGS, true);
	set_tags(tags, t.npages, 1);
	for (i = 0; i < t.npages; i++)
		host_fill(t.mem, i, tags[i]);

	for (i = 0; i < ARRAY_SIZE(states); i++) {
		page = i * 2;
		snprintf(what, sizeof(what), "only page %lu converted to private", page);

		gmem_set_private(t.fd, page * page_size, page_size);
		check_pages(t.mem, states[i], tags, what);
		guest_check(&t, 0, t.npages, tags, what);

		gmem_set_shared(t.fd, page * page_size, page_size);
		check_pages(t.mem, "SSSSS", tags, "page converted back to shared");
	}

	gmem_set_private(t.fd, 1 * page_size, page_size);
	gmem_set_private(t.fd, 3 * page_size, page_size);
	check_pages(t.mem, "SPSPS", tags, "pages 1 and 3 converted to private");
	guest_check(&t, 0, t.npages, tags, "pages 1 and 3 converted to private");

	gmem_test_destroy(&t);
	return KSFT_PASS;
}

/* d. Converting pages that were never allocated, then allocating by fault. */
static int test_convert_unallocated(void)
{
	u64 zero[MAX_PAGES] = {}, tags[MAX_PAGES] = {};
	struct kvm_pre_fault_memory range = {};
	struct gmem_test t;
	int r;

	/* INIT_SHARED file, two pages made private before they exist. */
	gmem_test_init(&t, 4, GMEM_SHARED_FLAGS, true);
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

	/* Pages 2 and 3 are allocated by host faults. */
	check_pages(t.mem, "PPSS", tags, "pages 0-1 converted before allocation");
	tags[2] = TAG(1, 2);
	host_fill(t.mem, 2, tags[2]);
	guest_check(&t, 2, 1, &tags[2], "guest reads a page the host allocated");

	gmem_set_shared(t.fd, 0, 2 * page_size);
	check_pages(t.mem, "SSSS", tags, "pages 0-1 converted back to shared");
	gmem_test_destroy(&t);

	/* Private file, two pages made shared before they exist. */
	gmem_test_init(&t, 4, GUEST_MEMFD_FLAG_MMAP, true);
	gmem_set_shared(t.fd, page_size, 2 * page_size);
	check_pages(t.mem, "PSSP", zero, "pages 1-2 converted to shared before allocation");

	memset(tags, 0, sizeof(tags));
	tags[1] = TAG(2, 1);
	host_fill(t.mem, 1, tags[1]);
	TEST_ASSERT(pagemap_pfn(page_ptr(t.mem, 1)),
		    "No PFN for page 1 after the host faulted it in");
	guest_check(&t, 0, t.npages, tags, "guest reads pages converted before allocation");

	gmem_test_destroy(&t);
	return KSFT_PASS;
}

/*
 * e. One conversion across pages allocated in different ways: by fallocate(),
 * by a write fault, by a read fault, by both fallocate() and a write, and not
 * at all.
 */
static int test_mixed_allocation(void)
{
	u64 before[MAX_PAGES] = {}, after[MAX_PAGES] = {};
	struct gmem_test t;
	u64 pfn2;

	gmem_test_init(&t, 8, GMEM_SHARED_FLAGS, true);

	/* Pages 0-1: fallocate(), never touched. */
	kvm_fallocate(t.fd, FALLOC_FL_KEEP_SIZE, 0, 2 * page_size);

	/* Pages 2-3: write faults. */
	before[2] = TAG(1, 2);
	before[3] = TAG(1, 3);
	host_fill(t.mem, 2, before[2]);
	host_fill(t.mem, 3, before[3]);
	pfn2 = pagemap_pfn(page_ptr(t.mem, 2));
	TEST_ASSERT(pfn2, "No PFN for page 2 after the host wrote it");

	/* Page 4: a read fault. */
	check_pages(t.mem, "----S", before, "read fault of page 4");

	/* Page 5: fallocate(), then a write fault. */
	kvm_fallocate(t.fd, FALLOC_FL_KEEP_SIZE, 5 * page_size, page_size);
	before[5] = TAG(1, 5);
	host_fill(t.mem, 5, before[5]);

	/* Pages 6-7: nothing.  Convert pages 1-6. */
	gmem_set_private(t.fd, page_size, 6 * page_size);
	check_pages(t.mem, "SPPPPPPS", before, "pages 1-6 converted to private");
	guest_check(&t, 1, 6, &before[1], "guest reads pages 1-6 after the conversion");

	set_tags(after, t.npages, 2);
	after[0] = 0;
	after[7] = 0;
	guest_write(&t, 1, 6, &after[1], "guest writes pages 1-6");

	gmem_set_shared(t.fd, page_size, 6 * page_size);
	check_pages(t.mem, "SSSSSSSS", after, "pages 1-6 converted back to shared");
	TEST_ASSERT(pagemap_pfn(page_ptr(t.mem, 2)) == pfn2,
		    "Page 2 moved during the conversions");

	gmem_test_destroy(&t);
	return KSFT_PASS;
}

/* f. PUNCH_HOLE and a failed ftruncate() don't change shared vs. private. */
static int test_punch_hole_truncate(void)
{
	const off_t sizes[] = { 0, page_size, 3 * page_size, 5 * page_size, SZ_1M };
	u64 tags[MAX_PAGES], zero[MAX_PAGES] = {}, tag1 = TAG(2, 1);
	const int punch = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE;
	struct gmem_test t;
	struct stat st;
	size_t i;
	int r;

	gmem_test_init(&t, 4, GMEM_SHARED_FLAGS, true);
	set_tags(tags, t.npages, 1);
	for (i = 0; i < t.npages; i++)
		host_fill(t.mem, i, tags[i]);

	gmem_set_private(t.fd, page_size, page_size);
	guest_write(&t, 1, 1, &tag1, "guest writes private page 1");

	/* Punch the private page: it stays private and comes back zeroed. */
	kvm_fallocate(t.fd, punch, page_size, page_size);
	check_pages(t.mem, "SPSS", tags, "private page 1 punched");
	guest_check(&t, 1, 1, zero, "guest reads punched private page 1");

	/* Punch a shared page: it stays shared and reads zero. */
	kvm_fallocate(t.fd, punch, 2 * page_size, page_size);
	tags[1] = 0;
	tags[2] = 0;
	check_pages(t.mem, "SPSS", tags, "shared page 2 punched");
	guest_check(&t, 2, 1, zero, "guest reads punched shared page 2");

	/* ftruncate() fails, whatever the size, and changes nothing. */
	tags[1] = tag1;
	guest_write(&t, 1, 1, &tag1, "guest rewrites private page 1");
	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		r = ftruncate(t.fd, sizes[i]);
		TEST_ASSERT(r == -1,
			    "ftruncate(0x%lx) of a guest_memfd succeeded", sizes[i]);
		TEST_ASSERT(!fstat(t.fd, &st) && st.st_size == t.size,
			    "guest_memfd size is 0x%lx after a failed ftruncate(0x%lx)",
			    st.st_size, sizes[i]);
		check_pages(t.mem, "SPSS", tags, "after a failed ftruncate()");
	}
	guest_check(&t, 0, t.npages, tags, "guest reads the file after failed ftruncate()s");

	/* Punch everything, then convert page 1 back. */
	kvm_fallocate(t.fd, punch, 0, t.size);
	check_pages(t.mem, "SPSS", zero, "whole file punched");
	gmem_set_shared(t.fd, page_size, page_size);
	check_pages(t.mem, "SSSS", zero, "punched page 1 converted to shared");

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

	gup_fd = open(GUP_TEST_FILE, O_RDWR);
	if (gup_fd < 0) {
		ksft_print_msg("Can't open %s (CONFIG_GUP_TEST, debugfs): %s\n",
			       GUP_TEST_FILE, strerror(errno));
		return KSFT_SKIP;
	}

	gmem_test_init(&t, 6, GMEM_SHARED_FLAGS, true);
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
 * page 1, the parent converts page 2, each observes the other's conversion.
 */
static int test_fork(void)
{
	int to_child[2], to_parent[2], status;
	u64 tags[MAX_PAGES];
	struct gmem_test t;
	u8 *mem2;
	pid_t pid;
	size_t i;

	gmem_test_init(&t, 4, GMEM_SHARED_FLAGS, false);
	set_tags(tags, t.npages, 1);
	for (i = 0; i < t.npages; i++)
		host_fill(t.mem, i, tags[i]);

	TEST_ASSERT(!pipe(to_child) && !pipe(to_parent), "pipe() failed");
	pid = fork();
	TEST_ASSERT(pid >= 0, "fork() failed, errno %d", errno);

	if (!pid) {
		close(to_child[1]);
		close(to_parent[0]);

		gmem_set_private(t.fd, page_size, page_size);
		check_pages(t.mem, "SPSS", tags, "child, after converting page 1");
		pipe_send(to_parent[1]);

		pipe_wait(to_child[0], "parent");
		check_pages(t.mem, "SPPS", tags, "child, after the parent converted page 2");
		gmem_set_shared(t.fd, page_size, page_size);
		tags[1] = TAG(2, 1);
		host_fill(t.mem, 1, tags[1]);
		pipe_send(to_parent[1]);
		_exit(0);
	}

	close(to_child[0]);
	close(to_parent[1]);

	pipe_wait(to_parent[0], "child");
	mem2 = kvm_mmap(t.size, PROT_READ | PROT_WRITE, MAP_SHARED, t.fd);
	check_pages(t.mem, "SPSS", tags, "parent, after the child converted page 1");
	check_pages(mem2, "SPSS", tags, "parent's 2nd mapping, after the child converted page 1");

	gmem_set_private(t.fd, 2 * page_size, page_size);
	pipe_send(to_child[1]);

	pipe_wait(to_parent[0], "child");
	tags[1] = TAG(2, 1);
	check_pages(t.mem, "SSPS", tags, "parent, after the child converted page 1 back");
	check_pages(mem2, "SSPS", tags, "parent's 2nd mapping, child converted page 1 back");

	TEST_ASSERT(waitpid(pid, &status, 0) == pid, "waitpid() failed, errno %d", errno);
	TEST_ASSERT(WIFEXITED(status) && !WEXITSTATUS(status),
		    "Child failed, status 0x%x", status);

	gmem_set_shared(t.fd, 2 * page_size, page_size);
	check_pages(mem2, "SSSS", tags, "parent's 2nd mapping, all shared again");

	close(to_child[1]);
	close(to_parent[0]);
	kvm_munmap(mem2, t.size);
	gmem_test_destroy(&t);
	return KSFT_PASS;
}

struct sigbus_thread {
	pthread_barrier_t *barrier;
	u8 *addr;
	bool read_ok, write_ok;
	void *sigbus_addr;
	int nr_sigbus;
};

static void *sigbus_thread_fn(void *data)
{
	struct sigbus_thread *st = data;

	pthread_barrier_wait(st->barrier);
	st->read_ok = host_touch(st->addr, false);
	st->write_ok = host_touch(st->addr, true);
	st->sigbus_addr = sigbus.addr;
	st->nr_sigbus = sigbus.nr;
	return NULL;
}

/* i. Each thread touching a private page gets its own SIGBUS. */
static int test_sigbus_per_thread(void)
{
	struct sigbus_thread st[2] = {};
	pthread_barrier_t barrier;
	u64 tags[MAX_PAGES];
	pthread_t threads[2];
	int nr_main = sigbus.nr;
	struct gmem_test t;
	size_t i;

	gmem_test_init(&t, 4, GMEM_SHARED_FLAGS, false);
	set_tags(tags, t.npages, 1);
	for (i = 0; i < t.npages; i++)
		host_fill(t.mem, i, tags[i]);
	gmem_set_private(t.fd, page_size, 2 * page_size);

	pthread_barrier_init(&barrier, NULL, ARRAY_SIZE(st));
	for (i = 0; i < ARRAY_SIZE(st); i++) {
		st[i].barrier = &barrier;
		st[i].addr = page_ptr(t.mem, i + 1) + 64 * i;
		kvm_pthread_create(&threads[i], NULL, sigbus_thread_fn, &st[i]);
	}
	for (i = 0; i < ARRAY_SIZE(st); i++)
		kvm_pthread_join(threads[i], NULL);
	pthread_barrier_destroy(&barrier);

	for (i = 0; i < ARRAY_SIZE(st); i++) {
		TEST_ASSERT(!st[i].read_ok && !st[i].write_ok,
			    "Thread %lu touched private page %lu without SIGBUS (read %d, write %d)",
			    i, i + 1, st[i].read_ok, st[i].write_ok);
		TEST_ASSERT(st[i].nr_sigbus == 2,
			    "Thread %lu got %d SIGBUS, expected 2 (one per access)",
			    i, st[i].nr_sigbus);
		TEST_ASSERT(st[i].sigbus_addr == st[i].addr,
			    "Thread %lu got SIGBUS for %p, it touched %p",
			    i, st[i].sigbus_addr, st[i].addr);
	}
	TEST_ASSERT(sigbus.nr == nr_main,
		    "The main thread got %d SIGBUS for the other threads' accesses",
		    sigbus.nr - nr_main);

	/* The process survived and the state is what it was. */
	check_pages(t.mem, "SPPS", tags, "after the threads' SIGBUS");

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
			 u64 attributes, const u64 *tags)
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
	check_pages(t->mem, "SSSP", tags, c->what);
}

/* j. Invalid arguments fail with EINVAL and change nothing. */
static int test_einval(void)
{
	const u64 last = 3 * page_size, size = 4 * page_size;
	const struct einval_case cases[] = {
		{ "unaligned offset", 1, page_size },
		{ "unaligned offset", page_size / 2, page_size },
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
	u64 tags[MAX_PAGES];
	struct gmem_test t;
	size_t i, j;
	int bit;

	/* Pages 0-2 shared, 3 private: any conversion would show. */
	gmem_test_init(&t, 4, GMEM_SHARED_FLAGS, false);
	set_tags(tags, t.npages, 1);
	for (i = 0; i < t.npages; i++)
		host_fill(t.mem, i, tags[i]);
	gmem_set_private(t.fd, last, page_size);

	for (j = 0; j < ARRAY_SIZE(attrs); j++) {
		for (i = 0; i < ARRAY_SIZE(cases); i++)
			check_einval(&t, &cases[i], attrs[j], tags);

		c.what = "non-zero reserved[]";
		for (i = 0; i < nr_reserved; i++) {
			c.reserved = i + 1;
			check_einval(&t, &c, attrs[j], tags);
		}
		c.reserved = 0;
	}

	c.what = "unknown attribute";
	for (bit = 0; bit < 64; bit++) {
		if (BIT_ULL(bit) == KVM_MEMORY_ATTRIBUTE_PRIVATE)
			continue;
		check_einval(&t, &c, BIT_ULL(bit), tags);
		check_einval(&t, &c, BIT_ULL(bit) | KVM_MEMORY_ATTRIBUTE_PRIVATE, tags);
	}

	/* The ioctl does work, and page 3 kept its data while private. */
	gmem_set_shared(t.fd, last, page_size);
	check_pages(t.mem, "SSSS", tags, "page 3 converted back to shared");

	gmem_test_destroy(&t);
	return KSFT_PASS;
}

/*
 * k. The guest converts with KVM_HC_MAP_GPA_RANGE, the host handles the exit
 * with KVM_SET_MEMORY_ATTRIBUTES2; data the guest writes while the pages are
 * private is what the host reads once they're shared.
 */
static int test_guest_map_gpa_range(void)
{
	u64 tags[MAX_PAGES], after[MAX_PAGES];
	struct gmem_test t;
	size_t i;

	if (!(kvm_check_cap(KVM_CAP_EXIT_HYPERCALL) & BIT(KVM_HC_MAP_GPA_RANGE))) {
		ksft_print_msg("KVM_CAP_EXIT_HYPERCALL doesn't support KVM_HC_MAP_GPA_RANGE\n");
		return KSFT_SKIP;
	}

	gmem_test_init(&t, 4, GMEM_SHARED_FLAGS, true);
	vm_enable_cap(t.vm, KVM_CAP_EXIT_HYPERCALL, BIT(KVM_HC_MAP_GPA_RANGE));

	set_tags(tags, t.npages, 1);
	for (i = 0; i < t.npages; i++)
		host_fill(t.mem, i, tags[i]);
	guest_check(&t, 0, t.npages, tags, "guest reads the host's data");

	guest_do(&t, GUEST_MAP_PRIVATE, 1, 2, NULL, "guest maps pages 1-2 private");
	TEST_ASSERT(t.nr_map_gpa_range == 1,
		    "Expected one KVM_HC_MAP_GPA_RANGE exit, got %d", t.nr_map_gpa_range);
	check_pages(t.mem, "SPPS", tags, "guest mapped pages 1-2 private");
	guest_check(&t, 0, t.npages, tags, "guest reads pages 1-2 after mapping them private");

	memcpy(after, tags, sizeof(after));
	after[1] = TAG(2, 1);
	after[2] = TAG(2, 2);
	guest_write(&t, 1, 2, &after[1], "guest writes private pages 1-2");

	guest_do(&t, GUEST_MAP_SHARED, 1, 2, NULL, "guest maps pages 1-2 shared");
	TEST_ASSERT(t.nr_map_gpa_range == 2,
		    "Expected two KVM_HC_MAP_GPA_RANGE exits, got %d", t.nr_map_gpa_range);
	check_pages(t.mem, "SSSS", after, "guest mapped pages 1-2 shared");
	guest_check(&t, 0, t.npages, after, "guest reads pages 1-2 after mapping them shared");

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

static const struct {
	const char *name;
	int (*fn)(void);
} tests[] = {
	{ "caps", test_caps },
	{ "same_pfn", test_same_pfn },
	{ "initial_state", test_initial_state },
	{ "precision", test_precision },
	{ "convert_unallocated", test_convert_unallocated },
	{ "mixed_allocation", test_mixed_allocation },
	{ "punch_hole_truncate", test_punch_hole_truncate },
	{ "gup_pin", test_gup_pin },
	{ "fork", test_fork },
	{ "sigbus_per_thread", test_sigbus_per_thread },
	{ "einval", test_einval },
	{ "guest_map_gpa_range", test_guest_map_gpa_range },
};

int main(int argc, char *argv[])
{
	struct sigaction sa = {
		.sa_sigaction = sigbus_handler,
		.sa_flags = SA_SIGINFO,
	};
	size_t i;

	TEST_REQUIRE(kvm_has_cap(KVM_CAP_GUEST_MEMFD));
	page_size = getpagesize();
	TEST_ASSERT(!sigaction(SIGBUS, &sa, NULL), "sigaction(SIGBUS) failed");

	ksft_print_header();

	if (!in_place_conversion_enabled()) {
		ksft_set_plan(1);
		test_disabled();
		ksft_test_result_pass("in_place_conversion_disabled\n");
		ksft_finished();
	}

	TEST_REQUIRE(kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(KVM_X86_SW_PROTECTED_VM));

	ksft_set_plan(ARRAY_SIZE(tests));
	for (i = 0; i < ARRAY_SIZE(tests); i++) {
		if (tests[i].fn() == KSFT_SKIP)
			ksft_test_result_skip("%s\n", tests[i].name);
		else
			ksft_test_result_pass("%s\n", tests[i].name);
	}

	ksft_finished();
}
