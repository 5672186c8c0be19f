// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmem_bench - what a guest's memory costs the host, per backing.
 *
 * Backings (one VM each, KVM_X86_SW_PROTECTED_VM, guest memory at 4G):
 *   L     the legacy two-backing model (kvm.gmem_in_place_conversion=0):
 *         private pages in a 4K guest_memfd, shared pages in a memfd, and on
 *         every conversion the VMM punches the side the page left;
 *   L-1G  the same with the shared side in 1G hugetlbfs pages, which cannot
 *         be punched below 1G: each 1G range with a shared page costs a page;
 *   4K, 2M, 1G  in-place conversion in one guest_memfd of 4K pages or of
 *         HugeTLB 2M/1G pages (kvm.gmem_in_place_conversion=1).
 * The legacy backings run only where in-place conversion is off, the others
 * only where it is on: make bench boots twice.
 *
 * Metrics, printed as CSV rows ("@csv TABLE,header" once, "@row TABLE,...")
 * that scripts/bench-report.sh turns into files, a report and plots:
 *   footprint  host memory beyond the guest's size after the guest touched
 *              all of it, at 0/1/10/50% shared 4K pages, scattered or in one
 *              cluster: MemFree and hugetlb pool deltas, split vmemmap (P1),
 *              the VM's pages_4k/2m/1g against the most that could be huge
 *              (P2), the time to fallocate and to first-touch (P4), the
 *              time to close the file under a live memslot, and (0%, in
 *              place) the guest's faults again once allocated (P6);
 *   latency    4K conversions: in a uniform block (a split for 2M/1G), back
 *              (a merge), inside a split block; 2M and 1G ranges; host time
 *              of the ioctl and, for guest-driven ones, the guest's time
 *              around the KVM_HC_MAP_GPA_RANGE hypercall (P3);
 *   numa       where each policy put a HugeTLB file's folios (P5).
 * Every time is QEMU TCG time: compare ratios within one run, never with
 * hardware.  Sanity checks of the numbers (e.g. the pool delta of an
 * in-place file is exactly its size) fail the run.
 *
 *   gmem_bench [-s GUEST_MB] [-n OPS] [-b L,L-1G,4K,2M,1G] [-m flnp] [-q]
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include <linux/falloc.h>
#include <linux/memfd.h>
#include <linux/mempolicy.h>
#include <linux/sizes.h>

#include "gmem_hugetlb_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "ucall_common.h"

#define BENCH_GPA	SZ_4G
#define BENCH_SLOT	10
#define PRIVATE		KVM_MEMORY_ATTRIBUTE_PRIVATE
#define PUNCH_HOLE	(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)
#define GMEM_PARAM	"/sys/module/kvm/parameters/gmem_in_place_conversion"
#define PMD_PAGES	(SZ_2M / PAGE_SIZE)
#define MAX_OPS		4096

struct backing {
	const char *name;
	bool legacy;
	u64 gmem_flags;
	unsigned int memfd_flags;	/* legacy: the shared side */
	u64 folio;			/* the guest_memfd's folio size */
	unsigned long pool_kb;		/* the hugetlb pool it draws from */
};

static const struct backing backings[] = {
	{ "L", true, 0, 0, SZ_4K, 0 },
	{ "L-1G", true, 0, MFD_HUGETLB | MFD_HUGE_1GB, SZ_4K, SZ_1G / SZ_1K },
	{ "4K", false, GUEST_MEMFD_FLAG_MMAP, 0, SZ_4K, 0 },
	{ "2M", false, GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_HUGETLB |
		       GUEST_MEMFD_FLAG_HUGE_2MB, 0, SZ_2M, SZ_2M / SZ_1K },
	{ "1G", false, GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_HUGETLB |
		       GUEST_MEMFD_FLAG_HUGE_1GB, 0, SZ_1G, SZ_1G / SZ_1K },
};

/* What the guest does when it runs next. */
enum guest_op { OP_TOUCH, OP_CONVERT };

static struct {
	enum guest_op op;
	u64 npages;		/* OP_TOUCH: pages from BENCH_GPA */
	u64 stride;		/* OP_TOUCH: in pages */
	u64 nr;			/* OP_CONVERT: iterations */
	u64 page[MAX_OPS];	/* OP_CONVERT: the 4K page of each */
} guest_cmd;

/* OP_CONVERT: TSC cycles of each hypercall, to shared then to private. */
static u64 guest_cycles[2][MAX_OPS];

