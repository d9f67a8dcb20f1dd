/* Threads of the one process (docs/guest-threads.md). They all run on the one vCPU and
 * are switched cooperatively: a thread runs until it blocks (futex wait, sleep, a wait
 * on any other channel), yields or exits; then the runnable thread that has waited
 * longest runs. There is no preemption (no timer interrupt reaches CPL3 code here).
 *
 * Each thread has its own kernel stack (a syscall that blocks is parked on it), its own
 * saved registers (the syscall frame on that stack, the callee-saved ones pushed by
 * thread_switch) and its own FS/GS base. All of it lives in guest memory, so a snapshot
 * taken while several threads exist restores them all: the vCPU resumes the thread
 * that made the snapshot's hypercall, the others resume when it next blocks.
 *
 * sched.c is the scheduler and the wait channels (no syscall frames, no entry.S: the
 * guest-kernel tests run it on the host), futex.c the futex syscall on top of the wait
 * channels, clone.c the syscalls that create, name and end threads. */
#ifndef THAW_GUEST_THREAD_H
#define THAW_GUEST_THREAD_H
#include "kernel.h"

/* ---- the Linux ABI of threads (uapi/linux/sched.h, uapi/linux/futex.h) ---------- */
enum { SYS_clone = 56, SYS_fork = 57, SYS_vfork = 58, SYS_tkill = 200, SYS_clone3 = 435 };
enum { ETIMEDOUT = 110 };

#define CLONE_VM 0x00000100ull
#define CLONE_FS 0x00000200ull
#define CLONE_FILES 0x00000400ull
#define CLONE_SIGHAND 0x00000800ull
#define CLONE_PIDFD 0x00001000ull
#define CLONE_PTRACE 0x00002000ull
#define CLONE_VFORK 0x00004000ull
#define CLONE_PARENT 0x00008000ull
#define CLONE_THREAD 0x00010000ull
#define CLONE_SYSVSEM 0x00040000ull
#define CLONE_SETTLS 0x00080000ull
#define CLONE_PARENT_SETTID 0x00100000ull
#define CLONE_CHILD_CLEARTID 0x00200000ull
#define CLONE_DETACHED 0x00400000ull
#define CLONE_CHILD_SETTID 0x01000000ull

#define FUTEX_REQUEUE 3
#define FUTEX_CMP_REQUEUE 4
#define FUTEX_WAKE_OP 5
#define FUTEX_WAIT_BITSET 9
#define FUTEX_WAKE_BITSET 10
#define FUTEX_CLOCK_REALTIME 256
#define FUTEX_BITSET_MATCH_ANY 0xffffffffu

/* ---- sched.c -------------------------------------------------------------------- */
#define THREAD_MAX 256                  /* live threads at once */
#define THREAD_KSTACK_SIZE (64u << 10)  /* kernel stack of every thread but the first */

enum thread_state { THREAD_FREE, THREAD_RUNNING, THREAD_RUNNABLE, THREAD_BLOCKED, THREAD_DEAD };

struct thread {
    int32_t tid;                 /* 0: free slot */
    uint8_t state;               /* enum thread_state */
    uint64_t ksp;                /* saved kernel rsp while switched out */
    uint8_t *kstack;             /* its kernel stack (NULL: the boot stack, never freed) */
    uint64_t kstack_top;
    uint64_t fs_base, gs_base;
    uint64_t clear_child_tid;    /* set_tid_address / CLONE_CHILD_CLEARTID */
    uint64_t robust_list;        /* recorded; robust futexes are not cleaned up at exit */
    uint64_t run_seq;            /* order in which runnable threads run */
    /* while blocked */
    const void *wait_chan;
    uint32_t wait_bitset;
    uint64_t wait_seq;           /* wake order: first come, first woken */
    uint64_t deadline;           /* monotonic ns; 0: none */
    const char *wait_what;       /* for the deadlock report */
    int64_t wake_result;         /* 0 woken, -ETIMEDOUT */
    void (*start)(void *);       /* first run: start(arg) on its own kernel stack */
};

/* The running code becomes thread 1 (its tid is the pid) on the boot kernel stack.
 * Called once, before the program starts. */
void thread_init(void);
struct thread *thread_self(void);
struct thread *thread_by_tid(int32_t tid);    /* NULL unless a live (not dead) thread */
int thread_live_count(void);

