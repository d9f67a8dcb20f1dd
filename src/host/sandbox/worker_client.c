/* The caller's side of a worker instance (sandbox_options.worker): spawns `thaw worker`
 * in fresh namespaces, drives it over worker_proto.h, and implements the sandbox ops
 * with it. The worker is hostile: it may die, hang or send garbage at any moment; each
 * of these ends in SANDBOX_FAIL_WORKER with one clear line, the worker killed and
 * reaped, and this process unharmed.
 *
 * uffd and reap memory are served by a pager thread in this process, not in the jail:
 * the worker connects to it (Firecracker's handshake on a Unix socket in a private
 * directory) before it jails itself. The pager reads the snapshot and writes REAP's
 * working set with this process's rights, the jail needs no writable file, and a
 * compromised worker can neither poison the working set other instances prefetch
 * (page contents come from the snapshot, never from the guest) nor skip the REAP
 * policy, which runs here too. The worker's own pager queries ("stats") are relayed;
 * it may send nothing else. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/jail/jail.h"
#include "host/pager/fc_handshake.h"
#include "host/pager/manager.h"
#include "host/pager/pager.h"
#include "host/pager/reap.h"
#include "host/sandbox/reap_policy.h"
#include "host/sandbox/sandbox_impl.h"
#include "host/sandbox/worker_proto.h"
#include "host/snapshot/snapshot.h"
#include "host/util/clock.h"
#include "host/util/file.h"
#include "host/util/smaps.h"
#include "host/util/snapdir.h"

#define GRACE_NS (2ull * 1000000000ull)       /* beyond the worker's own deadline */
#define QUERY_TIMEOUT_NS (10ull * 1000000000ull)
#define LINE_MAX_BYTES 4096

extern char **environ;

struct line_buf {
    char buf[LINE_MAX_BYTES];
    size_t len;
};

/* The pager thread: the handshake on conn, then serving with stop (our control socket). */
struct caller_pager {
    pthread_t tid;
    int conn;
    int stop;
    char snap_dir[4096];
    enum pager_mode mode;
    uint64_t size;
    struct gpa_runs installed; /* what its prefetch installed, written before its "ready" */
    struct thaw_error err;
};

struct worker_client {
    pid_t pid;
    bool reaped;
    int sock;
    enum mem_mode mode;
    bool is_restore;
    char snap_dir[4096];
    uint64_t memory_bytes;
    uint64_t guest_addr;      /* guest memory in the worker's address space */
    uint64_t rootfs_addr, rootfs_size; /* its root-filesystem image there (0: none) */
    struct rootfs_map rootfs;  /* which image (path, guest address, identity), for snapshots */
    uint64_t create_ns;       /* our sandbox_boot/restore call, spawning and jailing included */
    uint64_t save_ns, snapshot_allocated; /* the last snapshot, as we made it */
    /* the caller-side pager (uffd/reap without --pager-socket) */
    bool own_pager;
    char pager_dir[64];
    char pager_path[96];
    int listen_fd;
    int conn;                 /* the worker's pager connection */
    int ctl;                  /* our end of the pager thread's control socket */
    struct caller_pager *pt;
    bool pager_ready;
    bool pager_gone;          /* its thread ended (the worker went away, or a bad handshake) */
    unsigned relayed;         /* worker queries forwarded, replies not yet back */
    struct line_buf from_worker, from_pager;
    struct pager_stats ready;
    struct sandbox_stats last;  /* the latest stats, reported once the worker is dead */
    struct reap_policy reap;
    bool reap_active;
};

/* ---- the worker process ----------------------------------------------------------------- */

static void describe_exit(struct worker_client *w, char *buf, size_t cap)
{
    int st = 0;
    if (!w->reaped) {
        /* It may be on its way out: give it a moment, then make sure. */
        pid_t r = 0;
        for (int i = 0; i < 50 && (r = waitpid(w->pid, &st, WNOHANG)) == 0; i++)
            usleep(2000);
        if (r == 0) {
            kill(w->pid, SIGKILL);
            r = waitpid(w->pid, &st, 0);
        }
        w->reaped = true;
        if (r != w->pid) {
            snprintf(buf, cap, "worker process %d is gone", (int)w->pid);
            return;
        }
    }
    if (WIFSIGNALED(st))
        snprintf(buf, cap, "worker process %d was killed by signal %d (%s)", (int)w->pid, WTERMSIG(st),
                 strsignal(WTERMSIG(st)));
    else if (WIFEXITED(st))
        snprintf(buf, cap, "worker process %d exited with status %d", (int)w->pid, WEXITSTATUS(st));
    else
        snprintf(buf, cap, "worker process %d stopped", (int)w->pid);
}

static void kill_worker(struct worker_client *w)
{
    if (w->pid > 0 && !w->reaped) {
        kill(w->pid, SIGKILL);
        while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
            ;
        w->reaped = true;
    }
}

/* The worker is of no further use: kill it, reap it, say why. */
static int worker_failed(struct sandbox *sb, struct worker_client *w, struct thaw_error *err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int worker_failed(struct sandbox *sb, struct worker_client *w, struct thaw_error *err, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    kill_worker(w);
    thaw_fail(err, "%s", what);
    return sandbox_set_failure(sb, SANDBOX_FAIL_WORKER);
}

/* In the new worker before its exec (jail_spawn: async-signal-safe calls only). */
static int worker_child_setup(void *ctx)
{
    int child_sock = *(const int *)ctx;
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    setsid(); /* the terminal's ^C goes to the caller, which stops us */
    if (dup2(child_sock, 3) < 0 || fcntl(3, F_SETFD, 0) < 0)
        return -1;
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0)
        return -1;
    return 0;
}

/* Starts the worker in fresh namespaces (jail_spawn) with child_sock as fd 3. */
static pid_t fork_worker(const char *exe, int child_sock, struct thaw_error *err)
{
    char *const argv[] = {"thaw", "worker", "--fd", "3", NULL};
    return jail_spawn(exe, argv, environ, worker_child_setup, &child_sock, err);
}

