#include "host/serve/pool.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>

#include "host/serve/serve_impl.h"
#include "host/serve/store.h"
#include "host/util/clock.h"
#include "host/util/tree.h"

/* ---- versions ------------------------------------------------------------------- */

static pthread_mutex_t version_lock = PTHREAD_MUTEX_INITIALIZER;

struct fn_version *version_new(const char *dir, unsigned gen)
{
    struct fn_version *v = calloc(1, sizeof *v);
    if (!v)
        return NULL;
    v->refs = 1;
    v->gen = gen;
    snprintf(v->dir, sizeof v->dir, "%s", dir);
    struct stat st;
    if (stat(dir, &st) == 0) {
        v->dev = st.st_dev;
        v->ino = st.st_ino;
    }
    return v;
}

void version_get(struct fn_version *v)
{
    pthread_mutex_lock(&version_lock);
    v->refs++;
    pthread_mutex_unlock(&version_lock);
}

void version_put(struct fn_version *v)
{
    if (!v)
        return;
    pthread_mutex_lock(&version_lock);
    bool last = --v->refs == 0;
    pthread_mutex_unlock(&version_lock);
    if (!last)
        return;
    struct stat st;
    if (v->retired && stat(v->dir, &st) == 0 && st.st_dev == v->dev && st.st_ino == v->ino)
        tree_remove(v->dir, NULL);
    free(v);
}

/* ---- keep-alive and memory accounting ----------------------------------------------- */

static struct keepalive_params keepalive_params_of(const struct fn_config *c)
{
    return (struct keepalive_params){.keep_alive_ns = c->keep_alive_ms * 1000000ull,
                                     .bin_ns = c->hybrid_bin_ms * 1000000ull};
}

/* An instance leaves the idle list at now (f->lock held): its idle memory-time. */
static void charge_idle(struct function *f, const struct instance *in, uint64_t now)
{
    if (now > in->idle_since_ns)
        mem_byte_s_add(&f->idle_byte_s, in->memory, now - in->idle_since_ns);
}

/* An instance starts serving at now (f->lock held). */
static void start_busy(struct function *f, struct instance *in, uint64_t now)
{
    in->busy_since_ns = now;
    in->busy_memory = in->memory;
    mem_bytes_add(&f->busy_memory, in->memory);
}

/* ---- registry ------------------------------------------------------------------- */

static void function_free(struct function *f)
{
    keepalive_destroy(&f->ka);
    version_put(f->ver);
    fn_metrics_destroy(&f->metrics);
    pthread_mutex_destroy(&f->lock);
    pthread_mutex_destroy(&f->log_lock);
    pthread_cond_destroy(&f->cond);
    free(f->logs);
    free(f);
}

struct function *registry_get(struct serve *s, const char *name)
{
    struct function *found = NULL;
    pthread_mutex_lock(&s->reg_lock);
    for (size_t i = 0; i < s->n_fns; i++)
        if (!strcmp(s->fns[i]->name, name)) {
            found = s->fns[i];
            found->refs++;
            break;
        }
    pthread_mutex_unlock(&s->reg_lock);
    return found;
}

void function_put(struct function *f)
{
    if (!f)
        return;
    struct serve *s = f->srv;
    pthread_mutex_lock(&s->reg_lock);
    bool last = --f->refs == 0;
    pthread_mutex_unlock(&s->reg_lock);
    if (last)
        function_free(f);
}

