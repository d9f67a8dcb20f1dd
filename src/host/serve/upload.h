/* Function uploads: a tar (optionally gzip'd) of a function directory, as sent by
 * `PUT /functions/{name}`, unpacked into a fresh directory. Hostile input: absolute
 * paths, "..", links that leave the tree, hard links, devices, FIFOs, sockets, and
 * more data or entries than the limits are refused with a clear message, and nothing
 * is ever written outside dest. */
#ifndef THAW_SERVE_UPLOAD_H
#define THAW_SERVE_UPLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "host/util/error.h"

struct upload_limits {
    uint64_t max_bytes;     /* total unpacked file data */
    uint64_t max_entries;   /* members of the archive */
    uint64_t max_file_bytes;
};

/* Unpacks the archive in buf into dest (an existing, empty directory). On failure
 * returns -1; dest may hold part of the archive (the caller removes it). */
int upload_unpack_tar(const void *buf, size_t len, const char *dest, const struct upload_limits *lim,
                      struct thaw_error *err);

/* Checks that a relative member path is safe: not absolute, no ".." component, no
 * empty component except a trailing '/', printable ASCII. */
int upload_path_safe(const char *path);

#endif
