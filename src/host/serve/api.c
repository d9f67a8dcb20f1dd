/* The HTTP API (docs/serve.md): routing, bodies, auth and answers on libmicrohttpd,
 * one thread per connection so an invocation may block while it waits for an
 * instance. Every error answer is JSON {"error": "..."}. */
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "host/function/bundle.h"
#include "host/serve/serve_impl.h"
#include "host/serve/store.h"
#include "host/util/clock.h"
#include "host/util/snapdir.h"
#include "host/util/tree.h"

struct request {
    char *body;
    size_t len, cap;
    uint64_t limit;
    bool too_big;
    /* An invocation whose instance is sampled (memory, pages) once its answer has gone
     * out, then released: the sampling asks the worker and the pager, off the answer's path. */
    struct serve *srv;
    struct function *done_f;
    struct instance *done_in;
    bool done_first;
};

/* ---- answers ------------------------------------------------------------------------ */

static enum MHD_Result answer(struct MHD_Connection *c, unsigned status, char *body, size_t len, const char *type)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result answer_json(struct MHD_Connection *c, unsigned status, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!text)
        return MHD_NO;
    size_t n = strlen(text);
    char *t2 = realloc(text, n + 2);
    if (t2) {
        text = t2;
        text[n++] = '\n';
        text[n] = 0;
    }
    return answer(c, status, text, n, "application/json");
}

static enum MHD_Result answer_error(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum MHD_Result answer_error(struct MHD_Connection *c, unsigned status, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return answer_json(c, status, json_pack("{s:s}", "error", msg));
}

/* ---- pieces --------------------------------------------------------------------------- */

static bool authorized(struct serve *s, struct MHD_Connection *c)
{
    if (!s->token[0])
        return true;
    const char *h = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncmp(h, "Bearer ", 7))
        return false;
    const char *t = h + 7;
    size_t a = strlen(t), b = strlen(s->token);
    unsigned diff = (unsigned)(a ^ b);
    for (size_t i = 0; i < b; i++) /* constant time in the token's length */
        diff |= (unsigned)(unsigned char)s->token[i] ^ (unsigned)(unsigned char)(i < a ? t[i] : 0);
    return diff == 0;
}

static uint64_t file_alloc(const char *dir, const char *name, uint64_t *apparent)
{
    char p[1400];
    struct stat st;
    tree_path(p, sizeof p, "%s/%s", dir, name);
    if (stat(p, &st) < 0) {
        if (apparent)
            *apparent = 0;
        return 0;
    }
    if (apparent)
        *apparent = (uint64_t)st.st_size;
    return (uint64_t)st.st_blocks * 512;
}