struct function *registry_add(struct serve *s, const char *name, const struct fn_config *cfg, struct fn_version *v,
                              struct thaw_error *err)
{
    struct function *f = calloc(1, sizeof *f);
    if (!f || !(f->logs = calloc(LOG_RING_LINES, sizeof *f->logs))) {
        free(f);
        thaw_fail(err, "out of memory");
        return NULL;
    }
    snprintf(f->name, sizeof f->name, "%s", name);
    f->srv = s;
    f->refs = 1;
    f->cfg = *cfg;
    f->ver = v;
    pthread_mutex_init(&f->lock, NULL);
    pthread_mutex_init(&f->log_lock, NULL);
    /* deadline_after() is CLOCK_MONOTONIC: the queue timeout must not jump with the wall clock. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&f->cond, &ca);
    pthread_condattr_destroy(&ca);
    fn_metrics_init(&f->metrics);
    struct keepalive_params kp = keepalive_params_of(cfg);
    if (keepalive_create(&f->ka, cfg->keep_alive_policy, &kp, err) < 0) {
        f->ver = NULL;
        function_free(f);
        return NULL;
    }
    pthread_mutex_lock(&s->reg_lock);
    if (s->n_fns == s->cap_fns) {
        size_t cap = s->cap_fns ? s->cap_fns * 2 : 16;
        struct function **n = realloc(s->fns, cap * sizeof *n);
        if (!n) {
            pthread_mutex_unlock(&s->reg_lock);
            f->ver = NULL;
            function_free(f);
            thaw_fail(err, "out of memory");
            return NULL;
        }
        s->fns = n;
        s->cap_fns = cap;
    }
    s->fns[s->n_fns++] = f;
    f->refs++; /* the caller's */
    pthread_mutex_unlock(&s->reg_lock);
    return f;
}

static void destroy_instance(struct function *f, struct instance *in)
{
    (void)f;
    sandbox_destroy(in->sb);
    version_put(in->ver);
    free(in);
}

/* Empties the idle list (f->lock held), wakes waiters, unlocks, then destroys what
 * was idle outside the lock (teardown waits on worker processes). */
static void drop_idle_and_unlock(struct function *f)
{
    uint64_t now = clock_now_ns();
    for (struct instance *in = f->idle; in; in = in->next)
        charge_idle(f, in, now);
    struct instance *idle = f->idle;
    f->idle = NULL;
    f->n_idle = 0;
    pthread_cond_broadcast(&f->cond);
    pthread_mutex_unlock(&f->lock);
    while (idle) {
        struct instance *n = idle->next;
        destroy_instance(f, idle);
        idle = n;
    }
}

void registry_remove(struct serve *s, struct function *f)
{
    pthread_mutex_lock(&s->reg_lock);
    for (size_t i = 0; i < s->n_fns; i++)
        if (s->fns[i] == f) {
            s->fns[i] = s->fns[--s->n_fns];
            break;
        }
    pthread_mutex_unlock(&s->reg_lock);
    pthread_mutex_lock(&f->lock);
    f->deleted = true;
    drop_idle_and_unlock(f);
    function_put(f); /* the table's reference */
}

void registry_foreach(struct serve *s, void (*fn)(struct function *f, void *ctx), void *ctx)
{
    pthread_mutex_lock(&s->reg_lock);
    size_t n = s->n_fns;
    struct function **copy = calloc(n + 1, sizeof *copy);
    for (size_t i = 0; copy && i < n; i++) {
        copy[i] = s->fns[i];
        copy[i]->refs++;
    }
    pthread_mutex_unlock(&s->reg_lock);
    if (!copy)
        return;
    for (size_t i = 0; i < n; i++) {
        fn(copy[i], ctx);
        function_put(copy[i]);
    }
    free(copy);
}

size_t registry_count(struct serve *s)
{
    pthread_mutex_lock(&s->reg_lock);
    size_t n = s->n_fns;
    pthread_mutex_unlock(&s->reg_lock);
    return n;
}

/* ---- guest logs ------------------------------------------------------------------ */

void function_log(struct function *f, const char *instance, uint64_t invocation, int stream, const char *line,
                  size_t len)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    pthread_mutex_lock(&f->log_lock);
    struct log_line *l = &f->logs[f->log_seq % LOG_RING_LINES];
    l->seq = ++f->log_seq;
    l->unix_time = (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
    snprintf(l->instance, sizeof l->instance, "%s", instance ? instance : "");
    l->invocation = invocation;
    l->stream = stream;
    if (len >= sizeof l->text)
        len = sizeof l->text - 1;
    memcpy(l->text, line, len);
    l->text[len] = 0;
    pthread_mutex_unlock(&f->log_lock);
}

