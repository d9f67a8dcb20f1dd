/* Syscall dispatch, and the process, time and identity syscalls. Reached from
 * syscall_entry_cpl3 (entry.S) at CPL3 with the caller's arguments in a frame. */
#include "kernel.h"
#include "syscalls.h"
#include "fs.h"
#include "thread.h"
#include "pipe.h"

#define SIG_MAX 65

struct linux_sigaction { uint64_t handler, flags, restorer, mask; };
static struct linux_sigaction sig_actions[SIG_MAX];
static uint64_t sig_mask;
static uint64_t unknown_logged[SYS_MAX / 64 + 1];
static uint32_t umask_value = 022;

static int64_t sys_clock_gettime(uint64_t clk, struct linux_timespec *ts)
{
    if (!user_range_ok((uint64_t)(uintptr_t)ts, sizeof *ts))
        return -EFAULT;
    uint64_t ns;
    switch (clk) {
    case CLOCK_REALTIME:
    case CLOCK_REALTIME_COARSE:
        ns = time_realtime_ns();
        break;
    case CLOCK_MONOTONIC:
    case CLOCK_MONOTONIC_RAW:
    case CLOCK_MONOTONIC_COARSE:
    case CLOCK_BOOTTIME:
    case CLOCK_PROCESS_CPUTIME_ID:
    case CLOCK_THREAD_CPUTIME_ID:
        ns = time_monotonic_ns();
        break;
    default:
        return -EINVAL;
    }
    ts->tv_sec = (int64_t)(ns / 1000000000u);
    ts->tv_nsec = (int64_t)(ns % 1000000000u);
    return 0;
}

/* A sleep blocks the calling thread; other threads run meanwhile (sched.c). */
static int64_t sleep_ns(const struct linux_timespec *req, bool absolute, uint64_t clk)
{
    if (!req)
        return -EFAULT;
    uint64_t deadline;
    int64_t r = thread_deadline(req, absolute, clk, &deadline);
    if (r < 0)
        return r;
    thread_sleep_until(deadline);
    return 0;
}

static int64_t sys_rt_sigaction(uint64_t sig, const struct linux_sigaction *act,
                                struct linux_sigaction *old, uint64_t setsize)
{
    /* Handlers are recorded and reported back, never delivered: no signal source exists. */
    if (sig == 0 || sig >= SIG_MAX || setsize != 8 || sig == 9 || sig == 19)
        return -EINVAL;
    if (old) {
        if (!user_range_ok((uint64_t)(uintptr_t)old, sizeof *old))
            return -EFAULT;
        *old = sig_actions[sig];
    }
    if (act) {
        if (!user_range_ok((uint64_t)(uintptr_t)act, sizeof *act))
            return -EFAULT;
        sig_actions[sig] = *act;
    }
    return 0;
}

static int64_t sys_rt_sigprocmask(uint64_t how, const uint64_t *set, uint64_t *old, uint64_t setsize)
{
    if (setsize != 8)
        return -EINVAL;
    if (old) {
        if (!user_range_ok((uint64_t)(uintptr_t)old, 8))
            return -EFAULT;
        *old = sig_mask;
    }
    if (set) {
        if (!user_range_ok((uint64_t)(uintptr_t)set, 8))
            return -EFAULT;
        switch (how) {
        case 0: sig_mask |= *set; break;
        case 1: sig_mask &= ~*set; break;
        case 2: sig_mask = *set; break;
        default: return -EINVAL;
        }
    }
    return 0;
}

static int64_t sys_prlimit64(uint64_t pid, uint64_t res, const struct linux_rlimit *nw, struct linux_rlimit *old)
{
    enum { RLIMIT_STACK = 3, RLIMIT_NOFILE = 7, RLIM_NLIMITS = 16 };
    if (pid != 0 && pid != 1)
        return -ESRCH;
    if (res >= RLIM_NLIMITS)
        return -EINVAL;
    (void)nw; /* limits are fixed; setting one succeeds without effect */
    if (old) {
        if (!user_range_ok((uint64_t)(uintptr_t)old, sizeof *old))
            return -EFAULT;
        uint64_t v = res == RLIMIT_STACK ? (8ull << 20) : res == RLIMIT_NOFILE ? 256 : ~0ull;
        old->rlim_cur = old->rlim_max = v;
    }
    return 0;
}

