/* REAP: record the working set on the first restore, prefetch it in one read on every
 * later one. Two files sit next to the snapshot (docs/snapshot-format.md):
 *   ws.trace  the recorded guest pages in first-touch order, with times;
 *   ws.pages  the contents of exactly those pages, stored contiguously in guest-address
 *             order after a 4 KiB header and an index, so one sequential O_DIRECT read
 *             brings them all in and contiguous guest runs install with one UFFDIO_COPY.
 * A restore that serves more than REAP_STALE_SHARE of the working set lazily from the
 * snapshot (zero pages for memory the guest freed and reused do not count) writes
 * ws.stale, and the next restore records afresh. */
#ifndef THAW_HOST_REAP_H
#define THAW_HOST_REAP_H

#include <stddef.h>
#include <stdint.h>

#include "host/util/error.h"

#define REAP_STALE_SHARE 0.10

/* One recorded page: its guest-physical address and when it was first touched. */
struct page_record {
    uint64_t offset;
    uint64_t t_ns; /* since recording started */
};

struct reap_stats {
    uint64_t pages;          /* in the working set */
    uint64_t regions;        /* contiguous guest runs */
    uint64_t bytes;          /* working-set file bytes read */
    uint64_t read_ns;        /* the large read */
    uint64_t install_ns;     /* UFFDIO_COPY of every page */
};

/* Writes ws.trace and ws.pages for the recorded pages; page contents come from the
 * snapshot's memory file (never from the running guest). Atomic writes. */
int reap_write(const char *snap_dir, const struct page_record *log, size_t n, uint64_t mem_size,
               struct thaw_error *err);

/* Reads ws.pages with one O_DIRECT read (validating header, index and checksum) and
 * installs every page into uffd-registered memory with UFFDIO_COPY, one call per
 * contiguous guest run, without waking anyone. gpa_to_host maps the guest range [gpa, gpa+len)
 * (offsets in the memory file) to the host address it must be installed at, or NULL if it
 * is not mapped contiguously (runs are then retried page by page; unmapped pages are
 * skipped). mem_size must equal the size recorded in ws.pages. st->pages counts the
 * pages installed. */
int reap_prefetch_into(const char *snap_dir, int uffd, uint8_t *(*gpa_to_host)(void *ctx, uint64_t gpa, uint64_t len),
                       void *ctx, uint64_t mem_size, struct reap_stats *st, struct thaw_error *err);

/* Parses a ws.trace file (for tests and `thaw analyze`); *out malloc'd. */
int reap_read_trace(const char *snap_dir, struct page_record **out, size_t *n, uint64_t *mem_size,
                    struct thaw_error *err);

/* ws.stale marker: set when a restore missed too many pages. */
int reap_mark_stale(const char *snap_dir, struct thaw_error *err);
int reap_is_stale(const char *snap_dir);
void reap_clear_stale(const char *snap_dir);

#endif
