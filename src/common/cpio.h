/* Reader for cpio "newc" archives (magic 070701, also 070702 whose checksum is
 * ignored). Shared by the host and the freestanding guest kernel, so it depends on
 * nothing but fixed-width integer headers: no libc, no allocation. The archive is
 * treated as hostile: every field is validated and nothing outside
 * [archive, archive + size) is ever read. */
#ifndef THAW_COMMON_CPIO_H
#define THAW_COMMON_CPIO_H

#include <stddef.h>
#include <stdint.h>

#define CPIO_S_IFMT 0170000u
#define CPIO_S_IFDIR 0040000u
#define CPIO_S_IFREG 0100000u
#define CPIO_S_IFLNK 0120000u

#define CPIO_NEWC_HDR_SIZE 110u
#define CPIO_TRAILER_NAME "TRAILER!!!"

struct cpio_entry {
    const char *name;    /* not NUL-terminated: use name_len; leading "./" and "/" stripped */
    size_t name_len;     /* excluding the trailing NUL */
    uint32_t mode;       /* st_mode bits (CPIO_S_IFDIR, CPIO_S_IFREG, CPIO_S_IFLNK) */
    uint32_t mtime;
    uint64_t size;       /* file size */
    const uint8_t *data; /* points into the archive; size bytes */
};

/* Reads the entry at *offset and advances *offset past it (including padding).
 * Returns 1 for an entry, 0 at the end (a TRAILER!!! followed only by zero bytes, or
 * *offset == size), -1 for a malformed archive (bad magic, non-hex field, name or
 * data running past the end, name without its NUL or with an embedded NUL, offset
 * arithmetic overflow). Trailer entries are never returned: after one, zero padding
 * is skipped and a following archive (starting 4-byte aligned) is read on, like the
 * Linux initramfs does. On -1, *offset is left unchanged; on 0 it is set to size. */
int cpio_next(const uint8_t *archive, size_t size, size_t *offset, struct cpio_entry *out);

#endif
