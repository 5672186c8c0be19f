// SPDX-License-Identifier: GPL-2.0-only
/*
 * Helpers for tests of HugeTLB guest_memfd, see gmem_hugetlb_util.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "gmem_hugetlb_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "test_util.h"
#include "ucall_common.h"
#include "../../../../../mm/gup_test.h"

/* The guest's expect array, in a memslot of its own past a 1G file. */
#define GMEM_HVM_EXPECT_GPA	(8ULL << 30)
#define GMEM_HVM_EXPECT_SLOT	11

bool gmem_huge_parse(const char *arg, struct gmem_huge *h)
{
	static const struct gmem_huge sizes[] = { GMEM_HUGE_2M, GMEM_HUGE_1G };
	int i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		if (!strcmp(arg, sizes[i].name)) {
			*h = sizes[i];
			return true;
		}
	}
	return false;
}

long gmem_mbind(void *addr, unsigned long len, int mode, const unsigned long *mask,
		unsigned long maxnode, unsigned int flags)
{
	return syscall(__NR_mbind, addr, len, mode, mask, maxnode, flags);
}

long gmem_read_long(const char *path, bool must)
{
	long val;
	FILE *f;

	f = fopen(path, "r");
	if (!f && !must)
		return -1;
	TEST_ASSERT(f, "Opening %s failed, errno %d (%s)", path, errno, strerror(errno));
	TEST_ASSERT(fscanf(f, "%ld", &val) == 1, "Reading %s failed", path);
	fclose(f);
	return val;
}

static long hp_global(unsigned long size_kb, const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/kernel/mm/hugepages/hugepages-%lukB/%s",
		 size_kb, name);
	return gmem_read_long(path, true);
}

static long hp_node(int node, unsigned long size_kb, const char *name)
{
	char path[160];

	snprintf(path, sizeof(path),
		 "/sys/devices/system/node/node%d/hugepages/hugepages-%lukB/%s",
		 node, size_kb, name);
	return gmem_read_long(path, false);
}

void gmem_write_str(const char *path, const char *val)
{
	FILE *f = fopen(path, "w");

	TEST_ASSERT(f, "Opening %s failed, errno %d (%s)", path, errno, strerror(errno));
	TEST_ASSERT(fputs(val, f) >= 0 && !fclose(f),
		    "Writing '%s' to %s failed, errno %d (%s)", val, path, errno,
		    strerror(errno));
}

void gmem_hp_read(unsigned long size_kb, struct gmem_hp_counts *c)
{
	int n;

	memset(c, 0, sizeof(*c));
	c->nr = hp_global(size_kb, "nr_hugepages");
	c->free = hp_global(size_kb, "free_hugepages");
	c->resv = hp_global(size_kb, "resv_hugepages");
	c->surplus = hp_global(size_kb, "surplus_hugepages");
	for (n = 0; n < GMEM_HP_MAX_NODES; n++) {
		c->node_nr[n] = hp_node(n, size_kb, "nr_hugepages");
		if (c->node_nr[n] < 0)
			break;
		c->node_free[n] = hp_node(n, size_kb, "free_hugepages");
	}
	c->nr_nodes = n;
}

bool gmem_hp_equal(const struct gmem_hp_counts *a, const struct gmem_hp_counts *b)
{
	int n;

	if (a->nr != b->nr || a->free != b->free || a->resv != b->resv ||
	    a->surplus != b->surplus || a->nr_nodes != b->nr_nodes)
		return false;
	for (n = 0; n < a->nr_nodes; n++)
		if (a->node_nr[n] != b->node_nr[n] || a->node_free[n] != b->node_free[n])
			return false;
	return true;
}

void gmem_hp_check(unsigned long size_kb, const struct gmem_hp_counts *base,
		   long dfree, long dresv, const char *what)
{
	struct gmem_hp_counts now;
	long node_free = 0;
	int n;

	gmem_hp_read(size_kb, &now);
	TEST_ASSERT(now.free == base->free + dfree && now.resv == base->resv + dresv &&
		    now.surplus == base->surplus && now.nr == base->nr,
		    "%s: %lukB pool has free %ld resv %ld surplus %ld nr %ld, expected free %ld resv %ld surplus %ld nr %ld",
		    what, size_kb, now.free, now.resv, now.surplus, now.nr,
		    base->free + dfree, base->resv + dresv, base->surplus, base->nr);
	/* The nodes add up to the total, and their sizes do not move. */
	for (n = 0; n < now.nr_nodes; n++) {
		TEST_ASSERT(now.node_nr[n] == base->node_nr[n],
			    "%s: node %d has %ld %lukB pages, had %ld",
			    what, n, now.node_nr[n], size_kb, base->node_nr[n]);
		node_free += now.node_free[n];
	}
	TEST_ASSERT(!now.nr_nodes || node_free == now.free,
		    "%s: the nodes' free %lukB pages add up to %ld, the pool says %ld",
		    what, size_kb, node_free, now.free);
}

