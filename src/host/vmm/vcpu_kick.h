/* Getting a vCPU out of KVM_RUN, for deadlines and for stopping everything on SIGINT or
 * SIGTERM. The thread running a vCPU registers itself for the duration of a run and
 * arms its POSIX timer (SIGEV_THREAD_ID, made once per thread) for its deadline. A kick is the
 * signal VCPU_KICK_SIGNAL sent to that thread; its handler sets the vCPU's
 * kvm_run->immediate_exit, so KVM_RUN returns EINTR both when the signal lands while
 * the guest runs and when it lands just before the thread enters KVM_RUN (the race
 * Firecracker closes the same way). The run loop then asks vcpu_kick_check why.
 * One thread runs at most one vCPU at a time. */
#ifndef THAW_HOST_VCPU_KICK_H
#define THAW_HOST_VCPU_KICK_H

#include <linux/kvm.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "host/util/error.h"

#define VCPU_KICK_SIGNAL (SIGRTMIN + 0)
#define VCPU_KICK_SLOTS 1024 /* threads that can be in a run at once and be stopped */

enum vcpu_kick_reason { VCPU_KICK_NONE, VCPU_KICK_DEADLINE, VCPU_KICK_STOP, VCPU_KICK_REQUEST };

/* One vCPU's kick target, for vcpu_kick from other threads. Zero-initialised is ready. */
struct vcpu_kicker {
    _Atomic int tid;        /* the thread inside a run of this vCPU, 0: none */
    _Atomic int requested;  /* vcpu_kick was called; why is set before */
    char why[384];
};

struct vcpu_run_guard {
    struct kvm_run *run;
    uint64_t deadline_ns;   /* CLOCK_MONOTONIC, 0: none */
    timer_t timer;
    bool has_timer;
    int slot;               /* in the stop registry, or -1 */
    struct vcpu_kicker *kicker; /* NULL: none */
};

/* Starts a run of the vCPU whose kvm_run is run in this thread, with a timeout
 * (0: none) and the vCPU's kicker (NULL: none). Installs the signal handler the first
 * time. */
int vcpu_run_begin(struct vcpu_run_guard *g, struct kvm_run *run, uint64_t timeout_ns, struct vcpu_kicker *k,
                   struct thaw_error *err);
/* After KVM_RUN returned (EINTR or not): a stop request or an expired deadline. Clears
 * immediate_exit when there is nothing to act on. */
enum vcpu_kick_reason vcpu_kick_check(struct vcpu_run_guard *g);
/* Disarms the timer and leaves the registry. */
void vcpu_run_end(struct vcpu_run_guard *g);

/* Async-signal-safe: from now on every run in this process stops (VCPU_KICK_STOP), and
 * every thread inside one is kicked. */
void vcpu_stop_all(void);
bool vcpu_stopping(void);

/* From any thread: the vCPU of k stops with VCPU_KICK_REQUEST (in its current run, or
 * at the start of its next one), k->why saying why. Only the first kick's why counts. */
void vcpu_kick(struct vcpu_kicker *k, const char *why);
/* Whether k was kicked (why is then readable). */
bool vcpu_kicked(struct vcpu_kicker *k);

#endif
