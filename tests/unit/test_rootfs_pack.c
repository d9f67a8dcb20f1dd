/* Packed page files of rootfs snapshots (src/host/snapshot/rootfs_pack.c): round trips
 * into a mapping, and every kind of hostile file refused with one line: truncated,
 * bad sizes, another format or snapshot, pages outside the image or not ascending,
 * a block that does not decode or decodes to another size, a checksum mismatch. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include <cmocka.h>

#include "host/snapshot/rootfs_pack.h"
#include "host/util/le.h"
#include "host/util/lz4_block.h"

#define PAGE 4096u
#define IMAGE_PAGES 256u

static const struct snap_identity ID = {.id = {1, 2, 3}, .digest = {9, 8, 7}};

/* Pages 3-5, 10, 40-79 (more than one block), 200: text-like and random contents. */
static uint64_t pages[64];
static uint64_t npages;
static uint8_t *contents;

static void make_pages(void)
{
    npages = 0;
    pages[npages++] = 3, pages[npages++] = 4, pages[npages++] = 5, pages[npages++] = 10;
    for (uint64_t p = 40; p < 80; p++)
        pages[npages++] = p;
    pages[npages++] = 200;
    contents = malloc(npages * PAGE);
    uint64_t x = 42;
    for (uint64_t i = 0; i < npages * PAGE; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        /* page 10 (entry 3) random: stored raw; the others compressible */
        contents[i] = i / PAGE == 3 ? (uint8_t)x : (uint8_t)("lib.so relocations "[i % 19] + i / PAGE);
    }
}

static void encode(const struct rootfs_pack_kind *k, uint8_t **buf, size_t *len)
{
    struct thaw_error err;
    make_pages();
    assert_int_equal(rootfs_pack_encode(k, IMAGE_PAGES, &ID, pages, npages, contents, buf, len, &err), 0);
    assert_int_equal(*len % PAGE, 0);
}

static void fix_crc(uint8_t *b)
{
    uint64_t n = get_le64(b + 24), blocks = get_le64(b + 32);
    put_le32(b + 108, 0);
    uint32_t crc = (uint32_t)crc32_z(0, b, ROOTFS_PACK_HEADER);
    crc = (uint32_t)crc32_z(crc, b + ROOTFS_PACK_HEADER, n * 16 + blocks * 8);
    put_le32(b + 108, crc);
}

/* Decodes and unpacks every block into an image-sized buffer: 0 or -1, err set. */
static int unpack(const struct rootfs_pack_kind *k, const uint8_t *b, size_t len, uint8_t *image,
                  struct thaw_error *err)
{
    struct rootfs_pack p;
    err->msg[0] = 0;
    if (rootfs_pack_decode(k, b, len, len, IMAGE_PAGES, &ID, &p, err) < 0)
        return -1;
    struct rootfs_pack_iter it = {0};
    struct rootfs_pack_block blk;
    while (rootfs_pack_next(&p, &it, &blk))
        if (rootfs_pack_unpack(&p, b + blk.off, &blk, image + rootfs_pack_page(&p, blk.first) * PAGE, err) < 0)
            return -1;
    return 0;
}

/* ROOTFS_PACK_COW_RAW: every block raw at a 4 KiB-aligned offset holding the page's
 * bytes as they are (what a restore maps from the file), read back as a COW file. */
