#include "host/serve/keepalive.h"

#include <stdlib.h>
#include <string.h>

#include "host/policy/hybrid_histogram.h"

/* ---- fixed: a constant keep-alive window --------------------------------------- */

struct fixed {
    uint64_t ttl_ns;
};

static void *fixed_create(const struct keepalive_params *p)
{
    struct fixed *f = calloc(1, sizeof *f);
    if (f)
        f->ttl_ns = p->keep_alive_ns;
    return f;
}

static void fixed_destroy(void *s)
{
    free(s);
}

static void fixed_event(void *s, uint64_t now)
{
    (void)s;
    (void)now;
}

static void fixed_set(void *s, const struct keepalive_params *p)
{
    ((struct fixed *)s)->ttl_ns = p->keep_alive_ns;
}

static uint64_t fixed_ttl(void *s, uint64_t now)
{
    (void)now;
    return ((struct fixed *)s)->ttl_ns;
}

static void fixed_windows(void *s, struct keepalive_windows *w)
{
    *w = (struct keepalive_windows){.decision = "fixed", .keep_alive_ns = ((struct fixed *)s)->ttl_ns};
}

static const struct keepalive_ops fixed_ops = {
    .name = "fixed",
    .create = fixed_create,
    .destroy = fixed_destroy,
    .on_invocation = fixed_event,
    .on_invocation_end = fixed_event,
    .set_params = fixed_set,
    .idle_ttl_ns = fixed_ttl,
    .want_warm = NULL,
    .windows = fixed_windows,
};

/* ---- hybrid: Shahrad et al.'s histogram of idle times ---------------------------- */

#define HYBRID_BINS 240 /* the paper's four hours of one-minute bins */

struct hybrid {
    struct hybrid_histogram h;
    struct hybrid_windows w; /* recomputed at each idle time */
    struct keepalive_params p;
    unsigned in_flight;      /* invocations between arrival and end */
    uint64_t last_end_ns;    /* 0: none has ended yet */
};

static int hybrid_reset(struct hybrid *s, const struct keepalive_params *p)
{
    struct hybrid_config c;
    hybrid_config_default(&c);
    c.bins = HYBRID_BINS;
    c.bin_s = (double)(p->bin_ns ? p->bin_ns : 60000000000ull) / 1e9;
    c.fallback_keepalive_s = (double)p->keep_alive_ns / 1e9;
    hybrid_free(&s->h);
    if (hybrid_init(&s->h, &c, NULL) < 0)
        return -1;
    s->p = *p;
    hybrid_windows(&s->h, &s->w);
    return 0;
}

static void hybrid_destroy(void *st)
{
    struct hybrid *s = st;
    if (s)
        hybrid_free(&s->h);
    free(s);
}

static void *hybrid_create(const struct keepalive_params *p)
{
    struct hybrid *s = calloc(1, sizeof *s);
    if (s && hybrid_reset(s, p) < 0) {
        hybrid_destroy(s);
        return NULL;
    }
    return s;
}

static void hybrid_on_invocation(void *st, uint64_t now)
{
    struct hybrid *s = st;
    /* An arrival while another invocation runs ends no idle period. */
    if (s->in_flight++ == 0 && s->last_end_ns && now >= s->last_end_ns) {
        hybrid_record_idle(&s->h, (double)(now - s->last_end_ns) / 1e9);
        hybrid_windows(&s->h, &s->w);
    }
}

static void hybrid_on_end(void *st, uint64_t now)
{
    struct hybrid *s = st;
    if (s->in_flight)
        s->in_flight--;
    if (now > s->last_end_ns)
        s->last_end_ns = now;
}

static void hybrid_set(void *st, const struct keepalive_params *p)
{
    struct hybrid *s = st;
    if (p->bin_ns != s->p.bin_ns) { /* a histogram of other bins: start again */
        struct hybrid_histogram old = s->h;
        memset(&s->h, 0, sizeof s->h);
        if (hybrid_reset(s, p) < 0)
            s->h = old; /* out of memory: keep the old histogram */
        else
            hybrid_free(&old);
        return;
    }
    s->p = *p;
    s->h.cfg.fallback_keepalive_s = (double)p->keep_alive_ns / 1e9;
    hybrid_windows(&s->h, &s->w);
}

static uint64_t hybrid_ttl(void *st, uint64_t now)
{
    (void)now;
    return (uint64_t)(hybrid_idle_ttl_s(&((struct hybrid *)st)->w) * 1e9);
}

static bool hybrid_want(void *st, uint64_t now)
{
    struct hybrid *s = st;
    if (s->w.prewarm_s <= 0 || s->in_flight || !s->last_end_ns || now < s->last_end_ns)
        return false; /* no pre-warm gap: the idle instance is kept instead */
    return hybrid_want_warm(&s->w, (double)(now - s->last_end_ns) / 1e9);
}

static void hybrid_report(void *st, struct keepalive_windows *w)
{
    struct hybrid *s = st;
    *w = (struct keepalive_windows){
        .decision = hybrid_decision_name(s->w.decision),
        .prewarm_ns = (uint64_t)(s->w.prewarm_s * 1e9),
        .keep_alive_ns = (uint64_t)(s->w.keepalive_s * 1e9),
        .idle_times = s->h.in_bounds + s->h.out_of_bounds,
    };
}

static const struct keepalive_ops hybrid_ops = {
    .name = "hybrid",
    .create = hybrid_create,
    .destroy = hybrid_destroy,
    .on_invocation = hybrid_on_invocation,
    .on_invocation_end = hybrid_on_end,
    .set_params = hybrid_set,
    .idle_ttl_ns = hybrid_ttl,
    .want_warm = hybrid_want,
    .windows = hybrid_report,
};

static const struct keepalive_ops *const policies[] = {&fixed_ops, &hybrid_ops};

static const struct keepalive_ops *find(const char *name)
{
    for (size_t i = 0; i < sizeof policies / sizeof policies[0]; i++)
        if (!strcmp(policies[i]->name, name))
            return policies[i];
    return NULL;
}

bool keepalive_known(const char *policy)
{
    return find(policy) != NULL;
}

int keepalive_create(struct keepalive *ka, const char *policy, const struct keepalive_params *p,
                     struct thaw_error *err)
{
    const struct keepalive_ops *ops = find(policy);
    if (!ops)
        return thaw_fail(err, "unknown keep-alive policy \"%.40s\" (known: fixed, hybrid)", policy);
    ka->ops = ops;
    ka->state = ops->create(p);
    return ka->state ? 0 : thaw_fail(err, "out of memory");
}

void keepalive_destroy(struct keepalive *ka)
{
    if (ka->ops && ka->state)
        ka->ops->destroy(ka->state);
    ka->ops = NULL;
    ka->state = NULL;
}
