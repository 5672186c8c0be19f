// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmem_hugetlb_test - guest_memfd backed by HugeTLB folios
 * (GUEST_MEMFD_FLAG_HUGETLB, page size encoded as for memfd_create()).
 *
 * Each scenario runs in a child process, once per huge page size where that
 * makes sense.  The scenarios check the HugeTLB pool counters
 * (/sys/kernel/mm/hugepages/hugepages-<size>kB/) at every step: creating a
 * file reserves every huge page it can hold, allocating a huge page turns a
 * reserved page into a used one, releasing gives both back.  Once the child
 * is gone, the parent checks that the pools are exactly what they were
 * before the scenario.
 *
 * 1G pages are scarce (the test VM has two), so a 1G scenario uses at most
 * two of them and frees everything before the next scenario starts.
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
#include <linux/sizes.h>

#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "ucall_common.h"

/* Above the guest's code, stack and page tables in slot0, and above MMIO. */
#define TEST_GPA		SZ_4G
#define TEST_SLOT		10
#define MAX_TOUCH		32
#define NR_RACE_THREADS		8

#define SHARED_FLAGS		(GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED)
#define HUGE_SIZE_BITS		((u64)GUEST_MEMFD_FLAG_HUGE_MASK << GUEST_MEMFD_FLAG_HUGE_SHIFT)
#define HUGE_LOG2(shift)	((u64)(shift) << GUEST_MEMFD_FLAG_HUGE_SHIFT)

#define PUNCH_HOLE		(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)

#define HP_SYSFS		"/sys/kernel/mm/hugepages/hugepages-%lukB"

/*
 * Page contents: word i of a page tagged @tag holds tag + i, tag 0 means the
 * page is all zeroes.
 */
#define TAG(gen, idx)	(0x5a00000000000000ull | (u64)(gen) << 40 | (u64)(idx) << 20)

static inline u64 tag_word(u64 tag, u64 i)
{
	return tag ? tag + i : 0;
}

struct hsize {
	const char *name;
	u64 size;
	u64 flag;		/* GUEST_MEMFD_FLAG_HUGE_* */
	bool present;		/* the kernel has a pool of this size */
};

static struct hsize hsizes[] = {
	{ "2M", SZ_2M, GUEST_MEMFD_FLAG_HUGE_2MB },
	{ "1G", SZ_1G, GUEST_MEMFD_FLAG_HUGE_1GB },
};

#define HS_2M	(&hsizes[0])
#define HS_1G	(&hsizes[1])

/* The huge page size used for GUEST_MEMFD_FLAG_HUGETLB without size bits. */
static const struct hsize *default_hs;
static size_t page_size;
static bool have_sw_protected;

static u64 hflags(const struct hsize *hs)
{
	return GUEST_MEMFD_FLAG_HUGETLB | hs->flag;
}

static bool is_1g(const struct hsize *hs)
{
	return hs->size >= SZ_1G;
}

/* ---------------------------------------------------------------------- */
/* HugeTLB pool counters.                                                 */

struct hp_counts {
	long free;
	long resv;
	long surplus;
	long nr;
};

/* One hp_counts per entry of hsizes[]. */
struct hp_snap {
	struct hp_counts c[ARRAY_SIZE(hsizes)];
};

static long hp_read_file(const struct hsize *hs, const char *name)
{
	char path[128];
	long val;
	FILE *f;

	snprintf(path, sizeof(path), HP_SYSFS "/%s", hs->size >> 10, name);
	f = fopen(path, "r");
	TEST_ASSERT(f, "Opening %s failed, errno %d (%s)", path, errno, strerror(errno));
	TEST_ASSERT(fscanf(f, "%ld", &val) == 1, "Reading %s failed", path);
	fclose(f);
	return val;
}

static void hp_read(const struct hsize *hs, struct hp_counts *c)
{
	c->free = hp_read_file(hs, "free_hugepages");
	c->resv = hp_read_file(hs, "resv_hugepages");
	c->surplus = hp_read_file(hs, "surplus_hugepages");
	c->nr = hp_read_file(hs, "nr_hugepages");
}

static bool hp_equal(const struct hp_counts *a, const struct hp_counts *b)
{
	return a->free == b->free && a->resv == b->resv &&
	       a->surplus == b->surplus && a->nr == b->nr;
}

/* Huge pages that a new file can still reserve. */
static long hp_avail(const struct hsize *hs)
{
	struct hp_counts c;

	hp_read(hs, &c);
	return c.free - c.resv;
}

static bool hp_require(const struct hsize *hs, long nr)
{
	long avail;

	if (!hs->present) {
		ksft_print_msg("No %s HugeTLB pool\n", hs->name);
		return false;
	}
	avail = hp_avail(hs);
	if (avail < nr) {
		ksft_print_msg("Need %ld free unreserved %s pages, the pool has %ld\n",
			       nr, hs->name, avail);
		return false;
	}
	return true;
}

/*
 * Assert that the pool of @hs is @base, except for free and resv that moved
 * by @dfree and @dresv.  The pool never grows or shrinks: nr and surplus stay.
 */
static void hp_check(const struct hsize *hs, const struct hp_counts *base,
		     long dfree, long dresv, const char *what)
{
	struct hp_counts now;

	hp_read(hs, &now);
	TEST_ASSERT(now.free == base->free + dfree && now.resv == base->resv + dresv &&
		    now.surplus == base->surplus && now.nr == base->nr,
		    "%s: %s pool has free %ld resv %ld surplus %ld nr %ld, expected free %ld resv %ld surplus %ld nr %ld",
		    what, hs->name, now.free, now.resv, now.surplus, now.nr,
		    base->free + dfree, base->resv + dresv, base->surplus, base->nr);
}

/* Give the pool a moment to get back to @base, false if it doesn't. */
static bool hp_wait_restored(const struct hsize *hs, const struct hp_counts *base,
			     struct hp_counts *now)
{
	int i;

	for (i = 0; i < 100; i++) {
		hp_read(hs, now);
		if (hp_equal(now, base))
			return true;
		usleep(20 * 1000);
	}
	return false;
}

static void hp_check_restored(const struct hsize *hs, const struct hp_counts *base,
			      const char *what)
{
	struct hp_counts now = {};

	TEST_ASSERT(hp_wait_restored(hs, base, &now),
		    "%s: %s pool did not return to where it was: free %ld resv %ld surplus %ld nr %ld, was free %ld resv %ld surplus %ld nr %ld",
		    what, hs->name, now.free, now.resv, now.surplus, now.nr,
		    base->free, base->resv, base->surplus, base->nr);
}

static void hp_snap(struct hp_snap *s)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(hsizes); i++) {
		if (hsizes[i].present)
			hp_read(&hsizes[i], &s->c[i]);
	}
}

static const struct hp_counts *snap_of(const struct hp_snap *s, const struct hsize *hs)
{
	return &s->c[hs - hsizes];
}

/* Every pool except @except (may be NULL) is exactly as in @s, right now. */
static void hp_check_snap(const struct hp_snap *s, const struct hsize *except,
			  const char *what)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(hsizes); i++) {
		if (hsizes[i].present && &hsizes[i] != except)
			hp_check(&hsizes[i], &s->c[i], 0, 0, what);
	}
}

/* Not asserting: the parent uses this to judge a child that is gone. */
static bool hp_snap_restored(const struct hp_snap *s, const char *name)
{
	struct hp_counts now = {};
	bool ok = true;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(hsizes); i++) {
		const struct hp_counts *was = &s->c[i];

		if (!hsizes[i].present || hp_wait_restored(&hsizes[i], was, &now))
			continue;

		ksft_print_msg("%s: %s pool not restored after the process exited\n",
			       name, hsizes[i].name);
		ksft_print_msg("  now free %ld resv %ld surplus %ld nr %ld\n",
			       now.free, now.resv, now.surplus, now.nr);
		ksft_print_msg("  was free %ld resv %ld surplus %ld nr %ld\n",
			       was->free, was->resv, was->surplus, was->nr);
		ok = false;
	}
	return ok;
}

/* ---------------------------------------------------------------------- */
/* Host access to guest_memfd mappings.                                   */

static void fill_page(u8 *page, u64 tag)
{
	u64 *p = (u64 *)page;
	size_t i;

	for (i = 0; i < page_size / sizeof(u64); i++)
		p[i] = tag_word(tag, i);
}

static void check_page(u8 *page, u64 tag, const char *what)
{
	u64 *p = (u64 *)page;
	size_t i;

	TEST_ASSERT(host_touch(page, false),
		    "%s: reading %p through mmap() raised SIGBUS", what, page);
	for (i = 0; i < page_size / sizeof(u64); i++)
		TEST_ASSERT(p[i] == tag_word(tag, i),
			    "%s: word %lu of the page at %p is 0x%lx, expected 0x%lx",
			    what, i, page, p[i], tag_word(tag, i));
}

static void check_private(u8 *page, const char *what)
{
	TEST_ASSERT(!host_touch(page, false),
		    "%s: reading private memory at %p did not raise SIGBUS", what, page);
	TEST_ASSERT(!host_touch(page, true),
		    "%s: writing private memory at %p did not raise SIGBUS", what, page);
}

static void check_zero(u8 *mem, u64 size, const char *what)
{
	u64 *p = (u64 *)mem;
	u64 i;

	for (i = 0; i < size / sizeof(u64); i++) {
		if (p[i])
			TEST_FAIL("%s: byte offset 0x%lx holds 0x%lx, fresh memory must read zero",
				  what, i * sizeof(u64), p[i]);
	}
}

/*
 * mmap(MAP_SHARED) @size bytes of @fd from @offset at an address aligned to
 * @align, so that the mapping (and a memslot using it) is congruent with
 * huge pages.
 */
