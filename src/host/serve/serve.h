/* `thaw serve`: the daemon. An HTTP/1.1 API (libmicrohttpd, one thread per
 * connection) to deploy functions and invoke them by name; instances come from the
 * lifecycle layer (sandbox.h) and are pooled per function (pool.h); all state lives
 * in one directory (store.h). API reference: docs/serve.md. */
#ifndef THAW_SERVE_H
#define THAW_SERVE_H

#include <stdbool.h>
#include <stdint.h>

#include "host/util/error.h"

struct serve_options {
    const char *listen;          /* "HOST:PORT"; port 0 picks a free one */
    const char *state_dir;
    const char *token_file;      /* bearer token for management; NULL: open */
    bool token_for_invoke;       /* invoke needs the token too */
    const char *ready_file;      /* written with the URL once listening */
    uint64_t max_body_bytes;     /* invoke request bodies */
    uint64_t max_upload_bytes;   /* deploy uploads (the tar) */
    uint64_t max_unpacked_bytes; /* what an upload may unpack to */
    bool worker;                 /* instances in jailed worker processes */
    uint64_t drain_timeout_ms;   /* SIGTERM: wait this long for in-flight requests */
    unsigned spare_workers;      /* workers (in-process: VMs) started ahead of cold starts */
    const char *pager_socket;    /* reap memory served by this `thaw pager --serve`, or NULL */
};

void serve_options_default(struct serve_options *o);

/* Runs the daemon until SIGINT or SIGTERM; returns 0 after a clean drain. */
int serve_run(const struct serve_options *o, struct thaw_error *err);

#endif
