#include "host/snapshot/memory_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "host/pager/fc_handshake.h"
#include "host/pager/manager.h"
#include "host/pager/reap.h"
#include "host/snapshot/pager_watch.h"
#include "host/util/clock.h"
#include "host/util/file.h"
#include "host/util/snapdir.h"
#include "host/util/thread_spread.h"

#define PAGE 4096ull
#define PAGER_REPLY_TIMEOUT_MS 30000

const char *mem_mode_name(enum mem_mode m)
{
    return m == MEM_COPY ? "copy" : m == MEM_LAZY ? "lazy" : m == MEM_UFFD ? "uffd" : m == MEM_REAP ? "reap" : "share";
}

int mem_mode_parse(const char *s, enum mem_mode *out)
{
    static const char *const names[] = {"copy", "lazy", "uffd", "reap", "share"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, names[i])) {
            *out = (enum mem_mode)i;
            return 0;
        }
    return -1;
}

/* copy: read only the file's data extents; holes stay untouched zero memory. */
static int copy_in(struct mem_backend *b, struct thaw_error *err)
{
    off_t off = 0;
    for (;;) {
        off_t data = lseek(b->file_fd, off, SEEK_DATA);
        if (data < 0) {
            if (errno == ENXIO)
                return 0;
            return thaw_fail_errno(err, "lseek(SEEK_DATA) on the memory file");
        }
        if ((uint64_t)data >= b->size) /* the identity trailer */
            return 0;
        off_t hole = lseek(b->file_fd, data, SEEK_HOLE);
        if (hole < 0)
            return thaw_fail_errno(err, "lseek(SEEK_HOLE) on the memory file");
        if ((uint64_t)hole > b->size)
            hole = (off_t)b->size;
        for (off_t p = data; p < hole;) {
            ssize_t n = pread(b->file_fd, b->host + p, (size_t)(hole - p), p);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return thaw_fail_errno(err, "reading the memory file");
            p += n;
            b->bytes_copied += (uint64_t)n;
        }
        off = hole;
    }
}

/* ---- the in-process pager: a thread on the far end of a socketpair --------------- */

struct pager_thread {
    pthread_t tid;
    int fd;                 /* the pager's end of the connection */
    char snap_dir[4096];
    enum pager_mode mode;
    uint64_t file_size;
    bool read_first;        /* issue the working-set read before waiting for the handshake */
    struct reap_ws_read *early; /* that read (handed to the pager) */
    struct gpa_runs installed;  /* what a prefetch put in, written before "ready" */
    struct thaw_error err;  /* why the pager stopped early, if it did */
    int rc;
};

static void *pager_thread_main(void *arg)
{
    struct pager_thread *t = arg;
    struct fc_region r[8];
    size_t n = 0;
    int uffd;
    t->rc = -1;
    /* A REAP prefetch: the working-set read goes to the disk before anything else, from
     * this thread, which waits for it too (io_uring posts a completion through the task
     * that issued the read: issued by the VMM's thread, a completion would wait for that
     * thread to get a CPU). If it cannot be issued, the prefetch tries again and says why. */
    if (t->read_first) {
        struct thaw_error ignored;
        (void)reap_ws_read_begin(t->snap_dir, &t->early, &ignored);
    }
    /* The memory's size is known once the handshake is sent (file_size is set before). */
    if (fc_recv_handshake(t->fd, r, 8, &n, &uffd, FC_FILE_SIZE_UNCHECKED, &t->err) == 0) {
        bool inside = true;
        for (size_t i = 0; i < n; i++)
            inside = inside && r[i].offset <= t->file_size && r[i].size <= t->file_size - r[i].offset;
        if (!inside) {
            thaw_fail(&t->err, "the handshake's regions exceed the memory file");
        } else {
            struct pager_stats st;
            t->rc = pager_serve_in_process(uffd, r, n, t->snap_dir, t->mode, t->fd, t->early, &t->installed, &st,
                                           &t->err);
            t->early = NULL;
        }
        close(uffd);
    }
    reap_ws_read_free(t->early);
    t->early = NULL;
    /* Closing our end tells a VMM still waiting for a reply that we are gone. */
    shutdown(t->fd, SHUT_RDWR);
    return NULL;
}

