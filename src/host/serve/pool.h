/* The daemon's functions and their instance pools.
 *
 * A function is one directory under <state>/functions/<name>/ (store.h) with a
 * committed version (bundle, snapshot, working set, config.json). Its pool holds
 * idle instances (warm, last used first) and counts busy and starting ones; each
 * instance serves one invocation at a time. An invocation takes an idle instance
 * (warm), or creates one through the lifecycle layer (sandbox.h) while fewer than
 * max_instances exist (cold: restored in the configured mode, or booted), or waits
 * in a bounded queue (full: 429; past queue_timeout_ms: 503). A reaper thread tears
 * idle instances down once the keep-alive policy says so (scale to zero), keeps
 * min_instances warm and pre-warms one when the policy asks (keepalive.h). Instances
 * of a replaced version are never reused. The pool accounts each instance's resident
 * memory x time while idle and while busy (instance-memory-seconds in /metrics).
 *
 * Locking: the registry lock guards the table and reference counts; each function's
 * lock guards its pool and config. Neither is held while an instance is created,
 * invoked or destroyed. */
#ifndef THAW_SERVE_POOL_H
#define THAW_SERVE_POOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "host/sandbox/sandbox.h"
#include "host/serve/fn_config.h"
#include "host/serve/keepalive.h"
#include "host/serve/metrics.h"

#define LOG_RING_LINES 512

/* One committed version of a function: a directory that stays until no instance
 * uses it and it is no longer current. */
struct fn_version {
    int refs;               /* under the registry lock */
    bool retired;           /* replaced: remove dir at the last reference */
    unsigned gen;           /* v<gen> */
    unsigned long long dev, ino; /* the directory's identity: never remove a namesake */
    char dir[1024];         /* .../functions/<name>/v<gen> */
};

struct instance {
    struct sandbox *sb;
    struct fn_version *ver;
    struct instance *next;     /* idle list */
    enum start_kind kind;      /* how it was created */
    bool used;                 /* has served an invocation */
    bool prewarmed;            /* made by the reaper for min_instances */
    uint64_t idle_since_ns;
    uint64_t busy_since_ns;
    struct mem_bytes busy_memory; /* what it added to the function's busy memory */
    uint64_t restore_ns, prefetch_ns;
    uint64_t state_load_ns, memory_setup_ns, vm_create_ns, image_ns; /* inside the restore (the worker's own view) */
    struct mem_bytes memory;   /* last sampled */
    uint64_t served;           /* invocations since the last sample */
    uint64_t timeout_ms;       /* the invocation timeout it was made with */
    char id[SANDBOX_ID_MAX + 1];
};

struct log_line {
    uint64_t seq;
    double unix_time;
    char instance[24];
    uint64_t invocation;
    int stream;
    char text[240];
};

struct function {
    char name[64];
    int refs;                  /* under the registry lock; the table holds one */
    bool deleted;
    struct serve *srv;
    pthread_mutex_t lock;      /* pool, config, version */
    pthread_cond_t cond;       /* an instance was released or destroyed */
    struct fn_config cfg;
    struct keepalive ka;
    struct fn_version *ver;    /* current */
    struct instance *idle;
    unsigned n_idle, n_busy, n_starting, n_waiting;
    unsigned n_finishing;      /* busy ones whose answer went out, on their way back (pool_finishing) */
    unsigned n_awaiting;       /* requests waiting for one of those (never more than there are) */
    uint64_t last_invocation_ns;
    struct mem_bytes busy_memory;       /* memory of busy instances, as sampled */
    struct mem_byte_s idle_byte_s, busy_byte_s; /* memory x time of instances that left that state */
    uint64_t next_instance;    /* for instance ids */
    struct fn_metrics metrics;
    pthread_mutex_t log_lock;
    struct log_line *logs;     /* ring of LOG_RING_LINES */
    uint64_t log_seq;
    char reap_note[640];       /* the REAP policy's note on the latest first invocation (f->lock) */
};

struct serve;

/* ---- registry (the daemon's table of functions) --------------------------------- */

/* Finds a function and takes a reference (NULL: unknown). */
struct function *registry_get(struct serve *s, const char *name);
void function_put(struct function *f);
/* Adds a function with its first version (takes the version's reference). */
struct function *registry_add(struct serve *s, const char *name, const struct fn_config *cfg, struct fn_version *v,
                              struct thaw_error *err);
/* Removes a function: idle instances go at once, busy ones when they finish. */
void registry_remove(struct serve *s, struct function *f);
/* Calls fn for every function (with a reference held). */
void registry_foreach(struct serve *s, void (*fn)(struct function *f, void *ctx), void *ctx);
size_t registry_count(struct serve *s);

struct fn_version *version_new(const char *dir, unsigned gen);
void version_get(struct fn_version *v);
void version_put(struct fn_version *v);

/* ---- the pool ----------------------------------------------------------------- */

/* Why acquiring an instance failed, as the HTTP status to answer. */
struct acquire_failure {
    int status;                /* 429 queue full, 503 queue timeout/draining, 502 start failed, 404 deleted */
};

/* Takes an idle instance or creates one, waiting in the queue if needed. queue_ns is
 * the time spent waiting. */
int pool_acquire(struct function *f, struct instance **out, uint64_t *queue_ns, int *status, struct thaw_error *err);
/* Gives the instance back: idle again if it is healthy and current, else destroyed. */
void pool_release(struct function *f, struct instance *in, bool healthy);
/* An instance whose answer has gone out but which is still busy (its stats are being
 * taken, after a first invocation a recording's working set written): a request that
 * finds no idle instance meanwhile waits for it (briefly, one request per such
 * instance) instead of cold-starting another. pool_release_finished then releases it as
 * healthy. */
void pool_finishing(struct function *f);
void pool_release_finished(struct function *f, struct instance *in);
/* Installs a new current version (after a deploy) and retires the old one. */
void pool_set_version(struct function *f, struct fn_version *v, const struct fn_config *cfg);
/* Applies a changed configuration (PATCH). */
void pool_set_config(struct function *f, const struct fn_config *cfg);
/* One pass of the reaper: keep-alive expiry and min_instances, for every function. */
void pool_reap_all(struct serve *s);
/* Destroys every idle instance of every function (shutdown). */
void pool_drain_idle(struct serve *s);
/* Gauges for /metrics and GET /functions/{name}. */
void pool_gauges(struct function *f, struct fn_gauges *g);
/* What the function's keep-alive policy decides now. */
void pool_keepalive_windows(struct function *f, struct keepalive_windows *w);

/* Appends one guest output line to the function's log ring. */
void function_log(struct function *f, const char *instance, uint64_t invocation, int stream, const char *line,
                  size_t len);

#endif
