/* Helper threads started on another CPU than their creator's.
 *
 * Why: this host's kernel packs tasks onto as few vCPUs as it can (its command line has
 * sched_vcpu_pack). A new thread is queued behind its creator on the creator's CPU and,
 * while the creator stays busy, starts only at the next load balance: measured 3-4 ms
 * (0.12-0.18 ms when the thread is placed on the idle CPU), and a woken thread is put
 * on its waker's CPU, sharing it while the other idles. A restore's helpers (the VM
 * pool's filler, the pager thread, the image job, the pre-fault vCPU) exist to run
 * beside the restore: docs/benchmarks-topics.md has what each placement cost.
 *
 * THAW_SPREAD=0 starts them as plain threads (to compare). */
#ifndef THAW_HOST_THREAD_SPREAD_H
#define THAW_HOST_THREAD_SPREAD_H

#include <pthread.h>

enum spread {
    SPREAD_START, /* starts on another CPU, then goes where the scheduler puts it */
    SPREAD_PIN,   /* stays off the creator's CPU for its life (short helpers that run beside it) */
};

/* pthread_create, placed as `how` says when the process may run on more than the
 * caller's CPU; a plain thread otherwise, or when placing it is refused (a jail).
 * Returns pthread_create's result. */
int thread_start_spread(pthread_t *tid, void *(*fn)(void *), void *arg, enum spread how);

#endif
