#include "host/snapshot/pager_watch.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct pager_watch {
    pthread_t tid;
    struct mem_backend *b;
    pager_death_fn on_death;
    void *ctx;
};

static void *watch_main(void *arg)
{
    struct pager_watch *w = arg;
    struct mem_backend *b = w->b;
    /* POLLRDHUP only on the connection: replies to control queries (POLLIN) are the
     * caller's to read. pager_watch_stop shuts the connection down after setting
     * watch_stopping, which ends this poll too. */
    struct pollfd fds[2] = {{.fd = b->pager_fd, .events = POLLRDHUP}, {.fd = b->pager_pidfd, .events = POLLIN}};
    nfds_t n = b->pager_pidfd >= 0 ? 2 : 1;
    for (;;) {
        int k = poll(fds, n, -1);
        if (k < 0 && errno == EINTR)
            continue;
        if (atomic_load(&b->watch_stopping))
            return NULL;
        if (k < 0 || fds[0].revents || (n == 2 && fds[1].revents))
            break;
    }
    char why[sizeof b->pager_dead_why];
    if (b->thread) {
        char detail[300];
        mem_backend_pager_thread_error(b, detail, sizeof detail);
        snprintf(why, sizeof why, "pager died: the pager thread stopped%s%s", detail[0] ? ": " : "", detail);
    } else if (n == 2 && fds[1].revents) {
        snprintf(why, sizeof why, "pager died: the pager process (pid %ld) exited", (long)b->pager_pid);
    } else if (b->pager_pid > 0) {
        snprintf(why, sizeof why, "pager died: the pager process (pid %ld) closed its connection", (long)b->pager_pid);
    } else {
        snprintf(why, sizeof why, "pager died: the pager closed its connection");
    }
    snprintf(b->pager_dead_why, sizeof b->pager_dead_why, "%s", why);
    atomic_store(&b->pager_dead, true);
    if (w->on_death)
        w->on_death(w->ctx, why);
    /* Release waiting faults (see pager_watch.h), after the kick. */
    pthread_mutex_lock(&b->uffd_lock);
    if (b->uffd >= 0) {
        close(b->uffd);
        b->uffd = -1;
    }
    pthread_mutex_unlock(&b->uffd_lock);
    return NULL;
}

int pager_watch_start(struct mem_backend *b, pager_death_fn on_death, void *ctx, struct thaw_error *err)
{
    if ((b->mode != MEM_UFFD && b->mode != MEM_REAP) || b->watch || b->pager_fd < 0)
        return 0;
    struct pager_watch *w = calloc(1, sizeof *w);
    if (!w)
        return thaw_fail(err, "out of memory");
    *w = (struct pager_watch){.b = b, .on_death = on_death, .ctx = ctx};
    atomic_store(&b->watch_stopping, false);
    int e = pthread_create(&w->tid, NULL, watch_main, w);
    if (e != 0) {
        free(w);
        errno = e;
        return thaw_fail_errno(err, "cannot start the pager watcher");
    }
    b->watch = w;
    return 0;
}

void pager_watch_stop(struct mem_backend *b)
{
    struct pager_watch *w = b->watch;
    if (!w)
        return;
    atomic_store(&b->watch_stopping, true);
    /* The end of the connection the pager would see at close anyway; it wakes the poll. */
    shutdown(b->pager_fd, SHUT_RDWR);
    pthread_join(w->tid, NULL);
    free(w);
    b->watch = NULL;
}
