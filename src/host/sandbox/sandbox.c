/* The public lifecycle API: checks, common bookkeeping, and dispatch to the
 * implementation (sandbox_impl.h). */
#include "host/sandbox/sandbox.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "host/sandbox/guest_log.h"
#include "host/sandbox/sandbox_impl.h"
#include "host/pager/reap.h"
#include "host/util/snapdir.h"
#include "host/util/clock.h"
#include "host/vmm/vcpu_kick.h"

static const struct sandbox_options default_options;
static atomic_uint instance_counter;

const char *sandbox_start_name(enum sandbox_start s)
{
    switch (s) {
    case SANDBOX_START_BOOT: return "boot";
    case SANDBOX_START_COPY: return "copy";
    case SANDBOX_START_LAZY: return "lazy";
    case SANDBOX_START_UFFD: return "uffd";
    case SANDBOX_START_REAP_RECORD: return "reap-record";
    case SANDBOX_START_REAP_PREFETCH: return "reap-prefetch";
    case SANDBOX_START_REAP_NORECORD: return "reap-norecord";
    case SANDBOX_START_SHARE: return "share";
    }
    return "unknown";
}

const char *sandbox_failure_name(enum sandbox_failure f)
{
    switch (f) {
    case SANDBOX_OK: return "ok";
    case SANDBOX_FAIL_HOST: return "host";
    case SANDBOX_FAIL_BAD_INPUT: return "bad-input";
    case SANDBOX_FAIL_TIMEOUT: return "timeout";
    case SANDBOX_FAIL_GUEST: return "guest";
    case SANDBOX_FAIL_WORKER: return "worker";
    case SANDBOX_FAIL_INTERRUPTED: return "interrupted";
    case SANDBOX_FAIL_PAGER: return "pager";
    }
    return "unknown";
}

/* Instance ids appear in log tags and file names: printable, no spaces or slashes. */
static bool id_valid(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > SANDBOX_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (id[i] <= ' ' || id[i] > '~' || id[i] == '/')
            return false;
    return true;
}

struct sandbox *sandbox_alloc(const struct sandbox_options *opt, const char *function_name,
                              struct thaw_error *err)
{
    if (!opt)
        opt = &default_options;
    if (opt->id && !id_valid(opt->id)) {
        thaw_fail(err, "instance id must be 1-%d printable characters without spaces or '/'", SANDBOX_ID_MAX);
        return NULL;
    }
    struct sandbox *sb = calloc(1, sizeof *sb);
    if (!sb) {
        thaw_fail(err, "out of memory");
        return NULL;
    }
    if (opt->id)
        snprintf(sb->id, sizeof sb->id, "%s", opt->id);
    else
        snprintf(sb->id, sizeof sb->id, "%.40s-%u", function_name, atomic_fetch_add(&instance_counter, 1) + 1);
    sb->log = opt->log ? opt->log : guest_log_stderr;
    sb->log_ctx = opt->log ? opt->log_ctx : NULL;
    sb->invoke_timeout_ns = opt->invoke_timeout_ns;
    return sb;
}

void sandbox_free(struct sandbox *sb)
{
    if (sb) {
        free(sb->snap_dir);
        free(sb->opt_pager_socket);
    }
    free(sb);
}

int sandbox_set_failure(struct sandbox *sb, enum sandbox_failure f)
{
    sb->failure = f;
    if (f == SANDBOX_FAIL_TIMEOUT || f == SANDBOX_FAIL_GUEST || f == SANDBOX_FAIL_WORKER ||
        f == SANDBOX_FAIL_INTERRUPTED || f == SANDBOX_FAIL_PAGER)
        sb->dead = true;
    return -1;
}

int sandbox_boot(struct sandbox **out, const char *function_dir, const struct sandbox_options *opt,
                 struct thaw_error *err)
{
    *out = NULL;
    if (!opt)
        opt = &default_options;
    if (vcpu_stopping())
        return thaw_fail(err, "not booting %s: interrupted by signal %d", function_dir, sandbox_interrupted());
    if (opt->worker)
        return sandbox_worker_boot(out, function_dir, opt, err);
    return sandbox_local_boot(out, function_dir, opt, err);
}

int sandbox_restore(struct sandbox **out, const char *snap_dir, enum mem_mode mode,
                    const struct sandbox_options *opt, struct thaw_error *err)
{
    *out = NULL;
    if (!opt)
        opt = &default_options;
    if (vcpu_stopping())
        return thaw_fail(err, "not restoring %s: interrupted by signal %d", snap_dir, sandbox_interrupted());
    int rc = opt->worker ? sandbox_worker_restore(out, snap_dir, mode, opt, err)
                         : sandbox_local_restore(out, snap_dir, mode, opt, err);
    if (rc < 0 || mode != MEM_REAP)
        return rc;
    /* Kept for the one retry without the working set (sandbox_impl.h). */
    struct sandbox *sb = *out;
    sb->mode = mode;
    sb->opt = *opt;
    sb->snap_dir = strdup(snap_dir);
    sb->opt_pager_socket = opt->pager_socket ? strdup(opt->pager_socket) : NULL;
    sb->opt.pager_socket = sb->opt_pager_socket;
    if (!sb->snap_dir || (opt->pager_socket && !sb->opt_pager_socket)) {
        sandbox_destroy(sb);
        *out = NULL;
        return thaw_fail(err, "out of memory");
    }
    return 0;
}

