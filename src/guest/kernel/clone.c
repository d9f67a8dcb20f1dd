/* The syscalls that create, name and end threads: clone and clone3 for threads (as
 * glibc's and musl's pthread_create call them), set_tid_address, set_robust_list and
 * tgkill. A new thread starts on its own kernel stack with a copy of its parent's
 * syscall frame and leaves to user mode through entry.S's syscall_return with rax = 0,
 * every other register as the parent had it, the new stack and the new TLS base.
 * A new process (fork, vfork, clone without CLONE_THREAD) cannot exist in this guest. */
#include "thread.h"
#include "syscalls.h"

/* Everything a thread of this one process may ask for. CLONE_FS, CLONE_FILES and
 * CLONE_SYSVSEM describe what threads share here anyway. */
#define CLONE_THREAD_FLAGS                                                                                    \
    (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM | CLONE_SETTLS |          \
     CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID | CLONE_DETACHED | CLONE_CHILD_SETTID)
#define CSIGNAL 0xffull

struct clone_args_v0 { /* uapi/linux/sched.h, CLONE_ARGS_SIZE_VER0 = 64 bytes */
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};
struct clone_args_tail { uint64_t set_tid, set_tid_size, cgroup; }; /* VER1, VER2 */

/* First run of a cloned thread: the frame is the copy at the top of its kernel stack;
 * entry.S's syscall_return pops it with rax = 0 and leaves to user mode. */
static void clone_child_start(void *frame)
{
    __asm__ volatile("mov %0, %%rsp\n\t"
                     "xor %%eax, %%eax\n\t"
                     "jmp syscall_return"
                     :
                     : "r"(frame)
                     : "memory");
    __builtin_unreachable();
}

static bool tid_ptr_ok(uint64_t p) { return p % 4 == 0 && user_range_ok(p, 4); }

static int64_t clone_thread(struct syscall_frame *f, uint64_t flags, uint64_t sp, uint64_t parent_tid,
                            uint64_t child_tid, uint64_t tls)
{
    /* Linux's own consistency rules first, then what this guest can do. */
    if ((flags & CLONE_THREAD) && !(flags & CLONE_SIGHAND))
        return -EINVAL;
    if ((flags & CLONE_SIGHAND) && !(flags & CLONE_VM))
        return -EINVAL;
    if (!(flags & CLONE_THREAD)) {
        static bool logged;
        if (!logged) {
            logged = true;
            klog("clone without CLONE_THREAD (a new process, flags %lx): not supported, returning -ENOSYS\n",
                 flags);
        }
        return -ENOSYS;
    }
    if (flags & ~(CLONE_THREAD_FLAGS | CSIGNAL)) {
        klog("clone: unsupported flags %lx, returning -EINVAL\n", flags & ~(CLONE_THREAD_FLAGS | CSIGNAL));
        return -EINVAL;
    }
    if ((flags & CLONE_PARENT_SETTID) && !tid_ptr_ok(parent_tid))
        return -EFAULT;
    if ((flags & (CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID)) && !tid_ptr_ok(child_tid))
        return -EFAULT;
    if (flags & CLONE_SETTLS) {
        uint64_t top = tls >> 47;
        if (top != 0 && top != 0x1ffff)
            return -EPERM;
    }

    struct syscall_frame child = *f;
    if (sp)
        child.user_rsp = sp;
    int64_t err = 0;
    struct thread *t = thread_create(clone_child_start, &child, sizeof child, &err);
    if (!t)
        return err;
    if (flags & CLONE_SETTLS)
        t->fs_base = tls;
    if (flags & CLONE_CHILD_CLEARTID)
        t->clear_child_tid = child_tid;
    /* Its stack's guard: a clear fault instead of silent corruption on an overflow.
     * Without one (a stack not from mmap, no page for a page table) it still runs. */
    if (sp)
        (void)mm_guard_thread_stack(sp, t->tid);
    /* One address space: the child's tid words are the parent's memory. */
    if (flags & CLONE_CHILD_SETTID)
        *(volatile uint32_t *)(uintptr_t)child_tid = (uint32_t)t->tid;
    if (flags & CLONE_PARENT_SETTID)
        *(volatile uint32_t *)(uintptr_t)parent_tid = (uint32_t)t->tid;
    return t->tid;
}

int64_t sys_clone(struct syscall_frame *f, uint64_t flags, uint64_t newsp, uint64_t parent_tid,
                  uint64_t child_tid, uint64_t tls)
{
    return clone_thread(f, flags, newsp, parent_tid, child_tid, tls);
}

int64_t sys_clone3(struct syscall_frame *f, uint64_t uargs, uint64_t size)
{
    if (size < sizeof(struct clone_args_v0) || size > 4096)
        return -EINVAL;
    if (!user_range_ok(uargs, size))
        return -EFAULT;
    struct clone_args_v0 a;
    memcpy(&a, (const void *)(uintptr_t)uargs, sizeof a);
    /* set_tid (choose the child's tid) and cgroup are not for threads of this guest;
     * any bytes past what this kernel knows must be zero, as Linux requires. */
    const uint8_t *rest = (const uint8_t *)(uintptr_t)uargs + sizeof a;
    for (uint64_t i = 0; i < size - sizeof a; i++)
        if (rest[i])
            return -EINVAL;
    if (a.exit_signal > 64 || (a.flags & CSIGNAL) || (a.flags & CLONE_DETACHED))
        return -EINVAL;
    if ((a.stack == 0) != (a.stack_size == 0))
        return -EINVAL;
    uint64_t sp = a.stack ? a.stack + a.stack_size : 0;
    if (a.stack && sp < a.stack)
        return -EINVAL;
    return clone_thread(f, a.flags, sp, a.parent_tid, a.child_tid, a.tls);
}

int64_t sys_set_tid_address(uint64_t tidptr)
{
    thread_self()->clear_child_tid = tidptr;
    return thread_self()->tid;
}

int64_t sys_set_robust_list(uint64_t head, uint64_t len)
{
    if (len != 24) /* sizeof(struct robust_list_head) */
        return -EINVAL;
    thread_self()->robust_list = head;
    return 0;
}

/* Signals are never delivered in this guest: signal 0 probes for the thread, any other
 * signal to a thread of ours takes its default action, the end of the program (abort,
 * raise). */
int64_t sys_tgkill(int64_t tgid, int64_t tid, int64_t sig)
{
    if (tid <= 0 || (tgid != -1 && tgid <= 0) || sig < 0 || sig > 64)
        return -EINVAL;
    if ((tgid != -1 && tgid != 1) || !thread_by_tid((int32_t)tid))
        return -ESRCH;
    if (sig == 0)
        return 0;
    klog("program killed itself with signal %ld\n", sig);
    kernel_exit(128 + sig);
}