static int64_t sys_uname(struct linux_utsname *u)
{
    if (!user_range_ok((uint64_t)(uintptr_t)u, sizeof *u))
        return -EFAULT;
    memset(u, 0, sizeof *u);
    memcpy(u->sysname, "Linux", 6);
    memcpy(u->nodename, "thaw", 5);
    memcpy(u->release, "6.1.0-thaw", 11);
    memcpy(u->version, "#1 thaw library OS", 19);
    memcpy(u->machine, "x86_64", 7);
    memcpy(u->domainname, "(none)", 7);
    return 0;
}

static int64_t sys_sysinfo(struct linux_sysinfo *si)
{
    if (!user_range_ok((uint64_t)(uintptr_t)si, sizeof *si))
        return -EFAULT;
    memset(si, 0, sizeof *si);
    si->uptime = (int64_t)(time_monotonic_ns() / 1000000000u);
    mm_stats(&si->totalram, &si->freeram);
    si->procs = 1;
    si->mem_unit = 1;
    return 0;
}

static int64_t sys_getrandom(void *buf, uint64_t len, uint64_t flags)
{
    (void)flags;
    if (!user_range_ok((uint64_t)(uintptr_t)buf, len))
        return -EFAULT;
    random_bytes(buf, len);
    return (int64_t)len;
}

static int64_t sys_sched_getaffinity(uint64_t pid, uint64_t size, uint8_t *mask)
{
    (void)pid;
    if (size < 8 || !user_range_ok((uint64_t)(uintptr_t)mask, 8))
        return -EINVAL;
    memset(mask, 0, 8);
    mask[0] = 1;
    return 8;
}

static void log_unknown(uint64_t nr)
{
    if (nr < SYS_MAX && !(unknown_logged[nr / 64] >> (nr % 64) & 1)) {
        unknown_logged[nr / 64] |= 1ull << (nr % 64);
        klog("unimplemented syscall %lu: returning -ENOSYS\n", nr);
    }
}