/* "N0=3 N1=1": folios per node. */
static void gmem_fdinfo_nodes(const char *s, long *node_nr)
{
	int node, len;
	long val;

	while (sscanf(s, " N%d=%ld%n", &node, &val, &len) == 2) {
		TEST_ASSERT(node >= 0 && node < GMEM_HP_MAX_NODES, "fdinfo names node %d", node);
		node_nr[node] = val;
		s += len;
	}
}

void gmem_fdinfo_read(int fd, struct gmem_fdinfo *fi)
{
	char path[64], line[256], key[64];
	bool seen = false, seen_nodes = false;
	unsigned int order;
	int pos = 0;
	long val;
	FILE *f;

	memset(fi, 0, sizeof(*fi));
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	f = fopen(path, "r");
	TEST_ASSERT(f, "Opening %s failed, errno %d (%s)", path, errno, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "folios_order_%u_nodes: %n", &order, &pos) == 1 && pos) {
			gmem_fdinfo_nodes(line + pos, !seen_nodes ? fi->huge_node :
					  order ? fi->f2m_node : fi->f4k_node);
			seen_nodes = true;
			pos = 0;
		} else if (sscanf(line, "folios_order_%u: %ld", &order, &val) == 2) {
			/* The file's own huge page size comes first. */
			if (!seen)
				fi->folios_huge = val;
			else if (order == 0)
				fi->folios_4k = val;
			else if (order == 9)
				fi->folios_2m = val;
			seen = true;
		} else if (sscanf(line, "%63[^:]: %ld", key, &val) == 2) {
			if (!strcmp(key, "split_blocks"))
				fi->split_blocks = val;
			else if (!strcmp(key, "vmemmap_restored_kB"))
				fi->vmemmap_restored_kb = val;
		}
	}
	fclose(f);
	TEST_ASSERT(seen, "%s has no folios_order_* lines: not a HugeTLB guest_memfd?", path);
}

void gmem_fdinfo_check(int fd, long huge, long f2m, long f4k, long split,
		       const char *what)
{
	struct gmem_fdinfo fi;

	gmem_fdinfo_read(fd, &fi);
	TEST_ASSERT(fi.folios_huge == huge && fi.folios_4k == f4k &&
		    fi.split_blocks == split && (f2m < 0 || fi.folios_2m == f2m),
		    "%s: fdinfo has %ld huge, %ld 2M, %ld 4K folios and %ld split blocks, expected %ld huge, %ld 2M, %ld 4K and %ld split",
		    what, fi.folios_huge, fi.folios_2m, fi.folios_4k, fi.split_blocks,
		    huge, f2m, f4k, split);
}

static u64 *gmem_hvm_expect;
static u64 gmem_hvm_pages;

static void gmem_hvm_guest_code(void)
{
	u64 i, val;

	/* The first run only maps the guest's code, stack and data. */
	for (i = 0; i < gmem_hvm_pages; i += PAGE_SIZE / sizeof(u64))
		READ_ONCE(gmem_hvm_expect[i]);
	GUEST_SYNC(0);
	for (;;) {
		for (i = 0; i < gmem_hvm_pages; i++) {
			val = READ_ONCE(*(u64 *)(GMEM_HVM_GPA + i * PAGE_SIZE));
			__GUEST_ASSERT(val == gmem_hvm_expect[i],
				       "page %lu holds 0x%lx, expected 0x%lx",
				       i, val, gmem_hvm_expect[i]);
		}
		GUEST_SYNC(1);
	}
}

void gmem_hvm_create(struct gmem_hvm *g, u64 size, u64 flags)
{
	gmem_hvm_create_bound(g, size, flags, size);
}

void gmem_hvm_create_bound(struct gmem_hvm *g, u64 size, u64 flags, u64 bound)
{
	gmem_hvm_create_split(g, size, flags, bound, 0);
}

