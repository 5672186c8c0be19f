// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmem_hostile_test - the host process tries every way it has to read or
 * write a private page of its own guest_memfd (-p 4K, 2M or 1G).
 *
 * A page holds a secret while it is shared, then becomes private: a 4K page
 * inside a huge page (a piece of a split block), and every page of a file
 * made private as a whole (pages of whole huge folios).  Each attempt must
 * fail without the secret reaching any buffer, pipe or file: loads and
 * stores through the mapping (SIGBUS), read()/pread()/write() on the
 * guest_memfd, write() and O_DIRECT pwrite() of the page to a file,
 * /proc/self/mem, process_vm_readv()/writev(), vmsplice(), splice() from the
 * guest_memfd, MADV_POPULATE_READ/WRITE, a MAP_PRIVATE mapping, an mremap()ed
 * mapping and a forked child.  When the page is shared again it still holds
 * the secret: nothing was written into it either.  While shared, a page
 * of a whole huge folio reads back through /proc/self/mem and
 * process_vm_readv() (GUP), so their failures once it is private are the
 * conversion's doing.  (A pin taken while shared blocks the conversion,
 * gmem_conversions_test's gup_pin.)  The O_DIRECT file is on tmpfs, which
 * copies rather than pins the user buffer.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <linux/sizes.h>

#include "gmem_hugetlb_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"

#define PRIVATE		KVM_MEMORY_ATTRIBUTE_PRIVATE
#define SECRET_WORDS	(PAGE_SIZE / sizeof(u64))

static const struct {
	const char *name;
	u64 flags;
	u64 size;	/* of the file */
	unsigned long kb;
} backings[] = {
	{ "4K", GMEM_FLAGS_SHARED, SZ_2M, 0 },
	{ "2M", GMEM_FLAGS_SHARED_HUGETLB | GUEST_MEMFD_FLAG_HUGE_2MB, SZ_2M, 2048 },
	{ "1G", GMEM_FLAGS_SHARED_HUGETLB | GUEST_MEMFD_FLAG_HUGE_1GB, SZ_1G, 1048576 },
};

static int bk;
static struct kvm_vm *vm;
static int fd;
static u8 *mem;
static u64 size;
static u8 buf[PAGE_SIZE] __aligned(PAGE_SIZE);

static u64 secret(u64 page, u64 w)
{
	return 0x5ec2e700000000ull ^ page << 20 ^ w;
}

static bool holds_secret(const void *p, size_t len, u64 page)
{
	const u64 *w = p;
	size_t i;

	for (i = 0; i < len / sizeof(u64); i++)
		if (w[i] == secret(page, i % SECRET_WORDS))
			return true;
	return false;
}

static void fill_secret(u64 page)
{
	u64 *w = (u64 *)(mem + page * PAGE_SIZE);
	u64 i;

	for (i = 0; i < SECRET_WORDS; i++)
		w[i] = secret(page, i);
}

static int pipe_nonblock(int p[2])
{
	TEST_ASSERT(!pipe2(p, O_NONBLOCK), "pipe2, errno %d", errno);
	return p[0];
}

/* What a pipe holds must not be the secret. */
static void pipe_check(int p[2], u64 page, const char *what)
{
	ssize_t n = read(p[0], buf, sizeof(buf));

	TEST_ASSERT(n <= 0 || !holds_secret(buf, n, page),
		    "%s: the pipe holds page %lu's secret", what, page);
	close(p[0]);
	close(p[1]);
}

