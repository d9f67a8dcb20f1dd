/* Never hang on a dead pager. A uffd/reap instance's guest blocks on every missing page
 * until its pager serves it; a pager that is gone would leave it blocked for ever (the
 * monitor keeps its own copy of the userfaultfd, so the kernel never gives up). A watcher
 * thread waits for the pager to go away: the handshake connection hanging up (a pager
 * thread that stopped, a `thaw pager` process, or the caller's pager of a worker, that
 * exited or was killed) or, for an external pager in our pid namespace, its pidfd. Then
 *   1. on_death("pager died: ...") stops the vCPU (instance_kick, vcpu_kick.h);
 *   2. the monitor's copy of the userfaultfd is closed: with the pager's copy gone too,
 *      the kernel releases every fault still waiting for a page. What the guest then
 *      sees are zero pages, never used: the kick came first, and a response computed
 *      after it is dropped.
 * All within milliseconds of the pager's end. The watcher only polls, reads nothing and
 * opens nothing, so it can start inside a worker's jail (every descriptor it needs was
 * opened with the memory). */
#ifndef THAW_HOST_PAGER_WATCH_H
#define THAW_HOST_PAGER_WATCH_H

#include "host/snapshot/memory_backend.h"

typedef void (*pager_death_fn)(void *ctx, const char *why);

/* Starts watching b's pager (uffd/reap only; a no-op otherwise). on_death (may be NULL)
 * runs in the watcher thread. When already watching, on_death and ctx replace those
 * given before: a restore watches from its pager's "ready" on, since its own first
 * touches of guest memory would block on a dead pager too (snapshot.c), and its first
 * invocation names the instance to kick. */
int pager_watch_start(struct mem_backend *b, pager_death_fn on_death, void *ctx, struct thaw_error *err);
/* Stops the watcher, leaving the connection as it is: before it is closed on purpose
 * (mem_backend_close does it), and before a worker enters its jail (which wants as few
 * threads as can be: jail.h). Idempotent; a later pager_watch_start watches again. */
void pager_watch_stop(struct mem_backend *b);

#endif