static u8 *gmem_mmap(int fd, u64 size, u64 align, off_t offset)
{
	u8 *area, *mem, *end;
	void *ret;

	area = kvm_mmap(size + align, PROT_NONE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1);
	mem = align_ptr_up(area, align);
	ret = mmap(mem, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, offset);
	TEST_ASSERT(ret == mem,
		    "mmap(MAP_SHARED) of 0x%lx bytes at file offset 0x%lx to %p failed, errno %d (%s)",
		    size, offset, mem, errno, strerror(errno));

	end = area + size + align;
	if (mem > area)
		kvm_munmap(area, mem - area);
	if (end > mem + size)
		kvm_munmap(mem + size, end - (mem + size));
	return mem;
}

/*
 * Pages of a file that a scenario writes and checks, with what they should
 * hold, and which huge pages of the file are allocated (reading through
 * mmap() allocates, so only allocated huge pages are checked that way).
 */
struct samples {
	int nr;
	u64 off[MAX_TOUCH];
	u64 tag[MAX_TOUCH];
	bool allocated[8];
};

/* Page offsets @rel[] within each of the first @nr_hpages huge pages. */
static void samples_init(struct samples *s, const struct hsize *hs, u64 nr_hpages,
			 const u64 *rel, int nr_rel)
{
	u64 k;
	int i;

	memset(s, 0, sizeof(*s));
	TEST_ASSERT(nr_hpages * nr_rel <= MAX_TOUCH && nr_hpages <= ARRAY_SIZE(s->allocated),
		    "Too many samples: %lu huge pages x %d", nr_hpages, nr_rel);
	for (k = 0; k < nr_hpages; k++) {
		for (i = 0; i < nr_rel; i++)
			s->off[s->nr++] = k * hs->size + rel[i];
	}
}

static void samples_fill(struct samples *s, u8 *mem, const struct hsize *hs, u64 gen)
{
	int i;

	for (i = 0; i < s->nr; i++) {
		s->tag[i] = TAG(gen, i);
		fill_page(mem + s->off[i], s->tag[i]);
		s->allocated[s->off[i] / hs->size] = true;
	}
}

static void samples_check(struct samples *s, u8 *mem, const struct hsize *hs,
			  const char *what)
{
	int i;

	for (i = 0; i < s->nr; i++) {
		if (s->allocated[s->off[i] / hs->size])
			check_page(mem + s->off[i], s->tag[i], what);
	}
}

/* ---------------------------------------------------------------------- */
/* Guest side: a loop that runs one command from the host per KVM_RUN.    */

#define OP_CHECK	BIT(0)	/* every page must hold old_tag[i] */
#define OP_WRITE	BIT(1)	/* then fill it according to new_tag[i] */

struct guest_cmd {
	u64 op;
	u64 nr;
	u64 gva[MAX_TOUCH];
	u64 old_tag[MAX_TOUCH];
	u64 new_tag[MAX_TOUCH];
};

static struct guest_cmd guest_cmd;

static void guest_code(void)
{
	u64 op, nr, i, j, tag, val;
	u64 *p;

	for (;;) {
		op = READ_ONCE(guest_cmd.op);
		nr = READ_ONCE(guest_cmd.nr);

		for (i = 0; i < nr; i++) {
			p = (u64 *)READ_ONCE(guest_cmd.gva[i]);

			tag = READ_ONCE(guest_cmd.old_tag[i]);
			for (j = 0; (op & OP_CHECK) && j < PAGE_SIZE / sizeof(u64); j++) {
				val = READ_ONCE(p[j]);
				__GUEST_ASSERT(val == tag_word(tag, j),
					       "Guest read 0x%lx from word %lu of GPA 0x%lx, expected 0x%lx",
					       val, j, (u64)p, tag_word(tag, j));
			}

			tag = READ_ONCE(guest_cmd.new_tag[i]);
			for (j = 0; (op & OP_WRITE) && j < PAGE_SIZE / sizeof(u64); j++)
				WRITE_ONCE(p[j], tag_word(tag, j));
		}

		GUEST_SYNC(op);
	}
}

/* A VM and one guest_memfd file, optionally mapped by the host and a guest. */
struct gvm {
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	const struct hsize *hs;
	unsigned long type;
	u64 flags;
	int fd;
	u64 size;		/* of the file */
	u8 *mem;		/* host mapping of the whole file, or NULL */
	u64 offset;		/* guest_memfd offset of the memslot at TEST_GPA */
	int nr_mapped;
	u64 mapped[MAX_TOUCH];	/* GPAs the guest page tables map */
};

static void gvm_init(struct gvm *g, unsigned long type, const struct hsize *hs,
		     u64 nr_hpages, u64 flags, bool guest)
{
	const struct vm_shape shape = {
		.mode = VM_MODE_DEFAULT,
		.type = type,
	};

	memset(g, 0, sizeof(*g));
	g->hs = hs;
	g->type = type;
	g->flags = flags;
	g->size = nr_hpages * hs->size;

	if (guest)
		g->vm = __vm_create_shape_with_one_vcpu(shape, &g->vcpu, 64, guest_code);
	else
		g->vm = vm_create_barebones_type(type);

	g->fd = vm_create_guest_memfd(g->vm, g->size, flags);
	if (flags & GUEST_MEMFD_FLAG_MMAP)
		g->mem = gmem_mmap(g->fd, g->size, hs->size, 0);
}

static void gvm_destroy(struct gvm *g)
{
	if (g->mem)
		kvm_munmap(g->mem, g->size);
	if (g->fd >= 0)
		kvm_close(g->fd);
	if (g->vm)
		kvm_vm_free(g->vm);
	memset(g, 0, sizeof(*g));
}

/*
 * Bind [@offset, @offset + @size) of the file at TEST_GPA.  The memslot's
 * userspace_addr is the host mapping of that offset if there is one.  A
 * private file is private for the guest: that's what the file says if
 * guest_memfd tracks memory attributes, else it takes a VM-wide attribute.
 */
static void gvm_bind(struct gvm *g, u64 offset, u64 size)
{
	void *hva = g->mem ? g->mem + offset : NULL;

	g->offset = offset;
	vm_set_user_memory_region2(g->vm, TEST_SLOT, KVM_MEM_GUEST_MEMFD, TEST_GPA,
				   size, hva, g->fd, offset);

	if (g->type == KVM_X86_SW_PROTECTED_VM && !g->vm->gmem_attributes &&
	    !(g->flags & GUEST_MEMFD_FLAG_INIT_SHARED))
		vm_set_memory_attributes(g->vm, TEST_GPA, size, KVM_MEMORY_ATTRIBUTE_PRIVATE);
}

/* Identity-map the 4K page at @gpa in the guest, once. */
static void gvm_map(struct gvm *g, u64 gpa)
{
	int i;

	for (i = 0; i < g->nr_mapped; i++) {
		if (g->mapped[i] == gpa)
			return;
	}
	TEST_ASSERT(g->nr_mapped < MAX_TOUCH, "Too many guest mappings");
	g->mapped[g->nr_mapped++] = gpa;
	virt_map(g->vm, gpa, gpa, 1);
}

/* Run one guest command on the pages at @gpas[]. */
static void guest_run(struct gvm *g, u64 op, int nr, const u64 *gpas,
		      const u64 *old_tags, const u64 *new_tags, const char *what)
{
	struct kvm_run *run = g->vcpu->run;
	struct ucall uc;
	int i, r;

	TEST_ASSERT(nr <= MAX_TOUCH, "Too many pages for the guest: %d", nr);
	memset(&guest_cmd, 0, sizeof(guest_cmd));
	guest_cmd.op = op;
	guest_cmd.nr = nr;
	for (i = 0; i < nr; i++) {
		guest_cmd.gva[i] = gpas[i];
		guest_cmd.old_tag[i] = old_tags ? old_tags[i] : 0;
		guest_cmd.new_tag[i] = new_tags ? new_tags[i] : 0;
	}
	sync_global_to_guest(g->vm, guest_cmd);

	r = _vcpu_run(g->vcpu);
	TEST_ASSERT(!r || errno != EFAULT || run->exit_reason != KVM_EXIT_MEMORY_FAULT,
		    "%s: guest access exited with KVM_EXIT_MEMORY_FAULT, gpa 0x%llx size 0x%llx flags 0x%llx",
		    what, run->memory_fault.gpa, run->memory_fault.size,
		    run->memory_fault.flags);
	TEST_ASSERT(!r, "%s: KVM_RUN failed, errno %d (%s)", what, errno, strerror(errno));

	switch (get_ucall(g->vcpu, &uc)) {
	case UCALL_SYNC:
		TEST_ASSERT(uc.args[1] == op, "%s: guest finished op %lu, expected %lu",
			    what, uc.args[1], op);
		break;
	case UCALL_ABORT:
		REPORT_GUEST_ASSERT(uc);
		break;
	default:
		TEST_FAIL("%s: unexpected exit %s", what, exit_reason_str(run->exit_reason));
	}
}

struct map_stats {
	u64 p4k, p2m, p1g;
};

static void read_map_stats(struct kvm_vm *vm, struct map_stats *s)
{
	s->p4k = vm_get_stat(vm, pages_4k);
	s->p2m = vm_get_stat(vm, pages_2m);
	s->p1g = vm_get_stat(vm, pages_1g);
}

/* ---------------------------------------------------------------------- */
/* Scenarios.                                                             */