static void guest_code(void)
{
	u64 i, t0, t1, t2;

	GUEST_SYNC(0);
	for (;;) {
		if (guest_cmd.op == OP_TOUCH) {
			for (i = 0; i < guest_cmd.npages; i += guest_cmd.stride)
				WRITE_ONCE(*(u64 *)(BENCH_GPA + i * PAGE_SIZE), i);
		} else {
			for (i = 0; i < guest_cmd.nr; i++) {
				u64 gpa = BENCH_GPA + guest_cmd.page[i] * PAGE_SIZE;

				/* Map the block huge again before timing. */
				WRITE_ONCE(*(u64 *)gpa, i);
				t0 = rdtsc();
				kvm_hypercall_map_gpa_range(gpa, PAGE_SIZE,
							    KVM_MAP_GPA_RANGE_PAGE_SZ_4K);
				t1 = rdtsc();
				kvm_hypercall_map_gpa_range(gpa, PAGE_SIZE,
							    KVM_MAP_GPA_RANGE_ENCRYPTED |
							    KVM_MAP_GPA_RANGE_PAGE_SZ_4K);
				t2 = rdtsc();
				guest_cycles[0][i] = t1 - t0;
				guest_cycles[1][i] = t2 - t1;
			}
		}
		GUEST_SYNC(1);
	}
}

static u64 guest_size = SZ_2G;
static int nr_ops = 1000;
static int nr_range_reps = 10;
static bool quick;
static bool in_place;
static int bench_failures;

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int step, nr_steps;

/*
 * Which step of how many is starting, on stdout and in the kernel log: the
 * harness shows test output only when the test ends, the console streams.
 */
static void progress(const char *fmt, ...)
{
	char msg[160];
	va_list ap;
	FILE *kmsg;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	step++;
	printf("gmem_bench: [%d/%d] %s\n", step, nr_steps, msg);
	fflush(stdout);
	kmsg = fopen("/dev/kmsg", "w");
	if (kmsg) {
		fprintf(kmsg, "gmem_bench: [%d/%d] %s\n", step, nr_steps, msg);
		fclose(kmsg);
	}
}

/* A sanity check of the numbers: report it and fail the run at the end. */
#define bench_expect(cond, fmt, ...)						\
do {										\
	if (!(cond)) {								\
		printf("SANITY FAILED: " fmt "\n", ##__VA_ARGS__);		\
		bench_failures++;						\
	}									\
} while (0)

/* The host memory a configuration uses, as far as the kernel counts it. */
struct mem_snap {
	long memfree_kb;	/* MemFree and the per-CPU lists' pages */
	long hp_used_kb;	/* all hugetlb pools: pages not free */
};

static long meminfo_kb(const char *key)
{
	char line[256];
	long val = -1;
	size_t n = strlen(key);
	FILE *f = fopen("/proc/meminfo", "r");

	TEST_ASSERT(f, "open /proc/meminfo");
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, n) && line[n] == ':') {
			val = strtol(line + n + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	TEST_ASSERT(val >= 0, "/proc/meminfo has no %s", key);
	return val;
}

/* Free pages on the per-CPU lists, which MemFree does not count. */
static long pcp_kb(void)
{
	char line[256];
	long n, sum = 0;
	FILE *f = fopen("/proc/zoneinfo", "r");

	TEST_ASSERT(f, "open /proc/zoneinfo");
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, " count: %ld", &n) == 1)
			sum += n;
	}
	fclose(f);
	return sum * (PAGE_SIZE / SZ_1K);
}

static void mem_snap(struct mem_snap *s)
{
	struct gmem_hp_counts c;
	long prev;
	int i;

	/*
	 * Let deferred frees (RCU, KVM's page tables, retire work) settle:
	 * wait until free memory stops moving by more than 256 KiB.
	 */
	s->memfree_kb = meminfo_kb("MemFree") + pcp_kb();
	for (i = 0; i < 20; i++) {
		usleep(250 * 1000);
		prev = s->memfree_kb;
		s->memfree_kb = meminfo_kb("MemFree") + pcp_kb();
		if (labs(s->memfree_kb - prev) < 256)
			break;
	}
	s->hp_used_kb = 0;
	gmem_hp_read(2048, &c);
	s->hp_used_kb += (c.nr - c.free) * 2048;
	gmem_hp_read(1048576, &c);
	s->hp_used_kb += (c.nr - c.free) * 1048576;
}

/* One VM with one memslot over its guest memory. */
struct bvm {
	const struct backing *b;
	struct kvm_vm *vm;
	struct kvm_vcpu *vcpu;
	int fd;		/* guest_memfd */
	int sfd;	/* legacy: the shared memfd, else -1 */
	u8 *mem;	/* the memslot's userspace_addr */
	u64 size;
	u64 tsc_khz;
};

