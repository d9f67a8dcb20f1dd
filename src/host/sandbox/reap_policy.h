/* The REAP policy for reap-mode restores (internal to sandbox/):
 *  - no working set yet, or one marked stale: record one during this restore, unless
 *    another restore of the same snapshot is recording (it holds an flock on
 *    <snap>/ws.lock, taken without waiting): then run as plain uffd, recording nothing;
 *  - otherwise prefetch it (the pager falls back to lazy serving, and re-records, if
 *    it is unusable);
 *  - after the first response: write the recorded set, or mark it stale when more
 *    than REAP_STALE_SHARE of it had to be served lazily.
 * Working-set files are written under temporary names and renamed, so a concurrent
 * prefetch reads the old set or the new one, never half of one. */
#ifndef THAW_HOST_REAP_POLICY_H
#define THAW_HOST_REAP_POLICY_H

#include <stdbool.h>
#include <stddef.h>

#include "host/pager/pager.h"
#include "host/pager/reap.h"
#include "host/sandbox/sandbox.h"
#include "host/snapshot/memory_backend.h"

struct reap_policy {
    int lock_fd;             /* ws.lock while this restore may record, else -1 */
    enum pager_mode pmode;   /* for the in-process pager */
    bool recording, prefetched;
    bool finished;
    struct reap_stats ws;    /* the prefetch */
    char note[640];
};

/* Before the memory backend is set up: chooses the pager mode (and takes the lock). */
void reap_policy_begin(struct reap_policy *p, const char *snap_dir);
/* Once the pager is ready: what it did (it may have rejected the working set). */
void reap_policy_ready(struct reap_policy *p, const struct pager_stats *ready);
/* After the first response: asks the pager to write the working set or checks its
 * misses. Problems go into p->note (the response stands). Releases the lock. */
void reap_policy_finish(struct reap_policy *p, struct mem_backend *mem, const char *snap_dir);
/* The first invocation after a prefetch failed in the guest (a fault, a triple fault):
 * the working set may be what broke it (a forged or mismatched ws.pages whose checksums
 * hold). Marks it stale, so the next restore runs without it and records a new one, and
 * says so in err. No-op unless this restore prefetched and has not finished. Returns
 * whether it marked the set stale (sandbox_invoke then retries the call without it). */
bool reap_policy_invoke_failed(struct reap_policy *p, const char *snap_dir, struct thaw_error *err);
/* Releases the lock (after the memory backend is closed: the pager may still write). */
void reap_policy_end(struct reap_policy *p);

enum sandbox_start reap_policy_start(const struct reap_policy *p);

#endif
