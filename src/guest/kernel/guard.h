/* Guard pages below thread stacks (guard.c): the only place the guest kernel edits the
 * page tables the monitor built. They identity-map guest memory with 2 MiB pages; a
 * guard page needs a 4 KiB one, so the 2 MiB page that holds it is split into a page
 * table first (kept for good: its entries map the same memory). A guard page's entry
 * is not present and carries THAW_GUARD_PTE_TAG and the thread's id (abi.h), so the
 * monitor reports a fault there as that thread's stack overflow. */
#ifndef THAW_GUEST_GUARD_H
#define THAW_GUEST_GUARD_H
#include "kernel.h"

/* The page directory (entries for [0, 2 MiB * entries)) and the end of RAM: only RAM
 * pages are ever guarded. In the guest: THAW_GPA_PD, the whole of it. */
void guard_init(uint64_t *pd, uint64_t entries, uint64_t mem_size);
/* Unmaps the pages of [lo, hi) as tid's guard; 0, or -ENOMEM (no page for a page
 * table: nothing changed). Already guarded pages are re-tagged. */
int64_t guard_set(uint64_t lo, uint64_t hi, int32_t tid);
/* Maps the guarded pages of [lo, hi) again. */
void guard_clear(uint64_t lo, uint64_t hi);
/* The page at addr is a guard page (its entry not present, tagged). */
bool guard_is_set(uint64_t addr);

/* entry.S: reloads CR3 in ring 0 (the #UD stub, like arch_set_segment_base), so no
 * stale translation of an unmapped page survives. */
void arch_flush_tlb(void);

#endif
