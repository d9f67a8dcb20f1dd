/* Guest memory for a restored instance, in one of the restore strategies:
 *   copy  read the whole memory file (data extents only) into fresh anonymous memory;
 *   lazy  map the memory file MAP_PRIVATE: every first touch is a host page fault on
 *         the file (the Firecracker/Catalyzer baseline);
 *   uffd  fresh anonymous memory whose data pages (the memory file's data extents) are
 *         registered with userfaultfd and handed to a pager (pager.h) with Firecracker's
 *         handshake; the pager serves each missing page; holes of the file (zero pages)
 *         and discarded ranges are left to the kernel;
 *   reap  the same, with the pager recording the working set or prefetching it;
 *   share the memory file mapped MAP_PRIVATE as in lazy, with the recorded working set's
 *         pages mapped in (read-only, from the page cache) before the vCPU runs: every
 *         page no instance wrote is one copy shared by all instances on the host.
 * The pager runs as a thread of this process, or as its own process (`thaw pager`)
 * reached through a Unix socket: the handshake is the same. The snapshot files are
 * only ever read here. */
#ifndef THAW_HOST_MEMORY_BACKEND_H
#define THAW_HOST_MEMORY_BACKEND_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>
#include <stdint.h>

#include "host/pager/pager.h"
#include "host/util/error.h"
#include "host/util/gpa_run.h"
#include "host/util/snap_identity.h"

enum mem_mode { MEM_COPY, MEM_LAZY, MEM_UFFD, MEM_REAP, MEM_SHARE };

const char *mem_mode_name(enum mem_mode m);
int mem_mode_parse(const char *s, enum mem_mode *out);

struct pager_thread;
struct pager_watch;

struct mem_backend {
    enum mem_mode mode;
    uint8_t *host;
    uint64_t size;
    int file_fd;
    uint64_t bytes_copied;          /* copy: bytes read */
    uint64_t share_pages, share_regions, share_ns; /* share: working set mapped in */
    char share_note[512];           /* share: why not all of it, if not */
    /* uffd and reap */
    int uffd;
    int pager_fd;                   /* our end of the handshake connection */
    uint64_t registered_bytes;      /* guest memory the pager serves (the file's data) */
    uint64_t registered_ranges;     /* in this many UFFDIO_REGISTER ranges */
    struct pager_thread *thread;    /* in-process pager, or NULL for an external one */
    struct pager_stats ready;       /* what the pager reported once set up */
    struct gpa_runs installed;      /* an external pager's installed pages, if it relayed them */
    bool is_ready;                  /* "ready" received (mem_backend_wait_ready) */
    /* A dead pager (pager_watch.h): the watcher closes uffd, under uffd_lock. */
    pid_t pager_pid;                /* an external pager's process, when the kernel names it */
    int pager_pidfd;                /* and its pidfd, or -1 */
    struct pager_watch *watch;
    int watch_wake_fd;              /* eventfd that stops the watcher (made once, kept: the jail makes none) */
    pthread_mutex_t uffd_lock;
    atomic_bool watch_stopping, pager_dead;
    char pager_dead_why[384];
    struct snap_identity identity;  /* the memory file's (its trailer) */
};

/* Sets up guest memory from <snap_dir>/memory (which must hold exactly size bytes of
 * image and a trailer carrying the identity want: snap_identity.h).
 * For uffd and reap, pmode is the in-process pager's mode, and pager_socket (if not
 * NULL) names an external pager to connect to instead; returns once the pager is
 * ready (any prefetch done), so the vCPU never runs before it. */
int mem_backend_open(struct mem_backend *b, enum mem_mode mode, const char *snap_dir, uint64_t size,
                     const struct snap_identity *want, enum pager_mode pmode, const char *pager_socket,
                     struct thaw_error *err);
/* The same in two steps: start returns once the pager has the memory (uffd/reap), its
 * working-set read under way; the caller sets up the VM meanwhile, without touching guest
 * memory, and calls wait_ready before anything reads or writes it (0 at once for copy
 * and lazy). A failed start has cleaned up; after a failed wait the caller closes.
 * With want NULL and size 0, start takes the size from the memory file's trailer and
 * checks nothing (the restore starts the pager before it has read the state file); the
 * caller must then call mem_backend_check before the guest runs. */
int mem_backend_start(struct mem_backend *b, enum mem_mode mode, const char *snap_dir, uint64_t size,
                      const struct snap_identity *want, enum pager_mode pmode, const char *pager_socket,
                      struct thaw_error *err);
int mem_backend_wait_ready(struct mem_backend *b, struct thaw_error *err);
/* The memory file belongs to the snapshot with identity want and holds size bytes. */
int mem_backend_check(const struct mem_backend *b, uint64_t size, const struct snap_identity *want,
                      struct thaw_error *err);
/* Makes [gpa, gpa+len) read back as zero (the guest freed it). */
int mem_backend_discard(struct mem_backend *b, uint64_t gpa, uint64_t len, struct thaw_error *err);
/* uffd/reap: asks the pager (cmd "stats" or "finish-record") and returns its stats. */
int mem_backend_pager_query(struct mem_backend *b, const char *cmd, struct pager_stats *st,
                            struct thaw_error *err);
/* After mem_backend_wait_ready: the guest pages the prefetch installed (ascending), from
 * an in-process pager or relayed by a worker's caller, or NULL (no prefetch, a pager
 * that does not say, none). */
const struct gpa_runs *mem_backend_installed(const struct mem_backend *b);
/* True if the memory file holds no data in [gpa, gpa+len): never registered with the
 * pager (uffd/reap), plain memory in every mode. */
bool mem_backend_is_hole(const struct mem_backend *b, uint64_t gpa, uint64_t len);
/* Why the in-process pager thread stopped, if it said ("" otherwise). */
void mem_backend_pager_thread_error(struct mem_backend *b, char *buf, size_t len);
/* The same in two steps: send the command, read its reply later (the pager works
 * meanwhile; nothing else may be asked in between). */
int mem_backend_pager_send(struct mem_backend *b, const char *cmd, struct thaw_error *err);
int mem_backend_pager_reply(struct mem_backend *b, struct pager_stats *st, struct thaw_error *err);
/* Stops the pager (closing the connection) and unmaps. */
void mem_backend_close(struct mem_backend *b);

#endif