static json_t *function_json(struct function *f)
{
    struct fn_gauges g;
    pool_gauges(f, &g);
    pthread_mutex_lock(&f->lock);
    json_t *cfg = fn_config_to_json(&f->cfg);
    json_t *note = json_string(f->reap_note);
    struct fn_version *v = f->ver;
    version_get(v);
    pthread_mutex_unlock(&f->lock);
    char snap[1200];
    store_snapshot_dir(v, snap, sizeof snap);
    uint64_t mem_apparent, ws_apparent;
    uint64_t mem_alloc = file_alloc(snap, SNAPDIR_MEMORY, &mem_apparent);
    uint64_t state_alloc = file_alloc(snap, SNAPDIR_STATE, NULL);
    file_alloc(snap, SNAPDIR_WS_PAGES, &ws_apparent);
    uint64_t dir_alloc = 0;
    tree_usage(v->dir, &dir_alloc, NULL);
    uint64_t inv = 0;
    pthread_mutex_lock(&f->metrics.lock);
    for (int k = 0; k < START_KINDS; k++)
        inv += f->metrics.invocations[k];
    pthread_mutex_unlock(&f->metrics.lock);
    json_t *j = json_pack("{s:s, s:I, s:s, s:o, s:I, s:I, s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I}, s:I}", "name",
                          f->name, "version", (json_int_t)v->gen, "state", "ready", "config", cfg,
                          "snapshot_bytes", (json_int_t)(mem_alloc + state_alloc), "snapshot_memory_apparent_bytes",
                          (json_int_t)mem_apparent, "working_set_bytes", (json_int_t)ws_apparent,
                          "directory_bytes", (json_int_t)dir_alloc, "memory_bytes", (json_int_t)g.memory_bytes,
                          "instances", "idle", (json_int_t)g.idle, "busy", (json_int_t)g.busy, "starting",
                          (json_int_t)g.starting, "queued", (json_int_t)g.queued, "invocations", (json_int_t)inv);
    json_object_set_new(j, "reap_note", note);
    struct keepalive_windows w;
    pool_keepalive_windows(f, &w);
    json_object_set_new(j, "memory",
                        json_pack("{s:I, s:I, s:f, s:f, s:I, s:I, s:f, s:f}", "idle_bytes", (json_int_t)g.idle_memory.rss,
                                  "busy_bytes", (json_int_t)g.busy_memory.rss, "idle_byte_seconds", g.idle_byte_s.rss,
                                  "busy_byte_seconds", g.busy_byte_s.rss, "idle_pss_bytes", (json_int_t)g.idle_memory.pss,
                                  "busy_pss_bytes", (json_int_t)g.busy_memory.pss, "idle_pss_byte_seconds",
                                  g.idle_byte_s.pss, "busy_pss_byte_seconds", g.busy_byte_s.pss));
    json_object_set_new(j, "keep_alive",
                        json_pack("{s:s, s:I, s:I, s:I}", "decision", w.decision, "prewarm_ms",
                                  (json_int_t)(w.prewarm_ns / 1000000), "keep_alive_ms",
                                  (json_int_t)(w.keep_alive_ns / 1000000), "idle_times", (json_int_t)w.idle_times));
    version_put(v);
    return j;
}

static void list_one(struct function *f, void *ctx)
{
    json_array_append_new(ctx, function_json(f));
}

/* ---- handlers --------------------------------------------------------------------------- */

static unsigned failure_status(enum sandbox_failure f)
{
    switch (f) {
    case SANDBOX_FAIL_BAD_INPUT: return 400;
    case SANDBOX_FAIL_TIMEOUT: return 504;
    case SANDBOX_FAIL_GUEST:
    case SANDBOX_FAIL_WORKER: return 502;
    case SANDBOX_FAIL_INTERRUPTED: return 503;
    default: return 500;
    }
}

