/* Opening and reading files that come from outside (snapshots, bundles, payloads) and
 * where the build lives. */
#ifndef THAW_HOST_FILE_H
#define THAW_HOST_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "host/util/error.h"

/* Opens path (relative to dirfd, or AT_FDCWD) with openat2: flags | O_CLOEXEC |
 * O_NONBLOCK (so a FIFO or device never blocks the open), resolve as in RESOLVE_*
 * (e.g. RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS inside a bundle). Refuses anything but
 * a regular file, then clears O_NONBLOCK. Returns the fd, or -1 with err. */
int file_open_regular(int dirfd, const char *path, int flags, uint64_t resolve, struct thaw_error *err);

/* Reads a whole regular file into a malloc'd, NUL-terminated buffer (limit: max
 * bytes, checked before anything is read). */
int read_file(const char *path, size_t max, uint8_t **data, size_t *size, struct thaw_error *err);
/* The same for a file opened with file_open_regular(dirfd, path, O_RDONLY, resolve). */
int read_file_at(int dirfd, const char *path, uint64_t resolve, size_t max, uint8_t **data, size_t *size,
                 struct thaw_error *err);

/* pread until len bytes at off are in buf, however short the reads (EINTR retried).
 * Returns 0, or -1 on an error (errno set) or at the end of the file (errno 0). */
int pread_full(int fd, void *buf, size_t len, uint64_t off);

/* The directory holding the thaw binary (where "build:" paths and kernel.elf live),
 * unless THAW_BUILD_DIR says otherwise. Returns a malloc'd string. */
char *thaw_build_dir(void);
/* The path of `name` in the directory of this executable (/proc/self/exe) into out:
 * 0, or -1 (errno set) if the executable cannot be read or the path does not fit. */
int exe_sibling(char *out, size_t cap, const char *name);

/* Copies a regular file, keeping its holes (SEEK_DATA/SEEK_HOLE) and fsyncing the copy
 * so that it can be dropped from the page cache afterwards. Mode 0600; fails if dst exists. */
int copy_file_sparse(const char *src, const char *dst, struct thaw_error *err);

#endif
