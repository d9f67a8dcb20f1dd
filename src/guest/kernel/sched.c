/* The scheduler: the thread table, wait channels, yields, sleeps, exits and the switch
 * between threads (thread.h). One vCPU, no preemption: a thread gives the CPU up only
 * in thread_wait/thread_yield/thread_exit. The table is small and scanned whole; the
 * order of runnable threads and of waiters is kept by sequence numbers, so there are
 * no lists to corrupt and every choice is first come, first served. */
#include "thread.h"

/* entry.S: the kernel stack top that SYSCALL's IRETQ frame switches to. It must always
 * be the running thread's, since its user code is the one that makes the next syscall. */
extern uint64_t syscall_iret_rsp;

#define KSTACK_CANARY 0x7468617773746b21ull /* "thawstk!" at the bottom of a kernel stack */
#define ARG_MAX_BYTES 1024

static struct thread threads[THREAD_MAX];
static struct thread *current;
static int slots_used;          /* threads[0, slots_used) may be in use */
static int32_t next_tid = 2;
static uint64_t seq;            /* run_seq and wait_seq */
static uint64_t cpu_fs_base, cpu_gs_base; /* what the vCPU holds now */
static bool leader_exited;      /* thread 1 ended first: its status is the guest's, as on Linux */
static int64_t leader_status;

void thread_init(void)
{
    memset(threads, 0, sizeof threads);
    current = &threads[0];
    current->tid = 1;
    current->state = THREAD_RUNNING;
    current->kstack_top = syscall_iret_rsp;
    slots_used = 1;
    leader_exited = false;
}

struct thread *thread_self(void) { return current; }

struct thread *thread_by_tid(int32_t tid)
{
    for (int i = 0; i < slots_used; i++)
        if (threads[i].tid == tid && threads[i].tid && threads[i].state != THREAD_DEAD)
            return &threads[i];
    return 0;
}

int thread_live_count(void)
{
    int n = 0;
    for (int i = 0; i < slots_used; i++)
        n += threads[i].tid && threads[i].state != THREAD_DEAD;
    return n;
}

static void load_bases(const struct thread *t)
{
    if (t->fs_base != cpu_fs_base) {
        arch_set_segment_base(MSR_FS_BASE, t->fs_base);
        cpu_fs_base = t->fs_base;
    }
    if (t->gs_base != cpu_gs_base) {
        arch_set_segment_base(MSR_GS_BASE, t->gs_base);
        cpu_gs_base = t->gs_base;
    }
}

int64_t sys_arch_prctl(uint64_t code, uint64_t addr)
{
    switch (code) {
    case ARCH_SET_FS:
    case ARCH_SET_GS: {
        uint64_t top = addr >> 47;
        if (top != 0 && top != 0x1ffff)
            return -EPERM;
        *(code == ARCH_SET_FS ? &current->fs_base : &current->gs_base) = addr;
        load_bases(current);
        return 0;
    }
    case ARCH_GET_FS:
    case ARCH_GET_GS:
        if (!user_range_ok(addr, 8))
            return -EFAULT;
        *(uint64_t *)(uintptr_t)addr = code == ARCH_GET_FS ? current->fs_base : current->gs_base;
        return 0;
    default:
        return -EINVAL;
    }
}

/* Kernel stacks of threads that have exited, freed by whichever thread runs next (a
 * thread cannot free the stack it is running on). */
static void reap_dead(void)
{
    for (int i = 0; i < slots_used; i++) {
        struct thread *t = &threads[i];
        if (t->state != THREAD_DEAD || t == current)
            continue;
        if (t->kstack)
            mm_free_pages(t->kstack, THREAD_KSTACK_SIZE);
        memset(t, 0, sizeof *t);
    }
    while (slots_used > 0 && !threads[slots_used - 1].tid)
        slots_used--;
}

static void switch_to(struct thread *next)
{
    struct thread *prev = current;
    next->state = THREAD_RUNNING;
    if (next == prev)
        return;
    if (prev->kstack && *(uint64_t *)prev->kstack != KSTACK_CANARY)
        kpanic("thread %d overflowed its %u KiB kernel stack", prev->tid, THREAD_KSTACK_SIZE >> 10);
    current = next;
    syscall_iret_rsp = next->kstack_top;
    load_bases(next);
    thread_switch(&prev->ksp, next->ksp);
    /* Back in prev, switched to by another thread. */
    reap_dead();
}

