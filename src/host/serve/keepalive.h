/* Keep-alive policies: how long an idle instance of a function stays warm before it
 * is torn down (scale to zero), and when one should be started ahead of demand.
 * The pool asks the function's policy and tells it when each served invocation
 * arrives and ends. Policies (keepalive.c's table):
 *   fixed   an idle instance stays for the function's keep_alive_ms (the default);
 *   hybrid  Shahrad et al.'s hybrid histogram (ATC'20, host/policy/hybrid_histogram.h):
 *           the function's idle times (end of its last invocation to the next arrival
 *           while none is running) go into a histogram of 240 bins of hybrid_bin_ms;
 *           when it is representative, an instance is torn down when its invocation
 *           ends and one is restored again at the pre-warm window (the head percentile)
 *           for the keep-alive window (to the tail percentile); otherwise it falls back
 *           to a fixed keep_alive_ms. */
#ifndef THAW_SERVE_KEEPALIVE_H
#define THAW_SERVE_KEEPALIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "host/util/error.h"

#define KEEPALIVE_NAME_MAX 31

struct keepalive_params {
    uint64_t keep_alive_ns; /* fixed: the keep-alive; hybrid: its fallback */
    uint64_t bin_ns;        /* hybrid: width of a histogram bin */
};

/* What a policy decides now, for GET /functions/{name}. */
struct keepalive_windows {
    const char *decision;   /* "fixed", or the hybrid decision ("histogram", "few-samples", ...) */
    uint64_t prewarm_ns;    /* after an invocation ends, no instance is kept for this long */
    uint64_t keep_alive_ns; /* then one is kept for this long */
    uint64_t idle_times;    /* idle times recorded (hybrid) */
};

struct keepalive_ops {
    const char *name;
    void *(*create)(const struct keepalive_params *p);
    void (*destroy)(void *state);
    /* A served invocation arrived at now_ns (monotonic); each is matched by one
     * on_invocation_end. */
    void (*on_invocation)(void *state, uint64_t now_ns);
    void (*on_invocation_end)(void *state, uint64_t now_ns);
    /* The configuration changed (PATCH). */
    void (*set_params)(void *state, const struct keepalive_params *p);
    /* How long an instance that became idle after an invocation may stay idle. */
    uint64_t (*idle_ttl_ns)(void *state, uint64_t now_ns);
    /* True while an instance should be warm although no invocation needs it
     * (pre-warming); a pre-warmed instance stays while this holds. NULL: never. */
    bool (*want_warm)(void *state, uint64_t now_ns);
    void (*windows)(void *state, struct keepalive_windows *out);
};

struct keepalive {
    const struct keepalive_ops *ops;
    void *state;
};

/* Looks a policy up by name; -1 with err naming the known ones. */
int keepalive_create(struct keepalive *ka, const char *policy, const struct keepalive_params *p,
                     struct thaw_error *err);
void keepalive_destroy(struct keepalive *ka);
bool keepalive_known(const char *policy);

#endif