/* Started first thing in a restore (before the memory is set up), so that its start and
 * any working-set read overlap the set-up; it waits for the handshake. */
static int start_pager_thread(struct mem_backend *b, const char *snap_dir, enum pager_mode mode, bool read_first,
                              struct thaw_error *err)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return thaw_fail_errno(err, "socketpair for the pager");
    struct pager_thread *t = calloc(1, sizeof *t);
    if (!t) {
        close(sv[0]);
        close(sv[1]);
        return thaw_fail(err, "out of memory");
    }
    t->fd = sv[1];
    t->mode = mode;
    t->read_first = read_first;
    snprintf(t->snap_dir, sizeof t->snap_dir, "%s", snap_dir);
    if (thread_start_spread(&t->tid, pager_thread_main, t, SPREAD_START) != 0) {
        close(sv[0]);
        close(sv[1]);
        free(t);
        return thaw_fail(err, "cannot start the pager thread");
    }
    b->thread = t;
    b->pager_fd = sv[0];
    return 0;
}

/* An external pager is a memory manager (manager.h) that may serve many snapshots: the
 * hello names this one, and for reap the pager mode this restore chose. */
static int connect_pager(struct mem_backend *b, const char *path, const char *snap_dir, enum mem_mode mode,
                         enum pager_mode pmode, struct thaw_error *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path)
        return thaw_fail(err, "pager socket path too long: %s", path);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    b->pager_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (b->pager_fd < 0 || connect(b->pager_fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        return thaw_fail_errno(err, "cannot connect to the pager at %s", path);
    /* Its process, for the pager watcher (pager_watch.h): opened now, while the process
     * may still open things (a worker's jail comes later). A pager outside our pid
     * namespace has pid 0 here: then the connection alone tells. */
    struct ucred cr;
    socklen_t crlen = sizeof cr;
    if (getsockopt(b->pager_fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) == 0 && cr.pid > 0) {
        b->pager_pid = cr.pid;
        b->pager_pidfd = (int)syscall(SYS_pidfd_open, cr.pid, 0);
    }
    return pager_hello(b->pager_fd, snap_dir, mode == MEM_REAP ? (int)pmode : -1, PAGER_REPLY_TIMEOUT_MS, err);
}

/* Reads one control line from the pager, waiting at most PAGER_REPLY_TIMEOUT_MS. The
 * line is peeked first and only its bytes are consumed (nothing after its '\n': a worker's
 * caller shares this connection's later lines): three syscalls for a reply of ~500 bytes,
 * where reading it byte by byte cost two per byte, 1-2 ms of every restore's wait for
 * "ready" on this machine. */
static int read_pager_line(struct mem_backend *b, char *line, size_t cap, struct thaw_error *err)
{
    size_t len = 0;
    while (len + 1 < cap) {
        struct pollfd p = {.fd = b->pager_fd, .events = POLLIN};
        int k = poll(&p, 1, PAGER_REPLY_TIMEOUT_MS);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return thaw_fail(err, "the pager did not answer within %d s", PAGER_REPLY_TIMEOUT_MS / 1000);
        ssize_t n = recv(b->pager_fd, line + len, cap - 1 - len, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            if (b->thread && b->thread->err.msg[0])
                return thaw_fail(err, "pager stopped: %s", b->thread->err.msg);
            return thaw_fail(err, "the pager closed the connection");
        }
        char *nl = memchr(line + len, '\n', (size_t)n);
        size_t take = nl ? (size_t)(nl - (line + len)) + 1 : (size_t)n;
        ssize_t got;
        do
            got = recv(b->pager_fd, line + len, take, MSG_DONTWAIT);
        while (got < 0 && errno == EINTR);
        if (got != (ssize_t)take) /* we are the only reader: what was peeked is there */
            return thaw_fail_errno(err, "reading the pager's reply");
        len += take;
        if (nl) {
            line[len - 1] = 0;
            return 0;
        }
    }
    return thaw_fail(err, "the pager sent an over-long line");
}

/* A "ready" with installed_runs > 0 (from the memory manager, whose hello asked, or a
 * worker's caller relaying its pager's) is followed by the pages the prefetch
 * installed, (gpa, pages) pairs; they must lie in guest memory. They only feed the
 * pre-fault vCPU: bad ones are dropped, never an error. */
#define MAX_INSTALLED_RUNS (1u << 20)
static int read_installed(struct mem_backend *b, uint64_t runs, struct thaw_error *err)
{
    if (runs > MAX_INSTALLED_RUNS)
        return thaw_fail(err, "the pager announced %llu installed runs", (unsigned long long)runs);
    struct gpa_run *v = malloc(runs * sizeof *v);
    if (!v)
        return thaw_fail(err, "out of memory");
    uint8_t *at = (uint8_t *)v;
    for (size_t left = runs * sizeof *v; left;) {
        struct pollfd p = {.fd = b->pager_fd, .events = POLLIN};
        int k = poll(&p, 1, PAGER_REPLY_TIMEOUT_MS);
        if (k < 0 && errno == EINTR)
            continue;
        ssize_t got = k > 0 ? recv(b->pager_fd, at, left, MSG_DONTWAIT) : -1;
        if (got < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (got <= 0) {
            free(v);
            return thaw_fail(err, "the pager's installed pages did not arrive");
        }
        at += got;
        left -= (size_t)got;
    }
    uint64_t n = 0;
    for (uint64_t i = 0; i < runs; i++)
        if (v[i].gpa % PAGE == 0 && v[i].pages && v[i].gpa < b->size && v[i].pages <= (b->size - v[i].gpa) / PAGE)
            v[n++] = v[i];
    b->installed = (struct gpa_runs){.v = v, .n = n, .cap = runs};
    return 0;
}

static int wait_ready(struct mem_backend *b, struct thaw_error *err)
{
    char line[4096];
    if (read_pager_line(b, line, sizeof line, err) < 0)
        return -1;
    const char *ev = pager_stats_parse(line, &b->ready, err);
    if (!ev)
        return -1;
    if (strcmp(ev, "ready"))
        return thaw_fail(err, "pager said \"%s\" before \"ready\"", ev);
    if (b->ready.installed_runs && !b->thread && read_installed(b, b->ready.installed_runs, err) < 0)
        return -1;
    return 0;
}

int mem_backend_pager_send(struct mem_backend *b, const char *cmd, struct thaw_error *err)
{
    if (b->pager_fd < 0)
        return thaw_fail(err, "no pager for %s memory", mem_mode_name(b->mode));
    char req[64];
    int n = snprintf(req, sizeof req, "%s\n", cmd);
    if (send(b->pager_fd, req, (size_t)n, MSG_NOSIGNAL) != n)
        return thaw_fail_errno(err, "sending \"%s\" to the pager", cmd);
    return 0;
}

int mem_backend_pager_reply(struct mem_backend *b, struct pager_stats *st, struct thaw_error *err)
{
    char line[4096];
    if (read_pager_line(b, line, sizeof line, err) < 0)
        return -1;
    return pager_stats_parse(line, st, err) ? 0 : -1;
}

int mem_backend_pager_query(struct mem_backend *b, const char *cmd, struct pager_stats *st, struct thaw_error *err)
{
    if (mem_backend_pager_send(b, cmd, err) < 0)
        return -1;
    return mem_backend_pager_reply(b, st, err);
}

/* Registers with userfaultfd only the pages that hold data in the snapshot: the data
 * extents of the sparse memory file. Holes (the snapshot's zero pages) stay plain
 * anonymous memory that the kernel fills at ordinary fault cost: they never reach the
 * pager, nor a working set. A hole shorter than HOLE_MERGE_PAGES is registered with its
 * neighbours (one VMA and one ioctl fewer; the pager serves it as zero bytes from the
 * file). A file system without SEEK_DATA gets everything registered. */
#define HOLE_MERGE_PAGES 16

static int register_range(struct mem_backend *b, uint64_t start, uint64_t end, struct thaw_error *err)
{
    struct uffdio_register reg = {.range = {.start = (uint64_t)(uintptr_t)b->host + start, .len = end - start},
                                  .mode = UFFDIO_REGISTER_MODE_MISSING};
    if (ioctl(b->uffd, UFFDIO_REGISTER, &reg) < 0)
        return thaw_fail_errno(err, "UFFDIO_REGISTER of guest memory [%#llx, %#llx)", (unsigned long long)start,
                               (unsigned long long)end);
    b->registered_ranges++;
    b->registered_bytes += end - start;
    return 0;
}

static int register_data(struct mem_backend *b, struct thaw_error *err)
{
    uint64_t run_start = 0, run_end = 0; /* the range being built, empty if equal */
    off_t off = 0;
    while ((uint64_t)off < b->size) {
        off_t data = lseek(b->file_fd, off, SEEK_DATA);
        if (data < 0 && errno == ENXIO)
            break; /* no data after off */
        if (data < 0) /* no SEEK_DATA here: every page may hold data */
            return register_range(b, 0, b->size, err);
        if ((uint64_t)data >= b->size) /* the identity trailer after the image */
            break;
        off_t hole = lseek(b->file_fd, data, SEEK_HOLE);
        if (hole < 0)
            return thaw_fail_errno(err, "lseek(SEEK_HOLE) on the memory file");
        uint64_t s = (uint64_t)data & ~(PAGE - 1), e = ((uint64_t)hole + PAGE - 1) & ~(PAGE - 1);
        if (e > b->size)
            e = b->size;
        if (run_end > run_start && s - run_end < HOLE_MERGE_PAGES * PAGE) {
            run_end = e;
        } else {
            if (run_end > run_start && register_range(b, run_start, run_end, err) < 0)
                return -1;
            run_start = s;
            run_end = e;
        }
        off = hole;
    }
    if (run_end > run_start)
        return register_range(b, run_start, run_end, err);
    return 0;
}

#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1 << 16) /* Linux 6.8; Debian 12's headers predate it */
#endif

static int uffd_setup(struct mem_backend *b, const char *snap_dir, enum pager_mode pmode, const char *pager_socket,
                      struct thaw_error *err)
{
    /* A pager thread may move pages in (UFFDIO_MOVE: the prefetch hands over the pages
     * its read filled instead of copying them); a kernel without it gets the plain set.
     * A pager in another process cannot move from its own memory: not offered. */
    uint64_t features[2] = {UFFD_FEATURE_EVENT_REMOVE | (pager_socket ? 0 : UFFD_FEATURE_MOVE), UFFD_FEATURE_EVENT_REMOVE};
    for (int k = pager_socket ? 1 : 0; k < 2; k++) {
        if (b->uffd >= 0)
            close(b->uffd);
        b->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
        if (b->uffd < 0)
            return thaw_fail_errno(err, "userfaultfd (needs root or vm.unprivileged_userfaultfd)");
        struct uffdio_api api = {.api = UFFD_API, .features = features[k]};
        if (ioctl(b->uffd, UFFDIO_API, &api) == 0)
            break;
        if (k == 1 || errno != EINVAL)
            return thaw_fail_errno(err, "UFFDIO_API");
    }
    if (register_data(b, err) < 0)
        return -1;
    if (pager_socket && connect_pager(b, pager_socket, snap_dir, b->mode, pmode, err) < 0)
        return -1;
    if (b->thread) /* started already; it reads this once the handshake is in */
        b->thread->file_size = b->size;
    /* Firecracker's handshake: one region, guest-physical 0 at the start of the file
     * (faults come only from its registered parts). */
    struct fc_region region = {.base_host_virt_addr = (uint64_t)(uintptr_t)b->host, .size = b->size,
                               .offset = 0, .page_size = PAGE};
    return fc_send_handshake(b->pager_fd, &region, 1, b->uffd, err);
}

/* Anonymous guest memory aligned to 2 MiB and advised MADV_HUGEPAGE (unless
 * THAW_HUGEPAGES=0): wherever the kernel fills whole 2 MiB ranges itself (copy mode, and
 * the never-registered holes in uffd/reap), it can use huge pages, and the shadow MMU then
 * maps 2 MiB per first touch instead of 4 KiB. The alignment makes guest-physical and host
 * 2 MiB boundaries coincide. Pages the pager installs are 4 KiB either way. */
#define HUGE (2ull << 20)

static uint8_t *map_anonymous(uint64_t size)
{
    uint64_t len = size + HUGE;
    uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    uint8_t *a = (uint8_t *)(((uintptr_t)p + HUGE - 1) & ~(uintptr_t)(HUGE - 1));
    if (a > p)
        munmap(p, (size_t)(a - p));
    if (a + size < p + len)
        munmap(a + size, (size_t)(p + len - (a + size)));
    const char *thp = getenv("THAW_HUGEPAGES");
    if (!thp || strcmp(thp, "0"))
        (void)madvise(a, size, MADV_HUGEPAGE); /* advice only: without THP, 4 KiB pages */
    return a;
}

/* share: guest memory is the memory file mapped MAP_PRIVATE, as in lazy, so every page
 * no instance wrote is one page-cache page for all instances of the snapshot on the host
 * (a write copies it, for that instance only). The working set (the ws.pages index; its
 * copies of the pages are not read) is mapped in before the vCPU runs: one read-ahead
 * request per run, all queued before the first is waited for, then MADV_POPULATE_READ,
 * which maps the page-cache pages read-only without a fault per page. Without a usable
 * working set this is lazy, and share_note says why. */
/* The kernel maps up to 16 pages around each file fault that are in the page cache
 * already ("fault-around"): cheap, but each instance would then map (and be charged for)
 * pages it never touches. A VMA registered for userfaultfd write-protection gets no
 * fault-around; with UFFD_FEATURE_WP_ASYNC any file mapping can be registered and the
 * kernel resolves write-protect faults itself, and since nothing is ever write-protected,
 * none happen: no handler is needed. Best effort (without it, more pages are mapped). */
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15) /* Linux 6.7; Debian 12's headers predate it */
#endif


static void no_fault_around(struct mem_backend *b)
{
    const char *fa = getenv("THAW_SHARE_FAULT_AROUND");
    if (fa && !strcmp(fa, "1"))
        return;
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC};
    struct uffdio_register reg = {.range = {.start = (uint64_t)(uintptr_t)b->host, .len = b->size},
                                  .mode = UFFDIO_REGISTER_MODE_WP};
    if (fd < 0 || ioctl(fd, UFFDIO_API, &api) < 0 || ioctl(fd, UFFDIO_REGISTER, &reg) < 0) {
        if (fd >= 0)
            close(fd);
        return;
    }
    b->uffd = fd; /* the registration lasts while it is open */
}

