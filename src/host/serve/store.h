/* The daemon's state directory. Everything the daemon keeps is under it:
 *
 *   <state>/functions/<name>/current        "v<N>": the committed version (atomic)
 *   <state>/functions/<name>/v<N>/source/   the uploaded function directory
 *   <state>/functions/<name>/v<N>/bundle/   what `thaw build` made of it
 *   <state>/functions/<name>/v<N>/snapshot/ state, memory, ws.trace, ws.pages
 *   <state>/functions/<name>/v<N>/config.json
 *   <state>/functions/<name>/.deploy-*      a deploy in progress
 *   <state>/trash/                          deleted functions being removed
 *
 * A deploy builds a whole version under .deploy-*, renames it to v<N> and only then
 * points `current` at it (write to a temporary name, fsync, rename, fsync). A
 * kill -9 at any moment leaves either the old `current` or the new one; at start,
 * everything that `current` does not name is removed, so a half-written deploy is
 * never used and never blocks the next. A function directory copied to another
 * host's state directory is served there after a restart. */
#ifndef THAW_SERVE_STORE_H
#define THAW_SERVE_STORE_H

#include <stddef.h>

#include "host/serve/fn_config.h"
#include "host/serve/pool.h"

struct serve;

/* Creates the layout, removes leftovers, loads every committed function. */
int store_open(struct serve *s, struct thaw_error *err);

/* A fresh staging directory for a deploy of name (created). */
int store_stage(struct serve *s, const char *name, char *out, size_t cap, struct thaw_error *err);
/* Commits a staged version: renames it to v<N> and points current at it. */
struct fn_version *store_commit(struct serve *s, const char *name, const char *stage, struct thaw_error *err);
/* Writes a version's config.json atomically. */
int store_write_config(const char *version_dir, const struct fn_config *cfg, struct thaw_error *err);
/* Moves a function's directory to the trash and removes it. */
int store_delete(struct serve *s, const char *name, struct thaw_error *err);

void store_bundle_dir(const struct fn_version *v, char *out, size_t cap);
void store_snapshot_dir(const struct fn_version *v, char *out, size_t cap);
void store_source_dir(const struct fn_version *v, char *out, size_t cap);

#endif
