/* Guest memory management. Guest-physical memory is identity-mapped once by the monitor
 * (2 MiB pages), so "mapping" memory is only bookkeeping: a bitmap of pages in use,
 * allocated top-down for mmap and bottom-up for brk, with the stack at the very top.
 *
 * Fresh guest memory reads as zero and pages the guest never touches stay holes in a
 * snapshot, so the allocator never pre-touches memory. A second bitmap remembers pages
 * that were ever handed out: only those are zeroed when they are handed out again.
 * Freed pages stay with the guest for reuse up to a budget (RETAIN_MAX_BYTES, below);
 * past it, and at the ready point, large freed ranges go back to the host.
 * Protections are checked but not enforced: mprotect fails as Linux does on unmapped
 * or misaligned ranges and bad flags, and otherwise changes nothing (one address space;
 * the VM is the isolation boundary), with one exception: the PROT_NONE pages right
 * below a new thread's stack (pthread's guard) are unmapped while they stay so
 * (guard.c), so a thread's stack overflow is a clear fault, not silent corruption.
 * File mappings are private copies of the file's pages (fs.c decides what may be
 * mapped). */
#include "kernel.h"
#include "syscalls.h"
#include "rootfs.h"
#include "guard.h"

#define PAGE THAW_PAGE_SIZE

static uint64_t *used_map;   /* bit set: page in use */
static uint64_t *dirty_map;  /* bit set: page handed out before, may hold old data */
static uint64_t *none_map;   /* bit set: the program asked for PROT_NONE */
static uint64_t *guard_map;  /* bit set: a guard page, unmapped (guard.c) */
static uint64_t first_page;  /* lowest allocatable page number */
static uint64_t end_page;    /* one past the highest page */
static uint64_t stack_lo, stack_hi;
static uint64_t brk_base, brk_cur;
static uint64_t pages_used;
static uint64_t pages_kept;  /* free pages still in dirty_map: zeroed when handed out again */
static uint64_t keep_max;    /* the budget for pages_kept (RETAIN_MAX_BYTES, at most mem/8) */

static inline bool test_bit(const uint64_t *m, uint64_t i) { return m[i / 64] >> (i % 64) & 1; }
static inline void set_bit(uint64_t *m, uint64_t i) { m[i / 64] |= 1ull << (i % 64); }
static inline void clear_bit(uint64_t *m, uint64_t i) { m[i / 64] &= ~(1ull << (i % 64)); }

/* Maps the guard pages of [first, first+count) again: they are being reused, freed or
 * made accessible. */
static void unguard(uint64_t first, uint64_t count)
{
    for (uint64_t p = first; p < first + count; p++)
        if (test_bit(guard_map, p)) {
            guard_clear(p * PAGE, (p + 1) * PAGE);
            clear_bit(guard_map, p);
        }
}

static void claim(uint64_t first, uint64_t count)
{
    unguard(first, count);
    for (uint64_t p = first; p < first + count; p++) {
        clear_bit(none_map, p);
        if (test_bit(used_map, p))
            continue;
        if (test_bit(dirty_map, p)) {
            memset((void *)(uintptr_t)(p * PAGE), 0, PAGE);
            pages_kept--;
        }
        set_bit(used_map, p);
        set_bit(dirty_map, p);
        pages_used++;
    }
}

/* Large freed ranges can go back to the host in one hypercall instead of being zeroed
 * when reused: the pages read back as zero, leave the footprint and the snapshot. But
 * a discard is a VM exit, and each of its pages costs a host page fault and a
 * shadow-MMU fault (~10 us under nested PVM) when it is touched again, so a function
 * that allocates and frees megabytes per invocation paid for them on every one
 * (json_serdes ~430 faults an invocation, a third of its warm time). So freed pages are
 * kept, zeroed by the guest when handed out again (~0.2 us a page), while fewer than
 * RETAIN_MAX_BYTES (at most an eighth of guest memory) are kept; past that a large
 * freed range goes back at once. mm_trim gives back every large kept range: at the
 * ready point, so that a snapshot holds none of them. */
