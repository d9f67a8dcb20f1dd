/* The one JSON encoding of an instance's stats (jansson), used by every `--json` of
 * the CLI and by `thaw serve`. docs/json.md describes each field. Times are in
 * microseconds (fields ending in _us), sizes in bytes unless the name says otherwise. */
#ifndef THAW_HOST_SANDBOX_JSON_H
#define THAW_HOST_SANDBOX_JSON_H

#include <jansson.h>

#include "host/sandbox/sandbox.h"

/* Flags for json_dumpf/json_dumps of these objects: one line, times to 15 digits. */
#define SANDBOX_JSON_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))

/* A new object (the caller owns the reference), or NULL when out of memory. */
json_t *sandbox_stats_to_json(const struct sandbox_stats *st);

#endif