static void bvm_create(struct bvm *v, const struct backing *b, u64 size)
{
	const struct vm_shape shape = {
		.mode = VM_MODE_DEFAULT,
		.type = KVM_X86_SW_PROTECTED_VM,
	};
	int r;

	memset(v, 0, sizeof(*v));
	v->b = b;
	v->size = size;
	v->vm = __vm_create_shape_with_one_vcpu(shape, &v->vcpu, 64, guest_code);
	v->fd = vm_create_guest_memfd(v->vm, size, b->gmem_flags);
	v->sfd = -1;
	if (b->legacy) {
		v->sfd = memfd_create("gmem_bench_shared", b->memfd_flags);
		TEST_ASSERT(v->sfd >= 0, "memfd_create: %s", strerror(errno));
		TEST_ASSERT(!ftruncate(v->sfd, size), "ftruncate: %s", strerror(errno));
	}
	v->mem = kvm_mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED,
			  b->legacy ? v->sfd : v->fd);
	vm_set_user_memory_region2(v->vm, BENCH_SLOT, KVM_MEM_GUEST_MEMFD,
				   BENCH_GPA, size, v->mem, v->fd, 0);
	virt_map_level(v->vm, BENCH_GPA, BENCH_GPA, size, PG_LEVEL_2M);
	/* Memory starts private, as a confidential guest's does. */
	if (b->legacy)
		vm_set_memory_attributes(v->vm, BENCH_GPA, size, PRIVATE);
	vm_enable_cap(v->vm, KVM_CAP_EXIT_HYPERCALL, BIT(KVM_HC_MAP_GPA_RANGE));
	r = __vcpu_ioctl(v->vcpu, KVM_GET_TSC_KHZ, NULL);
	TEST_ASSERT(r > 0, "KVM_GET_TSC_KHZ: %d", r);
	v->tsc_khz = r;
	vcpu_run(v->vcpu);
	TEST_ASSERT_EQ(get_ucall(v->vcpu, NULL), UCALL_SYNC);
}

/*
 * Close the guest_memfd while its memslot is bound and the guest's pages are
 * mapped, as a VMM that exits does; returns the time it took in µs.  The
 * file's release drops every KVM mapping of it.
 */
static double bvm_release(struct bvm *v)
{
	double t = now_us();

	/* In place, the mapping holds the file: its munmap is the last put. */
	if (!v->b->legacy)
		kvm_munmap(v->mem, v->size);
	kvm_close(v->fd);
	t = now_us() - t;
	v->fd = -1;
	return t;
}

static void bvm_destroy(struct bvm *v)
{
	if (v->fd >= 0)
		bvm_release(v);
	if (v->b->legacy)
		kvm_munmap(v->mem, v->size);
	if (v->sfd >= 0)
		kvm_close(v->sfd);
	kvm_vm_free(v->vm);
}

/* Convert [off, off + len) as the VMM does for this backing. */
static void bvm_convert(struct bvm *v, u64 off, u64 len, bool private)
{
	if (!v->b->legacy) {
		gmem_set_attributes(v->fd, off, len, private ? PRIVATE : 0);
		return;
	}
	vm_set_memory_attributes(v->vm, BENCH_GPA + off, len, private ? PRIVATE : 0);
	kvm_fallocate(private ? v->sfd : v->fd, PUNCH_HOLE, off, len);
}

static double bvm_convert_timed(struct bvm *v, u64 off, u64 len, bool private)
{
	double t0 = now_us();

	bvm_convert(v, off, len, private);
	return now_us() - t0;
}

static void handle_hypercall(struct bvm *v, double *host_us)
{
	struct kvm_run *run = v->vcpu->run;
	u64 gpa = run->hypercall.args[0];
	u64 len = run->hypercall.args[1] * PAGE_SIZE;
	bool private = run->hypercall.args[2] & KVM_MAP_GPA_RANGE_ENCRYPTED;

	TEST_ASSERT(run->hypercall.nr == KVM_HC_MAP_GPA_RANGE &&
		    gpa >= BENCH_GPA && gpa + len <= BENCH_GPA + v->size,
		    "hypercall %llu over [0x%lx, 0x%lx)", run->hypercall.nr, gpa, gpa + len);
	*host_us = bvm_convert_timed(v, gpa - BENCH_GPA, len, private);
	run->hypercall.ret = 0;
}

/*
 * Run the guest's command; with @host_us, time each conversion it asks for
 * there, in order.  Returns the wall time of the run in microseconds.
 */
static double bvm_run(struct bvm *v, double *host_us)
{
	struct kvm_run *run = v->vcpu->run;
	double t0 = now_us();
	int n = 0;
	struct ucall uc;

	sync_global_to_guest(v->vm, guest_cmd);
	for (;;) {
		vcpu_run(v->vcpu);
		if (run->exit_reason != KVM_EXIT_HYPERCALL)
			break;
		TEST_ASSERT(host_us && n < 2 * MAX_OPS, "unexpected hypercall");
		handle_hypercall(v, &host_us[n++]);
	}
	switch (get_ucall(v->vcpu, &uc)) {
	case UCALL_SYNC:
		break;
	case UCALL_ABORT:
		REPORT_GUEST_ASSERT(uc);
	default:
		TEST_FAIL("guest exit %s", exit_reason_str(run->exit_reason));
	}
	return now_us() - t0;
}