static enum MHD_Result handle_invoke(struct serve *s, struct MHD_Connection *c, const char *name, struct request *rq)
{
    if (s->opt.token_for_invoke && !authorized(s, c))
        return answer_error(c, 401, "invoke needs a valid bearer token");
    if (atomic_load(&s->draining))
        return answer_error(c, 503, "the daemon is draining");
    struct function *f = registry_get(s, name);
    if (!f)
        return answer_error(c, 404, "no function named %s", name);
    atomic_fetch_add(&s->in_flight, 1);
    uint64_t t0 = clock_now_ns();
    struct thaw_error err = {{0}};
    struct instance *in;
    uint64_t phase[PHASES] = {0};
    int status = 0;
    enum MHD_Result ret;
    if (pool_acquire(f, &in, &phase[PHASE_QUEUE], &status, &err) < 0) {
        fn_metrics_error(&f->metrics, status);
        ret = answer_error(c, (unsigned)status, "%s", err.msg);
        goto out;
    }
    enum start_kind kind = (in->used || in->prewarmed) ? START_WARM : in->kind;
    if (kind != START_WARM) {
        phase[PHASE_RESTORE] = in->restore_ns;
        phase[PHASE_PREFETCH] = in->prefetch_ns;
    }
    char phases[160] = "";
    if (kind != START_WARM && kind != START_COLD_BOOT)
        snprintf(phases, sizeof phases, "state=%llu,memory=%llu,vm=%llu,image=%llu",
                 (unsigned long long)(in->state_load_ns / 1000), (unsigned long long)(in->memory_setup_ns / 1000),
                 (unsigned long long)(in->vm_create_ns / 1000), (unsigned long long)(in->image_ns / 1000));
    uint8_t *resp = NULL;
    size_t resp_len = 0;
    uint64_t t = clock_now_ns();
    int r = sandbox_invoke(in->sb, rq->body ? rq->body : "", rq->len, &resp, &resp_len, &err);
    phase[PHASE_INVOKE] = clock_now_ns() - t;
    if (r < 0) {
        enum sandbox_failure why = sandbox_last_failure(in->sb);
        unsigned st = failure_status(why);
        char id[sizeof in->id];
        snprintf(id, sizeof id, "%s", in->id);
        pool_release(f, in, why == SANDBOX_FAIL_BAD_INPUT);
        fn_metrics_error(&f->metrics, (int)st);
        free(resp);
        ret = answer_error(c, st, "%s (instance %s): %s", sandbox_failure_name(why), id, err.msg);
        goto out;
    }
    bool first = !in->used;
    bool sample = first || (++in->served & 63) == 0;
    char id[sizeof in->id];
    snprintf(id, sizeof id, "%s", in->id);
    if (!sample)
        pool_release(f, in, true);
    phase[PHASE_TOTAL] = clock_now_ns() - t0;
    fn_metrics_invocation(&f->metrics, kind, phase);
    struct MHD_Response *mr = MHD_create_response_from_buffer(resp_len, resp, MHD_RESPMEM_MUST_FREE);
    if (sample) { /* on_completed samples and releases it, and ends the invocation */
        pool_finishing(f);
        rq->srv = s;
        rq->done_f = f;
        rq->done_in = in;
        rq->done_first = first;
    }
    if (!mr) {
        free(resp);
        ret = MHD_NO;
        goto out;
    }
    char num[32];
    MHD_add_response_header(mr, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
    MHD_add_response_header(mr, "X-Thaw-Instance", id);
    MHD_add_response_header(mr, "X-Thaw-Start", start_kind_name(kind));
    if (phases[0]) /* where the restore's time went: state read, memory set-up (with any prefetch), VM */
        MHD_add_response_header(mr, "X-Thaw-Restore-Phases-Us", phases);
    static const char *const hdr[5] = {"X-Thaw-Queue-Us", "X-Thaw-Restore-Us", "X-Thaw-Prefetch-Us",
                                       "X-Thaw-Invoke-Us", "X-Thaw-Total-Us"};
    for (int p = 0; p < 5; p++) {
        snprintf(num, sizeof num, "%llu", (unsigned long long)(phase[p] / 1000));
        MHD_add_response_header(mr, hdr[p], num);
    }
    ret = MHD_queue_response(c, MHD_HTTP_OK, mr);
    MHD_destroy_response(mr);
out:
    if (rq->done_in)
        return ret;
    atomic_fetch_sub(&s->in_flight, 1);
    function_put(f);
    return ret;
}

/* After the answer went out: the instance's memory and, after its first invocation, its
 * pages go into the metrics; then it is released and the invocation ends. */
static void finish_sampled(struct request *rq)
{
    struct function *f = rq->done_f;
    struct instance *in = rq->done_in;
    struct sandbox_stats st;
    if (sandbox_stats(in->sb, &st, NULL) == 0) {
        in->memory = (struct mem_bytes){st.rss_kb * 1024, st.pss_kb * 1024};
        if (rq->done_first) { /* the latest cold start's word, "" when all went as planned */
            if (st.reap_note[0])
                fprintf(stderr, "thaw serve: %s: REAP: %s\n", f->name, st.reap_note);
            pthread_mutex_lock(&f->lock);
            snprintf(f->reap_note, sizeof f->reap_note, "%s", st.reap_note);
            pthread_mutex_unlock(&f->lock);
            fn_metrics_pages(&f->metrics, st.reap_prefetched ? st.ws_pages : 0,
                             st.reap_prefetched ? st.reap_misses : st.pages_served, st.zero_pages);
        }
    }
    pool_release_finished(f, in);
    atomic_fetch_sub(&rq->srv->in_flight, 1);
    function_put(f);
    rq->done_in = NULL;
    rq->done_f = NULL;
}

struct arg_ctx {
    json_t *params;
};

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    json_object_set_new(((struct arg_ctx *)cls)->params, key, json_string(value ? value : ""));
    return MHD_YES;
}

