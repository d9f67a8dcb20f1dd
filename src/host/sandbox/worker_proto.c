#include "host/sandbox/worker_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "host/util/clock.h"

#define SMALL_MAX 8192u /* create */
#define STATS_MAX 4096u

bool wp_type_limit(uint32_t type, uint32_t *limit)
{
    uint32_t l;
    switch (type) {
    case WP_CREATE_BOOT:
    case WP_CREATE_RESTORE: l = SMALL_MAX; break;
    case WP_INVOKE:
    case WP_RESPONSE: l = WP_MAX_BODY; break;
    case WP_DONE: l = WP_STATE_MAX; break;
    case WP_STATS:
    case WP_SNAPSHOT:
    case WP_SHUTDOWN: l = 0; break;
    case WP_READY: l = STATS_MAX + 4 + WP_PATH_MAX + 64; break;
    case WP_STATS_REPLY: l = STATS_MAX; break;
    case WP_LOG: l = 16 + WP_LOG_LINE_MAX; break;
    case WP_ERROR: l = 8 + WP_ERROR_MAX; break;
    default: return false;
    }
    if (limit)
        *limit = l;
    return true;
}

bool wp_is_request(uint32_t type)
{
    return type >= WP_CREATE_BOOT && type <= WP_SHUTDOWN;
}

const char *wp_type_name(uint32_t type)
{
    static const char *const req[] = {"create-boot", "create-restore", "invoke", "stats", "snapshot", "shutdown"};
    static const char *const rep[] = {"ready", "response", "stats-reply", "done", "log", "error"};
    if (type >= WP_CREATE_BOOT && type <= WP_SHUTDOWN)
        return req[type - WP_CREATE_BOOT];
    if (type >= WP_READY && type <= WP_ERROR)
        return rep[type - WP_READY];
    return "unknown";
}

/* ---- payload writer and reader -------------------------------------------------------- */

struct out {
    uint8_t *p;
    size_t len, cap;
    bool oom;
};

static void put(struct out *o, const void *src, size_t n)
{
    if (o->oom || n == 0)
        return;
    if (o->len + n > o->cap) {
        size_t cap = o->cap ? o->cap : 256;
        while (cap < o->len + n)
            cap *= 2;
        uint8_t *p = realloc(o->p, cap);
        if (!p) {
            o->oom = true;
            return;
        }
        o->p = p;
        o->cap = cap;
    }
    memcpy(o->p + o->len, src, n);
    o->len += n;
}

static void put_u32(struct out *o, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(o, b, 4);
}

static void put_u64(struct out *o, uint64_t v)
{
    put_u32(o, (uint32_t)v);
    put_u32(o, (uint32_t)(v >> 32));
}

static void put_u8(struct out *o, uint8_t v) { put(o, &v, 1); }

static void put_str(struct out *o, const char *s)
{
    size_t n = strlen(s);
    put_u32(o, (uint32_t)n);
    put(o, s, n);
}

struct in {
    const uint8_t *p;
    size_t len, off;
    bool bad;
    const char *why;
};

static bool take(struct in *i, size_t n, const char *what)
{
    if (i->bad)
        return false;
    if (n > i->len - i->off) {
        i->bad = true;
        i->why = what;
        return false;
    }
    return true;
}

