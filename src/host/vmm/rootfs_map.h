/* The root-filesystem image of an instance (include/thaw/rootfs.h): the image file
 * mapped MAP_PRIVATE into this process and given to the VM as a second memory slot
 * just above RAM. Pages are read from the file when the guest first touches them;
 * guest writes stay private to the VM. The file is checked before it is mapped and
 * identified (device, inode, size, mtime) so a snapshot can insist on the same file. */
#ifndef THAW_HOST_VMM_ROOTFS_MAP_H
#define THAW_HOST_VMM_ROOTFS_MAP_H

#include <stdint.h>

#include "host/util/error.h"

struct rootfs_map {
    char path[4096];
    int fd;              /* -1 when there is no image */
    uint8_t *host;       /* the mapping, size bytes */
    uint64_t size;
    uint64_t gpa;        /* where the guest sees it */
    uint64_t dev, ino, mtime_ns; /* the file's identity */
    /* Runs of image pages a restore mapped from the snapshot's rootfs.cow instead of the
     * image (rootfs_snapshot.h): written pages not yet copied in. */
    struct rootfs_run {
        uint64_t first, pages;
    } *lazy;
    uint64_t n_lazy;
};

/* An empty map (no image). */
void rootfs_map_init(struct rootfs_map *m);
/* Checks and maps the image at path for guest address gpa. */
int rootfs_map_open(struct rootfs_map *m, const char *path, uint64_t gpa, struct thaw_error *err);
/* As open, but the file must still be the one a snapshot recorded (same identity). */
int rootfs_map_reopen(struct rootfs_map *m, const struct rootfs_map *want, struct thaw_error *err);
void rootfs_map_close(struct rootfs_map *m);

#endif
