#include "host/pager/manager.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "host/pager/fc_handshake.h"
#include "host/util/snapdir.h"

#define MAX_REGIONS 64
#define SETUP_TIMEOUT_MS 30000 /* hello and handshake: a VMM that sends nothing is dropped */

struct manager {
    const struct pager_manager_opts *o;
    char default_real[PATH_MAX]; /* realpath of o->default_snapshot, or "" */
    char root_real[PATH_MAX];    /* realpath of o->snapshot_root, or "" */
    pthread_mutex_t lock;
    pthread_cond_t idle;
    struct pager_manager_stats *st;
};

struct session {
    struct manager *m;
    int fd;
    bool send_installed; /* the hello asked for the installed pages after "ready" */
    int rc;
    struct thaw_error err;
};

static void send_line(int fd, const char *event, const char *error)
{
    json_t *o = error ? json_pack("{ssss}", "event", event, "error", error) : json_pack("{ss}", "event", event);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    if (s) {
        size_t n = strlen(s);
        s[n] = '\n';
        (void)!send(fd, s, n + 1, MSG_NOSIGNAL);
        s[n] = 0;
    }
    free(s);
    json_decref(o);
}

/* Reads one '\n'-terminated line byte by byte (nothing after it is consumed: the
 * handshake that follows carries a descriptor). */
static int read_line(int fd, char *buf, size_t cap, int timeout_ms, struct thaw_error *err)
{
    size_t len = 0;
    while (len + 1 < cap) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int k = poll(&p, 1, timeout_ms);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return thaw_fail(err, "no line within %d ms", timeout_ms);
        ssize_t n = read(fd, buf + len, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return thaw_fail(err, "connection closed");
        if (buf[len] == '\n') {
            buf[len] = 0;
            return 0;
        }
        len++;
    }
    return thaw_fail(err, "line longer than %zu bytes", cap - 1);
}

/* Resolves a hello's snapshot to an allowed directory: the default one, or one beneath
 * the root. */
static int allowed_snapshot(const struct manager *m, const char *dir, char *out, struct thaw_error *err)
{
    if (dir[0] != '/')
        return thaw_fail(err, "snapshot path must be absolute: %s", dir);
    if (!realpath(dir, out))
        return thaw_fail_errno(err, "snapshot %s", dir);
    if (m->default_real[0] && !strcmp(out, m->default_real))
        return 0;
    size_t rl = strlen(m->root_real);
    if (rl && !strncmp(out, m->root_real, rl) && (out[rl] == '/' || (rl == 1 && out[1])))
        return 0;
    return thaw_fail(err, "snapshot %s is not one this memory manager serves", dir);
}

/* Hello (if any), handshake, serving: one VM, start to end. */
static int session_run(struct session *s, struct pager_stats *pst)
{
    struct manager *m = s->m;
    int fd = s->fd;
    char dir[PATH_MAX];
    enum pager_mode mode = m->o->default_mode;
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int k;
    do
        k = poll(&p, 1, SETUP_TIMEOUT_MS);
    while (k < 0 && errno == EINTR);
    char first = 0;
    if (k <= 0 || recv(fd, &first, 1, MSG_PEEK) != 1)
        return thaw_fail(&s->err, "the VM sent nothing within %d s", SETUP_TIMEOUT_MS / 1000);
    if (first == '{') {
        char line[PAGER_HELLO_MAX];
        if (read_line(fd, line, sizeof line, SETUP_TIMEOUT_MS, &s->err) < 0)
            return -1;
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        const char *snap = json_string_value(json_object_get(o, "snapshot"));
        const char *ms = json_string_value(json_object_get(o, "mode"));
        s->send_installed = json_is_true(json_object_get(o, "installed"));
        int bad = !snap ? thaw_fail(&s->err, "hello without a snapshot")
                  : ms && pager_mode_parse(ms, &mode) < 0 ? thaw_fail(&s->err, "hello with unknown mode")
                                                          : allowed_snapshot(m, snap, dir, &s->err);
        json_decref(o);
        if (bad < 0) {
            send_line(fd, "error", s->err.msg);
            return -1;
        }
        send_line(fd, "hello", NULL);
    } else {
        if (!m->default_real[0])
            return thaw_fail(&s->err, "a VM without a hello, and no default snapshot");
        snprintf(dir, sizeof dir, "%s", m->default_real);
    }
    char mem[PATH_MAX + 16];
    snprintf(mem, sizeof mem, "%s/" SNAPDIR_MEMORY, dir);
    struct stat sb;
    if (stat(mem, &sb) < 0 || !S_ISREG(sb.st_mode))
        return thaw_fail(&s->err, "%s is not a memory file", mem);
    struct timeval tv = {.tv_sec = SETUP_TIMEOUT_MS / 1000};
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    struct fc_region r[MAX_REGIONS];
    size_t n;
    int uffd;
    if (fc_recv_handshake(fd, r, MAX_REGIONS, &n, &uffd, (uint64_t)sb.st_size, &s->err) < 0)
        return -1;
    tv.tv_sec = 0;
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    int rc = pager_serve(uffd, r, n, dir, mode, fd, s->send_installed, pst, &s->err);
    close(uffd);
    return rc;
}

