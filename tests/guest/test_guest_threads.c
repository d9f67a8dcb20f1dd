/* The guest kernel's scheduler and futexes (src/guest/kernel/sched.c, futex.c,
 * switch.S), compiled for the host and driven through thread_create and sys_futex.
 *
 * The threads here are kernel threads of the test process: thread_create gives each a
 * kernel stack from mm_alloc_pages (here: host memory) and thread_switch moves between
 * them exactly as in the guest; only the way into user mode (clone.c, entry.S) is left
 * out. Time is a fake clock that moves on by 10 us each time it is read, so timeouts
 * pass quickly and deterministically. The FS/GS base writes a switch makes are
 * recorded.
 *
 * ASan warns "ignoring requested __asan_handle_no_return" when a thread on one of those
 * stacks calls a noreturn function (thread_exit): it cannot tell their bounds, and
 * only skips unpoisoning; the kernel stacks are heap blocks it still checks.
 *
 * Every test runs in a process of its own (the scheduler keeps static state, as a
 * guest kernel does); a test that expects the kernel to stop (deadlock, last exit)
 * runs the scenario in one more child and checks how it ended. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "forked_tests.h"

#include "thread.h" /* src/guest/kernel: kernel.h, linux_abi.h */

/* ---- shims for what the scheduler needs ---------------------------------------------- */

uint64_t syscall_iret_rsp = 0x1234000; /* entry.S's, in the guest */

static uint64_t fake_ns = 1000000;
uint64_t time_monotonic_ns(void) { return fake_ns += 10000; }
uint64_t time_realtime_ns(void) { return 1700000000000000000ull + fake_ns; }
/* uaccess.c (user address checks) also accepts the root-filesystem image: none here. */
bool rootfs_contains(uint64_t addr, uint64_t len);
uint64_t rootfs_end(void);
bool rootfs_contains(uint64_t addr, uint64_t len) { (void)addr; (void)len; return false; }
uint64_t rootfs_end(void) { return 0; }

static int panic_fd = -1; /* where kpanic writes its message in an "ends" scenario */

