/* 2 MiB chunks of a REAP working set installed as huge pages, for a pager that runs in
 * the VM's own process (it writes guest memory directly).
 *
 * Why: under the nested PVM host a guest's first touch of a page costs a shadow-MMU exit
 * (~30 us on session 13's machine, a few us on others) per host page, KVM maps at
 * most 8 neighbouring 4 KiB pages on one, and a 2 MiB host page is mapped whole by one
 * (the guest maps its memory with 2 MiB pages); UFFDIO_COPY and UFFDIO_MOVE install 4 KiB
 * pages only. A chunk where the working set holds at least min_share of the memory file's
 * data pages is taken out of userfaultfd and read whole from the memory file, O_DIRECT,
 * straight into (transparent-huge-page) guest memory, so every data page of the chunk is
 * right whether or not the working set named it. The price is the read amplification:
 * the chunk's data pages that are not in the working set. The chunks' reads are queued
 * together on an io_uring (huge_chunks_begin) and waited for once the rest of the working
 * set is in (huge_chunks_end): the disk reads them while the pager installs ws.pages.
 * Which chunks pay depends on the host (reap_costs.h): by default each is weighed with
 * this host's measured costs. docs/benchmarks-topics.md has the trade-off as measured. */
#ifndef THAW_HOST_HUGE_CHUNKS_H
#define THAW_HOST_HUGE_CHUNKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host/pager/fc_handshake.h"
#include "host/pager/reap_costs.h"
#include "host/util/chunk_read.h"
#include "host/util/error.h"
#include "host/util/snap_identity.h"

#define HUGE_CHUNK_BYTES (2ull << 20)

/* What a chunk holds, and whether its read failed (between begin and end). */
struct huge_chunk_pages {
    uint64_t ws, data;
    bool failed;
};

struct huge_chunks {
    struct chunk_extent *ext;       /* each chunk's read; ext[k].off is its guest address, ascending */
    struct huge_chunk_pages *pages; /* per chunk */
    size_t n;
    uint64_t ws_pages;    /* working-set pages inside them */
    uint64_t data_pages;  /* memory-file data pages inside them (read) */
    uint64_t ns;          /* from choosing them to the last read in */
    /* Between huge_chunks_begin and huge_chunks_end: the reads in flight. */
    struct chunk_reader cr;
    int fd_direct, fd_buffered; /* -1: none (meaningful once begun) */
    bool begun;
    uint64_t t0;
    bool reading;
};

/* How chunks are chosen. */
enum huge_choice {
    HUGE_OFF,   /* none: every page by UFFDIO_COPY/MOVE (THAW_REAP_HUGE=0) */
    HUGE_SHARE, /* where the working set holds at least min_share of the data (THAW_REAP_HUGE=S) */
    HUGE_AUTO,  /* where this host's measured costs say a chunk pays (reap_costs.h; the default) */
};

struct huge_policy {
    enum huge_choice how;
    double min_share;        /* HUGE_SHARE */
    struct reap_costs costs; /* HUGE_AUTO: this host's, as loaded (zero: none measured yet) */
};

/* The policy from THAW_REAP_HUGE (unset or "auto": auto, with the host's costs loaded;
 * a share in (0, 1]; 0: off). */
void huge_policy_from_env(struct huge_policy *p);
const char *huge_choice_name(enum huge_choice how);
/* Picks the chunks, takes each out of userfaultfd and queues its read (see above).
 * uffd's registered memory is described by r[0..n) (host addresses in this process).
 * A merging restore passes its keep: when it would withhold pages to probe them, no
 * chunk is taken (a page inside one could not be seen unused). Returns 0 (possibly
 * with no chunk), or -1 if ws.pages cannot be read (then nothing changed). */
int huge_chunks_begin(const char *snap_dir, int uffd, const struct fc_region *r, size_t n, uint64_t mem_size,
                      const struct snap_identity *id, const struct huge_policy *policy, unsigned keep,
                      struct huge_chunks *out, struct thaw_error *err);
/* Waits for the reads; a chunk whose read failed is put back under userfaultfd, empty,
 * so the pager serves its pages as misses, and leaves the list. Same thread as begin
 * (an io_uring completion is posted through the thread that issued the read). */
void huge_chunks_end(struct huge_chunks *h, int uffd);
/* After end: puts every chunk back under userfaultfd, empty (the list empties). */
void huge_chunks_undo(struct huge_chunks *h, int uffd);
/* Whether [gpa, gpa + len) touches one of the chunks. */
bool huge_chunks_cover(const struct huge_chunks *h, uint64_t gpa, uint64_t len);
/* Frees (waiting for reads still in flight, if end was not called). Takes a zeroed one. */
void huge_chunks_free(struct huge_chunks *h);

#endif