static void guest_touch(struct bvm *v, u64 stride)
{
	guest_cmd.op = OP_TOUCH;
	guest_cmd.npages = v->size / PAGE_SIZE;
	guest_cmd.stride = stride;
}

/* The huge pages, of @kb, that are free. */
static long hp_free(unsigned long kb)
{
	struct gmem_hp_counts c;

	gmem_hp_read(kb, &c);
	return c.free;
}

/* Can the host run @b over @size bytes, @shared_1g of them shared 1G pages? */
static bool backing_fits(const struct backing *b, u64 size, long shared_1g)
{
	if (b->legacy && b->pool_kb)
		return hp_free(b->pool_kb) >= shared_1g;
	if (b->legacy || !b->pool_kb)
		return true;
	return hp_free(b->pool_kb) >= (long)(size / (b->pool_kb * SZ_1K));
}

/* ---- footprint, coverage, population (P1, P2, P4) ---- */

enum layout { SCATTERED, CLUSTERED };

/* Is 4K page @i shared in this configuration? */
static bool page_shared(u64 i, u64 npages, int pct, enum layout lay)
{
	if (!pct)
		return false;
	if (lay == CLUSTERED)
		return i < npages * pct / 100;
	return i % (100 / pct) == 0;
}

/* Convert every shared page; adjacent ones in one call, as a VMM batches. */
static void make_shared(struct bvm *v, int pct, enum layout lay)
{
	u64 npages = v->size / PAGE_SIZE, i, j;

	for (i = 0; i < npages; i = j) {
		if (!page_shared(i, npages, pct, lay)) {
			j = i + 1;
			continue;
		}
		for (j = i + 1; j < npages && page_shared(j, npages, pct, lay); j++)
			;
		bvm_convert(v, i * PAGE_SIZE, (j - i) * PAGE_SIZE, false);
	}
}

/* The expected pool delta, and the 4K pages that could be mapped 2M and 1G. */
struct fp_limits {
	long hp_kb;
	u64 huge_2m_pages;	/* 4K pages in blocks KVM can map 2M (or 1G) */
	u64 huge_1g_pages;	/* 4K pages in ranges KVM can map 1G */
	long shared_1g;		/* 1G ranges with a shared page */
	u64 runs;		/* runs of pages with equal attributes */
};

static void fp_limits(struct bvm *v, int pct, enum layout lay, struct fp_limits *l)
{
	u64 npages = v->size / PAGE_SIZE, blk, i;
	u64 blk1g = SZ_1G / PAGE_SIZE;

	memset(l, 0, sizeof(*l));
	l->runs = 1;
	for (i = 1; i < npages; i++)
		l->runs += page_shared(i, npages, pct, lay) != page_shared(i - 1, npages, pct, lay);
	for (blk = 0; blk < npages; blk += PMD_PAGES) {
		u64 nshared = 0;

		for (i = blk; i < blk + PMD_PAGES; i++)
			nshared += page_shared(i, npages, pct, lay);
		/*
		 * In place, a uniform block is one folio and maps huge.  In
		 * L-1G a uniformly shared block is in a 1G hugetlbfs page, and
		 * KVM maps it huge; private memory there is 4K guest_memfd.
		 */
		if (!v->b->legacy && v->b->folio >= SZ_2M && (!nshared || nshared == PMD_PAGES))
			l->huge_2m_pages += PMD_PAGES;
		else if (v->b->legacy && v->b->pool_kb && nshared == PMD_PAGES)
			l->huge_2m_pages += PMD_PAGES;
	}
	for (blk = 0; blk < npages; blk += blk1g) {
		u64 nshared = 0;

		for (i = blk; i < blk + blk1g && i < npages; i++)
			nshared += page_shared(i, npages, pct, lay);
		if (nshared)
			l->shared_1g++;
		if (!v->b->legacy && v->b->folio == SZ_1G &&
		    (!nshared || nshared == blk1g))
			l->huge_1g_pages += blk1g;
		else if (v->b->legacy && v->b->pool_kb && nshared == blk1g)
			l->huge_1g_pages += blk1g;
	}
	if (!v->b->legacy && v->b->pool_kb)
		l->hp_kb = v->size / SZ_1K;
	else if (v->b->legacy && v->b->pool_kb)
		l->hp_kb = l->shared_1g * (SZ_1G / SZ_1K);
}

