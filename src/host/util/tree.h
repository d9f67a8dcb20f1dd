/* Directory trees: create, copy a file into, remove. Used by the function build and
 * the daemon's state directory. */
#ifndef THAW_HOST_TREE_H
#define THAW_HOST_TREE_H

#include <stddef.h>
#include <stdint.h>

#include "host/util/error.h"

/* mkdir -p with mode 0755 (existing directories are fine). */
int tree_mkdir_p(const char *path, struct thaw_error *err);

/* rm -rf that never follows symlinks and stays on path's own tree. Missing is fine. */
int tree_remove(const char *path, struct thaw_error *err);

/* Copies a regular file to a new file `to` (which must not exist), keeping the
 * executable bit; fsyncs it when sync is set. */
int tree_copy_file(const char *from, const char *to, int sync, struct thaw_error *err);
/* The same for dir/rel, which must resolve beneath dir through no symbolic link, and
 * whose size is charged to *budget (refused when it would go below 0) before copying. */
int tree_copy_file_beneath(const char *dir, const char *rel, const char *to, uint64_t *budget,
                           struct thaw_error *err);

/* Copies the tree at from to a new directory to (which must not exist): directories,
 * regular files (fsynced) and symlinks as symlinks; never follows a link, refuses
 * anything else. */
int tree_copy(const char *from, const char *to, struct thaw_error *err);

/* Total bytes allocated on disk (st_blocks * 512) under path, and apparent size. */
int tree_usage(const char *path, uint64_t *allocated, uint64_t *apparent);

/* snprintf into a path buffer; -1 when the result does not fit (then buf is cut). */
int tree_path(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* fsyncs a directory (after a rename into it). */
int tree_sync_dir(const char *path, struct thaw_error *err);

#endif
