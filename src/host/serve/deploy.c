/* The deploy pipeline: unpack the upload, build it, boot it to its ready point,
 * snapshot it there, commit the version, and switch the function over to it. Any
 * failure before the commit leaves the function as it was (422 or 400). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/function/build.h"
#include "host/sandbox/sandbox.h"
#include "host/serve/serve_impl.h"
#include "host/serve/store.h"
#include "host/serve/upload.h"
#include "host/util/clock.h"
#include "host/util/file.h"
#include "host/util/tree.h"

struct boot_log {
    pthread_mutex_t lock;
    char tail[1024];
};

static void boot_log_sink(void *ctx, const char *id, uint64_t inv, enum sandbox_stream stream, const char *line,
                          size_t len)
{
    (void)id;
    (void)inv;
    (void)stream;
    struct boot_log *l = ctx;
    pthread_mutex_lock(&l->lock);
    size_t have = strlen(l->tail);
    if (len > sizeof l->tail / 2)
        len = sizeof l->tail / 2;
    if (have + len + 3 > sizeof l->tail) { /* keep the newest lines */
        size_t drop = have + len + 3 - sizeof l->tail;
        memmove(l->tail, l->tail + drop, have - drop + 1);
        have -= drop;
    }
    if (have)
        strcat(l->tail, " | ");
    strncat(l->tail, line, len);
    pthread_mutex_unlock(&l->lock);
}

static char *error_body(const char *fmt, const char *a, const char *b)
{
    char msg[1600];
    snprintf(msg, sizeof msg, fmt, a, b ? b : "");
    json_t *j = json_pack("{s:s}", "error", msg);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return text;
}

/* An error answer of msg followed by the guest's last output lines (the function's own
 * words on why its boot or warm-up failed). */
static char *error_body_with_log(struct boot_log *l, const char *fmt, const char *msg)
{
    pthread_mutex_lock(&l->lock);
    char *body = error_body(fmt, msg, l->tail[0] ? l->tail : NULL);
    pthread_mutex_unlock(&l->lock);
    return body;
}

/* Warm-up payloads: the regular files of the source's payloads/ directory in name order
 * (at most WARMUP_PAYLOADS_MAX, each at most max_bytes, like a request body), or "{}"
 * when it has none. The upload is hostile: nothing outside the directory is followed. */
#define WARMUP_PAYLOADS_MAX 16

struct warmup_payloads {
    size_t n;
    uint8_t *data[WARMUP_PAYLOADS_MAX];
    size_t len[WARMUP_PAYLOADS_MAX];
};

static void warmup_payloads_free(struct warmup_payloads *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->data[i]);
    w->n = 0;
}

static int payload_entry(const struct dirent *e)
{
    return e->d_name[0] != '.';
}

static int warmup_payloads_load(const char *source, size_t max_bytes, struct warmup_payloads *w,
                                struct thaw_error *err)
{
    char dir[1400];
    tree_path(dir, sizeof dir, "%s/payloads", source);
    w->n = 0;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0 && errno != ENOENT)
        return thaw_fail_errno(err, "payloads/ for the warm-up is not a directory");
    struct dirent **names = NULL;
    int n = dfd < 0 ? 0 : scandirat(dfd, ".", &names, payload_entry, alphasort);
    if (n < 0) {
        close(dfd);
        return thaw_fail_errno(err, "cannot list payloads/ for the warm-up");
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        if (rc == 0 && w->n < WARMUP_PAYLOADS_MAX) {
            struct thaw_error why;
            if (read_file_at(dfd, names[i]->d_name, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, max_bytes,
                             &w->data[w->n], &w->len[w->n], &why) < 0)
                rc = thaw_fail(err, "warm-up payload payloads/%.100s: %s", names[i]->d_name, why.msg);
            else
                w->n++;
        }
        free(names[i]);
    }
    free(names);
    if (dfd >= 0)
        close(dfd);
    if (rc == 0 && w->n == 0) {
        if (!(w->data[0] = (uint8_t *)strdup("{}")))
            return thaw_fail(err, "out of memory");
        w->len[0] = 2;
        w->n = 1;
    }
    if (rc < 0)
        warmup_payloads_free(w);
    return rc;
}

/* cfg->warmup invocations of the booted instance before its snapshot, cycling through
 * the payloads: what they leave in the guest (imports done, caches filled, the
 * interpreter's specialised code) is in every instance restored from it. */
static int warm_up(struct sandbox *sb, const char *stage, const struct fn_config *cfg, size_t max_bytes,
                   struct thaw_error *err)
{
    if (cfg->warmup == 0)
        return 0;
    char source[1300];
    tree_path(source, sizeof source, "%s/source", stage);
    struct warmup_payloads w;
    if (warmup_payloads_load(source, max_bytes, &w, err) < 0)
        return -1;
    int rc = 0;
    for (uint32_t i = 0; i < cfg->warmup && rc == 0; i++) {
        uint8_t *resp = NULL;
        size_t len;
        struct thaw_error why;
        if (sandbox_invoke(sb, w.data[i % w.n], w.len[i % w.n], &resp, &len, &why) < 0)
            rc = thaw_fail(err, "warm-up invocation %u of %u failed: %s", i + 1, cfg->warmup, why.msg);
        free(resp);
    }
    warmup_payloads_free(&w);
    return rc;
}