static void footprint_one(const struct backing *b, int pct, enum layout lay)
{
	static const char * const lay_name[] = { "scattered", "clustered" };
	struct mem_snap before, after;
	struct gmem_fdinfo fi = {};
	struct fp_limits lim;
	double t_falloc, t_conv, t_touch, t_refault = -1, t_release;
	long p2m, p1g, beyond_kb, vmemmap_kb = 0;
	double cov, cov_limit;
	struct bvm v;

	progress("%s footprint, %d%% shared %s", b->name, pct, lay_name[lay]);
	bvm_create(&v, b, guest_size);
	fp_limits(&v, pct, lay, &lim);
	if (!backing_fits(b, guest_size, lim.shared_1g)) {
		printf("@row footprint,%s,%s,%d,%lu,", b->name, lay_name[lay], pct,
		       guest_size >> 20);
		/* The 13 columns from beyond_mb to refault_ms. */
		printf("n/a,n/a,n/a,n/a,n/a,n/a,n/a,n/a,n/a,n/a,n/a,n/a,n/a\n");
		bvm_destroy(&v);
		return;
	}
	mem_snap(&before);

	/* Preallocate, as a VMM does: private memory comes from guest_memfd. */
	t_falloc = now_us();
	kvm_fallocate(v.fd, FALLOC_FL_KEEP_SIZE, 0, guest_size);
	t_falloc = now_us() - t_falloc;
	t_conv = now_us();
	make_shared(&v, pct, lay);
	t_conv = now_us() - t_conv;

	p2m = vm_get_stat(v.vm, pages_2m);
	p1g = vm_get_stat(v.vm, pages_1g);
	guest_touch(&v, 1);
	t_touch = bvm_run(&v, NULL);
	p2m = vm_get_stat(v.vm, pages_2m) - p2m;
	p1g = vm_get_stat(v.vm, pages_1g) - p1g;

	mem_snap(&after);
	/*
	 * The all-private guest's faults again, without allocating: a round
	 * trip of conversions in place drops KVM's mappings and nothing else
	 * (legacy conversions punch, so L would allocate again).
	 */
	if (!pct && !b->legacy) {
		bvm_convert(&v, 0, guest_size, false);
		bvm_convert(&v, 0, guest_size, true);
		guest_touch(&v, 1);
		t_refault = bvm_run(&v, NULL);
	}
	if (!b->legacy && b->pool_kb) {
		gmem_fdinfo_read(v.fd, &fi);
		vmemmap_kb = fi.vmemmap_restored_kb;
	}

	t_release = bvm_release(&v);

	beyond_kb = (before.memfree_kb - after.memfree_kb) +
		    (after.hp_used_kb - before.hp_used_kb) - (long)(guest_size / SZ_1K);
	cov = (double)(p2m * PMD_PAGES + p1g * (SZ_1G / PAGE_SIZE)) /
	      (guest_size / PAGE_SIZE);
	cov_limit = (double)lim.huge_2m_pages / (guest_size / PAGE_SIZE);
	printf("@row footprint,%s,%s,%d,%lu,", b->name, lay_name[lay], pct, guest_size >> 20);
	printf("%.1f,%.1f,%.1f,%.1f,",
	       beyond_kb / 1024.0, (after.hp_used_kb - before.hp_used_kb) / 1024.0,
	       (before.memfree_kb - after.memfree_kb) / 1024.0, vmemmap_kb / 1024.0);
	printf("%.4f,%.4f,%.4f,%.4f,", cov, cov_limit,
	       (double)p1g * (SZ_1G / PAGE_SIZE) / (guest_size / PAGE_SIZE),
	       (double)lim.huge_1g_pages / (guest_size / PAGE_SIZE));
	printf("%.1f,%.1f,%.1f,%.1f,%.1f\n", t_falloc / 1000, t_conv / 1000, t_touch / 1000,
	       t_release / 1000, t_refault < 0 ? -1 : t_refault / 1000);
	fflush(stdout);

	/* The pool holds exactly what the model says. */
	bench_expect(after.hp_used_kb - before.hp_used_kb == lim.hp_kb,
		     "%s %s %d%%: hugetlb in use grew %ld kB, expected %ld kB",
		     b->name, lay_name[lay], pct, after.hp_used_kb - before.hp_used_kb,
		     lim.hp_kb);
	/*
	 * In place, nothing but split vmemmap, the attribute runs (a maple
	 * tree: under 64 bytes a run) and the page cache's and KVM's tables
	 * (1% of the guest covers them and the noise) comes on top of the
	 * guest's size.
	 */
	if (!b->legacy)
		bench_expect(beyond_kb <= vmemmap_kb + (long)(guest_size / SZ_1K / 100) +
				(long)(lim.runs * 64 / SZ_1K),
			     "%s %s %d%%: %ld kB beyond the guest's size, vmemmap %ld kB, %lu runs",
			     b->name, lay_name[lay], pct, beyond_kb, vmemmap_kb, lim.runs);
	/* KVM maps huge every block that can be, and nothing more. */
	bench_expect(p2m * PMD_PAGES + p1g * (SZ_1G / PAGE_SIZE) == lim.huge_2m_pages,
		     "%s %s %d%%: %ld 2M and %ld 1G mappings for %lu 4K pages that can be huge",
		     b->name, lay_name[lay], pct, p2m, p1g, lim.huge_2m_pages);
	bench_expect(p1g * (SZ_1G / PAGE_SIZE) == lim.huge_1g_pages,
		     "%s %s %d%%: %ld 1G mappings, %lu 4K pages can be mapped 1G",
		     b->name, lay_name[lay], pct, p1g, lim.huge_1g_pages);

	bvm_destroy(&v);
}

