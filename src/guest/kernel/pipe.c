/* Pipes, Unix socket pairs, epoll and poll: what asyncio and selectors need (a
 * self-pipe made by socketpair, non-blocking sends and receives on it, epoll over it).
 *
 * Non-blocking descriptors get EAGAIN as on Linux. A blocking call that must wait (a
 * read from an empty channel whose writer is open, a write to a full one, epoll_wait
 * or poll with nothing ready) parks the calling thread on the scheduler's I/O wait
 * channel (thread_io_wait in thread.h), which every change of any channel wakes (data
 * in, room made, an end closed); it then looks again. If no other thread can ever run,
 * the scheduler stops the guest with one error naming the wait. epoll_wait and poll
 * with a timeout wait at most that long.
 *
 * A channel is a byte ring of CHAN_BYTES, allocated on first use. A pipe is one
 * channel; a socket pair is two, one each way. Descriptors point at endpoints (fs.c
 * keeps the endpoint index in file->node), which count the descriptors sharing them
 * (dup); channels count the endpoints reading and writing them. */
#include "kernel.h"
#include "fs.h"
#include "pipe.h"
#include "syscalls.h"
#include "thread.h"

#define MAX_CHANNELS 64
#define MAX_ENDPOINTS 64
#define CHAN_BYTES (64u << 10)
#define MAX_EPOLLS 16
#define MAX_EPOLL_ITEMS 64

enum { EPOLLIN = 1, EPOLLOUT = 4, EPOLLERR = 8, EPOLLHUP = 0x10, EPOLLONESHOT = 1u << 30, EPOLLET = 1u << 31 };
enum { EPOLL_CTL_ADD = 1, EPOLL_CTL_DEL = 2, EPOLL_CTL_MOD = 3 };
enum { AF_UNIX = 1, SOCK_STREAM = 1, SOCK_TYPE_MASK = 0xf, SOCK_NONBLOCK = O_NONBLOCK, SOCK_CLOEXEC = O_CLOEXEC };

struct channel {
    bool used;
    uint8_t *buf;
    uint32_t head, len;
    uint16_t readers, writers; /* endpoints */
};

struct endpoint {
    bool used, socket;
    int16_t rd, wr; /* channel indexes, -1 for none */
    uint16_t refs;  /* descriptors */
};

struct epoll_item {
    int32_t fd;
    uint32_t events;
    uint64_t data;
};

struct epoll {
    bool used;
    uint16_t refs;
    uint32_t count;
    struct epoll_item items[MAX_EPOLL_ITEMS];
};

static struct channel chans[MAX_CHANNELS];
static struct endpoint eps[MAX_ENDPOINTS];
static struct epoll epolls[MAX_EPOLLS];

static int new_channel(void)
{
    for (int i = 0; i < MAX_CHANNELS; i++)
        if (!chans[i].used) {
            chans[i] = (struct channel){.used = true};
            return i;
        }
    return -ENFILE;
}

static int new_endpoint(int rd, int wr, bool socket)
{
    for (int i = 0; i < MAX_ENDPOINTS; i++)
        if (!eps[i].used) {
            eps[i] = (struct endpoint){.used = true, .socket = socket, .rd = (int16_t)rd, .wr = (int16_t)wr, .refs = 1};
            if (rd >= 0)
                chans[rd].readers++;
            if (wr >= 0)
                chans[wr].writers++;
            return i;
        }
    return -ENFILE;
}

static void put_channel(int c)
{
    if (c >= 0 && !chans[c].readers && !chans[c].writers) {
        if (chans[c].buf)
            mm_free_pages(chans[c].buf, CHAN_BYTES);
        chans[c] = (struct channel){0};
    }
}

