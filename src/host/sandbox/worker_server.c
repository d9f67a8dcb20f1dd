/* The worker process (`thaw worker --fd N`, exec'd by worker_client.c in fresh
 * namespaces): creates one instance with the in-process implementation, enters the
 * jail before the guest's first instruction, then serves the caller's requests until
 * SHUTDOWN or end of file. The caller is not trusted either: every frame is checked
 * (worker_proto.c), and anything unexpected ends the worker. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "host/jail/jail.h"
#include "host/sandbox/sandbox_impl.h"
#include "host/sandbox/worker_proto.h"

#define MAX_KEEP 64

struct worker {
    int sock;
    struct sandbox *sb;
    bool trap_denied;
};

static void send_log(void *ctx, const char *id, uint64_t invocation, enum sandbox_stream stream, const char *line,
                     size_t len)
{
    (void)id;
    struct worker *w = ctx;
    struct wp_msg m = {.type = WP_LOG,
                       .u.log = {.invocation = invocation, .stream = (uint32_t)stream,
                                 .line = (const uint8_t *)line, .len = len}};
    struct thaw_error err;
    (void)wp_send(w->sock, &m, -1, &err); /* a gone caller shows up as EOF on the next read */
}

static int send_error(struct worker *w, enum sandbox_failure f, const char *msg)
{
    struct wp_msg m = {.type = WP_ERROR, .u.fail = {.failure = f == SANDBOX_OK ? SANDBOX_FAIL_HOST : f}};
    snprintf(m.u.fail.msg, sizeof m.u.fail.msg, "%s", msg);
    struct thaw_error err;
    return wp_send(w->sock, &m, -1, &err);
}

/* Every descriptor open now was opened for the instance (the worker started with only
 * 0-2 and its socket): the jail keeps exactly these. */
static int open_fds(int *fds, size_t cap, size_t *n, struct thaw_error *err)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return thaw_fail_errno(err, "worker: listing /proc/self/fd");
    int self = dirfd(d);
    *n = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9')
            continue;
        int fd = atoi(e->d_name);
        if (fd == self || fd <= 2)
            continue;
        if (*n == cap) {
            closedir(d);
            return thaw_fail(err, "worker: more than %zu descriptors open", cap);
        }
        fds[(*n)++] = fd;
    }
    closedir(d);
    return 0;
}

static int enter_jail(void *ctx, struct thaw_error *err)
{
    struct worker *w = ctx;
    int keep[MAX_KEEP];
    size_t n;
    if (open_fds(keep, MAX_KEEP, &n, err) < 0)
        return -1;
    struct jail_config cfg = {.uid = JAIL_DEFAULT_UID, .gid = JAIL_DEFAULT_GID, .keep_fds = keep, .nkeep_fds = n,
                              .trap_denied = w->trap_denied};
    return jail_enter(&cfg, err);
}

static int create(struct worker *w, const struct wp_msg *m, struct thaw_error *err)
{
    const struct wp_create *c = &m->u.create;
    struct sandbox_options opt = {
        .id = c->id[0] ? c->id : NULL,
        .boot_timeout_ns = c->boot_timeout_ns,
        .invoke_timeout_ns = c->invoke_timeout_ns,
        .memory_mib = c->memory_mib,
        .trace_syscalls = c->trace_syscalls,
        .drop_cache = c->drop_cache,
        .pager_socket = c->pager_socket[0] ? c->pager_socket : NULL,
        .log = send_log,
        .log_ctx = w,
    };
    /* A boot runs the guest to its ready point: jail in between set-up and the first
     * KVM_RUN. A restore does not run the guest: jail right after it. */
    if (m->type == WP_CREATE_BOOT) {
        sandbox_local_drop_vms(); /* a spare's VM made ahead is for restores only */
        return sandbox_local_boot_before_run(&w->sb, c->path, &opt, enter_jail, w, err);
    }
    if (sandbox_local_restore_files(&w->sb, c->path, (enum mem_mode)c->mode, &opt, c->prefetch_files, c->merge_files, err) < 0)
        return -1;
    sandbox_local_before_jail(w->sb);
    return enter_jail(w, err);
}

