#include "host/sandbox/reap_policy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "host/util/snapdir.h"

/* Takes <snap>/ws.lock without waiting; -1 if someone holds it (or it cannot be made). */
static int try_record_lock(const char *dir, char *why, size_t len)
{
    char path[4096];
    if (snapdir_path(path, sizeof path, dir, SNAPDIR_WS_LOCK) < 0) {
        snprintf(why, len, "snapshot path too long");
        return -1;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        snprintf(why, len, "cannot open " SNAPDIR_WS_LOCK ": %s", strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        snprintf(why, len, "%s", errno == EWOULDBLOCK ? "another restore is recording the working set"
                                                      : strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

void reap_policy_begin(struct reap_policy *p, const char *dir)
{
    memset(p, 0, sizeof *p);
    p->lock_fd = -1;
    char path[4096];
    const char *want = NULL;
    if (reap_is_stale(dir))
        want = "working set marked stale: recording a new one";
    else if (snapdir_path(path, sizeof path, dir, SNAPDIR_WS_PAGES) < 0 || access(path, F_OK) != 0)
        want = "no working set yet: recording one";
    char why[512] = "";
    p->lock_fd = try_record_lock(dir, why, sizeof why);
    if (!want) {
        /* Prefetch; with the lock (if free) this restore merges what its input touched
         * into the set (and re-records should the pager reject it). */
        p->pmode = p->lock_fd >= 0 ? PAGER_MERGE : PAGER_PREFETCH;
        return;
    }
    if (p->lock_fd >= 0) {
        p->pmode = PAGER_RECORD;
        snprintf(p->note, sizeof p->note, "%s", want);
    } else {
        p->pmode = PAGER_LAZY;
        snprintf(p->note, sizeof p->note, "%s: serving this restore lazily without recording (%.400s)", want, why);
    }
}

void reap_policy_ready(struct reap_policy *p, const struct pager_stats *ready)
{
    p->prefetched = ready->prefetch_ok;
    p->recording = ready->recording;
    p->merging = p->pmode == PAGER_MERGE && ready->prefetch_ok;
    p->probed = ready->probe_pages;
    p->ws = (struct reap_stats){.pages = ready->prefetch_pages, .regions = ready->prefetch_regions,
                                .bytes = ready->prefetch_bytes, .read_ns = ready->prefetch_read_ns,
                                .install_ns = ready->prefetch_install_ns};
    if (ready->prefetch_error[0])
        snprintf(p->note, sizeof p->note, "working set rejected (%.500s): falling back to uffd and %s",
                 ready->prefetch_error, p->lock_fd >= 0 ? "re-recording" : "re-recording (without the lock)");
}

static void *record_files_main(void *arg)
{
    struct reap_files_job *j = arg;
    j->rc = j->merge ? rootfs_snapshot_merge(&j->where, j->dir, &j->ms, &j->err)
                     : rootfs_snapshot_record(&j->where, j->dir, &j->err);
    return NULL;
}

static void record_files_done(struct reap_policy *p, int rc, const struct thaw_error *err)
{
    if (rc < 0) {
        snprintf(p->note, sizeof p->note, "%s the file working set: %.560s", p->files.merge ? "merging" : "recording",
                 err->msg);
        p->files_failed = true;
    } else if (p->files.merge) {
        p->file_merge = p->files.ms;
    }
}

void reap_policy_wait_files(struct reap_policy *p)
{
    struct reap_files_job *j = &p->files;
    if (!j->running)
        return;
    pthread_join(j->tid, NULL);
    j->running = false;
    record_files_done(p, j->rc, &j->err);
}

void reap_policy_finish_send(struct reap_policy *p, struct mem_backend *mem, const char *dir,
                             const struct rootfs_pages *files)
{
    if (p->finished)
        return;
    p->finished = true;
    struct thaw_error err;
    /* The image pages the first invocation mapped are resident now: record them before
     * anything else runs in the guest (the caller waits for it before the next
     * invocation), in a thread so that the response goes back meanwhile. */
    if ((p->recording || p->merging) && files && files->size) {
        struct reap_files_job *j = &p->files;
        j->where = *files;
        j->merge = !p->recording;
        snprintf(j->dir, sizeof j->dir, "%s", dir);
        j->rc = 0;
        if (pthread_create(&j->tid, NULL, record_files_main, j) == 0) {
            j->running = true;
        } else {
            record_files_main(j);
            record_files_done(p, j->rc, &j->err);
        }
    }
    if (mem_backend_pager_send(mem, p->recording || p->merging ? "finish-record" : "stats", &err) < 0) {
        snprintf(p->note, sizeof p->note, "pager: %.600s", err.msg);
        reap_policy_end(p);
        return;
    }
    p->awaiting = true;
}

void reap_policy_collect(struct reap_policy *p, struct mem_backend *mem, const char *dir)
{
    if (!p->awaiting)
        return;
    struct pager_stats st;
    struct thaw_error err;
    if (mem_backend_pager_reply(mem, &st, &err) < 0)
        reap_policy_collected(p, NULL, err.msg, dir);
    else
        reap_policy_collected(p, &st, NULL, dir);
}

void reap_policy_collected(struct reap_policy *p, const struct pager_stats *reply, const char *why, const char *dir)
{
    if (!p->awaiting)
        return;
    p->awaiting = false;
    reap_policy_wait_files(p); /* its outcome decides whether the set is still stale */
    if (!reply) {
        snprintf(p->note, sizeof p->note, "pager: %.600s", why);
        reap_policy_end(p);
        return;
    }
    if (p->recording) {
        if (reply->record_error[0])
            snprintf(p->note, sizeof p->note, "writing the working set: %.560s", reply->record_error);
        else if (!p->files_failed)
            reap_clear_stale(dir);
    } else if (p->merging) {
        /* A drifting input no longer makes the set stale: its misses were merged. */
        p->merge = *reply;
        if (reply->record_error[0])
            snprintf(p->note, sizeof p->note, "%.600s", reply->record_error);
    }
    reap_policy_end(p);
}

bool reap_policy_invoke_failed(struct reap_policy *p, const char *dir, struct thaw_error *err)
{
    if (p->finished || !p->prefetched)
        return false;
    p->finished = true;
    reap_policy_end(p);
    struct thaw_error why;
    if (reap_mark_stale(dir, &why) == 0)
        return true;
    char msg[sizeof err->msg + 512];
    snprintf(msg, sizeof msg, "%.500s (after a prefetch; the working set could not be marked stale: %.300s)",
             err->msg, why.msg);
    snprintf(err->msg, sizeof err->msg, "%.*s", (int)sizeof err->msg - 1, msg);
    return false;
}

void reap_policy_finish(struct reap_policy *p, struct mem_backend *mem, const char *dir,
                        const struct rootfs_pages *files)
{
    reap_policy_finish_send(p, mem, dir, files);
    reap_policy_collect(p, mem, dir);
}

void reap_policy_end(struct reap_policy *p)
{
    reap_policy_wait_files(p);
    if (p->lock_fd >= 0)
        close(p->lock_fd);
    p->lock_fd = -1;
}

enum sandbox_start reap_policy_start(const struct reap_policy *p)
{
    if (p->prefetched)
        return SANDBOX_START_REAP_PREFETCH;
    if (p->recording)
        return SANDBOX_START_REAP_RECORD;
    return SANDBOX_START_REAP_NORECORD;
}

void reap_policy_merge_stats(const struct reap_policy *p, struct sandbox_stats *st)
{
    st->ws_probed = p->probed;
    st->ws_merged = p->merge.merged;
    st->ws_merge_added = p->merge.merge_added;
    st->ws_merge_dropped = p->merge.merge_dropped;
    st->ws_generation = p->merge.ws_generation;
    st->rootfs_ws_merged = p->file_merge.written;
    st->rootfs_ws_merge_added = p->file_merge.added;
    st->rootfs_ws_merge_dropped = p->file_merge.dropped;
    st->rootfs_ws_generation = p->file_merge.generation;
}