static void put_endpoint(uint32_t e)
{
    struct endpoint *ep = &eps[e];
    if (--ep->refs)
        return;
    if (ep->rd >= 0)
        chans[ep->rd].readers--;
    if (ep->wr >= 0)
        chans[ep->wr].writers--;
    put_channel(ep->rd);
    put_channel(ep->wr);
    *ep = (struct endpoint){0};
    thread_io_changed(); /* readers see end of file, writers EPIPE */
}

/* Installs endpoints a and b as two new descriptors into fds[2]. */
static int64_t install_pair(int a, int b, uint64_t flags, int32_t *fds)
{
    int64_t fa = fs_install(FT_PIPE, (uint32_t)a, (uint32_t)(flags & O_NONBLOCK), flags & O_CLOEXEC);
    if (fa < 0) {
        put_endpoint((uint32_t)a);
        put_endpoint((uint32_t)b);
        return fa;
    }
    int64_t fb = fs_install(FT_PIPE, (uint32_t)b, (uint32_t)(flags & O_NONBLOCK), flags & O_CLOEXEC);
    if (fb < 0) {
        sys_close((int)fa);
        put_endpoint((uint32_t)b);
        return fb;
    }
    fds[0] = (int32_t)fa;
    fds[1] = (int32_t)fb;
    return 0;
}

int64_t sys_pipe2(int32_t *fds, uint64_t flags)
{
    if (flags & ~(uint64_t)(O_NONBLOCK | O_CLOEXEC))
        return -EINVAL;
    if (!user_range_ok((uint64_t)(uintptr_t)fds, 2 * sizeof *fds))
        return -EFAULT;
    int c = new_channel();
    if (c < 0)
        return c;
    int r = new_endpoint(c, -1, false);
    int w = r < 0 ? r : new_endpoint(-1, c, false);
    if (w < 0) {
        if (r >= 0)
            put_endpoint((uint32_t)r);
        put_channel(c);
        return -ENFILE;
    }
    /* fds[0] reads, fds[1] writes, as pipe(2) says. */
    return install_pair(r, w, flags, fds);
}

int64_t sys_socketpair(uint64_t domain, uint64_t type, uint64_t proto, int32_t *fds)
{
    if (domain != AF_UNIX)
        return -EAFNOSUPPORT;
    if ((type & SOCK_TYPE_MASK) != SOCK_STREAM || (proto != 0 && proto != 1 /* PF_UNIX */))
        return -EOPNOTSUPP; /* datagram and seqpacket pairs: not needed so far */
    if (type & ~(uint64_t)(SOCK_TYPE_MASK | SOCK_NONBLOCK | SOCK_CLOEXEC))
        return -EINVAL;
    if (!user_range_ok((uint64_t)(uintptr_t)fds, 2 * sizeof *fds))
        return -EFAULT;
    int c1 = new_channel(), c2 = c1 < 0 ? c1 : new_channel();
    if (c2 < 0) {
        if (c1 >= 0)
            put_channel(c1);
        return -ENFILE;
    }
    int a = new_endpoint(c1, c2, true);
    int b = a < 0 ? a : new_endpoint(c2, c1, true);
    if (b < 0) {
        if (a >= 0)
            put_endpoint((uint32_t)a);
        put_channel(c1);
        put_channel(c2);
        return -ENFILE;
    }
    return install_pair(a, b, type & (SOCK_NONBLOCK | SOCK_CLOEXEC), fds);
}

void pipe_ref(const struct file *f)
{
    if (f->type == FT_PIPE)
        eps[f->node].refs++;
    else if (f->type == FT_EPOLL)
        epolls[f->node].refs++;
}

void pipe_unref(const struct file *f)
{
    if (f->type == FT_PIPE)
        put_endpoint(f->node);
    else if (f->type == FT_EPOLL && !--epolls[f->node].refs)
        epolls[f->node] = (struct epoll){0};
}

bool pipe_is_socket(const struct file *f) { return f->type == FT_PIPE && eps[f->node].socket; }