_Noreturn static void deadlock(void)
{
    int blocked = 0;
    struct thread *first = 0;
    for (int i = 0; i < slots_used; i++) {
        struct thread *t = &threads[i];
        if (t->tid && t->state == THREAD_BLOCKED) {
            if (!first)
                first = t;
            if (blocked++ < 16)
                klog("deadlock: thread %d waits in %s on %p\n", t->tid, t->wait_what, t->wait_chan);
        }
    }
    if (blocked == 1)
        kpanic("deadlock: thread %d, the only one left, waits forever in %s on %p", first->tid,
               first->wait_what, first->wait_chan);
    kpanic("deadlock: all %d threads are blocked and nothing can wake them (thread %d waits in %s on %p)",
           blocked, first ? first->tid : 0, first ? first->wait_what : "?", first ? first->wait_chan : 0);
}

/* The calling thread has given up the CPU (its state says why): run the runnable
 * thread that has waited longest, waking sleepers whose deadline has passed; with no
 * runnable thread, wait for the earliest deadline (nothing else can wake anyone). */
static void schedule(void)
{
    for (;;) {
        uint64_t now = time_monotonic_ns(), soonest = 0;
        struct thread *next = 0;
        for (int i = 0; i < slots_used; i++) {
            struct thread *t = &threads[i];
            if (t->state == THREAD_BLOCKED && t->deadline) {
                if (t->deadline <= now) {
                    t->state = THREAD_RUNNABLE;
                    t->wake_result = -ETIMEDOUT;
                    t->run_seq = ++seq;
                } else if (!soonest || t->deadline < soonest) {
                    soonest = t->deadline;
                }
            }
            if (t->state == THREAD_RUNNABLE && (!next || t->run_seq < next->run_seq))
                next = t;
        }
        if (next) {
            switch_to(next);
            return;
        }
        if (!soonest)
            deadlock();
        while (time_monotonic_ns() < soonest)
            __asm__ volatile("pause");
    }
}

static void make_runnable(struct thread *t, int64_t result)
{
    t->state = THREAD_RUNNABLE;
    t->wake_result = result;
    t->wait_chan = 0;
    t->run_seq = ++seq;
}

int64_t thread_wait(const void *chan, uint32_t bitset, uint64_t deadline, const char *what)
{
    if (deadline && deadline <= time_monotonic_ns())
        return -ETIMEDOUT;
    struct thread *t = current;
    t->state = THREAD_BLOCKED;
    t->wait_chan = chan;
    t->wait_bitset = bitset;
    t->wait_seq = ++seq;
    t->deadline = deadline;
    t->wait_what = what;
    t->wake_result = 0;
    schedule();
    t->wait_chan = 0;
    t->deadline = 0;
    return t->wake_result;
}

/* The blocked thread on chan (sharing a bit with bitset) that has waited longest. */
static struct thread *first_waiter(const void *chan, uint32_t bitset)
{
    struct thread *w = 0;
    for (int i = 0; i < slots_used; i++) {
        struct thread *t = &threads[i];
        if (t->state == THREAD_BLOCKED && t->wait_chan == chan && (t->wait_bitset & bitset) &&
            (!w || t->wait_seq < w->wait_seq))
            w = t;
    }
    return w;
}

/* Wakes exactly up to n waiters, longest waiting first. */
static int wake_up_to(const void *chan, uint32_t bitset, int n)
{
    int woken = 0;
    struct thread *w;
    while (woken < n && (w = first_waiter(chan, bitset))) {
        make_runnable(w, 0);
        woken++;
    }
    return woken;
}

/* As Linux's futex_wake: a count of 0 or less still wakes one. */
int thread_wake(const void *chan, uint32_t bitset, int max)
{
    return wake_up_to(chan, bitset, max < 1 ? 1 : max);
}

int thread_requeue(const void *from, const void *to, int nwake, int nmove)
{
    int n = wake_up_to(from, FUTEX_BITSET_MATCH_ANY, nwake), moved = 0;
    struct thread *w;
    while (moved < nmove && (w = first_waiter(from, FUTEX_BITSET_MATCH_ANY))) {
        w->wait_chan = to; /* keeps its place in line: wait_seq is unchanged */
        moved++;
    }
    return n + moved;
}

static char io_chan; /* its address is the I/O channel */

int64_t thread_io_wait(uint64_t deadline, const char *what)
{
    return thread_wait(&io_chan, FUTEX_BITSET_MATCH_ANY, deadline, what);
}

void thread_io_changed(void) { wake_up_to(&io_chan, FUTEX_BITSET_MATCH_ANY, THREAD_MAX); }