static enum MHD_Result handle_function(struct serve *s, struct MHD_Connection *c, const char *method,
                                       const char *name, struct request *rq)
{
    if (!strcmp(method, "GET")) {
        struct function *f = registry_get(s, name);
        if (!f)
            return answer_error(c, 404, "no function named %s", name);
        json_t *j = function_json(f);
        function_put(f);
        return answer_json(c, 200, j);
    }
    if (!authorized(s, c))
        return answer_error(c, 401, "%s needs a valid bearer token", method);
    if (!strcmp(method, "PUT")) {
        if (atomic_load(&s->draining))
            return answer_error(c, 503, "the daemon is draining");
        if (!rq->len)
            return answer_error(c, 400, "PUT needs a tar of the function directory as its body");
        struct arg_ctx a = {json_object()};
        MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, collect_arg, &a);
        char *body = NULL;
        int st = deploy_function(s, name, rq->body, rq->len, a.params, &body);
        json_decref(a.params);
        if (!body)
            return answer_error(c, 500, "out of memory");
        size_t n = strlen(body);
        return answer(c, (unsigned)st, body, n, "application/json");
    }
    if (!strcmp(method, "PATCH")) {
        struct function *f = registry_get(s, name);
        if (!f)
            return answer_error(c, 404, "no function named %s", name);
        json_error_t jerr;
        json_t *patch = json_loadb(rq->body ? rq->body : "", rq->len, JSON_REJECT_DUPLICATES, &jerr);
        struct thaw_error err = {{0}};
        enum MHD_Result ret;
        pthread_mutex_lock(&f->lock);
        struct fn_config cfg = f->cfg;
        struct fn_version *v = f->ver;
        version_get(v);
        pthread_mutex_unlock(&f->lock);
        uint32_t memory_was = cfg.memory_mib, warmup_was = cfg.warmup;
        if (!patch) {
            ret = answer_error(c, 400, "PATCH body is not JSON: %s", jerr.text);
        } else if (fn_config_apply_json(&cfg, patch, &err) < 0) {
            ret = answer_error(c, 400, "%s", err.msg);
        } else if (cfg.memory_mib != memory_was || cfg.warmup != warmup_was) {
            /* The snapshot fixes guest memory and what ran before it: a new version is
             * booted, warmed up and snapshotted. */
            char *body = NULL;
            int st = atomic_load(&s->draining) ? 503 : redeploy_function(s, name, patch, &body);
            if (st == 503) {
                ret = answer_error(c, 503, "the daemon is draining");
            } else if (st < 300) {
                free(body);
                ret = answer_json(c, 200, function_json(f));
            } else if (!body) {
                ret = answer_error(c, 500, "out of memory");
            } else {
                ret = answer(c, (unsigned)st, body, strlen(body), "application/json");
            }
        } else if (store_write_config(v->dir, &cfg, &err) < 0) {
            ret = answer_error(c, 500, "%s", err.msg);
        } else {
            pool_set_config(f, &cfg);
            ret = answer_json(c, 200, function_json(f));
        }
        json_decref(patch);
        version_put(v);
        function_put(f);
        return ret;
    }
    if (!strcmp(method, "DELETE")) {
        pthread_mutex_lock(&s->deploy_lock);
        struct function *f = registry_get(s, name);
        if (!f) {
            pthread_mutex_unlock(&s->deploy_lock);
            return answer_error(c, 404, "no function named %s", name);
        }
        struct thaw_error err = {{0}};
        int r = store_delete(s, name, &err);
        if (r == 0)
            registry_remove(s, f);
        pthread_mutex_unlock(&s->deploy_lock);
        function_put(f);
        if (r < 0)
            return answer_error(c, 500, "%s", err.msg);
        return answer_json(c, 200, json_pack("{s:s, s:b}", "name", name, "deleted", 1));
    }
    return answer_error(c, 405, "%s is not allowed on /functions/%s", method, name);
}