#define DISCARD_MIN_PAGES 64
#define RETAIN_MAX_BYTES (16ull << 20)

static void discard(uint64_t first, uint64_t count)
{
    if (count < DISCARD_MIN_PAGES)
        return;
    struct thaw_hc_discard d = {.addr = first * PAGE, .len = count * PAGE};
    hypercall(THAW_HC_DISCARD, &d);
    for (uint64_t p = first; p < first + count; p++)
        if (test_bit(dirty_map, p)) {
            clear_bit(dirty_map, p);
            pages_kept--;
        }
}

static void release(uint64_t first, uint64_t count)
{
    unguard(first, count);
    for (uint64_t p = first; p < first + count; p++) {
        clear_bit(none_map, p);
        if (test_bit(used_map, p)) { /* (a used page is dirty: claim marks it) */
            clear_bit(used_map, p);
            pages_used--;
            pages_kept++;
        }
    }
    if (pages_kept > keep_max)
        discard(first, count);
}

void mm_trim(void)
{
    for (uint64_t p = first_page; p < end_page;) {
        if (test_bit(used_map, p) || !test_bit(dirty_map, p)) {
            p++;
            continue;
        }
        uint64_t q = p;
        while (q < end_page && !test_bit(used_map, q) && test_bit(dirty_map, q))
            q++;
        discard(p, q - p); /* (runs shorter than DISCARD_MIN_PAGES stay) */
        p = q;
    }
}

uint64_t mm_kept_bytes(void) { return pages_kept * PAGE; }

static bool range_free(uint64_t first, uint64_t count)
{
    if (first < first_page || first + count > end_page || first + count < first)
        return false;
    for (uint64_t p = first; p < first + count; p++)
        if (test_bit(used_map, p))
            return false;
    return true;
}

void mm_init(uint64_t free_base, uint64_t mem_size, uint64_t stack_size)
{
    uint64_t npages = mem_size / PAGE;
    uint64_t map_bytes = ALIGN_UP((npages + 63) / 64 * 8, PAGE);
    uint64_t base = ALIGN_UP(free_base, PAGE);
    used_map = (uint64_t *)(uintptr_t)base;
    dirty_map = (uint64_t *)(uintptr_t)(base + map_bytes);
    none_map = (uint64_t *)(uintptr_t)(base + 2 * map_bytes);
    guard_map = (uint64_t *)(uintptr_t)(base + 3 * map_bytes);
    first_page = (base + 4 * map_bytes) / PAGE;
    end_page = npages;
    pages_kept = 0;
    keep_max = (RETAIN_MAX_BYTES < mem_size / 8 ? RETAIN_MAX_BYTES : mem_size / 8) / PAGE;
    if (first_page + (stack_size + THAW_STACK_GUARD_SIZE) / PAGE + 64 >= end_page)
        kpanic("guest memory too small: %lu bytes", mem_size);
    stack_hi = mem_size;
    stack_lo = mem_size - stack_size;
    /* The stack and the unmapped guard below it (abi.h) are never handed out. */
    claim((stack_lo - THAW_STACK_GUARD_SIZE) / PAGE, (stack_size + THAW_STACK_GUARD_SIZE) / PAGE);
    brk_base = brk_cur = first_page * PAGE;
}

uint64_t mm_stack_top(void) { return stack_hi; }
uint64_t mm_stack_bottom(void) { return stack_lo; }

/* Top-down first fit, skipping whole words of used pages. */
static uint64_t find_free_run(uint64_t count)
{
    uint64_t run = 0;
    for (uint64_t p = end_page; p-- > first_page;) {
        if ((p % 64) == 63 && used_map[p / 64] == ~0ull && p >= 64) {
            run = 0;
            p -= 63;
            continue;
        }
        if (test_bit(used_map, p)) {
            run = 0;
            continue;
        }
        if (++run == count)
            return p;
    }
    return 0;
}

