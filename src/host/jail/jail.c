#include "host/jail/jail.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <linux/capability.h>
#include <linux/kvm.h>
#include <linux/userfaultfd.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) /* gcc */
#define THAW_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) /* clang */
#define THAW_ASAN 1
#endif
#endif
#ifdef THAW_ASAN
#include <sanitizer/asan_interface.h>
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define JAIL_ROOT "/tmp"   /* the tmpfs root is mounted here, in our own mount namespace */
#define OLD_ROOT ".old-root"
#define MAX_MOUNTS 16

pid_t jail_fork(struct thaw_error *err)
{
    /* A raw clone with no stack behaves like fork; glibc's fork() cannot ask for
     * namespaces, and unshare(CLONE_NEWPID) would only move our future children. */
    long pid = syscall(SYS_clone, (unsigned long)(CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | SIGCHLD),
                       NULL, NULL, NULL, NULL);
    if (pid < 0)
        return thaw_fail_errno(err, "clone into new mount, pid, network and IPC namespaces");
    return (pid_t)pid;
}

struct spawn_args {
    const char *exe;
    char *const *argv, *const *envp;
    int (*setup)(void *ctx);
    void *ctx;
    sigset_t mask; /* the caller's, for the program */
};

static int spawn_child(void *arg)
{
    const struct spawn_args *a = arg;
    /* Our handlers are the caller's code on the caller's data: none may run here. The
     * handler table is our own copy (no CLONE_SIGHAND), so this leaves the caller's. */
    for (int sig = 1; sig < NSIG; sig++) {
        struct sigaction sa;
        if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler != SIG_IGN && sa.sa_handler != SIG_DFL) {
            sa.sa_handler = SIG_DFL;
            sa.sa_flags = 0;
            sigaction(sig, &sa, NULL);
        }
    }
    if (a->setup && a->setup(a->ctx) != 0)
        _exit(127);
    sigprocmask(SIG_SETMASK, &a->mask, NULL);
    execve(a->exe, a->argv, a->envp);
    _exit(127);
}

#define SPAWN_STACK (64u << 10)

pid_t jail_spawn(const char *exe, char *const argv[], char *const envp[], int (*setup)(void *ctx), void *ctx,
                 struct thaw_error *err)
{
    char *stack = mmap(NULL, SPAWN_STACK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    if (stack == MAP_FAILED)
        return thaw_fail_errno(err, "a stack for the child");
    struct spawn_args a = {.exe = exe, .argv = argv, .envp = envp, .setup = setup, .ctx = ctx};
    /* No signal may be handled in the child before its handlers are reset: blocked
     * across the clone, the program gets the caller's mask back just before the exec. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    a.mask = old;
    int pid = clone(spawn_child, stack + SPAWN_STACK,
                    CLONE_VM | CLONE_VFORK | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | SIGCHLD, &a);
    int saved = errno;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    /* Under ASan the child's frames left their redzones in the stack's shadow, which
     * outlives the munmap: a later mapping at this address would read as poisoned. */
    UNPOISON(stack, SPAWN_STACK);
    munmap(stack, SPAWN_STACK);
    if (pid < 0) {
        errno = saved;
        return thaw_fail_errno(err, "clone into new mount, pid, network and IPC namespaces");
    }
    return (pid_t)pid;
}

/* ---- descriptors -------------------------------------------------------------------- */

static int cmp_int(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static int close_others(const int *keep, size_t n, struct thaw_error *err)
{
    int sorted[64];
    if (n > 64)
        return thaw_fail(err, "jail: too many descriptors to keep (%zu)", n);
    memcpy(sorted, keep, n * sizeof *keep);
    qsort(sorted, n, sizeof *sorted, cmp_int);
    unsigned from = 3; /* close everything from here up to the next kept descriptor */
    for (size_t i = 0; i < n; i++) {
        if (sorted[i] < 0 || (unsigned)sorted[i] < from)
            continue;
        if ((unsigned)sorted[i] > from && close_range(from, (unsigned)sorted[i] - 1, 0) < 0)
            return thaw_fail_errno(err, "jail: close_range");
        from = (unsigned)sorted[i] + 1;
    }
    if (close_range(from, ~0u, 0) < 0)
        return thaw_fail_errno(err, "jail: close_range");
    return 0;
}

/* ---- filesystem: a read-only tmpfs root with the requested bind mounts ---------------- */

static int mkdir_p(char *path, mode_t mode)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        int r = mkdir(path, mode);
        *p = '/';
        if (r < 0 && errno != EEXIST)
            return -1;
    }
    return mkdir(path, mode) < 0 && errno != EEXIST ? -1 : 0;
}