static const int pcts[] = { 1, 10, 50 };

static void bench_footprint(const struct backing *b)
{
	int i;

	/* Quick: the summary's row only. */
	if (quick) {
		footprint_one(b, 10, SCATTERED);
		return;
	}
	footprint_one(b, 0, SCATTERED);
	for (i = 0; i < ARRAY_SIZE(pcts); i++) {
		footprint_one(b, pcts[i], SCATTERED);
		footprint_one(b, pcts[i], CLUSTERED);
	}
}

/* ---- conversion latency (P3) ---- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void lat_row(const char *backing, const char *op, double *us, int n,
		    double *guest_us)
{
	double med, p99, gmed = -1, gp99 = -1;
	int i;

	qsort(us, n, sizeof(*us), cmp_double);
	med = us[n / 2];
	p99 = us[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1];
	if (guest_us) {
		qsort(guest_us, n, sizeof(*guest_us), cmp_double);
		gmed = guest_us[n / 2];
		gp99 = guest_us[(n * 99) / 100];
	}
	printf("@row latency,%s,%s,%d,%.1f,%.1f,%.1f,%.1f\n",
	       backing, op, n, med, p99, gmed, gp99);
	/* The samples, for the CDF plots. */
	printf("@row latency_samples,%s,%s", backing, op);
	for (i = 0; i < n; i++)
		printf(",%.1f", us[i]);
	printf("\n");
	fflush(stdout);
}

static void bench_latency(const struct backing *b)
{
	u64 npages = guest_size / PAGE_SIZE, nblocks = npages / PMD_PAGES, i;
	static double host[2 * MAX_OPS], a[MAX_OPS], c[MAX_OPS], g0[MAX_OPS], g1[MAX_OPS];
	int n = nr_ops, r;
	struct bvm v;

	progress("%s conversion latency, %d conversions", b->name, n);
	if (!backing_fits(b, guest_size, guest_size / SZ_1G)) {
		printf("@row latency,%s,n/a,0,n/a,n/a,n/a,n/a\n", b->name);
		return;
	}
	bvm_create(&v, b, guest_size);
	kvm_fallocate(v.fd, FALLOC_FL_KEEP_SIZE, 0, guest_size);
	/* The guest has touched its memory: KVM maps what it can huge. */
	guest_touch(&v, PMD_PAGES);
	bvm_run(&v, NULL);

	/*
	 * Guest-driven: one 4K page to shared (a split of a uniform 2M or 1G
	 * block) and back (a merge), each in a different block.
	 */
	guest_cmd.op = OP_CONVERT;
	guest_cmd.nr = n;
	for (i = 0; i < n; i++)
		guest_cmd.page[i] = (i % nblocks) * PMD_PAGES + 17 + i % 64;
	bvm_run(&v, host);
	sync_global_from_guest(v.vm, guest_cycles);
	for (i = 0; i < n; i++) {
		a[i] = host[2 * i];
		c[i] = host[2 * i + 1];
		g0[i] = guest_cycles[0][i] * 1000.0 / v.tsc_khz;
		g1[i] = guest_cycles[1][i] * 1000.0 / v.tsc_khz;
	}
	lat_row(b->name, "4k_to_shared", a, n, g0);
	lat_row(b->name, "4k_to_private", c, n, g1);

	/* Host-driven: a 4K page next to a shared one, no split or merge. */
	bvm_convert(&v, 0, PAGE_SIZE, false);
	for (i = 0; i < n; i++) {
		a[i] = bvm_convert_timed(&v, (1 + i % 64) * PAGE_SIZE, PAGE_SIZE, false);
		c[i] = bvm_convert_timed(&v, (1 + i % 64) * PAGE_SIZE, PAGE_SIZE, true);
	}
	bvm_convert(&v, 0, PAGE_SIZE, true);
	lat_row(b->name, "4k_in_split_to_shared", a, n, NULL);
	lat_row(b->name, "4k_in_split_to_private", c, n, NULL);

	/* Ranges: one 2M block, and 1G, each way; the guest re-touches after. */
	guest_touch(&v, PMD_PAGES);
	for (r = 0; r < nr_range_reps; r++) {
		a[r] = bvm_convert_timed(&v, SZ_2M * (r % nblocks), SZ_2M, false);
		c[r] = bvm_convert_timed(&v, SZ_2M * (r % nblocks), SZ_2M, true);
		bvm_run(&v, NULL);
	}
	lat_row(b->name, "2m_to_shared", a, nr_range_reps, NULL);
	lat_row(b->name, "2m_to_private", c, nr_range_reps, NULL);
	for (r = 0; r < nr_range_reps; r++) {
		a[r] = bvm_convert_timed(&v, 0, SZ_1G, false);
		c[r] = bvm_convert_timed(&v, 0, SZ_1G, true);
		bvm_run(&v, NULL);
	}
	lat_row(b->name, "1g_to_shared", a, nr_range_reps, NULL);
	lat_row(b->name, "1g_to_private", c, nr_range_reps, NULL);

	if (!b->legacy && b->pool_kb) {
		struct gmem_fdinfo fi;

		gmem_fdinfo_read(v.fd, &fi);
		bench_expect(!fi.split_blocks && !fi.folios_4k,
			     "%s: %ld blocks still split after the latency runs",
			     b->name, fi.split_blocks);
	}
	bvm_destroy(&v);
}

