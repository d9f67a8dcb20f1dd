/* Guard pages below thread stacks (guard.h). */
#include "guard.h"

#define PAGE THAW_PAGE_SIZE
#define PTE_P 0x1ull
#define PTE_RW 0x2ull
#define PTE_US 0x4ull
#define PTE_PS 0x80ull
#define PTE_ADDR 0x000ffffffffff000ull

static uint64_t *pd;
static uint64_t pd_entries, ram_end;

void guard_init(uint64_t *pd_base, uint64_t entries, uint64_t mem_size)
{
    pd = pd_base;
    pd_entries = entries;
    ram_end = mem_size;
}

/* The 4 KiB page table entry of addr, splitting its 2 MiB page if asked; NULL if
 * there is none (outside RAM, or not split and split is false, or no memory). */
static uint64_t *pte_of(uint64_t addr, bool split)
{
    uint64_t i = addr / THAW_HUGE_PAGE_SIZE;
    if (!pd || i >= pd_entries || addr >= ram_end || !(pd[i] & PTE_P))
        return 0;
    if (pd[i] & PTE_PS) {
        if (!split)
            return 0;
        uint64_t *pt = mm_alloc_pages(PAGE);
        if (!pt)
            return 0;
        uint64_t base = pd[i] & PTE_ADDR & ~(THAW_HUGE_PAGE_SIZE - 1);
        uint64_t flags = pd[i] & (PTE_P | PTE_RW | PTE_US);
        for (uint64_t j = 0; j < 512; j++)
            pt[j] = (base + j * PAGE) | flags;
        /* The same memory, now by 4 KiB pages: nothing to flush yet. */
        pd[i] = ((uint64_t)(uintptr_t)pt & PTE_ADDR) | flags;
    }
    uint64_t *pt = (uint64_t *)(uintptr_t)(pd[i] & PTE_ADDR);
    return &pt[(addr / PAGE) % 512];
}

static bool tagged(uint64_t pte) { return !(pte & PTE_P) && (pte & THAW_GUARD_PTE_TAG_MASK) == THAW_GUARD_PTE_TAG; }

int64_t guard_set(uint64_t lo, uint64_t hi, int32_t tid)
{
    bool unmapped = false;
    for (uint64_t a = ALIGN_DOWN(lo, PAGE); a < hi; a += PAGE) {
        uint64_t *e = pte_of(a, true);
        if (!e) {
            guard_clear(lo, a);
            if (unmapped)
                arch_flush_tlb();
            return -ENOMEM;
        }
        unmapped |= (*e & PTE_P) != 0;
        *e = ((uint64_t)(uint32_t)tid << 32) | THAW_GUARD_PTE_TAG;
    }
    if (unmapped)
        arch_flush_tlb();
    return 0;
}

void guard_clear(uint64_t lo, uint64_t hi)
{
    for (uint64_t a = ALIGN_DOWN(lo, PAGE); a < hi; a += PAGE) {
        uint64_t *e = pte_of(a, false);
        if (e && tagged(*e))
            *e = a | PTE_P | PTE_RW | PTE_US;
    }
    /* A page that was not present caches no translation: no flush needed. */
}

bool guard_is_set(uint64_t addr)
{
    uint64_t *e = pte_of(addr, false);
    return e && tagged(*e);
}
