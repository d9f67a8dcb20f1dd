/* The REAP policy for reap-mode restores (internal to sandbox/):
 *  - no working set yet, or one marked stale: record one during this restore, unless
 *    another restore of the same snapshot is recording (it holds an flock on
 *    <snap>/ws.lock, taken without waiting): then run as plain uffd, recording nothing;
 *  - otherwise prefetch it (the pager falls back to lazy serving, and re-records, if
 *    it is unusable); a prefetch that gets the lock merges (PAGER_MERGE): it may withhold
 *    probed pages, and after the first response what its misses installed joins the set
 *    and probed pages it did not touch leave it (reap.h); one without the lock only
 *    prefetches;
 *  - after the first response: write the recorded or merged set.
 * Working-set files are written under temporary names and renamed, so a concurrent
 * prefetch reads the old set or the new one, never half of one. */
#ifndef THAW_HOST_REAP_POLICY_H
#define THAW_HOST_REAP_POLICY_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "host/pager/pager.h"
#include "host/pager/reap.h"
#include "host/sandbox/sandbox.h"
#include "host/snapshot/memory_backend.h"
#include "host/snapshot/rootfs_snapshot.h"

/* The file working set's recording (rootfs.ws), or its merge on a merging restore, in a
 * thread of its own so that the first response does not wait for it (reading the pages
 * from the image, packing, fsync: 4-12 ms for the Python functions here). */
struct reap_files_job {
    pthread_t tid;
    bool running;
    bool merge;
    struct rootfs_merge_stats ms;
    struct rootfs_pages where;
    char dir[4096];
    int rc;
    struct thaw_error err;
};

struct reap_policy {
    int lock_fd;             /* ws.lock while this restore may record, else -1 */
    enum pager_mode pmode;   /* for the in-process pager */
    bool recording, prefetched, merging;
    struct pager_stats merge; /* the pager's stats after a merge */
    uint64_t probed;          /* working-set pages the pager withheld (probes) */
    bool finished;
    bool files_failed;       /* rootfs.ws could not be written (said in note) */
    bool awaiting;           /* finish sent, its answer not read yet */
    struct reap_stats ws;    /* the prefetch */
    struct reap_files_job files;
    struct rootfs_merge_stats file_merge; /* the file working set's merge, once done */
    char note[640];
};

/* Before the memory backend is set up: chooses the pager mode (and takes the lock). */
void reap_policy_begin(struct reap_policy *p, const char *snap_dir);
/* Once the pager is ready: what it did (it may have rejected the working set). */
void reap_policy_ready(struct reap_policy *p, const struct pager_stats *ready);
/* After the first response: asks the pager to write the working set (and, for a
 * function with a root-filesystem image, writes the image pages mapped now as
 * rootfs.ws) or checks its misses. Problems go into p->note (the response stands).
 * Releases the lock. */
void reap_policy_finish(struct reap_policy *p, struct mem_backend *mem, const char *snap_dir,
                        const struct rootfs_pages *files);
/* The first invocation after a prefetch failed in the guest (a fault, a triple fault):
 * the working set may be what broke it (a forged or mismatched ws.pages whose checksums
 * hold). Marks it stale, so the next restore runs without it and records a new one, and
 * says so in err. No-op unless this restore prefetched and has not finished. Returns
 * whether it marked the set stale (sandbox_invoke then retries the call without it). */
bool reap_policy_invoke_failed(struct reap_policy *p, const char *snap_dir, struct thaw_error *err);
/* The same in two steps, so the caller need not wait for the write: send asks the pager
 * to write (it does so in its own thread), collect reads its answer (before any other
 * pager query) and releases the lock. collect does nothing if nothing was sent. */
void reap_policy_finish_send(struct reap_policy *p, struct mem_backend *mem, const char *snap_dir,
                             const struct rootfs_pages *files);
void reap_policy_collect(struct reap_policy *p, struct mem_backend *mem, const char *snap_dir);
/* Waits for the file working set's recording that finish_send started, if any: before
 * the guest runs again (its mapping's pages are what is recorded) and before the
 * instance is torn down. collect, collected and end wait for it too. */
void reap_policy_wait_files(struct reap_policy *p);
/* collect for a caller that read the pager's answer itself (a worker's caller, whose
 * pager connection also carries the worker's queries): reply is the parsed answer, or
 * NULL with why when none came. */
void reap_policy_collected(struct reap_policy *p, const struct pager_stats *reply, const char *why,
                           const char *snap_dir);
/* Releases the lock (after the memory backend is closed: the pager may still write). */
void reap_policy_end(struct reap_policy *p);

enum sandbox_start reap_policy_start(const struct reap_policy *p);
/* The merge fields of the stats (probed, merged, added, dropped, generation). */
void reap_policy_merge_stats(const struct reap_policy *p, struct sandbox_stats *st);

#endif