static void share_map_working_set(struct mem_backend *b, const char *snap_dir, const struct snap_identity *id)
{
    uint64_t t0 = clock_now_ns(), *gpa, n;
    struct thaw_error err;
    if (reap_ws_read_index(snap_dir, b->size, id, &gpa, &n, &err) < 0) {
        snprintf(b->share_note, sizeof b->share_note, "no working set mapped (%.400s): served like lazy", err.msg);
        return;
    }
    no_fault_around(b);
    for (int pass = 0; pass < 2; pass++)
        for (uint64_t i = 0; i < n;) {
            uint64_t j = i + 1;
            while (j < n && gpa[j] == gpa[j - 1] + PAGE)
                j++;
            uint64_t len = (j - i) * PAGE;
            if (pass == 0) {
                (void)posix_fadvise(b->file_fd, (off_t)gpa[i], (off_t)len, POSIX_FADV_WILLNEED);
            } else {
                if (madvise(b->host + gpa[i], len, MADV_POPULATE_READ) == 0)
                    b->share_pages += j - i;
                b->share_regions++;
            }
            i = j;
        }
    free(gpa);
    b->share_ns = clock_now_ns() - t0;
    if (b->share_pages < n)
        snprintf(b->share_note, sizeof b->share_note, "%llu of %llu working-set pages mapped",
                 (unsigned long long)b->share_pages, (unsigned long long)n);
}

