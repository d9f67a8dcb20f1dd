/* Guest-physical memory as the host sees it. Every guest address that comes from the
 * guest (hypercall arguments, frames) is turned into a host pointer only through
 * GUEST_PTR / guest_mem_ptr, which check bounds and overflow first. */
#ifndef THAW_HOST_GUEST_MEM_H
#define THAW_HOST_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct guest_mem {
    uint8_t *host;  /* host mapping of guest-physical 0 */
    uint64_t size;  /* bytes */
};

/* True when [gpa, gpa + len) lies inside guest memory (no wrap-around). */
static inline bool guest_range_ok(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
    return gpa <= m->size && len <= m->size - gpa;
}

/* Host pointer for [gpa, gpa + len), or NULL when the range is not all guest memory. */
static inline void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
    return guest_range_ok(m, gpa, len) ? m->host + gpa : NULL;
}

/* Typed form: GUEST_PTR(mem, gpa, struct foo) -> struct foo * or NULL. */
#define GUEST_PTR(mem, gpa, type) ((type *)guest_mem_ptr((mem), (gpa), sizeof(type)))

#endif