static void sandbox_log_sink(void *ctx, const char *instance_id, uint64_t invocation, enum sandbox_stream stream,
                             const char *line, size_t len)
{
    function_log(ctx, instance_id, invocation, (int)stream, line, len);
}

/* ---- creating instances ------------------------------------------------------------ */

static enum start_kind kind_of(enum mem_mode m)
{
    switch (m) {
    case MEM_REAP: return START_COLD_REAP;
    case MEM_LAZY: return START_COLD_LAZY;
    case MEM_COPY: return START_COLD_COPY;
    case MEM_SHARE: return START_COLD_SHARE;
    default: return START_COLD_REAP;
    }
}

/* The memory mode of a cold restore. share maps the recorded working set in from the
 * page cache but records none: until the snapshot has one, restore with reap (which
 * records it; concurrent first restores run as reap-norecord meanwhile). */
static enum mem_mode restore_mode(enum fn_restore r, const char *snap_dir)
{
    switch (r) {
    case FN_RESTORE_LAZY: return MEM_LAZY;
    case FN_RESTORE_COPY: return MEM_COPY;
    case FN_RESTORE_SHARE: return sandbox_has_working_set(snap_dir) ? MEM_SHARE : MEM_REAP;
    default: return MEM_REAP;
    }
}

/* Creates an instance of version v (no locks held). The function's reference is held
 * by the caller; the log sink points at f, which outlives its instances. */
static struct instance *create_instance(struct function *f, struct fn_version *v, const struct fn_config *cfg,
                                        uint64_t seq, bool for_request, struct thaw_error *err)
{
    struct instance *in = calloc(1, sizeof *in);
    if (!in) {
        thaw_fail(err, "out of memory");
        return NULL;
    }
    snprintf(in->id, sizeof in->id, "%.40s-v%u-%llu", f->name, v->gen, (unsigned long long)seq);
    struct sandbox_options opt = {
        .id = in->id,
        .invoke_timeout_ns = cfg->timeout_ms * 1000000ull,
        .memory_mib = cfg->memory_mib,
        .worker = f->srv->opt.worker,
        .pager_socket = f->srv->opt.pager_socket,
        .log = sandbox_log_sink,
        .log_ctx = f,
    };
    char path[1200];
    int r;
    uint64_t t0 = clock_now_ns();
    enum start_kind kind = START_COLD_BOOT;
    if (cfg->restore == FN_RESTORE_BOOT) {
        store_bundle_dir(v, path, sizeof path);
        r = sandbox_boot(&in->sb, path, &opt, err);
    } else {
        store_snapshot_dir(v, path, sizeof path);
        enum mem_mode mode = restore_mode(cfg->restore, path);
        kind = kind_of(mode);
        r = sandbox_restore(&in->sb, path, mode, &opt, err);
    }
    if (r < 0) {
        free(in);
        return NULL;
    }
    in->kind = kind;
    in->timeout_ms = cfg->timeout_ms;
    in->restore_ns = clock_now_ns() - t0; /* all the daemon waited for, not only the VM part */
    /* For a request, nothing is sampled on its way (its memory is, after the answer went
     * out: api.c); an instance started ahead of demand is sampled now. */
    struct sandbox_stats st;
    if ((for_request ? sandbox_stats_light(in->sb, &st, NULL) : sandbox_stats(in->sb, &st, NULL)) == 0) {
        in->prefetch_ns = st.ws_read_ns + st.ws_install_ns;
        in->state_load_ns = st.state_load_ns;
        in->memory_setup_ns = st.memory_setup_ns;
        in->vm_create_ns = st.vm_create_ns;
        in->image_ns = st.image_restore_ns;
        in->memory = (struct mem_bytes){st.rss_kb * 1024, st.pss_kb * 1024};
    }
    version_get(v);
    in->ver = v;
    return in;
}

/* ---- acquire / release --------------------------------------------------------------- */

/* An instance of an older version, or started under another timeout than the
 * function's now (f->lock held): it serves no new request. */
static bool stale(const struct function *f, const struct instance *in)
{
    return in->ver != f->ver || in->timeout_ms != f->cfg.timeout_ms;
}