/* The parent-death signal follows the THREAD that forked, not the process: a worker
 * forked from a short-lived thread (one of thaw serve's connection threads) would be
 * killed when that thread ends. So workers are started from the main thread or, when the
 * caller is another thread, by spawner threads that live as long as the process. They
 * take requests from one queue and start them back to back, several at once (a start is
 * a vfork-style clone, jail_spawn: it holds its spawner only until the exec), so
 * concurrent cold starts do not wait for each other to pick up their results. This and the spare workers below
 * are the layer's only process-wide state. */
struct spawn_request {
    const char *exe;
    int child_sock;
    pid_t pid;
    struct thaw_error err;
    bool done;
    struct spawn_request *next;
};

static struct {
    pthread_once_t once;
    pthread_mutex_t lock;
    pthread_cond_t work;      /* a request was queued */
    pthread_cond_t done;      /* a request was served */
    bool started;
    struct spawn_request *head, *tail;
} spawner = {.once = PTHREAD_ONCE_INIT, .lock = PTHREAD_MUTEX_INITIALIZER, .work = PTHREAD_COND_INITIALIZER,
             .done = PTHREAD_COND_INITIALIZER};

static void *spawner_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&spawner.lock);
    for (;;) {
        while (!spawner.head)
            pthread_cond_wait(&spawner.work, &spawner.lock);
        struct spawn_request *r = spawner.head;
        spawner.head = r->next;
        if (!spawner.head)
            spawner.tail = NULL;
        pthread_mutex_unlock(&spawner.lock);
        pid_t pid = fork_worker(r->exe, r->child_sock, &r->err);
        pthread_mutex_lock(&spawner.lock);
        r->pid = pid;
        r->done = true;
        pthread_cond_broadcast(&spawner.done);
    }
    return NULL;
}

#define SPAWNERS 4 /* workers started at once: under load a start takes 20-50 ms */

static void spawner_start(void)
{
    sigset_t all, old;
    sigfillset(&all); /* the spawners take no signals: kicks and SIGINT go elsewhere */
    pthread_sigmask(SIG_SETMASK, &all, &old);
    for (int i = 0; i < SPAWNERS; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, spawner_main, NULL) != 0)
            break;
        pthread_detach(t);
        spawner.started = true;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
}

static pid_t fork_worker_from_stable_thread(const char *exe, int child_sock, struct thaw_error *err)
{
    if (gettid() == getpid())
        return fork_worker(exe, child_sock, err);
    pthread_once(&spawner.once, spawner_start);
    if (!spawner.started) {
        thaw_fail(err, "cannot start the worker spawner thread");
        return -1;
    }
    struct spawn_request r = {.exe = exe, .child_sock = child_sock, .pid = -1};
    pthread_mutex_lock(&spawner.lock);
    if (spawner.tail)
        spawner.tail->next = &r;
    else
        spawner.head = &r;
    spawner.tail = &r;
    pthread_cond_signal(&spawner.work);
    while (!r.done)
        pthread_cond_wait(&spawner.done, &spawner.lock);
    pthread_mutex_unlock(&spawner.lock);
    if (r.pid < 0 && err)
        *err = r.err;
    return r.pid;
}

/* Starts a worker process: its pid and our end of its socket. A worker that finds no
 * request waiting when it starts (a spare) makes its VM while it waits. */
static int start_worker(pid_t *pid_out, int *sock_out, struct thaw_error *err)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return thaw_fail_errno(err, "socketpair for the worker");
    /* The worker binary: THAW_WORKER_EXE (tests), else thaw-worker next to this
     * executable (few libraries: a fast exec), else this executable's own hidden
     * `worker` subcommand. Either way a fresh exec: nothing of our address space. */
    char exe[4096];
    const char *env = getenv("THAW_WORKER_EXE");
    if (env)
        snprintf(exe, sizeof exe, "%s", env);
    else if (exe_sibling(exe, sizeof exe, "thaw-worker") < 0 || access(exe, X_OK) != 0)
        snprintf(exe, sizeof exe, "/proc/self/exe");
    pid_t pid = fork_worker_from_stable_thread(exe, sv[1], err);
    if (pid < 0) {
        close(sv[0]);
        close(sv[1]);
        return thaw_fail(err, "cannot start a worker process (needs root): %.400s", err->msg);
    }
    close(sv[1]);
    *pid_out = pid;
    *sock_out = sv[0];
    return 0;
}

/* ---- spare workers (sandbox_keep_spares) --------------------------------------------------- */

struct spare {
    pid_t pid;
    int sock;
};

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;      /* a spare was taken, the target changed, the refiller ended */
    unsigned target, count;
    struct spare ready[SANDBOX_SPARES_MAX];
    bool refiller;            /* its thread runs */
    uint64_t taken, missed, started, died;
} spares = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void spare_discard(struct spare sp)
{
    close(sp.sock);
    kill(sp.pid, SIGKILL);
    while (waitpid(sp.pid, NULL, 0) < 0 && errno == EINTR)
        ;
}

/* Keeps the spares topped up to the target, one at a time; ends when it is 0. */
static void *refiller_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&spares.lock);
    while (spares.target > 0) {
        if (spares.count >= spares.target) {
            pthread_cond_wait(&spares.cond, &spares.lock);
            continue;
        }
        pthread_mutex_unlock(&spares.lock);
        struct spare sp;
        struct thaw_error e;
        int rc = start_worker(&sp.pid, &sp.sock, &e);
        pthread_mutex_lock(&spares.lock);
        if (rc < 0) { /* try again in a second (or when asked); takers start their own */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += 1;
            pthread_cond_timedwait(&spares.cond, &spares.lock, &ts);
            continue;
        }
        spares.started++;
        if (spares.count < spares.target) {
            spares.ready[spares.count++] = sp;
        } else {
            pthread_mutex_unlock(&spares.lock);
            spare_discard(sp);
            pthread_mutex_lock(&spares.lock);
        }
    }
    spares.refiller = false;
    pthread_cond_broadcast(&spares.cond);
    pthread_mutex_unlock(&spares.lock);
    return NULL;
}