void thread_yield(void)
{
    current->state = THREAD_RUNNABLE;
    current->run_seq = ++seq;
    schedule();
}

void thread_sleep_until(uint64_t deadline)
{
    if (!deadline || deadline <= time_monotonic_ns()) {
        thread_yield();
        return;
    }
    /* The thread itself is the channel: nothing wakes it but the deadline. */
    (void)thread_wait(current, FUTEX_BITSET_MATCH_ANY, deadline, "sleep");
}

_Noreturn void thread_exit(int64_t status)
{
    struct thread *t = current;
    if (t->clear_child_tid && t->clear_child_tid % 4 == 0 && user_range_ok(t->clear_child_tid, 4)) {
        *(volatile uint32_t *)(uintptr_t)t->clear_child_tid = 0;
        thread_wake((const void *)(uintptr_t)t->clear_child_tid, FUTEX_BITSET_MATCH_ANY, 1);
    }
    if (thread_live_count() == 1)
        kernel_exit(leader_exited ? leader_status : status);
    if (t->tid == 1) {
        leader_exited = true;
        leader_status = status;
    }
    t->state = THREAD_DEAD;
    schedule();
    kpanic("dead thread %d was scheduled", t->tid);
}

struct thread *thread_create(void (*start)(void *), const void *arg, uint64_t arg_len, int64_t *err)
{
    struct thread *t = 0;
    for (int i = 0; i < THREAD_MAX && !t; i++)
        if (!threads[i].tid)
            t = &threads[i];
    if (!t || arg_len > ARG_MAX_BYTES) {
        *err = -EAGAIN;
        return 0;
    }
    uint8_t *stack = mm_alloc_pages(THREAD_KSTACK_SIZE);
    if (!stack) {
        *err = -ENOMEM;
        return 0;
    }
    while (thread_by_tid(next_tid) || next_tid <= 1)
        next_tid = next_tid >= 0x3fffffff ? 2 : next_tid + 1;
    memset(t, 0, sizeof *t);
    t->tid = next_tid;
    next_tid = next_tid >= 0x3fffffff ? 2 : next_tid + 1;
    t->kstack = stack;
    t->kstack_top = (uint64_t)(uintptr_t)stack + THREAD_KSTACK_SIZE;
    *(uint64_t *)stack = KSTACK_CANARY;
    t->fs_base = current->fs_base;
    t->gs_base = current->gs_base;
    t->start = start;

    /* The argument at the top, then what thread_switch pops: r15, r14, r13, r12 (the
     * argument), rbx (the thread), rbp, and the return address. After the ret, rsp is
     * the argument's 16-byte aligned address, as a call site's would be. */
    uint64_t argp = ALIGN_DOWN(t->kstack_top - arg_len, 16);
    memcpy((void *)(uintptr_t)argp, arg, arg_len);
    uint64_t *w = (uint64_t *)(uintptr_t)(argp - 7 * 8);
    w[0] = w[1] = w[2] = 0;
    w[3] = argp;
    w[4] = (uint64_t)(uintptr_t)t;
    w[5] = 0;
    w[6] = (uint64_t)(uintptr_t)thread_trampoline;
    t->ksp = (uint64_t)(uintptr_t)w;
    make_runnable(t, 0);
    if (t - threads >= slots_used)
        slots_used = (int)(t - threads) + 1;
    return t;
}

void thread_first_run(struct thread *t, void *arg)
{
    reap_dead();
    t->start(arg);
    kpanic("thread %d returned from its start function", t->tid);
}

int64_t thread_deadline(const struct linux_timespec *ts, bool absolute, uint64_t clk, uint64_t *deadline)
{
    *deadline = 0;
    if (!ts)
        return 0;
    if (!user_range_ok((uint64_t)(uintptr_t)ts, sizeof *ts))
        return -EFAULT;
    if (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000)
        return -EINVAL;
    uint64_t secs = (uint64_t)ts->tv_sec;
    if (secs > 100ull * 365 * 86400) /* a century: never, for this guest */
        secs = 100ull * 365 * 86400;
    uint64_t want = secs * 1000000000u + (uint64_t)ts->tv_nsec;
    uint64_t mono = time_monotonic_ns();
    if (!absolute) {
        *deadline = mono + want;
    } else if (clk == CLOCK_REALTIME) {
        uint64_t real = time_realtime_ns();
        *deadline = want > real ? mono + (want - real) : mono;
    } else {
        *deadline = want;
    }
    if (!*deadline)
        *deadline = 1;
    return 0;
}
