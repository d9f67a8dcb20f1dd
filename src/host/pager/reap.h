/* REAP: record the working set on the first restore, prefetch it in one read on every
 * later one. Two files sit next to the snapshot (docs/snapshot-format.md):
 *   ws.trace  the recorded guest pages in first-touch order, with times;
 *   ws.pages  the contents of exactly those pages, stored contiguously in guest-address
 *             order after a 4 KiB header and an index, so one sequential O_DIRECT read
 *             brings them all in and contiguous guest runs install with one UFFDIO_COPY.
 * Both carry the identity of the snapshot they were made from (snap_identity.h) and are
 * refused with any other; every page of ws.pages has a checksum in the index, checked
 * before the page is installed. A restore that serves more than REAP_STALE_SHARE of the
 * working set lazily from the snapshot (zero pages for memory the guest freed and
 * reused do not count) writes ws.stale, and the next restore records afresh. */
#ifndef THAW_HOST_REAP_H
#define THAW_HOST_REAP_H

#include <stddef.h>
#include <stdint.h>

#include "host/util/error.h"
#include "host/util/snap_identity.h"

#define REAP_STALE_SHARE 0.10
/* Format of ws.trace and ws.pages: a reader refuses any other major (the working set is
 * then recorded again); a minor bump only adds what older readers may ignore. */
#define REAP_FORMAT_MAJOR 2u
#define REAP_FORMAT_MINOR 0u
#define REAP_INDEX_ENTRY 16u /* ws.pages index entry: u64 guest address, u64 page checksum */

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

/* The decoded ws.pages header (the first 104 bytes of its first 4 KiB block). */
struct reap_ws_header {
    uint32_t page_size;
    uint64_t mem_size, count, index_offset, data_offset;
    struct snap_identity identity;
    uint32_t flags, crc;
};

/* Writes ws.trace and ws.pages for the recorded pages, stamped with the snapshot's
 * identity; page contents come from the snapshot's memory file (never from the running
 * guest). Atomic writes. */
int reap_write(const char *snap_dir, const struct page_record *log, size_t n, uint64_t mem_size,
               const struct snap_identity *id, struct thaw_error *err);

/* Decodes and checks a ws.pages header (head[0..len), len >= 104) against the file's
 * size, the snapshot's memory size and identity (id may be NULL: not checked). */
int reap_ws_header_decode(const uint8_t *head, size_t len, uint64_t file_size, uint64_t mem_size,
                          const struct snap_identity *id, struct reap_ws_header *h, struct thaw_error *err);
/* Checks the header+index CRC and that the index (h->count entries at index) holds
 * ascending page addresses inside guest memory. */
int reap_ws_index_check(const uint8_t *head, const struct reap_ws_header *h, const uint8_t *index,
                        struct thaw_error *err);
/* The checksum of one 4 KiB page as ws.pages stores it: XXH3-64 seeded with the page's
 * guest address, so a page moved to another address in the index fails too. */
uint64_t reap_page_checksum(const void *page, uint64_t gpa);

/* Reads ws.pages with O_DIRECT (validating header, identity, index, and every page's
 * checksum before the page is installed) and
 * installs every page into uffd-registered memory with UFFDIO_COPY, one call per
 * contiguous guest run, without waking anyone. gpa_to_host maps the guest range [gpa, gpa+len)
 * (offsets in the memory file) to the host address it must be installed at, or NULL if it
 * is not mapped contiguously (runs are then retried page by page; unmapped pages are
 * skipped). mem_size and id must equal those recorded in ws.pages. st->pages counts the
 * pages installed, also on failure (a failed page check can come after some verified
 * pages went in). */
int reap_prefetch_into(const char *snap_dir, int uffd, uint8_t *(*gpa_to_host)(void *ctx, uint64_t gpa, uint64_t len),
                       void *ctx, uint64_t mem_size, const struct snap_identity *id, struct reap_stats *st,
                       struct thaw_error *err);

/* Parses ws.trace bytes / a ws.trace file (for tests and `thaw analyze`); *out
 * malloc'd; id (may be NULL) receives the identity it carries. */
int reap_trace_decode(const uint8_t *buf, size_t len, struct page_record **out, size_t *n, uint64_t *mem_size,
                      struct snap_identity *id, struct thaw_error *err);
int reap_read_trace(const char *snap_dir, struct page_record **out, size_t *n, uint64_t *mem_size,
                    struct snap_identity *id, struct thaw_error *err);

/* ws.stale marker: set when a restore missed too many pages. */
int reap_mark_stale(const char *snap_dir, struct thaw_error *err);
int reap_is_stale(const char *snap_dir);
void reap_clear_stale(const char *snap_dir);

#endif
