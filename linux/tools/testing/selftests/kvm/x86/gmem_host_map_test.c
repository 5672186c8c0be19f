// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmem_host_map_test - the host's and KVM's own uses of the shared pages of
 * a HugeTLB guest_memfd file (-p 2M or 1G), through the host's mmap() of
 * it, where a whole huge folio is mapped as special PFNs and the pieces of a
 * split block as ordinary pages.  Both kinds must reach GUP.
 *
 * nested: the VM's only guest_memfd is an all-shared (INIT_SHARED) file,
 * bound gmem-only.  The guest (L1) runs a nested guest (L2) that executes
 * VMMCALL, with the VMCB in that file: VMRUN and the nested #VMEXIT make KVM
 * map the VMCB with kvm_vcpu_map(), which is GUP on the memslot's host
 * address (without GUP on whole HugeTLB folios the map fails and KVM_RUN
 * returns an internal error).  Checked: each VMRUN reaches L2 and comes back
 * with SVM_EXIT_VMMCALL, on VMCBs in the first and the last 4K page of the
 * file; the exit code KVM wrote through its mapping is in the host's
 * mapping of the same page; the file stays whole huge folios.
 *
 * odirect: O_DIRECT reads and writes between a ramdisk (brd: real bios,
 * whose pages GUP pins) and (a) a page of a whole huge folio, (b) a shared
 * 4K page of a block split by a private neighbour; the data is checked both
 * ways and by the guest, which reads the same pages.  O_DIRECT from or into
 * the private page fails with EFAULT, the ramdisk does not get its contents
 * and it keeps them.  The block is whole again after the neighbour converts
 * back.  move_pages() reports both shared pages on the node their PFN
 * (pagemap) is on.
 *
 * Both give every huge page back to the pool when the VM and file are gone.
 *
 * Usage: gmem_host_map_test -p 2M|1G
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/syscall.h>

#include <linux/sizes.h>

#include "gmem_hugetlb_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "svm_util.h"
#include "test_util.h"

#define NR_ROUNDS	2
#define RAMDISK		"/dev/ram0"

static struct gmem_huge hs = GMEM_HUGE_2M;

static void l2_guest_code(struct svm_test_data *svm)
{
	__asm__ __volatile__("vmmcall");
}

static void l1_guest_code(struct svm_test_data *svm)
{
	int i;

	for (i = 0; i < NR_ROUNDS; i++) {
		/* The host moved the VMCB (svm->vmcb) before this round. */
		generic_svm_setup(svm, l2_guest_code);
		svm->vmcb->control.exit_code = 0;
		run_guest(svm->vmcb, svm->vmcb_gpa);
		__GUEST_ASSERT(svm->vmcb->control.exit_code == SVM_EXIT_VMMCALL,
			       "round %d: VMRUN of the VMCB at 0x%lx: exit code 0x%lx",
			       i, svm->vmcb_gpa, (u64)svm->vmcb->control.exit_code);
		GUEST_SYNC(i);
	}
	GUEST_DONE();
}

/* Put the VMCB at byte @off of the file: the guest maps it 1:1. */
static void vmcb_place(struct svm_test_data *svm, u8 *mem, u64 off)
{
	svm->vmcb = (struct vmcb *)(GMEM_HVM_GPA + off);
	svm->vmcb_gpa = GMEM_HVM_GPA + off;
	svm->vmcb_hva = mem + off;
}

