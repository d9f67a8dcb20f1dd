#include "host/snapshot/rootfs_pack.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "host/pager/reap.h"
#include "host/util/le.h"
#include "host/util/lz4_block.h"

#define PAGE ROOTFS_PACK_PAGE
#define H_MAGIC 0
#define H_MAJOR 8
#define H_MINOR 10
#define H_PAGE_SIZE 12
#define H_IMAGE_PAGES 16
#define H_COUNT 24
#define H_BLOCKS 32
#define H_DATA_OFF 40
#define H_DATA_LEN 48
#define H_IDENTITY 56
#define H_FLAGS 104
#define H_CRC ROOTFS_PACK_CRC_AT

const struct rootfs_pack_kind ROOTFS_PACK_COW = {"THAWCOW2", 2, "rootfs.cow", false, false};
const struct rootfs_pack_kind ROOTFS_PACK_COW_RAW = {"THAWCOW2", 2, "rootfs.cow", false, true};
const struct rootfs_pack_kind ROOTFS_PACK_WS = {"THAWRWS3", 3, "rootfs.ws", true, false};

static uint64_t align_page(uint64_t x) { return (x + PAGE - 1) / PAGE * PAGE; }

static uint32_t pack_crc(const uint8_t *head, const uint8_t *index, uint64_t index_len)
{
    uint8_t h[ROOTFS_PACK_HEADER];
    memcpy(h, head, sizeof h);
    put_le32(h + H_CRC, 0);
    uint32_t crc = (uint32_t)crc32_z(0, h, sizeof h);
    return (uint32_t)crc32_z(crc, index, (size_t)index_len);
}

/* The end of the block that starts at entry i: the run of contiguous pages from it, at
 * most ROOTFS_PACK_BLOCK_PAGES. */
static uint64_t block_end(const uint64_t *pages, uint64_t n, uint64_t i)
{
    uint64_t j = i + 1;
    while (j < n && j - i < ROOTFS_PACK_BLOCK_PAGES && pages[j] == pages[j - 1] + 1)
        j++;
    return j;
}

int rootfs_pack_encode(const struct rootfs_pack_kind *k, uint64_t image_pages, const struct snap_identity *id,
                       const uint64_t *pages, uint64_t n, const uint8_t *contents, uint8_t **out, size_t *len,
                       struct thaw_error *err)
{
    if (n > image_pages || image_pages > ROOTFS_PACK_MAX_PAGES)
        return thaw_fail(err, "%llu pages of an image of %llu", (unsigned long long)n,
                         (unsigned long long)image_pages);
    if (!contents && !k->index_only_ok)
        return thaw_fail(err, "%s needs the pages' contents", k->name);
    /* Blocks: runs of contiguous pages, cut every 16 (none for an index only). */
    uint64_t blocks = 0;
    for (uint64_t i = 0; contents && i < n; blocks++)
        i = block_end(pages, n, i);
    uint64_t index_len = n * 16 + blocks * 8, data_off = align_page(ROOTFS_PACK_HEADER + index_len);
    size_t cap = (size_t)(data_off + blocks * lz4_block_bound(ROOTFS_PACK_BLOCK_PAGES * PAGE) + PAGE);
    uint8_t *b = calloc(1, cap);
    if (!b)
        return thaw_fail(err, "out of memory");
    uint8_t *index = b + ROOTFS_PACK_HEADER, *table = index + n * 16;
    uint64_t at = data_off, blk = 0;
    for (uint64_t e = 0; e < n; e++) { /* (an index only: checksum 0, there is no page to check) */
        put_le64(index + e * 16, pages[e]);
        put_le64(index + e * 16 + 8, contents ? reap_page_checksum(contents + e * PAGE, pages[e] * PAGE) : 0);
    }
    for (uint64_t i = 0; contents && i < n; blk++) {
        uint64_t j = block_end(pages, n, i);
        size_t plain = (size_t)((j - i) * PAGE);
        size_t stored = k->raw_only ? 0 : lz4_block_pack(contents + i * PAGE, plain, b + at, cap - at);
        bool raw = stored == 0; /* it does not compress enough: stored as is */
        if (raw) {
            memcpy(b + at, contents + i * PAGE, plain);
            stored = plain;
        }
        put_le32(table + blk * 8, (uint32_t)stored);
        put_le32(table + blk * 8 + 4, (uint32_t)(j - i) | (raw ? ROOTFS_PACK_RAW : 0));
        at += stored;
        i = j;
    }
    memcpy(b + H_MAGIC, k->magic, 8);
    put_le16(b + H_MAJOR, k->major);
    put_le16(b + H_MINOR, 0);
    put_le32(b + H_PAGE_SIZE, PAGE);
    put_le64(b + H_IMAGE_PAGES, image_pages);
    put_le64(b + H_COUNT, n);
    put_le64(b + H_BLOCKS, blocks);
    put_le64(b + H_DATA_OFF, data_off);
    put_le64(b + H_DATA_LEN, at - data_off);
    snap_identity_put(b + H_IDENTITY, id);
    put_le32(b + H_FLAGS, contents ? 0 : ROOTFS_PACK_INDEX_ONLY);
    put_le32(b + H_CRC, pack_crc(b, index, index_len));
    *out = b;
    *len = (size_t)align_page(at); /* the padding is calloc's zeros */
    return 0;
}