static int64_t syscall_do(struct syscall_frame *f)
{
    uint64_t a = f->rdi, b = f->rsi, c = f->rdx, d = f->r10, e = f->r8, g = f->r9;
#define P(x) ((void *)(uintptr_t)(x))
    switch (f->nr) {
    case SYS_read: return sys_read((int)a, P(b), c);
    case SYS_write: return sys_write((int)a, P(b), c);
    case SYS_open: return sys_openat(AT_FDCWD, P(a), b, c);
    case SYS_openat: return sys_openat((int)a, P(b), c, d);
    case SYS_close: return sys_close((int)a);
    case SYS_stat: return sys_newfstatat(AT_FDCWD, P(a), P(b), 0);
    case SYS_lstat: return sys_newfstatat(AT_FDCWD, P(a), P(b), AT_SYMLINK_NOFOLLOW);
    case SYS_fstat: return sys_fstat((int)a, P(b));
    case SYS_newfstatat: return sys_newfstatat((int)a, P(b), P(c), d);
    case SYS_statx: return sys_statx((int)a, P(b), c, d, P(e));
    case SYS_lseek: return sys_lseek((int)a, (int64_t)b, (int)c);
    case SYS_pread64: return sys_pread64((int)a, P(b), c, (int64_t)d);
    case SYS_readv: return sys_readv((int)a, P(b), (int64_t)c);
    case SYS_writev: return sys_writev((int)a, P(b), (int64_t)c);
    case SYS_access: return sys_faccessat(AT_FDCWD, P(a), b);
    case SYS_faccessat: case SYS_faccessat2: return sys_faccessat((int)a, P(b), c);
    case SYS_readlink: return sys_readlinkat(AT_FDCWD, P(a), P(b), c);
    case SYS_readlinkat: return sys_readlinkat((int)a, P(b), P(c), d);
    case SYS_getdents64: return sys_getdents64((int)a, P(b), c);
    case SYS_getcwd: return sys_getcwd(P(a), b);
    case SYS_chdir: return sys_chdir(P(a));
    case SYS_dup: return sys_dup3((int)a, 0, 0, true);
    case SYS_dup2: return sys_dup3((int)a, (int)b, 0, false);
    case SYS_dup3: return a == b ? -EINVAL : sys_dup3((int)a, (int)b, c, false);
    case SYS_fcntl: return sys_fcntl((int)a, (int)b, c);
    case SYS_ioctl: return sys_ioctl((int)a, b, c);
    case SYS_fsync: return fs_file((int)a) ? 0 : -EBADF;
    case SYS_fdatasync: return fs_file((int)a) ? 0 : -EBADF; /* nothing is ever unwritten */
    case SYS_poll: return sys_poll_ms(P(a), b, (int64_t)(int32_t)c);
    case SYS_ppoll: return sys_ppoll(P(a), b, P(c));
    case SYS_mkdir: return sys_mkdirat(AT_FDCWD, P(a), b);
    case SYS_mkdirat: return sys_mkdirat((int)a, P(b), c);
    case SYS_unlink: return sys_unlinkat(AT_FDCWD, P(a), 0);
    case SYS_rmdir: return sys_unlinkat(AT_FDCWD, P(a), 0x200);
    case SYS_unlinkat: return sys_unlinkat((int)a, P(b), c);
    case SYS_rename: return sys_renameat2(AT_FDCWD, P(a), AT_FDCWD, P(b), 0);
    case SYS_renameat: return sys_renameat2((int)a, P(b), (int)c, P(d), 0);
    case SYS_renameat2: return sys_renameat2((int)a, P(b), (int)c, P(d), e);
    case SYS_ftruncate: return sys_ftruncate((int)a, (int64_t)b);
    case SYS_pwrite64: return sys_pwrite64((int)a, P(b), c, (int64_t)d);
    case SYS_pipe: return sys_pipe2(P(a), 0);
    case SYS_pipe2: return sys_pipe2(P(a), b);
    case SYS_socketpair: return sys_socketpair(a, b, c, P(d));
    case SYS_socket: return a == 1 ? -EOPNOTSUPP : -EAFNOSUPPORT; /* no network, no named sockets */
    case SYS_sendto:
    case SYS_recvfrom: {
        struct file *sf = fs_file((int)a);
        if (!sf)
            return -EBADF;
        if (!pipe_is_socket(sf))
            return -ENOTSOCK;
        if (e) /* an address: only connected pairs exist */
            return -EISCONN;
        uint32_t saved = sf->flags;
        if (d & 0x40) /* MSG_DONTWAIT */
            sf->flags |= O_NONBLOCK;
        int64_t r = f->nr == SYS_sendto ? sys_write((int)a, P(b), c) : sys_read((int)a, P(b), c);
        sf->flags = saved;
        return r;
    }
    case SYS_shutdown:
    case SYS_setsockopt:
    case SYS_getsockopt:
    case SYS_getsockname:
    case SYS_getpeername: return sys_socket_misc(f->nr, (int)a, b, c, d, e);
    case SYS_epoll_create: return (int64_t)a <= 0 ? -EINVAL : sys_epoll_create1(0);
    case SYS_epoll_create1: return sys_epoll_create1(a);
    case SYS_epoll_ctl: return sys_epoll_ctl((int)a, (int)b, (int)c, P(d));
    case SYS_epoll_wait:
    case SYS_epoll_pwait: return sys_epoll_wait((int)a, P(b), (int64_t)(int32_t)c, (int64_t)(int32_t)d);
    case SYS_brk: return sys_brk(a);
    case SYS_mmap: return sys_mmap(a, b, c, d, (int64_t)e, g);
    case SYS_munmap: return sys_munmap(a, b);
    case SYS_mremap: return sys_mremap(a, b, c, d, e);
    case SYS_mprotect: return sys_mprotect(a, b, c);
    case SYS_madvise: return sys_madvise(a, b, c);
    case SYS_clock_gettime: return sys_clock_gettime(a, P(b));
    case SYS_clock_getres: {
        struct linux_timespec *ts = P(b);
        if (ts) {
            if (!user_range_ok(b, sizeof *ts))
                return -EFAULT;
            ts->tv_sec = 0, ts->tv_nsec = 1;
        }
        return 0;
    }
    case SYS_gettimeofday: {
        struct linux_timeval *tv = P(a);
        if (tv) {
            if (!user_range_ok(a, sizeof *tv))
                return -EFAULT;
            uint64_t ns = time_realtime_ns();
            tv->tv_sec = (int64_t)(ns / 1000000000u);
            tv->tv_usec = (int64_t)(ns % 1000000000u / 1000u);
        }
        return 0;
    }
    case SYS_time: {
        int64_t s = (int64_t)(time_realtime_ns() / 1000000000u);
        if (a) {
            if (!user_range_ok(a, 8))
                return -EFAULT;
            *(int64_t *)P(a) = s;
        }
        return s;
    }
    case SYS_nanosleep: return sleep_ns(P(a), false, CLOCK_MONOTONIC);
    case SYS_clock_nanosleep: return sleep_ns(P(c), b & 1 /* TIMER_ABSTIME */, a);
    case SYS_getrandom: return sys_getrandom(P(a), b, c);
    case SYS_arch_prctl: return sys_arch_prctl(a, b);
    case SYS_set_tid_address: return sys_set_tid_address(a);
    case SYS_set_robust_list: return sys_set_robust_list(a, b);
    case SYS_rseq: return -ENOSYS; /* glibc copes; documented in the issue */
    case SYS_rt_sigaction: return sys_rt_sigaction(a, P(b), P(c), d);
    case SYS_rt_sigprocmask: return sys_rt_sigprocmask(a, P(b), P(c), d);
    case SYS_sigaltstack: return 0;
    case SYS_prlimit64: return sys_prlimit64(a, b, P(c), P(d));
    case SYS_getrlimit: return sys_prlimit64(0, a, 0, P(b));
    case SYS_setrlimit: return 0;
    case SYS_uname: return sys_uname(P(a));
    case SYS_sysinfo: return sys_sysinfo(P(a));
    case SYS_getpid: case SYS_getpgrp: return 1;
    case SYS_gettid: return thread_self()->tid;
    case SYS_getppid: return 0;
    case SYS_getuid: case SYS_geteuid: case SYS_getgid: case SYS_getegid: return 0;
    case SYS_umask: { uint32_t old = umask_value; umask_value = a & 0777; return old; }
    case SYS_sched_yield: thread_yield(); return 0;
    case SYS_sched_getaffinity: return sys_sched_getaffinity(a, b, P(c));
    case SYS_futex: return sys_futex(a, b, c, d, e, g);
    case SYS_clone: return sys_clone(f, a, b, c, d, e);
    case SYS_clone3: return sys_clone3(f, a, b);
    case SYS_getrusage: {
        if (!user_range_ok(b, 144))
            return -EFAULT;
        memset(P(b), 0, 144);
        return 0;
    }
    case SYS_tgkill: return sys_tgkill((int64_t)(int32_t)a, (int64_t)(int32_t)b, (int64_t)(int32_t)c);
    case SYS_tkill: return sys_tgkill(-1, (int64_t)(int32_t)a, (int64_t)(int32_t)b);
    case SYS_exit: thread_exit((int64_t)(int32_t)a);
    case SYS_exit_group:
        kernel_exit((int64_t)(int32_t)a);
    default:
        log_unknown(f->nr);
        return -ENOSYS;
    }
#undef P
}

int64_t syscall_dispatch(struct syscall_frame *f)
{
    int64_t r = syscall_do(f);
    if (boot_info->flags & THAW_BOOT_TRACE_SYSCALLS)
        klog("syscall %lu (%lx, %lx, %lx, %lx) = %ld\n", f->nr, f->rdi, f->rsi, f->rdx, f->r10, r);
    return r;
}