/* ---- NUMA placement (P5) ---- */

static void bench_numa(const struct backing *b)
{
	static const struct {
		const char *name;
		int mode;
		unsigned long mask;
	} pol[] = {
		{ "default", MPOL_DEFAULT, 0 },
		{ "bind1", MPOL_BIND, 2 },
		{ "preferred1", MPOL_PREFERRED, 2 },
		{ "interleave01", MPOL_INTERLEAVE, 3 },
	};
	struct kvm_vm *vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	u64 hsize = b->pool_kb * SZ_1K;
	int i, n;

	progress("%s NUMA placement", b->name);

	for (i = 0; i < ARRAY_SIZE(pol); i++) {
		/* Interleave over two huge pages at least; others fit a node. */
		u64 size = pol[i].mode == MPOL_INTERLEAVE ? 2ULL * SZ_1G : SZ_1G;
		struct gmem_fdinfo fi;
		long on = 0, all = 0;
		struct gmem_hp_counts c;
		double t;
		void *mem;
		int fd;

		gmem_hp_read(b->pool_kb, &c);
		if (c.free < (long)(size / hsize) ||
		    (pol[i].mask == 2 && c.node_free[1] < (long)(size / hsize))) {
			printf("@row numa,%s,%s,n/a,n/a,n/a,n/a,n/a\n", b->name, pol[i].name);
			continue;
		}
		fd = vm_create_guest_memfd(vm, size, b->gmem_flags);
		mem = kvm_mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
		if (pol[i].mode != MPOL_DEFAULT)
			TEST_ASSERT(!gmem_mbind(mem, size, pol[i].mode, &pol[i].mask, 64, 0),
				    "mbind: %s", strerror(errno));
		t = now_us();
		kvm_fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, size);
		t = now_us() - t;
		gmem_fdinfo_read(fd, &fi);
		for (n = 0; n < GMEM_HP_MAX_NODES; n++) {
			all += fi.huge_node[n];
			if (!pol[i].mask || (pol[i].mask & BIT(n)))
				on += fi.huge_node[n];
		}
		printf("@row numa,%s,%s,%lu,%ld,%ld,%.4f,%.1f\n", b->name, pol[i].name,
		       size >> 20, fi.huge_node[0], fi.huge_node[1],
		       all ? (double)on / all : 0.0, t / 1000);
		fflush(stdout);
		bench_expect(all == (long)(size / hsize), "%s %s: %ld folios, expected %lu",
			     b->name, pol[i].name, all, size / hsize);
		if (pol[i].mode == MPOL_BIND || pol[i].mode == MPOL_PREFERRED)
			bench_expect(on == all, "%s %s: %ld of %ld folios on the policy's node",
				     b->name, pol[i].name, on, all);
		if (pol[i].mode == MPOL_INTERLEAVE)
			bench_expect(fi.huge_node[0] && fi.huge_node[1],
				     "%s interleave: %ld and %ld folios on nodes 0 and 1",
				     b->name, fi.huge_node[0], fi.huge_node[1]);
		kvm_munmap(mem, size);
		kvm_close(fd);
	}
	kvm_vm_free(vm);
}

/* ---- the 2M pool ---- */

#define NODE_2M	"/sys/devices/system/node/node%d/hugepages/hugepages-2048kB/nr_hugepages"

/* Grow each node's 2M pool to @want pages; returns the old sizes in @old. */
static void pool_2m_grow(long want, long *old)
{
	char path[128], val[32];
	int n;

	for (n = 0; n < 2; n++) {
		snprintf(path, sizeof(path), NODE_2M, n);
		old[n] = gmem_read_long(path, true);
		if (old[n] >= want)
			continue;
		snprintf(val, sizeof(val), "%ld", want);
		gmem_write_str(path, val);
	}
}

