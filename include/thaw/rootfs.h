/* thaw root-filesystem image: the read-only file tree a function sees, built on the host
 * from Debian's installed files (tools/rootfs/build_rootfs.py) and mapped, not copied,
 * into guest-physical memory above the guest's RAM (THAW boot info rootfs_base/size).
 * The host maps the image file MAP_PRIVATE, so the guest's first read of a page is a
 * host page fault on the file: only the pages a function touches ever become part of
 * its memory. Guest writes (a shared library's relocated data, in place) copy-on-write
 * into the VM's private memory and never reach the file.
 *
 * Layout (little-endian, every offset from the start of the image):
 *   struct thaw_rootfs_header  at 0
 *   struct thaw_rootfs_node    node_count entries at nodes_off
 *   struct thaw_rootfs_seg     seg_count entries at segs_off
 *   paths                      names_size bytes at names_off: relative paths, no NUL
 *   file data                  each file's bytes at a page-aligned data_off
 *   load layouts               for ELF shared objects: the object as the dynamic loader
 *                              maps it (segments at their addresses relative to the
 *                              first one, gaps as the file has them, bss zero), page-
 *                              aligned at load_off, so a library maps in place.
 * The guest treats the image as untrusted input and checks every offset it uses. */
#ifndef THAW_ROOTFS_H
#define THAW_ROOTFS_H

#include <stdint.h>

#define THAW_ROOTFS_MAGIC "THAWROOT"
#define THAW_ROOTFS_VERSION 1u

enum thaw_rootfs_kind { THAW_ROOTFS_DIR = 1, THAW_ROOTFS_FILE = 2, THAW_ROOTFS_SYMLINK = 3 };

struct thaw_rootfs_header {
    char magic[8];
    uint32_t version;
    uint32_t node_count;
    uint64_t nodes_off;
    uint64_t segs_off;
    uint32_t seg_count;
    uint32_t pad;
    uint64_t names_off;
    uint64_t names_size;
    uint64_t image_size;   /* bytes, a multiple of 4 KiB */
};

struct thaw_rootfs_node {
    uint64_t path_off;     /* into the paths area: "usr/lib/x.so" */
    uint32_t path_len;
    uint16_t kind;         /* enum thaw_rootfs_kind */
    uint16_t pad;
    uint32_t mode;         /* st_mode bits */
    uint32_t mtime;        /* seconds (Python checks .pyc files against it) */
    uint64_t size;         /* file bytes, or symlink target length */
    uint64_t data_off;     /* file bytes or symlink target; page-aligned for files */
    uint64_t load_off;     /* load layout, 0 if none */
    uint64_t load_size;
    uint32_t first_seg;    /* the load layout's segments */
    uint32_t seg_count;
};

/* One PT_LOAD segment in a load layout: the file's page-aligned bytes from file_off,
 * len bytes, mapped at `at` within the layout, followed by zero_len bytes of zero
 * pages (the bss the loader maps anonymously). */
struct thaw_rootfs_seg {
    uint64_t at;
    uint64_t file_off;
    uint64_t len;
    uint64_t zero_len;
};

#endif