void *mm_alloc_pages(uint64_t bytes)
{
    uint64_t count = ALIGN_UP(bytes, PAGE) / PAGE;
    if (count == 0 || count > end_page)
        return 0;
    uint64_t first = find_free_run(count);
    if (!first)
        return 0;
    claim(first, count);
    return (void *)(uintptr_t)(first * PAGE);
}

void mm_free_pages(void *p, uint64_t bytes)
{
    uint64_t first = (uint64_t)(uintptr_t)p / PAGE;
    uint64_t count = ALIGN_UP(bytes, PAGE) / PAGE;
    if (first < first_page)
        return;
    if (first + count > end_page)
        count = end_page - first;
    release(first, count);
}

/* ---- syscalls ---------------------------------------------------------------- */

int64_t sys_brk(uint64_t want)
{
    if (want == 0 || want < brk_base)
        return (int64_t)brk_cur;
    uint64_t cur_end = ALIGN_UP(brk_cur, PAGE) / PAGE;
    uint64_t new_end = ALIGN_UP(want, PAGE) / PAGE;
    if (new_end > cur_end) {
        if (!range_free(cur_end, new_end - cur_end))
            return (int64_t)brk_cur; /* Linux reports failure by not moving */
        claim(cur_end, new_end - cur_end);
    } else if (new_end < cur_end) {
        release(new_end, cur_end - new_end);
    }
    brk_cur = want;
    return (int64_t)brk_cur;
}

int64_t sys_mmap(uint64_t addr, uint64_t len, uint64_t prot, uint64_t flags, int64_t fd, uint64_t off)
{
    uint64_t type = flags & (MAP_SHARED | MAP_PRIVATE);
    if (len == 0 || len > (end_page - first_page) * PAGE || (off % PAGE) || type == 0 ||
        (prot & ~(uint64_t)(PROT_READ | PROT_WRITE | PROT_EXEC)))
        return -EINVAL;
    if (!(flags & MAP_ANONYMOUS)) {
        /* MAP_SHARED_VALIDATE (3) is shared too: no flag it validates is supported. */
        int64_t r = fs_map_check((int)fd, prot, type != MAP_PRIVATE, off, len);
        if (r < 0)
            return r;
    }
    uint64_t count = ALIGN_UP(len, PAGE) / PAGE;
    void *p;
    bool fixed = flags & (MAP_FIXED | MAP_FIXED_NOREPLACE);
    if (fixed && !(addr % PAGE) && rootfs_contains(addr, count * PAGE)) {
        if (flags & MAP_FIXED_NOREPLACE)
            return -EEXIST; /* the image is always mapped */
        return fs_map_fixed_in_image(flags & MAP_ANONYMOUS ? -1 : (int)fd, addr, len, off);
    }
    if (!fixed && !(flags & MAP_ANONYMOUS)) {
        int64_t r = fs_map_in_place((int)fd, len, prot, type != MAP_PRIVATE, off);
        if (r)
            return r;
    }
    if (fixed) {
        if (addr % PAGE)
            return -EINVAL;
        uint64_t first = addr / PAGE;
        if (first < first_page || first + count > end_page)
            return -ENOMEM;
        if ((flags & MAP_FIXED_NOREPLACE) && !range_free(first, count))
            return -EEXIST;
        /* MAP_FIXED replaces whatever was there with fresh zeroed pages. */
        unguard(first, count);
        for (uint64_t q = first; q < first + count; q++)
            if (test_bit(used_map, q)) {
                memset((void *)(uintptr_t)(q * PAGE), 0, PAGE);
            }
        claim(first, count);
        p = (void *)(uintptr_t)addr;
    } else {
        p = mm_alloc_pages(len);
        if (!p)
            return -ENOMEM;
    }
    if (!prot && (flags & MAP_ANONYMOUS))
        for (uint64_t q = (uint64_t)(uintptr_t)p / PAGE; q < (uint64_t)(uintptr_t)p / PAGE + count; q++)
            set_bit(none_map, q);
    if (!(flags & MAP_ANONYMOUS)) {
        int64_t r = fs_map_file((int)fd, p, len, off);
        if (r < 0) {
            mm_free_pages(p, len);
            return r;
        }
    }
    return (int64_t)(uintptr_t)p;
}

