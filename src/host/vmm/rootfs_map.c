#include "host/vmm/rootfs_map.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "thaw/abi.h"
#include "thaw/rootfs.h"

void rootfs_map_init(struct rootfs_map *m)
{
    memset(m, 0, sizeof *m);
    m->fd = -1;
}

int rootfs_map_open(struct rootfs_map *m, const char *path, uint64_t gpa, struct thaw_error *err)
{
    rootfs_map_init(m);
    if (strlen(path) >= sizeof m->path)
        return thaw_fail(err, "rootfs image path too long");
    snprintf(m->path, sizeof m->path, "%s", path);
    m->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (m->fd < 0)
        return thaw_fail_errno(err, "cannot open rootfs image %s", path);
    struct stat st;
    struct thaw_rootfs_header h;
    if (fstat(m->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        thaw_fail(err, "rootfs image %s is not a regular file", path);
        goto fail;
    }
    if (pread(m->fd, &h, sizeof h, 0) != (ssize_t)sizeof h || memcmp(h.magic, THAW_ROOTFS_MAGIC, 8) != 0 ||
        h.version != THAW_ROOTFS_VERSION) {
        thaw_fail(err, "%s is not a thaw rootfs image (version %u)", path, THAW_ROOTFS_VERSION);
        goto fail;
    }
    if (h.image_size != (uint64_t)st.st_size || h.image_size % THAW_PAGE_SIZE || h.image_size == 0) {
        thaw_fail(err, "rootfs image %s is %lld bytes, its header says %llu", path, (long long)st.st_size,
                  (unsigned long long)h.image_size);
        goto fail;
    }
    if (gpa % THAW_HUGE_PAGE_SIZE || gpa + h.image_size > (uint64_t)THAW_MAX_PD_PAGES << 30) {
        thaw_fail(err, "rootfs image of %llu MiB does not fit above %llu MiB of RAM (at most %u GiB in all)",
                  (unsigned long long)(h.image_size >> 20), (unsigned long long)(gpa >> 20), THAW_MAX_PD_PAGES);
        goto fail;
    }
    m->size = h.image_size;
    m->gpa = gpa;
    m->dev = st.st_dev;
    m->ino = st.st_ino;
    m->mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec;
    /* Private: guest writes (relocations in place) never reach the file. */
    m->host = mmap(NULL, m->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, m->fd, 0);
    if (m->host == MAP_FAILED) {
        m->host = NULL;
        thaw_fail_errno(err, "cannot map rootfs image %s", path);
        goto fail;
    }
    return 0;
fail:
    rootfs_map_close(m);
    return -1;
}

int rootfs_map_reopen(struct rootfs_map *m, const struct rootfs_map *want, struct thaw_error *err)
{
    if (rootfs_map_open(m, want->path, want->gpa, err) < 0)
        return -1;
    if (m->dev != want->dev || m->ino != want->ino || m->size != want->size || m->mtime_ns != want->mtime_ns) {
        thaw_fail(err, "rootfs image %s changed since the snapshot was taken (rebuild the snapshot)", want->path);
        rootfs_map_close(m);
        return -1;
    }
    return 0;
}

void rootfs_map_close(struct rootfs_map *m)
{
    if (m->host)
        munmap(m->host, m->size);
    if (m->fd >= 0)
        close(m->fd);
    free(m->lazy);
    m->host = NULL;
    m->fd = -1;
    m->lazy = NULL;
    m->n_lazy = 0;
}