static uint32_t get_u32(struct in *i, const char *what)
{
    if (!take(i, 4, what))
        return 0;
    const uint8_t *b = i->p + i->off;
    i->off += 4;
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint64_t get_u64(struct in *i, const char *what)
{
    uint64_t lo = get_u32(i, what);
    return lo | (uint64_t)get_u32(i, what) << 32;
}

static bool get_bool(struct in *i, const char *what)
{
    if (!take(i, 1, what))
        return false;
    uint8_t v = i->p[i->off++];
    if (v > 1) {
        i->bad = true;
        i->why = what;
    }
    return v == 1;
}

/* A string of at most cap-1 bytes without NUL, copied into dst. */
static void get_str(struct in *i, char *dst, size_t cap, const char *what)
{
    dst[0] = 0;
    uint32_t n = get_u32(i, what);
    if (i->bad)
        return;
    if (n >= cap || !take(i, n, what) || memchr(i->p + i->off, 0, n)) {
        i->bad = true;
        i->why = what;
        return;
    }
    memcpy(dst, i->p + i->off, n);
    dst[n] = 0;
    i->off += n;
}

/* ---- messages ----------------------------------------------------------------------------- */

static void put_stats(struct out *o, const struct sandbox_stats *s)
{
    put_str(o, s->id);
    put_str(o, s->function);
    put_u32(o, (uint32_t)s->start);
    put_u32(o, (uint32_t)s->mode);
    put_u8(o, s->in_worker);
    put_u8(o, s->exited);
    const uint64_t v[] = {s->boot_ns, s->state_load_ns, s->memory_setup_ns, s->vm_create_ns, s->restore_ns,
                          s->invocations, s->first_invoke_ns, s->last_invoke_ns, s->vm_exits, s->hypercalls,
                          (uint64_t)s->exit_status, s->pages_served, s->zero_pages, s->host_page_faults,
                          s->memory_bytes, s->rss_kb, s->bytes_copied, s->ws_pages, s->ws_regions, s->ws_bytes,
                          s->ws_read_ns, s->ws_install_ns, s->reap_misses, s->save_ns, s->snapshot_allocated_bytes,
                          s->rootfs_bytes, s->rootfs_cow_pages, s->rootfs_ws_pages, s->rootfs_ws_ns,
                          s->image_restore_ns, s->rootfs_cow_ns, s->rootfs_cow_bytes, s->rootfs_ws_bytes,
                          s->prefault_pages, s->prefault_touched, s->prefault_ns, s->prefault_setup_ns,
                          s->rootfs_ws_withheld, s->kvm_first_exits, s->kvm_first_faults,
                          s->kvm_first_faults_fixed, s->kvm_first_emulated};
    for (size_t k = 0; k < sizeof v / sizeof *v; k++)
        put_u64(o, v[k]);
    put_u8(o, s->kvm_first_ok);
    put_u8(o, s->reap_recorded);
    put_u8(o, s->reap_prefetched);
    put_str(o, s->reap_note);
    put_str(o, s->prefault_note);
}

static void get_stats(struct in *i, struct sandbox_stats *s)
{
    memset(s, 0, sizeof *s);
    get_str(i, s->id, sizeof s->id, "stats id");
    get_str(i, s->function, sizeof s->function, "stats function");
    uint32_t start = get_u32(i, "stats start"), mode = get_u32(i, "stats mode");
    if (start > SANDBOX_START_SHARE || mode > MEM_SHARE) {
        i->bad = true;
        i->why = "stats start or mode";
    }
    s->start = (enum sandbox_start)start;
    s->mode = (enum mem_mode)mode;
    s->in_worker = get_bool(i, "stats in_worker");
    s->exited = get_bool(i, "stats exited");
    uint64_t exit_status = 0;
    uint64_t *v[] = {&s->boot_ns, &s->state_load_ns, &s->memory_setup_ns, &s->vm_create_ns, &s->restore_ns,
                     &s->invocations, &s->first_invoke_ns, &s->last_invoke_ns, &s->vm_exits, &s->hypercalls,
                     &exit_status, &s->pages_served, &s->zero_pages, &s->host_page_faults,
                     &s->memory_bytes, &s->rss_kb, &s->bytes_copied, &s->ws_pages, &s->ws_regions, &s->ws_bytes,
                     &s->ws_read_ns, &s->ws_install_ns, &s->reap_misses, &s->save_ns, &s->snapshot_allocated_bytes,
                     &s->rootfs_bytes, &s->rootfs_cow_pages, &s->rootfs_ws_pages, &s->rootfs_ws_ns,
                     &s->image_restore_ns, &s->rootfs_cow_ns, &s->rootfs_cow_bytes, &s->rootfs_ws_bytes,
                     &s->prefault_pages, &s->prefault_touched, &s->prefault_ns, &s->prefault_setup_ns,
                     &s->rootfs_ws_withheld, &s->kvm_first_exits, &s->kvm_first_faults,
                     &s->kvm_first_faults_fixed, &s->kvm_first_emulated};
    for (size_t k = 0; k < sizeof v / sizeof *v; k++)
        *v[k] = get_u64(i, "stats counters");
    s->kvm_first_ok = get_bool(i, "stats kvm_first_ok");
    s->exit_status = (int64_t)exit_status;
    s->reap_recorded = get_bool(i, "stats reap_recorded");
    s->reap_prefetched = get_bool(i, "stats reap_prefetched");
    get_str(i, s->reap_note, sizeof s->reap_note, "stats reap_note");
    get_str(i, s->prefault_note, sizeof s->prefault_note, "stats prefault_note");
}

int wp_encode(const struct wp_msg *m, uint8_t **frame, size_t *len, struct thaw_error *err)
{
    uint32_t limit;
    if (!wp_type_limit((uint32_t)m->type, &limit))
        return thaw_fail(err, "worker protocol: cannot encode message type %u", (unsigned)m->type);
    struct out o = {0};
    put_u32(&o, (uint32_t)m->type);
    put_u32(&o, 0); /* length, filled in below */
    switch (m->type) {
    case WP_CREATE_BOOT:
    case WP_CREATE_RESTORE: {
        const struct wp_create *c = &m->u.create;
        put_str(&o, c->path);
        put_str(&o, c->id);
        put_str(&o, c->pager_socket);
        put_u32(&o, c->mode);
        put_u64(&o, c->boot_timeout_ns);
        put_u64(&o, c->invoke_timeout_ns);
        put_u64(&o, c->memory_mib);
        put_u8(&o, c->trace_syscalls);
        put_u8(&o, c->drop_cache);
        put_u8(&o, c->prefetch_files);
        put_u8(&o, c->merge_files);
        break;
    }
    case WP_INVOKE:
    case WP_RESPONSE:
    case WP_DONE:
        if (m->u.body.len > limit) {
            free(o.p);
            return thaw_fail(err, "worker protocol: %s of %zu bytes exceeds %u", wp_type_name(m->type),
                             m->u.body.len, limit);
        }
        put(&o, m->u.body.data, m->u.body.len);
        break;
    case WP_READY:
        put_stats(&o, &m->u.stats);
        put_u64(&o, m->invoke_timeout_ns);
        put_u64(&o, m->guest_addr);
        put_u64(&o, m->rootfs_addr);
        put_u64(&o, m->rootfs_size);
        put_str(&o, m->rootfs.path);
        put_u64(&o, m->rootfs.gpa);
        put_u64(&o, m->rootfs.dev);
        put_u64(&o, m->rootfs.ino);
        put_u64(&o, m->rootfs.mtime_ns);
        break;
    case WP_STATS_REPLY: put_stats(&o, &m->u.stats); break;
    case WP_LOG: {
        size_t n = m->u.log.len > WP_LOG_LINE_MAX ? WP_LOG_LINE_MAX : m->u.log.len;
        put_u64(&o, m->u.log.invocation);
        put_u32(&o, m->u.log.stream);
        put_u32(&o, (uint32_t)n);
        put(&o, m->u.log.line, n);
        break;
    }
    case WP_ERROR:
        put_u32(&o, m->u.fail.failure);
        put_str(&o, m->u.fail.msg);
        break;
    case WP_STATS:
    case WP_SNAPSHOT:
    case WP_SHUTDOWN: break;
    }
    if (o.oom) {
        free(o.p);
        return thaw_fail(err, "out of memory");
    }
    size_t plen = o.len - WP_HEADER_SIZE;
    if (plen > limit) {
        free(o.p);
        return thaw_fail(err, "worker protocol: %s payload of %zu bytes exceeds %u", wp_type_name(m->type), plen,
                         limit);
    }
    for (int k = 0; k < 4; k++)
        o.p[4 + k] = (uint8_t)(plen >> (8 * k));
    *frame = o.p;
    *len = o.len;
    return 0;
}

int wp_decode(uint32_t type, const uint8_t *payload, size_t len, struct wp_msg *m, struct thaw_error *err)
{
    uint32_t limit;
    if (!wp_type_limit(type, &limit))
        return thaw_fail(err, "worker protocol: unknown message type %u", (unsigned)type);
    if (len > limit)
        return thaw_fail(err, "worker protocol: %s payload of %zu bytes exceeds %u", wp_type_name(type), len, limit);
    memset(m, 0, sizeof *m);
    m->type = (enum wp_type)type;
    struct in i = {.p = payload, .len = len};
    switch (m->type) {
    case WP_CREATE_BOOT:
    case WP_CREATE_RESTORE: {
        struct wp_create *c = &m->u.create;
        get_str(&i, c->path, sizeof c->path, "create path");
        get_str(&i, c->id, sizeof c->id, "create id");
        get_str(&i, c->pager_socket, sizeof c->pager_socket, "create pager socket");
        c->mode = get_u32(&i, "create mode");
        c->boot_timeout_ns = get_u64(&i, "create timeouts");
        c->invoke_timeout_ns = get_u64(&i, "create timeouts");
        c->memory_mib = get_u64(&i, "create memory");
        c->trace_syscalls = get_bool(&i, "create trace_syscalls");
        c->drop_cache = get_bool(&i, "create drop_cache");
        c->prefetch_files = get_bool(&i, "create prefetch_files");
        c->merge_files = get_bool(&i, "create merge_files");
        if (!i.bad && (c->mode > MEM_SHARE || !c->path[0] || c->memory_mib > (1u << 20))) {
            i.bad = true;
            i.why = "create mode, path or memory";
        }
        break;
    }
    case WP_INVOKE:
    case WP_RESPONSE:
    case WP_DONE:
        m->u.body.data = payload;
        m->u.body.len = len;
        i.off = len;
        break;
    case WP_READY:
        get_stats(&i, &m->u.stats);
        m->invoke_timeout_ns = get_u64(&i, "ready invoke timeout");
        m->guest_addr = get_u64(&i, "ready guest address");
        m->rootfs_addr = get_u64(&i, "ready rootfs address");
        m->rootfs_size = get_u64(&i, "ready rootfs size");
        get_str(&i, m->rootfs.path, sizeof m->rootfs.path, "ready rootfs path");
        m->rootfs.gpa = get_u64(&i, "ready rootfs address");
        m->rootfs.dev = get_u64(&i, "ready rootfs identity");
        m->rootfs.ino = get_u64(&i, "ready rootfs identity");
        m->rootfs.mtime_ns = get_u64(&i, "ready rootfs identity");
        break;
    case WP_STATS_REPLY: get_stats(&i, &m->u.stats); break;
    case WP_LOG: {
        m->u.log.invocation = get_u64(&i, "log invocation");
        m->u.log.stream = get_u32(&i, "log stream");
        uint32_t n = get_u32(&i, "log length");
        if (!i.bad && (m->u.log.stream < SANDBOX_STDOUT || m->u.log.stream > SANDBOX_KERNEL ||
                       n > WP_LOG_LINE_MAX || !take(&i, n, "log line"))) {
            i.bad = true;
            i.why = "log stream or line";
        }
        if (!i.bad) {
            m->u.log.line = payload + i.off;
            m->u.log.len = n;
            i.off += n;
        }
        break;
    }
    case WP_ERROR:
        m->u.fail.failure = get_u32(&i, "error failure");
        get_str(&i, m->u.fail.msg, sizeof m->u.fail.msg, "error message");
        if (!i.bad && (m->u.fail.failure == SANDBOX_OK || m->u.fail.failure > SANDBOX_FAIL_PAGER)) {
            i.bad = true;
            i.why = "error failure";
        }
        break;
    case WP_STATS:
    case WP_SNAPSHOT:
    case WP_SHUTDOWN: break;
    }
    if (!i.bad && i.off != len) {
        i.bad = true;
        i.why = "trailing bytes";
    }
    if (i.bad)
        return thaw_fail(err, "worker protocol: malformed %s (%s)", wp_type_name(type), i.why);
    return 0;
}

/* ---- transport -------------------------------------------------------------------------- */

int wp_send(int sock, const struct wp_msg *m, int pass_fd, struct thaw_error *err)
{
    uint8_t *frame;
    size_t len;
    if (wp_encode(m, &frame, &len, err) < 0)
        return -1;
    size_t off = 0;
    while (off < len) {
        struct iovec iov = {.iov_base = frame + off, .iov_len = len - off};
        union {
            struct cmsghdr h;
            char buf[CMSG_SPACE(sizeof(int))];
        } ctl;
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
        if (off == 0 && pass_fd >= 0) {
            memset(&ctl, 0, sizeof ctl);
            mh.msg_control = ctl.buf;
            mh.msg_controllen = sizeof ctl.buf;
            struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int));
            memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
        }
        ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free(frame);
            return thaw_fail_errno(err, "worker protocol: sending %s", wp_type_name(m->type));
        }
        off += (size_t)n;
    }
    free(frame);
    return 0;
}