static int serve(struct worker *w)
{
    struct thaw_error err = {{0}};
    for (;;) {
        struct wp_frame f;
        /* A descriptor is kept only with SNAPSHOT (wp_frame_free closes any other). */
        if (wp_recv(w->sock, 0, true, &f, &err) != WP_RECV_OK)
            return 1; /* the caller went away or broke the protocol */
        if (!wp_is_request(f.msg.type) || f.msg.type == WP_CREATE_BOOT || f.msg.type == WP_CREATE_RESTORE) {
            wp_frame_free(&f);
            return 2;
        }
        struct wp_msg r;
        memset(&r, 0, sizeof r);
        int rc = 0;
        bool last = false;
        switch (f.msg.type) {
        case WP_INVOKE: {
            uint8_t *resp = NULL;
            size_t len = 0;
            rc = sandbox_invoke(w->sb, f.msg.u.body.data, f.msg.u.body.len, &resp, &len, &err);
            if (rc == 0) {
                r.type = WP_RESPONSE;
                r.u.body.data = resp;
                r.u.body.len = len;
                rc = wp_send(w->sock, &r, -1, &err);
                free(resp);
                if (rc < 0)
                    last = true;
                wp_frame_free(&f);
                if (last)
                    return 1;
                continue;
            }
            break;
        }
        case WP_STATS:
            rc = sandbox_stats(w->sb, &r.u.stats, &err);
            r.type = WP_STATS_REPLY;
            break;
        case WP_SNAPSHOT: { /* the image into the caller's file, the state back to it */
            uint8_t *state = NULL;
            size_t len = 0;
            if (f.fd < 0) {
                wp_frame_free(&f);
                return 2;
            }
            rc = sandbox_local_snapshot_fd(w->sb, f.fd, &state, &len, &err);
            wp_frame_free(&f); /* our copy of the descriptor goes now */
            if (rc == 0) {
                r.type = WP_DONE;
                r.u.body.data = state;
                r.u.body.len = len;
                rc = wp_send(w->sock, &r, -1, &err);
                free(state);
                if (rc < 0)
                    return 1;
                continue;
            }
            break;
        }
        case WP_SHUTDOWN: /* the program runs to its exit; the caller gets the last stats */
            rc = sandbox_shutdown(w->sb, &err);
            if (rc == 0)
                rc = sandbox_stats(w->sb, &r.u.stats, &err);
            r.type = WP_STATS_REPLY;
            last = true;
            break;
        default: break;
        }
        wp_frame_free(&f);
        if (rc < 0) {
            enum sandbox_failure why = sandbox_last_failure(w->sb);
            send_error(w, why, err.msg);
            /* A dead instance is of no further use: the caller tears us down. */
            if (why == SANDBOX_FAIL_TIMEOUT || why == SANDBOX_FAIL_GUEST || why == SANDBOX_FAIL_INTERRUPTED ||
                why == SANDBOX_FAIL_PAGER)
                return 0;
            if (last)
                return 0;
            continue;
        }
        if (wp_send(w->sock, &r, -1, &err) < 0 || last)
            return last ? 0 : 1;
    }
}

int sandbox_worker_main(int sock)
{
    /* Die with the caller; ignore the terminal's signals (the caller decides). */
    prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    if (sock < 3 || fcntl(sock, F_SETFD, FD_CLOEXEC) < 0) {
        fprintf(stderr, "thaw worker: bad descriptor %d\n", sock);
        return 2;
    }
    /* Nothing inherited by accident stays open: only 0-2 and the socket. */
    struct thaw_error err = {{0}};
    if (sock > 3)
        close_range(3, (unsigned)sock - 1, 0);
    close_range((unsigned)sock + 1, ~0u, 0);
    struct worker w = {.sock = sock, .trap_denied = getenv("THAW_JAIL_TRAP") != NULL};
    /* No request waiting yet: a spare (sandbox_keep_spares), started ahead of its
     * instance. It makes its VM while it waits (if that fails, the restore makes one as
     * usual). A worker started for a request finds it waiting and makes its VM in the
     * restore's filler thread instead, while the state file is read. */
    struct pollfd waiting = {.fd = sock, .events = POLLIN};
    if (poll(&waiting, 1, 0) == 0)
        (void)sandbox_local_prepare_vm(&err);
    struct wp_frame f;
    if (wp_recv(sock, 0, false, &f, &err) != WP_RECV_OK)
        return 1;
    if (f.msg.type != WP_CREATE_BOOT && f.msg.type != WP_CREATE_RESTORE) {
        wp_frame_free(&f);
        return 2;
    }
    int rc = create(&w, &f.msg, &err);
    wp_frame_free(&f);
    if (rc < 0) {
        send_error(&w, w.sb ? sandbox_last_failure(w.sb) : SANDBOX_FAIL_HOST, err.msg);
        return 1;
    }
    struct wp_msg ready;
    memset(&ready, 0, sizeof ready);
    ready.type = WP_READY;
    if (sandbox_stats_light(w.sb, &ready.u.stats, &err) < 0) { /* nothing sampled: it is on the cold path */
        send_error(&w, SANDBOX_FAIL_HOST, err.msg);
        return 1;
    }
    ready.invoke_timeout_ns = w.sb->invoke_timeout_ns;
    ready.guest_addr = sandbox_local_guest_addr(w.sb);
    const struct rootfs_map *fs = sandbox_local_rootfs(w.sb);
    if (fs) {
        ready.rootfs_addr = (uint64_t)(uintptr_t)fs->host;
        ready.rootfs_size = fs->size;
        snprintf(ready.rootfs.path, sizeof ready.rootfs.path, "%s", fs->path);
        ready.rootfs.gpa = fs->gpa;
        ready.rootfs.dev = fs->dev;
        ready.rootfs.ino = fs->ino;
        ready.rootfs.mtime_ns = fs->mtime_ns;
    }
    if (wp_send(sock, &ready, -1, &err) < 0)
        return 1;
    rc = serve(&w);
    sandbox_destroy(w.sb);
    return rc;
}
