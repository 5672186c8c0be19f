// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmem_nested_test - KVM's own host mappings of a HugeTLB guest_memfd file
 * (-p 2M or 1G): a nested SVM guest whose VMCB lives in it.
 *
 * The VM's only guest_memfd is an all-shared (INIT_SHARED) HugeTLB file,
 * bound gmem-only, i.e. the host reaches it through its own mmap() of the
 * file, where whole huge folios are special PFNs.  The guest (L1) runs a
 * nested guest (L2) that executes VMMCALL, with the VMCB in that file: VMRUN
 * and the nested #VMEXIT make KVM map the VMCB with kvm_vcpu_map(), which is
 * GUP on the memslot's host address.  Without GUP on whole HugeTLB folios
 * the map fails and KVM skips the VMRUN, which the guest sees.  Checked:
 *  - each VMRUN reaches L2 and comes back with SVM_EXIT_VMMCALL, on VMCBs in
 *    the first and the last 4K page of the file;
 *  - the exit code KVM wrote through its mapping is in the host's mapping
 *    of the same page (one page, not a copy);
 *  - the file stays whole huge folios (a GUP reference does not split);
 *  - closing the VM and the file gives every huge page back to the pool.
 *
 * Usage: gmem_nested_test -p 2M|1G
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <linux/sizes.h>

#include "gmem_hugetlb_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "svm_util.h"
#include "test_util.h"

#define GFLAGS		(GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED | \
			 GUEST_MEMFD_FLAG_HUGETLB)
#define NR_ROUNDS	2

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

int main(int argc, char *argv[])
{
	u64 size, off[NR_ROUNDS];
	struct gmem_hp_counts base;
	struct svm_test_data *svm;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	struct ucall uc;
	gva_t svm_gva;
	int opt, fd, i;
	u8 *mem;

	while ((opt = getopt(argc, argv, "p:")) != -1) {
		if (opt != 'p' || !gmem_huge_parse(optarg, &hs)) {
			printf("usage: %s -p 2M|1G\n", argv[0]);
			exit(KSFT_FAIL);
		}
	}
	size = hs.nr_blocks * hs.size;
	off[0] = 0;
	off[1] = size - PAGE_SIZE;

	TEST_REQUIRE(kvm_cpu_has(X86_FEATURE_SVM));
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_GUEST_MEMFD_FLAGS) & GUEST_MEMFD_FLAG_HUGETLB);
	gmem_hp_read(hs.kb, &base);
	TEST_REQUIRE(base.free - base.resv >= (long)hs.nr_blocks);

	ksft_print_header();
	ksft_set_plan(1);

	vm = vm_create_with_one_vcpu(&vcpu, l1_guest_code);
	fd = vm_create_guest_memfd(vm, size, GFLAGS | hs.flag);
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
		switch (get_ucall(vcpu, &uc)) {
		case UCALL_SYNC:
			break;
		case UCALL_ABORT:
			REPORT_GUEST_ASSERT(uc);
			break;
		default:
			TEST_FAIL("round %d: unexpected ucall %lu", i, uc.cmd);
		}
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
	gmem_hp_check(hs.kb, &base, 0, 0, "after the VM and the file are gone");

	ksft_test_result_pass("nested SVM with its VMCB in a %s HugeTLB guest_memfd\n",
			      hs.name);
	ksft_finished();
}