int64_t pipe_read(struct file *f, void *buf, uint64_t len)
{
    struct endpoint *ep = &eps[f->node];
    if (ep->rd < 0)
        return -EBADF;
    struct channel *c = &chans[ep->rd];
    while (!c->len) {
        if (!c->writers || !len)
            return 0; /* end of file */
        if (f->flags & O_NONBLOCK)
            return -EAGAIN;
        (void)thread_io_wait(0, ep->socket ? "read from an empty socket" : "read from an empty pipe");
    }
    uint64_t n = MIN(len, c->len);
    for (uint64_t i = 0; i < n; i++)
        ((uint8_t *)buf)[i] = c->buf[(c->head + i) % CHAN_BYTES];
    c->head = (uint32_t)((c->head + n) % CHAN_BYTES);
    c->len -= (uint32_t)n;
    thread_io_changed(); /* room for a blocked writer */
    return (int64_t)n;
}

int64_t pipe_write(struct file *f, const void *buf, uint64_t len)
{
    struct endpoint *ep = &eps[f->node];
    if (ep->wr < 0)
        return -EBADF;
    struct channel *c = &chans[ep->wr];
    if (!c->readers)
        return -EPIPE; /* SIGPIPE is never delivered: runtimes ignore it anyway */
    if (!c->buf && !(c->buf = mm_alloc_pages(CHAN_BYTES)))
        return -ENOMEM;
    uint64_t room = CHAN_BYTES - c->len;
    while (!room && len) {
        if (f->flags & O_NONBLOCK)
            return -EAGAIN;
        (void)thread_io_wait(0, ep->socket ? "write to a full socket" : "write to a full pipe");
        if (!c->readers)
            return -EPIPE;
        room = CHAN_BYTES - c->len;
    }
    uint64_t n = MIN(len, room);
    for (uint64_t i = 0; i < n; i++)
        c->buf[(c->head + c->len + i) % CHAN_BYTES] = ((const uint8_t *)buf)[i];
    c->len += (uint32_t)n;
    thread_io_changed(); /* data for a blocked reader or epoll_wait */
    return (int64_t)n;
}

int64_t pipe_pending(const struct file *f)
{
    const struct endpoint *ep = &eps[f->node];
    return ep->rd < 0 ? 0 : chans[ep->rd].len;
}

uint32_t pipe_poll(const struct file *f)
{
    if (f->type == FT_EPOLL)
        return 0;
    const struct endpoint *ep = &eps[f->node];
    uint32_t ev = 0;
    if (ep->rd >= 0) {
        const struct channel *c = &chans[ep->rd];
        if (c->len || !c->writers)
            ev |= EPOLLIN;
        if (!c->writers)
            ev |= EPOLLHUP;
    }
    if (ep->wr >= 0) {
        const struct channel *c = &chans[ep->wr];
        if (!c->readers)
            ev |= EPOLLERR | (ep->socket ? EPOLLHUP : 0);
        else if (c->len < CHAN_BYTES)
            ev |= EPOLLOUT;
    }
    return ev;
}