#define FINISHING_WAIT_MS 100

static void deadline_after(struct timespec *ts, uint64_t ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    uint64_t ns = (uint64_t)ts->tv_nsec + (ms % 1000) * 1000000ull;
    ts->tv_sec += (time_t)(ms / 1000 + ns / 1000000000ull);
    ts->tv_nsec = (long)(ns % 1000000000ull);
}

int pool_acquire(struct function *f, struct instance **out, uint64_t *queue_ns, int *status, struct thaw_error *err)
{
    uint64_t t0 = clock_now_ns();
    *out = NULL;
    *queue_ns = 0;
    pthread_mutex_lock(&f->lock);
    f->last_invocation_ns = t0;
    struct timespec deadline;
    deadline_after(&deadline, f->cfg.queue_timeout_ms);
    bool queued = false;
    /* How long a request waits for an instance on its way back before it cold-starts
     * another (its stats take well under this, a cold start longer): set when it first
     * has to, not on every request. */
    struct timespec back_by;
    bool back_by_set = false;
    for (;;) {
        if (f->deleted) {
            *status = 404;
            thaw_fail(err, "function %s was deleted", f->name);
            break;
        }
        if (f->idle) {
            struct instance *in = f->idle;
            uint64_t now = clock_now_ns();
            f->idle = in->next;
            f->n_idle--;
            if (sandbox_gone(in->sb) || stale(f, in)) {
                /* Its worker died while idle (killed, out of memory), or it belongs to an
                 * older version or timeout than a deploy or PATCH just set (the reaper
                 * has not culled it yet): never hand it a request; drop it, look again. */
                charge_idle(f, in, now);
                pthread_mutex_unlock(&f->lock);
                destroy_instance(f, in);
                pthread_mutex_lock(&f->lock);
                pthread_cond_signal(&f->cond); /* a slot is free again */
                continue;
            }
            f->n_busy++;
            if (queued)
                f->n_waiting--;
            charge_idle(f, in, now);
            start_busy(f, in, now);
            f->ka.ops->on_invocation(f->ka.state, t0);
            pthread_mutex_unlock(&f->lock);
            in->next = NULL;
            *queue_ns = clock_now_ns() - t0;
            *out = in;
            return 0;
        }
        if (f->n_finishing > f->n_awaiting) { /* one each: the rest of a burst starts cold at once */
            if (!back_by_set) {
                deadline_after(&back_by, FINISHING_WAIT_MS);
                back_by_set = true;
            }
            f->n_awaiting++;
            int r = pthread_cond_timedwait(&f->cond, &f->lock, &back_by);
            f->n_awaiting--;
            if (r != ETIMEDOUT)
                continue; /* one came back (or another changed the pool): look again */
        }
        if (f->n_idle + f->n_busy + f->n_starting < f->cfg.max_instances) {
            struct fn_version *v = f->ver;
            struct fn_config cfg = f->cfg;
            uint64_t seq = ++f->next_instance;
            version_get(v);
            f->n_starting++;
            if (queued)
                f->n_waiting--;
            f->ka.ops->on_invocation(f->ka.state, t0);
            pthread_mutex_unlock(&f->lock);
            *queue_ns = clock_now_ns() - t0;
            struct instance *in = create_instance(f, v, &cfg, seq, true, err);
            version_put(v);
            pthread_mutex_lock(&f->lock);
            f->n_starting--;
            if (in) {
                f->n_busy++;
                start_busy(f, in, clock_now_ns());
            } else {
                f->ka.ops->on_invocation_end(f->ka.state, clock_now_ns());
                pthread_cond_signal(&f->cond); /* a slot is free again */
            }
            pthread_mutex_unlock(&f->lock);
            if (!in) {
                *status = 502;
                return -1;
            }
            *out = in;
            return 0;
        }
        if (!queued) {
            if (f->n_waiting >= f->cfg.queue_max) {
                *status = 429;
                thaw_fail(err, "%s: all %u instances busy and the queue is full (%u waiting)", f->name,
                          f->cfg.max_instances, f->n_waiting);
                break;
            }
            f->n_waiting++;
            queued = true;
        }
        int r = pthread_cond_timedwait(&f->cond, &f->lock, &deadline);
        if (r == ETIMEDOUT) {
            f->n_waiting--;
            queued = false;
            *status = 503;
            thaw_fail(err, "%s: no instance became free within the queue timeout (%llu ms)", f->name,
                      (unsigned long long)f->cfg.queue_timeout_ms);
            break;
        }
    }
    if (queued)
        f->n_waiting--;
    pthread_mutex_unlock(&f->lock);
    *queue_ns = clock_now_ns() - t0;
    return -1;
}