bool sandbox_has_working_set(const char *snap_dir)
{
    char path[4096];
    struct stat st;
    return snapdir_path(path, sizeof path, snap_dir, SNAPDIR_WS_PAGES) == 0 && stat(path, &st) == 0 &&
           S_ISREG(st.st_mode) && st.st_size > 0 && !reap_is_stale(snap_dir);
}

/* Where calls go: the replacement of a restore retried without its working set. */
static struct sandbox *target(struct sandbox *sb)
{
    return sb->replacement ? sb->replacement : sb;
}

static int refuse_if_dead(struct sandbox *sb, struct thaw_error *err)
{
    if (!sb->dead)
        return 0;
    thaw_fail(err, "instance %s is dead after an earlier %s failure", sb->id, sandbox_failure_name(sb->failure));
    return -1;
}

static int invoke_once(struct sandbox *sb, const void *req, size_t len, uint8_t **resp, size_t *resp_len,
                       struct thaw_error *err)
{
    *resp = NULL;
    *resp_len = 0;
    if (refuse_if_dead(sb, err) < 0)
        return -1;
    sb->failure = SANDBOX_OK;
    sb->invocation++;
    uint64_t t0 = clock_now_ns();
    if (sb->ops->invoke(sb, req, len, resp, resp_len, err) < 0) {
        if (sb->failure == SANDBOX_OK)
            sandbox_set_failure(sb, SANDBOX_FAIL_HOST);
        return -1;
    }
    sb->last_invoke_ns = clock_now_ns() - t0;
    if (!sb->first_invoke_ns)
        sb->first_invoke_ns = sb->last_invoke_ns;
    return 0;
}

int sandbox_invoke(struct sandbox *sb, const void *req, size_t len, uint8_t **resp, size_t *resp_len,
                   struct thaw_error *err)
{
    struct sandbox *t = target(sb);
    if (invoke_once(t, req, len, resp, resp_len, err) == 0)
        return 0;
    if (t != sb || !sb->retry_without_ws || !sb->snap_dir)
        return -1;
    /* The working set may be what broke the guest: it is marked stale, so a restore now
     * runs without it (and records a new one). That instance answers the call. */
    snprintf(sb->retry_note, sizeof sb->retry_note, "the first call after a prefetch failed (%.300s): working "
             "set marked stale, restored again without it", err->msg);
    struct sandbox_options o = sb->opt;
    o.id = sb->id;
    o.log = sb->log;
    o.log_ctx = sb->log_ctx;
    struct sandbox *fresh;
    struct thaw_error why;
    sb->ops->destroy(sb); /* the dead instance goes first: its memory, its pager */
    sb->impl_gone = true;
    if (sandbox_restore(&fresh, sb->snap_dir, sb->mode, &o, &why) < 0) {
        thaw_fail(err, "%.300s; restoring again without the working set failed: %.300s", err->msg, why.msg);
        return -1;
    }
    sb->replacement = fresh;
    return invoke_once(fresh, req, len, resp, resp_len, err);
}

int sandbox_shutdown(struct sandbox *sb, struct thaw_error *err)
{
    sb = target(sb);
    if (refuse_if_dead(sb, err) < 0)
        return -1;
    sb->failure = SANDBOX_OK;
    if (sb->ops->shutdown(sb, err) < 0) {
        if (sb->failure == SANDBOX_OK)
            sandbox_set_failure(sb, SANDBOX_FAIL_HOST);
        return -1;
    }
    return 0;
}

int sandbox_snapshot(struct sandbox *sb, const char *dir, struct thaw_error *err)
{
    sb = target(sb);
    if (refuse_if_dead(sb, err) < 0)
        return -1;
    sb->failure = SANDBOX_OK;
    if (sb->ops->snapshot(sb, dir, err) < 0) {
        if (sb->failure == SANDBOX_OK)
            sandbox_set_failure(sb, SANDBOX_FAIL_HOST);
        return -1;
    }
    return 0;
}

int sandbox_stats(struct sandbox *sb, struct sandbox_stats *st, struct thaw_error *err)
{
    if (sb->impl_gone && !sb->replacement)
        return thaw_fail(err, "instance %s was torn down for a retry that failed", sb->id);
    const char *note = sb->replacement ? sb->retry_note : NULL;
    sb = target(sb);
    memset(st, 0, sizeof *st);
    if (sb->ops->stats(sb, st, err) < 0)
        return -1;
    snprintf(st->id, sizeof st->id, "%s", sb->id);
    st->invocations = sb->invocation;
    st->first_invoke_ns = sb->first_invoke_ns;
    st->last_invoke_ns = sb->last_invoke_ns;
    if (note)
        snprintf(st->reap_note, sizeof st->reap_note, "%s", note);
    return 0;
}

int sandbox_stats_light(struct sandbox *sb, struct sandbox_stats *st, struct thaw_error *err)
{
    struct sandbox *t = target(sb);
    t->stats_light = true;
    int rc = sandbox_stats(sb, st, err);
    t->stats_light = false;
    return rc;
}

bool sandbox_gone(struct sandbox *sb)
{
    sb = target(sb); /* after a retry without the working set, the replacement is the instance */
    if (!sb->dead && sb->ops->gone && sb->ops->gone(sb))
        sandbox_set_failure(sb, SANDBOX_FAIL_WORKER);
    return sb->dead;
}

enum sandbox_failure sandbox_last_failure(const struct sandbox *sb)
{
    return sb->replacement ? sb->replacement->failure : sb->failure;
}

void sandbox_destroy(struct sandbox *sb)
{
    if (!sb)
        return;
    sandbox_destroy(sb->replacement);
    if (!sb->impl_gone)
        sb->ops->destroy(sb);
    sandbox_free(sb);
}