/* A spare that is still alive (between creation and its instance it sends nothing: a
 * readable or hung-up socket means it died), or false. */
static bool take_spare(pid_t *pid, int *sock)
{
    pthread_mutex_lock(&spares.lock);
    while (spares.count > 0) {
        /* The oldest first: it has had the longest to make its VM, and one that died
         * waiting is found (and reaped) at the next take, not left under newer ones. */
        struct spare sp = spares.ready[0];
        memmove(&spares.ready[0], &spares.ready[1], --spares.count * sizeof spares.ready[0]);
        pthread_cond_signal(&spares.cond); /* the refiller starts the next one */
        struct pollfd p = {.fd = sp.sock, .events = POLLIN};
        if (poll(&p, 1, 0) == 0) {
            spares.taken++;
            pthread_mutex_unlock(&spares.lock);
            *pid = sp.pid;
            *sock = sp.sock;
            return true;
        }
        spares.died++;
        pthread_mutex_unlock(&spares.lock);
        spare_discard(sp);
        pthread_mutex_lock(&spares.lock);
    }
    if (spares.target > 0)
        spares.missed++;
    pthread_mutex_unlock(&spares.lock);
    return false;
}

int sandbox_keep_spares(unsigned count, bool workers, struct thaw_error *err)
{
    if (count > SANDBOX_SPARES_MAX)
        return thaw_fail(err, "at most %d spares", SANDBOX_SPARES_MAX);
    sandbox_local_keep_vms(count);
    if (!workers)
        count = 0;
    pthread_mutex_lock(&spares.lock);
    spares.target = count;
    while (spares.count > count) {
        struct spare sp = spares.ready[--spares.count];
        pthread_mutex_unlock(&spares.lock);
        spare_discard(sp);
        pthread_mutex_lock(&spares.lock);
    }
    int rc = 0;
    if (count > 0 && !spares.refiller) {
        pthread_t t;
        sigset_t all, old;
        sigfillset(&all); /* no signals for it: kicks and SIGINT go elsewhere */
        pthread_sigmask(SIG_SETMASK, &all, &old);
        spares.refiller = pthread_create(&t, NULL, refiller_main, NULL) == 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (spares.refiller)
            pthread_detach(t);
        else
            rc = thaw_fail(err, "cannot start the spare workers' thread");
    }
    pthread_cond_broadcast(&spares.cond);
    while (count == 0 && spares.refiller) /* no child of ours left behind */
        pthread_cond_wait(&spares.cond, &spares.lock);
    pthread_mutex_unlock(&spares.lock);
    return rc;
}

void sandbox_spare_stats(struct sandbox_spare_stats *st)
{
    memset(st, 0, sizeof *st);
    pthread_mutex_lock(&spares.lock);
    st->target = spares.target;
    st->ready = spares.count;
    st->taken = spares.taken;
    st->missed = spares.missed;
    st->started = spares.started;
    st->died = spares.died;
    pthread_mutex_unlock(&spares.lock);
    st->vms_ready = sandbox_local_vms_ready();
}

static int spawn(struct worker_client *w, struct thaw_error *err)
{
    if (take_spare(&w->pid, &w->sock))
        return 0;
    return start_worker(&w->pid, &w->sock, err);
}

/* ---- the caller-side pager -------------------------------------------------------------- */

static int send_line(int fd, const char *line);

/* The worker speaks to us as to a memory manager (manager.h): a hello line first. What
 * it names is ignored (we serve our snapshot in our mode); it is only read, up to its
 * newline, byte by byte so that the handshake after it stays in the socket. */
static int answer_hello(int fd, struct thaw_error *err)
{
    char c;
    for (size_t n = 0; n < PAGER_HELLO_MAX; n++) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int k = poll(&p, 1, (int)(QUERY_TIMEOUT_NS / 1000000));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0 || recv(fd, &c, 1, 0) != 1)
            return thaw_fail(err, "the worker sent no hello to its pager");
        if (c == '\n')
            return send_line(fd, "{\"event\":\"hello\"}") < 0 ? thaw_fail_errno(err, "answering the hello") : 0;
    }
    return thaw_fail(err, "the worker's pager hello is over-long");
}

static void *caller_pager_main(void *arg)
{
    struct caller_pager *t = arg;
    struct fc_region r[8];
    size_t n;
    int uffd;
    /* A REAP prefetch: the working-set read goes to the disk now, while the worker says
     * hello, registers its memory, reads its state and sets its VM up (this thread issues
     * it and waits for it: io_uring completes a read through the task that issued it). */
    struct reap_ws_read *early = NULL;
    if (t->mode == PAGER_PREFETCH || t->mode == PAGER_MERGE) {
        struct thaw_error ignored; /* the pager tries again and says why */
        (void)reap_ws_read_begin(t->snap_dir, &early, &ignored);
    }
    if (answer_hello(t->conn, &t->err) == 0 && fc_recv_handshake(t->conn, r, 8, &n, &uffd, t->size, &t->err) == 0) {
        struct pager_stats st;
        pager_serve_early(uffd, r, n, t->snap_dir, t->mode, t->stop, early, &t->installed, &st, &t->err);
        early = NULL;
        close(uffd);
    }
    reap_ws_read_free(early);
    shutdown(t->stop, SHUT_RDWR); /* the control side sees the pager is gone */
    return NULL;
}

static int pager_listen(struct worker_client *w, struct thaw_error *err)
{
    snprintf(w->pager_dir, sizeof w->pager_dir, "/tmp/thaw-pager-XXXXXX");
    if (!mkdtemp(w->pager_dir)) {
        w->pager_dir[0] = 0;
        return thaw_fail_errno(err, "mkdtemp for the pager socket");
    }
    snprintf(w->pager_path, sizeof w->pager_path, "%s/pager.sock", w->pager_dir);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, w->pager_path, strlen(w->pager_path) + 1);
    w->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (w->listen_fd < 0 || bind(w->listen_fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(w->listen_fd, 1) < 0)
        return thaw_fail_errno(err, "pager socket %s", w->pager_path);
    return 0;
}

