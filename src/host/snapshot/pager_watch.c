#include "host/snapshot/pager_watch.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

struct pager_watch {
    pthread_t tid;
    struct mem_backend *b;
    pager_death_fn on_death; /* under b->uffd_lock: set again when the watch is taken over */
    void *ctx;
};

static void *watch_main(void *arg)
{
    struct pager_watch *w = arg;
    struct mem_backend *b = w->b;
    /* POLLRDHUP only on the connection: replies to control queries (POLLIN) are the
     * caller's to read. pager_watch_stop sets watch_stopping and wakes the eventfd. */
    struct pollfd fds[3] = {{.fd = b->watch_wake_fd, .events = POLLIN},
                            {.fd = b->pager_fd, .events = POLLRDHUP},
                            {.fd = b->pager_pidfd, .events = POLLIN}};
    nfds_t n = b->pager_pidfd >= 0 ? 3 : 2;
    for (;;) {
        int k = poll(fds, n, -1);
        if (k < 0 && errno == EINTR)
            continue;
        if (atomic_load(&b->watch_stopping))
            return NULL;
        if (k < 0 || fds[1].revents || (n == 3 && fds[2].revents))
            break;
    }
    char why[sizeof b->pager_dead_why];
    if (b->thread) {
        char detail[300];
        mem_backend_pager_thread_error(b, detail, sizeof detail);
        snprintf(why, sizeof why, "pager died: the pager thread stopped%s%s", detail[0] ? ": " : "", detail);
    } else if (n == 3 && fds[2].revents) {
        snprintf(why, sizeof why, "pager died: the pager process (pid %ld) exited", (long)b->pager_pid);
    } else if (b->pager_pid > 0) {
        snprintf(why, sizeof why, "pager died: the pager process (pid %ld) closed its connection", (long)b->pager_pid);
    } else {
        snprintf(why, sizeof why, "pager died: the pager closed its connection");
    }
    snprintf(b->pager_dead_why, sizeof b->pager_dead_why, "%s", why);
    atomic_store(&b->pager_dead, true);
    pthread_mutex_lock(&b->uffd_lock);
    pager_death_fn on_death = w->on_death;
    void *ctx = w->ctx;
    pthread_mutex_unlock(&b->uffd_lock);
    if (on_death)
        on_death(ctx, why);
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
    if ((b->mode != MEM_UFFD && b->mode != MEM_REAP) || b->pager_fd < 0)
        return 0;
    if (b->watch) { /* watched since the restore: who to tell is new */
        pthread_mutex_lock(&b->uffd_lock);
        b->watch->on_death = on_death;
        b->watch->ctx = ctx;
        pthread_mutex_unlock(&b->uffd_lock);
        return 0;
    }
    if (b->watch_wake_fd < 0 && (b->watch_wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
        return thaw_fail_errno(err, "cannot make the pager watcher's eventfd");
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
    uint64_t one = 1, drained;
    if (write(b->watch_wake_fd, &one, sizeof one) < 0) /* (a counter this size cannot fill) */
        shutdown(b->pager_fd, SHUT_RDWR);             /* the other way to wake it: the connection's end */
    pthread_join(w->tid, NULL);
    (void)!read(b->watch_wake_fd, &drained, sizeof drained); /* emptied for a watch started again */
    free(w);
    b->watch = NULL;
}