/* Every way to read private page @page at @p, which must all fail. */
static void attack_read(u8 *p, u64 page)
{
	struct iovec local = { buf, PAGE_SIZE }, remote = { p, PAGE_SIZE };
	char path[] = "/tmp/gmem_hostile_XXXXXX";
	int pfd[2], tfd, r;
	ssize_t n;

	TEST_ASSERT(!host_touch(p, false), "a load from private page %lu did not raise SIGBUS",
		    page);

	memset(buf, 0, sizeof(buf));
	n = pread(fd, buf, PAGE_SIZE, page * PAGE_SIZE);
	TEST_ASSERT(n < 0 && !holds_secret(buf, sizeof(buf), page),
		    "pread() of the guest_memfd at private page %lu returned %zd", page, n);
	n = read(fd, buf, PAGE_SIZE);
	TEST_ASSERT(n < 0, "read() of the guest_memfd returned %zd", n);

	pipe_nonblock(pfd);
	n = write(pfd[1], p, PAGE_SIZE);
	TEST_ASSERT(n < 0 && errno == EFAULT,
		    "write() of private page %lu to a pipe returned %zd, errno %d", page, n, errno);
	pipe_check(pfd, page, "write() to a pipe");

	pipe_nonblock(pfd);
	n = vmsplice(pfd[1], &remote, 1, 0);
	TEST_ASSERT(n < 0, "vmsplice() of private page %lu returned %zd", page, n);
	pipe_check(pfd, page, "vmsplice()");

	pipe_nonblock(pfd);
	n = splice(fd, NULL, pfd[1], NULL, PAGE_SIZE, SPLICE_F_NONBLOCK);
	TEST_ASSERT(n < 0, "splice() from the guest_memfd returned %zd", n);
	pipe_check(pfd, page, "splice()");

	/* A tmpfs file, buffered and O_DIRECT. */
	tfd = mkstemp(path);
	TEST_ASSERT(tfd >= 0, "mkstemp, errno %d", errno);
	unlink(path);
	n = pwrite(tfd, p, PAGE_SIZE, 0);
	TEST_ASSERT(n < 0 && errno == EFAULT, "pwrite() of private page %lu returned %zd",
		    page, n);
	r = fcntl(tfd, F_SETFL, O_DIRECT);
	TEST_ASSERT(!r, "O_DIRECT on tmpfs, errno %d", errno);
	n = pwrite(tfd, p, PAGE_SIZE, 0);
	TEST_ASSERT(n < 0, "O_DIRECT pwrite() of private page %lu returned %zd", page, n);
	memset(buf, 0, sizeof(buf));
	n = pread(tfd, buf, PAGE_SIZE, 0);
	TEST_ASSERT(n <= 0 || !holds_secret(buf, n, page), "the tmpfs file holds the secret");
	close(tfd);

	tfd = open("/proc/self/mem", O_RDONLY);
	TEST_ASSERT(tfd >= 0, "open /proc/self/mem, errno %d", errno);
	memset(buf, 0, sizeof(buf));
	n = pread(tfd, buf, PAGE_SIZE, (off_t)(uintptr_t)p);
	TEST_ASSERT(n <= 0 && !holds_secret(buf, sizeof(buf), page),
		    "/proc/self/mem read private page %lu: %zd", page, n);
	close(tfd);

	memset(buf, 0, sizeof(buf));
	n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
	TEST_ASSERT(n <= 0 && !holds_secret(buf, sizeof(buf), page),
		    "process_vm_readv() read private page %lu: %zd", page, n);

	r = madvise(p, PAGE_SIZE, MADV_POPULATE_READ);
	TEST_ASSERT(r && errno == EFAULT,
		    "MADV_POPULATE_READ of private page %lu returned %d, errno %d", page, r, errno);
}

/* Every way to write private page @page at @p, which must all fail. */
static void attack_write(u8 *p, u64 page)
{
	struct iovec local = { buf, PAGE_SIZE }, remote = { p, PAGE_SIZE };
	char path[] = "/tmp/gmem_hostile_XXXXXX";
	int tfd, r;
	ssize_t n;

	TEST_ASSERT(!host_touch(p, true), "a store to private page %lu did not raise SIGBUS",
		    page);

	memset(buf, 0xa5, sizeof(buf));
	tfd = mkstemp(path);
	TEST_ASSERT(tfd >= 0, "mkstemp, errno %d", errno);
	unlink(path);
	TEST_ASSERT(pwrite(tfd, buf, PAGE_SIZE, 0) == PAGE_SIZE, "pwrite to tmpfs");
	n = pread(tfd, p, PAGE_SIZE, 0);
	TEST_ASSERT(n < 0 && errno == EFAULT, "pread() into private page %lu returned %zd",
		    page, n);
	close(tfd);

	n = pwrite(fd, buf, PAGE_SIZE, page * PAGE_SIZE);
	TEST_ASSERT(n < 0, "pwrite() to the guest_memfd returned %zd", n);

	tfd = open("/proc/self/mem", O_RDWR);
	TEST_ASSERT(tfd >= 0, "open /proc/self/mem, errno %d", errno);
	n = pwrite(tfd, buf, PAGE_SIZE, (off_t)(uintptr_t)p);
	TEST_ASSERT(n <= 0, "/proc/self/mem wrote private page %lu: %zd", page, n);
	close(tfd);

	n = process_vm_writev(getpid(), &local, 1, &remote, 1, 0);
	TEST_ASSERT(n <= 0, "process_vm_writev() wrote private page %lu: %zd", page, n);

	r = madvise(p, PAGE_SIZE, MADV_POPULATE_WRITE);
	TEST_ASSERT(r && errno == EFAULT,
		    "MADV_POPULATE_WRITE of private page %lu returned %d, errno %d",
		    page, r, errno);
}

/* Other mappings of the same page: a copy-on-write one, a moved one, a child's. */
static void attack_mappings(u64 page)
{
	u8 *priv, *moved;
	pid_t pid;
	int status;

	priv = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	TEST_ASSERT(priv == MAP_FAILED && errno == EINVAL,
		    "a MAP_PRIVATE mapping of the guest_memfd: %p, errno %d", priv, errno);

	pid = fork();
	TEST_ASSERT(pid >= 0, "fork");
	if (!pid)
		_exit(host_touch(mem + page * PAGE_SIZE, false) ? 1 : 0);
	TEST_ASSERT(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && !WEXITSTATUS(status),
		    "a forked child read private page %lu (status 0x%x)", page, status);

	moved = mremap(mem, size, size, MREMAP_MAYMOVE);
	TEST_ASSERT(moved != MAP_FAILED, "mremap, errno %d", errno);
	mem = moved;
	TEST_ASSERT(!host_touch(mem + page * PAGE_SIZE, false),
		    "private page %lu read through an mremap()ed mapping", page);
}

