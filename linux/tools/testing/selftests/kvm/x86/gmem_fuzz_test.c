// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmem_fuzz_test - random values in every field of guest_memfd's uAPI.
 *
 * Seeded random calls of KVM_CREATE_GUEST_MEMFD, KVM_SET_MEMORY_ATTRIBUTES2,
 * fallocate() and KVM_SET_USER_MEMORY_REGION2 with a guest_memfd, with
 * random sizes, offsets, flags, attributes and reserved words (mostly near
 * the values that matter: 0, page, huge page and file size boundaries, all
 * ones), on guest_memfd files of 4K, 2M and 1G pages and on descriptors of
 * every other kind (/dev/kvm, the VM, a memfd, a pipe, an eventfd, a socket,
 * a closed one).  Every call must succeed or fail with an errno its
 * documentation lists.  A call that fails must change nothing: a model of
 * each file's attributes and data (word 0 of every page) is checked after
 * every step, private pages raising SIGBUS on the host, and the HugeTLB pools
 * must be as they were whenever no created file is open.  The runner fails
 * the boot on any kernel warning.
 *
 * Usage: gmem_fuzz_test [-n operations] [-s seed]
 * A failure names the seed and the step: -s and -n replay it.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <linux/falloc.h>
#include <linux/memfd.h>
#include <linux/sizes.h>

#include "gmem_hugetlb_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"

#define PRIVATE		KVM_MEMORY_ATTRIBUTE_PRIVATE
#define PUNCH_HOLE	(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)
#define FUZZ_GPA	SZ_4G
#define FUZZ_SLOT	10

static unsigned int seed;
static unsigned long step;