/* A new runnable thread that will run start(copy of arg) on its own kernel stack; the
 * arg_len bytes are copied to the top of that stack (at most 1 KiB, 16-byte aligned).
 * FS/GS bases are the caller's. NULL with *err = -EAGAIN (THREAD_MAX reached) or
 * -ENOMEM. start must never return (it ends with thread_exit or leaves to user mode). */
struct thread *thread_create(void (*start)(void *), const void *arg, uint64_t arg_len, int64_t *err);

/* Blocks the calling thread on chan until thread_wake with a bitset that shares a bit
 * with bitset, or until the monotonic deadline (ns, 0 = never). 0 when woken,
 * -ETIMEDOUT (at once if the deadline has passed). what names the wait in the deadlock
 * report. If every thread ends up blocked with no deadline, the guest stops with one
 * error naming each wait (a deadlock cannot be left by any event in this guest). */
int64_t thread_wait(const void *chan, uint32_t bitset, uint64_t deadline, const char *what);
/* Wakes up to max (at least 1) threads waiting on chan whose bitset meets bitset,
 * longest waiting first; returns how many. The caller keeps running. */
int thread_wake(const void *chan, uint32_t bitset, int max);
/* Wakes up to nwake (0 wakes none) on from, then moves up to nmove more to wait on to;
 * returns woken + moved. */
int thread_requeue(const void *from, const void *to, int nwake, int nmove);
/* I/O readiness, one channel for all of it: whatever may make a descriptor readable,
 * writable or hung up (a write, a read that frees room, a close, a shutdown) calls
 * thread_io_changed; a blocking read, write, poll or epoll_wait that finds nothing
 * ready calls thread_io_wait (0 or -ETIMEDOUT) and checks again. Few threads wait at
 * once here, so waking them all is cheaper than per-descriptor queues. */
int64_t thread_io_wait(uint64_t deadline, const char *what);
void thread_io_changed(void);
/* Lets every other runnable thread run once (until it blocks or yields). */
void thread_yield(void);
/* Sleeps until the monotonic deadline; a deadline that has passed yields. */
void thread_sleep_until(uint64_t deadline);
/* The calling thread ends: CLEAR_CHILDTID is written and woken, the kernel stack is
 * freed once another thread runs. The last live thread ends the guest: with thread 1's
 * status if thread 1 ended before it (Linux reports the group leader's), else its own. */
_Noreturn void thread_exit(int64_t status);

/* FS/GS bases of the calling thread (arch_prctl). Without FSGSBASE, CPL3 cannot write
 * them: a switch to a thread with other bases makes one trip to ring 0 for a WRMSR
 * (arch_set_segment_base in entry.S, through the #UD stub), about 3x cheaper here than
 * the THAW_HC_SET_SEGMENT_BASE hypercall's exit to the monitor (bench/thread_switch.py,
 * docs/guest-threads.md). The base must be canonical: a #GP in ring 0 stops the guest. */
int64_t sys_arch_prctl(uint64_t code, uint64_t addr);
#define MSR_FS_BASE 0xc0000100u
#define MSR_GS_BASE 0xc0000101u
void arch_set_segment_base(uint32_t msr, uint64_t base);

/* switch.S: saves the callee-saved registers on the current stack and *save_sp, loads
 * new_sp and pops the other thread's. thread_trampoline starts a new thread. */
void thread_switch(uint64_t *save_sp, uint64_t new_sp);
void thread_trampoline(void);
void thread_first_run(struct thread *t, void *arg); /* sched.c, called by the trampoline */

/* ---- futex.c, clone.c: the syscalls ------------------------------------------------ */
int64_t sys_futex(uint64_t uaddr, uint64_t op, uint64_t val, uint64_t timeout_or_val2, uint64_t uaddr2,
                  uint64_t val3);
int64_t sys_clone(struct syscall_frame *f, uint64_t flags, uint64_t newsp, uint64_t parent_tid,
                  uint64_t child_tid, uint64_t tls);
int64_t sys_clone3(struct syscall_frame *f, uint64_t args, uint64_t size);
int64_t sys_set_tid_address(uint64_t tidptr);
int64_t sys_set_robust_list(uint64_t head, uint64_t len);
int64_t sys_tgkill(int64_t tgid, int64_t tid, int64_t sig);
/* Monotonic deadline of a timeout, relative or absolute on clock clk; -EINVAL/-EFAULT
 * for a bad timespec. *deadline 0 when ts is NULL. Shared with nanosleep. */
int64_t thread_deadline(const struct linux_timespec *ts, bool absolute, uint64_t clk, uint64_t *deadline);

#endif