void klog(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("klog: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

_Noreturn void kpanic(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fprintf(stderr, "kernel panic: %s\n", msg);
    if (panic_fd >= 0 && n > 0)
        (void)!write(panic_fd, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
    _exit(42);
}

_Noreturn void kernel_exit(int64_t status) { _exit(100 + (int)status); }

static unsigned stacks_alloc, stacks_freed;

void *mm_alloc_pages(uint64_t bytes)
{
    void *p = aligned_alloc(4096, bytes);
    if (p) {
        memset(p, 0, bytes);
        stacks_alloc++;
    }
    return p;
}

void mm_free_pages(void *p, uint64_t bytes)
{
    (void)bytes;
    free(p);
    stacks_freed++;
}

/* entry.S's WRMSR through the #UD stub, in the guest. */
static uint64_t seg_sets, last_fs, last_gs;

void arch_set_segment_base(uint32_t msr, uint64_t base)
{
    if (msr != MSR_FS_BASE && msr != MSR_GS_BASE) {
        fprintf(stderr, "unexpected MSR %#x\n", msr);
        abort();
    }
    *(msr == MSR_FS_BASE ? &last_fs : &last_gs) = base;
    seg_sets++;
}

/* The scheduler makes no hypercall. */
void hypercall_trap(uint32_t port, const volatile void *arg)
{
    (void)arg;
    fprintf(stderr, "unexpected hypercall on port %#x\n", port);
    abort();
}

/* ---- helpers ------------------------------------------------------------------------- */

/* What the threads did, in order: one letter per step. */
static char trace[256];
static size_t trace_len;
static void step(char c)
{
    if (trace_len < sizeof trace - 1)
        trace[trace_len++] = c;
}

static uint32_t words[8] __attribute__((aligned(8)));
#define W(i) ((uint64_t)(uintptr_t)&words[i])

static struct thread *spawn(void (*fn)(void *), char tag)
{
    int64_t err = 0;
    struct thread *t = thread_create(fn, &tag, 1, &err);
    assert_non_null(t);
    return t;
}

static void wait_word0(void *arg)
{
    char tag = *(char *)arg;
    int64_t r = sys_futex(W(0), FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 0, 0, 0, 0);
    step(r == 0 ? tag : '!');
    thread_exit(0);
}

static int setup(void **state)
{
    (void)state;
    uaccess_init(1ull << 47);
    thread_init();
    return 0;
}

/* Runs fn in a child process and returns how it ended: the exit status, and the panic
 * message (if any) in msg. */
static int ends(void (*fn)(void), char *msg, size_t cap)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        panic_fd = p[1];
        fn();
        _exit(0);
    }
    close(p[1]);
    ssize_t n = read(p[0], msg, cap - 1);
    msg[n > 0 ? n : 0] = 0;
    close(p[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* ---- tests ----------------------------------------------------------------------------- */

static void log_tag_and_exit(void *arg)
{
    step(*(char *)arg);
    thread_yield();
    step((char)(*(char *)arg - 'a' + 'A'));
    thread_exit(0);
}

/* New threads wait for the CPU; a yield runs every other thread once, in order. */
static void test_create_and_yield_order(void **state)
{
    (void)state;
    struct thread *a = spawn(log_tag_and_exit, 'a');
    struct thread *b = spawn(log_tag_and_exit, 'b');
    assert_int_equal(thread_self()->tid, 1);
    assert_int_equal(a->tid, 2);
    assert_int_equal(b->tid, 3);
    assert_int_equal(thread_live_count(), 3);
    assert_ptr_equal(thread_by_tid(3), b);
    assert_int_equal(trace_len, 0); /* nothing ran yet: the creator keeps the CPU */
    step('1');
    thread_yield();
    step('2');
    thread_yield();
    step('3');
    trace[trace_len] = 0;
    assert_string_equal(trace, "1ab2AB3");
    assert_int_equal(thread_live_count(), 1);
    assert_null(thread_by_tid(2));
    /* Both exited threads' kernel stacks were freed once another thread ran. */
    assert_int_equal(stacks_alloc, 2);
    assert_int_equal(stacks_freed, 2);
}

/* WAKE wakes the longest waiting first, as many as asked, and says how many. */
static void test_futex_wake_fifo_and_count(void **state)
{
    (void)state;
    spawn(wait_word0, 'a');
    spawn(wait_word0, 'b');
    spawn(wait_word0, 'c');
    thread_yield(); /* all three now wait on words[0] */
    assert_int_equal(trace_len, 0);
    assert_int_equal(sys_futex(W(0), FUTEX_WAKE, 1, 0, 0, 0), 1);
    thread_yield();
    assert_int_equal(sys_futex(W(0), FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 0x7fffffff, 0, 0, 0), 2);
    thread_yield();
    trace[trace_len] = 0;
    assert_string_equal(trace, "abc");
    assert_int_equal(sys_futex(W(0), FUTEX_WAKE, 5, 0, 0, 0), 0); /* nobody left */
}

/* A count of 0 still wakes one waiter, as Linux's futex_wake does. */
static void test_futex_wake_zero_wakes_one(void **state)
{
    (void)state;
    spawn(wait_word0, 'a');
    spawn(wait_word0, 'b');
    thread_yield();
    assert_int_equal(sys_futex(W(0), FUTEX_WAKE, 0, 0, 0, 0), 1);
    assert_int_equal(sys_futex(W(0), FUTEX_WAKE, 1, 0, 0, 0), 1);
    thread_yield();
    trace[trace_len] = 0;
    assert_string_equal(trace, "ab");
}

static void test_futex_errors(void **state)
{
    (void)state;
    words[1] = 7;
    /* The value changed before the wait: EAGAIN, no sleep. */
    assert_int_equal(sys_futex(W(1), FUTEX_WAIT, 6, 0, 0, 0), -EAGAIN);
    assert_int_equal(sys_futex(W(1) + 1, FUTEX_WAIT, 7, 0, 0, 0), -EINVAL);  /* unaligned */
    assert_int_equal(sys_futex(16, FUTEX_WAKE, 1, 0, 0, 0), -EFAULT);         /* NULL page */
    assert_int_equal(sys_futex(W(1), FUTEX_WAIT_BITSET, 7, 0, 0, 0), -EINVAL); /* bitset 0 */
    assert_int_equal(sys_futex(W(1), FUTEX_WAKE_BITSET, 1, 0, 0, 0), -EINVAL);
    assert_int_equal(sys_futex(W(1), FUTEX_WAKE | FUTEX_CLOCK_REALTIME, 1, 0, 0, 0), -ENOSYS);
    assert_int_equal(sys_futex(W(1), 6 /* FUTEX_LOCK_PI */, 0, 0, 0, 0), -ENOSYS);
    struct linux_timespec bad = {.tv_sec = 0, .tv_nsec = 1000000000};
    assert_int_equal(sys_futex(W(1), FUTEX_WAIT, 7, (uint64_t)(uintptr_t)&bad, 0, 0), -EINVAL);
    bad.tv_sec = -1, bad.tv_nsec = 0;
    assert_int_equal(sys_futex(W(1), FUTEX_WAIT, 7, (uint64_t)(uintptr_t)&bad, 0, 0), -EINVAL);
    assert_int_equal(sys_futex(W(1), FUTEX_WAIT, 7, 8, 0, 0), -EFAULT); /* timeout in the NULL page */
}

/* A relative timeout with nobody to wake: ETIMEDOUT, no earlier than asked. */
static void test_futex_wait_timeout(void **state)
{
    (void)state;
    struct linux_timespec ts = {.tv_sec = 0, .tv_nsec = 5000000};
    uint64_t t0 = fake_ns;
    assert_int_equal(sys_futex(W(2), FUTEX_WAIT, 0, (uint64_t)(uintptr_t)&ts, 0, 0), -ETIMEDOUT);
    assert_true(fake_ns - t0 >= 5000000);
    /* An absolute deadline on CLOCK_REALTIME that has passed times out at once. */
    struct linux_timespec past = {.tv_sec = 1000, .tv_nsec = 0};
    t0 = fake_ns;
    assert_int_equal(sys_futex(W(2), FUTEX_WAIT_BITSET | FUTEX_CLOCK_REALTIME, 0, (uint64_t)(uintptr_t)&past, 0,
                               FUTEX_BITSET_MATCH_ANY),
                     -ETIMEDOUT);
    assert_true(fake_ns - t0 < 1000000);
}

static uint64_t waker_delay_ns;
static void wake_word2_later(void *arg)
{
    (void)arg;
    thread_sleep_until(fake_ns + waker_delay_ns);
    step('w');
    sys_futex(W(2), FUTEX_WAKE, 1, 0, 0, 0);
    thread_exit(0);
}

/* A waker that comes before the deadline: woken (0), not timed out. */
static void test_futex_woken_before_timeout(void **state)
{
    (void)state;
    waker_delay_ns = 2000000;
    spawn(wake_word2_later, 'w');
    struct linux_timespec ts = {.tv_sec = 1, .tv_nsec = 0};
    assert_int_equal(sys_futex(W(2), FUTEX_WAIT, 0, (uint64_t)(uintptr_t)&ts, 0, 0), 0);
    assert_int_equal(trace_len, 1);
    /* And an absolute monotonic deadline (WAIT_BITSET) that comes first wins. */
    waker_delay_ns = 50000000;
    spawn(wake_word2_later, 'w');
    struct linux_timespec dl = {.tv_sec = 0, .tv_nsec = (long)(fake_ns + 3000000)};
    dl.tv_sec = dl.tv_nsec / 1000000000;
    dl.tv_nsec %= 1000000000;
    assert_int_equal(sys_futex(W(2), FUTEX_WAIT_BITSET, 0, (uint64_t)(uintptr_t)&dl, 0, FUTEX_BITSET_MATCH_ANY),
                     -ETIMEDOUT);
    assert_int_equal(trace_len, 1); /* the waker still sleeps */
    struct linux_timespec forever = {.tv_sec = 10, .tv_nsec = 0};
    assert_int_equal(sys_futex(W(2), FUTEX_WAIT, 0, (uint64_t)(uintptr_t)&forever, 0, 0), 0);
}

static void wait_bits(void *arg)
{
    char tag = *(char *)arg;
    uint32_t bits = tag == 'x' ? 1 : 2;
    int64_t r = sys_futex(W(3), FUTEX_WAIT_BITSET, 0, 0, 0, bits);
    step(r == 0 ? tag : '!');
    thread_exit(0);
}

/* WAKE_BITSET wakes only waiters that share a bit. */
static void test_futex_bitsets(void **state)
{
    (void)state;
    spawn(wait_bits, 'x'); /* bit 0 */
    spawn(wait_bits, 'y'); /* bit 1 */
    thread_yield();
    assert_int_equal(sys_futex(W(3), FUTEX_WAKE_BITSET, 10, 0, 0, 2), 1);
    thread_yield();
    trace[trace_len] = 0;
    assert_string_equal(trace, "y");
    /* Plain WAKE matches every bitset. */
    assert_int_equal(sys_futex(W(3), FUTEX_WAKE, 10, 0, 0, 0), 1);
    thread_yield();
    trace[trace_len] = 0;
    assert_string_equal(trace, "yx");
}

/* CMP_REQUEUE checks the word, wakes some and moves the rest, keeping their order. */
static void test_futex_requeue(void **state)
{
    (void)state;
    spawn(wait_word0, 'a');
    spawn(wait_word0, 'b');
    spawn(wait_word0, 'c');
    thread_yield();
    words[0] = 5;
    assert_int_equal(sys_futex(W(0), FUTEX_CMP_REQUEUE, 0, 10, W(4), 4), -EAGAIN);
    assert_int_equal(sys_futex(W(0), FUTEX_CMP_REQUEUE, 1, 10, W(4), 5), 3); /* 1 woken + 2 moved */
    thread_yield();
    trace[trace_len] = 0;
    assert_string_equal(trace, "a");
    assert_int_equal(sys_futex(W(0), FUTEX_WAKE, 10, 0, 0, 0), 0); /* moved away */
    /* 0 to wake is 0 (unlike WAKE): only a move. */
    assert_int_equal(sys_futex(W(4), FUTEX_REQUEUE, 0, 1, W(5), 0), 1);
    assert_int_equal(sys_futex(W(4), FUTEX_WAKE, 10, 0, 0, 0), 1);
    thread_yield();
    trace[trace_len] = 0;
    assert_string_equal(trace, "ac");
    assert_int_equal(sys_futex(W(5), FUTEX_WAKE, 10, 0, 0, 0), 1);
    thread_yield();
    trace[trace_len] = 0;
    assert_string_equal(trace, "acb");
}

static void wait_word6(void *arg)
{
    (void)arg;
    step(sys_futex(W(6), FUTEX_WAIT, 0, 0, 0, 0) == 0 ? 'o' : '!');
    thread_exit(0);
}

/* WAKE_OP: the operation is applied to the second word, which is woken if the old
 * value passes the comparison. */
static void test_futex_wake_op(void **state)
{
    (void)state;
    spawn(wait_word0, 'a');
    spawn(wait_word6, 'o');
    thread_yield();
    words[6] = 0;
    /* op ADD 3, cmp EQ 0: old value 0 == 0, so both words are woken. */
    uint32_t enc = (1u << 28) | (0u << 24) | (3u << 12) | 0u;
    assert_int_equal(sys_futex(W(0), FUTEX_WAKE_OP, 1, 1, W(6), enc), 2);
    assert_int_equal(words[6], 3);
    thread_yield();
    trace[trace_len] = 0;
    assert_string_equal(trace, "ao");
    /* SET 1 with cmp GT 5 on old 3: written, no second wake. */
    enc = (0u << 28) | (4u << 24) | (1u << 12) | 5u;
    assert_int_equal(sys_futex(W(0), FUTEX_WAKE_OP, 1, 1, W(6), enc), 0);
    assert_int_equal(words[6], 1);
}

static void exit_clearing_tid(void *arg)
{
    (void)arg;
    thread_self()->clear_child_tid = W(7);
    step('e');
    thread_exit(3);
}

/* pthread_join's protocol: the exiting thread's tid word is zeroed and its waiter woken. */
static void test_exit_clears_and_wakes_tid(void **state)
{
    (void)state;
    struct thread *t = spawn(exit_clearing_tid, 'e');
    words[7] = (uint32_t)t->tid;
    while (words[7]) /* as glibc's pthread_join loops */
        assert_int_equal(sys_futex(W(7), FUTEX_WAIT, (uint64_t)t->tid, 0, 0, 0), 0);
    assert_int_equal(trace_len, 1);
    assert_int_equal(thread_live_count(), 1);
}

/* Sleepers wake in deadline order; with nothing runnable the CPU waits for them. */
static void sleeper(void *arg)
{
    char tag = *(char *)arg;
    thread_sleep_until(fake_ns + (tag == 's' ? 3000000 : 1000000));
    step(tag);
    thread_exit(0);
}

static void test_sleep_order(void **state)
{
    (void)state;
    spawn(sleeper, 's'); /* slow */
    spawn(sleeper, 'f'); /* fast */
    thread_sleep_until(fake_ns + 5000000);
    trace[trace_len] = 0;
    assert_string_equal(trace, "fs");
}

/* Each thread has its own FS base; a switch writes it only when it differs. */
static uint64_t fs_seen;
static void tls_thread(void *arg)
{
    (void)arg;
    uint64_t v = 0;
    assert_int_equal(sys_arch_prctl(ARCH_GET_FS, (uint64_t)(uintptr_t)&v), 0);
    fs_seen = v;
    assert_int_equal(sys_arch_prctl(ARCH_SET_FS, 0x7000), 0);
    thread_yield();
    thread_exit(0);
}

static void test_fs_base_per_thread(void **state)
{
    (void)state;
    assert_int_equal(sys_arch_prctl(ARCH_SET_FS, 0x5000), 0);
    assert_int_equal(last_fs, 0x5000);
    assert_int_equal(sys_arch_prctl(ARCH_SET_FS, 1ull << 48), -EPERM);
    spawn(tls_thread, 't');
    uint64_t sets = seg_sets;
    thread_yield(); /* the child inherits 0x5000: the switch writes no base */
    assert_int_equal(fs_seen, 0x5000);
    assert_int_equal(seg_sets, sets + 2); /* its own SET_FS, then back to ours */
    assert_int_equal(last_fs, 0x5000);
    thread_yield(); /* the child runs with 0x7000 and exits */
    assert_int_equal(last_fs, 0x5000);
    uint64_t v = 0;
    assert_int_equal(sys_arch_prctl(ARCH_GET_FS, (uint64_t)(uintptr_t)&v), 0);
    assert_int_equal(v, 0x5000);
}

static void block_forever(void *arg)
{
    (void)arg;
    sys_futex(W(0), FUTEX_WAIT, 0, 0, 0, 0);
    thread_exit(0);
}

static void deadlock_two(void)
{
    spawn(block_forever, 'b');
    sys_futex(W(1), FUTEX_WAIT, 0, 0, 0, 0);
}

static void deadlock_one(void) { sys_futex(W(1), FUTEX_WAIT, 0, 0, 0, 0); }

/* Every thread blocked with nothing to wake it: one clear panic, never a hang. */
static void test_deadlock_is_reported(void **state)
{
    (void)state;
    char msg[512];
    assert_int_equal(ends(deadlock_two, msg, sizeof msg), 42);
    assert_non_null(strstr(msg, "deadlock: all 2 threads are blocked"));
    assert_non_null(strstr(msg, "futex wait"));
    assert_int_equal(ends(deadlock_one, msg, sizeof msg), 42);
    assert_non_null(strstr(msg, "deadlock: thread 1, the only one left, waits forever in futex wait"));
}

static void exit_main_first(void)
{
    spawn(log_tag_and_exit, 'a');
    thread_exit(7); /* thread 1 ends; thread 2 runs, then ends the guest with thread 1's status */
}

static void exit_child_first(void)
{
    spawn(exit_clearing_tid, 'e'); /* exits with 3 */
    thread_yield();
    thread_exit(5);
}

/* The last thread to exit ends the guest, with thread 1's status (as Linux reports the
 * group leader's), whichever thread is last. */
static void test_last_exit_ends_guest(void **state)
{
    (void)state;
    char msg[64];
    assert_int_equal(ends(exit_main_first, msg, sizeof msg), 107);
    assert_int_equal(ends(exit_child_first, msg, sizeof msg), 105);
}

static void idle(void *arg)
{
    (void)arg;
    sys_futex(W(0), FUTEX_WAIT, 0, 0, 0, 0);
    thread_exit(0);
}

/* THREAD_MAX threads at once; one more is EAGAIN; freed slots are reused. */
static void test_thread_limit(void **state)
{
    (void)state;
    for (int i = 1; i < THREAD_MAX; i++)
        spawn(idle, 'i');
    int64_t err = 0;
    char tag = 'x';
    assert_null(thread_create(idle, &tag, 1, &err));
    assert_int_equal(err, -EAGAIN);
    assert_null(thread_create(idle, &tag, 4096, &err)); /* argument too large */
    thread_yield();
    assert_int_equal(sys_futex(W(0), FUTEX_WAKE, 0x7fffffff, 0, 0, 0), THREAD_MAX - 1);
    thread_yield();
    assert_int_equal(thread_live_count(), 1);
    assert_non_null(thread_create(idle, &tag, 1, &err));
    assert_int_equal(sys_futex(W(0), FUTEX_WAKE, 1, 0, 0, 0), 0); /* not yet waiting */
    thread_yield();
    assert_int_equal(sys_futex(W(0), FUTEX_WAKE, 1, 0, 0, 0), 1);
    thread_yield();
}

static void io_waiter(void *arg)
{
    char tag = *(char *)arg;
    int64_t r = thread_io_wait(tag == 't' ? fake_ns + 2000000 : 0, "poll");
    step(r == 0 ? tag : r == -ETIMEDOUT ? 'T' : '!');
    thread_exit(0);
}

/* The I/O channel: thread_io_changed wakes every waiter; a deadline still times out. */
static void test_io_wait_and_changed(void **state)
{
    (void)state;
    spawn(io_waiter, 'a');
    spawn(io_waiter, 'b');
    spawn(io_waiter, 't'); /* with a 2 ms deadline */
    thread_yield();
    thread_io_changed();
    thread_yield();
    trace[trace_len] = 0;
    assert_string_equal(trace, "abt");
    spawn(io_waiter, 't');
    thread_sleep_until(fake_ns + 5000000); /* nobody calls thread_io_changed */
    trace[trace_len] = 0;
    assert_string_equal(trace, "abtT");
    thread_io_changed(); /* no waiter: nothing happens */
}

/* Deadlines from timespecs: relative, absolute monotonic, absolute realtime. */
static void test_deadlines(void **state)
{
    (void)state;
    uint64_t d;
    assert_int_equal(thread_deadline(NULL, false, CLOCK_MONOTONIC, &d), 0);
    assert_int_equal(d, 0);
    struct linux_timespec ts = {.tv_sec = 2, .tv_nsec = 5};
    assert_int_equal(thread_deadline(&ts, false, CLOCK_MONOTONIC, &d), 0);
    assert_true(d >= fake_ns - 10000 + 2000000005ull && d <= fake_ns + 2000000005ull);
    assert_int_equal(thread_deadline(&ts, true, CLOCK_MONOTONIC, &d), 0);
    assert_int_equal(d, 2000000005ull);
    assert_int_equal(thread_deadline(&ts, true, CLOCK_REALTIME, &d), 0); /* long past */
    assert_true(d <= fake_ns);
    ts.tv_sec = INT64_MAX; /* clamped, not wrapped into the past */
    assert_int_equal(thread_deadline(&ts, false, CLOCK_MONOTONIC, &d), 0);
    assert_true(d > fake_ns + 1000000000ull * 86400 * 365);
}

#define T(f) cmocka_unit_test_setup(f, setup)

int main(int argc, char **argv)
{
    static const struct CMUnitTest tests[] = {
        T(test_create_and_yield_order), T(test_futex_wake_fifo_and_count), T(test_futex_wake_zero_wakes_one),
        T(test_futex_errors),           T(test_futex_wait_timeout),        T(test_futex_woken_before_timeout),
        T(test_futex_bitsets),          T(test_futex_requeue),             T(test_futex_wake_op),
        T(test_exit_clears_and_wakes_tid), T(test_sleep_order),            T(test_fs_base_per_thread),
        T(test_deadlock_is_reported),   T(test_last_exit_ends_guest),      T(test_thread_limit),
        T(test_deadlines),                 T(test_io_wait_and_changed),
    };
    int failed = run_tests_forked(tests, sizeof tests / sizeof tests[0], argc, argv);
    if (failed < 0)
        return 1;
    return failed ? 1 : 0;
}
