/* Checks of the program's pointers, for every syscall. The one definition: the
 * guest-kernel tests (tests/guest) compile this file as it is. */
#include "kernel.h"
#include "rootfs.h"

static uint64_t user_top; /* end of guest memory */
static uint64_t extra_lo, extra_hi;

void uaccess_init(uint64_t mem_size) { user_top = mem_size; }

void uaccess_allow(uint64_t lo, uint64_t hi)
{
    extra_lo = lo;
    extra_hi = hi;
}

static bool in_extra(uint64_t addr, uint64_t len)
{
    return extra_hi && addr >= extra_lo && addr <= extra_hi && len <= extra_hi - addr;
}

bool user_range_ok(uint64_t addr, uint64_t len)
{
    if (in_extra(addr, len) || rootfs_contains(addr, len))
        return true; /* the root-filesystem image is program memory too (mapped files) */
    return addr >= THAW_PAGE_SIZE && addr <= user_top && len <= user_top - addr;
}

bool user_array_ok(uint64_t addr, uint64_t count, uint64_t elem_size)
{
    /* count * elem_size must not wrap to a small length that passes the range check. */
    if (elem_size && count > UINT64_MAX / elem_size)
        return false;
    return user_range_ok(addr, count * elem_size);
}

int64_t user_string_len(const char *s, size_t max)
{
    uint64_t a = (uint64_t)(uintptr_t)s;
    uint64_t top = user_top;
    if (rootfs_contains(a, 1))
        top = rootfs_end();
    else if (a < THAW_PAGE_SIZE || a >= user_top)
        return -EFAULT;
    size_t lim = MIN(max, top - a);
    size_t n = strnlen(s, lim);
    if (n == lim)
        return n == max ? -ENAMETOOLONG : -EFAULT;
    return (int64_t)n;
}