static void pool_2m_restore(const long *old)
{
	char path[128], val[32];
	int n;

	for (n = 0; n < 2; n++) {
		snprintf(path, sizeof(path), NODE_2M, n);
		snprintf(val, sizeof(val), "%ld", old[n]);
		gmem_write_str(path, val);
	}
}

static bool param_on(const char *path)
{
	char val = 'N';
	FILE *f = fopen(path, "r");

	if (!f)
		return false;
	TEST_ASSERT(fread(&val, 1, 1, f) == 1, "read %s", path);
	fclose(f);
	return val == 'Y' || val == 'y' || val == '1';
}

/* Is @name in the comma-separated @list (NULL: all)? */
static bool listed(const char *list, const char *name)
{
	size_t n = strlen(name);
	const char *p;

	if (!list)
		return true;
	for (p = list; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
		if (!strncmp(p, name, n) && (p[n] == ',' || !p[n]))
			return true;
	}
	return false;
}

static void help(const char *prog)
{
	printf("usage: %s [-s GUEST_MB] [-n OPS] [-b L,L-1G,4K,2M,1G] [-m flnp] [-q]\n"
	       "  -m  metrics: f footprint+coverage+population, l latency, n NUMA,\n"
	       "      p population and fault rate only (the 0%% shared row of f)\n"
	       "  -q  quick: 10%% shared scattered only, 200 ops, 3 range\n"
	       "      conversions, no NUMA (make run)\n", prog);
	exit(KSFT_FAIL);
}

int main(int argc, char *argv[])
{
	const char *only = NULL, *metrics = "fln";
	long old_2m[2];
	int opt, i;

	while ((opt = getopt(argc, argv, "s:n:b:m:qh")) != -1) {
		switch (opt) {
		case 's':
			guest_size = strtoull(optarg, NULL, 0) << 20;
			break;
		case 'n':
			nr_ops = atoi(optarg);
			break;
		case 'b':
			only = optarg;
			break;
		case 'm':
			metrics = optarg;
			break;
		case 'q':
			quick = true;
			nr_ops = 200;
			nr_range_reps = 3;
			break;
		default:
			help(argv[0]);
		}
	}
	TEST_ASSERT(nr_ops > 0 && nr_ops <= MAX_OPS && guest_size &&
		    !(guest_size % SZ_1G), "-n 1..%d, -s a multiple of 1024", MAX_OPS);
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(KVM_X86_SW_PROTECTED_VM));
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_EXIT_HYPERCALL) & BIT(KVM_HC_MAP_GPA_RANGE));
	in_place = param_on(GMEM_PARAM);

	printf("gmem_bench: guest %lu MiB, %d ops, in-place conversion %s (QEMU TCG times)\n",
	       guest_size >> 20, nr_ops, in_place ? "on" : "off");
	/* One line each; bench-report.sh reads the columns by position. */
	printf("@csv footprint,backing,layout,shared_pct,guest_mb,");
	printf("beyond_mb,hugetlb_mb,memfree_drop_mb,vmemmap_mb,");
	printf("huge_cov,huge_limit,cov_1g,limit_1g,");
	printf("fallocate_ms,convert_ms,touch_ms,release_ms,refault_ms\n");
	printf("@csv latency,backing,op,n,median_us,p99_us,guest_median_us,guest_p99_us\n");
	printf("@csv numa,backing,policy,size_mb,node0,node1,on_policy,fallocate_ms\n");

	for (i = 0; i < ARRAY_SIZE(backings); i++) {
		const struct backing *b = &backings[i];

		if (b->legacy == in_place || !listed(only, b->name))
			continue;
		if (strchr(metrics, 'f'))
			nr_steps += quick ? 1 : 1 + 2 * ARRAY_SIZE(pcts);
		else if (strchr(metrics, 'p'))
			nr_steps++;
		if (strchr(metrics, 'l'))
			nr_steps++;
		if (strchr(metrics, 'n') && !quick && !b->legacy && b->pool_kb)
			nr_steps++;
	}

	/* 2M files of the guest's size, and 1G of them bound to node 1. */
	pool_2m_grow(guest_size / SZ_2M / 2 + 64, old_2m);

	for (i = 0; i < ARRAY_SIZE(backings); i++) {
		const struct backing *b = &backings[i];

		if (b->legacy == in_place || !listed(only, b->name))
			continue;
		if (strchr(metrics, 'f'))
			bench_footprint(b);
		else if (strchr(metrics, 'p'))
			footprint_one(b, 0, SCATTERED);
		if (strchr(metrics, 'l'))
			bench_latency(b);
		if (strchr(metrics, 'n') && !quick && !b->legacy && b->pool_kb)
			bench_numa(b);
	}
	pool_2m_restore(old_2m);

	if (bench_failures) {
		printf("gmem_bench: %d sanity checks failed\n", bench_failures);
		return KSFT_FAIL;
	}
	return 0;
}