void pool_finishing(struct function *f)
{
    pthread_mutex_lock(&f->lock);
    f->n_finishing++;
    pthread_mutex_unlock(&f->lock);
}

static void release(struct function *f, struct instance *in, bool healthy, bool finishing)
{
    pthread_mutex_lock(&f->lock);
    if (finishing)
        f->n_finishing--;
    uint64_t now = clock_now_ns();
    f->n_busy--;
    mem_bytes_sub(&f->busy_memory, in->busy_memory);
    mem_byte_s_add(&f->busy_byte_s, in->memory, now - in->busy_since_ns);
    f->ka.ops->on_invocation_end(f->ka.state, now);
    bool keep = healthy && !f->deleted && !f->srv->stop && !stale(f, in);
    if (keep) {
        in->used = true;
        in->idle_since_ns = now;
        in->next = f->idle;
        f->idle = in;
        f->n_idle++;
    }
    pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&f->lock);
    if (!keep)
        destroy_instance(f, in);
}

void pool_release(struct function *f, struct instance *in, bool healthy)
{
    release(f, in, healthy, false);
}

void pool_release_finished(struct function *f, struct instance *in)
{
    release(f, in, true, true);
}

void pool_set_version(struct function *f, struct fn_version *v, const struct fn_config *cfg)
{
    pthread_mutex_lock(&f->lock);
    struct fn_version *old = f->ver;
    f->ver = v;
    f->cfg = *cfg;
    struct keepalive_params kp = keepalive_params_of(cfg);
    f->ka.ops->set_params(f->ka.state, &kp);
    drop_idle_and_unlock(f);
    if (old) {
        old->retired = true;
        version_put(old);
    }
}

void pool_set_config(struct function *f, const struct fn_config *cfg)
{
    struct thaw_error err;
    pthread_mutex_lock(&f->lock);
    bool policy_changed = strcmp(f->cfg.keep_alive_policy, cfg->keep_alive_policy) != 0;
    struct keepalive_params kp = keepalive_params_of(cfg);
    struct keepalive fresh = {0};
    /* A new policy starts with no history; in-flight invocations end in it. Out of
     * memory keeps the old policy (the stored configuration names the new one). */
    if (policy_changed && keepalive_create(&fresh, cfg->keep_alive_policy, &kp, &err) == 0) {
        keepalive_destroy(&f->ka);
        f->ka = fresh;
        for (unsigned i = 0; i < f->n_busy; i++)
            f->ka.ops->on_invocation(f->ka.state, clock_now_ns());
    } else {
        f->ka.ops->set_params(f->ka.state, &kp);
    }
    f->cfg = *cfg;
    pthread_cond_broadcast(&f->cond); /* max_instances may have grown */
    pthread_mutex_unlock(&f->lock);
}

void pool_gauges(struct function *f, struct fn_gauges *g)
{
    uint64_t now = clock_now_ns();
    pthread_mutex_lock(&f->lock);
    g->idle = f->n_idle;
    g->busy = f->n_busy;
    g->starting = f->n_starting;
    g->queued = f->n_waiting;
    g->idle_memory = (struct mem_bytes){0, 0};
    g->idle_byte_s = f->idle_byte_s;
    for (struct instance *in = f->idle; in; in = in->next) {
        mem_bytes_add(&g->idle_memory, in->memory);
        if (now > in->idle_since_ns) /* the idle time so far */
            mem_byte_s_add(&g->idle_byte_s, in->memory, now - in->idle_since_ns);
    }
    g->busy_memory = f->busy_memory;
    g->busy_byte_s = f->busy_byte_s;
    g->memory_bytes = g->idle_memory.rss + g->busy_memory.rss;
    pthread_mutex_unlock(&f->lock);
}

