/* Keep-alive policies: how long an idle instance of a function stays warm before it
 * is torn down (scale to zero), and whether one should be started ahead of demand.
 * The pool asks the function's policy; a policy sees every invocation's arrival time.
 * "fixed" keeps an idle instance for the function's keep_alive_ms. A new policy
 * (e.g. a hybrid histogram of idle times) adds one entry to keepalive.c's table. */
#ifndef THAW_SERVE_KEEPALIVE_H
#define THAW_SERVE_KEEPALIVE_H

#include <stdbool.h>
#include <stdint.h>

#include "host/util/error.h"

#define KEEPALIVE_NAME_MAX 31

struct keepalive_ops {
    const char *name;
    /* State for one function; keep_alive_ns is the configured keep-alive. */
    void *(*create)(uint64_t keep_alive_ns);
    void (*destroy)(void *state);
    /* An invocation of the function arrived at now_ns (monotonic). */
    void (*on_invocation)(void *state, uint64_t now_ns);
    /* The configured keep-alive changed (PATCH). */
    void (*set_keep_alive)(void *state, uint64_t keep_alive_ns);
    /* How long an instance that became idle may stay idle, asked at now_ns. */
    uint64_t (*idle_ttl_ns)(void *state, uint64_t now_ns);
    /* True if an instance should be warm at now_ns although none is (pre-warming);
     * last_invocation_ns is 0 before the first invocation. NULL: never. */
    bool (*want_prewarm)(void *state, uint64_t now_ns, uint64_t last_invocation_ns);
};

struct keepalive {
    const struct keepalive_ops *ops;
    void *state;
};

/* Looks a policy up by name ("fixed"); -1 with err naming the known ones. */
int keepalive_create(struct keepalive *ka, const char *policy, uint64_t keep_alive_ns, struct thaw_error *err);
void keepalive_destroy(struct keepalive *ka);
bool keepalive_known(const char *policy);

#endif