static void test_nested(void)
{
	u64 size = hs.nr_blocks * hs.size, off[NR_ROUNDS] = { 0, size - PAGE_SIZE };
	struct gmem_hp_counts base;
	struct svm_test_data *svm;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	struct ucall uc;
	gva_t svm_gva;
	int fd, i;
	u8 *mem;

	gmem_hp_read(hs.kb, &base);
	vm = vm_create_with_one_vcpu(&vcpu, l1_guest_code);
	fd = vm_create_guest_memfd(vm, size, GMEM_FLAGS_SHARED_HUGETLB | hs.flag);
	mem = kvm_mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
	vm_set_user_memory_region2(vm, GMEM_HVM_SLOT, KVM_MEM_GUEST_MEMFD,
				   GMEM_HVM_GPA, size, mem, fd, 0);
	virt_map_level(vm, GMEM_HVM_GPA, GMEM_HVM_GPA, size, PG_LEVEL_2M);

	/* svm_test_data, save area and MSR bitmap stay in the VM's own memory. */
	svm = vcpu_alloc_svm(vm, &svm_gva);
	vcpu_args_set(vcpu, 1, svm_gva);

	for (i = 0; i < NR_ROUNDS; i++) {
		vmcb_place(svm, mem, off[i]);
		vcpu_run(vcpu);
		TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_IO);
		if (get_ucall(vcpu, &uc) == UCALL_ABORT)
			REPORT_GUEST_ASSERT(uc);
		TEST_ASSERT_EQ(uc.cmd, UCALL_SYNC);
		TEST_ASSERT_EQ(((struct vmcb *)(mem + off[i]))->control.exit_code,
			       SVM_EXIT_VMMCALL);
	}
	vcpu_run(vcpu);
	TEST_ASSERT_EQ(get_ucall(vcpu, &uc), UCALL_DONE);
	/* The huge pages of the two VMCBs were faulted in, whole. */
	gmem_fdinfo_check(fd, off[0] / hs.size == off[1] / hs.size ? 1 : 2, 0, 0, 0,
			  "after the nested runs");

	kvm_munmap(mem, size);
	kvm_close(fd);
	kvm_vm_free(vm);
	gmem_hp_check(hs.kb, &base, 0, 0, "after the nested VM and its file are gone");
	ksft_test_result_pass("nested: SVM with its VMCB in a %s HugeTLB guest_memfd\n",
			      hs.name);
}

static u64 tag(u64 page, u64 gen)
{
	return 0xd1ec7ull << 40 | gen << 32 | page;
}

static void page_fill(void *p, u64 val)
{
	u64 *w = p;
	unsigned int i;

	for (i = 0; i < PAGE_SIZE / sizeof(u64); i++)
		w[i] = val + i;
}

static bool page_holds(const void *p, u64 val)
{
	const u64 *w = p;
	unsigned int i;

	for (i = 0; i < PAGE_SIZE / sizeof(u64); i++)
		if (w[i] != val + i)
			return false;
	return true;
}

static void dio(int bfd, void *buf, off_t off, bool write, const char *what)
{
	ssize_t n = write ? pwrite(bfd, buf, PAGE_SIZE, off) : pread(bfd, buf, PAGE_SIZE, off);

	TEST_ASSERT(n == PAGE_SIZE, "%s: O_DIRECT %s of %p at %ld: %zd, errno %d (%s)",
		    what, write ? "write" : "read", buf, (long)off, n, errno,
		    strerror(errno));
}

/* move_pages(2)'s status of @addr is the node of the PFN pagemap gives. */
static void check_node(u8 *addr, const char *what)
{
	void *pages[1] = { addr };
	int status = -1, node;
	long r;

	r = syscall(__NR_move_pages, 0, 1, pages, NULL, &status, 0);
	TEST_ASSERT(!r, "%s: move_pages(), errno %d", what, errno);
	node = gmem_pfn_node(gmem_pagemap_pfn(addr));
	TEST_ASSERT(status == node, "%s: move_pages() status %d for %p, on node %d",
		    what, status, addr, node);
}

/*
 * O_DIRECT both ways between page @page of the file and ramdisk blocks
 * 2 * @slot and 2 * @slot + 1, checked through a bounce buffer that is
 * ordinary anonymous memory.
 */
static void dio_page(struct gmem_hvm *g, u64 *expect, int bfd, u8 *bounce,
		     u64 page, int slot, const char *what)
{
	off_t off = 2 * slot * PAGE_SIZE;
	u8 *p = g->mem + page * PAGE_SIZE;

	page_fill(p, tag(page, 1));
	dio(bfd, p, off, true, what);
	memset(bounce, 0, PAGE_SIZE);
	dio(bfd, bounce, off, false, what);
	TEST_ASSERT(page_holds(bounce, tag(page, 1)),
		    "%s: the ramdisk does not hold what page %lu held", what, page);

	page_fill(bounce, tag(page, 2));
	dio(bfd, bounce, off + PAGE_SIZE, true, what);
	dio(bfd, p, off + PAGE_SIZE, false, what);
	TEST_ASSERT(page_holds(p, tag(page, 2)),
		    "%s: page %lu does not hold what the ramdisk held", what, page);
	expect[page] = tag(page, 2);
	check_node(p, what);
}

