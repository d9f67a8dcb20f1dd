/* The host's memory manager: one long-running process (`thaw pager --serve`) that serves
 * the guest memory of many VMs at once, each on its own connection and thread, as
 * vHive's per-host memory manager does. A connection is one VM:
 *   VMM -> manager  optional hello line: {"snapshot": "/abs/dir", "mode": "lazy|record|prefetch",
 *                   "installed": true}\n ("mode" optional: the manager's default if absent;
 *                   "installed": send the pages a prefetch installed after "ready", pager.h)
 *   manager -> VMM  {"event":"hello"}\n, or {"event":"error","error":"..."}\n and close
 *   VMM -> manager  Firecracker's handshake (fc_handshake.h): regions + userfaultfd
 *   then the pager control protocol of pager.h until the VMM closes the connection.
 * A VMM that sends no hello (Firecracker itself) gets the manager's default snapshot
 * and mode. A hello may name only the default snapshot, or a snapshot directory beneath
 * the manager's snapshot root: the manager reads and writes files as its own user.
 * Nothing is kept per VM once its connection ends: memory and descriptors stay flat. */
#ifndef THAW_HOST_PAGER_MANAGER_H
#define THAW_HOST_PAGER_MANAGER_H

#include <stddef.h>
#include <stdint.h>

#include "host/pager/pager.h"
#include "host/util/error.h"

#define PAGER_HELLO_MAX 4096
#define PAGER_MANAGER_MAX_SESSIONS 1024

struct pager_manager_opts {
    const char *default_snapshot; /* for connections without a hello, or NULL */
    enum pager_mode default_mode;
    const char *snapshot_root;    /* hellos may name snapshots beneath it, or NULL */
    unsigned max_sessions;        /* 0: PAGER_MANAGER_MAX_SESSIONS */
    int once;                     /* serve one connection, then return (classic `thaw pager`) */
};

struct pager_manager_stats {
    uint64_t sessions;            /* connections accepted */
    uint64_t failed;              /* sessions that ended with an error */
    uint64_t refused;             /* over max_sessions */
    unsigned active;
    struct pager_stats last;      /* the last finished session's pager stats */
};

/* Accepts VMs on the listening socket listen_fd until stop_fd becomes readable (or, with
 * opts->once, after one session). Waits for running sessions before returning. */
int pager_manager_run(int listen_fd, int stop_fd, const struct pager_manager_opts *opts,
                      struct pager_manager_stats *st, struct thaw_error *err);

/* VMM side: sends the hello for snap_dir (made absolute) and mode (an enum pager_mode, or
 * -1 to leave it to the manager's default) on a connected socket and waits (up to
 * timeout_ms) for the manager's answer. */
int pager_hello(int fd, const char *snap_dir, int mode, int timeout_ms, struct thaw_error *err);

#endif
