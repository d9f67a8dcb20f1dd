/* Packed page files of a root-filesystem snapshot: rootfs.cow (the image pages the
 * guest wrote) and rootfs.ws (REAP's file working set) store image pages this way,
 * lz4-compressed, each page with a checksum, for one sequential read
 * (docs/snapshot-format.md, "rootfs.cow and rootfs.ws").
 *
 *   0    8   magic ("THAWCOW2" or "THAWRWS3")
 *   8    2+2 major, minor (0)
 *   12   4   page size (4096)
 *   16   8   image size in pages (must equal the image's)
 *   24   8   count of pages
 *   32   8   count of blocks
 *   40   8   data offset (4096-aligned, right after the index)
 *   48   8   data length (the blocks' stored bytes)
 *   56   48  the snapshot's identity
 *   104  4   flags: 0, or ROOTFS_PACK_INDEX_ONLY (rootfs.ws only)
 *   108  4   CRC-32 of these 112 bytes (this field zero) and the index
 *   112      index: count x (u64 image page number, strictly ascending; u64 XXH3-64 of the
 *            page seeded with its byte offset in the image), then blocks x (u32 stored
 *            bytes, u32 pages | 1 << 31 if stored raw)
 *   data     the blocks back to back; the file is padded with zeros to 4 KiB
 * A block holds 1..16 pages that are contiguous in the image (so it decompresses
 * straight into the mapping) and the next ones of the index. An index-only file (a
 * rootfs.ws for read-ahead from the image, its default) has no blocks and no data, and
 * zero checksums: it names pages, it holds none. Decoding treats the file as hostile;
 * no state: thread-safe. */
#ifndef THAW_HOST_ROOTFS_PACK_H
#define THAW_HOST_ROOTFS_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host/util/error.h"
#include "host/util/snap_identity.h"

#define ROOTFS_PACK_PAGE 4096u
#define ROOTFS_PACK_HEADER 112u
#define ROOTFS_PACK_CRC_AT 108u /* the header and index CRC field */
#define ROOTFS_PACK_BLOCK_PAGES 16u
#define ROOTFS_PACK_RAW (1u << 31)
#define ROOTFS_PACK_MAX_PAGES (1ull << 20) /* 4 GiB of image */
#define ROOTFS_PACK_INDEX_ONLY 1u          /* flags: the pages' numbers, not their contents */

/* Which file: its magic and major; the name is for messages. */
struct rootfs_pack_kind {
    const char *magic;  /* 8 bytes */
    uint16_t major;
    const char *name;
    bool index_only_ok; /* may be index-only (rootfs.ws; never rootfs.cow, whose pages are the data) */
    bool raw_only;      /* encode: every block stored raw, so at a 4 KiB-aligned offset of the
                           file and mappable from it (decode takes either) */
};
/* ROOTFS_PACK_COW_RAW writes a rootfs.cow whose pages a restore maps from the file, read
 * when the guest first touches them; ROOTFS_PACK_COW compresses (decoded at restore). */
extern const struct rootfs_pack_kind ROOTFS_PACK_COW, ROOTFS_PACK_COW_RAW, ROOTFS_PACK_WS;

/* A decoded header and index, pointing into the file's bytes. */
struct rootfs_pack {
    uint64_t image_pages, count, blocks, data_off, data_len, file_len;
    const uint8_t *index;  /* count x 16 */
    const uint8_t *table;  /* blocks x 8 */
    struct snap_identity id;
    bool index_only;       /* no blocks: the pages are read from the image */
    uint32_t crc;          /* the header's CRC field: rootfs.gens binds to it */
};

/* Encodes n pages (image page numbers pages[], strictly ascending, below image_pages;
 * the contents of page i at contents + i * 4096, or contents NULL for an index-only
 * file of a kind that allows one) into a malloc'd *out of *len bytes (a multiple of
 * 4096). */
int rootfs_pack_encode(const struct rootfs_pack_kind *k, uint64_t image_pages, const struct snap_identity *id,
                       const uint64_t *pages, uint64_t n, const uint8_t *contents, uint8_t **out, size_t *len,
                       struct thaw_error *err);

/* Decodes and checks the header and index in buf[0..len) (at least up to the data
 * offset) of a file of file_len bytes: magic, major ("from an older thaw"), page
 * size, the image's size, identity (id: must equal; NULL: not checked), sizes against
 * file_len, the CRC, pages inside the image and ascending, blocks of 1..16 contiguous
 * pages covering the index, stored sizes. The blocks' bytes are checked by
 * rootfs_pack_unpack. */
int rootfs_pack_decode(const struct rootfs_pack_kind *k, const uint8_t *buf, size_t len, uint64_t file_len,
                       uint64_t image_pages, const struct snap_identity *id, struct rootfs_pack *p,
                       struct thaw_error *err);
uint64_t rootfs_pack_page(const struct rootfs_pack *p, uint64_t i);
/* Block b: its first entry in the index, pages, stored bytes, offset in the file, raw. */
struct rootfs_pack_block {
    uint64_t first, pages, stored, off;
    bool raw;
};
/* Walks the blocks in order: *it starts at {0}; fills b and returns true, false at the end. */
struct rootfs_pack_iter {
    uint64_t block, entry, off;
};
bool rootfs_pack_next(const struct rootfs_pack *p, struct rootfs_pack_iter *it, struct rootfs_pack_block *b);

/* Decodes block b from its stored bytes (src[0..b->stored), read from the file at
 * b->off) into dst (b->pages pages) and checks each page against its checksum. */
int rootfs_pack_unpack(const struct rootfs_pack *p, const uint8_t *src, const struct rootfs_pack_block *b,
                       uint8_t *dst, struct thaw_error *err);

#endif