/* KVM_CAP_GUEST_MEMFD_FLAGS reports HUGETLB, but no size bits. */
static int test_caps(const struct hsize *unused)
{
	static const unsigned long types[] = {
		KVM_X86_DEFAULT_VM, KVM_X86_SW_PROTECTED_VM,
	};
	struct kvm_vm *vm;
	size_t i;
	u64 val;

	ksft_print_msg("Default huge page size %luK, pools: 2M %s, 1G %s\n",
		       default_hs ? default_hs->size >> 10 : 0,
		       HS_2M->present ? "yes" : "no", HS_1G->present ? "yes" : "no");

	val = kvm_check_cap(KVM_CAP_GUEST_MEMFD_FLAGS);
	TEST_ASSERT(val & GUEST_MEMFD_FLAG_HUGETLB,
		    "/dev/kvm reports KVM_CAP_GUEST_MEMFD_FLAGS = 0x%lx, without GUEST_MEMFD_FLAG_HUGETLB (0x%llx)",
		    val, GUEST_MEMFD_FLAG_HUGETLB);
	TEST_ASSERT(!(val & HUGE_SIZE_BITS),
		    "/dev/kvm reports KVM_CAP_GUEST_MEMFD_FLAGS = 0x%lx, with page size bits (0x%lx)",
		    val, val & HUGE_SIZE_BITS);

	TEST_ASSERT(have_sw_protected,
		    "KVM_X86_SW_PROTECTED_VM is not supported, KVM_CAP_VM_TYPES = 0x%x",
		    kvm_check_cap(KVM_CAP_VM_TYPES));

	for (i = 0; i < ARRAY_SIZE(types); i++) {
		vm = vm_create_barebones_type(types[i]);
		val = vm_check_cap(vm, KVM_CAP_GUEST_MEMFD_FLAGS);
		TEST_ASSERT(val & GUEST_MEMFD_FLAG_HUGETLB,
			    "VM type %lu reports KVM_CAP_GUEST_MEMFD_FLAGS = 0x%lx, without GUEST_MEMFD_FLAG_HUGETLB",
			    types[i], val);
		TEST_ASSERT(!(val & HUGE_SIZE_BITS),
			    "VM type %lu reports KVM_CAP_GUEST_MEMFD_FLAGS = 0x%lx, with page size bits",
			    types[i], val);
		if (types[i] == KVM_X86_DEFAULT_VM)
			TEST_ASSERT((val & SHARED_FLAGS) == SHARED_FLAGS,
				    "Default VM reports KVM_CAP_GUEST_MEMFD_FLAGS = 0x%lx, expected MMAP and INIT_SHARED",
				    val);
		ksft_print_msg("VM type %lu: KVM_CAP_GUEST_MEMFD_FLAGS = 0x%lx\n", types[i], val);
		kvm_vm_free(vm);
	}
	return KSFT_PASS;
}

/*
 * KVM_CREATE_GUEST_MEMFD with @flags, and @reserved (1 + index, 0 for none)
 * set in reserved[].  Expect failure with @err, or if @err is 0, success
 * with the file reserving huge pages of @hs.
 */
static void create_case(struct kvm_vm *vm, const char *what, u64 size, u64 flags,
			int reserved, int err, const struct hsize *hs)
{
	struct kvm_create_guest_memfd args = {
		.size = size,
		.flags = flags,
	};
	struct hp_snap snap;
	struct stat st;
	int fd;

	if (reserved)
		args.reserved[reserved - 1] = 1;

	hp_snap(&snap);
	fd = __vm_ioctl(vm, KVM_CREATE_GUEST_MEMFD, &args);

	if (err) {
		TEST_ASSERT(fd == -1 && errno == err,
			    "%s (size 0x%lx flags 0x%lx, reserved[] index %d set, -1: none): expected %s, got fd %d errno %d (%s)",
			    what, size, flags, reserved - 1, strerror(err), fd, errno,
			    strerror(errno));
		hp_check_snap(&snap, NULL, what);
		return;
	}

	TEST_ASSERT(fd >= 0,
		    "%s (size 0x%lx flags 0x%lx): KVM_CREATE_GUEST_MEMFD failed, errno %d (%s)",
		    what, size, flags, errno, strerror(errno));
	hp_check(hs, snap_of(&snap, hs), 0, size / hs->size, what);
	hp_check_snap(&snap, hs, what);

	TEST_ASSERT(!fstat(fd, &st), "%s: fstat() failed, errno %d", what, errno);
	TEST_ASSERT(st.st_size == size && st.st_blksize == hs->size,
		    "%s: st_size 0x%lx st_blksize 0x%lx, expected 0x%lx and 0x%lx",
		    what, st.st_size, st.st_blksize, size, hs->size);

	kvm_close(fd);
	hp_check_restored(hs, snap_of(&snap, hs), what);
}

/* Which flags, size bits and reserved[] values are accepted. */
static int test_flags(const struct hsize *unused)
{
	static const u8 no_hstate[] = { 12, 14, 16, 22, 29, 31, 32, 63 };
	const u64 h2 = hflags(HS_2M);
	const u64 h1 = hflags(HS_1G);
	struct kvm_vm *vm;
	char what[128];
	int bit, i;
	u64 cap;

	if (!hp_require(HS_2M, 1))
		return KSFT_SKIP;

	vm = vm_create_barebones();
	cap = vm_check_cap(vm, KVM_CAP_GUEST_MEMFD_FLAGS);

	if (default_hs && hp_require(default_hs, 1))
		create_case(vm, "HUGETLB without size bits (default size)", default_hs->size,
			    GUEST_MEMFD_FLAG_HUGETLB, 0, 0, default_hs);
	create_case(vm, "HUGETLB | HUGE_2MB", SZ_2M, h2, 0, 0, HS_2M);
	create_case(vm, "HUGETLB | HUGE_2MB | MMAP", SZ_4M, h2 | GUEST_MEMFD_FLAG_MMAP,
		    0, 0, HS_2M);
	create_case(vm, "HUGETLB | HUGE_2MB | MMAP | INIT_SHARED", SZ_2M, h2 | SHARED_FLAGS,
		    0, 0, HS_2M);

	if (hp_require(HS_1G, 1)) {
		create_case(vm, "HUGETLB | HUGE_1GB", SZ_1G, h1, 0, 0, HS_1G);
		create_case(vm, "HUGETLB | HUGE_1GB | MMAP | INIT_SHARED", SZ_1G,
			    h1 | SHARED_FLAGS, 0, 0, HS_1G);
	} else {
		ksft_print_msg("Not creating 1G files\n");
	}

	create_case(vm, "HUGE_2MB without HUGETLB", SZ_2M, HS_2M->flag, 0, EINVAL, NULL);
	create_case(vm, "HUGE_2MB | MMAP | INIT_SHARED without HUGETLB", SZ_2M,
		    HS_2M->flag | SHARED_FLAGS, 0, EINVAL, NULL);
	create_case(vm, "HUGE_1GB without HUGETLB", SZ_1G, HS_1G->flag, 0, EINVAL, NULL);

	for (i = 0; i < ARRAY_SIZE(no_hstate); i++) {
		u8 shift = no_hstate[i];
		/* A size that would be aligned to such a huge page. */
		u64 size = shift <= 21 ? SZ_2M : shift <= 30 ? SZ_1G : SZ_4G;

		snprintf(what, sizeof(what), "HUGETLB with size bits for 2^%u bytes (no hstate)",
			 shift);
		create_case(vm, what, size, GUEST_MEMFD_FLAG_HUGETLB | HUGE_LOG2(shift),
			    0, EINVAL, NULL);
	}

	for (bit = 0; bit < 64; bit++) {
		if (BIT_ULL(bit) & (cap | HUGE_SIZE_BITS))
			continue;
		snprintf(what, sizeof(what), "HUGETLB | HUGE_2MB with unknown flag bit %d", bit);
		create_case(vm, what, SZ_2M, h2 | BIT_ULL(bit), 0, EINVAL, NULL);
	}

	for (i = 0; i < ARRAY_SIZE(((struct kvm_create_guest_memfd *)0)->reserved); i++) {
		create_case(vm, "HUGETLB | HUGE_2MB with non-zero reserved[]", SZ_2M, h2,
			    i + 1, EINVAL, NULL);
		create_case(vm, "HUGETLB with non-zero reserved[]",
			    default_hs ? default_hs->size : SZ_2M,
			    GUEST_MEMFD_FLAG_HUGETLB, i + 1, EINVAL, NULL);
		create_case(vm, "HUGETLB | HUGE_2MB | MMAP | INIT_SHARED with non-zero reserved[]",
			    SZ_2M, h2 | SHARED_FLAGS, i + 1, EINVAL, NULL);
	}
	kvm_vm_free(vm);

	if (!have_sw_protected) {
		ksft_print_msg("No KVM_X86_SW_PROTECTED_VM, only the default VM was checked\n");
		return KSFT_PASS;
	}

	vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	cap = vm_check_cap(vm, KVM_CAP_GUEST_MEMFD_FLAGS);
	create_case(vm, "SW-protected VM: HUGETLB | HUGE_2MB", SZ_2M, h2, 0, 0, HS_2M);
	if (cap & GUEST_MEMFD_FLAG_MMAP)
		create_case(vm, "SW-protected VM: HUGETLB | HUGE_2MB | MMAP", SZ_2M,
			    h2 | GUEST_MEMFD_FLAG_MMAP, 0, 0, HS_2M);
	if ((cap & SHARED_FLAGS) == SHARED_FLAGS)
		create_case(vm, "SW-protected VM: HUGETLB | HUGE_2MB | MMAP | INIT_SHARED",
			    SZ_2M, h2 | SHARED_FLAGS, 0, 0, HS_2M);
	create_case(vm, "SW-protected VM: HUGE_2MB without HUGETLB", SZ_2M, HS_2M->flag,
		    0, EINVAL, NULL);
	create_case(vm, "SW-protected VM: HUGETLB with size bits for 4M", SZ_4M,
		    GUEST_MEMFD_FLAG_HUGETLB | HUGE_LOG2(22), 0, EINVAL, NULL);
	create_case(vm, "SW-protected VM: HUGETLB | HUGE_2MB with non-zero reserved[5]", SZ_2M,
		    h2, 6, EINVAL, NULL);
	kvm_vm_free(vm);

	return KSFT_PASS;
}

