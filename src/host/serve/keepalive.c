#include "host/serve/keepalive.h"

#include <stdlib.h>
#include <string.h>

/* ---- fixed: a constant keep-alive window --------------------------------------- */

struct fixed {
    uint64_t ttl_ns;
};

static void *fixed_create(uint64_t ka)
{
    struct fixed *f = calloc(1, sizeof *f);
    if (f)
        f->ttl_ns = ka;
    return f;
}

static void fixed_destroy(void *s)
{
    free(s);
}

static void fixed_on_invocation(void *s, uint64_t now)
{
    (void)s;
    (void)now;
}

static void fixed_set(void *s, uint64_t ka)
{
    ((struct fixed *)s)->ttl_ns = ka;
}

static uint64_t fixed_ttl(void *s, uint64_t now)
{
    (void)now;
    return ((struct fixed *)s)->ttl_ns;
}

static const struct keepalive_ops fixed_ops = {
    .name = "fixed",
    .create = fixed_create,
    .destroy = fixed_destroy,
    .on_invocation = fixed_on_invocation,
    .set_keep_alive = fixed_set,
    .idle_ttl_ns = fixed_ttl,
    .want_prewarm = NULL,
};

static const struct keepalive_ops *const policies[] = {&fixed_ops};

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

int keepalive_create(struct keepalive *ka, const char *policy, uint64_t keep_alive_ns, struct thaw_error *err)
{
    const struct keepalive_ops *ops = find(policy);
    if (!ops)
        return thaw_fail(err, "unknown keep-alive policy \"%s\" (known: fixed)", policy);
    ka->ops = ops;
    ka->state = ops->create(keep_alive_ns);
    return ka->state ? 0 : thaw_fail(err, "out of memory");
}

void keepalive_destroy(struct keepalive *ka)
{
    if (ka->ops && ka->state)
        ka->ops->destroy(ka->state);
    ka->ops = NULL;
    ka->state = NULL;
}