/* What a deploy and a re-snapshot share: the staged version has source/ and bundle/;
 * boot the bundle (with cfg's memory size), snapshot it, write its config, commit it
 * and switch the function over. Returns the HTTP status and the answer in *body. */
static int boot_snapshot_commit(struct serve *s, const char *name, struct function *old, char *stage,
                                const struct fn_config *cfg, uint64_t t0, uint64_t t_build, char **body)
{
    struct thaw_error err = {{0}};
    char bundle[1300], snap[1300];
    tree_path(bundle, sizeof bundle, "%s/bundle", stage);
    tree_path(snap, sizeof snap, "%s/snapshot", stage);
    struct sandbox *sb = NULL;
    int status = 500;
    uint64_t t_boot = 0, t_warmup = 0, t_snap = 0;
    struct boot_log blog = {.lock = PTHREAD_MUTEX_INITIALIZER};
    /* The first boot runs the uploaded code: in a jailed worker like every instance
     * (unless --in-process). The snapshot's files are ours; the worker only fills the
     * memory image through the descriptor it is given (sandbox_snapshot). */
    struct sandbox_options opt = {.memory_mib = cfg->memory_mib, .worker = s->opt.worker,
                                  .invoke_timeout_ns = cfg->timeout_ms * 1000000ull,
                                  .log = boot_log_sink, .log_ctx = &blog};
    uint64_t t = clock_now_ns();
    if (sandbox_boot(&sb, bundle, &opt, &err) < 0) {
        status = 422;
        *body = error_body_with_log(&blog, "boot failed: %s%s", err.msg);
        goto out;
    }
    t_boot = clock_now_ns() - t;
    t = clock_now_ns();
    if (warm_up(sb, stage, cfg, s->opt.max_body_bytes, &err) < 0) {
        status = 422;
        *body = error_body_with_log(&blog, "%s%s", err.msg);
        goto out;
    }
    t_warmup = clock_now_ns() - t;
    t = clock_now_ns();
    if (sandbox_snapshot(sb, snap, &err) < 0) {
        status = 422;
        *body = error_body("snapshot failed: %s%s", err.msg, NULL);
        goto out;
    }
    t_snap = clock_now_ns() - t;
    struct sandbox_stats bst;
    bool boot_in_worker = sandbox_stats(sb, &bst, &err) == 0 && bst.in_worker;
    sandbox_destroy(sb);
    sb = NULL;
    if (store_write_config(stage, cfg, &err) < 0) {
        *body = error_body("%s%s", err.msg, NULL);
        goto out;
    }
    struct fn_version *v = store_commit(s, name, stage, &err);
    if (!v) {
        *body = error_body("%s%s", err.msg, NULL);
        goto out;
    }
    stage[0] = 0; /* committed: it is v<N> now */
    unsigned gen = v->gen;
    if (old) {
        pool_set_version(old, v, cfg);
        status = 200;
    } else {
        struct function *f = registry_add(s, name, cfg, v, &err);
        if (!f) {
            version_put(v);
            *body = error_body("%s%s", err.msg, NULL);
            goto out;
        }
        function_put(f);
        status = 201;
    }
    json_t *j = json_pack("{s:s, s:I, s:f, s:f, s:f, s:f, s:f, s:b, s:o}", "name", name, "version", (json_int_t)gen,
                          "build_ms", (double)t_build / 1e6, "boot_ms", (double)t_boot / 1e6, "warmup_ms",
                          (double)t_warmup / 1e6, "snapshot_ms",
                          (double)t_snap / 1e6, "total_ms", (double)(clock_now_ns() - t0) / 1e6, "boot_in_worker",
                          boot_in_worker, "config", fn_config_to_json(cfg));
    *body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
out:
    sandbox_destroy(sb);
    return status;
}

/* "serve" in the uploaded function.json: the function's own defaults for the daemon's
 * configuration keys (restore mode, keep-alive, limits), as PATCH would set them. */
static int apply_manifest_config(json_t *manifest, struct fn_config *cfg, struct thaw_error *err)
{
    json_t *serve = json_object_get(manifest, "serve");
    struct thaw_error why;
    if (serve && fn_config_apply_json(cfg, serve, &why) < 0)
        return thaw_fail(err, "function.json \"serve\": %s", why.msg);
    return 0;
}

