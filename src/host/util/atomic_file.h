/* Crash-safe file replacement: readers see either the old file or the complete new
 * one, never a partial write. Used for snapshot state files and trace/working-set
 * files. */
#ifndef THAW_HOST_ATOMIC_FILE_H
#define THAW_HOST_ATOMIC_FILE_H

#include <stddef.h>

#include "host/util/error.h"

/* Writes buf[0..len) to dir/name atomically: creates dir/.name.tmp.<writer tag>.<random>
 * (O_EXCL|O_NOFOLLOW, mode 0600 minus umask), writes everything, fsyncs it, renames it over dir/name and fsyncs dir. name must be
 * a single path component (no '/', not "." or ".."). On failure the temporary file is
 * removed, dir/name is untouched, -1 is returned and err says why. */
int write_file_atomic(const char *dir, const char *name, const void *buf, size_t len, struct thaw_error *err);

#endif