int rootfs_pack_decode(const struct rootfs_pack_kind *k, const uint8_t *buf, size_t len, uint64_t file_len,
                       uint64_t image_pages, const struct snap_identity *id, struct rootfs_pack *p,
                       struct thaw_error *err)
{
    memset(p, 0, sizeof *p);
    if (len < 8 || memcmp(buf + H_MAGIC, k->magic, 7) != 0)
        return thaw_fail(err, "not a thaw %s file", k->name);
    if (buf[7] != (uint8_t)k->magic[7]) {
        char v[8]; /* a hostile byte is shown, never printed raw (the message is one line) */
        snprintf(v, sizeof v, buf[7] > 0x20 && buf[7] < 0x7f ? "%c" : "0x%02x", buf[7]);
        return thaw_fail(err, "format %s, this thaw reads %c (from an older thaw: take the snapshot again)", v,
                         k->magic[7]);
    }
    if (len < ROOTFS_PACK_HEADER || file_len < ROOTFS_PACK_HEADER)
        return thaw_fail(err, "truncated header");
    if (get_le16(buf + H_MAJOR) != k->major)
        return thaw_fail(err, "format %u.%u, this thaw reads %u.x", get_le16(buf + H_MAJOR),
                         get_le16(buf + H_MINOR), k->major);
    uint32_t flags = get_le32(buf + H_FLAGS);
    if (get_le32(buf + H_PAGE_SIZE) != PAGE ||
        (flags != 0 && !(flags == ROOTFS_PACK_INDEX_ONLY && k->index_only_ok)))
        return thaw_fail(err, "page size %u or flags %#x not supported", get_le32(buf + H_PAGE_SIZE), flags);
    p->index_only = flags == ROOTFS_PACK_INDEX_ONLY;
    p->image_pages = get_le64(buf + H_IMAGE_PAGES);
    if (p->image_pages != image_pages)
        return thaw_fail(err, "made for an image of %llu pages, this one has %llu",
                         (unsigned long long)p->image_pages, (unsigned long long)image_pages);
    snap_identity_get(buf + H_IDENTITY, &p->id);
    if (id && !snap_identity_equal(&p->id, id))
        return thaw_fail(err, "belongs to another snapshot");
    p->count = get_le64(buf + H_COUNT);
    p->blocks = get_le64(buf + H_BLOCKS);
    p->data_off = get_le64(buf + H_DATA_OFF);
    p->data_len = get_le64(buf + H_DATA_LEN);
    p->file_len = file_len;
    if (p->count > image_pages || p->count > ROOTFS_PACK_MAX_PAGES || p->blocks > p->count ||
        (p->index_only ? p->blocks || p->data_len : p->count && !p->blocks))
        return thaw_fail(err, "%llu pages in %llu blocks for an image of %llu pages",
                         (unsigned long long)p->count, (unsigned long long)p->blocks,
                         (unsigned long long)image_pages);
    uint64_t index_len = p->count * 16 + p->blocks * 8;
    if (p->data_off != align_page(ROOTFS_PACK_HEADER + index_len) || p->data_len > p->count * PAGE ||
        align_page(p->data_off + p->data_len) != file_len)
        return thaw_fail(err, "data at %llu, %llu bytes: does not match the index or the file's %llu bytes",
                         (unsigned long long)p->data_off, (unsigned long long)p->data_len,
                         (unsigned long long)file_len);
    if (len < ROOTFS_PACK_HEADER + index_len)
        return thaw_fail(err, "truncated index");
    p->index = buf + ROOTFS_PACK_HEADER;
    p->table = p->index + p->count * 16;
    if (pack_crc(buf, p->index, index_len) != get_le32(buf + H_CRC))
        return thaw_fail(err, "header or index checksum mismatch");
    p->crc = get_le32(buf + H_CRC);
    for (uint64_t i = 0; i < p->count; i++) {
        uint64_t pg = get_le64(p->index + i * 16);
        if (pg >= image_pages)
            return thaw_fail(err, "page %llu outside the image (%llu pages)", (unsigned long long)pg,
                             (unsigned long long)image_pages);
        if (i && pg <= get_le64(p->index + (i - 1) * 16))
            return thaw_fail(err, "pages not ascending at entry %llu", (unsigned long long)i);
    }
    uint64_t entry = 0, stored_sum = 0;
    for (uint64_t b = 0; b < p->blocks; b++) {
        uint32_t stored = get_le32(p->table + b * 8), w = get_le32(p->table + b * 8 + 4);
        uint64_t pages = w & ~ROOTFS_PACK_RAW;
        bool raw = (w & ROOTFS_PACK_RAW) != 0;
        if (pages < 1 || pages > ROOTFS_PACK_BLOCK_PAGES || entry + pages > p->count || stored == 0 ||
            (raw ? stored != pages * PAGE : stored >= pages * PAGE))
            return thaw_fail(err, "block %llu: %llu pages, %u bytes%s: bad size", (unsigned long long)b,
                             (unsigned long long)pages, stored, raw ? " raw" : "");
        uint64_t first = get_le64(p->index + entry * 16);
        for (uint64_t e = 1; e < pages; e++)
            if (get_le64(p->index + (entry + e) * 16) != first + e)
                return thaw_fail(err, "block %llu: pages not contiguous", (unsigned long long)b);
        entry += pages;
        stored_sum += stored;
    }
    if ((!p->index_only && entry != p->count) || stored_sum != p->data_len)
        return thaw_fail(err, "the blocks hold %llu pages in %llu bytes, the header says %llu in %llu",
                         (unsigned long long)entry, (unsigned long long)stored_sum, (unsigned long long)p->count,
                         (unsigned long long)p->data_len);
    return 0;
}