int deploy_function(struct serve *s, const char *name, const void *tar, size_t len, json_t *params, char **body)
{
    struct thaw_error err = {{0}};
    char stage[1200] = "", path[1300];
    int status = 500;
    uint64_t t0 = clock_now_ns(), t_build = 0;
    json_t *manifest = NULL;
    pthread_mutex_lock(&s->deploy_lock);
    atomic_fetch_add(&s->deploys_running, 1);

    struct function *old = registry_get(s, name);
    struct fn_config cfg;
    if (old) {
        pthread_mutex_lock(&old->lock);
        cfg = old->cfg;
        pthread_mutex_unlock(&old->lock);
    } else {
        fn_config_default(&cfg);
    }
    if (store_stage(s, name, stage, sizeof stage, &err) < 0) {
        *body = error_body("%s%s", err.msg, NULL);
        stage[0] = 0;
        goto out;
    }
    tree_path(path, sizeof path, "%s/source", stage);
    struct upload_limits lim = {
        .max_bytes = s->opt.max_unpacked_bytes, .max_entries = 10000, .max_file_bytes = s->opt.max_unpacked_bytes};
    if (tree_mkdir_p(path, &err) < 0 || upload_unpack_tar(tar, len, path, &lim, &err) < 0) {
        status = 400;
        *body = error_body("%s%s", err.msg, NULL);
        goto out;
    }
    char manifest_path[1400];
    tree_path(manifest_path, sizeof manifest_path, "%s/function.json", path);
    if (access(manifest_path, R_OK) != 0) {
        status = 400;
        *body = error_body("the upload has no function.json at its top level%s%s", "", NULL);
        goto out;
    }
    /* Read once: the function's own defaults ("serve" in it), then the query's, and the build. */
    manifest = function_manifest_read(path, &err);
    if (!manifest || apply_manifest_config(manifest, &cfg, &err) < 0) {
        status = 400;
        *body = error_body("%s%s", err.msg, NULL);
        goto out;
    }
    const char *key;
    json_t *val;
    json_object_foreach(params, key, val) {
        if (fn_config_apply_text(&cfg, key, json_string_value(val), &err) < 0) {
            status = 400;
            *body = error_body("%s%s", err.msg, NULL);
            goto out;
        }
    }
    char bundle[1300];
    tree_path(bundle, sizeof bundle, "%s/bundle", stage);
    uint64_t t = clock_now_ns();
    if (function_build_manifest(path, manifest, bundle, true, NULL, &err) < 0) {
        status = 422;
        *body = error_body("build failed: %s%s", err.msg, NULL);
        goto out;
    }
    t_build = clock_now_ns() - t;
    status = boot_snapshot_commit(s, name, old, stage, &cfg, t0, t_build, body);
out:
    json_decref(manifest);
    if (stage[0])
        tree_remove(stage, NULL);
    if (old)
        fn_metrics_deploy(&old->metrics, status < 300);
    function_put(old);
    atomic_fetch_sub(&s->deploys_running, 1);
    pthread_mutex_unlock(&s->deploy_lock);
    return status;
}

int redeploy_function(struct serve *s, const char *name, json_t *patch, char **body)
{
    struct thaw_error err = {{0}};
    char stage[1200] = "", from[1300], to[1300];
    int status = 500;
    uint64_t t0 = clock_now_ns();
    pthread_mutex_lock(&s->deploy_lock);
    atomic_fetch_add(&s->deploys_running, 1);
    /* Under the deploy lock: the version copied is the one current now. */
    struct function *f = registry_get(s, name);
    if (!f) {
        status = 404;
        *body = error_body("no function named %s%s", name, NULL);
        goto out;
    }
    pthread_mutex_lock(&f->lock);
    struct fn_config cfg = f->cfg;
    struct fn_version *v = f->ver;
    version_get(v);
    pthread_mutex_unlock(&f->lock);
    if (fn_config_apply_json(&cfg, patch, &err) < 0) {
        status = 400;
        *body = error_body("%s%s", err.msg, NULL);
    } else if (store_stage(s, name, stage, sizeof stage, &err) < 0) {
        stage[0] = 0;
        *body = error_body("%s%s", err.msg, NULL);
    } else {
        /* The new version gets the same source and bundle; only the snapshot is new. */
        int rc = 0;
        const char *parts[] = {"source", "bundle"};
        for (size_t i = 0; i < 2 && rc == 0; i++) {
            tree_path(from, sizeof from, "%s/%s", v->dir, parts[i]);
            tree_path(to, sizeof to, "%s/%s", stage, parts[i]);
            rc = tree_copy(from, to, &err);
        }
        if (rc < 0)
            *body = error_body("cannot copy the current version: %s%s", err.msg, NULL);
        else
            status = boot_snapshot_commit(s, name, f, stage, &cfg, t0, 0, body);
    }
    version_put(v);
out:
    if (stage[0])
        tree_remove(stage, NULL);
    if (f)
        fn_metrics_deploy(&f->metrics, status < 300);
    function_put(f);
    atomic_fetch_sub(&s->deploys_running, 1);
    pthread_mutex_unlock(&s->deploy_lock);
    return status;
}
