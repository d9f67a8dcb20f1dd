/* The root-filesystem image in guest-physical memory (rootfs.c). */
#ifndef THAW_GUEST_ROOTFS_H
#define THAW_GUEST_ROOTFS_H
#include "kernel.h"

/* Checks the image at [base, base+size); false when there is none (size 0). */
bool rootfs_init(uint64_t base, uint64_t size);
uint32_t rootfs_node_count(void);
/* Adds every entry to the file tree through fs_add_image_entry (fs.c). */
void rootfs_populate(void);
/* [addr, addr+len) lies inside the image. */
bool rootfs_contains(uint64_t addr, uint64_t len);
uint64_t rootfs_end(void); /* one past the image's last byte (0: no image) */
uint64_t rootfs_size(void);

/* A non-fixed mapping of image file image_node (1-based) served in place: the address,
 * or 0 when it must be copied instead. */
int64_t rootfs_map(uint32_t image_node, uint64_t len, uint64_t prot, bool shared, uint64_t off);
/* A MAP_FIXED mapping at an address inside the image: file bytes (data/size from off,
 * image_node 0 for files not in the image) or zeros (data NULL). Returns addr or -errno. */
int64_t rootfs_map_fixed(uint64_t addr, uint64_t len, uint32_t image_node, const uint8_t *data, uint64_t size,
                         uint64_t off);

/* fs.c: one image entry joins the tree (kind S_IFDIR/S_IFREG/S_IFLNK). */
void fs_add_image_entry(const char *path, uint32_t len, uint32_t kind, uint32_t mode, uint32_t mtime,
                        const uint8_t *data, uint64_t size, uint32_t image_node);

#endif
