/* libFuzzer target for the packed page files of rootfs snapshots (rootfs.cow, rootfs.ws:
 * src/host/snapshot/rootfs_pack.c), without KVM: each input, padded with zeros to 4 KiB
 * as the reader requires, is decoded as either kind for an image of the size its
 * header claims (if small); half the time the header/index CRC is repaired first, so
 * that mutations reach the index and block checks. Whatever is accepted must keep the
 * decoder's promises (pages ascending inside the image, blocks of 1..16 contiguous
 * pages inside the file, an index-only file only as rootfs.ws and with no blocks), and
 * every block is then decoded into an image-sized buffer:
 * each decodes and passes its page checksums, or is refused with one line; ASan sees
 * any read or write out of bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "host/snapshot/rootfs_pack.h"
#include "host/util/le.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PAGE 4096u
#define MAX_IMAGE_PAGES 1024u

static void check_error(const struct thaw_error *err)
{
    if (err->msg[0] == 0 || strchr(err->msg, '\n'))
        abort(); /* every error is one non-empty line */
}

static void check(const struct rootfs_pack_kind *k, const uint8_t *b, size_t len, uint64_t image_pages)
{
    struct rootfs_pack p;
    struct thaw_error err;
    err.msg[0] = 0;
    if (rootfs_pack_decode(k, b, len, len, image_pages, NULL, &p, &err) < 0) {
        check_error(&err);
        return;
    }
    if (p.count > image_pages || p.data_off % PAGE || p.data_off + p.data_len > len)
        abort();
    uint8_t *image = calloc(image_pages ? image_pages : 1, PAGE);
    if (!image)
        return;
    struct rootfs_pack_iter it = {0};
    struct rootfs_pack_block blk;
    uint64_t pages = 0;
    while (rootfs_pack_next(&p, &it, &blk)) {
        uint64_t first = rootfs_pack_page(&p, blk.first);
        if (blk.pages < 1 || blk.pages > ROOTFS_PACK_BLOCK_PAGES || first + blk.pages > image_pages ||
            blk.off < p.data_off || blk.off + blk.stored > p.data_off + p.data_len)
            abort();
        err.msg[0] = 0;
        if (rootfs_pack_unpack(&p, b + blk.off, &blk, image + first * PAGE, &err) < 0)
            check_error(&err);
        pages += blk.pages;
    }
    if (p.index_only ? !k->index_only_ok || p.blocks || p.data_len || pages : pages != p.count)
        abort(); /* an index only names pages and holds none, and only a rootfs.ws may be one */
    free(image);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < ROOTFS_PACK_HEADER || size > (8u << 20))
        return 0;
    size_t len = (size + PAGE - 1) / PAGE * PAGE;
    uint8_t *b = calloc(1, len);
    if (!b)
        return 0;
    memcpy(b, data, size);
    uint64_t image_pages = get_le64(b + 16);
    if (image_pages > MAX_IMAGE_PAGES)
        image_pages = MAX_IMAGE_PAGES;
    if (data[size - 1] & 1) { /* repair the CRC over the header and the index it claims */
        uint64_t n = get_le64(b + 24), blocks = get_le64(b + 32);
        if (n <= len / 16 && blocks <= len / 8 && ROOTFS_PACK_HEADER + n * 16 + blocks * 8 <= len) {
            put_le32(b + 108, 0);
            uint32_t crc = (uint32_t)crc32_z(0, b, ROOTFS_PACK_HEADER);
            put_le32(b + 108, (uint32_t)crc32_z(crc, b + ROOTFS_PACK_HEADER, n * 16 + blocks * 8));
        }
    }
    check(&ROOTFS_PACK_COW, b, len, image_pages);
    check(&ROOTFS_PACK_WS, b, len, image_pages);
    free(b);
    return 0;
}
