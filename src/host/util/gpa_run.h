/* A run of contiguous guest pages: the currency between whoever knows which pages a
 * restore put in (the pager, the image restore) and the pre-fault vCPU that touches
 * them (host/vmm/prefault_vcpu.h). */
#ifndef THAW_HOST_GPA_RUN_H
#define THAW_HOST_GPA_RUN_H

#include <stdint.h>
#include <stdlib.h>

struct gpa_run {
    uint64_t gpa;   /* guest-physical, page-aligned */
    uint64_t pages; /* 4 KiB pages */
};

/* A growable list of runs (malloc'd); a page contiguous with the last run extends it. */
struct gpa_runs {
    struct gpa_run *v;
    uint64_t n, cap;
};

/* Appends [gpa, gpa + pages * 4096), merged into the last run when it follows it. -1
 * without memory (the list is unchanged). */
static inline int gpa_runs_add(struct gpa_runs *r, uint64_t gpa, uint64_t pages)
{
    if (r->n && r->v[r->n - 1].gpa + r->v[r->n - 1].pages * 4096 == gpa) {
        r->v[r->n - 1].pages += pages;
        return 0;
    }
    if (r->n == r->cap) {
        uint64_t cap = r->cap ? 2 * r->cap : 64;
        struct gpa_run *v = realloc(r->v, cap * sizeof *v);
        if (!v)
            return -1;
        r->v = v;
        r->cap = cap;
    }
    r->v[r->n++] = (struct gpa_run){gpa, pages};
    return 0;
}

static inline void gpa_runs_free(struct gpa_runs *r)
{
    free(r->v);
    *r = (struct gpa_runs){0};
}

#endif