int64_t sys_socket_misc(uint64_t nr, int fd, uint64_t b, uint64_t c, uint64_t d, uint64_t e)
{
    struct file *f = fs_file(fd);
    if (!f)
        return -EBADF;
    if (!pipe_is_socket(f))
        return -ENOTSOCK;
    switch (nr) {
    case SYS_shutdown:
    case SYS_setsockopt:
        return b > 2 && nr == SYS_shutdown ? -EINVAL : 0; /* accepted, no effect needed */
    case SYS_getsockopt: { /* level b, option c, value d, length e */
        enum { SOL_SOCKET = 1, SO_TYPE = 3, SO_ERROR = 4, SO_DOMAIN = 39, SO_PROTOCOL = 38 };
        if (!user_range_ok(e, 4) || !user_range_ok(d, 4) || *(uint32_t *)(uintptr_t)e < 4)
            return -EFAULT;
        if (b != SOL_SOCKET)
            return -ENOPROTOOPT;
        int v = c == SO_TYPE ? SOCK_STREAM : c == SO_DOMAIN ? AF_UNIX : 0;
        if (c != SO_TYPE && c != SO_ERROR && c != SO_DOMAIN && c != SO_PROTOCOL)
            return -ENOPROTOOPT;
        *(int *)(uintptr_t)d = v;
        *(uint32_t *)(uintptr_t)e = 4;
        return 0;
    }
    default: /* getsockname, getpeername: an unnamed Unix socket (address b, length c) */
        if (!user_range_ok(c, 4) || (*(uint32_t *)(uintptr_t)c >= 2 && !user_range_ok(b, 2)))
            return -EFAULT;
        if (*(uint32_t *)(uintptr_t)c >= 2)
            *(uint16_t *)(uintptr_t)b = AF_UNIX;
        *(uint32_t *)(uintptr_t)c = 2;
        return 0;
    }
}

/* ---- epoll ----------------------------------------------------------------------- */

int64_t sys_epoll_create1(uint64_t flags)
{
    if (flags & ~(uint64_t)O_CLOEXEC)
        return -EINVAL;
    for (uint32_t i = 0; i < MAX_EPOLLS; i++)
        if (!epolls[i].used) {
            epolls[i] = (struct epoll){.used = true, .refs = 1};
            int64_t fd = fs_install(FT_EPOLL, i, 0, flags & O_CLOEXEC);
            if (fd < 0)
                epolls[i] = (struct epoll){0};
            return fd;
        }
    return -ENFILE;
}

struct __attribute__((packed)) linux_epoll_event {
    uint32_t events;
    uint64_t data;
};

int64_t sys_epoll_ctl(int epfd, int op, int fd, const struct linux_epoll_event *ev)
{
    struct file *e = fs_file(epfd), *t = fs_file(fd);
    if (!e || !t)
        return -EBADF;
    if (e->type != FT_EPOLL || epfd == fd)
        return -EINVAL;
    if (t->type == FT_REGULAR || t->type == FT_DIR)
        return -EPERM; /* as Linux: regular files are always ready, epoll refuses them */
    struct epoll *ep = &epolls[e->node];
    uint32_t i = 0;
    while (i < ep->count && ep->items[i].fd != fd)
        i++;
    if (op != EPOLL_CTL_DEL && !user_range_ok((uint64_t)(uintptr_t)ev, sizeof *ev))
        return -EFAULT;
    switch (op) {
    case EPOLL_CTL_ADD:
        if (i < ep->count)
            return -EEXIST;
        if (ep->count == MAX_EPOLL_ITEMS)
            return -ENOSPC;
        ep->items[ep->count++] = (struct epoll_item){.fd = fd, .events = ev->events, .data = ev->data};
        return 0;
    case EPOLL_CTL_MOD:
        if (i == ep->count)
            return -ENOENT;
        ep->items[i].events = ev->events;
        ep->items[i].data = ev->data;
        return 0;
    case EPOLL_CTL_DEL:
        if (i == ep->count)
            return -ENOENT;
        ep->items[i] = ep->items[--ep->count];
        return 0;
    default:
        return -EINVAL;
    }
}

/* Ready events of one descriptor, as poll would report them. */
uint32_t fs_ready_events(const struct file *f)
{
    if (f->type == FT_PIPE || f->type == FT_EPOLL)
        return pipe_poll(f);
    return EPOLLIN | EPOLLOUT; /* files and devices never wait */
}