/* Waits for sock to be readable; 1 ready, 0 timed out, -1 error. */
static int wait_readable(int sock, uint64_t deadline_ns)
{
    for (;;) {
        int ms = -1;
        if (deadline_ns) {
            uint64_t now = clock_now_ns();
            if (now >= deadline_ns)
                return 0;
            uint64_t left = (deadline_ns - now + 999999) / 1000000;
            ms = left > 1000000 ? 1000000 : (int)left;
        }
        struct pollfd p = {.fd = sock, .events = POLLIN};
        int k = poll(&p, 1, ms);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        if (k > 0)
            return 1;
    }
}

/* Reads exactly len bytes; the first read also collects a passed descriptor. */
static enum wp_recv_status read_exact(int sock, uint8_t *buf, size_t len, uint64_t deadline_ns, int *fd_out,
                                      struct thaw_error *err)
{
    size_t off = 0;
    while (off < len) {
        int w = wait_readable(sock, deadline_ns);
        if (w == 0) {
            thaw_fail(err, "worker protocol: no answer before the deadline");
            return WP_RECV_TIMEOUT;
        }
        if (w < 0) {
            thaw_fail_errno(err, "worker protocol: poll");
            return WP_RECV_IO;
        }
        union {
            struct cmsghdr h;
            char buf[CMSG_SPACE(4 * sizeof(int))];
        } ctl;
        struct iovec iov = {.iov_base = buf + off, .iov_len = len - off};
        struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
                            .msg_controllen = sizeof ctl.buf};
        ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n < 0) {
            thaw_fail_errno(err, "worker protocol: receiving");
            return errno == ECONNRESET ? WP_RECV_EOF : WP_RECV_IO;
        }
        /* Descriptors: keep at most one, close the rest whatever the peer sent. */
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                continue;
            size_t nfd = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t k = 0; k < nfd; k++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + k * sizeof(int), sizeof fd);
                if (fd_out && *fd_out < 0)
                    *fd_out = fd;
                else
                    close(fd);
            }
        }
        if (n == 0) {
            thaw_fail(err, "worker protocol: the peer closed the connection");
            return WP_RECV_EOF;
        }
        off += (size_t)n;
    }
    return WP_RECV_OK;
}