int mem_backend_open(struct mem_backend *b, enum mem_mode mode, const char *snap_dir, uint64_t size,
                     const struct snap_identity *want, enum pager_mode pmode, const char *pager_socket, struct thaw_error *err)
{
    if (mem_backend_start(b, mode, snap_dir, size, want, pmode, pager_socket, err) < 0)
        return -1;
    if (mem_backend_wait_ready(b, err) < 0) {
        mem_backend_close(b);
        return -1;
    }
    return 0;
}

int mem_backend_wait_ready(struct mem_backend *b, struct thaw_error *err)
{
    if (b->pager_fd < 0 || b->is_ready)
        return 0;
    if (wait_ready(b, err) < 0)
        return -1;
    b->is_ready = true;
    return 0;
}

static int mem_backend_check_image(const char *path, uint64_t image, const struct snap_identity *got, uint64_t size,
                                   const struct snap_identity *want, struct thaw_error *err)
{
    if (!want || !snap_identity_equal(got, want)) {
        char a[96], w[96] = "none";
        snap_identity_str(got, a, sizeof a);
        if (want)
            snap_identity_str(want, w, sizeof w);
        return thaw_fail(err, "%s belongs to another snapshot (%s; the state is %s)", path, a, w);
    }
    if (image != size)
        return thaw_fail(err, "memory file %s holds %llu bytes, the snapshot says %llu", path,
                         (unsigned long long)image, (unsigned long long)size);
    return 0;
}