bool mm_range_mapped(uint64_t addr, uint64_t len)
{
    if (rootfs_contains(addr, ALIGN_UP(len, PAGE)))
        return true;
    uint64_t first = addr / PAGE, count = ALIGN_UP(len, PAGE) / PAGE;
    if (addr < THAW_KERNEL_MAX_END || first + count > end_page || first + count < first)
        return false;
    for (uint64_t p = first; p < first + count; p++)
        if (p >= first_page && !test_bit(used_map, p))
            return false; /* below first_page: the program image, loaded by the monitor */
    return true;
}

int64_t sys_mprotect(uint64_t addr, uint64_t len, uint64_t prot)
{
    enum { PROT_GROWSDOWN = 0x01000000, PROT_GROWSUP = 0x02000000 };
    if ((addr % PAGE) || (prot & ~(uint64_t)(PROT_READ | PROT_WRITE | PROT_EXEC | PROT_GROWSDOWN | PROT_GROWSUP)) ||
        addr + len < addr)
        return -EINVAL;
    if (len == 0)
        return 0;
    if (!mm_range_mapped(addr, len))
        return -ENOMEM;
    /* Only remembered (for the guard below a thread's stack), and a guard made
     * accessible again is mapped again. */
    uint64_t first = addr / PAGE, count = ALIGN_UP(len, PAGE) / PAGE;
    for (uint64_t p = MAX(first, first_page); p < first + count && p < end_page; p++) {
        if (prot & (PROT_READ | PROT_WRITE | PROT_EXEC)) {
            clear_bit(none_map, p);
            unguard(p, 1);
        } else {
            set_bit(none_map, p);
        }
    }
    return 0;
}

/* The most a guard below a thread stack may be (glibc's default is one page), and how
 * far below the stack pointer the stack's own pages may reach. */
#define GUARD_MAX_PAGES 256
#define STACK_MAX_PAGES ((1ull << 30) / PAGE)

int64_t mm_guard_thread_stack(uint64_t sp, int32_t tid)
{
    if (!sp)
        return 0;
    uint64_t p = (sp - 1) / PAGE, n = 0;
    /* Down through the stack (allocated, accessible) to the PROT_NONE pages below it. */
    while (p >= first_page && p < end_page && n < STACK_MAX_PAGES && test_bit(used_map, p) &&
           !test_bit(none_map, p))
        p--, n++;
    uint64_t top = p + 1, lo = top;
    while (lo > first_page && top - lo < GUARD_MAX_PAGES && test_bit(used_map, lo - 1) &&
           test_bit(none_map, lo - 1))
        lo--;
    if (lo == top || n == 0 || p >= end_page)
        return 0; /* no guard below this stack (not an mmap'd stack, or none asked for) */
    int64_t r = guard_set(lo * PAGE, top * PAGE, tid);
    if (r < 0)
        return r;
    for (uint64_t q = lo; q < top; q++)
        set_bit(guard_map, q);
    return (int64_t)(top - lo);
}

int64_t sys_munmap(uint64_t addr, uint64_t len)
{
    if ((addr % PAGE) || len == 0)
        return -EINVAL;
    uint64_t first = addr / PAGE, count = ALIGN_UP(len, PAGE) / PAGE;
    if (first >= end_page)
        return 0; /* beyond RAM, e.g. the root-filesystem image: nothing to free */
    if (first < first_page) /* the program image or the kernel: not ours to free */
        return 0;
    if (first + count > end_page)
        count = end_page - first;
    release(first, count);
    return 0;
}