static int build_root(const struct jail_config *cfg, struct thaw_error *err)
{
    int src[MAX_MOUNTS];
    bool is_dir[MAX_MOUNTS];
    if (cfg->nmounts > MAX_MOUNTS)
        return thaw_fail(err, "jail: too many mounts (%zu)", cfg->nmounts);
    /* Open every source first: the tmpfs below may hide it (tests keep files in /tmp). */
    for (size_t i = 0; i < cfg->nmounts; i++) {
        const char *p = cfg->mounts[i].path;
        struct stat st;
        if (p[0] != '/' || strstr(p, "/../") || strlen(p) > 1024)
            return thaw_fail(err, "jail: mount path must be absolute and plain: %s", p);
        src[i] = open(p, O_PATH | O_CLOEXEC);
        if (src[i] < 0 || fstat(src[i], &st) < 0)
            return thaw_fail_errno(err, "jail: cannot open %s", p);
        is_dir[i] = S_ISDIR(st.st_mode);
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
        return thaw_fail_errno(err, "jail: making mounts private");
    if (mount("thaw-jail", JAIL_ROOT, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=64k,mode=0755") < 0)
        return thaw_fail_errno(err, "jail: mounting the tmpfs root on " JAIL_ROOT);
    for (size_t i = 0; i < cfg->nmounts; i++) {
        char target[1100], from[64];
        snprintf(target, sizeof target, JAIL_ROOT "%s", cfg->mounts[i].path);
        if (is_dir[i]) {
            if (mkdir_p(target, 0755) < 0)
                return thaw_fail_errno(err, "jail: mkdir %s", target);
        } else {
            char *slash = strrchr(target, '/');
            *slash = 0;
            int r = slash == target ? 0 : mkdir_p(target, 0755);
            *slash = '/';
            int fd = r < 0 ? -1 : open(target, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
            if (fd < 0)
                return thaw_fail_errno(err, "jail: creating mount point %s", target);
            close(fd);
        }
        snprintf(from, sizeof from, "/proc/self/fd/%d", src[i]);
        if (mount(from, target, NULL, MS_BIND, NULL) < 0)
            return thaw_fail_errno(err, "jail: bind-mounting %s", cfg->mounts[i].path);
        unsigned long fl = MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV | MS_NOEXEC;
        if (!cfg->mounts[i].writable)
            fl |= MS_RDONLY;
        if (mount(NULL, target, NULL, fl, NULL) < 0)
            return thaw_fail_errno(err, "jail: restricting the mount of %s", cfg->mounts[i].path);
        close(src[i]);
    }
    if (mkdir(JAIL_ROOT "/" OLD_ROOT, 0700) < 0)
        return thaw_fail_errno(err, "jail: mkdir " OLD_ROOT);
    if (syscall(SYS_pivot_root, JAIL_ROOT, JAIL_ROOT "/" OLD_ROOT) < 0)
        return thaw_fail_errno(err, "jail: pivot_root");
    if (chdir("/") < 0)
        return thaw_fail_errno(err, "jail: chdir /");
    if (umount2("/" OLD_ROOT, MNT_DETACH) < 0)
        return thaw_fail_errno(err, "jail: detaching the old root");
    if (rmdir("/" OLD_ROOT) < 0)
        return thaw_fail_errno(err, "jail: rmdir " OLD_ROOT);
    if (mount(NULL, "/", NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
        return thaw_fail_errno(err, "jail: making the root read-only");
    return 0;
}

/* ---- credentials ---------------------------------------------------------------------- */

static int drop_privileges(const struct jail_config *cfg, struct thaw_error *err)
{
    /* The bounding set needs CAP_SETPCAP to shrink: before the uid change. */
    for (int cap = 0; cap <= 63; cap++)
        if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL)
            return thaw_fail_errno(err, "jail: dropping capability %d from the bounding set", cap);
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
        return thaw_fail_errno(err, "jail: clearing ambient capabilities");
    if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
        return thaw_fail_errno(err, "jail: PR_SET_KEEPCAPS");
    if (setgroups(0, NULL) < 0)
        return thaw_fail_errno(err, "jail: setgroups");
    if (setresgid(cfg->gid, cfg->gid, cfg->gid) < 0)
        return thaw_fail_errno(err, "jail: setresgid(%u)", (unsigned)cfg->gid);
    if (setresuid(cfg->uid, cfg->uid, cfg->uid) < 0)
        return thaw_fail_errno(err, "jail: setresuid(%u)", (unsigned)cfg->uid);
    /* Leaving uid 0 cleared permitted and effective; clear inheritable too, and check. */
    struct __user_cap_header_struct h = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
    struct __user_cap_data_struct d[2];
    memset(d, 0, sizeof d);
    if (syscall(SYS_capset, &h, d) < 0)
        return thaw_fail_errno(err, "jail: capset");
    if (syscall(SYS_capget, &h, d) < 0)
        return thaw_fail_errno(err, "jail: capget");
    for (int i = 0; i < 2; i++)
        if (d[i].effective || d[i].permitted || d[i].inheritable)
            return thaw_fail(err, "jail: capabilities remain after the drop");
    uid_t r, e, s;
    if (getresuid(&r, &e, &s) < 0 || r != cfg->uid || e != cfg->uid || s != cfg->uid)
        return thaw_fail(err, "jail: the uid did not change");
    /* A credential change clears the parent-death signal: set it again. Not dumpable:
     * no other process of this uid may ptrace us or read our memory. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0 || prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        return thaw_fail_errno(err, "jail: prctl");
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return thaw_fail_errno(err, "jail: PR_SET_NO_NEW_PRIVS");
    return 0;
}

/* ---- seccomp ---------------------------------------------------------------------------- */

/* What the run loop of a restored or booted instance calls; docs/jail.md gives the
 * reason for each. Anything else kills the process. */
static const int allowed_syscalls[] = {
    /* the worker protocol, guest console lines, pager control lines */
    SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev), SCMP_SYS(pread64),
    SCMP_SYS(pwrite64), SCMP_SYS(sendmsg), SCMP_SYS(recvmsg), SCMP_SYS(sendto), SCMP_SYS(recvfrom),
    SCMP_SYS(poll), SCMP_SYS(ppoll), SCMP_SYS(close), SCMP_SYS(lseek), SCMP_SYS(fstat),
    SCMP_SYS(newfstatat), SCMP_SYS(fcntl), SCMP_SYS(shutdown),
    /* memory: malloc, guest memory discards (madvise, remap of a lazy range) */
    SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(madvise), SCMP_SYS(brk),
    /* threads, locks, deadlines */
    SCMP_SYS(futex), SCMP_SYS(set_robust_list), SCMP_SYS(rseq), SCMP_SYS(sched_yield),
    SCMP_SYS(sched_getaffinity), SCMP_SYS(clock_gettime), SCMP_SYS(clock_getres), SCMP_SYS(gettimeofday),
    SCMP_SYS(clock_nanosleep), SCMP_SYS(nanosleep), SCMP_SYS(timer_create), SCMP_SYS(timer_settime),
    SCMP_SYS(timer_gettime), SCMP_SYS(timer_delete), SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask),
    SCMP_SYS(rt_sigreturn), SCMP_SYS(sigaltstack), SCMP_SYS(tgkill), SCMP_SYS(tkill), SCMP_SYS(getpid),
    SCMP_SYS(gettid), SCMP_SYS(restart_syscall), SCMP_SYS(getrusage), SCMP_SYS(getrandom),
    SCMP_SYS(exit), SCMP_SYS(exit_group),
};

/* ioctl requests, by number (the run loop's KVM calls, snapshot saves, discards). */
static const unsigned long allowed_ioctls[] = {
    KVM_RUN, KVM_GET_REGS, KVM_SET_REGS, KVM_GET_SREGS, KVM_SET_SREGS, KVM_GET_MSRS, KVM_SET_MSRS,
    KVM_GET_FPU, KVM_GET_XCRS, KVM_GET_XSAVE, KVM_GET_DEBUGREGS, KVM_GET_MP_STATE, KVM_GET_VCPU_EVENTS,
    KVM_GET_MSR_INDEX_LIST, KVM_CHECK_EXTENSION, KVM_GET_TSC_KHZ,
    UFFDIO_UNREGISTER, UFFDIO_ZEROPAGE,
};

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
    (void)sig;
    (void)uc;
    char msg[64] = "thaw jail: denied syscall ";
    size_t n = strlen(msg);
    char digits[12];
    int k = 0, nr = si->si_syscall;
    do
        digits[k++] = (char)('0' + nr % 10);
    while ((nr /= 10) && k < 11);
    while (k)
        msg[n++] = digits[--k];
    msg[n++] = '\n';
    (void)!write(STDERR_FILENO, msg, n);
    _exit(128 + SIGSYS);
}

static int load_seccomp(const struct jail_config *cfg, struct thaw_error *err)
{
    scmp_filter_ctx ctx = seccomp_init(cfg->trap_denied ? SCMP_ACT_TRAP : SCMP_ACT_KILL_PROCESS);
    if (!ctx)
        return thaw_fail(err, "jail: seccomp_init failed");
    int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
    const char *what = "TSYNC";
    for (size_t i = 0; !rc && i < sizeof allowed_syscalls / sizeof *allowed_syscalls; i++) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, allowed_syscalls[i], 0);
        what = "a syscall rule";
    }
    for (size_t i = 0; !rc && i < sizeof allowed_ioctls / sizeof *allowed_ioctls; i++) {
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                              SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, allowed_ioctls[i]));
        what = "an ioctl rule";
    }
    if (!rc) { /* stdio asks whether stderr is a terminal: say no */
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOTTY), SCMP_SYS(ioctl), 1,
                              SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, TCGETS));
        what = "the TCGETS rule";
    }
    if (!rc) { /* memory, never executable: no code can be mapped in */
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1, SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
        if (!rc)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
                                  SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
        what = "the mmap rules";
    }
    if (!rc) { /* threads only, never a new process; clone3 hides its flags in memory */
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                              SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
        if (!rc)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
        what = "the clone rules";
    }
    if (!rc) { /* a helper thread placed on another CPU (util/thread_spread.h) starts plain */
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(sched_setaffinity), 0);
        what = "the sched_setaffinity rule";
    }
    if (!rc) { /* the root is empty anyway; a clean error beats a dead worker */
        rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(openat), 0);
        if (!rc)
            rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(open), 0);
        what = "the open rules";
    }
    if (!rc && cfg->trap_denied) {
        struct sigaction sa = {.sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO};
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGSYS, &sa, NULL) < 0) {
            seccomp_release(ctx);
            return thaw_fail_errno(err, "jail: sigaction(SIGSYS)");
        }
    }
    if (!rc) {
        rc = seccomp_load(ctx);
        what = "loading the filter";
    }
    seccomp_release(ctx);
    if (rc)
        return thaw_fail(err, "jail: seccomp: %s failed: %s", what, strerror(-rc));
    return 0;
}

int jail_enter(const struct jail_config *cfg, struct thaw_error *err)
{
    if (cfg->uid == 0 || cfg->gid == 0)
        return thaw_fail(err, "jail: refusing to jail as uid/gid 0");
    if (close_others(cfg->keep_fds, cfg->nkeep_fds, err) < 0 || build_root(cfg, err) < 0 ||
        drop_privileges(cfg, err) < 0 || load_seccomp(cfg, err) < 0)
        return -1;
    return 0;
}
