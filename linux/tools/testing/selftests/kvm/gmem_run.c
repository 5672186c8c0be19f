// SPDX-License-Identifier: GPL-2.0-only
/*
 * gmem_run - what 'make run' shows: a guest running on guest_memfd memory.
 *
 * Creates a guest_memfd (4K pages, or HugeTLB 2M/1G pages with -p), fills it
 * from the host through mmap(), lets a guest check and rewrite it, checks the
 * host sees the guest's writes in the same pages, and prints where the memory
 * came from (NUMA node, hugetlb pool counters) and how KVM mapped it (the VM's
 * pages_4k/2m/1g statistics).  Exits non-zero if anything it checks is wrong,
 * so the harness runs it as a smoke test too.
 *
 *   gmem_run [-p 4K|2M|1G]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include <linux/sizes.h>

#include "kvm_util.h"
#include "test_util.h"
#include "ucall_common.h"

#define GMEM_RUN_GPA	SZ_4G
#define GMEM_RUN_SLOT	1
/* The guest touches this many places, spread over the whole file. */
#define GMEM_RUN_TOUCH	64

static void guest_code(u64 gpa, u64 size, u64 stride)
{
	u64 off;

	for (off = 0; off < size; off += stride) {
		u64 *p = (u64 *)(gpa + off);

		__GUEST_ASSERT(*p == off, "0x%lx holds 0x%lx before the guest wrote", off, *p);
		*p = ~off;
	}
	GUEST_DONE();
}

/* The NUMA node of @pfn, from the zone spans in /proc/zoneinfo. */
static int pfn_to_node(u64 pfn)
{
	u64 start = 0, spanned = 0;
	int node = -1, found = -1;
	char line[256];
	FILE *f;

	f = fopen("/proc/zoneinfo", "r");
	TEST_ASSERT(f, "open /proc/zoneinfo");
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Node %d,", &node) == 1)
			continue;
		if (sscanf(line, " spanned %lu", &spanned) == 1)
			continue;
		if (sscanf(line, " start_pfn: %lu", &start) == 1 &&
		    pfn >= start && pfn < start + spanned) {
			found = node;
			break;
		}
	}
	fclose(f);
	return found;
}

static u64 virt_to_pfn(void *addr)
{
	u64 entry;
	int fd;

	fd = open("/proc/self/pagemap", O_RDONLY);
	TEST_ASSERT(fd >= 0, "open /proc/self/pagemap");
	TEST_ASSERT(pread(fd, &entry, sizeof(entry),
			  (unsigned long)addr / getpagesize() * sizeof(entry)) == sizeof(entry),
		    "read pagemap");
	close(fd);
	TEST_ASSERT(entry & (1ULL << 63), "%p not present", addr);
	return entry & ((1ULL << 55) - 1);
}

/* A hugetlb pool counter, system-wide (@node < 0) or of one NUMA node. */
static unsigned long pool_counter(u64 page_size, int node, const char *name)
{
	unsigned long val;
	char path[128];
	FILE *f;

	if (node < 0)
		snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%lukB/%s",
			 page_size / 1024, name);
	else
		snprintf(path, sizeof(path),
			 "/sys/devices/system/node/node%d/hugepages/hugepages-%lukB/%s",
			 node, page_size / 1024, name);
	f = fopen(path, "r");
	TEST_ASSERT(f, "open %s", path);
	TEST_ASSERT(fscanf(f, "%lu", &val) == 1, "read %s", path);
	fclose(f);
	return val;
}

static void print_pool(u64 page_size, const char *when)
{
	if (page_size == SZ_4K)
		return;
	printf("  hugetlb %luM pool %s: free %lu (node 0: %lu, node 1: %lu), reserved %lu\n",
	       page_size >> 20, when, pool_counter(page_size, -1, "free_hugepages"),
	       pool_counter(page_size, 0, "free_hugepages"),
	       pool_counter(page_size, 1, "free_hugepages"),
	       pool_counter(page_size, -1, "resv_hugepages"));
}