static void pager_unlink(struct worker_client *w)
{
    if (w->pager_path[0]) {
        unlink(w->pager_path);
        w->pager_path[0] = 0;
    }
    if (w->pager_dir[0]) {
        rmdir(w->pager_dir);
        w->pager_dir[0] = 0;
    }
}

static int pager_accept(struct worker_client *w, enum pager_mode pmode, struct thaw_error *err)
{
    int c = accept4(w->listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : thaw_fail_errno(err, "accepting the worker's pager connection");
    close(w->listen_fd);
    w->listen_fd = -1;
    pager_unlink(w);
    w->conn = c;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
        return thaw_fail_errno(err, "socketpair for the pager");
    struct caller_pager *t = calloc(1, sizeof *t);
    if (!t) {
        close(sv[0]);
        close(sv[1]);
        return thaw_fail(err, "out of memory");
    }
    t->conn = c;
    t->stop = sv[1];
    t->mode = pmode;
    t->size = w->memory_bytes;
    snprintf(t->snap_dir, sizeof t->snap_dir, "%s", w->snap_dir);
    if (pthread_create(&t->tid, NULL, caller_pager_main, t) != 0) {
        close(sv[0]);
        close(sv[1]);
        free(t);
        return thaw_fail(err, "cannot start the pager thread");
    }
    w->pt = t;
    w->ctl = sv[0];
    return 0;
}

static void pager_stop(struct worker_client *w)
{
    if (w->listen_fd >= 0)
        close(w->listen_fd);
    w->listen_fd = -1;
    pager_unlink(w);
    if (w->pt) {
        close(w->ctl); /* end of file: the pager stops, writing a pending working set */
        shutdown(w->conn, SHUT_RDWR); /* wakes a handshake that never came */
        pthread_join(w->pt->tid, NULL);
        close(w->pt->stop);
        gpa_runs_free(&w->pt->installed);
        free(w->pt);
        w->pt = NULL;
        w->ctl = -1;
    }
    if (w->conn >= 0)
        close(w->conn);
    w->conn = -1;
    if (w->reap_active)
        reap_policy_end(&w->reap);
    w->reap_active = false;
}

/* Reads what is available into lb; returns 1 and one line (no newline) in out when a
 * line is complete, 0 if not yet, -1 on end of file, error or an over-long line. */
static int read_line(int fd, struct line_buf *lb, char *out, size_t cap, bool do_read)
{
    for (;;) {
        char *nl = memchr(lb->buf, '\n', lb->len);
        if (nl) {
            size_t n = (size_t)(nl - lb->buf);
            if (n >= cap)
                return -1;
            memcpy(out, lb->buf, n);
            out[n] = 0;
            memmove(lb->buf, nl + 1, lb->len - n - 1);
            lb->len -= n + 1;
            return 1;
        }
        if (lb->len == sizeof lb->buf || !do_read)
            return lb->len == sizeof lb->buf ? -1 : 0;
        ssize_t k = recv(fd, lb->buf + lb->len, sizeof lb->buf - lb->len, MSG_DONTWAIT);
        if (k < 0 && (errno == EAGAIN || errno == EINTR))
            return 0;
        if (k <= 0)
            return -1;
        lb->len += (size_t)k;
        do_read = false; /* one read per readiness; loop only to find a line */
    }
}

static int send_line(int fd, const char *line)
{
    size_t n = strlen(line);
    char buf[LINE_MAX_BYTES + 2];
    memcpy(buf, line, n);
    buf[n] = '\n';
    return send(fd, buf, n + 1, MSG_NOSIGNAL) == (ssize_t)(n + 1) ? 0 : -1;
}

/* A line from the pager: the first is "ready"; after that, replies to relayed queries. */
static int on_pager_line(struct worker_client *w, const char *line, struct thaw_error *err)
{
    if (!w->pager_ready) {
        const char *ev = pager_stats_parse(line, &w->ready, err);
        if (!ev)
            return -1;
        if (strcmp(ev, "ready"))
            return thaw_fail(err, "pager said \"%s\" before \"ready\"", ev);
        w->pager_ready = true;
        if (w->reap_active)
            reap_policy_ready(&w->reap, &w->ready);
        /* The worker's pre-fault vCPU (host/vmm/prefault_vcpu.h) needs the pages the
         * prefetch installed; the pager thread wrote them before this line. They follow
         * the relayed line as raw (gpa, pages) pairs, its installed_runs saying how many. */
        const struct gpa_runs *ins = w->pt ? &w->pt->installed : NULL;
        if (ins && ins->n) {
            char relay[LINE_MAX_BYTES];
            int n = pager_event_line("ready", &w->ready, ins->n, relay, sizeof relay);
            if (n < 0 || send(w->conn, relay, (size_t)n, MSG_NOSIGNAL) != n || pager_send_installed(w->conn, ins) < 0)
                return thaw_fail_errno(err, "relaying the pager to the worker");
            return 0;
        }
    } else if (w->reap_active && w->reap.awaiting) {
        /* The answer to our finish-record (sent after the first response, with no relayed
         * query outstanding, so it comes first): ours, not the worker's. */
        struct pager_stats st;
        struct thaw_error why;
        if (pager_stats_parse(line, &st, &why))
            reap_policy_collected(&w->reap, &st, NULL, w->snap_dir);
        else
            reap_policy_collected(&w->reap, NULL, why.msg, w->snap_dir);
        return 0;
    } else if (w->relayed) {
        w->relayed--;
    } else {
        return thaw_fail(err, "pager sent an unasked line");
    }
    if (send_line(w->conn, line) < 0)
        return thaw_fail_errno(err, "relaying the pager to the worker");
    return 0;
}

/* ---- waiting for the worker -------------------------------------------------------------- */

/* Waits for the answer to the request in flight, delivering guest log lines and
 * serving the pager connection meanwhile. 0 with the frame, or -1 (worker killed). */
static int await(struct sandbox *sb, struct worker_client *w, uint64_t timeout_ns, enum pager_mode pmode,
                 struct wp_frame *f, struct thaw_error *err)
{
    uint64_t deadline = clock_now_ns() + timeout_ns;
    for (;;) {
        struct pollfd p[4];
        int n = 0, i_sock, i_listen = -1, i_ctl = -1, i_conn = -1;
        p[i_sock = n++] = (struct pollfd){.fd = w->sock, .events = POLLIN};
        if (w->listen_fd >= 0)
            p[i_listen = n++] = (struct pollfd){.fd = w->listen_fd, .events = POLLIN};
        if (w->pt && w->ctl >= 0 && !w->pager_gone)
            p[i_ctl = n++] = (struct pollfd){.fd = w->ctl, .events = POLLIN};
        if (w->pager_ready && w->conn >= 0)
            p[i_conn = n++] = (struct pollfd){.fd = w->conn, .events = POLLIN};
        uint64_t now = clock_now_ns();
        if (now >= deadline)
            return worker_failed(sb, w, err, "worker process %d did not answer within %.1f s", (int)w->pid,
                                 timeout_ns / 1e9);
        uint64_t left_ms = (deadline - now) / 1000000 + 1;
        int k = poll(p, (nfds_t)n, left_ms > 60000 ? 60000 : (int)left_ms);
        if (k < 0 && errno == EINTR) {
            int sig = sandbox_interrupted();
            if (sig) { /* SIGINT/SIGTERM: the worker goes with the call */
                kill_worker(w);
                thaw_fail(err, "interrupted by signal %d", sig);
                return sandbox_set_failure(sb, SANDBOX_FAIL_INTERRUPTED);
            }
            continue;
        }
        if (k < 0)
            return worker_failed(sb, w, err, "poll: %s", strerror(errno));
        if (k == 0)
            continue;
        if (i_listen >= 0 && p[i_listen].revents && pager_accept(w, pmode, err) < 0)
            return worker_failed(sb, w, err, "%s", err->msg);
        char line[LINE_MAX_BYTES];
        if (i_ctl >= 0 && p[i_ctl].revents) {
            int r;
            bool rd = true;
            while ((r = read_line(w->ctl, &w->from_pager, line, sizeof line, rd)) == 1) {
                rd = false;
                if (on_pager_line(w, line, err) < 0)
                    return worker_failed(sb, w, err, "pager: %s", err->msg);
            }
            if (r < 0) {
                /* Normal when the worker exits; otherwise the worker, left without its
                 * pager, fails on its own (hanging up makes that quick). */
                w->pager_gone = true;
                if (w->conn >= 0)
                    shutdown(w->conn, SHUT_RDWR);
            }
        }
        if (i_conn >= 0 && p[i_conn].revents) {
            int r;
            bool rd = true;
            while ((r = read_line(w->conn, &w->from_worker, line, sizeof line, rd)) == 1) {
                rd = false;
                if (strcmp(line, "stats"))
                    return worker_failed(sb, w, err, "worker process %d sent the pager \"%.60s\"", (int)w->pid, line);
                if (send_line(w->ctl, "stats") < 0)
                    return worker_failed(sb, w, err, "the pager stopped");
                w->relayed++;
            }
            if (r < 0) { /* the worker hung up on its pager: it is going away */
                close(w->conn);
                w->conn = -1;
            }
        }
        if (p[i_sock].revents) {
            enum wp_recv_status st = wp_recv(w->sock, deadline, false, f, err);
            if (st == WP_RECV_TIMEOUT)
                return worker_failed(sb, w, err, "worker process %d did not answer in time", (int)w->pid);
            if (st == WP_RECV_EOF) {
                char why[200];
                describe_exit(w, why, sizeof why);
                return worker_failed(sb, w, err, "%s", why);
            }
            if (st != WP_RECV_OK)
                return worker_failed(sb, w, err, "worker process %d: %s", (int)w->pid, err->msg);
            if (wp_is_request(f->msg.type)) {
                wp_frame_free(f);
                return worker_failed(sb, w, err, "worker process %d sent a request", (int)w->pid);
            }
            if (f->msg.type == WP_LOG) {
                if (sb->log)
                    sb->log(sb->log_ctx, sb->id, f->msg.u.log.invocation, (enum sandbox_stream)f->msg.u.log.stream,
                            (const char *)f->msg.u.log.line, f->msg.u.log.len);
                wp_frame_free(f);
                continue;
            }
            return 0;
        }
    }
}

/* Waits for one whole line from the pager on ctl. */
static int pager_wait_line(struct worker_client *w, char *line, size_t cap, uint64_t deadline, struct thaw_error *err)
{
    bool rd = false; /* a complete line may already be buffered */
    for (;;) {
        int r = read_line(w->ctl, &w->from_pager, line, cap, rd);
        if (r == 1)
            return 0;
        if (r < 0)
            return thaw_fail(err, "the pager stopped%s%s", w->pt->err.msg[0] ? ": " : "", w->pt->err.msg);
        uint64_t now = clock_now_ns();
        if (now >= deadline)
            return thaw_fail(err, "the pager did not answer within %.0f s", QUERY_TIMEOUT_NS / 1e9);
        struct pollfd p = {.fd = w->ctl, .events = POLLIN};
        int k = poll(&p, 1, (int)((deadline - now) / 1000000 + 1));
        if (k < 0 && errno != EINTR)
            return thaw_fail_errno(err, "poll");
        rd = k > 0;
    }
}

/* Our own pager query: first let the replies to relayed worker queries come back
 * (and pass them on), so that the next line is the answer to ours. */
static int own_pager_query(struct worker_client *w, const char *cmd, struct pager_stats *st, struct thaw_error *err)
{
    char line[LINE_MAX_BYTES];
    uint64_t deadline = clock_now_ns() + QUERY_TIMEOUT_NS;
    while (w->relayed || (w->reap_active && w->reap.awaiting))
        if (pager_wait_line(w, line, sizeof line, deadline, err) < 0 || on_pager_line(w, line, err) < 0)
            return -1;
    if (send_line(w->ctl, cmd) < 0)
        return thaw_fail(err, "the pager stopped");
    if (pager_wait_line(w, line, sizeof line, deadline, err) < 0)
        return -1;
    return pager_stats_parse(line, st, err) ? 0 : -1;
}

/* ---- the ops ---------------------------------------------------------------------------- */

static int error_frame(struct sandbox *sb, struct worker_client *w, struct wp_frame *f, struct thaw_error *err)
{
    enum sandbox_failure why = (enum sandbox_failure)f->msg.u.fail.failure;
    thaw_fail(err, "%s", f->msg.u.fail.msg);
    wp_frame_free(f);
    if (why == SANDBOX_FAIL_TIMEOUT || why == SANDBOX_FAIL_GUEST || why == SANDBOX_FAIL_INTERRUPTED ||
        why == SANDBOX_FAIL_WORKER || why == SANDBOX_FAIL_PAGER)
        kill_worker(w);
    return sandbox_set_failure(sb, why);
}

static int unexpected(struct sandbox *sb, struct worker_client *w, struct wp_frame *f, const char *want,
                      struct thaw_error *err)
{
    uint32_t t = f->msg.type;
    wp_frame_free(f);
    return worker_failed(sb, w, err, "worker process %d answered %s, not %s", (int)w->pid, wp_type_name(t), want);
}

static int client_invoke(struct sandbox *sb, const void *req, size_t len, uint8_t **resp, size_t *resp_len,
                         struct thaw_error *err)
{
    struct worker_client *w = sb->impl;
    if (len > WP_MAX_BODY) {
        thaw_fail(err, "request of %zu bytes exceeds the worker protocol's %u", len, (unsigned)WP_MAX_BODY);
        return sandbox_set_failure(sb, SANDBOX_FAIL_BAD_INPUT);
    }
    if (w->reap_active) /* the worker's image pages as the first invocation left them */
        reap_policy_wait_files(&w->reap);
    struct wp_msg m = {.type = WP_INVOKE, .u.body = {req, len}};
    if (wp_send(w->sock, &m, -1, err) < 0)
        return worker_failed(sb, w, err, "worker process %d: %s", (int)w->pid, err->msg);
    struct wp_frame f;
    if (await(sb, w, sb->invoke_timeout_ns + GRACE_NS, PAGER_LAZY, &f, err) < 0)
        return -1;
    if (f.msg.type == WP_ERROR) {
        error_frame(sb, w, &f, err);
        if (sb->failure == SANDBOX_FAIL_GUEST && w->reap_active)
            sb->retry_without_ws = reap_policy_invoke_failed(&w->reap, w->snap_dir, err);
        return -1;
    }
    if (f.msg.type != WP_RESPONSE)
        return unexpected(sb, w, &f, "a response", err);
    *resp = malloc(f.msg.u.body.len ? f.msg.u.body.len : 1);
    if (!*resp) {
        wp_frame_free(&f);
        thaw_fail(err, "out of memory");
        return sandbox_set_failure(sb, SANDBOX_FAIL_HOST);
    }
    memcpy(*resp, f.msg.u.body.data, f.msg.u.body.len);
    *resp_len = f.msg.u.body.len;
    wp_frame_free(&f);
    if (w->reap_active && !w->reap.finished) {
        /* REAP's policy step after the first response, against our own pager. */
        struct mem_backend cm;
        memset(&cm, 0, sizeof cm);
        cm.mode = MEM_REAP;
        cm.pager_fd = w->ctl;
        cm.uffd = cm.file_fd = -1;
        /* Its query must not interleave with relayed ones: let those come back first. */
        char line[LINE_MAX_BYTES];
        uint64_t deadline = clock_now_ns() + QUERY_TIMEOUT_NS;
        while (w->relayed)
            if (pager_wait_line(w, line, sizeof line, deadline, err) < 0 || on_pager_line(w, line, err) < 0)
                return worker_failed(sb, w, err, "pager: %s", err->msg);
        /* The pager thread writes the working set while the response goes back; its
         * answer is taken as the next line from the pager (on_pager_line). */
        struct rootfs_pages files = {.pid = (int)w->pid, .addr = w->rootfs_addr, .size = w->rootfs_size};
        reap_policy_finish_send(&w->reap, &cm, w->snap_dir, &files);
    }
    return 0;
}

static int our_view(struct worker_client *w, struct sandbox_stats *st, const struct sandbox_stats *theirs, bool light,
                    struct thaw_error *err);

static int client_shutdown(struct sandbox *sb, struct thaw_error *err)
{
    struct worker_client *w = sb->impl;
    struct wp_msg m = {.type = WP_SHUTDOWN};
    if (wp_send(w->sock, &m, -1, err) < 0)
        return worker_failed(sb, w, err, "worker process %d: %s", (int)w->pid, err->msg);
    struct wp_frame f;
    if (await(sb, w, sb->invoke_timeout_ns + GRACE_NS, PAGER_LAZY, &f, err) < 0)
        return -1;
    if (f.msg.type == WP_ERROR)
        return error_frame(sb, w, &f, err);
    if (f.msg.type != WP_STATS_REPLY)
        return unexpected(sb, w, &f, "its last stats", err);
    struct sandbox_stats st;
    memset(&st, 0, sizeof st);
    int rc = our_view(w, &st, &f.msg.u.stats, false, err);
    wp_frame_free(&f);
    /* The worker exits now; stats answer from w->last from here on. */
    char why[200];
    describe_exit(w, why, sizeof why);
    return rc;
}

/* The snapshot directory is ours: we make the fresh directory and its memory file, the
 * worker writes the image into the file through the descriptor we pass and sends the
 * state back; we check the state, finish the file and rename (snapshot_writer). The
 * worker could at worst spoil this one snapshot of its own function, which its guest
 * code controls anyway; a restore checks size, identity and checksums. */
static int client_snapshot(struct sandbox *sb, const char *dir, struct thaw_error *err)
{
    struct worker_client *w = sb->impl;
    struct snapshot_writer wr;
    uint64_t t0 = clock_now_ns();
    if (snapshot_writer_begin(&wr, dir, err) < 0)
        return -1;
    struct wp_msg m = {.type = WP_SNAPSHOT};
    if (wp_send(w->sock, &m, wr.memory_fd, err) < 0) {
        snapshot_writer_abort(&wr);
        return worker_failed(sb, w, err, "worker process %d: %s", (int)w->pid, err->msg);
    }
    struct wp_frame f;
    if (await(sb, w, sb->invoke_timeout_ns + GRACE_NS, PAGER_LAZY, &f, err) < 0) {
        snapshot_writer_abort(&wr);
        return -1;
    }
    if (f.msg.type == WP_ERROR) {
        snapshot_writer_abort(&wr);
        return error_frame(sb, w, &f, err);
    }
    if (f.msg.type != WP_DONE) {
        snapshot_writer_abort(&wr);
        return unexpected(sb, w, &f, "done", err);
    }
    /* The image's written pages and identity, from the worker's memory (they are not in
     * the memory file it wrote). */
    struct snap_identity id;
    if (w->rootfs_size &&
        (snapshot_state_identity(f.msg.u.body.data, f.msg.u.body.len, &id, err) < 0 ||
         rootfs_snapshot_save_remote(&w->rootfs, (int)w->pid, w->rootfs_addr, wr.tmp, &id, err) < 0)) {
        wp_frame_free(&f);
        snapshot_writer_abort(&wr);
        return -1;
    }
    int rc = snapshot_writer_commit(&wr, f.msg.u.body.data, f.msg.u.body.len, err);
    wp_frame_free(&f);
    if (rc < 0)
        return -1;
    w->save_ns = clock_now_ns() - t0;
    w->snapshot_allocated = wr.allocated_bytes;
    return 0;
}

/* The worker's stats, corrected with what only we know or should not take its word for. */
static int our_view(struct worker_client *w, struct sandbox_stats *st, const struct sandbox_stats *theirs, bool light,
                    struct thaw_error *err)
{
    /* Keep the common fields sandbox_stats() fills in. */
    char id[sizeof st->id];
    memcpy(id, st->id, sizeof id);
    *st = *theirs;
    memcpy(st->id, id, sizeof id);
    st->in_worker = true;
    if (light) {
        st->rss_kb = st->pss_kb = 0;
    } else if (w->guest_addr && w->memory_bytes && w->pid > 0 && !w->reaped)
        (void)smaps_range_kb(w->pid, w->guest_addr, w->guest_addr + w->memory_bytes, &st->rss_kb, &st->pss_kb);
    /* Creation as the caller saw it: starting and jailing the worker included (the
     * breakdown fields stay the worker's own). */
    st->save_ns = w->save_ns;
    st->snapshot_allocated_bytes = w->snapshot_allocated;
    if (w->is_restore) {
        st->mode = w->mode;
        st->restore_ns = w->create_ns;
    } else {
        st->boot_ns = w->create_ns;
    }
    if (w->own_pager && w->pt && !light) {
        /* Pager counters from our own pager, not as the worker tells them. */
        struct pager_stats ps;
        if (own_pager_query(w, "stats", &ps, err) < 0)
            return -1;
        st->pages_served = ps.pages_served;
        st->zero_pages = ps.zero_pages;
    }
    if (w->reap_active || (w->is_restore && w->mode == MEM_REAP && w->own_pager)) {
        st->start = reap_policy_start(&w->reap);
        st->reap_recorded = w->reap.recording;
        st->reap_prefetched = w->reap.prefetched;
        st->ws_pages = w->reap.ws.pages;
        st->ws_regions = w->reap.ws.regions;
        st->ws_bytes = w->reap.ws.bytes;
        st->ws_read_ns = w->reap.ws.read_ns;
        st->ws_install_ns = w->reap.ws.install_ns;
        st->reap_misses = w->reap.prefetched ? st->pages_served + st->zero_pages : 0;
        snprintf(st->reap_note, sizeof st->reap_note, "%s", w->reap.note);
        reap_policy_merge_stats(&w->reap, st);
    }
    w->last = *st;
    return 0;
}

static int client_stats(struct sandbox *sb, struct sandbox_stats *st, struct thaw_error *err)
{
    struct worker_client *w = sb->impl;
    if (sb->stats_light && !w->reaped) { /* what we know: its last word, our REAP policy */
        struct sandbox_stats theirs = w->last;
        return our_view(w, st, &theirs, true, err);
    }
    if (w->reaped) { /* dead or exited: what we knew last */
        char id[sizeof st->id];
        memcpy(id, st->id, sizeof id);
        *st = w->last;
        memcpy(st->id, id, sizeof id);
        return 0;
    }
    struct wp_msg m = {.type = WP_STATS};
    if (wp_send(w->sock, &m, -1, err) < 0)
        return worker_failed(sb, w, err, "worker process %d: %s", (int)w->pid, err->msg);
    struct wp_frame f;
    if (await(sb, w, QUERY_TIMEOUT_NS, PAGER_LAZY, &f, err) < 0)
        return -1;
    if (f.msg.type == WP_ERROR)
        return error_frame(sb, w, &f, err);
    if (f.msg.type != WP_STATS_REPLY)
        return unexpected(sb, w, &f, "stats", err);
    int rc = our_view(w, st, &f.msg.u.stats, false, err);
    wp_frame_free(&f);
    return rc;
}

/* Between requests the worker sends nothing: anything to read, or a hang-up, means it
 * died or misbehaves. */
static bool client_gone(struct sandbox *sb)
{
    struct worker_client *w = sb->impl;
    if (w->reaped)
        return true;
    struct pollfd p = {.fd = w->sock, .events = POLLIN};
    if (poll(&p, 1, 0) == 0)
        return false;
    kill_worker(w);
    return true;
}

static void client_free(struct worker_client *w);

static void client_destroy(struct sandbox *sb)
{
    if (sb->impl)
        client_free(sb->impl);
    sb->impl = NULL;
}

static const struct sandbox_ops worker_ops = {
    .invoke = client_invoke,
    .shutdown = client_shutdown,
    .snapshot = client_snapshot,
    .stats = client_stats,
    .gone = client_gone,
    .destroy = client_destroy,
};

/* ---- creation ------------------------------------------------------------------------------ */

static uint64_t boot_timeout(const struct sandbox_options *opt)
{
    return (opt->boot_timeout_ns ? opt->boot_timeout_ns : SANDBOX_DEFAULT_TIMEOUT_NS) + GRACE_NS;
}

static void client_free(struct worker_client *w)
{
    if (w->reap_active) /* it reads the worker's pagemap */
        reap_policy_wait_files(&w->reap);
    if (w->sock >= 0)
        close(w->sock);
    kill_worker(w);
    pager_stop(w);
    free(w);
}

static int create(struct sandbox **out, const char *path, bool restore, enum mem_mode mode,
                  const struct sandbox_options *opt, struct thaw_error *err)
{
    *out = NULL;
    uint64_t t0 = clock_now_ns();
    struct worker_client *w = calloc(1, sizeof *w);
    struct wp_msg *m = calloc(1, sizeof *m);
    if (!w || !m) {
        free(w);
        free(m);
        return thaw_fail(err, "out of memory");
    }
    w->sock = w->listen_fd = w->conn = w->ctl = -1;
    w->is_restore = restore;
    w->mode = mode;
    w->reap.lock_fd = -1;
    m->type = restore ? WP_CREATE_RESTORE : WP_CREATE_BOOT;
    struct wp_create *c = &m->u.create;
    struct sandbox *sb = NULL;
    /* The worker resolves the path in its own (identical) view before it jails itself. */
    if (!realpath(path, c->path)) {
        thaw_fail_errno(err, "%s", path);
        goto fail;
    }
    snprintf(w->snap_dir, sizeof w->snap_dir, "%s", c->path);
    /* The id is ours (log lines during creation carry it): named after the directory
     * until the worker tells us the function's name. */
    const char *base = strrchr(c->path, '/');
    if (!(sb = sandbox_alloc(opt, base && base[1] ? base + 1 : c->path, err)))
        goto fail;
    sb->ops = &worker_ops;
    sb->impl = w;
    snprintf(c->id, sizeof c->id, "%s", sb->id);
    c->mode = (uint32_t)mode;
    c->boot_timeout_ns = opt->boot_timeout_ns;
    c->invoke_timeout_ns = opt->invoke_timeout_ns;
    c->memory_mib = opt->memory_mib;
    c->trace_syscalls = opt->trace_syscalls;
    c->drop_cache = opt->drop_cache;
    enum pager_mode pmode = PAGER_LAZY;
    if (restore && (mode == MEM_UFFD || mode == MEM_REAP)) {
        if (opt->pager_socket) {
            snprintf(c->pager_socket, sizeof c->pager_socket, "%s", opt->pager_socket);
        } else {
            char mp[4200];
            struct stat st;
            snprintf(mp, sizeof mp, "%s/" SNAPDIR_MEMORY, w->snap_dir);
            if (stat(mp, &st) < 0) {
                thaw_fail_errno(err, "cannot stat %s", mp);
                goto fail;
            }
            w->memory_bytes = (uint64_t)st.st_size;
            w->own_pager = true;
            if (mode == MEM_REAP) {
                reap_policy_begin(&w->reap, w->snap_dir);
                w->reap_active = true;
                pmode = w->reap.pmode;
                c->prefetch_files = pmode == PAGER_PREFETCH || pmode == PAGER_MERGE;
                c->merge_files = pmode == PAGER_MERGE;
            }
            if (pager_listen(w, err) < 0)
                goto fail;
            snprintf(c->pager_socket, sizeof c->pager_socket, "%s", w->pager_path);
            c->mode = MEM_UFFD; /* the REAP policy runs here, with our pager */
        }
    }
    struct wp_frame f;
    if (spawn(w, err) < 0)
        goto fail;
    if (wp_send(w->sock, m, -1, err) < 0) { /* it died at once: say how, not "Broken pipe" */
        char why[200];
        describe_exit(w, why, sizeof why);
        thaw_fail(err, "%s", why);
        goto fail;
    }
    if (await(sb, w, boot_timeout(opt), pmode, &f, err) < 0)
        goto fail;
    if (f.msg.type == WP_ERROR) {
        error_frame(sb, w, &f, err);
        goto fail;
    }
    if (f.msg.type != WP_READY) {
        unexpected(sb, w, &f, "ready", err);
        goto fail;
    }
    if (f.msg.invoke_timeout_ns)
        sb->invoke_timeout_ns = f.msg.invoke_timeout_ns;
    if (!w->memory_bytes)
        w->memory_bytes = f.msg.u.stats.memory_bytes;
    w->guest_addr = f.msg.guest_addr;
    w->rootfs_addr = f.msg.rootfs_addr;
    w->rootfs_size = f.msg.rootfs_size;
    rootfs_map_init(&w->rootfs);
    snprintf(w->rootfs.path, sizeof w->rootfs.path, "%s", f.msg.rootfs.path);
    w->rootfs.size = f.msg.rootfs_size;
    w->rootfs.gpa = f.msg.rootfs.gpa;
    w->rootfs.dev = f.msg.rootfs.dev;
    w->rootfs.ino = f.msg.rootfs.ino;
    w->rootfs.mtime_ns = f.msg.rootfs.mtime_ns;
    w->create_ns = clock_now_ns() - t0;
    w->last = f.msg.u.stats;
    wp_frame_free(&f);
    free(m);
    *out = sb;
    return 0;
fail:
    client_free(w);
    if (sb)
        sb->impl = NULL;
    sandbox_free(sb);
    free(m);
    return -1;
}

int sandbox_worker_pid(const struct sandbox *sb)
{
    if (sb->ops != &worker_ops || !sb->impl)
        return -1;
    return (int)((const struct worker_client *)sb->impl)->pid;
}

int sandbox_worker_boot(struct sandbox **out, const char *function_dir, const struct sandbox_options *opt,
                        struct thaw_error *err)
{
    return create(out, function_dir, false, MEM_COPY, opt, err);
}

int sandbox_worker_restore(struct sandbox **out, const char *snap_dir, enum mem_mode mode,
                           const struct sandbox_options *opt, struct thaw_error *err)
{
    return create(out, snap_dir, true, mode, opt, err);
}
