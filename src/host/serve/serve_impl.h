/* Inside the daemon: the state every part shares. Only the files of serve/ include this. */
#ifndef THAW_SERVE_IMPL_H
#define THAW_SERVE_IMPL_H

#include <pthread.h>
#include <jansson.h>
#include <stdatomic.h>

#include "host/serve/pool.h"
#include "host/serve/serve.h"

#define TOKEN_MAX 256

struct serve {
    struct serve_options opt;
    char state_dir[1024];          /* absolute */
    char functions_dir[1100];      /* <state>/functions */
    char token[TOKEN_MAX + 1];     /* empty: no token */
    pthread_mutex_t reg_lock;
    struct function **fns;
    size_t n_fns, cap_fns;
    pthread_mutex_t deploy_lock;   /* one deploy at a time */
    atomic_bool draining;
    atomic_uint in_flight;         /* invocations being served */
    atomic_uint deploys_running;
    uint64_t started_ns;
    pthread_t reaper;
    atomic_bool stop;
};

/* api.c */
struct MHD_Daemon;
struct MHD_Daemon *api_start(struct serve *s, uint16_t *port, struct thaw_error *err);

/* deploy.c: the deploy pipeline (unpack, build, boot, snapshot, commit). Returns the
 * HTTP status and fills a JSON body. */
int deploy_function(struct serve *s, const char *name, const void *tar, size_t len, json_t *params, char **body);
/* A new version from the current one's source and bundle with a changed configuration
 * (PATCH of memory_mib, which the snapshot fixes): booted and snapshotted again; the
 * old version serves until the new one is committed, and keeps serving on failure
 * (422). Status and answer as deploy_function (404: no such function). */
int redeploy_function(struct serve *s, const char *name, json_t *patch, char **body);

#endif