void gmem_hvm_create_split(struct gmem_hvm *g, u64 size, u64 flags, u64 bound,
			   u64 split)
{
	const struct vm_shape shape = {
		.mode = VM_MODE_DEFAULT,
		.type = KVM_X86_SW_PROTECTED_VM,
	};
	u64 pages = bound / PAGE_SIZE;
	u64 expect_pages = DIV_ROUND_UP(pages * sizeof(u64), PAGE_SIZE);

	memset(g, 0, sizeof(*g));
	g->size = size;
	g->vm = __vm_create_shape_with_one_vcpu(shape, &g->vcpu, expect_pages,
						gmem_hvm_guest_code);
	TEST_ASSERT(g->vm->gmem_attributes & KVM_MEMORY_ATTRIBUTE_PRIVATE,
		    "guest_memfd does not track PRIVATE for a SW-protected VM");
	g->fd = vm_create_guest_memfd(g->vm, size, flags);
	g->mem = kvm_mmap(size, PROT_READ | PROT_WRITE, MAP_SHARED, g->fd);
	if (!split)
		split = bound;
	vm_set_user_memory_region2(g->vm, GMEM_HVM_SLOT, KVM_MEM_GUEST_MEMFD,
				   GMEM_HVM_GPA, split, g->mem, g->fd, 0);
	if (split < bound)
		vm_set_user_memory_region2(g->vm, GMEM_HVM_SLOT2, KVM_MEM_GUEST_MEMFD,
					   GMEM_HVM_GPA + split, bound - split,
					   g->mem + split, g->fd, split);
	/* 4K guest mappings if a memslot is not a multiple of 2M. */
	virt_map_level(g->vm, GMEM_HVM_GPA, GMEM_HVM_GPA, bound,
		       (bound | split) % SZ_2M ? PG_LEVEL_4K : PG_LEVEL_2M);

	vm_userspace_mem_region_add(g->vm, VM_MEM_SRC_ANONYMOUS, GMEM_HVM_EXPECT_GPA,
				    GMEM_HVM_EXPECT_SLOT, expect_pages, 0);
	virt_map(g->vm, GMEM_HVM_EXPECT_GPA, GMEM_HVM_EXPECT_GPA, expect_pages);
	g->gexpect = addr_gpa2hva(g->vm, GMEM_HVM_EXPECT_GPA);
	gmem_hvm_expect = (u64 *)GMEM_HVM_EXPECT_GPA;
	gmem_hvm_pages = pages;
	sync_global_to_guest(g->vm, gmem_hvm_expect);
	sync_global_to_guest(g->vm, gmem_hvm_pages);
	vcpu_run(g->vcpu);
	TEST_ASSERT_EQ(get_ucall(g->vcpu, NULL), UCALL_SYNC);
}

void gmem_hvm_destroy(struct gmem_hvm *g)
{
	kvm_munmap(g->mem, g->size);
	kvm_close(g->fd);
	kvm_vm_free(g->vm);
	memset(g, 0, sizeof(*g));
}

struct kvm_vcpu *gmem_hvm_add_vcpu(struct gmem_hvm *g, u32 id)
{
	struct kvm_vcpu *vcpu = vm_vcpu_add(g->vm, id, gmem_hvm_guest_code);

	vcpu_run(vcpu);
	TEST_ASSERT_EQ(get_ucall(vcpu, NULL), UCALL_SYNC);
	return vcpu;
}

unsigned long gmem_hvm_guest_pass(struct gmem_hvm *g, struct kvm_vcpu *vcpu,
				  const char *what)
{
	unsigned long memory_faults = 0;
	struct ucall uc;
	int r;

	/*
	 * A conversion racing with a fault makes KVM exit to let the VMM
	 * decide; the attributes are the VMM's, so just enter again.
	 */
	while ((r = _vcpu_run(vcpu)) && errno == EFAULT &&
	       vcpu->run->exit_reason == KVM_EXIT_MEMORY_FAULT)
		memory_faults++;
	TEST_ASSERT(!r, "%s: KVM_RUN failed, errno %d (%s)", what, errno, strerror(errno));

	switch (get_ucall(vcpu, &uc)) {
	case UCALL_SYNC:
		break;
	case UCALL_ABORT:
		REPORT_GUEST_ASSERT(uc);
		break;
	default:
		vcpu_dump(stderr, vcpu, 4);
		TEST_FAIL("%s: unexpected exit %s", what,
			  exit_reason_str(vcpu->run->exit_reason));
	}
	return memory_faults;
}