void pool_keepalive_windows(struct function *f, struct keepalive_windows *w)
{
    pthread_mutex_lock(&f->lock);
    f->ka.ops->windows(f->ka.state, w);
    pthread_mutex_unlock(&f->lock);
}

/* ---- the reaper ------------------------------------------------------------------ */

static void reap_function(struct function *f, void *ctx)
{
    (void)ctx;
    uint64_t now = clock_now_ns();
    struct instance *doomed = NULL;
    pthread_mutex_lock(&f->lock);
    uint64_t ttl = f->ka.ops->idle_ttl_ns(f->ka.state, now);
    bool warm_wanted = f->ka.ops->want_warm && f->ka.ops->want_warm(f->ka.state, now);
    unsigned alive = f->n_idle + f->n_busy + f->n_starting;
    /* The idle list is most recently used first: expired ones are at the tail. */
    struct instance **pp = &f->idle;
    while (*pp) {
        struct instance *in = *pp;
        bool old = stale(f, in);
        /* A pre-warmed instance no invocation has used yet stays while the policy
         * wants one warm; one that served stays for the policy's idle lifetime. */
        bool past = in->prewarmed && !in->used && f->ka.ops->want_warm ? !warm_wanted
                                                                        : now - in->idle_since_ns >= ttl;
        bool expired = past && alive > f->cfg.min_instances;
        bool excess = alive > f->cfg.max_instances; /* max_instances was lowered */
        if (old || expired || excess) {
            charge_idle(f, in, now);
            *pp = in->next;
            in->next = doomed;
            doomed = in;
            f->n_idle--;
            alive--;
        } else {
            pp = &in->next;
        }
    }
    bool want = !f->deleted && !f->srv->stop && !f->srv->draining &&
                (alive < f->cfg.min_instances || (alive == 0 && warm_wanted)) && alive < f->cfg.max_instances;
    struct fn_version *v = NULL;
    struct fn_config cfg = f->cfg;
    uint64_t seq = 0;
    if (want) {
        v = f->ver;
        version_get(v);
        f->n_starting++;
        seq = ++f->next_instance;
    }
    pthread_mutex_unlock(&f->lock);
    while (doomed) {
        struct instance *n = doomed->next;
        destroy_instance(f, doomed);
        doomed = n;
    }
    if (!want)
        return;
    struct thaw_error err;
    struct instance *in = create_instance(f, v, &cfg, seq, false, &err);
    version_put(v);
    if (!in) {
        char msg[sizeof err.msg + 32];
        int n = snprintf(msg, sizeof msg, "pre-warm failed: %s", err.msg);
        function_log(f, "daemon", 0, SANDBOX_KERNEL, msg, (size_t)n);
    }
    pthread_mutex_lock(&f->lock);
    f->n_starting--;
    if (in) {
        in->prewarmed = true;
        in->idle_since_ns = clock_now_ns();
        in->next = f->idle;
        f->idle = in;
        f->n_idle++;
    }
    pthread_cond_signal(&f->cond);
    pthread_mutex_unlock(&f->lock);
}

void pool_reap_all(struct serve *s)
{
    registry_foreach(s, reap_function, NULL);
}

static void drain_function(struct function *f, void *ctx)
{
    (void)ctx;
    pthread_mutex_lock(&f->lock);
    uint64_t now = clock_now_ns();
    for (struct instance *in = f->idle; in; in = in->next)
        charge_idle(f, in, now);
    struct instance *idle = f->idle;
    f->idle = NULL;
    f->n_idle = 0;
    pthread_mutex_unlock(&f->lock);
    while (idle) {
        struct instance *n = idle->next;
        destroy_instance(f, idle);
        idle = n;
    }
}

void pool_drain_idle(struct serve *s)
{
    registry_foreach(s, drain_function, NULL);
}
