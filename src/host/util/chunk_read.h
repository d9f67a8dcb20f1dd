/* Reads a list of extents of files on an io_uring, a bounded number in flight, and hands
 * them back in list order: the disk works on the next extents while the caller decodes
 * the one it was handed. An extent is queued once the caller has come back for the one
 * `depth` places before it, so extents `depth` apart may share a buffer. Without an
 * io_uring (or once queueing fails) the remaining extents are read with pread when the
 * caller asks for them; a short read is completed with pread too. One thread calls
 * everything: the kernel posts an io_uring completion through the task that issued it,
 * and chunk_reader_next issues reads too. */
#ifndef THAW_HOST_CHUNK_READ_H
#define THAW_HOST_CHUNK_READ_H

#include <liburing.h>
#include <stdbool.h>
#include <stdint.h>

#include "host/util/error.h"

struct chunk_extent {
    int fd;
    uint64_t off, len; /* len fits in an int32 */
    uint8_t *dst;
};

struct chunk_reader {
    const struct chunk_extent *ext; /* the caller's, kept until chunk_reader_stop */
    uint64_t n, queued, next;       /* next: the next extent chunk_reader_next hands back */
    unsigned depth;
    int32_t *res;                   /* per extent: bytes read, -errno, or CHUNK_PENDING */
    struct io_uring ring;
    bool ring_ok;                   /* the ring exists (reads in flight are waited for on it) */
    bool queue_ok;                  /* more may be queued (not after a failed submit) */
};

/* Queues the first depth extents (0: nothing in flight, all read on demand). -1 only
 * without memory or with an extent over 2 GiB. */
int chunk_reader_start(struct chunk_reader *cr, const struct chunk_extent *ext, uint64_t n, unsigned depth,
                       struct thaw_error *err);
/* Waits for the next extent in order to be wholly in its buffer: 1 with its index in *i,
 * 0 when none is left, -1 with its index in *i and err if its read failed (the next call
 * goes on with the extent after it). The buffer of the extent handed back before this
 * one may be reused from this call on. */
int chunk_reader_next(struct chunk_reader *cr, uint64_t *i, struct thaw_error *err);
/* True if the next extent is in already (chunk_reader_next would not wait). */
bool chunk_reader_ready(struct chunk_reader *cr);
/* True once every extent's read has completed (those handed back or not; none left
 * to be read on demand). Never waits: a caller busy between extents asks it to time
 * the reads' end closely. */
bool chunk_reader_all_in(struct chunk_reader *cr);
/* Waits for the reads still in flight (they write into the caller's buffers) and frees.
 * It takes a zeroed reader too (never started, or whose start failed). */
void chunk_reader_stop(struct chunk_reader *cr);

#endif