static void raw_only(void **state)
{
    (void)state;
    uint8_t *b, *image = calloc(IMAGE_PAGES, PAGE);
    size_t len;
    struct thaw_error err;
    encode(&ROOTFS_PACK_COW_RAW, &b, &len);
    struct rootfs_pack p;
    assert_int_equal(rootfs_pack_decode(&ROOTFS_PACK_COW, b, len, len, IMAGE_PAGES, &ID, &p, &err), 0);
    assert_int_equal(p.blocks, 6);
    struct rootfs_pack_iter it = {0};
    struct rootfs_pack_block blk;
    uint64_t seen = 0;
    while (rootfs_pack_next(&p, &it, &blk)) {
        assert_true(blk.raw);
        assert_int_equal(blk.off % PAGE, 0);
        assert_int_equal(blk.stored, blk.pages * PAGE);
        for (uint64_t k = 0; k < blk.pages; k++)
            assert_memory_equal(b + blk.off + k * PAGE, contents + (blk.first + k) * PAGE, PAGE);
        seen += blk.pages;
    }
    assert_int_equal(seen, npages);
    assert_int_equal(unpack(&ROOTFS_PACK_COW, b, len, image, &err), 0);
    for (uint64_t i = 0; i < npages; i++)
        assert_memory_equal(image + pages[i] * PAGE, contents + i * PAGE, PAGE);
    free(b);
    free(image);
    free(contents);
}

static void round_trip(void **state)
{
    (void)state;
    uint8_t *b, *image = calloc(IMAGE_PAGES, PAGE);
    size_t len;
    struct thaw_error err;
    encode(&ROOTFS_PACK_COW, &b, &len);
    assert_true(len < npages * PAGE / 2); /* compressed */
    assert_int_equal(unpack(&ROOTFS_PACK_COW, b, len, image, &err), 0);
    for (uint64_t i = 0; i < npages; i++)
        assert_memory_equal(image + pages[i] * PAGE, contents + i * PAGE, PAGE);
    assert_int_equal(image[0], 0); /* nothing else written */
    assert_int_equal(image[6 * PAGE], 0);
    /* The blocks: 3-5, 10 (raw), 40-55, 56-71, 72-79, 200. */
    struct rootfs_pack p;
    assert_int_equal(rootfs_pack_decode(&ROOTFS_PACK_COW, b, len, len, IMAGE_PAGES, NULL, &p, &err), 0);
    assert_int_equal(p.blocks, 6);
    struct rootfs_pack_iter it = {0};
    struct rootfs_pack_block blk;
    assert_true(rootfs_pack_next(&p, &it, &blk) && blk.pages == 3 && !blk.raw);
    assert_true(rootfs_pack_next(&p, &it, &blk) && blk.pages == 1 && blk.raw);
    /* An empty set is a valid file too. */
    free(b);
    assert_int_equal(rootfs_pack_encode(&ROOTFS_PACK_WS, IMAGE_PAGES, &ID, pages, 0, contents, &b, &len, &err), 0);
    assert_int_equal(unpack(&ROOTFS_PACK_WS, b, len, image, &err), 0);
    free(b), free(image), free(contents);
}

static void refuse(const struct rootfs_pack_kind *k, const uint8_t *b, size_t len, const char *what)
{
    uint8_t *image = calloc(IMAGE_PAGES, PAGE);
    struct thaw_error err;
    assert_int_equal(unpack(k, b, len, image, &err), -1);
    if (!strstr(err.msg, what))
        fail_msg("wanted \"%s\", got \"%s\"", what, err.msg);
    assert_null(strchr(err.msg, '\n'));
    free(image);
}