static void check_secret(u64 page, const char *what)
{
	const u64 *w = (const u64 *)(mem + page * PAGE_SIZE);
	u64 i;

	TEST_ASSERT(host_touch(mem + page * PAGE_SIZE, false), "%s: page %lu raised SIGBUS",
		    what, page);
	for (i = 0; i < SECRET_WORDS; i++)
		TEST_ASSERT(w[i] == secret(page, i),
			    "%s: word %lu of page %lu is 0x%lx, not its secret", what, i, page,
			    w[i]);
}

static void setup(void)
{
	size = backings[bk].size;
	vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	fd = vm_create_guest_memfd(vm, size, backings[bk].flags);
	mem = kvm_mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
}

static void teardown(void)
{
	kvm_munmap(mem, size);
	close(fd);
	kvm_vm_free(vm);
}

/* One 4K page private inside a huge page (a piece of a split block). */
static void test_piece(void)
{
	u64 page = SZ_1M / PAGE_SIZE + 3;

	setup();
	fill_secret(page);
	fill_secret(page + 1);
	gmem_set_private(fd, page * PAGE_SIZE, PAGE_SIZE);
	attack_read(mem + page * PAGE_SIZE, page);
	attack_write(mem + page * PAGE_SIZE, page);
	attack_mappings(page);
	check_secret(page + 1, "the shared neighbour");
	gmem_set_shared(fd, page * PAGE_SIZE, PAGE_SIZE);
	check_secret(page, "shared again");
	teardown();
}

/*
 * While shared, the page at @p is the host's to read with its usual tools,
 * which GUP it (on a HugeTLB file, a page of a whole huge folio): the
 * attacks on it once private fail for being private, not for GUP.
 */
static void read_shared(u8 *p, u64 page)
{
	struct iovec local = { .iov_base = buf, .iov_len = PAGE_SIZE };
	struct iovec remote = { .iov_base = p, .iov_len = PAGE_SIZE };
	ssize_t n;
	int tfd;

	tfd = open("/proc/self/mem", O_RDONLY);
	TEST_ASSERT(tfd >= 0, "open /proc/self/mem, errno %d", errno);
	memset(buf, 0, sizeof(buf));
	n = pread(tfd, buf, PAGE_SIZE, (off_t)(uintptr_t)p);
	TEST_ASSERT(n == PAGE_SIZE && !memcmp(buf, p, PAGE_SIZE),
		    "/proc/self/mem read of shared page %lu: %zd, errno %d", page, n, errno);
	close(tfd);

	memset(buf, 0, sizeof(buf));
	n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
	TEST_ASSERT(n == PAGE_SIZE && !memcmp(buf, p, PAGE_SIZE),
		    "process_vm_readv() of shared page %lu: %zd, errno %d", page, n, errno);
}

/* The whole file private: pages of whole huge folios. */
static void test_whole(void)
{
	const u64 pages[] = { 0, 1, SZ_2M / PAGE_SIZE - 1, size / PAGE_SIZE - 1 };
	int i;

	setup();
	for (i = 0; i < ARRAY_SIZE(pages); i++)
		fill_secret(pages[i]);
	for (i = 0; i < ARRAY_SIZE(pages); i++)
		read_shared(mem + pages[i] * PAGE_SIZE, pages[i]);
	gmem_set_private(fd, 0, size);
	for (i = 0; i < ARRAY_SIZE(pages); i++) {
		attack_read(mem + pages[i] * PAGE_SIZE, pages[i]);
		attack_write(mem + pages[i] * PAGE_SIZE, pages[i]);
	}
	attack_mappings(pages[1]);
	gmem_set_shared(fd, 0, size);
	for (i = 0; i < ARRAY_SIZE(pages); i++)
		check_secret(pages[i], "shared again");
	teardown();
}

int main(int argc, char *argv[])
{
	int opt;

	while ((opt = getopt(argc, argv, "p:")) != -1) {
		for (bk = 0; bk < ARRAY_SIZE(backings); bk++)
			if (opt == 'p' && !strcmp(optarg, backings[bk].name))
				break;
		if (bk == ARRAY_SIZE(backings)) {
			printf("usage: %s [-p 4K|2M|1G]\n", argv[0]);
			exit(KSFT_FAIL);
		}
	}
	if (backings[bk].kb)
		gmem_hvm_require(backings[bk].kb, 1);
	else
		sigbus_probe_install();
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES) & PRIVATE);

	ksft_print_header();
	ksft_set_plan(2);
	test_piece();
	ksft_test_result_pass("a private 4K page inside a huge page, %s file\n",
			      backings[bk].name);
	test_whole();
	ksft_test_result_pass("pages of a file private as a whole, %s file\n",
			      backings[bk].name);
	ksft_finished();
}