uint64_t rootfs_pack_page(const struct rootfs_pack *p, uint64_t i)
{
    return get_le64(p->index + i * 16);
}

bool rootfs_pack_next(const struct rootfs_pack *p, struct rootfs_pack_iter *it, struct rootfs_pack_block *b)
{
    if (it->block >= p->blocks)
        return false;
    uint32_t w = get_le32(p->table + it->block * 8 + 4);
    b->first = it->entry;
    b->pages = w & ~ROOTFS_PACK_RAW;
    b->raw = (w & ROOTFS_PACK_RAW) != 0;
    b->stored = get_le32(p->table + it->block * 8);
    b->off = p->data_off + it->off;
    it->block++;
    it->entry += b->pages;
    it->off += b->stored;
    return true;
}

int rootfs_pack_unpack(const struct rootfs_pack *p, const uint8_t *src, const struct rootfs_pack_block *b,
                       uint8_t *dst, struct thaw_error *err)
{
    struct thaw_error why;
    uint64_t first = rootfs_pack_page(p, b->first);
    if (b->raw)
        memcpy(dst, src, (size_t)(b->pages * PAGE)); /* its size was checked by rootfs_pack_decode */
    else if (lz4_block_unpack(src, (size_t)b->stored, dst, (size_t)(b->pages * PAGE), &why) < 0)
        return thaw_fail(err, "block of image pages %llu-%llu: %s", (unsigned long long)first,
                         (unsigned long long)(first + b->pages - 1), why.msg);
    for (uint64_t e = 0; e < b->pages; e++)
        if (reap_page_checksum(dst + e * PAGE, (first + e) * PAGE) != get_le64(p->index + (b->first + e) * 16 + 8))
            return thaw_fail(err, "image page %llu: checksum mismatch", (unsigned long long)(first + e));
    return 0;
}
