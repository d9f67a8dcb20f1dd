/* The count of written image pages a snapshot's rootfs.cow holds (its header's page
 * count, offset 24: docs/snapshot-format.md), for tests that compare two snapshots. */
#ifndef THAW_TESTS_ROOTFS_COW_PAGES_H
#define THAW_TESTS_ROOTFS_COW_PAGES_H

#include <stdint.h>
#include <stdio.h>

/* -1 (as uint64_t) if the file is missing or shorter than its header's start. */
static inline uint64_t rootfs_cow_pages(const char *snap)
{
    char p[512];
    snprintf(p, sizeof p, "%s/rootfs.cow", snap);
    FILE *f = fopen(p, "rb");
    uint8_t h[32];
    size_t got = f ? fread(h, 1, sizeof h, f) : 0;
    if (f)
        fclose(f);
    if (got != sizeof h)
        return UINT64_MAX;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | h[24 + i];
    return n;
}

#endif