/* fstat() reports the huge page size as the block size. */
static int test_blksize(const struct hsize *unused)
{
	struct kvm_vm *vm = vm_create_barebones();
	int fd, nr_checked = 0;
	struct stat st;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(hsizes); i++) {
		const struct hsize *hs = &hsizes[i];
		const u64 flags[] = { hflags(hs), hflags(hs) | SHARED_FLAGS,
				      GUEST_MEMFD_FLAG_HUGETLB };
		size_t j;

		if (!hp_require(hs, 1))
			continue;

		for (j = 0; j < ARRAY_SIZE(flags); j++) {
			if (!(flags[j] & HUGE_SIZE_BITS) && hs != default_hs)
				continue;

			fd = vm_create_guest_memfd(vm, hs->size, flags[j]);
			TEST_ASSERT(!fstat(fd, &st), "fstat() failed, errno %d", errno);
			TEST_ASSERT(st.st_blksize == hs->size && st.st_size == hs->size,
				    "%s file with flags 0x%lx: st_blksize 0x%lx st_size 0x%lx, expected 0x%lx for both",
				    hs->name, flags[j], st.st_blksize, st.st_size, hs->size);
			kvm_close(fd);
			nr_checked++;
		}
	}

	/* A file without HUGETLB is as it was. */
	fd = vm_create_guest_memfd(vm, page_size, 0);
	TEST_ASSERT(!fstat(fd, &st), "fstat() failed, errno %d", errno);
	TEST_ASSERT(st.st_blksize == page_size,
		    "File without HUGETLB: st_blksize 0x%lx, expected 0x%lx",
		    st.st_blksize, page_size);
	kvm_close(fd);

	kvm_vm_free(vm);
	return nr_checked ? KSFT_PASS : KSFT_SKIP;
}

/* Files are whole huge pages; memslots bind at any page aligned offset. */
static int test_alignment(const struct hsize *hs)
{
	const u64 hp = hs->size;
	const u64 bad_sizes[] = {
		0, page_size, hp >> 9, hp / 2, hp - page_size, hp + page_size, hp + hp / 2,
	};
	const u64 flags[] = { hflags(hs), hflags(hs) | SHARED_FLAGS, GUEST_MEMFD_FLAG_HUGETLB };
	struct hp_counts pool, base;
	struct kvm_vm *vm;
	char what[128];
	size_t i, j;
	int fd, r;

	if (!hp_require(hs, 1))
		return KSFT_SKIP;
	hp_read(hs, &pool);

	vm = vm_create_barebones();
	for (j = 0; j < ARRAY_SIZE(flags); j++) {
		if (!(flags[j] & HUGE_SIZE_BITS) && hs != default_hs)
			continue;
		for (i = 0; i < ARRAY_SIZE(bad_sizes); i++) {
			snprintf(what, sizeof(what),
				 "%s file (flags 0x%lx) of 0x%lx bytes, not a multiple of the huge page size",
				 hs->name, flags[j], bad_sizes[i]);
			create_case(vm, what, bad_sizes[i], flags[j], 0, EINVAL, NULL);
		}
	}

	fd = vm_create_guest_memfd(vm, hp, hflags(hs));
	hp_read(hs, &base);

	/* Page aligned, but not huge page aligned, offsets bind fine. */
	for (i = 0; i < 2; i++) {
		u64 offset = i ? hp >> 9 : page_size;

		r = __vm_set_user_memory_region2(vm, TEST_SLOT, KVM_MEM_GUEST_MEMFD, TEST_GPA,
						 hp - offset, NULL, fd, offset);
		TEST_ASSERT(!r,
			    "Binding a %s file at guest_memfd offset 0x%lx failed, errno %d (%s)",
			    hs->name, offset, errno, strerror(errno));
		vm_set_user_memory_region2(vm, TEST_SLOT, KVM_MEM_GUEST_MEMFD, TEST_GPA, 0,
					   NULL, fd, 0);
	}

	r = __vm_set_user_memory_region2(vm, TEST_SLOT, KVM_MEM_GUEST_MEMFD, TEST_GPA,
					 hp - page_size, NULL, fd, page_size + 1);
	TEST_ASSERT(r == -1 && errno == EINVAL,
		    "Binding at a guest_memfd offset that isn't page aligned: expected EINVAL, got r = %d errno = %d",
		    r, errno);
	r = __vm_set_user_memory_region2(vm, TEST_SLOT, KVM_MEM_GUEST_MEMFD, TEST_GPA,
					 hp, NULL, fd, page_size);
	TEST_ASSERT(r == -1 && errno == EINVAL,
		    "Binding beyond the end of the file: expected EINVAL, got r = %d errno = %d",
		    r, errno);

	r = fallocate(fd, PUNCH_HOLE, 1, page_size);
	TEST_ASSERT(r == -1 && errno == EINVAL,
		    "PUNCH_HOLE at an offset that isn't page aligned: expected EINVAL, got r = %d errno = %d",
		    r, errno);
	r = fallocate(fd, PUNCH_HOLE, 0, page_size - 1);
	TEST_ASSERT(r == -1 && errno == EINVAL,
		    "PUNCH_HOLE of a length that isn't page aligned: expected EINVAL, got r = %d errno = %d",
		    r, errno);
	hp_check(hs, &base, 0, 0, "after the rejected bindings and fallocate()s");

	kvm_close(fd);
	kvm_vm_free(vm);
	hp_check_restored(hs, &pool, "alignment: file closed, VM freed");
	return KSFT_PASS;
}

/* The file reserves its huge pages; allocation and release move the counters. */
static int test_reserve(const struct hsize *hs)
{
	const long n = is_1g(hs) ? 2 : 4;
	const u64 hp = hs->size;
	struct hp_counts pool, now;
	struct gvm g;
	u8 *p;

	if (!hp_require(hs, n))
		return KSFT_SKIP;
	hp_read(hs, &pool);

	gvm_init(&g, KVM_X86_DEFAULT_VM, hs, n, hflags(hs) | SHARED_FLAGS, false);
	hp_check(hs, &pool, 0, n, "KVM_CREATE_GUEST_MEMFD reserves every huge page of the file");

	kvm_fallocate(g.fd, FALLOC_FL_KEEP_SIZE, 0, hp);
	hp_check(hs, &pool, -1, n - 1, "fallocate() of huge page 0");

	p = g.mem + hp + 123 * sizeof(u64);
	TEST_ASSERT(host_touch(p, true), "Writing huge page 1 raised SIGBUS");
	hp_check(hs, &pool, -2, n - 2, "write fault on huge page 1");

	TEST_ASSERT(host_touch(g.mem + 5 * page_size, true) && host_touch(p, false) &&
		    host_touch(g.mem + hp + hp - page_size, true),
		    "Touching allocated huge pages raised SIGBUS");
	hp_check(hs, &pool, -2, n - 2, "more accesses to huge pages 0 and 1");

	kvm_fallocate(g.fd, FALLOC_FL_KEEP_SIZE, 0, g.size);
	hp_check(hs, &pool, -n, 0, "fallocate() of the whole file");

	kvm_close(g.fd);
	g.fd = -1;
	hp_check(hs, &pool, -n, 0, "close() with the file still mapped");

	kvm_munmap(g.mem, g.size);
	g.mem = NULL;
	hp_read(hs, &now);
	ksft_print_msg("%s: closed and unmapped, VM alive: free %ld resv %ld (was %ld, %ld)\n",
		       hs->name, now.free, now.resv, pool.free, pool.resv);

	gvm_destroy(&g);
	hp_check_restored(hs, &pool, "file closed and unmapped, VM freed");

	/* Nothing allocated: the reservation alone goes away. */
	gvm_init(&g, KVM_X86_DEFAULT_VM, hs, n, hflags(hs), false);
	hp_check(hs, &pool, 0, n, "second file, reserved only");
	gvm_destroy(&g);
	hp_check_restored(hs, &pool, "reserved-only file closed, VM freed");

	/* The VM freed first: the file holds it and keeps working. */
	gvm_init(&g, KVM_X86_DEFAULT_VM, hs, 1, hflags(hs) | SHARED_FLAGS, false);
	kvm_vm_free(g.vm);
	g.vm = NULL;
	hp_check(hs, &pool, 0, 1, "VM freed before its guest_memfd");
	kvm_fallocate(g.fd, FALLOC_FL_KEEP_SIZE, 0, hp);
	fill_page(g.mem, TAG(1, 0));
	check_page(g.mem, TAG(1, 0), "file outliving its VM");
	hp_check(hs, &pool, -1, 0, "fallocate() after the VM was freed");
	gvm_destroy(&g);
	hp_check_restored(hs, &pool, "file that outlived its VM closed and unmapped");

	return KSFT_PASS;
}

/* A file the pool can't fully reserve isn't created, and changes nothing. */
static int test_enomem(const struct hsize *hs)
{
	const u64 hp = hs->size;
	const u64 flags[] = { hflags(hs), hflags(hs) | SHARED_FLAGS };
	struct hp_counts pool, full;
	struct kvm_vm *vm;
	char what[128];
	long avail, overcommit;
	size_t i;
	int fd;

	if (!hp_require(hs, 0))
		return KSFT_SKIP;

	overcommit = hp_read_file(hs, "nr_overcommit_hugepages");
	if (overcommit) {
		ksft_print_msg("%s: nr_overcommit_hugepages = %ld, surplus pages can back files\n",
			       hs->name, overcommit);
		return KSFT_SKIP;
	}

	hp_read(hs, &pool);
	avail = pool.free - pool.resv;
	ksft_print_msg("%s: %ld huge pages free and unreserved, asking for %ld\n",
		       hs->name, avail, avail + 1);

	vm = vm_create_barebones();
	for (i = 0; i < ARRAY_SIZE(flags); i++) {
		snprintf(what, sizeof(what),
			 "%s file of %ld huge pages (flags 0x%lx), pool has %ld",
			 hs->name, avail + 1, flags[i], avail);
		create_case(vm, what, (avail + 1) * hp, flags[i], 0, ENOMEM, NULL);
	}

	if (!avail) {
		kvm_vm_free(vm);
		return KSFT_PASS;
	}

	/* Exactly what's available fits, and then nothing more does. */
	fd = vm_create_guest_memfd(vm, avail * hp, hflags(hs));
	hp_check(hs, &pool, 0, avail, "file reserving the whole pool");
	hp_read(hs, &full);
	create_case(vm, "one more huge page, with the pool fully reserved", hp, hflags(hs),
		    0, ENOMEM, NULL);
	hp_check(hs, &full, 0, 0, "after the ENOMEM with the pool fully reserved");

	kvm_close(fd);
	hp_check_restored(hs, &pool, "file reserving the whole pool closed");
	create_case(vm, "one huge page, with the pool free again", hp, hflags(hs), 0, 0, hs);

	kvm_vm_free(vm);
	hp_check_restored(hs, &pool, "enomem: VM freed");
	return KSFT_PASS;
}