int mem_backend_check(const struct mem_backend *b, uint64_t size, const struct snap_identity *want,
                      struct thaw_error *err)
{
    return mem_backend_check_image("the memory file", b->size, &b->identity, size, want, err);
}

int mem_backend_start(struct mem_backend *b, enum mem_mode mode, const char *snap_dir, uint64_t size,
                      const struct snap_identity *want, enum pager_mode pmode, const char *pager_socket,
                      struct thaw_error *err)
{
    memset(b, 0, sizeof *b);
    b->mode = mode;
    b->size = size;
    b->uffd = b->pager_fd = b->pager_pidfd = b->watch_wake_fd = -1;
    pthread_mutex_init(&b->uffd_lock, NULL);
    /* A pager thread first: its start, and for a REAP prefetch its working-set read, then
     * overlap everything below, the state file's read and the VM's set-up (the pager
     * installs the pages as they land). THAW_REAP_EARLY=0 leaves the read until after
     * the handshake (to compare). */
    const char *ee = getenv("THAW_REAP_EARLY");
    bool read_first = mode == MEM_REAP && (pmode == PAGER_PREFETCH || pmode == PAGER_MERGE) && !(ee && !strcmp(ee, "0"));
    if ((mode == MEM_UFFD || mode == MEM_REAP) && !pager_socket &&
        start_pager_thread(b, snap_dir, pmode, read_first, err) < 0)
        return -1;
    char path[4096];
    snprintf(path, sizeof path, "%s/" SNAPDIR_MEMORY, snap_dir);
    b->file_fd = file_open_regular(AT_FDCWD, path, O_RDONLY | O_NOFOLLOW, 0, err);
    if (b->file_fd < 0)
        goto fail;
    struct stat st;
    uint64_t image;
    struct snap_identity got;
    if (fstat(b->file_fd, &st) < 0) {
        thaw_fail_errno(err, "cannot stat %s", path);
        goto fail;
    }
    if (memory_trailer_read(b->file_fd, (uint64_t)st.st_size, path, &image, &got, err) < 0)
        goto fail;
    b->identity = got;
    if (!want && size == 0) {
        size = b->size = image; /* checked later (mem_backend_check) */
    } else if (mem_backend_check_image(path, image, &got, size, want, err) < 0) {
        goto fail;
    }
    if (mode == MEM_LAZY || mode == MEM_SHARE)
        b->host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, b->file_fd, 0);
    else
        b->host = map_anonymous(size);
    if (!b->host || b->host == MAP_FAILED) {
        b->host = NULL;
        thaw_fail_errno(err, "cannot map %llu bytes of guest memory", (unsigned long long)size);
        goto fail;
    }
    if (mode == MEM_COPY && copy_in(b, err) < 0)
        goto fail;
    if (mode == MEM_SHARE)
        share_map_working_set(b, snap_dir, &b->identity); /* the trailer's, checked against the state */
    if ((mode == MEM_UFFD || mode == MEM_REAP) && uffd_setup(b, snap_dir, pmode, pager_socket, err) < 0)
        goto fail;
    return 0;