static void test_odirect(void)
{
	u64 size = hs.nr_blocks * hs.size, pages = size / PAGE_SIZE;
	/* In the first huge page: a page, its private neighbour, the next. */
	u64 whole = hs.size / PAGE_SIZE / 2 + 3, priv = whole + 1, piece = whole + 2;
	struct gmem_hp_counts base;
	struct gmem_fdinfo fi;
	struct gmem_hvm g;
	u64 *expect;
	u8 *bounce;
	ssize_t n;
	int bfd;

	gmem_hp_read(hs.kb, &base);
	expect = calloc(pages, sizeof(*expect));
	bounce = aligned_alloc(PAGE_SIZE, PAGE_SIZE);
	TEST_ASSERT(expect && bounce, "allocating buffers");
	bfd = open(RAMDISK, O_RDWR | O_DIRECT);
	TEST_ASSERT(bfd >= 0, "opening " RAMDISK " (CONFIG_BLK_DEV_RAM), errno %d", errno);

	gmem_hvm_create(&g, size, GMEM_FLAGS_SHARED_HUGETLB | hs.flag);
	gmem_hvm_guest_check(&g, expect, "odirect: the guest reads the file");

	/* (a) A page of a whole huge folio. */
	dio_page(&g, expect, bfd, bounce, whole, 0, "odirect: whole folio");
	gmem_fdinfo_read(g.fd, &fi);
	TEST_ASSERT(!fi.split_blocks, "odirect: O_DIRECT split the file (%ld blocks)",
		    fi.split_blocks);

	/* (b) A 4K piece, next to a private page holding a secret. */
	page_fill(g.mem + priv * PAGE_SIZE, tag(priv, 0xf));
	expect[priv] = tag(priv, 0xf);
	gmem_set_private(g.fd, priv * PAGE_SIZE, PAGE_SIZE);
	gmem_fdinfo_read(g.fd, &fi);
	TEST_ASSERT(fi.split_blocks && fi.folios_4k,
		    "odirect: converting page %lu did not split its huge page", priv);
	dio_page(&g, expect, bfd, bounce, piece, 1, "odirect: 4K piece");

	/* The private page: neither out nor in, and nothing reaches the disk. */
	n = pwrite(bfd, g.mem + priv * PAGE_SIZE, PAGE_SIZE, 4 * PAGE_SIZE);
	TEST_ASSERT(n < 0 && errno == EFAULT,
		    "odirect: O_DIRECT write of private page %lu: %zd, errno %d", priv, n, errno);
	memset(bounce, 0, PAGE_SIZE);
	dio(bfd, bounce, 4 * PAGE_SIZE, false, "odirect: private page");
	TEST_ASSERT(!page_holds(bounce, tag(priv, 0xf)), "odirect: the ramdisk got a secret");
	page_fill(bounce, tag(priv, 3));
	dio(bfd, bounce, 5 * PAGE_SIZE, true, "odirect: private page");
	n = pread(bfd, g.mem + priv * PAGE_SIZE, PAGE_SIZE, 5 * PAGE_SIZE);
	TEST_ASSERT(n < 0 && errno == EFAULT,
		    "odirect: O_DIRECT read into private page %lu: %zd, errno %d", priv, n, errno);
	gmem_hvm_guest_check(&g, expect, "odirect: the guest reads what O_DIRECT wrote");

	gmem_set_shared(g.fd, priv * PAGE_SIZE, PAGE_SIZE);
	TEST_ASSERT(page_holds(g.mem + priv * PAGE_SIZE, tag(priv, 0xf)),
		    "odirect: private page %lu changed", priv);
	gmem_fdinfo_read(g.fd, &fi);
	TEST_ASSERT(!fi.split_blocks, "odirect: the huge page is still split");

	gmem_hvm_destroy(&g);
	close(bfd);
	free(bounce);
	free(expect);
	gmem_hp_check(hs.kb, &base, 0, 0, "after the O_DIRECT VM and its file are gone");
	ksft_test_result_pass("odirect: ramdisk I/O on %s HugeTLB guest_memfd pages\n",
			      hs.name);
}

int main(int argc, char *argv[])
{
	int opt;

	while ((opt = getopt(argc, argv, "p:")) != -1) {
		if (opt != 'p' || !gmem_huge_parse(optarg, &hs)) {
			printf("usage: %s -p 2M|1G\n", argv[0]);
			exit(KSFT_FAIL);
		}
	}

	TEST_REQUIRE(kvm_cpu_has(X86_FEATURE_SVM));
	gmem_hvm_require(hs.kb, hs.nr_blocks);

	ksft_print_header();
	ksft_set_plan(2);
	test_nested();
	test_odirect();
	ksft_finished();
}