static void hostile_headers(void **state)
{
    (void)state;
    uint8_t *b, *c;
    size_t len;
    encode(&ROOTFS_PACK_COW, &b, &len);
    c = malloc(len);
#define FRESH() memcpy(c, b, len)
    FRESH();
    refuse(&ROOTFS_PACK_WS, c, len, "not a thaw rootfs.ws file");
    memcpy(c, "THAWCOW1", 8); /* the old format */
    refuse(&ROOTFS_PACK_COW, c, len, "from an older thaw");
    c[7] = '\n'; /* a format byte that is not printable is shown, not printed (fuzz_rootfs_pack) */
    refuse(&ROOTFS_PACK_COW, c, len, "format 0x0a, this thaw reads");
    FRESH();
    refuse(&ROOTFS_PACK_COW, c, 100, "truncated header");
    refuse(&ROOTFS_PACK_COW, c, len - PAGE, "does not match"); /* a truncated file */
    struct snap_identity other = ID;
    other.id[0] ^= 1;
    snap_identity_put(c + 56, &other);
    refuse(&ROOTFS_PACK_COW, c, len, "belongs to another snapshot");
    FRESH();
    put_le64(c + 16, IMAGE_PAGES + 1); /* made for another image */
    refuse(&ROOTFS_PACK_COW, c, len, "made for an image of");
    FRESH();
    put_le64(c + 24, 1ull << 40); /* absurd counts */
    refuse(&ROOTFS_PACK_COW, c, len, "pages in");
    FRESH();
    put_le64(c + 48, get_le64(c + 48) + PAGE); /* data length past the file */
    refuse(&ROOTFS_PACK_COW, c, len, "does not match");
    FRESH();
    c[ROOTFS_PACK_HEADER + 8] ^= 1; /* a checksum in the index, CRC not repaired */
    refuse(&ROOTFS_PACK_COW, c, len, "index checksum mismatch");
    FRESH();
    put_le64(c + ROOTFS_PACK_HEADER + (npages - 1) * 16, IMAGE_PAGES); /* last page outside the image */
    fix_crc(c);
    refuse(&ROOTFS_PACK_COW, c, len, "outside the image");
    FRESH();
    put_le64(c + ROOTFS_PACK_HEADER + 16, 3); /* page 4 -> 3: not ascending */
    fix_crc(c);
    refuse(&ROOTFS_PACK_COW, c, len, "not ascending");
    FRESH();
    put_le32(c + ROOTFS_PACK_HEADER + npages * 16 + 4, 0); /* block 0 holds no page */
    fix_crc(c);
    refuse(&ROOTFS_PACK_COW, c, len, "bad size");
    FRESH();
    put_le32(c + ROOTFS_PACK_HEADER + npages * 16 + 8, PAGE - 1); /* block 1, raw, one byte short */
    fix_crc(c);
    refuse(&ROOTFS_PACK_COW, c, len, "bad size");
    FRESH();
    put_le32(c + ROOTFS_PACK_HEADER + npages * 16 + 4, 4); /* block 0 claims 3, 4, 5 and 10 */
    fix_crc(c);
    refuse(&ROOTFS_PACK_COW, c, len, "not contiguous");
    FRESH();
    put_le32(c + ROOTFS_PACK_HEADER + npages * 16 + 4, 2); /* block 0 holds 2 of its 3 pages */
    fix_crc(c);
    refuse(&ROOTFS_PACK_COW, c, len, "not contiguous"); /* block 1 is now 5, 10 */
    FRESH();
    put_le64(c + 32, get_le64(c + 32) - 1); /* one block fewer: the blocks do not cover the index */
    fix_crc(c);
    refuse(&ROOTFS_PACK_COW, c, len, "the blocks hold 44 pages");
    free(b), free(c), free(contents);
}