/* The ready items of ep into out (at most max); one-shot items fire once. */
static int64_t epoll_scan(struct epoll *ep, struct linux_epoll_event *out, int64_t max)
{
    int64_t n = 0;
    for (uint32_t i = 0; i < ep->count && n < max;) {
        struct epoll_item *it = &ep->items[i];
        struct file *t = fs_file(it->fd);
        if (!t) { /* closed: Linux drops it with its last descriptor */
            *it = ep->items[--ep->count];
            continue;
        }
        uint32_t ready = fs_ready_events(t) & (it->events | EPOLLERR | EPOLLHUP);
        if (ready && (it->events & ~(uint32_t)(EPOLLONESHOT | EPOLLET))) {
            out[n].events = ready;
            out[n].data = it->data;
            n++;
            if (it->events & EPOLLONESHOT)
                it->events = 0;
        }
        i++;
    }
    return n;
}

int64_t sys_epoll_wait(int epfd, struct linux_epoll_event *out, int64_t max, int64_t timeout_ms)
{
    struct file *e = fs_file(epfd);
    if (!e)
        return -EBADF;
    if (e->type != FT_EPOLL || max <= 0 || max > 4096)
        return -EINVAL;
    if (!user_array_ok((uint64_t)(uintptr_t)out, (uint64_t)max, sizeof *out))
        return -EFAULT;
    uint64_t until = timeout_ms > 0 ? time_monotonic_ns() + (uint64_t)timeout_ms * 1000000u : 0;
    for (;;) {
        int64_t n = epoll_scan(&epolls[e->node], out, max);
        if (n || timeout_ms == 0)
            return n;
        if (thread_io_wait(until, "epoll_wait") == -ETIMEDOUT)
            return epoll_scan(&epolls[e->node], out, max);
    }
}

/* ---- poll ------------------------------------------------------------------------ */

struct linux_pollfd {
    int32_t fd;
    int16_t events, revents;
};

enum { POLLNVAL = 0x20 };

/* Fills every revents; returns how many descriptors have one. */
static int64_t poll_scan(struct linux_pollfd *p, uint64_t nfds)
{
    int64_t ready = 0;
    for (uint64_t i = 0; i < nfds; i++) {
        struct file *f = p[i].fd < 0 ? 0 : fs_file(p[i].fd);
        /* POLLIN/POLLOUT/POLLERR/POLLHUP share epoll's bit values; errors and hang-ups
         * are reported whether asked for or not, as on Linux. */
        p[i].revents = p[i].fd < 0 ? 0
                       : f         ? (int16_t)(fs_ready_events(f) & ((uint16_t)p[i].events | EPOLLERR | EPOLLHUP))
                                   : POLLNVAL;
        ready += p[i].revents != 0;
    }
    return ready;
}

int64_t sys_poll(struct linux_pollfd *fds, uint64_t nfds, bool forever, uint64_t deadline)
{
    if (nfds > 256) /* RLIMIT_NOFILE, as Linux refuses */
        return -EINVAL;
    if (!user_array_ok((uint64_t)(uintptr_t)fds, nfds, sizeof *fds))
        return -EFAULT;
    for (;;) {
        int64_t n = poll_scan(fds, nfds);
        if (n || (!forever && !deadline))
            return n;
        if (thread_io_wait(forever ? 0 : deadline, "poll") == -ETIMEDOUT)
            return poll_scan(fds, nfds);
    }
}

int64_t sys_poll_ms(struct linux_pollfd *fds, uint64_t nfds, int64_t timeout_ms)
{
    uint64_t deadline = 0;
    if (timeout_ms > 0)
        deadline = time_monotonic_ns() + (uint64_t)timeout_ms * 1000000u;
    return sys_poll(fds, nfds, timeout_ms < 0, deadline);
}

int64_t sys_ppoll(struct linux_pollfd *fds, uint64_t nfds, const struct linux_timespec *ts)
{
    uint64_t deadline;
    int64_t r = thread_deadline(ts, false, CLOCK_MONOTONIC, &deadline);
    if (r < 0)
        return r;
    if (ts && !ts->tv_sec && !ts->tv_nsec)
        deadline = 0; /* a zero timeout: look once, never wait */
    return sys_poll(fds, nfds, !ts, deadline);
}
