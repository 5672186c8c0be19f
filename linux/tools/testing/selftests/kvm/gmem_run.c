// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmem_run - what 'make run' shows: a guest running on guest_memfd memory.
 *
 * Creates a guest_memfd, fills it from the host through mmap(), lets a guest
 * read and rewrite it, checks the host sees the guest's writes in the same
 * pages, and prints where the memory came from (NUMA node) and how KVM mapped
 * it (the VM's pages_4k/2m/1g statistics). Exits non-zero if anything it
 * checks is wrong, so the harness can run it as a smoke test too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <linux/sizes.h>

#include "kvm_util.h"
#include "numaif.h"
#include "test_util.h"
#include "ucall_common.h"

#define GMEM_RUN_GPA	SZ_4G
#define GMEM_RUN_SLOT	1
#define GMEM_RUN_SIZE	SZ_2M

static void guest_code(u64 *mem, u64 size)
{
	u64 i;

	for (i = 0; i < size / sizeof(*mem); i++) {
		__GUEST_ASSERT(mem[i] == i, "mem[%lu] = %lu before the guest wrote", i, mem[i]);
		mem[i] = ~i;
	}
	GUEST_DONE();
}

static void print_nodes(u64 *mem, size_t size)
{
	size_t nr = size / getpagesize(), i;
	int count[2] = { 0, 0 }, other = 0;
	void **pages = calloc(nr, sizeof(*pages));
	int *status = calloc(nr, sizeof(*status));

	TEST_ASSERT(pages && status, "calloc");
	for (i = 0; i < nr; i++)
		pages[i] = (char *)mem + i * getpagesize();
	kvm_move_pages(0, nr, pages, NULL, status, 0);
	for (i = 0; i < nr; i++) {
		if (status[i] == 0 || status[i] == 1)
			count[status[i]]++;
		else
			other++;
	}
	printf("  placement: %d pages on node 0, %d on node 1, %d elsewhere\n",
	       count[0], count[1], other);
	free(pages);
	free(status);
}

int main(void)
{
	u64 flags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	u64 *mem, i;
	int fd;

	TEST_REQUIRE(kvm_has_cap(KVM_CAP_GUEST_MEMFD));

	printf("gmem_run: guest_memfd of %d KiB, flags MMAP|INIT_SHARED, at GPA 0x%lx\n",
	       GMEM_RUN_SIZE / 1024, (unsigned long)GMEM_RUN_GPA);
	printf("  KVM_CAP_GUEST_MEMFD_FLAGS = 0x%x\n", kvm_check_cap(KVM_CAP_GUEST_MEMFD_FLAGS));

	vm = __vm_create_shape_with_one_vcpu(VM_SHAPE_DEFAULT, &vcpu, 1, guest_code);
	fd = vm_create_guest_memfd(vm, GMEM_RUN_SIZE, flags);
	vm_set_user_memory_region2(vm, GMEM_RUN_SLOT, KVM_MEM_GUEST_MEMFD, GMEM_RUN_GPA,
				   GMEM_RUN_SIZE, NULL, fd, 0);

	mem = kvm_mmap(GMEM_RUN_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
	for (i = 0; i < GMEM_RUN_SIZE / sizeof(*mem); i++)
		mem[i] = i;
	printf("  host wrote %d KiB through mmap()\n", GMEM_RUN_SIZE / 1024);
	print_nodes(mem, GMEM_RUN_SIZE);

	virt_map(vm, GMEM_RUN_GPA, GMEM_RUN_GPA, GMEM_RUN_SIZE / vm->page_size);
	vcpu_args_set(vcpu, 2, GMEM_RUN_GPA, GMEM_RUN_SIZE);
	vcpu_run(vcpu);
	TEST_ASSERT_EQ(get_ucall(vcpu, NULL), UCALL_DONE);
	printf("  guest checked every word and wrote its complement\n");

	for (i = 0; i < GMEM_RUN_SIZE / sizeof(*mem); i++)
		TEST_ASSERT(mem[i] == ~i, "host sees mem[%lu] = 0x%lx, guest wrote 0x%lx",
			    i, mem[i], ~i);
	printf("  host read the guest's writes back through the same mapping\n");
	printf("  KVM mappings: pages_4k=%lu pages_2m=%lu pages_1g=%lu\n",
	       vm_get_stat(vm, pages_4k), vm_get_stat(vm, pages_2m),
	       vm_get_stat(vm, pages_1g));

	kvm_munmap(mem, GMEM_RUN_SIZE);
	close(fd);
	kvm_vm_free(vm);
	printf("gmem_run: OK\n");
	return 0;
}