int main(int argc, char *argv[])
{
	u64 flags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED;
	u64 page_size = SZ_4K, size, stride, off;
	int fd, opt, nodes[2] = { 0, 0 };
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	u8 *mem;

	while ((opt = getopt(argc, argv, "p:")) != -1) {
		TEST_ASSERT(opt == 'p', "usage: gmem_run [-p 4K|2M|1G]");
		if (!strcmp(optarg, "2M"))
			page_size = SZ_2M;
		else if (!strcmp(optarg, "1G"))
			page_size = SZ_1G;
		else
			TEST_ASSERT(!strcmp(optarg, "4K"), "page size %s: 4K, 2M or 1G", optarg);
	}
	if (page_size == SZ_2M)
		flags |= GUEST_MEMFD_FLAG_HUGETLB | GUEST_MEMFD_FLAG_HUGE_2MB;
	else if (page_size == SZ_1G)
		flags |= GUEST_MEMFD_FLAG_HUGETLB | GUEST_MEMFD_FLAG_HUGE_1GB;
	size = page_size == SZ_1G ? SZ_1G : SZ_2M;
	stride = size / GMEM_RUN_TOUCH;

	TEST_REQUIRE(kvm_has_cap(KVM_CAP_GUEST_MEMFD));

	printf("gmem_run: %lu MiB guest_memfd of %s pages, MMAP|INIT_SHARED, at GPA 0x%lx\n",
	       size >> 20, page_size == SZ_4K ? "4K" : page_size == SZ_2M ? "2M" : "1G",
	       (unsigned long)GMEM_RUN_GPA);
	printf("  KVM_CAP_GUEST_MEMFD_FLAGS = 0x%x\n", kvm_check_cap(KVM_CAP_GUEST_MEMFD_FLAGS));
	print_pool(page_size, "before");

	/* Room for the guest page tables of GMEM_RUN_TOUCH scattered pages. */
	vm = __vm_create_shape_with_one_vcpu(VM_SHAPE_DEFAULT, &vcpu,
					     2 * GMEM_RUN_TOUCH, guest_code);
	fd = vm_create_guest_memfd(vm, size, flags);
	print_pool(page_size, "after creating the file");
	vm_set_user_memory_region2(vm, GMEM_RUN_SLOT, KVM_MEM_GUEST_MEMFD, GMEM_RUN_GPA,
				   size, NULL, fd, 0);

	mem = kvm_mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, fd);
	for (off = 0; off < size; off += stride) {
		*(u64 *)(mem + off) = off;
		virt_map(vm, GMEM_RUN_GPA + off, GMEM_RUN_GPA + off, 1);
	}
	printf("  host wrote %d places through mmap()\n", GMEM_RUN_TOUCH);
	if (page_size == SZ_4K) {
		/* HugeTLB mappings are PFNMAP, invisible to pagemap: see the pool. */
		for (off = 0; off < size; off += stride) {
			int node = pfn_to_node(virt_to_pfn(mem + off));

			if (node == 0 || node == 1)
				nodes[node]++;
		}
		printf("  those pages are on node 0: %d, node 1: %d\n", nodes[0], nodes[1]);
	}
	print_pool(page_size, "after the host touched it");

	vcpu_args_set(vcpu, 3, GMEM_RUN_GPA, size, stride);
	vcpu_run(vcpu);
	TEST_ASSERT_EQ(get_ucall(vcpu, NULL), UCALL_DONE);
	printf("  guest checked every place and wrote its complement\n");

	for (off = 0; off < size; off += stride)
		TEST_ASSERT(*(u64 *)(mem + off) == ~off,
			    "host sees 0x%lx at 0x%lx, guest wrote 0x%lx",
			    *(u64 *)(mem + off), off, ~off);
	printf("  host read the guest's writes back through the same mapping\n");
	printf("  KVM mappings: pages_4k=%lu pages_2m=%lu pages_1g=%lu\n",
	       vm_get_stat(vm, pages_4k), vm_get_stat(vm, pages_2m),
	       vm_get_stat(vm, pages_1g));
	if (page_size == SZ_2M)
		TEST_ASSERT(vm_get_stat(vm, pages_2m), "2M guest_memfd not mapped with 2M NPT");
	if (page_size == SZ_1G)
		TEST_ASSERT(vm_get_stat(vm, pages_1g), "1G guest_memfd not mapped with 1G NPT");

	kvm_munmap(mem, size);
	close(fd);
	kvm_vm_free(vm);
	print_pool(page_size, "after closing everything");
	printf("gmem_run: OK\n");
	return 0;
}