enum wp_recv_status wp_recv(int sock, uint64_t deadline_ns, bool accept_fd, struct wp_frame *f,
                            struct thaw_error *err)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    uint8_t h[WP_HEADER_SIZE];
    int fd = -1;
    enum wp_recv_status st = read_exact(sock, h, sizeof h, deadline_ns, &fd, err);
    if (st != WP_RECV_OK)
        goto fail;
    uint32_t type = (uint32_t)h[0] | (uint32_t)h[1] << 8 | (uint32_t)h[2] << 16 | (uint32_t)h[3] << 24;
    uint32_t len = (uint32_t)h[4] | (uint32_t)h[5] << 8 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 24;
    uint32_t limit;
    if (!wp_type_limit(type, &limit)) {
        thaw_fail(err, "worker protocol: unknown message type %u", (unsigned)type);
        st = WP_RECV_BAD;
        goto fail;
    }
    if (len > limit) {
        thaw_fail(err, "worker protocol: %s of %u bytes exceeds %u", wp_type_name(type), (unsigned)len,
                  (unsigned)limit);
        st = WP_RECV_BAD;
        goto fail;
    }
    f->buf = malloc(len ? len : 1);
    if (!f->buf) {
        thaw_fail(err, "out of memory");
        st = WP_RECV_IO;
        goto fail;
    }
    if (len && (st = read_exact(sock, f->buf, len, deadline_ns, NULL, err)) != WP_RECV_OK)
        goto fail;
    if (wp_decode(type, f->buf, len, &f->msg, err) < 0) {
        st = WP_RECV_BAD;
        goto fail;
    }
    if (fd >= 0 && !accept_fd) {
        close(fd);
        fd = -1;
    }
    f->fd = fd;
    return WP_RECV_OK;
fail:
    if (fd >= 0)
        close(fd);
    free(f->buf);
    f->buf = NULL;
    return st;
}

void wp_frame_free(struct wp_frame *f)
{
    free(f->buf);
    f->buf = NULL;
    if (f->fd >= 0)
        close(f->fd);
    f->fd = -1;
}