static enum MHD_Result handle_logs(struct serve *s, struct MHD_Connection *c, const char *name)
{
    if (s->opt.token_for_invoke && !authorized(s, c))
        return answer_error(c, 401, "logs need a valid bearer token");
    struct function *f = registry_get(s, name);
    if (!f)
        return answer_error(c, 404, "no function named %s", name);
    const char *nstr = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "n");
    long want = nstr ? strtol(nstr, NULL, 10) : 100;
    if (want <= 0 || want > LOG_RING_LINES)
        want = LOG_RING_LINES;
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (!out) {
        function_put(f);
        return answer_error(c, 500, "out of memory");
    }
    static const char *const streams[] = {"?", "stdout", "stderr", "kernel"};
    pthread_mutex_lock(&f->log_lock);
    uint64_t last = f->log_seq;
    uint64_t first = last > (uint64_t)want ? last - (uint64_t)want + 1 : 1;
    for (uint64_t q = first; q <= last; q++) {
        struct log_line *l = &f->logs[(q - 1) % LOG_RING_LINES];
        fprintf(out, "%.3f %s #%llu %s: %s\n", l->unix_time, l->instance, (unsigned long long)l->invocation,
                streams[l->stream >= 1 && l->stream <= 3 ? l->stream : 0], l->text);
    }
    pthread_mutex_unlock(&f->log_lock);
    fclose(out);
    function_put(f);
    return answer(c, 200, buf, len, "text/plain; charset=utf-8");
}

struct metrics_ctx {
    FILE *out;
    int family;
};

static void metrics_one(struct function *f, void *ctx)
{
    struct metrics_ctx *m = ctx;
    struct fn_gauges g;
    pool_gauges(f, &g);
    metrics_write_family(m->out, m->family, f->name, &f->metrics, &g);
}

struct totals {
    struct fn_gauges g;
};

static void total_one(struct function *f, void *ctx)
{
    struct fn_gauges g;
    pool_gauges(f, &g);
    struct totals *t = ctx;
    t->g.idle += g.idle;
    t->g.busy += g.busy;
    t->g.starting += g.starting;
    t->g.queued += g.queued;
    t->g.memory_bytes += g.memory_bytes;
    mem_bytes_add(&t->g.idle_memory, g.idle_memory);
    mem_bytes_add(&t->g.busy_memory, g.busy_memory);
}

static enum MHD_Result handle_metrics(struct serve *s, struct MHD_Connection *c)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&buf, &len);
    if (!out)
        return answer_error(c, 500, "out of memory");
    for (int fam = 0; fam < metrics_families(); fam++) {
        metrics_write_family(out, fam, NULL, NULL, NULL);
        struct metrics_ctx m = {out, fam};
        registry_foreach(s, metrics_one, &m);
    }
    fprintf(out, "# HELP thaw_draining 1 while the daemon drains (SIGTERM), else 0.\n# TYPE thaw_draining gauge\n");
    fprintf(out, "thaw_draining %d\n", atomic_load(&s->draining) ? 1 : 0);
    fprintf(out, "# HELP thaw_in_flight Invocations being served.\n# TYPE thaw_in_flight gauge\n");
    fprintf(out, "thaw_in_flight %u\n", atomic_load(&s->in_flight));
    fprintf(out, "# HELP thaw_functions Functions deployed.\n# TYPE thaw_functions gauge\n");
    fprintf(out, "thaw_functions %zu\n", registry_count(s));
    struct sandbox_spare_stats sp;
    sandbox_spare_stats(&sp);
    fprintf(out, "# HELP thaw_spare_workers Worker processes started ahead, waiting for an instance (--spare-workers).\n"
                 "# TYPE thaw_spare_workers gauge\nthaw_spare_workers %u\n", sp.ready);
    fprintf(out, "# HELP thaw_spare_worker_uses_total Worker creations that took a spare (taken) or found none "
                 "(missed).\n# TYPE thaw_spare_worker_uses_total counter\n"
                 "thaw_spare_worker_uses_total{result=\"taken\"} %llu\nthaw_spare_worker_uses_total{result=\"missed\"} %llu\n",
            (unsigned long long)sp.taken, (unsigned long long)sp.missed);
    fclose(out);
    return answer(c, 200, buf, len, "text/plain; version=0.0.4; charset=utf-8");
}

