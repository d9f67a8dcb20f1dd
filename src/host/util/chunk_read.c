#include "host/util/chunk_read.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "host/util/file.h"

#define CHUNK_PENDING INT32_MIN

/* Queues what the window allows: extents up to next + depth (the caller is done with
 * every buffer before next). */
static void queue_more(struct chunk_reader *cr)
{
    uint64_t first = cr->queued;
    while (cr->queue_ok && cr->queued < cr->n && cr->queued < cr->next + cr->depth) {
        struct io_uring_sqe *sqe = io_uring_get_sqe(&cr->ring);
        if (!sqe)
            break;
        const struct chunk_extent *e = &cr->ext[cr->queued];
        io_uring_prep_read(sqe, e->fd, e->dst, (unsigned)e->len, e->off);
        io_uring_sqe_set_data64(sqe, cr->queued);
        cr->queued++;
    }
    if (cr->queued == first)
        return;
    int k = io_uring_submit(&cr->ring);
    if (k < 0 || (uint64_t)k < cr->queued - first) {
        /* What did not go in flight is read on demand; nothing is queued any more (the
         * prepared entries are never submitted), what is in flight is waited for. */
        cr->queued = first + (k > 0 ? (uint64_t)k : 0);
        cr->queue_ok = false;
    }
}

int chunk_reader_start(struct chunk_reader *cr, const struct chunk_extent *ext, uint64_t n, unsigned depth,
                       struct thaw_error *err)
{
    memset(cr, 0, sizeof *cr);
    for (uint64_t i = 0; i < n; i++)
        if (ext[i].len > INT32_MAX)
            return thaw_fail(err, "a read of %llu bytes: too large", (unsigned long long)ext[i].len);
    cr->ext = ext;
    cr->n = n;
    cr->depth = depth;
    if (!(cr->res = malloc((n ? n : 1) * sizeof *cr->res)))
        return thaw_fail(err, "out of memory");
    for (uint64_t i = 0; i < n; i++)
        cr->res[i] = CHUNK_PENDING;
    cr->ring_ok = cr->queue_ok = depth > 0 && n > 0 && io_uring_queue_init(depth, &cr->ring, 0) == 0;
    queue_more(cr);
    return 0;
}

/* Takes one completion off the ring; false if waiting failed. */
static bool reap_one(struct chunk_reader *cr, bool wait)
{
    struct io_uring_cqe *cqe;
    int k;
    do
        k = wait ? io_uring_wait_cqe(&cr->ring, &cqe) : io_uring_peek_cqe(&cr->ring, &cqe);
    while (k == -EINTR);
    if (k < 0)
        return false;
    uint64_t i = io_uring_cqe_get_data64(cqe);
    if (i < cr->n)
        cr->res[i] = cqe->res;
    io_uring_cqe_seen(&cr->ring, cqe);
    return true;
}

bool chunk_reader_ready(struct chunk_reader *cr)
{
    if (cr->next >= cr->n || cr->next >= cr->queued)
        return false;
    while (cr->res[cr->next] == CHUNK_PENDING && reap_one(cr, false))
        ;
    return cr->res[cr->next] != CHUNK_PENDING;
}

bool chunk_reader_all_in(struct chunk_reader *cr)
{
    if (cr->next >= cr->n) /* all handed back */
        return true;
    if (cr->queued < cr->n) /* some still to be read on demand */
        return false;
    while (cr->ring_ok && reap_one(cr, false))
        ;
    for (uint64_t i = cr->next; i < cr->n; i++)
        if (cr->res[i] == CHUNK_PENDING)
            return false;
    return true;
}

int chunk_reader_next(struct chunk_reader *cr, uint64_t *i, struct thaw_error *err)
{
    if (cr->next >= cr->n)
        return 0;
    queue_more(cr); /* the buffer handed back last is free now */
    *i = cr->next;
    const struct chunk_extent *e = &cr->ext[*i];
    int32_t got = 0; /* not queued: read here */
    if (*i < cr->queued) {
        while (cr->res[*i] == CHUNK_PENDING)
            if (!reap_one(cr, true)) {
                /* The ring is unusable: the rest is read on demand once nothing is in flight. */
                cr->res[*i] = -EIO;
                break;
            }
        got = cr->res[*i];
    }
    cr->next++;
    if (got >= 0 && (uint64_t)got < e->len) { /* a short read (or none yet): the rest here */
        errno = 0;
        if (pread_full(e->fd, e->dst + got, (size_t)(e->len - (uint64_t)got), e->off + (uint64_t)got) == 0)
            got = (int32_t)e->len;
        else
            got = -(errno ? errno : EIO);
    }
    if (got != (int32_t)e->len)
        return thaw_fail(err, "reading %llu bytes at %llu: %s", (unsigned long long)e->len,
                         (unsigned long long)e->off, strerror(got < 0 ? -got : EIO));
    return 1;
}

void chunk_reader_stop(struct chunk_reader *cr)
{
    if (cr->ring_ok) {
        for (uint64_t i = cr->next; i < cr->queued; i++)
            while (cr->res[i] == CHUNK_PENDING && reap_one(cr, true))
                ;
        io_uring_queue_exit(&cr->ring);
        cr->ring_ok = cr->queue_ok = false;
    }
    free(cr->res);
    cr->res = NULL;
}
