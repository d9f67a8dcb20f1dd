/* The jail a worker process enters after it has opened everything its instance needs
 * (/dev/kvm, the VM and vCPU, guest memory, the snapshot's files, the pager connection)
 * and before the guest's first instruction runs. Learned from Firecracker's jailer
 * (namespaces, pivot_root, uid/gid drop, descriptors closed) and Solo5's
 * hvt_drop_privileges (a seccomp allowlist of what the run loop calls).
 *
 * The jailed process:
 *   - lives in fresh mount, pid, network and IPC namespaces (jail_fork creates them);
 *   - has a read-only, empty tmpfs as its root, holding only the bind mounts asked for;
 *   - keeps descriptors 0-2 and the ones listed; every other descriptor is closed;
 *   - runs as an unprivileged uid/gid with no supplementary groups, every capability
 *     dropped (bounding, effective, permitted, inheritable, ambient), no_new_privs;
 *   - is confined by a seccomp-bpf allowlist (docs/jail.md says why each entry is
 *     there), synchronized to every thread (TSYNC). A call outside it kills the
 *     process (SIGSYS); open/openat fail with EACCES instead, so code that merely
 *     probes a file fails cleanly.
 * Entering the jail cannot be undone; a failure leaves the process half-jailed, so the
 * caller must exit on error. */
#ifndef THAW_HOST_JAIL_H
#define THAW_HOST_JAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "host/util/error.h"

/* nobody:nogroup on Debian: owns nothing on the host. */
#define JAIL_DEFAULT_UID 65534
#define JAIL_DEFAULT_GID 65534

/* A host path made visible at the same path inside the jail. */
struct jail_mount {
    const char *path;
    bool writable;
};

struct jail_config {
    uid_t uid;                      /* must not be 0 */
    gid_t gid;                      /* must not be 0 */
    const struct jail_mount *mounts;
    size_t nmounts;
    const int *keep_fds;            /* kept besides 0, 1 and 2 */
    size_t nkeep_fds;
    bool trap_denied;               /* debugging: print the denied syscall number, then die */
};

/* fork() into fresh mount, pid, network and IPC namespaces: returns the child's pid in
 * the parent, 0 in the child (pid 1 of its namespace), -1 with err. */
pid_t jail_fork(struct thaw_error *err);

/* Starts exe in fresh mount, pid, network and IPC namespaces the way posix_spawn starts
 * a program: clone(CLONE_VM | CLONE_VFORK) on a stack of its own, so none of this
 * process's memory is copied (a fork of a busy multi-threaded daemon copies its page
 * tables under its mmap lock, stalling its other threads) and the calling thread waits
 * only until the exec. In the child, before execve(exe, argv, envp): setup(ctx), which
 * may make only async-signal-safe calls and must not touch the caller's memory beyond
 * reading ctx; non-zero, or a failed exec, ends the child with status 127. Returns the
 * child's pid, or -1 with err. */
pid_t jail_spawn(const char *exe, char *const argv[], char *const envp[], int (*setup)(void *ctx), void *ctx,
                 struct thaw_error *err);

/* Enters the jail (see above). Call in a process made by jail_fork while it has one
 * thread: capabilities and the bounding set are per thread (the uid change and the
 * seccomp filter would reach other threads, the capability drop would not). */
int jail_enter(const struct jail_config *cfg, struct thaw_error *err);

#endif