static enum MHD_Result handle_healthz(struct serve *s, struct MHD_Connection *c)
{
    struct totals t = {{0}};
    registry_foreach(s, total_one, &t);
    bool draining = atomic_load(&s->draining);
    unsigned in_flight = atomic_load(&s->in_flight);
    struct sandbox_spare_stats sp;
    sandbox_spare_stats(&sp);
    json_t *j = json_pack("{s:s, s:b, s:b, s:I, s:I, s:{s:I, s:I, s:I}, s:I, s:I, s:I, s:I, s:I, s:f, "
                          "s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}}", "status",
                          draining ? "draining" : "ready", "ready", !draining, "draining", draining, "functions",
                          (json_int_t)registry_count(s), "in_flight", (json_int_t)in_flight, "instances", "idle",
                          (json_int_t)t.g.idle, "busy", (json_int_t)t.g.busy, "starting", (json_int_t)t.g.starting,
                          "queued", (json_int_t)t.g.queued, "memory_bytes", (json_int_t)t.g.memory_bytes,
                          "idle_memory_bytes", (json_int_t)t.g.idle_memory.rss, "pss_bytes",
                          (json_int_t)(t.g.idle_memory.pss + t.g.busy_memory.pss),
                          "deploys_running", (json_int_t)atomic_load(&s->deploys_running), "uptime_s",
                          (double)(clock_now_ns() - s->started_ns) / 1e9, "spares", "target", (json_int_t)sp.target,
                          "ready", (json_int_t)sp.ready, "vms_ready", (json_int_t)sp.vms_ready, "taken",
                          (json_int_t)sp.taken, "missed", (json_int_t)sp.missed, "started", (json_int_t)sp.started,
                          "died", (json_int_t)sp.died);
    return answer_json(c, draining ? 503 : 200, j);
}

/* ---- routing ------------------------------------------------------------------------------- */

enum route { R_NONE, R_INVOKE, R_FUNCTION, R_FUNCTIONS, R_LOGS, R_METRICS, R_HEALTHZ };

/* Splits the URL; name points into buf. Returns the route, or R_NONE. */
static enum route parse_route(const char *url, char *buf, size_t cap, const char **name)
{
    *name = NULL;
    if (!strcmp(url, "/healthz"))
        return R_HEALTHZ;
    if (!strcmp(url, "/metrics"))
        return R_METRICS;
    if (!strcmp(url, "/functions") || !strcmp(url, "/functions/"))
        return R_FUNCTIONS;
    const char *rest;
    enum route r;
    if (!strncmp(url, "/invoke/", 8)) {
        rest = url + 8;
        r = R_INVOKE;
    } else if (!strncmp(url, "/functions/", 11)) {
        rest = url + 11;
        r = R_FUNCTION;
    } else {
        return R_NONE;
    }
    snprintf(buf, cap, "%s", rest);
    size_t n = strlen(buf);
    if (r == R_FUNCTION && n > 5 && !strcmp(buf + n - 5, "/logs")) {
        buf[n - 5] = 0;
        r = R_LOGS;
    }
    *name = buf;
    return r;
}

