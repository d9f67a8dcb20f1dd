/* 2 MiB chunks of a REAP working set installed as huge pages, for a pager that runs in
 * the VM's own process (it writes guest memory directly).
 *
 * Why: under the nested PVM host a guest's first touch of a page costs a shadow-MMU exit
 * (~3 us) per host page, and a 2 MiB host page is mapped by one; UFFDIO_COPY installs
 * 4 KiB pages only. A chunk where the working set holds at least min_share of the memory
 * file's data pages is taken out of userfaultfd and filled whole from the memory file
 * with one O_DIRECT read straight into (transparent-huge-page) guest memory, so every
 * data page of the chunk is right whether or not the working set named it. The price is
 * the read amplification: the chunk's data pages that are not in the working set.
 * docs/benchmarks.md has the trade-off as measured. */
#ifndef THAW_HOST_HUGE_CHUNKS_H
#define THAW_HOST_HUGE_CHUNKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host/pager/fc_handshake.h"
#include "host/util/error.h"
#include "host/util/snap_identity.h"

#define HUGE_CHUNK_BYTES (2ull << 20)

struct huge_chunks {
    uint64_t *gpa;        /* chunk start addresses, ascending */
    size_t n;
    uint64_t ws_pages;    /* working-set pages inside them */
    uint64_t data_pages;  /* memory-file data pages inside them (read) */
    uint64_t ns;          /* time taken */
};

/* The share from THAW_REAP_HUGE (0 turns it off), else the default. */
double huge_chunks_min_share(void);
/* Picks and fills the chunks (see above). uffd's registered memory is described by r[0..n)
 * (host addresses in this process). A chunk that cannot be filled is put back under
 * userfaultfd, empty, so the pager serves it as before. Returns 0 (possibly with no
 * chunk), or -1 if ws.pages cannot be read (then nothing changed). */
int huge_chunks_install(const char *snap_dir, int uffd, const struct fc_region *r, size_t n, uint64_t mem_size,
                        const struct snap_identity *id, double min_share, struct huge_chunks *out,
                        struct thaw_error *err);
/* Whether [gpa, gpa + len) touches one of the chunks. */
bool huge_chunks_cover(const struct huge_chunks *h, uint64_t gpa, uint64_t len);
void huge_chunks_free(struct huge_chunks *h);

#endif