int64_t sys_mremap(uint64_t old, uint64_t old_len, uint64_t new_len, uint64_t flags, uint64_t new_addr)
{
    (void)new_addr;
    if ((old % PAGE) || new_len == 0 || (flags & MREMAP_FIXED))
        return -EINVAL;
    uint64_t first = old / PAGE;
    uint64_t oc = ALIGN_UP(old_len, PAGE) / PAGE, nc = ALIGN_UP(new_len, PAGE) / PAGE;
    if (first < first_page || first + oc > end_page)
        return -EFAULT;
    if (nc <= oc) {
        release(first + nc, oc - nc);
        return (int64_t)old;
    }
    unguard(first, oc); /* its contents move: every page must be readable */
    if (range_free(first + oc, nc - oc)) {
        claim(first + oc, nc - oc);
        return (int64_t)old;
    }
    if (!(flags & MREMAP_MAYMOVE))
        return -ENOMEM;
    void *p = mm_alloc_pages(new_len);
    if (!p)
        return -ENOMEM;
    memcpy(p, (void *)(uintptr_t)old, oc * PAGE);
    release(first, oc);
    return (int64_t)(uintptr_t)p;
}

int64_t sys_madvise(uint64_t addr, uint64_t len, uint64_t advice)
{
    enum { MADV_DONTNEED = 4 };
    if (addr % PAGE)
        return -EINVAL;
    if (advice == MADV_DONTNEED) {
        /* Anonymous memory reads back as zero after DONTNEED. */
        uint64_t first = addr / PAGE, count = ALIGN_UP(len, PAGE) / PAGE;
        for (uint64_t q = first; q < first + count && q < end_page; q++)
            if (q >= first_page && test_bit(used_map, q) && test_bit(dirty_map, q) && !test_bit(guard_map, q))
                memset((void *)(uintptr_t)(q * PAGE), 0, PAGE);
    }
    return 0;
}

/* One /proc/self/maps line into buf at *used (silently dropped when it does not fit). */
static void maps_line(char *buf, uint64_t size, uint64_t *used, uint64_t lo, uint64_t hi, const char *name)
{
    if (*used >= size)
        return;
    int n = ksnprintf(buf + *used, size - *used, "%08lx-%08lx rwxp 00000000 00:00 0%s%s\n", lo, hi,
                      name[0] ? "                          " : "", name);
    if (n > 0 && (uint64_t)n < size - *used)
        *used += (uint64_t)n;
    else
        *used = size; /* full: no partial line */
}

uint64_t mm_write_maps(char *buf, uint64_t size)
{
    uint64_t used = 0, guard_lo = (stack_lo - THAW_STACK_GUARD_SIZE) / PAGE;
    /* The monitor's part below the allocator: boot tables, the kernel, the program. */
    maps_line(buf, size, &used, PAGE, first_page * PAGE, "");
    for (uint64_t p = first_page; p < guard_lo;) {
        if (!test_bit(used_map, p) || test_bit(guard_map, p)) { /* a guard page is not mapped */
            p++;
            continue;
        }
        uint64_t q = p;
        while (q < guard_lo && test_bit(used_map, q) && !test_bit(guard_map, q))
            q++;
        bool heap = p * PAGE <= brk_base && brk_base < q * PAGE && brk_cur > brk_base;
        maps_line(buf, size, &used, p * PAGE, q * PAGE, heap ? "[heap]" : "");
        p = q;
    }
    /* The guard below the stack is not mapped, so it is no line. */
    maps_line(buf, size, &used, stack_lo, stack_hi, "[stack]");
    if (rootfs_end())
        maps_line(buf, size, &used, rootfs_end() - rootfs_size(), rootfs_end(), "[thaw rootfs image]");
    return used < size ? used : size;
}

void mm_stats(uint64_t *total, uint64_t *free_bytes)
{
    *total = end_page * PAGE;
    *free_bytes = (end_page - first_page - pages_used) * PAGE;
}