static void session_end(struct session *s, const struct pager_stats *pst)
{
    struct manager *m = s->m;
    close(s->fd);
    pthread_mutex_lock(&m->lock);
    m->st->active--;
    if (s->rc < 0)
        m->st->failed++;
    m->st->last = *pst;
    pthread_cond_broadcast(&m->idle);
    pthread_mutex_unlock(&m->lock);
}

static void *session_main(void *arg)
{
    struct session *s = arg;
    struct pager_stats pst = {0};
    s->rc = session_run(s, &pst);
    session_end(s, &pst);
    free(s);
    return NULL;
}

int pager_manager_run(int listen_fd, int stop_fd, const struct pager_manager_opts *o, struct pager_manager_stats *st,
                      struct thaw_error *err)
{
    memset(st, 0, sizeof *st);
    struct manager m = {.o = o, .st = st};
    if (o->default_snapshot && !realpath(o->default_snapshot, m.default_real))
        return thaw_fail_errno(err, "snapshot %s", o->default_snapshot);
    if (o->snapshot_root && !realpath(o->snapshot_root, m.root_real))
        return thaw_fail_errno(err, "snapshot root %s", o->snapshot_root);
    unsigned max = o->max_sessions ? o->max_sessions : PAGER_MANAGER_MAX_SESSIONS;
    pthread_mutex_init(&m.lock, NULL);
    pthread_cond_init(&m.idle, NULL);
    int rc = 0;
    for (;;) {
        struct pollfd p[2] = {{.fd = listen_fd, .events = POLLIN}, {.fd = stop_fd, .events = POLLIN}};
        int k = poll(p, stop_fd >= 0 ? 2 : 1, -1);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = thaw_fail_errno(err, "poll on the memory manager's socket");
            break;
        }
        if (stop_fd >= 0 && p[1].revents)
            break;
        if (!(p[0].revents & POLLIN))
            continue;
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE)
                continue; /* out of descriptors: the next finished session frees one */
            rc = thaw_fail_errno(err, "accept on the memory manager's socket");
            break;
        }
        struct session *s = calloc(1, sizeof *s);
        pthread_mutex_lock(&m.lock);
        bool full = st->active >= max;
        if (!full && s) {
            st->active++;
            st->sessions++;
        } else {
            st->refused++;
        }
        pthread_mutex_unlock(&m.lock);
        if (full || !s) {
            send_line(fd, "error", full ? "the memory manager serves its maximum of VMs" : "out of memory");
            close(fd);
            free(s);
            continue;
        }
        s->m = &m;
        s->fd = fd;
        if (o->once) { /* in this thread; its error is the run's */
            struct pager_stats pst = {0};
            s->rc = session_run(s, &pst);
            if (s->rc < 0)
                rc = thaw_fail(err, "%s", s->err.msg);
            session_end(s, &pst);
            free(s);
            break;
        }
        pthread_attr_t attr;
        pthread_t t;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int e = pthread_create(&t, &attr, session_main, s);
        pthread_attr_destroy(&attr);
        if (e != 0) {
            s->rc = -1;
            send_line(fd, "error", "cannot start a pager thread");
            struct pager_stats none = {0};
            session_end(s, &none);
            free(s);
        }
    }
    /* Running sessions end when their VMs go away. */
    pthread_mutex_lock(&m.lock);
    while (st->active)
        pthread_cond_wait(&m.idle, &m.lock);
    pthread_mutex_unlock(&m.lock);
    pthread_cond_destroy(&m.idle);
    pthread_mutex_destroy(&m.lock);
    return rc;
}

int pager_hello(int fd, const char *snap_dir, int mode, int timeout_ms, struct thaw_error *err)
{
    char abs[PATH_MAX];
    if (!realpath(snap_dir, abs))
        return thaw_fail_errno(err, "snapshot %s", snap_dir);
    /* "installed": the VMM reads the pages a prefetch installed after "ready" (pager.h). */
    json_t *o = json_pack("{sssb}", "snapshot", abs, "installed", 1);
    if (o && mode >= 0)
        json_object_set_new(o, "mode", json_string(pager_mode_name((enum pager_mode)mode)));
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s || strlen(s) + 2 > PAGER_HELLO_MAX) {
        free(s);
        return thaw_fail(err, "snapshot path too long for the pager hello");
    }
    size_t n = strlen(s);
    s[n] = '\n';
    ssize_t w = send(fd, s, n + 1, MSG_NOSIGNAL);
    free(s);
    if (w != (ssize_t)(n + 1))
        return thaw_fail_errno(err, "sending the hello to the pager");
    char line[1024];
    if (read_line(fd, line, sizeof line, timeout_ms, err) < 0) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        return thaw_fail(err, "the pager did not answer the hello: %s", why);
    }
    json_error_t je;
    json_t *r = json_loads(line, 0, &je);
    const char *ev = json_string_value(json_object_get(r, "event"));
    const char *e = json_string_value(json_object_get(r, "error"));
    int rc = 0;
    if (!ev || strcmp(ev, "hello"))
        rc = thaw_fail(err, "the pager refused: %s", e ? e : "malformed answer");
    json_decref(r);
    return rc;
}