/* A hugetlb cgroup v2 file of this test's cgroup, for page size @hs. */
static long cg_read(const char *cg, const struct hsize *hs, const char *name)
{
	char path[256];
	long val;
	FILE *f;

	snprintf(path, sizeof(path), "%s/hugetlb.%sB.%s", cg, hs->name, name);
	f = fopen(path, "r");
	TEST_ASSERT(f, "open %s: errno %d", path, errno);
	TEST_ASSERT(fscanf(f, "%ld", &val) == 1, "read %s", path);
	fclose(f);
	return val;
}

static void cg_write(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);

	TEST_ASSERT(fd >= 0, "open %s: errno %d", path, errno);
	TEST_ASSERT(write(fd, val, strlen(val)) == (ssize_t)strlen(val),
		    "write '%s' to %s: errno %d", val, path, errno);
	close(fd);
}

/*
 * The file's reservation is charged to the creator's hugetlb cgroup at
 * creation (rsvd), allocations to its usage counter, both given back on
 * close; a reservation limit below the file size fails creation.
 */
static int test_cgroup(const struct hsize *hs)
{
	const char *root = "/sys/fs/cgroup";
	const u64 hp = hs->size;
	char cg[128], path[192], val[32];
	struct hp_counts pool;
	struct kvm_vm *vm;
	int fd;

	if (!hp_require(hs, 2))
		return KSFT_SKIP;
	hp_read(hs, &pool);

	/* This scenario runs in its own child: move it into a fresh cgroup. */
	snprintf(cg, sizeof(cg), "%s/gmem_hugetlb_%d", root, getpid());
	snprintf(path, sizeof(path), "%s/cgroup.subtree_control", root);
	cg_write(path, "+hugetlb");
	TEST_ASSERT(!mkdir(cg, 0755), "mkdir %s: errno %d", cg, errno);
	snprintf(path, sizeof(path), "%s/cgroup.procs", cg);
	snprintf(val, sizeof(val), "%d", getpid());
	cg_write(path, val);

	vm = vm_create_barebones();
	TEST_ASSERT_EQ(cg_read(cg, hs, "rsvd.current"), 0);
	fd = vm_create_guest_memfd(vm, 2 * hp, hflags(hs));
	TEST_ASSERT(cg_read(cg, hs, "rsvd.current") == 2 * hp,
		    "%s: rsvd.current %ld after creating a 2-page file, expected %lu",
		    hs->name, cg_read(cg, hs, "rsvd.current"), 2 * hp);
	TEST_ASSERT_EQ(cg_read(cg, hs, "current"), 0);

	kvm_fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, hp);
	TEST_ASSERT(cg_read(cg, hs, "current") == hp && cg_read(cg, hs, "rsvd.current") == 2 * hp,
		    "%s: after allocating one page: current %ld rsvd.current %ld, expected %lu and %lu",
		    hs->name, cg_read(cg, hs, "current"), cg_read(cg, hs, "rsvd.current"),
		    hp, 2 * hp);

	kvm_close(fd);
	TEST_ASSERT(!cg_read(cg, hs, "current") && !cg_read(cg, hs, "rsvd.current"),
		    "%s: after close: current %ld rsvd.current %ld, expected 0",
		    hs->name, cg_read(cg, hs, "current"), cg_read(cg, hs, "rsvd.current"));

	/* A reservation limit of one page: a two-page file fails, one fits. */
	snprintf(path, sizeof(path), "%s/hugetlb.%sB.rsvd.max", cg, hs->name);
	snprintf(val, sizeof(val), "%lu", hp);
	cg_write(path, val);
	create_case(vm, "two-page file over a one-page hugetlb rsvd.max", 2 * hp,
		    hflags(hs), 0, ENOMEM, NULL);
	TEST_ASSERT_EQ(cg_read(cg, hs, "rsvd.current"), 0);
	create_case(vm, "one-page file within the hugetlb rsvd.max", hp, hflags(hs), 0, 0, hs);
	TEST_ASSERT_EQ(cg_read(cg, hs, "rsvd.current"), 0);

	kvm_vm_free(vm);
	hp_check_restored(hs, &pool, "cgroup: VM freed");

	snprintf(path, sizeof(path), "%s/cgroup.procs", root);
	snprintf(val, sizeof(val), "%d", getpid());
	cg_write(path, val);
	TEST_ASSERT(!rmdir(cg), "rmdir %s: errno %d", cg, errno);
	return KSFT_PASS;
}

/*
 * PUNCH_HOLE of [@off, @off + @len), then check the pool is @base less
 * @nr_alloc allocated pages and that the sample pages hold what they should.
 */
static void punch(struct gvm *g, struct samples *s, const struct hp_counts *base,
		  u64 off, u64 len, long nr_alloc, const char *what)
{
	const u64 hp = g->hs->size;
	u64 k;
	int i;

	kvm_fallocate(g->fd, PUNCH_HOLE, off, len);

	for (i = 0; i < s->nr; i++) {
		if (s->off[i] >= off && s->off[i] < off + len)
			s->tag[i] = 0;
	}
	/* Huge pages wholly inside the range go back to the pool. */
	for (k = align_up(off, hp); k + hp <= off + len; k += hp)
		s->allocated[k / hp] = false;

	hp_check(g->hs, base, -nr_alloc, -nr_alloc, what);
	samples_check(s, g->mem, g->hs, what);
	hp_check(g->hs, base, -nr_alloc, -nr_alloc, what);
}

/* fallocate() allocates whole huge pages, PUNCH_HOLE frees or zeroes. */
static int test_punch(const struct hsize *hs)
{
	const long n = is_1g(hs) ? 1 : 4;
	const u64 hp = hs->size;
	const u64 rel[] = {
		0, page_size, 2 * page_size, 3 * page_size, 4 * page_size,
		hp / 2, hp - page_size,
	};
	struct hp_counts pool, base;
	struct samples s;
	long nr_alloc = 1;
	struct gvm g;
	int r;

	if (!hp_require(hs, n))
		return KSFT_SKIP;
	hp_read(hs, &pool);

	gvm_init(&g, KVM_X86_DEFAULT_VM, hs, n, hflags(hs) | SHARED_FLAGS, false);
	hp_check(hs, &pool, 0, n, "file created");
	hp_read(hs, &base);

	kvm_fallocate(g.fd, FALLOC_FL_KEEP_SIZE, page_size, page_size);
	hp_check(hs, &base, -1, -1, "fallocate() of one 4K page allocates its whole huge page");
	kvm_fallocate(g.fd, FALLOC_FL_KEEP_SIZE, 0, hp);
	hp_check(hs, &base, -1, -1, "fallocate() of an allocated huge page");

	if (n >= 4) {
		kvm_fallocate(g.fd, FALLOC_FL_KEEP_SIZE, hp, hp);
		hp_check(hs, &base, -2, -2, "fallocate() of huge page 1");
		kvm_fallocate(g.fd, FALLOC_FL_KEEP_SIZE, 3 * hp - page_size, 2 * page_size);
		hp_check(hs, &base, -4, -4, "fallocate() of 8K across huge pages 2 and 3");
		kvm_fallocate(g.fd, FALLOC_FL_KEEP_SIZE, 0, g.size);
		hp_check(hs, &base, -4, -4, "fallocate() of the whole, allocated file");
		nr_alloc = 4;
	}

	/* Data in every allocated huge page; writing doesn't allocate more. */
	samples_init(&s, hs, nr_alloc, rel, ARRAY_SIZE(rel));
	samples_fill(&s, g.mem, hs, 1);
	hp_check(hs, &base, -nr_alloc, -nr_alloc, "writes to allocated huge pages");

	/* Parts of a huge page: zeroed, the rest and the folio stay. */
	punch(&g, &s, &base, 2 * page_size, 2 * page_size, nr_alloc,
	      "PUNCH_HOLE of 8K inside huge page 0");
	punch(&g, &s, &base, hp / 2, page_size, nr_alloc,
	      "PUNCH_HOLE of 4K in the middle of huge page 0");

	if (n >= 4) {
		punch(&g, &s, &base, 2 * hp - page_size, 2 * page_size, nr_alloc,
		      "PUNCH_HOLE of 8K across huge pages 1 and 2");
		punch(&g, &s, &base, hp + hp / 2, hp / 2 + hp, --nr_alloc,
		      "PUNCH_HOLE of the 2nd half of huge page 1 and all of huge page 2");
	}

	/* A whole huge page goes back to the pool, and comes back zeroed. */
	punch(&g, &s, &base, 0, hp, --nr_alloc, "PUNCH_HOLE of huge page 0");
	check_page(g.mem + hp / 2, 0, "reading a punched huge page");
	s.allocated[0] = true;
	hp_check(hs, &base, -(nr_alloc + 1), -(nr_alloc + 1), "read fault on a punched huge page");
	samples_check(&s, g.mem, hs, "huge page 0 refaulted after PUNCH_HOLE");

	punch(&g, &s, &base, 0, g.size, 0, "PUNCH_HOLE of the whole file");

	r = fallocate(g.fd, PUNCH_HOLE, page_size + 1, page_size);
	TEST_ASSERT(r == -1 && errno == EINVAL,
		    "PUNCH_HOLE at an unaligned offset: expected EINVAL, got r = %d errno = %d",
		    r, errno);
	r = fallocate(g.fd, FALLOC_FL_KEEP_SIZE, 0, page_size - 1);
	TEST_ASSERT(r == -1 && errno == EINVAL,
		    "fallocate() of an unaligned length: expected EINVAL, got r = %d errno = %d",
		    r, errno);
	hp_check(hs, &base, 0, 0, "after the rejected fallocate()s");

	gvm_destroy(&g);
	hp_check_restored(hs, &pool, "punch: file closed, VM freed");
	return KSFT_PASS;
}

