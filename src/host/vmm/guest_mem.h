/* Guest-physical memory as the host sees it. Addresses that come from the guest are a
 * type of their own (struct gpa), so they cannot be mixed up with host pointers or
 * lengths; the host reaches guest memory at such an address only through
 * guest_copy_in / guest_copy_out, which check bounds and overflow first and copy, so
 * code acting on guest data never holds a pointer the guest can change under it.
 * guest_mem_ptr is for the areas the monitor itself lays out (tables, boot info). */
#ifndef THAW_HOST_GUEST_MEM_H
#define THAW_HOST_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct guest_mem {
    uint8_t *host;  /* host mapping of guest-physical 0 */
    uint64_t size;  /* bytes */
};

/* A guest-physical address the guest gave us. */
struct gpa {
    uint64_t v;
};

static inline struct gpa gpa_at(uint64_t v) { return (struct gpa){v}; }

/* True when [gpa, gpa + len) lies inside guest memory (no wrap-around). */
static inline bool guest_range_ok(const struct guest_mem *m, struct gpa gpa, uint64_t len)
{
    return gpa.v <= m->size && len <= m->size - gpa.v;
}

/* Copies len bytes of guest memory at src into dst. Returns 0, or -1 (nothing copied)
 * when the range is not all guest memory. */
static inline int guest_copy_in(const struct guest_mem *m, void *dst, struct gpa src, uint64_t len)
{
    if (!guest_range_ok(m, src, len))
        return -1;
    if (len)
        memcpy(dst, m->host + src.v, len);
    return 0;
}

/* Copies len bytes from src into guest memory at dst. Returns 0 or -1 like copy-in. */
static inline int guest_copy_out(const struct guest_mem *m, struct gpa dst, const void *src, uint64_t len)
{
    if (!guest_range_ok(m, dst, len))
        return -1;
    if (len)
        memcpy(m->host + dst.v, src, len);
    return 0;
}

/* Host pointer for [gpa, gpa + len) of a monitor-owned area, or NULL when the range is
 * not all guest memory. Not for addresses the guest chose. */
static inline void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
    return guest_range_ok(m, gpa_at(gpa), len) ? m->host + gpa : NULL;
}

/* Typed form: GUEST_PTR(mem, gpa, struct foo) -> struct foo * or NULL. */
#define GUEST_PTR(mem, gpa, type) ((type *)guest_mem_ptr((mem), (gpa), sizeof(type)))

#endif
