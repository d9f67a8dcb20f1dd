/* Per-function configuration of the daemon (docs/serve.md has the table): set at
 * deploy from query parameters, changed with PATCH from a JSON object, stored as
 * config.json in the function's directory. Every value is checked here. */
#ifndef THAW_SERVE_FN_CONFIG_H
#define THAW_SERVE_FN_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "host/serve/keepalive.h"
#include "host/util/error.h"

/* share: --mem share (one page-cache copy of the working set for all instances of the
 * function on the host); while the snapshot has no usable working set, a cold start is a
 * reap restore that records it. */
enum fn_restore { FN_RESTORE_REAP, FN_RESTORE_LAZY, FN_RESTORE_COPY, FN_RESTORE_BOOT, FN_RESTORE_SHARE };

struct fn_config {
    enum fn_restore restore;
    uint64_t keep_alive_ms;      /* idle instance lifetime; 0 = torn down at once */
    char keep_alive_policy[KEEPALIVE_NAME_MAX + 1];
    uint64_t hybrid_bin_ms;      /* hybrid policy: width of an idle-time histogram bin */
    uint32_t min_instances;      /* kept warm even when idle */
    uint32_t max_instances;      /* at most this many at once */
    uint32_t queue_max;          /* requests waiting above max_instances; more: 429 */
    uint64_t queue_timeout_ms;   /* a waiting request gives up after this: 503 */
    uint64_t timeout_ms;         /* per invocation: 504 */
    uint32_t memory_mib;         /* guest memory; 0 = function.json's */
    uint32_t warmup;             /* invocations before the snapshot (payloads/ of the source) */
};

void fn_config_default(struct fn_config *c);
const char *fn_restore_name(enum fn_restore r);

/* Applies the keys of a JSON object over c (unknown keys, wrong types, out-of-range
 * values: -1 and c unchanged). */
int fn_config_apply_json(struct fn_config *c, json_t *obj, struct thaw_error *err);
/* Applies one key=value pair given as text (a query parameter). */
int fn_config_apply_text(struct fn_config *c, const char *key, const char *value, struct thaw_error *err);
json_t *fn_config_to_json(const struct fn_config *c);
/* The keys fn_config understands, NULL-terminated. */
extern const char *const fn_config_keys[];

#endif