void gmem_hvm_guest_check(struct gmem_hvm *g, const u64 *expect, const char *what)
{
	memcpy(g->gexpect, expect, gmem_hvm_pages * sizeof(u64));
	TEST_ASSERT(!gmem_hvm_guest_pass(g, g->vcpu, what),
		    "%s: KVM_EXIT_MEMORY_FAULT with no conversion running", what);
}

bool gmem_hvm_require(unsigned long size_kb, long nr_pages)
{
	struct gmem_hp_counts pool;
	bool hvo = false;
	FILE *f;

	TEST_REQUIRE(kvm_check_cap(KVM_CAP_VM_TYPES) & BIT(KVM_X86_SW_PROTECTED_VM));
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_GUEST_MEMFD_MEMORY_ATTRIBUTES) &
		     KVM_MEMORY_ATTRIBUTE_PRIVATE);
	TEST_REQUIRE(kvm_check_cap(KVM_CAP_GUEST_MEMFD_FLAGS) & GUEST_MEMFD_FLAG_HUGETLB);
	gmem_hp_read(size_kb, &pool);
	TEST_REQUIRE(pool.free - pool.resv >= nr_pages);

	f = fopen("/proc/sys/vm/hugetlb_optimize_vmemmap", "r");
	if (f) {
		hvo = fgetc(f) == '1';
		fclose(f);
	}
	sigbus_probe_install();
	return hvo;
}

int gmem_pin(void *addr, size_t size)
{
	struct pin_longterm_test pin = {
		.addr = (uintptr_t)addr,
		.size = size,
		.flags = PIN_LONGTERM_TEST_FLAG_USE_WRITE,
	};
	int fd;

	fd = open(GMEM_GUP_TEST_FILE, O_RDWR);
	__TEST_REQUIRE(fd >= 0, "Can't open " GMEM_GUP_TEST_FILE " (CONFIG_GUP_TEST, debugfs)");
	TEST_ASSERT(!ioctl(fd, PIN_LONGTERM_TEST_START, &pin),
		    "Long-term pin of %p (0x%lx bytes) failed, errno %d (%s)",
		    addr, size, errno, strerror(errno));
	return fd;
}

void gmem_unpin(int fd)
{
	TEST_ASSERT(!ioctl(fd, PIN_LONGTERM_TEST_STOP), "PIN_LONGTERM_TEST_STOP failed, errno %d",
		    errno);
	close(fd);
}

u64 gmem_pagemap_pfn(void *addr)
{
	u64 entry = 0;
	int fd;

	fd = open("/proc/self/pagemap", O_RDONLY);
	TEST_ASSERT(fd >= 0, "Opening /proc/self/pagemap failed, errno %d", errno);
	TEST_ASSERT(pread(fd, &entry, sizeof(entry),
			  (uintptr_t)addr / getpagesize() * sizeof(entry)) == sizeof(entry),
		    "Reading /proc/self/pagemap failed, errno %d", errno);
	close(fd);
	if (!(entry & (1ULL << 63)))
		return 0;
	return entry & ((1ULL << 55) - 1);
}

int gmem_pfn_node(u64 pfn)
{
	unsigned long spanned = 0, start;
	int node = -1, n, found = -1;
	char line[128];
	FILE *f;

	TEST_ASSERT(pfn, "No PFN to find the node of (not root?)");
	/* Each zone: "Node N, zone Z", then "spanned S", then "start_pfn: P". */
	f = fopen("/proc/zoneinfo", "r");
	TEST_ASSERT(f, "Opening /proc/zoneinfo failed, errno %d", errno);
	while (found < 0 && fgets(line, sizeof(line), f)) {
		if (sscanf(line, "Node %d,", &n) == 1)
			node = n;
		else if (sscanf(line, " spanned %lu", &start) == 1)
			spanned = start;
		else if (sscanf(line, " start_pfn: %lu", &start) == 1 &&
			 pfn >= start && pfn < start + spanned)
			found = node;
	}
	fclose(f);
	TEST_ASSERT(found >= 0, "PFN 0x%lx is in no zone of /proc/zoneinfo", pfn);
	return found;
}
