/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * TDX on guest_memfd huge pages: which private Secure-EPT leaves must be
 * demoted (TDH.MEM.PAGE.DEMOTE) before KVM zaps or converts part of them, as
 * a pure function that tdx_gmem_plan_kunit.c tests without TDX hardware.
 *
 * A zap of a private range must be exact: the pages around it stay mapped
 * and private (their contents would be lost otherwise, as the guest's
 * ACCEPT zeroes a page).  So a huge leaf that the range covers only in part
 * is demoted first, 1G into 2M leaves and the 2M leaves that a range bound
 * falls inside into 4K leaves; the demotes may fail (-ENOMEM for the new
 * S-EPT page, a non-BUSY SEAMCALL error) and come before the point of no
 * return, where the zap starts.
 */
#ifndef __KVM_X86_VMX_TDX_GMEM_PLAN_H
#define __KVM_X86_VMX_TDX_GMEM_PLAN_H

#include <linux/types.h>

/* Demote the leaf of @level mapping @gfn onwards into leaves one level down. */
struct tdx_demote {
	u64 gfn;
	int level;
};

int tdx_plan_demotes(u64 leaf_gfn, int leaf_level, u64 start, u64 end,
		     struct tdx_demote *out, int max);
int tdx_plan_split_blocks(u64 start, u64 end, u64 out[2]);
bool tdx_plan_accept_split(u64 eeq, u64 gfn, u64 *start);
int tdx_plan_max_level(bool is_private, bool huge_pages, bool nx_huge_pages,
		       bool runnable);

#endif /* __KVM_X86_VMX_TDX_GMEM_PLAN_H */