#define CHECK(cond, fmt, ...)						\
	TEST_ASSERT(cond, "seed %u step %lu: " fmt, seed, step, ##__VA_ARGS__)

/* The guest_memfd files under test, each with a model. */
struct gfile {
	const char *name;
	u64 flags;
	u64 size;
	u64 huge;	/* page size of the file's folios */
	int weight;	/* how often it is picked, of 100 */
	int fd;
	u8 *mem;
	u8 *private;	/* per 4K page */
	u64 *word;	/* per 4K page: word 0 */
};

static struct gfile files[] = {
	{ "4K", GMEM_FLAGS_SHARED, SZ_4M, PAGE_SIZE, 55 },
	{ "2M", GMEM_FLAGS_SHARED_HUGETLB | GUEST_MEMFD_FLAG_HUGE_2MB,
	  4 * SZ_2M, SZ_2M, 40 },
	{ "1G", GMEM_FLAGS_SHARED_HUGETLB | GUEST_MEMFD_FLAG_HUGE_1GB,
	  SZ_1G, SZ_1G, 5 },
};

static struct kvm_vm *vm;
static int other_fds[8];
static int nr_other_fds, memfd;
/* The pools with the files open (pool_*) and before they were (base_*). */
static struct gmem_hp_counts pool_2m, pool_1g, base_2m, base_1g;

static u64 rnd64(void)
{
	return (u64)random() << 62 ^ (u64)random() << 31 ^ random();
}

static u64 rnd(u64 n)
{
	return rnd64() % n;
}

static bool chance(int percent)
{
	return rnd(100) < (u64)percent;
}

/* A value near what matters for a file of @size: mostly valid, often edges. */
static u64 interesting(u64 size)
{
	static const u64 units[] = { PAGE_SIZE, SZ_2M, SZ_1G };
	u64 u = units[rnd(ARRAY_SIZE(units))];

	switch (rnd(10)) {
	case 0:
		return 0;
	case 1:
		return rnd64();
	case 2:
		return ~0ull - rnd(2) * (PAGE_SIZE - 1);
	case 3:
		return 1ull << rnd(64);
	case 4:
		return size + (rnd(3) - 1) * u;
	case 5:
		return rnd(size / PAGE_SIZE + 2) * PAGE_SIZE + rnd(2) * rnd(PAGE_SIZE);
	default:
		return rnd(size / u + 1) * u;
	}
}

static bool errno_in(int err, const int *list, int n)
{
	int i;

	for (i = 0; i < n; i++)
		if (err == list[i])
			return true;
	return false;
}

#define CHECK_ERRNO(ret, what, ...)					\
do {									\
	static const int __ok[] = { __VA_ARGS__ };			\
	CHECK((ret) >= 0 || errno_in(errno, __ok, ARRAY_SIZE(__ok)),	\
	      "%s failed with errno %d (%s), which it does not document", \
	      what, errno, strerror(errno));				\
} while (0)

static void gfile_open(struct gfile *f)
{
	u64 n = f->size / PAGE_SIZE;

	f->fd = vm_create_guest_memfd(vm, f->size, f->flags);
	f->mem = kvm_mmap(f->size, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd);
	f->private = calloc(n, 1);
	f->word = calloc(n, sizeof(u64));
	TEST_ASSERT(f->private && f->word, "calloc");
}

/* Page @i of @f is what the model says: SIGBUS if private, else its word. */
static void check_page(struct gfile *f, u64 i, const char *what)
{
	u8 *p = f->mem + i * PAGE_SIZE;

	if (f->private[i]) {
		CHECK(!host_touch(p, false), "%s: %s page %lu is private but the host read it",
		      what, f->name, i);
		return;
	}
	CHECK(host_touch(p, false), "%s: %s page %lu is shared but raised SIGBUS",
	      what, f->name, i);
	CHECK(*(u64 *)p == f->word[i], "%s: %s page %lu holds 0x%lx, the model 0x%lx",
	      what, f->name, i, *(u64 *)p, f->word[i]);
}

/* Check the pages at both ends of [@off, @off + @len) and a few others. */
static void check_range(struct gfile *f, u64 off, u64 len, const char *what)
{
	u64 n = f->size / PAGE_SIZE;
	int k;

	if (off < f->size) {
		u64 last = n - 1;

		if (len && off + len - 1 >= off && off + len - 1 < f->size)
			last = (off + len - 1) / PAGE_SIZE;
		check_page(f, off / PAGE_SIZE, what);
		check_page(f, last, what);
	}
	for (k = 0; k < 2; k++)
		check_page(f, rnd(n), what);
}

static struct gfile *pick_file(void)
{
	int r = rnd(100), i;

	for (i = 0; i < ARRAY_SIZE(files); i++) {
		r -= files[i].weight;
		if (r < 0)
			break;
	}
	return &files[min_t(int, i, ARRAY_SIZE(files) - 1)];
}

/* A descriptor that is not a guest_memfd, or not open at all. */
static int other_fd(void)
{
	return rnd(nr_other_fds + 1) < (u64)nr_other_fds ?
	       other_fds[rnd(nr_other_fds)] : 1000 + (int)rnd(1000);
}

static bool fuzz_convert(void)
{
	struct gfile *f = pick_file();
	struct kvm_memory_attributes2 a = {};
	bool on_file = !chance(5);
	int fd = on_file ? f->fd : other_fd();
	void *arg = &a;
	int i, ret;

	a.offset = chance(50) ? rnd(f->size / PAGE_SIZE) * PAGE_SIZE : interesting(f->size);
	a.size = chance(50) ? (1 + rnd(chance(80) ? 8 : 1024)) * PAGE_SIZE :
			      interesting(f->size);
	a.attributes = chance(90) ? (chance(50) ? PRIVATE : 0) : rnd64();
	if (chance(5))
		a.flags = rnd64();
	if (chance(5))
		a.error_offset = rnd64();
	if (chance(5))
		a.reserved[rnd(ARRAY_SIZE(a.reserved))] = rnd64();
	if (chance(2))
		arg = chance(50) ? NULL : (void *)(uintptr_t)rnd64();

	ret = ioctl(fd, KVM_SET_MEMORY_ATTRIBUTES2, arg);
	if (!on_file) {
		CHECK(ret < 0, "KVM_SET_MEMORY_ATTRIBUTES2 on fd %d (not a guest_memfd) succeeded",
		      fd);
		CHECK_ERRNO(ret, "KVM_SET_MEMORY_ATTRIBUTES2 on another fd",
			    ENOTTY, EINVAL, EBADF, EFAULT);
		return false;
	}
	CHECK_ERRNO(ret, "KVM_SET_MEMORY_ATTRIBUTES2", EINVAL, EAGAIN, ENOMEM, EFAULT);
	if (!ret) {
		CHECK(!(a.offset % PAGE_SIZE) && !(a.size % PAGE_SIZE) && a.size &&
		      a.offset + a.size <= f->size && a.offset + a.size > a.offset &&
		      !(a.attributes & ~PRIVATE) && !a.flags && !a.error_offset,
		      "KVM_SET_MEMORY_ATTRIBUTES2 accepted offset 0x%lx size 0x%lx attributes 0x%lx flags 0x%lx error_offset 0x%lx on a %s file of 0x%lx",
		      (u64)a.offset, (u64)a.size, (u64)a.attributes, (u64)a.flags,
		      (u64)a.error_offset, f->name, f->size);
		for (i = 0; i < ARRAY_SIZE(a.reserved); i++)
			CHECK(!a.reserved[i], "reserved[%d] = 0x%lx accepted", i,
			      (u64)a.reserved[i]);
		memset(f->private + a.offset / PAGE_SIZE, !!a.attributes, a.size / PAGE_SIZE);
	}
	check_range(f, a.offset, a.size, "after KVM_SET_MEMORY_ATTRIBUTES2");
	return !ret;
}

static bool fuzz_fallocate(void)
{
	struct gfile *f = pick_file();
	bool on_file = !chance(5);
	int fd = on_file ? f->fd : other_fd();
	int mode, ret;
	u64 off, len;

	mode = chance(85) ? (chance(60) ? PUNCH_HOLE : FALLOC_FL_KEEP_SIZE) : (int)rnd64();
	/* The memfd would really allocate: only ever punch it. */
	if (fd == memfd)
		mode = PUNCH_HOLE;
	off = chance(50) ? rnd(f->size / PAGE_SIZE) * PAGE_SIZE : interesting(f->size);
	len = chance(50) ? (1 + rnd(16)) * PAGE_SIZE : interesting(f->size);
	/* A 1G file would zero up to 1G on each call: keep its ranges small. */
	if (f->huge == SZ_1G && (mode & FALLOC_FL_PUNCH_HOLE) && len > SZ_4M && chance(90))
		len = SZ_4M;

	ret = fallocate(fd, mode, off, len);
	if (!on_file) {
		CHECK_ERRNO(ret, "fallocate on another fd", EBADF, ESPIPE, ENODEV,
			    EOPNOTSUPP, EINVAL, EFBIG, EPERM, ENOSPC, EINTR);
		return false;
	}
	CHECK_ERRNO(ret, "fallocate", EINVAL, EOPNOTSUPP, EFBIG, ENOSPC, ENOMEM);
	if (!ret && (mode & FALLOC_FL_PUNCH_HOLE) && off < f->size) {
		u64 end = min_t(u64, f->size, off + len);

		memset(f->word + off / PAGE_SIZE, 0, (end - off) / PAGE_SIZE * sizeof(u64));
	}
	check_range(f, off, len, "after fallocate");
	return !ret;
}

/* The host writes a new word to a shared page (private: SIGBUS, nothing). */
static bool host_write(void)
{
	struct gfile *f = pick_file();
	u64 i = rnd(f->size / PAGE_SIZE);
	u64 val = rnd64() | 1;
	u8 *p = f->mem + i * PAGE_SIZE;

	if (f->private[i]) {
		CHECK(!host_touch(p, true), "%s page %lu is private but the host wrote it",
		      f->name, i);
		return false;
	}
	CHECK(host_touch(p, true), "%s page %lu is shared but a write raised SIGBUS",
	      f->name, i);
	*(u64 *)p = val;
	f->word[i] = val;
	return true;
}

/*
 * With the files open, their pages move between free+reserved and in use as
 * they are allocated and punched; nothing else may move.
 */
static void check_pool(unsigned long kb, const struct gmem_hp_counts *want,
		       const char *what)
{
	struct gmem_hp_counts now;

	gmem_hp_read(kb, &now);
	CHECK(now.nr == want->nr && now.surplus == want->surplus &&
	      now.free - now.resv == want->free - want->resv,
	      "%s: %lukB pool nr/free/resv/surplus %ld/%ld/%ld/%ld, was %ld/%ld/%ld/%ld",
	      what, kb, now.nr, now.free, now.resv, now.surplus,
	      want->nr, want->free, want->resv, want->surplus);
}

static void check_pools(const char *what)
{
	check_pool(2048, &pool_2m, what);
	check_pool(1048576, &pool_1g, what);
}

/* Creation with random fields; whatever it creates is closed at once. */
static bool fuzz_create(void)
{
	struct kvm_create_guest_memfd c = {};
	bool on_vm = !chance(5);
	int fd = on_vm ? vm->fd : other_fd();
	void *arg = &c;
	int ret;

	c.size = interesting(chance(30) ? SZ_1G : SZ_4M);
	switch (rnd(4)) {
	case 0:
		c.flags = rnd64();
		break;
	case 1:
		c.flags = GMEM_FLAGS_SHARED_HUGETLB |
			  rnd(64) << GUEST_MEMFD_FLAG_HUGE_SHIFT;
		break;
	default:
		c.flags = files[rnd(ARRAY_SIZE(files))].flags & (chance(80) ? ~0ull : rnd64());
		break;
	}
	if (chance(10))
		c.reserved[rnd(ARRAY_SIZE(c.reserved))] = rnd64();
	if (chance(2))
		arg = chance(50) ? NULL : (void *)(uintptr_t)rnd64();

	ret = ioctl(fd, KVM_CREATE_GUEST_MEMFD, arg);
	if (!on_vm) {
		CHECK(ret < 0, "KVM_CREATE_GUEST_MEMFD on fd %d (not a VM) succeeded", fd);
		CHECK_ERRNO(ret, "KVM_CREATE_GUEST_MEMFD on another fd",
			    ENOTTY, EINVAL, EBADF, EFAULT);
		return false;
	}
	CHECK_ERRNO(ret, "KVM_CREATE_GUEST_MEMFD", EINVAL, ENOMEM, EFAULT);
	if (ret >= 0) {
		CHECK(c.size && !(c.size % PAGE_SIZE) && (s64)c.size > 0,
		      "KVM_CREATE_GUEST_MEMFD accepted size 0x%lx", (u64)c.size);
		close(ret);
	}
	check_pools("after KVM_CREATE_GUEST_MEMFD and close");
	return ret >= 0;
}

/* Bind random ranges of random descriptors; whatever binds is deleted. */
static bool fuzz_bind(void)
{
	struct gfile *f = pick_file();
	struct kvm_userspace_memory_region2 r = {
		.slot = FUZZ_SLOT + rnd(2),
		.flags = KVM_MEM_GUEST_MEMFD,
		.guest_phys_addr = FUZZ_GPA + rnd(4) * SZ_1G,
	};
	int ret;

	r.guest_memfd = chance(80) ? f->fd : other_fd();
	r.guest_memfd_offset = chance(50) ? rnd(f->size / f->huge) * f->huge :
					    interesting(f->size);
	r.memory_size = chance(50) ? f->size - rnd(2) * f->huge : interesting(f->size);
	r.userspace_addr = chance(80) ? (uintptr_t)f->mem : rnd64();
	if (chance(5))
		r.flags |= rnd64() & ~(u64)KVM_MEM_GUEST_MEMFD;
	if (chance(5))
		r.guest_phys_addr = interesting(SZ_1G);
	if (chance(5))
		r.pad2[rnd(ARRAY_SIZE(r.pad2))] = rnd64();

	ret = __vm_ioctl(vm, KVM_SET_USER_MEMORY_REGION2, &r);
	CHECK_ERRNO(ret, "KVM_SET_USER_MEMORY_REGION2", EINVAL, EBADF, EEXIST, EFAULT,
		    ENOMEM, E2BIG);
	if (!ret && r.memory_size) {
		r.memory_size = 0;
		r.flags = 0;
		CHECK(!__vm_ioctl(vm, KVM_SET_USER_MEMORY_REGION2, &r),
		      "deleting slot %u failed, errno %d", r.slot, errno);
	}
	return !ret;
}

static void open_other_fds(void)
{
	int p[2], s[2];

	other_fds[nr_other_fds++] = open_kvm_dev_path_or_exit();
	other_fds[nr_other_fds++] = vm->fd;
	memfd = memfd_create("gmem_fuzz", 0);
	other_fds[nr_other_fds++] = memfd;
	TEST_ASSERT(!pipe(p), "pipe");
	other_fds[nr_other_fds++] = p[0];
	other_fds[nr_other_fds++] = p[1];
	other_fds[nr_other_fds++] = eventfd(0, 0);
	/* A socket where the kernel has them (the test VM's may not). */
	if (!socketpair(AF_UNIX, SOCK_STREAM, 0, s))
		other_fds[nr_other_fds++] = s[0];
	other_fds[nr_other_fds++] = open("/proc/self/status", O_RDONLY);
}

int main(int argc, char *argv[])
{
	static const struct {
		const char *name;
		bool (*fn)(void);
		int weight;
	} ops[] = {
		{ "convert", fuzz_convert, 45 },
		{ "fallocate", fuzz_fallocate, 20 },
		{ "host_write", host_write, 20 },
		{ "create", fuzz_create, 10 },
		{ "bind", fuzz_bind, 5 },
	};
	unsigned long nr_ops = 20000, counts[ARRAY_SIZE(ops)] = {}, ok[ARRAY_SIZE(ops)] = {};
	int i, opt, r;

	seed = time(NULL);
	while ((opt = getopt(argc, argv, "n:s:")) != -1) {
		if (opt == 'n') {
			nr_ops = strtoul(optarg, NULL, 0);
		} else if (opt == 's') {
			seed = strtoul(optarg, NULL, 0);
		} else {
			printf("usage: %s [-n operations] [-s seed]\n", argv[0]);
			exit(KSFT_FAIL);
		}
	}

	gmem_hvm_require(1048576, 1);
	gmem_hvm_require(2048, 4);
	srandom(seed);
	ksft_print_header();
	ksft_set_plan(1);
	ksft_print_msg("seed %u, %lu operations\n", seed, nr_ops);

	vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	gmem_hp_read(2048, &base_2m);
	gmem_hp_read(1048576, &base_1g);
	for (i = 0; i < ARRAY_SIZE(files); i++)
		gfile_open(&files[i]);
	/* The files' reservations are part of the pools from now on. */
	gmem_hp_read(2048, &pool_2m);
	gmem_hp_read(1048576, &pool_1g);
	open_other_fds();

	for (step = 0; step < nr_ops; step++) {
		r = rnd(100);
		for (i = 0; i < ARRAY_SIZE(ops) - 1; i++) {
			r -= ops[i].weight;
			if (r < 0)
				break;
		}
		ok[i] += ops[i].fn();
		counts[i]++;
	}
	for (i = 0; i < ARRAY_SIZE(ops); i++)
		ksft_print_msg("%s: %lu calls, %lu succeeded\n", ops[i].name, counts[i], ok[i]);

	/* Every page once more, then the pools after every file is closed. */
	for (i = 0; i < ARRAY_SIZE(files); i++) {
		struct gfile *f = &files[i];
		u64 p, n = f->size / PAGE_SIZE;

		for (p = 0; p < n; p += f->huge == SZ_1G ? 97 : 1)
			check_page(f, p, "at the end");
		kvm_munmap(f->mem, f->size);
		close(f->fd);
	}
	kvm_vm_free(vm);
	for (i = 0; i < 50; i++) {
		gmem_hp_read(2048, &pool_2m);
		gmem_hp_read(1048576, &pool_1g);
		if (gmem_hp_equal(&pool_2m, &base_2m) && gmem_hp_equal(&pool_1g, &base_1g))
			break;
		usleep(100000);
	}
	gmem_hp_check(2048, &base_2m, 0, 0, "every file closed");
	gmem_hp_check(1048576, &base_1g, 0, 0, "every file closed");
	ksft_test_result_pass("%lu operations, seed %u\n", nr_ops, seed);
	ksft_finished();
}