/* Fresh memory reads zero: new, punched, re-fallocated and recycled. */
static int test_zero(const struct hsize *hs)
{
	const long n = is_1g(hs) ? 1 : 2;
	struct hp_counts pool, base;
	struct gvm g;

	if (!hp_require(hs, n))
		return KSFT_SKIP;
	hp_read(hs, &pool);

	gvm_init(&g, KVM_X86_DEFAULT_VM, hs, n, hflags(hs) | SHARED_FLAGS, false);
	hp_read(hs, &base);
	check_zero(g.mem, g.size, "new file, read faults");
	hp_check(hs, &base, -n, -n, "new file read through mmap()");

	memset(g.mem, 0xa5, g.size);
	kvm_fallocate(g.fd, PUNCH_HOLE, 0, g.size);
	hp_check(hs, &base, 0, 0, "dirty file punched");
	check_zero(g.mem, g.size, "punched file, read faults");

	memset(g.mem, 0xa5, g.size);
	kvm_fallocate(g.fd, PUNCH_HOLE, 0, g.size);
	kvm_fallocate(g.fd, FALLOC_FL_KEEP_SIZE, 0, g.size);
	hp_check(hs, &base, -n, -n, "dirty file punched and fallocate()d");
	check_zero(g.mem, g.size, "punched and fallocate()d file");

	/* The same huge pages, most likely, in a new file. */
	memset(g.mem, 0x5a, g.size);
	gvm_destroy(&g);
	hp_check_restored(hs, &pool, "dirty file closed, VM freed");

	gvm_init(&g, KVM_X86_DEFAULT_VM, hs, n, hflags(hs) | SHARED_FLAGS, false);
	kvm_fallocate(g.fd, FALLOC_FL_KEEP_SIZE, 0, g.size);
	check_zero(g.mem, g.size, "new file on recycled huge pages");
	gvm_destroy(&g);

	hp_check_restored(hs, &pool, "zero: file closed, VM freed");
	return KSFT_PASS;
}

/* mmap() of a shared file reads and writes, of a private one SIGBUSes. */
static int test_mmap(const struct hsize *hs)
{
	const long n = is_1g(hs) ? 1 : 2;
	const u64 hp = hs->size;
	const u64 rel[] = { 0, page_size, hp / 2, hp - page_size };
	struct hp_counts pool;
	struct samples s;
	u8 *mem2;
	struct gvm g;

	if (!hp_require(hs, n))
		return KSFT_SKIP;
	hp_read(hs, &pool);

	gvm_init(&g, KVM_X86_DEFAULT_VM, hs, n, hflags(hs) | SHARED_FLAGS, false);
	samples_init(&s, hs, n, rel, ARRAY_SIZE(rel));
	samples_fill(&s, g.mem, hs, 1);
	samples_check(&s, g.mem, hs, "shared file written through mmap()");
	hp_check(hs, &pool, -n, 0, "every huge page written through mmap()");

	/* The data stays with the file, not the mapping. */
	kvm_munmap(g.mem, g.size);
	g.mem = gmem_mmap(g.fd, g.size, hp, 0);
	samples_check(&s, g.mem, hs, "shared file mapped again");

	/* A second mapping is the same memory. */
	mem2 = gmem_mmap(g.fd, g.size, hp, 0);
	samples_check(&s, mem2, hs, "second mapping of the file");
	s.tag[0] = TAG(2, 0);
	fill_page(mem2 + s.off[0], s.tag[0]);
	samples_check(&s, g.mem, hs, "first mapping after writing the second");
	kvm_munmap(mem2, g.size);

	/* A mapping at a huge page offset of the file. */
	if (n > 1) {
		mem2 = gmem_mmap(g.fd, hp, hp, hp);
		check_page(mem2, s.tag[ARRAY_SIZE(rel)], "mapping of huge page 1 alone");
		kvm_munmap(mem2, hp);
	}

	/* Beyond the end of the file is SIGBUS. */
	mem2 = gmem_mmap(g.fd, 2 * g.size, hp, 0);
	check_page(mem2 + g.size - page_size, s.tag[s.nr - 1],
		   "last page of the file, in a mapping twice its size");
	TEST_ASSERT(!host_touch(mem2 + g.size, false),
		    "Reading past the end of the file did not raise SIGBUS");
	kvm_munmap(mem2, 2 * g.size);
	hp_check(hs, &pool, -n, 0, "after remapping the file");

	gvm_destroy(&g);
	hp_check_restored(hs, &pool, "shared file closed, VM freed");

	/* Without INIT_SHARED, the memory is private to the guest. */
	gvm_init(&g, KVM_X86_DEFAULT_VM, hs, n, hflags(hs) | GUEST_MEMFD_FLAG_MMAP, false);
	check_private(g.mem, "private file, offset 0");
	check_private(g.mem + g.size - page_size, "private file, last page");
	kvm_fallocate(g.fd, FALLOC_FL_KEEP_SIZE, 0, hp);
	check_private(g.mem + page_size, "private file, allocated huge page");
	gvm_destroy(&g);
	hp_check_restored(hs, &pool, "private file closed, VM freed");

	return KSFT_PASS;
}

static const char *vm_type_name(unsigned long type)
{
	return type == KVM_X86_SW_PROTECTED_VM ? "SW-protected VM" : "default VM";
}

/*
 * A guest touches the pages at TEST_GPA + @rel[] of a file of @nr_hpages
 * huge pages bound at TEST_GPA from guest_memfd offset @offset, @slot_size
 * bytes.  If @offset is congruent with TEST_GPA, every huge page touched
 * must be mapped huge by KVM, else none.
 */
static void guest_touch(const struct hsize *hs, unsigned long type, u64 nr_hpages,
			u64 offset, u64 slot_size, const u64 *rel, int nr)
{
	const bool congruent = !(offset % hs->size);
	const bool shared = type == KVM_X86_DEFAULT_VM;
	u64 gpas[MAX_TOUCH], tags[MAX_TOUCH], folios[MAX_TOUCH];
	struct map_stats before, after, punched;
	struct hp_counts pool, base;
	long nr_folios = 0, j;
	u64 huge_before, huge_after, other_before, other_after;
	char what[128];
	struct gvm g;
	int i;

	hp_read(hs, &pool);
	gvm_init(&g, type, hs, nr_hpages, hflags(hs) | (shared ? SHARED_FLAGS : 0), true);
	hp_check(hs, &pool, 0, nr_hpages, "file for the guest created");
	hp_read(hs, &base);
	gvm_bind(&g, offset, slot_size);

	for (i = 0; i < nr; i++) {
		u64 folio = (rel[i] + offset) / hs->size;

		gpas[i] = TEST_GPA + rel[i];
		tags[i] = TAG(1, i);
		gvm_map(&g, gpas[i]);
		for (j = 0; j < nr_folios && folios[j] != folio; j++)
			;
		if (j == nr_folios)
			folios[nr_folios++] = folio;
	}

	snprintf(what, sizeof(what), "%s, %s file, gpa 0x%lx guest_memfd offset 0x%lx",
		 vm_type_name(type), hs->name, (u64)TEST_GPA, offset);

	/* Let the guest fault in its code and data first. */
	guest_run(&g, 0, 0, NULL, NULL, NULL, what);
	read_map_stats(g.vm, &before);

	guest_run(&g, OP_CHECK | OP_WRITE, nr, gpas, NULL, tags, what);
	read_map_stats(g.vm, &after);
	hp_check(hs, &base, -nr_folios, -nr_folios, what);

	huge_before = is_1g(hs) ? before.p1g : before.p2m;
	huge_after = is_1g(hs) ? after.p1g : after.p2m;
	other_before = is_1g(hs) ? before.p2m : before.p1g;
	other_after = is_1g(hs) ? after.p2m : after.p1g;
	ksft_print_msg("%s: pages_4k %+ld 2m %+ld 1g %+ld, %ld huge pages touched\n",
		       what, (long)(after.p4k - before.p4k), (long)(after.p2m - before.p2m),
		       (long)(after.p1g - before.p1g), nr_folios);

	if (congruent) {
		TEST_ASSERT((long)(huge_after - huge_before) == nr_folios,
			    "%s: KVM has %ld more %s mappings after the guest touched %ld %s pages, expected %ld",
			    what, (long)(huge_after - huge_before), hs->name, nr_folios, hs->name,
			    nr_folios);
		TEST_ASSERT(other_after == other_before,
			    "%s: KVM has %ld more mappings of the other huge size, expected none",
			    what, (long)(other_after - other_before));
	} else {
		TEST_ASSERT(huge_after == huge_before,
			    "%s: guest_memfd offset and GPA differ modulo %s, yet KVM has %ld more %s mappings",
			    what, hs->name, (long)(huge_after - huge_before), hs->name);
	}

	/* The data is where the guest wrote it. */
	if (shared) {
		for (i = 0; i < nr; i++)
			check_page(g.mem + offset + rel[i], tags[i],
				   "host reads what the guest wrote");
	}
	guest_run(&g, OP_CHECK, nr, gpas, tags, NULL, "guest reads back what it wrote");

	/* Punching the file drops KVM's mappings, the guest then reads zero. */
	kvm_fallocate(g.fd, PUNCH_HOLE, 0, g.size);
	read_map_stats(g.vm, &punched);
	TEST_ASSERT(punched.p2m == before.p2m && punched.p1g == before.p1g,
		    "%s: after PUNCH_HOLE of the whole file KVM still has pages_2m %lu pages_1g %lu, had %lu and %lu before the guest touched it",
		    what, punched.p2m, punched.p1g, before.p2m, before.p1g);
	hp_check(hs, &base, 0, 0, "PUNCH_HOLE of the file mapped by the guest");

	guest_run(&g, OP_CHECK, nr, gpas, NULL, NULL, "guest reads the punched file");
	hp_check(hs, &base, -nr_folios, -nr_folios, "guest refaulted the punched file");
	read_map_stats(g.vm, &after);
	huge_after = is_1g(hs) ? after.p1g : after.p2m;
	if (congruent)
		TEST_ASSERT((long)(huge_after - huge_before) == nr_folios,
			    "%s: after PUNCH_HOLE and refault KVM has %ld more %s mappings, expected %ld",
			    what, (long)(huge_after - huge_before), hs->name, nr_folios);

	gvm_destroy(&g);
	hp_check_restored(hs, &pool, what);
}

