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
 * Only while a CPU sits idle: with every CPU busy (eight restores at once) placing them
 * cost more than it saved (measured 1.17-1.28x at eight), so the caller samples the load
 * once at the start of its work (thread_spread_sample) and its threads start plain when
 * no CPU was idle.
 *
 * THAW_SPREAD=0 starts them as plain threads (to compare), THAW_SPREAD=1 places them
 * whatever the load. */
#ifndef THAW_HOST_THREAD_SPREAD_H
#define THAW_HOST_THREAD_SPREAD_H

#include <pthread.h>
#include <stdbool.h>

#include "host/util/cpu_load.h"

enum spread {
    SPREAD_START, /* starts on another CPU, then goes where the scheduler puts it */
    SPREAD_PIN,   /* stays off the creator's CPU for its life (short helpers that run beside it) */
};

/* Reads the host's load for this thread's next thread_start_spread calls: they place
 * their threads only if a CPU was idle now (runnable threads, this one included, fewer
 * than the CPUs). Never sampled: the first call samples. */
void thread_spread_sample(void);
/* The sample's rule: true when fewer threads are runnable (the caller included) than
 * there are CPUs, i.e. one sits idle. */
bool thread_spread_pays(const struct cpu_load *l);

/* pthread_create, placed as `how` says when the process may run on more than the
 * caller's CPU and the last sample saw one idle; a plain thread otherwise, or when
 * placing it is refused (a jail). Returns pthread_create's result. */
int thread_start_spread(pthread_t *tid, void *(*fn)(void *), void *arg, enum spread how);

#endif
