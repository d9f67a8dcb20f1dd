/* Open files of the guest kernel. */
#ifndef THAW_GUEST_FS_H
#define THAW_GUEST_FS_H
#include <stdbool.h>
#include <stdint.h>

enum file_type { FT_NONE, FT_REGULAR, FT_DIR, FT_CONSOLE, FT_NULL, FT_URANDOM, FT_INVOKE, FT_PIPE, FT_EPOLL };

struct file {
    enum file_type type;
    uint32_t node;
    uint64_t offset;   /* bytes for files, entries for directories */
    uint32_t flags;    /* open flags */
    bool cloexec;
    unsigned stream;   /* console stream for FT_CONSOLE */
};

struct file *fs_file(int fd);

/* invoke.c: the /dev/invoke channel. */
int64_t invoke_read(void *buf, uint64_t len);
int64_t invoke_write(const void *buf, uint64_t len);
/* Bytes of the current request not yet read (FIONREAD on /dev/invoke). */
uint64_t invoke_pending(void);
/* True once the host said there are no more requests: FIONREAD on /dev/invoke then
 * fails with EPIPE, so an empty read can be told from an empty request. */
bool invoke_ended(void);
#endif
