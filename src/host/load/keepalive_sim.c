/* Keep-alive policy simulation over a schedule (load.h). Per function, a pool of
 * instances; each is loaded over [loaded_from, loaded_until) and busy until busy_until. */
#include "host/load/load.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host/policy/hybrid_histogram.h"

struct inst {
    double loaded_from, loaded_until, busy_until;
};

struct pool {
    struct inst *v;
    size_t n, cap;
    double last_retired_end; /* latest end among torn-down instances */
    bool any_free; /* an instance has finished (so idle times exist) */
    struct hybrid_histogram hist;
};

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Adds an instance's loaded time [loaded_from, min(loaded_until, until)) x mb. */
static void charge(const struct inst *in, double until, double mb, double *mem)
{
    double from = in->loaded_from, to = in->loaded_until < until ? in->loaded_until : until;
    if (to > from)
        *mem += (to - from) * mb;
}

static double memory_of(const struct load_ka_config *cfg, size_t f)
{
    return cfg->function_memory_mb && cfg->function_memory_mb[f] > 0 ? cfg->function_memory_mb[f] : cfg->memory_mb;
}

int load_keepalive_simulate(const struct load_schedule *s, const struct load_ka_config *cfg,
                            struct load_ka_result *out, struct thaw_error *err)
{
    memset(out, 0, sizeof *out);
    struct pool *pools = calloc(s->target_count ? s->target_count : 1, sizeof *pools);
    double *lat = malloc((s->count ? s->count : 1) * sizeof *lat);
    /* Busy seconds per function: idle memory = loaded memory - busy seconds x memory. */
    double *busy = calloc(s->target_count ? s->target_count : 1, sizeof *busy);
    int rc = -1;
    if (!pools || !lat || !busy) {
        thaw_fail(err, "out of memory for the simulation");
        goto out;
    }
    if (cfg->policy == LOAD_KA_HYBRID) {
        struct hybrid_config hc;
        hybrid_config_default(&hc);
        hc.bin_s = cfg->hybrid_bin_s > 0 ? cfg->hybrid_bin_s : 60;
        hc.fallback_keepalive_s = cfg->hybrid_fallback_s;
        for (size_t i = 0; i < s->target_count; i++)
            if (hybrid_init(&pools[i].hist, &hc, err) < 0)
                goto out;
    }
    double mem = 0;
    uint64_t live_max = 0;
    for (size_t e = 0; e < s->count; e++) {
        const struct load_event *ev = &s->events[e];
        struct pool *p = &pools[ev->function];
        double t = (double)ev->at_us / 1e6, dur = (double)ev->duration_us / 1e6;
        double mb = memory_of(cfg, ev->function);
        /* Retire instances whose loaded window ended before t; find an idle loaded one. */
        struct inst *hit = NULL;
        size_t w = 0;
        for (size_t i = 0; i < p->n; i++) {
            struct inst *in = &p->v[i];
            if (in->loaded_until <= t && in->busy_until <= t) {
                charge(in, in->loaded_until, mb, &mem);
                if (in->busy_until > p->last_retired_end)
                    p->last_retired_end = in->busy_until;
                continue;
            }
            p->v[w++] = *in;
        }
        p->n = w;
        for (size_t i = 0; i < p->n && !hit; i++)
            if (p->v[i].busy_until <= t && p->v[i].loaded_from <= t && t < p->v[i].loaded_until)
                hit = &p->v[i];
        /* The idle time a policy could have bridged: since the most recent end among
         * the instances that are free now (kept or torn down). When every instance is
         * busy no keep-alive could have helped, so nothing is recorded. */
        if (cfg->policy == LOAD_KA_HYBRID && p->any_free) {
            double last_free = p->last_retired_end;
            bool free_now = false;
            for (size_t i = 0; i < p->n; i++)
                if (p->v[i].busy_until <= t) {
                    free_now = true;
                    if (p->v[i].busy_until > last_free)
                        last_free = p->v[i].busy_until;
                }
            if (free_now || p->last_retired_end > 0)
                hybrid_record_idle(&p->hist, t - last_free);
        }
        bool cold = !hit;
        if (cold) {
            if (p->n == p->cap) {
                size_t nc = p->cap ? p->cap * 2 : 4;
                struct inst *nv = realloc(p->v, nc * sizeof *nv);
                if (!nv) {
                    thaw_fail(err, "out of memory for the simulation");
                    goto out;
                }
                p->v = nv;
                p->cap = nc;
            }
            hit = &p->v[p->n++];
            hit->loaded_from = t;
            out->cold++;
        }
        double start_ms = cold ? cfg->cold_ms : cfg->warm_ms;
        lat[out->invocations++] = start_ms;
        double end = t + start_ms / 1000.0 + dur;
        busy[ev->function] += end - t;
        hit->busy_until = end;
        /* The window after this invocation. A pre-warm gap splits the instance's loaded
         * time: charge [loaded_from, end) now and load it again at end + prewarm. */
        double prewarm = 0, keep = 0;
        switch (cfg->policy) {
        case LOAD_KA_FIXED:
            keep = cfg->keepalive_s;
            break;
        case LOAD_KA_ZERO:
            keep = 0;
            break;
        case LOAD_KA_HYBRID: {
            struct hybrid_windows win;
            hybrid_windows(&p->hist, &win);
            prewarm = win.prewarm_s;
            keep = win.keepalive_s;
            break;
        }
        }
        if (prewarm > 0) {
            struct inst done = *hit;
            done.loaded_until = end;
            charge(&done, end, mb, &mem);
            hit->loaded_from = end + prewarm;
        }
        hit->loaded_until = end + prewarm + keep;
        p->any_free = true;
        uint64_t live = 0;
        for (size_t i = 0; i < s->target_count; i++)
            live += pools[i].n;
        if (live > live_max)
            live_max = live;
    }
    /* Instances still loaded at the end of the schedule are charged to the span's end. */
    double span = (double)s->span_us / 1e6;
    double idle_mem = 0;
    for (size_t f = 0; f < s->target_count; f++) {
        for (size_t i = 0; i < pools[f].n; i++) {
            double until = pools[f].v[i].loaded_until;
            if (until > span)
                until = span > pools[f].v[i].busy_until ? span : pools[f].v[i].busy_until;
            charge(&pools[f].v[i], until, memory_of(cfg, f), &mem);
        }
        idle_mem -= busy[f] * memory_of(cfg, f);
    }
    idle_mem += mem;
    if (idle_mem < 0)
        idle_mem = 0;
    out->memory_mb_s = mem;
    out->idle_memory_mb_s = idle_mem;
    out->max_instances = live_max;
    out->cold_share = out->invocations ? (double)out->cold / (double)out->invocations : 0;
    qsort(lat, out->invocations, sizeof *lat, cmp_double);
    out->p50_ms = load_percentile(lat, out->invocations, 50);
    out->p99_ms = load_percentile(lat, out->invocations, 99);
    rc = 0;
out:
    if (pools) {
        for (size_t i = 0; i < s->target_count; i++) {
            free(pools[i].v);
            if (cfg->policy == LOAD_KA_HYBRID)
                hybrid_free(&pools[i].hist);
        }
        free(pools);
    }
    free(lat);
    free(busy);
    return rc;
}
