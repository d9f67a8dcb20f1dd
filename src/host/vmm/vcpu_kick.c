#include "host/vmm/vcpu_kick.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "host/util/clock.h"

static _Thread_local struct kvm_run *volatile current_run;
static atomic_int stop_requested;
static atomic_int registry[VCPU_KICK_SLOTS]; /* kernel thread ids, 0 = free */
static pthread_once_t handler_once = PTHREAD_ONCE_INIT;
static int handler_errno;
/* The deadline timer is made once per thread and re-armed per run: timer_create and
 * timer_delete on every invocation were on the warm path. The key's destructor deletes
 * it when the thread ends (thaw serve runs invocations in short-lived threads). */
static pthread_key_t timer_key;
static _Thread_local timer_t thread_timer;
static _Thread_local bool thread_has_timer;

static void delete_thread_timer(void *unused)
{
    (void)unused;
    if (thread_has_timer)
        timer_delete(thread_timer);
    thread_has_timer = false;
}

/* A child of fork() has no timers: the forking thread's must be made again. */
static void forget_timer_in_child(void)
{
    thread_has_timer = false;
}

static void on_kick(int sig)
{
    (void)sig;
    struct kvm_run *run = current_run;
    if (run)
        run->immediate_exit = 1;
}

static void install_handler(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_kick;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART; /* other syscalls of a kicked thread simply go on */
    if (sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0)
        handler_errno = errno;
    else if ((errno = pthread_key_create(&timer_key, delete_thread_timer)) != 0 ||
             (errno = pthread_atfork(NULL, NULL, forget_timer_in_child)) != 0)
        handler_errno = errno;
}

/* This thread's deadline timer, made on first use. */
static int thread_timer_get(int tid, timer_t *out, struct thaw_error *err)
{
    if (!thread_has_timer) {
        struct sigevent sev;
        memset(&sev, 0, sizeof sev);
        sev.sigev_notify = SIGEV_THREAD_ID;
        sev.sigev_signo = VCPU_KICK_SIGNAL;
        sev._sigev_un._tid = tid;
        if (timer_create(CLOCK_MONOTONIC, &sev, &thread_timer) < 0)
            return thaw_fail_errno(err, "timer_create for the vCPU deadline");
        thread_has_timer = true;
        (void)pthread_setspecific(timer_key, &thread_timer); /* non-NULL: the destructor runs */
    }
    *out = thread_timer;
    return 0;
}

int vcpu_run_begin(struct vcpu_run_guard *g, struct kvm_run *run, uint64_t timeout_ns, struct vcpu_kicker *k,
                   struct thaw_error *err)
{
    memset(g, 0, sizeof *g);
    g->run = run;
    g->slot = -1;
    g->kicker = k;
    pthread_once(&handler_once, install_handler);
    if (handler_errno) {
        errno = handler_errno;
        return thaw_fail_errno(err, "cannot install the vCPU kick signal handler");
    }
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, VCPU_KICK_SIGNAL);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    run->immediate_exit = 0;
    current_run = run;
    int tid = (int)syscall(SYS_gettid);
    /* Published before the first vcpu_kick_check: a vcpu_kick either sees this thread
     * (and signals it) or has set requested before that check reads it. */
    if (k)
        atomic_store(&k->tid, tid);
    for (int i = 0; i < VCPU_KICK_SLOTS; i++) {
        int free_slot = 0;
        if (atomic_compare_exchange_strong(&registry[i], &free_slot, tid)) {
            g->slot = i;
            break;
        }
    }
    if (timeout_ns) {
        g->deadline_ns = clock_now_ns() + timeout_ns;
        if (thread_timer_get(tid, &g->timer, err) < 0) {
            vcpu_run_end(g);
            return -1;
        }
        g->has_timer = true;
        struct itimerspec its = {.it_value = {.tv_sec = (time_t)(g->deadline_ns / 1000000000ull),
                                              .tv_nsec = (long)(g->deadline_ns % 1000000000ull)}};
        if (timer_settime(g->timer, TIMER_ABSTIME, &its, NULL) < 0) {
            thaw_fail_errno(err, "timer_settime for the vCPU deadline");
            vcpu_run_end(g);
            return -1;
        }
    }
    return 0;
}

enum vcpu_kick_reason vcpu_kick_check(struct vcpu_run_guard *g)
{
    if (atomic_load(&stop_requested))
        return VCPU_KICK_STOP;
    if (g->kicker && atomic_load(&g->kicker->requested))
        return VCPU_KICK_REQUEST;
    if (g->deadline_ns && clock_now_ns() >= g->deadline_ns)
        return VCPU_KICK_DEADLINE;
    /* A stray kick: clear it. A kick landing after this store sets it again. */
    g->run->immediate_exit = 0;
    return VCPU_KICK_NONE;
}

void vcpu_run_end(struct vcpu_run_guard *g)
{
    if (g->has_timer) { /* disarm; the timer stays for this thread's next run */
        struct itimerspec off = {{0, 0}, {0, 0}};
        timer_settime(g->timer, 0, &off, NULL);
    }
    g->has_timer = false;
    if (g->slot >= 0)
        atomic_store(&registry[g->slot], 0);
    g->slot = -1;
    if (g->kicker)
        atomic_store(&g->kicker->tid, 0);
    g->kicker = NULL;
    current_run = NULL;
    if (g->run)
        g->run->immediate_exit = 0;
}

void vcpu_stop_all(void)
{
    atomic_store(&stop_requested, 1);
    pid_t pid = getpid();
    for (int i = 0; i < VCPU_KICK_SLOTS; i++) {
        int tid = atomic_load(&registry[i]);
        if (tid)
            syscall(SYS_tgkill, pid, tid, VCPU_KICK_SIGNAL);
    }
}

bool vcpu_stopping(void)
{
    return atomic_load(&stop_requested) != 0;
}

void vcpu_kick(struct vcpu_kicker *k, const char *why)
{
    static pthread_mutex_t first = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&first);
    if (!atomic_load(&k->requested)) {
        snprintf(k->why, sizeof k->why, "%s", why);
        atomic_store(&k->requested, 1);
    }
    pthread_mutex_unlock(&first);
    int tid = atomic_load(&k->tid);
    if (tid)
        syscall(SYS_tgkill, getpid(), tid, VCPU_KICK_SIGNAL);
}

bool vcpu_kicked(struct vcpu_kicker *k)
{
    return atomic_load(&k->requested) != 0;
}