static void kvm_map_congruent(const struct hsize *hs, unsigned long type)
{
	const u64 hp = hs->size, n = is_1g(hs) ? 1 : 4;
	const u64 rel[] = {
		0, 5 * page_size, n > 1 ? hp + hp / 2 : hp / 2, n * hp - page_size,
	};

	guest_touch(hs, type, n, 0, n * hp, rel, ARRAY_SIZE(rel));
}

/* KVM maps private huge pages of a SW-protected VM huge. */
static int test_kvm_map_private(const struct hsize *hs)
{
	if (!have_sw_protected) {
		ksft_print_msg("No KVM_X86_SW_PROTECTED_VM\n");
		return KSFT_SKIP;
	}
	if (!hp_require(hs, is_1g(hs) ? 1 : 4))
		return KSFT_SKIP;

	kvm_map_congruent(hs, KVM_X86_SW_PROTECTED_VM);
	return KSFT_PASS;
}

/* KVM maps shared (MMAP | INIT_SHARED) huge pages of a default VM huge. */
static int test_kvm_map_shared(const struct hsize *hs)
{
	if (!hp_require(hs, is_1g(hs) ? 1 : 4))
		return KSFT_SKIP;

	kvm_map_congruent(hs, KVM_X86_DEFAULT_VM);
	return KSFT_PASS;
}

/*
 * A memslot whose guest_memfd offset differs from its GPA modulo the huge
 * page size (by a 512th of it: 4K for 2M, 2M for 1G) still works, but must
 * not be mapped at that level.  The memslot covers a whole, aligned huge
 * page of GPAs, backed by two huge pages of the file.
 */
static int test_kvm_map_noncongruent(const struct hsize *hs)
{
	const u64 hp = hs->size, offset = hs->size >> 9;
	const u64 rel[] = { 0, hp / 2, hp - page_size };

	if (!hp_require(hs, 2))
		return KSFT_SKIP;

	if (have_sw_protected)
		guest_touch(hs, KVM_X86_SW_PROTECTED_VM, 2, offset, hp, rel, ARRAY_SIZE(rel));
	else
		ksft_print_msg("No KVM_X86_SW_PROTECTED_VM, only the default VM was checked\n");
	guest_touch(hs, KVM_X86_DEFAULT_VM, 2, offset, hp, rel, ARRAY_SIZE(rel));
	return KSFT_PASS;
}

enum race_mode {
	RACE_FAULT,
	RACE_FALLOCATE,
	RACE_MIXED,
	NR_RACE_MODES,
};

static const char * const race_mode_names[] = {
	"fault", "fallocate", "fault and fallocate",
};

struct race_thread {
	pthread_barrier_t *barrier;
	bool fault;		/* else fallocate() */
	int fd;
	u64 *word;		/* a faulting thread's word, in the huge page */
	u64 val;
	off_t off;
	u64 len;
	int ret, err;
	u64 seen;
	bool sigbus;
};

static void *race_fn(void *data)
{
	struct race_thread *rt = data;

	pthread_barrier_wait(rt->barrier);

	if (!rt->fault) {
		rt->ret = fallocate(rt->fd, FALLOC_FL_KEEP_SIZE, rt->off, rt->len);
		rt->err = errno;
		return NULL;
	}

	if (!host_touch((u8 *)rt->word, false)) {
		rt->sigbus = true;
		return NULL;
	}
	rt->seen = READ_ONCE(*rt->word);
	WRITE_ONCE(*rt->word, rt->val);
	return NULL;
}

/* Threads all fault / fallocate() the same new huge page: exactly one folio. */
static int test_race(const struct hsize *hs)
{
	const u64 hp = hs->size;
	const int iterations = is_1g(hs) ? 1 : 8;
	struct race_thread rt[NR_RACE_THREADS];
	pthread_t threads[NR_RACE_THREADS];
	pthread_barrier_t barrier;
	struct hp_counts pool, base;
	enum race_mode mode;
	char what[128];
	struct gvm g;
	int it, i;

	if (!hp_require(hs, 1))
		return KSFT_SKIP;
	hp_read(hs, &pool);

	gvm_init(&g, KVM_X86_DEFAULT_VM, hs, 1, hflags(hs) | SHARED_FLAGS, false);
	hp_read(hs, &base);

	for (mode = 0; mode < NR_RACE_MODES; mode++) {
		for (it = 0; it < iterations; it++) {
			snprintf(what, sizeof(what),
				 "%d threads racing to %s a new %s page, round %d",
				 NR_RACE_THREADS, race_mode_names[mode], hs->name, it);

			pthread_barrier_init(&barrier, NULL, NR_RACE_THREADS);
			for (i = 0; i < NR_RACE_THREADS; i++) {
				memset(&rt[i], 0, sizeof(rt[i]));
				rt[i].barrier = &barrier;
				rt[i].fault = mode == RACE_FAULT || (mode == RACE_MIXED && (i & 1));
				rt[i].fd = g.fd;
				rt[i].word = (u64 *)(g.mem + i * (hp / NR_RACE_THREADS)) + i;
				rt[i].val = TAG(it + 1, i);
				rt[i].len = hp;
				kvm_pthread_create(&threads[i], NULL, race_fn, &rt[i]);
			}
			for (i = 0; i < NR_RACE_THREADS; i++)
				kvm_pthread_join(threads[i], NULL);
			pthread_barrier_destroy(&barrier);

			for (i = 0; i < NR_RACE_THREADS; i++) {
				TEST_ASSERT(!rt[i].sigbus, "%s: thread %d got SIGBUS", what, i);
				TEST_ASSERT(!rt[i].ret,
					    "%s: thread %d's fallocate() failed, errno %d (%s)",
					    what, i, rt[i].err, strerror(rt[i].err));
				TEST_ASSERT(!rt[i].seen,
					    "%s: thread %d read 0x%lx from the new huge page, expected zero",
					    what, i, rt[i].seen);
			}
			hp_check(hs, &base, -1, -1, what);

			/* Every thread's write is in the one folio. */
			for (i = 0; i < NR_RACE_THREADS; i++)
				TEST_ASSERT(!rt[i].fault || *rt[i].word == rt[i].val,
					    "%s: thread %d wrote 0x%lx, the page holds 0x%lx",
					    what, i, rt[i].val, *rt[i].word);

			kvm_fallocate(g.fd, PUNCH_HOLE, 0, hp);
			hp_check(hs, &base, 0, 0, "PUNCH_HOLE after the race");
		}
	}

	gvm_destroy(&g);
	hp_check_restored(hs, &pool, "race: file closed, VM freed");
	return KSFT_PASS;
}

struct conv_range {
	u64 off;
	u64 size;
};

/* The state every sample should have after [@off, @off + @size) took @attrs. */
static void check_samples_after(struct gvm *g, struct samples *s, u64 off, u64 size,
				u64 attrs, const bool *was_private, const char *what)
{
	bool private;
	int i;

	for (i = 0; i < s->nr; i++) {
		private = was_private[s->off[i] / g->hs->size];
		if (s->off[i] >= off && s->off[i] < off + size)
			private = attrs & KVM_MEMORY_ATTRIBUTE_PRIVATE;
		if (private)
			check_private(g->mem + s->off[i], what);
		else
			check_page(g->mem + s->off[i], s->tag[i], what);
	}
}

/*
 * Convert each range to @attributes and back.  The file splits and merges
 * its folios: exactly the samples in the range change state, with their
 * data, and the pool does not move.  @was_private: each huge page's state.
 */
static void unaligned_conversions(struct gvm *g, struct samples *s,
				  const struct hp_counts *base, long n,
				  const struct conv_range *ranges, int nr,
				  u64 attributes, const bool *was_private)
{
	const u64 hp = g->hs->size;
	u64 error_offset, lo, hi, h;
	char what[128];
	int i, r;

	for (i = 0; i < nr; i++) {
		error_offset = 0;
		r = __gmem_set_attributes(g->fd, ranges[i].off, ranges[i].size, attributes,
					  &error_offset);
		TEST_ASSERT(!r,
			    "Converting [0x%lx, 0x%lx) of a %s file to %s failed: errno = %d (%s), error_offset 0x%lx",
			    ranges[i].off, ranges[i].off + ranges[i].size, g->hs->name,
			    attributes ? "private" : "shared", errno, strerror(errno),
			    error_offset);
		snprintf(what, sizeof(what), "[0x%lx, 0x%lx) converted to %s",
			 ranges[i].off, ranges[i].off + ranges[i].size,
			 attributes ? "private" : "shared");
		check_samples_after(g, s, ranges[i].off, ranges[i].size, attributes,
				    was_private, what);
		hp_check(g->hs, base, -n, -n, what);

		/* Back to how it was, one huge page at a time. */
		for (h = ranges[i].off / hp; h * hp < ranges[i].off + ranges[i].size; h++) {
			lo = max(ranges[i].off, h * hp);
			hi = min(ranges[i].off + ranges[i].size, (h + 1) * hp);
			gmem_set_attributes(g->fd, lo, hi - lo,
					    was_private[h] ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0);
		}
		check_samples_after(g, s, 0, 0, 0, was_private, "converted back");
	}
}

