// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmem_poison_race_test - memory failure of a guest_memfd page racing with
 * a hole punch and with a conversion of the same page (-p 4K, 2M or 1G).
 *
 * memory_failure() holds the page's folio lock when it calls guest_memfd's
 * ->error_remove_folio, while a hole punch and a conversion take the folio
 * lock under the file's invalidate_lock.  If the error handler waited for
 * invalidate_lock the two would deadlock (lockdep cannot see folio locks;
 * the hung-task detector of the test VM reports it after 60s).  One thread
 * poisons a shared page with MADV_HWPOISON while another punches it or
 * converts it to private and back, in lockstep, a page after another.  Every
 * poisoned page is lost to the host for good: run it in a boot of its own.
 * On a HugeTLB file the page is a 4K piece of a split block (the other
 * pages of its 2M block are private).
 *
 * Usage: gmem_poison_race_test [-p 4K|2M|1G] [-n rounds]
 */
#include <errno.h>
#include <pthread.h>
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

#define PRIVATE		KVM_MEMORY_ATTRIBUTE_PRIVATE
#define PUNCH_HOLE	(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE)
#define PMD_PAGES	(SZ_2M / PAGE_SIZE)

static const struct {
	const char *name;
	u64 flags;
	unsigned long kb;
} backings[] = {
	{ "4K", GMEM_FLAGS_SHARED, 0 },
	{ "2M", GMEM_FLAGS_SHARED_HUGETLB | GUEST_MEMFD_FLAG_HUGE_2MB, 2048 },
	{ "1G", GMEM_FLAGS_SHARED_HUGETLB | GUEST_MEMFD_FLAG_HUGE_1GB, 1048576 },
};

static int bk, fd;
static u8 *mem;
static u64 page;
static pthread_barrier_t start, done;
static bool stop;

/* Punch or convert the page of the round, in step with the poisoner. */
static void *other_thread(void *arg)
{
	unsigned long round = 0;

	for (;;) {
		pthread_barrier_wait(&start);
		if (READ_ONCE(stop))
			return NULL;
		if (round++ % 2) {
			TEST_ASSERT(!fallocate(fd, PUNCH_HOLE, page * PAGE_SIZE, PAGE_SIZE),
				    "punching page %lu, errno %d", page, errno);
		} else if (!__gmem_set_attributes(fd, page * PAGE_SIZE, PAGE_SIZE, PRIVATE,
						  NULL)) {
			gmem_set_shared(fd, page * PAGE_SIZE, PAGE_SIZE);
		} else {
			/* The poisoner's mapping may still hold it, or it is poisoned. */
			TEST_ASSERT(errno == EAGAIN, "converting page %lu, errno %d", page, errno);
		}
		pthread_barrier_wait(&done);
	}
}

int main(int argc, char *argv[])
{
	unsigned long rounds = 200, r, poisoned = 0;
	u64 size, pages_per_block;
	struct kvm_vm *vm;
	pthread_t other;
	int opt, ret;

	while ((opt = getopt(argc, argv, "p:n:")) != -1) {
		if (opt == 'n') {
			rounds = strtoul(optarg, NULL, 0);
			continue;
		}
		for (bk = 0; bk < ARRAY_SIZE(backings); bk++)
			if (opt == 'p' && !strcmp(optarg, backings[bk].name))
				break;
		if (bk == ARRAY_SIZE(backings)) {
			printf("usage: %s [-p 4K|2M|1G] [-n rounds]\n", argv[0]);
			exit(KSFT_FAIL);
		}
	}
	/* One 2M block a round on a HugeTLB file, its pages private but one. */
	pages_per_block = backings[bk].kb ? PMD_PAGES : 1;
	size = backings[bk].kb == 1048576 ? SZ_1G : rounds * pages_per_block * PAGE_SIZE;
	TEST_ASSERT(rounds * pages_per_block * PAGE_SIZE <= size,
		    "-n %lu: a 1G file has room for %d rounds", rounds, SZ_1G / SZ_2M);
	if (backings[bk].kb)
		gmem_hvm_require(backings[bk].kb, size / (backings[bk].kb * 1024));
	else
		sigbus_probe_install();
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES) & PRIVATE);

	ksft_print_header();
	ksft_set_plan(1);
	vm = vm_create_barebones_type(KVM_X86_SW_PROTECTED_VM);
	fd = vm_create_guest_memfd(vm, size, backings[bk].flags);
	mem = kvm_mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, fd);

	pthread_barrier_init(&start, NULL, 2);
	pthread_barrier_init(&done, NULL, 2);
	pthread_create(&other, NULL, other_thread, NULL);
	for (r = 0; r < rounds; r++) {
		u64 first = r * pages_per_block;

		page = first + pages_per_block / 2;
		*(u64 *)(mem + page * PAGE_SIZE) = r;
		/* Allocated, now split: everything private but the page. */
		if (pages_per_block > 1) {
			gmem_set_private(fd, first * PAGE_SIZE, pages_per_block * PAGE_SIZE);
			gmem_set_shared(fd, page * PAGE_SIZE, PAGE_SIZE);
			*(u64 *)(mem + page * PAGE_SIZE) = r;
		}
		pthread_barrier_wait(&start);
		/* SIGBUS (BUS_MCEERR_AR) to this thread is the normal outcome. */
		host_madvise(mem + page * PAGE_SIZE, MADV_HWPOISON, &ret);
		poisoned += !ret;
		pthread_barrier_wait(&done);
	}
	WRITE_ONCE(stop, true);
	pthread_barrier_wait(&start);
	pthread_join(other, NULL);

	/*
	 * memory_failure() may find the page still referenced by the other
	 * thread and report failure (EBUSY): a valid end of the race too.  A
	 * deadlock is what fails here (the runner's timeout, the hung-task
	 * report).
	 */
	ksft_print_msg("%lu rounds, MADV_HWPOISON returned 0 in %lu\n", rounds, poisoned);
	kvm_munmap(mem, size);
	close(fd);
	kvm_vm_free(vm);
	ksft_test_result_pass("MADV_HWPOISON racing punch and conversion, %s file\n",
			      backings[bk].name);
	ksft_finished();
}