fail:
    mem_backend_close(b); /* a pager thread waiting for its handshake stops */
    return -1;
}

int mem_backend_discard(struct mem_backend *b, uint64_t gpa, uint64_t len, struct thaw_error *err)
{
    if (b->mode == MEM_LAZY || b->mode == MEM_SHARE) {
        /* DONTNEED on a private file mapping would bring back the snapshot's bytes:
         * replace the range with fresh anonymous memory instead. */
        void *p = mmap(b->host + gpa, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (p == MAP_FAILED)
            return thaw_fail_errno(err, "remapping discarded guest memory");
        return 0;
    }
    /* uffd/reap: unregister the range first, so that it becomes plain anonymous memory:
     * dropping it sends no REMOVE event (a synchronous trip to the pager), and the guest's
     * reuse of it, which comes at once, costs ordinary in-kernel faults.
     * If that fails (too many VMAs), the pager reads the REMOVE event and serves the
     * range as zero pages: slower, still right. */
    pthread_mutex_lock(&b->uffd_lock); /* the pager watcher may close uffd */
    if (b->uffd >= 0) {
        struct uffdio_range r = {.start = (uint64_t)(uintptr_t)b->host + gpa, .len = len};
        (void)ioctl(b->uffd, UFFDIO_UNREGISTER, &r);
    }
    pthread_mutex_unlock(&b->uffd_lock);
    if (madvise(b->host + gpa, len, MADV_DONTNEED) < 0)
        return thaw_fail_errno(err, "madvise(MADV_DONTNEED) of guest memory");
    return 0;
}

const struct gpa_runs *mem_backend_installed(const struct mem_backend *b)
{
    /* The pager thread wrote its list before its "ready", which is_ready says was read;
     * an external pager's came after its "ready" (read_installed). */
    if (!b->is_ready)
        return NULL;
    const struct gpa_runs *r = b->thread ? &b->thread->installed : &b->installed;
    return r->n ? r : NULL;
}

bool mem_backend_is_hole(const struct mem_backend *b, uint64_t gpa, uint64_t len)
{
    if (b->file_fd < 0 || gpa > b->size || len > b->size - gpa)
        return false;
    off_t data = lseek(b->file_fd, (off_t)gpa, SEEK_DATA);
    return (data < 0 && errno == ENXIO) || (data >= 0 && (uint64_t)data >= gpa + len);
}

void mem_backend_pager_thread_error(struct mem_backend *b, char *buf, size_t len)
{
    snprintf(buf, len, "%s", b->thread ? b->thread->err.msg : "");
}

void mem_backend_close(struct mem_backend *b)
{
    pager_watch_stop(b); /* before the connection closes on purpose */
    if (b->watch_wake_fd >= 0)
        close(b->watch_wake_fd);
    b->watch_wake_fd = -1;
    if (b->pager_pidfd >= 0)
        close(b->pager_pidfd);
    b->pager_pidfd = -1;
    if (b->pager_fd >= 0)
        close(b->pager_fd); /* end of file: the pager stops (writing a pending working set) */
    if (b->thread) {
        pthread_join(b->thread->tid, NULL);
        close(b->thread->fd);
        gpa_runs_free(&b->thread->installed);
        free(b->thread);
    }
    if (b->uffd >= 0)
        close(b->uffd);
    if (b->host)
        munmap(b->host, b->size);
    if (b->file_fd >= 0)
        close(b->file_fd);
    gpa_runs_free(&b->installed);
    b->thread = NULL;
    b->host = NULL;
    b->uffd = b->file_fd = b->pager_fd = b->pager_pidfd = -1;
}