/* In-place conversion of huge page aligned and unaligned ranges. */
static int test_conversion(const struct hsize *hs)
{
	const long n = is_1g(hs) ? 1 : 2;
	const u64 hp = hs->size;
	const u64 rel[] = { 0, page_size, hp / 2, hp - page_size };
	const int per_hpage = ARRAY_SIZE(rel);
	struct conv_range ranges[16] = {
		{ 0, page_size }, { page_size, page_size }, { 0, hp - page_size },
		{ page_size, hp - page_size }, { hp / 2, hp / 2 },
	};
	const bool all_shared[2] = { false, false }, page0_private[2] = { true, false };
	u64 gpas[MAX_TOUCH], tags[MAX_TOUCH];
	int nr_ranges = 5, i;
	struct hp_counts pool, base;
	struct map_stats stats;
	struct samples s;
	struct gvm g;

	if (!have_sw_protected) {
		ksft_print_msg("No KVM_X86_SW_PROTECTED_VM\n");
		return KSFT_SKIP;
	}
	if (!hp_require(hs, n))
		return KSFT_SKIP;
	if (!kvm_check_cap(KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES)) {
		ksft_print_msg("No in-place conversion (kvm.gmem_in_place_conversion=N?)\n");
		return KSFT_SKIP;
	}

	if (n > 1) {
		ranges[nr_ranges++] = (struct conv_range){ hp / 2, hp };
		ranges[nr_ranges++] = (struct conv_range){ page_size, hp };
		ranges[nr_ranges++] = (struct conv_range){ 0, hp + page_size };
	}
	if (hp > SZ_2M) {
		ranges[nr_ranges++] = (struct conv_range){ 0, SZ_2M };
		ranges[nr_ranges++] = (struct conv_range){ SZ_2M, SZ_2M };
	}

	hp_read(hs, &pool);
	gvm_init(&g, KVM_X86_SW_PROTECTED_VM, hs, n, hflags(hs) | SHARED_FLAGS, true);
	TEST_ASSERT(g.vm->gmem_attributes & KVM_MEMORY_ATTRIBUTE_PRIVATE,
		    "SW-protected VM reports KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES = 0x%lx",
		    g.vm->gmem_attributes);
	hp_read(hs, &base);
	gvm_bind(&g, 0, g.size);

	samples_init(&s, hs, n, rel, per_hpage);
	for (i = 0; i < s.nr; i++) {
		gpas[i] = TEST_GPA + s.off[i];
		gvm_map(&g, gpas[i]);
	}

	samples_fill(&s, g.mem, hs, 1);
	hp_check(hs, &base, -n, -n, "host wrote every huge page");
	guest_run(&g, OP_CHECK, s.nr, gpas, s.tag, NULL, "guest reads the shared file");

	/* Unaligned ranges of the shared file, to private and back. */
	unaligned_conversions(&g, &s, &base, n, ranges, nr_ranges,
			      KVM_MEMORY_ATTRIBUTE_PRIVATE, all_shared);
	samples_check(&s, g.mem, hs, "after the unaligned shared->private conversions");
	guest_run(&g, OP_CHECK, s.nr, gpas, s.tag, NULL,
		  "guest reads the file after the unaligned conversions");

	/* Huge page 0 private: the host can't see it, the guest sees the data. */
	gmem_set_private(g.fd, 0, hp);
	for (i = 0; i < s.nr; i++) {
		if (s.off[i] < hp)
			check_private(g.mem + s.off[i], "huge page 0 converted to private");
		else
			check_page(g.mem + s.off[i], s.tag[i], "huge page 1 stays shared");
	}
	hp_check(hs, &base, -n, -n, "conversion to private");
	guest_run(&g, OP_CHECK, per_hpage, gpas, s.tag, NULL,
		  "guest reads huge page 0 after shared->private");
	for (i = 0; i < per_hpage; i++)
		tags[i] = TAG(2, i);
	guest_run(&g, OP_WRITE, per_hpage, gpas, NULL, tags, "guest writes private huge page 0");

	/* Unaligned ranges to shared and back: the guest's data shows. */
	memcpy(s.tag, tags, per_hpage * sizeof(u64));
	unaligned_conversions(&g, &s, &base, n, ranges, nr_ranges, 0, page0_private);
	for (i = 0; i < s.nr; i++) {
		if (s.off[i] < hp)
			check_private(g.mem + s.off[i], "after the unaligned conversions");
		else
			check_page(g.mem + s.off[i], s.tag[i], "after the unaligned conversions");
	}
	guest_run(&g, OP_CHECK, per_hpage, gpas, tags, NULL,
		  "guest reads private huge page 0 after the unaligned conversions");

	/* Private -> shared -> private, the data stays. */
	gmem_set_shared(g.fd, 0, hp);
	memcpy(s.tag, tags, per_hpage * sizeof(u64));
	samples_check(&s, g.mem, hs, "huge page 0 converted back to shared");

	gmem_set_private(g.fd, 0, hp);
	guest_run(&g, OP_CHECK, per_hpage, gpas, s.tag, NULL,
		  "guest reads huge page 0 after shared->private again");
	for (i = 0; i < per_hpage; i++)
		tags[i] = TAG(3, i);
	guest_run(&g, OP_WRITE, per_hpage, gpas, NULL, tags, "guest writes huge page 0 again");
	gmem_set_shared(g.fd, 0, hp);
	memcpy(s.tag, tags, per_hpage * sizeof(u64));
	samples_check(&s, g.mem, hs, "huge page 0 shared again");

	/* The whole file at once. */
	gmem_set_private(g.fd, 0, g.size);
	for (i = 0; i < s.nr; i++)
		check_private(g.mem + s.off[i], "whole file converted to private");
	guest_run(&g, OP_CHECK, s.nr, gpas, s.tag, NULL, "guest reads the private file");
	gmem_set_shared(g.fd, 0, g.size);
	samples_check(&s, g.mem, hs, "whole file converted back to shared");
	hp_check(hs, &base, -n, -n, "after all the conversions");

	read_map_stats(g.vm, &stats);
	ksft_print_msg("%s conversions: KVM mappings pages_4k %lu pages_2m %lu pages_1g %lu\n",
		       hs->name, stats.p4k, stats.p2m, stats.p1g);

	gvm_destroy(&g);
	hp_check_restored(hs, &pool, "conversion: file closed, VM freed");
	return KSFT_PASS;
}

/* ---------------------------------------------------------------------- */

static const struct scenario {
	const char *name;
	int (*fn)(const struct hsize *hs);
	bool per_size;
} scenarios[] = {
	{ "caps", test_caps, false },
	{ "flags", test_flags, false },
	{ "blksize", test_blksize, false },
	{ "alignment", test_alignment, true },
	{ "reserve", test_reserve, true },
	{ "enomem", test_enomem, true },
	{ "cgroup", test_cgroup, true },
	{ "punch_hole", test_punch, true },
	{ "fresh_zero", test_zero, true },
	{ "mmap", test_mmap, true },
	{ "kvm_map_private", test_kvm_map_private, true },
	{ "kvm_map_shared", test_kvm_map_shared, true },
	{ "kvm_map_noncongruent", test_kvm_map_noncongruent, true },
	{ "race", test_race, true },
	{ "conversion", test_conversion, true },
};

/*
 * Run a scenario in a child, so that a failure is reported as such and the
 * next scenarios still run, then check the child's exit gave back every huge
 * page it held.
 */
static void run_scenario(const struct scenario *sc, const struct hsize *hs)
{
	struct hp_snap before;
	int status, code;
	char name[64];
	pid_t pid;

	snprintf(name, sizeof(name), "%s%s%s", sc->name, hs ? "_" : "", hs ? hs->name : "");
	if (hs && !hs->present) {
		ksft_test_result_skip("%s (no %s HugeTLB pool)\n", name, hs->name);
		return;
	}

	hp_snap(&before);
	fflush(stdout);
	fflush(stderr);

	pid = fork();
	TEST_ASSERT(pid >= 0, "fork() failed, errno %d", errno);
	if (!pid)
		exit(sc->fn(hs));

	TEST_ASSERT(waitpid(pid, &status, 0) == pid, "waitpid() failed, errno %d", errno);
	if (WIFEXITED(status)) {
		code = WEXITSTATUS(status);
	} else {
		ksft_print_msg("%s: killed by signal %d\n", name, WTERMSIG(status));
		code = KSFT_FAIL;
	}
	if (code != KSFT_PASS && code != KSFT_SKIP)
		code = KSFT_FAIL;
	if (!hp_snap_restored(&before, name))
		code = KSFT_FAIL;

	ksft_test_result_report(code, "%s\n", name);
}

static void probe_sizes(void)
{
	unsigned long kb = 0;
	char line[128], path[128];
	size_t i;
	FILE *f;

	f = fopen("/proc/meminfo", "r");
	TEST_ASSERT(f, "Opening /proc/meminfo failed, errno %d", errno);
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Hugepagesize: %lu kB", &kb) == 1)
			break;
	}
	fclose(f);
	TEST_ASSERT(kb, "No Hugepagesize in /proc/meminfo (CONFIG_HUGETLBFS=n?)");

	for (i = 0; i < ARRAY_SIZE(hsizes); i++) {
		snprintf(path, sizeof(path), HP_SYSFS, hsizes[i].size >> 10);
		hsizes[i].present = !access(path, F_OK);
		if (hsizes[i].size >> 10 == kb)
			default_hs = &hsizes[i];
	}
}

int main(int argc, char *argv[])
{
	int plan = 0;
	size_t i, j;

	TEST_REQUIRE(kvm_has_cap(KVM_CAP_GUEST_MEMFD));

	page_size = getpagesize();
	probe_sizes();
	have_sw_protected = kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(KVM_X86_SW_PROTECTED_VM);
	sigbus_probe_install();

	ksft_print_header();
	for (i = 0; i < ARRAY_SIZE(scenarios); i++)
		plan += scenarios[i].per_size ? ARRAY_SIZE(hsizes) : 1;
	ksft_set_plan(plan);

	for (i = 0; i < ARRAY_SIZE(scenarios); i++) {
		if (!scenarios[i].per_size) {
			run_scenario(&scenarios[i], NULL);
			continue;
		}
		for (j = 0; j < ARRAY_SIZE(hsizes); j++)
			run_scenario(&scenarios[i], &hsizes[j]);
	}

	ksft_finished();
}