static uint64_t body_limit(struct serve *s, const char *method, const char *url)
{
    if (!strcmp(method, "PUT") && !strncmp(url, "/functions/", 11))
        return s->opt.max_upload_bytes;
    if (!strcmp(method, "POST") || !strcmp(method, "PATCH"))
        return s->opt.max_body_bytes;
    return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    struct serve *s = cls;
    struct request *rq = *con_cls;
    if (!rq) {
        rq = calloc(1, sizeof *rq);
        if (!rq)
            return MHD_NO;
        rq->limit = body_limit(s, method, url);
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > rq->limit)
            rq->too_big = true; /* refuse without reading it into memory */
        *con_cls = rq;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!rq->too_big && rq->len + *upload_size > rq->limit)
            rq->too_big = true;
        if (!rq->too_big) {
            if (rq->len + *upload_size + 1 > rq->cap) {
                size_t cap = rq->cap ? rq->cap : 4096;
                while (cap < rq->len + *upload_size + 1)
                    cap *= 2;
                char *nb = realloc(rq->body, cap);
                if (!nb)
                    return MHD_NO;
                rq->body = nb;
                rq->cap = cap;
            }
            memcpy(rq->body + rq->len, upload, *upload_size);
            rq->len += *upload_size;
            rq->body[rq->len] = 0;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    char buf[512];
    const char *name;
    enum route r = parse_route(url, buf, sizeof buf, &name);
    if (r == R_NONE)
        return answer_error(c, 404, "no such endpoint: %.200s", url);
    if (rq->too_big)
        return answer_error(c, 400, "request body larger than the limit of %llu bytes",
                            (unsigned long long)rq->limit);
    if (name && !bundle_name_valid(name))
        return answer_error(c, 400, "invalid function name \"%.80s\": 1-%d characters of [a-z0-9_-], starting "
                                    "with a letter or digit", name, BUNDLE_NAME_MAX);
    bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    switch (r) {
    case R_HEALTHZ: return get ? handle_healthz(s, c) : answer_error(c, 405, "GET /healthz");
    case R_METRICS: return get ? handle_metrics(s, c) : answer_error(c, 405, "GET /metrics");
    case R_FUNCTIONS:
        if (!get)
            return answer_error(c, 405, "GET /functions");
        {
            json_t *arr = json_array();
            registry_foreach(s, list_one, arr);
            return answer_json(c, 200, json_pack("{s:o}", "functions", arr));
        }
    case R_LOGS: return get ? handle_logs(s, c, name) : answer_error(c, 405, "GET /functions/{name}/logs");
    case R_INVOKE:
        return !strcmp(method, "POST") ? handle_invoke(s, c, name, rq)
                                       : answer_error(c, 405, "POST /invoke/{name}");
    case R_FUNCTION: return handle_function(s, c, method, name, rq);
    default: return answer_error(c, 404, "no such endpoint");
    }
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t)
{
    (void)cls;
    (void)c;
    (void)t;
    struct request *rq = *con_cls;
    if (rq) {
        if (rq->done_in)
            finish_sampled(rq);
        free(rq->body);
        free(rq);
    }
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    fprintf(stderr, "thaw serve: http: ");
    vfprintf(stderr, fmt, ap);
}

struct MHD_Daemon *api_start(struct serve *s, uint16_t *port, struct thaw_error *err)
{
    char host[256];
    snprintf(host, sizeof host, "%s", s->opt.listen);
    char *colon = strrchr(host, ':');
    if (!colon)
        return thaw_fail(err, "--listen must be HOST:PORT, got \"%s\"", s->opt.listen), NULL;
    *colon = 0;
    char *end;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (*end || p > 65535)
        return thaw_fail(err, "--listen: bad port \"%s\"", colon + 1), NULL;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p)};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        return thaw_fail(err, "--listen: \"%s\" is not an IPv4 address", host), NULL;
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
        on_request, s, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
        s, MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
        MHD_OPTION_END);
    if (!d)
        return thaw_fail_errno(err, "cannot listen on %s", s->opt.listen), NULL;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    *port = info ? info->port : (uint16_t)p;
    return d;
}