static void hostile_blocks(void **state)
{
    (void)state;
    uint8_t *b, *c;
    size_t len;
    encode(&ROOTFS_PACK_WS, &b, &len);
    c = malloc(len);
    uint64_t data = get_le64(b + 40), table = ROOTFS_PACK_HEADER + npages * 16;
    uint32_t stored0 = get_le32(b + table);
    FRESH();
    c[data + stored0 + 100] ^= 0x55; /* block 1 (page 10, raw): a flipped byte */
    refuse(&ROOTFS_PACK_WS, c, len, "image page 10: checksum mismatch");
    FRESH();
    memset(c + data, 0xff, stored0); /* block 0: garbage */
    refuse(&ROOTFS_PACK_WS, c, len, "image pages 3-5");
    FRESH();
    /* Block 0 (3 pages) replaced by a valid lz4 block of 2 pages: decodes to another
     * size. */
    uint8_t two[2 * PAGE], out[2 * PAGE + 1024];
    memset(two, 'x', sizeof two);
    size_t n = lz4_block_pack(two, sizeof two, out, sizeof out);
    assert_true(n > 0);
    assert_true(n <= stored0);
    memcpy(c + data, out, n);
    memset(c + data + n, 0, stored0 - n); /* after the lz4 sequence: trailing bytes */
    refuse(&ROOTFS_PACK_WS, c, len, "image pages 3-5");
    FRESH();
    memcpy(c + data, out, n); /* the same block at its exact length: decodes to 8 KiB, not 12 */
    put_le32(c + table, (uint32_t)n);
    put_le64(c + 48, get_le64(c + 48) - (stored0 - n));
    memmove(c + data + n, b + data + stored0, get_le64(b + 48) - stored0);
    fix_crc(c);
    refuse(&ROOTFS_PACK_WS, c, len, "decodes to 8192 bytes");
    free(b), free(c), free(contents);
}

/* An index-only rootfs.ws names the pages and holds none: one page of header and
 * index, no blocks; rootfs.cow cannot be one, and an index-only header with blocks or
 * data, or an unknown flag, is refused. */
static void index_only(void **state)
{
    (void)state;
    uint8_t *b, *c;
    size_t len;
    struct thaw_error err;
    make_pages();
    assert_int_equal(rootfs_pack_encode(&ROOTFS_PACK_WS, IMAGE_PAGES, &ID, pages, npages, NULL, &b, &len, &err), 0);
    assert_int_equal(len, PAGE); /* 112 + 45 x 16 bytes */
    struct rootfs_pack p;
    assert_int_equal(rootfs_pack_decode(&ROOTFS_PACK_WS, b, len, len, IMAGE_PAGES, &ID, &p, &err), 0);
    assert_true(p.index_only);
    assert_int_equal(p.count, npages);
    assert_int_equal(p.blocks, 0);
    for (uint64_t i = 0; i < npages; i++)
        assert_int_equal(rootfs_pack_page(&p, i), pages[i]);
    struct rootfs_pack_iter it = {0};
    struct rootfs_pack_block blk;
    assert_false(rootfs_pack_next(&p, &it, &blk)); /* nothing to unpack */
    assert_int_equal(rootfs_pack_encode(&ROOTFS_PACK_COW, IMAGE_PAGES, &ID, pages, npages, NULL, &c, &len, &err), -1);
    assert_non_null(strstr(err.msg, "needs the pages' contents"));
    refuse(&ROOTFS_PACK_COW, b, PAGE, "not a thaw rootfs.cow file");
    c = malloc(PAGE);
    memcpy(c, b, PAGE);
    memcpy(c, "THAWCOW2", 8); /* the flag on the other kind */
    put_le16(c + 8, 2);
    fix_crc(c);
    refuse(&ROOTFS_PACK_COW, c, PAGE, "flags 0x1 not supported");
    memcpy(c, b, PAGE);
    put_le32(c + 104, 3); /* an unknown flag */
    fix_crc(c);
    refuse(&ROOTFS_PACK_WS, c, PAGE, "flags 0x3 not supported");
    memcpy(c, b, PAGE);
    put_le64(c + 32, 1); /* index only, yet a block */
    fix_crc(c);
    refuse(&ROOTFS_PACK_WS, c, PAGE, "pages in 1 blocks");
    free(b), free(c), free(contents);
    /* A packed rootfs.ws is still read as before. */
    encode(&ROOTFS_PACK_WS, &b, &len);
    assert_int_equal(rootfs_pack_decode(&ROOTFS_PACK_WS, b, len, len, IMAGE_PAGES, &ID, &p, &err), 0);
    assert_false(p.index_only);
    free(b), free(contents);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(raw_only),
        cmocka_unit_test(hostile_headers),
        cmocka_unit_test(hostile_blocks),
        cmocka_unit_test(index_only),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
