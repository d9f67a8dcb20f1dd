/* Builds a cpio "newc" archive (the guest's read-only file tree) in a growing heap
 * buffer. Names are stored without the leading "/", like `find . | cpio -o -H newc`
 * minus the "./". Entries get uid/gid 0 and mtime 0 so archives are reproducible. */
#ifndef THAW_HOST_VMM_CPIO_WRITER_H
#define THAW_HOST_VMM_CPIO_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CPIO_WRITER_PATH_MAX 4095u

/* One path already in the archive, so parents are emitted once and clashes caught. */
struct cpio_writer_path {
    char *path; /* guest path without the leading "/" */
    bool is_dir;
};

struct cpio_writer {
    uint8_t *buf;
    size_t len, cap;
    uint32_t next_ino;
    /* Emitted paths, plus an open-addressing hash index into them (slots hold
     * index + 1; 0 = empty) so adding many files stays linear. */
    struct cpio_writer_path *paths;
    size_t npaths, paths_cap;
    size_t *slots;
    size_t nslots; /* power of two, or 0 */
    bool finished;
};

void cpio_writer_init(struct cpio_writer *w);

/* Adds a regular file at an absolute guest path (e.g. "/app/data.json"), emitting
 * missing parent directories first (each once). mode: permission bits; file type bits
 * must be absent or S_IFREG. Returns 0, or -1 with errno: EINVAL for a path that is
 * empty, relative, contains "..", "." or empty components (e.g. "//" or a trailing
 * "/"), is longer than 4095 bytes, or is "/TRAILER!!!" (reserved by the format), and
 * for a writer already finished; EEXIST if the path was already added; ENOTDIR if a
 * parent is a file; EFBIG if size does not fit newc's 32-bit field; ENOMEM. */
int cpio_writer_add_file(struct cpio_writer *w, const char *guest_path, const void *data,
                         size_t size, uint32_t mode);

/* Adds a directory (mode 0755) and its missing parents. Adding an existing directory
 * (or "/") is a no-op returning 0. Errors as for cpio_writer_add_file. */
int cpio_writer_add_dir(struct cpio_writer *w, const char *guest_path);

/* Reads a host regular file and adds it with its permission bits. Besides the errors
 * above, fails with the errno of open/fstat/read, or EINVAL if it is not a regular file. */
int cpio_writer_add_host_file(struct cpio_writer *w, const char *guest_path,
                              const char *host_path);

/* Appends the TRAILER!!! entry and zero-pads the archive to a multiple of 512 bytes.
 * Afterwards buf/len hold the archive and further adds fail with EINVAL. */
int cpio_writer_finish(struct cpio_writer *w);

/* Frees everything; the writer can be initialised again. */
void cpio_writer_free(struct cpio_writer *w);

#endif
