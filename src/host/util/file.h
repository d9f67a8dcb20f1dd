/* Whole-file reads and where the build lives. */
#ifndef THAW_HOST_FILE_H
#define THAW_HOST_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "host/util/error.h"

/* Reads a whole regular file into a malloc'd, NUL-terminated buffer (limit: max bytes). */
int read_file(const char *path, size_t max, uint8_t **data, size_t *size, struct thaw_error *err);

/* The directory holding the thaw binary (where "build:" paths and kernel.elf live),
 * unless THAW_BUILD_DIR says otherwise. Returns a malloc'd string. */
char *thaw_build_dir(void);

#endif
