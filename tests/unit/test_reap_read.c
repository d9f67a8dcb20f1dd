/* The REAP prefetch read (reap.c): ws.pages queued as 2 MiB O_DIRECT reads at once and
 * installed as they land, issued ahead of the prefetch (reap_ws_read_begin) or by it.
 * A working set of 1,200 pages in runs with gaps, installed into userfaultfd-registered
 * memory that no handler serves: a page that is not installed would block, so every check
 * also goes through mincore first. Written uncompressed (THAW_WS_COMPRESS=0: 4.7 MiB of
 * file, three reads) and lz4-compressed (pages 0-63 random, so block 0 is stored raw; the
 * others compress to ~3/4: ~3.8 MiB, two reads, lz4 blocks straddling the read boundary). */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include <zlib.h>

#include "host/pager/reap.h"
#include "host/util/snap_identity.h"
#include "uffd_usable.h"

#define PG 4096ull
#define NPAGES 2048ull /* 8 MiB of guest memory */
#define WS_PAGES 1200u

static char dir[64];
static const struct snap_identity test_id = {.id = {3, 1, 4}, .digest = {1, 5, 9}};

static uint8_t mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return (uint8_t)(x ^ (x >> 31));
}

/* Pages below 64: random (incompressible); the others random in their first 2,900 bytes,
 * a pattern after. */
static uint8_t page_byte(uint64_t page, uint64_t i)
{
    return page < 64 || i < 2900 ? mix(page << 12 | i) : (uint8_t)(page * 7 + 3 + (i % 253));
}

/* The working set: pages 0-599 and every page 700 + 2k below 700 + 2*600 (runs of one
 * with one-page gaps), 1,200 in all. */
static uint64_t ws_page(unsigned i) { return i < 600 ? i : 700 + 2ull * (i - 600); }


static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/thaw-reapread-XXXXXX");
    assert_non_null(mkdtemp(dir));
    char path[128];
    snprintf(path, sizeof path, "%s/memory", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    static uint8_t buf[PG];
    for (uint64_t p = 0; p < NPAGES; p++) {
        for (uint64_t i = 0; i < PG; i++)
            buf[i] = page_byte(p, i);
        assert_int_equal(pwrite(fd, buf, PG, (off_t)(p * PG)), (ssize_t)PG);
    }
    static uint8_t trailer[MEMORY_TRAILER_SIZE];
    memory_trailer_encode(trailer, NPAGES * PG, &test_id);
    assert_int_equal(pwrite(fd, trailer, sizeof trailer, (off_t)(NPAGES * PG)), (ssize_t)sizeof trailer);
    close(fd);
    return 0;
}

/* Writes ws.pages (and ws.trace) afresh: compressed, or every block raw. */
static void write_ws(int compress)
{
    static struct page_record log[WS_PAGES];
    for (unsigned i = 0; i < WS_PAGES; i++)
        log[i] = (struct page_record){ws_page(WS_PAGES - 1 - i) * PG, i}; /* any fault order */
    struct thaw_error err = {{0}};
    if (!compress)
        setenv("THAW_WS_COMPRESS", "0", 1);
    int rc = reap_write(dir, log, WS_PAGES, NPAGES * PG, &test_id, &err);
    unsetenv("THAW_WS_COMPRESS");
    if (rc < 0)
        fail_msg("reap_write: %s", err.msg);
}

static char *ws_path(void)
{
    static char path[128];
    snprintf(path, sizeof path, "%s/ws.pages", dir);
    return path;
}

static uint8_t *slurp(size_t *len)
{
    FILE *f = fopen(ws_path(), "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    rewind(f);
    uint8_t *b = malloc(*len);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

static void spill(const uint8_t *b, size_t len)
{
    FILE *f = fopen(ws_path(), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* The header's CRC over the header, index and block table, as a careless tool repairs it
 * (docs/snapshot-format.md): so that a damaged block table gets past the CRC. */
static void repair_crc(uint8_t *b)
{
    uint64_t count = le64(b + 24), blocks = le64(b + 120);
    put32(b + 100, 0);
    uint32_t crc = (uint32_t)crc32_z(0, b, REAP_WS_HEADER_BYTES);
    put32(b + 100, (uint32_t)crc32_z(crc, b + 4096, count * REAP_INDEX_ENTRY + blocks * REAP_BLOCK_ENTRY));
}

static int teardown(void **state)
{
    (void)state;
    const char *names[] = {"memory", "ws.pages", "ws.trace"};
    char path[128];
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
    return 0;
}

struct guest {
    uint8_t *mem;
    int uffd;
};

static uint8_t *to_host(void *ctx, uint64_t gpa, uint64_t len)
{
    struct guest *g = ctx;
    return gpa <= NPAGES * PG && len <= NPAGES * PG - gpa ? g->mem + gpa : NULL;
}

#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1ull << 16) /* Linux 6.8 */
#endif

/* Private anonymous guest memory (as thaw's), or shared (shmem), which UFFDIO_MOVE refuses
 * and UFFDIO_COPY serves; with_move asks for UFFD_FEATURE_MOVE (0: this kernel has none). */
static int guest_new_with(struct guest *g, int with_move, int shared)
{
    g->mem = mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE, (shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS, -1, 0);
    assert_true(g->mem != MAP_FAILED);
    g->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    assert_true(g->uffd >= 0);
    struct uffdio_api api = {.api = UFFD_API,
                             .features = (with_move ? UFFD_FEATURE_MOVE : 0) | (shared ? UFFD_FEATURE_MISSING_SHMEM : 0)};
    if (ioctl(g->uffd, UFFDIO_API, &api) < 0) {
        assert_true(with_move);
        close(g->uffd);
        munmap(g->mem, NPAGES * PG);
        return 0;
    }
    struct uffdio_register reg = {.range = {.start = (uint64_t)(uintptr_t)g->mem, .len = NPAGES * PG},
                                  .mode = UFFDIO_REGISTER_MODE_MISSING};
    assert_int_equal(ioctl(g->uffd, UFFDIO_REGISTER, &reg), 0);
    return 1;
}

static void guest_new(struct guest *g) { assert_true(guest_new_with(g, 0, 0)); }

static void guest_free(struct guest *g)
{
    close(g->uffd);
    munmap(g->mem, NPAGES * PG);
}

/* Exactly the working set's pages are resident, each holding the snapshot's bytes
 * (only pages below upto: a failed prefetch stops there). */
static void check_installed(const struct guest *g, unsigned upto)
{
    static unsigned char vec[NPAGES];
    static uint8_t want[NPAGES];
    memset(want, 0, sizeof want);
    for (unsigned i = 0; i < upto; i++)
        want[ws_page(i)] = 1;
    assert_int_equal(mincore(g->mem, NPAGES * PG, vec), 0);
    for (uint64_t p = 0; p < NPAGES; p++) {
        if ((vec[p] & 1) != want[p])
            fail_msg("page %llu resident %d, want %d", (unsigned long long)p, vec[p] & 1, want[p]);
        if (want[p])
            for (uint64_t i = 0; i < PG; i += 511)
                if (g->mem[p * PG + i] != page_byte(p, i))
                    fail_msg("page %llu byte %llu differs from the snapshot", (unsigned long long)p,
                             (unsigned long long)i);
    }
}

/* Issued ahead, then installed as it lands: every page, one UFFDIO_COPY per run. */
static void test_early_read_installs_every_page(void **state)
{
    (void)state;
    if (!uffd_usable())
        skip();
    for (int k = 0; k < 6; k++) {
        /* k 4, 5: compressed, with no reservation below the read (THAW_REAP_INPLACE=0): its
         * ~3.6 MiB hold 4.7 MiB of pages, no room to decode in place, so into a staging
         * mapping of its own. */
        int single = k & 1, compress = k >= 2, staging = k >= 4;
        write_ws(compress);
        if (single)
            setenv("THAW_REAP_READ", "single", 1);
        if (staging)
            setenv("THAW_REAP_INPLACE", "0", 1);
        struct guest g;
        guest_new(&g);
        struct thaw_error err = {{0}};
        struct reap_ws_read *rd;
        if (reap_ws_read_begin(dir, &rd, &err) < 0)
            fail_msg("reap_ws_read_begin: %s", err.msg);
        struct reap_stats rs;
        if (reap_prefetch_read(rd, g.uffd, to_host, &g, NPAGES * PG, &test_id, 0, 0, NULL, &rs, &err) < 0)
            fail_msg("reap_prefetch_read: %s", err.msg);
        reap_ws_read_free(rd);
        assert_int_equal(rs.pages, WS_PAGES);
        /* Pages 0-599, then 600 single pages; in 2 MiB reads the first run is split where
         * the first read ends (page 503: the header and index take 9 pages) if that read
         * was seen to land before the next one. Compressed, it is split where the raw
         * block 0 (installed from the read's buffer) meets the lz4 blocks (from staging
         * memory), and maybe where a read ends. */
        if (!compress) {
            assert_true(rs.regions == 1 + 600 || (!single && rs.regions == 2 + 600));
            assert_true(rs.bytes > WS_PAGES * PG && rs.bytes > (4ull << 20)); /* more than two reads' worth */
        } else {
            assert_true(rs.regions == 2 + 600 || (!single && rs.regions == 3 + 600));
            assert_true(rs.bytes < WS_PAGES * PG * 7 / 8 && rs.bytes > (2ull << 20)); /* two reads */
        }
        assert_true(rs.read_ns > 0 && rs.install_ns > 0);
        check_installed(&g, WS_PAGES);
        guest_free(&g);
        unsetenv("THAW_REAP_READ");
        unsetenv("THAW_REAP_INPLACE");
    }
}

/* Moved in (UFFDIO_MOVE from the read's buffer) into private memory; copied where the
 * move is refused (shared memory) or not asked for: the same pages and bytes each way. */
static void test_moved_pages_are_the_snapshot(void **state)
{
    (void)state;
    if (!uffd_usable())
        skip();
    write_ws(1);
    const struct {
        int shared;
        unsigned flags;
    } cases[] = {{0, REAP_PREFETCH_MOVE}, {1, REAP_PREFETCH_MOVE}, {0, 0}};
    for (size_t k = 0; k < 3; k++) {
        struct guest g;
        if (!guest_new_with(&g, 1, cases[k].shared)) {
            fprintf(stderr, "*** SKIP: this kernel has no UFFDIO_MOVE (Linux 6.8)\n");
            return;
        }
        struct thaw_error err = {{0}};
        struct reap_ws_read *rd;
        assert_int_equal(reap_ws_read_begin(dir, &rd, &err), 0);
        struct reap_stats rs;
        if (reap_prefetch_read(rd, g.uffd, to_host, &g, NPAGES * PG, &test_id, 0, cases[k].flags, NULL, &rs, &err) < 0)
            fail_msg("case %zu: reap_prefetch_read: %s", k, err.msg);
        reap_ws_read_free(rd);
        assert_int_equal(rs.pages, WS_PAGES);
        assert_int_equal(rs.moved, k == 0 ? WS_PAGES : 0);
        check_installed(&g, WS_PAGES);
        guest_free(&g);
    }
}

/* A read begun and then dropped (the restore failed before its prefetch) waits for its
 * reads and frees everything (ASan would say otherwise). */
static void test_begun_read_can_be_dropped(void **state)
{
    (void)state;
    write_ws(1);
    struct reap_ws_read *rd;
    struct thaw_error err = {{0}};
    assert_int_equal(reap_ws_read_begin(dir, &rd, &err), 0);
    reap_ws_read_free(rd);
    reap_ws_read_free(NULL);
    char other[128];
    snprintf(other, sizeof other, "%s/none", dir);
    assert_int_equal(reap_ws_read_begin(other, &rd, &err), -1);
    assert_null(rd);
}

/* A damaged page in the last read (an uncompressed ws.pages: raw blocks, where a page's
 * bytes are at data offset + 4096 * i): nothing of that read goes in, and the prefetch
 * fails with the page named. */
static void test_damaged_page_in_a_later_read(void **state)
{
    (void)state;
    if (!uffd_usable())
        skip();
    write_ws(0);
    char path[128];
    snprintf(path, sizeof path, "%s/ws.pages", dir);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    assert_true(fd >= 0);
    uint8_t head[48];
    assert_int_equal(pread(fd, head, sizeof head, 0), (ssize_t)sizeof head);
    uint64_t data_off = 0; /* the header's data offset (docs/snapshot-format.md), little-endian */
    for (int i = 7; i >= 0; i--)
        data_off = data_off << 8 | head[40 + i];
    const unsigned bad = 1100; /* in the third 2 MiB read */
    uint64_t at = data_off + bad * PG + 17;
    assert_true(at > (4ull << 20));
    uint8_t byte;
    assert_int_equal(pread(fd, &byte, 1, (off_t)at), 1);
    byte ^= 0xff;
    assert_int_equal(pwrite(fd, &byte, 1, (off_t)at), 1);
    struct guest g;
    guest_new(&g);
    struct reap_stats rs;
    struct thaw_error err = {{0}};
    assert_int_equal(reap_prefetch_into(dir, g.uffd, to_host, &g, NPAGES * PG, &test_id, &rs, &err), -1);
    assert_non_null(strstr(err.msg, "fails its checksum"));
    /* No page of the third read went in; the pages of the reads before it did if they
     * were seen to land before it (or none, if all landed together: the pages seen at
     * once are all checked before any is installed). */
    assert_true(rs.pages == 0 || rs.pages == 503 || rs.pages == 1015); /* 9 pages of header and index */
    check_installed(&g, (unsigned)rs.pages);
    guest_free(&g);
    byte ^= 0xff;
    assert_int_equal(pwrite(fd, &byte, 1, (off_t)at), 1);
    close(fd);
}

/* The whole file decoded in memory (reap_ws_decode) gives the snapshot's pages, both
 * ways it is written; the compressed one holds a raw block 0 and lz4 blocks, one of
 * which straddles the first 2 MiB read's end, and is smaller. */
static void test_decode_round_trip(void **state)
{
    (void)state;
    size_t lens[2];
    for (int compress = 0; compress < 2; compress++) {
        write_ws(compress);
        size_t len;
        uint8_t *f = slurp(&len);
        lens[compress] = len;
        struct reap_ws_header h;
        uint8_t *pages;
        uint64_t *gpa;
        struct thaw_error err = {{0}};
        if (reap_ws_decode(f, len, NPAGES * PG, &test_id, &h, &pages, &gpa, &err) < 0)
            fail_msg("reap_ws_decode: %s", err.msg);
        assert_int_equal(h.count, WS_PAGES);
        assert_int_equal(h.blocks, (WS_PAGES + 63) / 64);
        unsigned raw = 0, straddles = 0;
        for (uint64_t k = 0; k < h.blocks; k++) {
            struct reap_ws_block b;
            reap_ws_block_at(f + PG, &h, k, &b);
            assert_int_equal(b.first, k * 64);
            raw += b.kind == REAP_BLOCK_RAW;
            if (b.offset < (2u << 20) && b.offset + b.bytes > (2u << 20))
                straddles += compress ? b.kind == REAP_BLOCK_LZ4 : 1;
        }
        assert_int_equal(raw, compress ? 1 : h.blocks);
        assert_int_equal(straddles, 1); /* an lz4 block, when compressed */
        for (unsigned i = 0; i < WS_PAGES; i++) {
            assert_int_equal(gpa[i], ws_page(i) * PG);
            for (uint64_t j = 0; j < PG; j += 97)
                assert_int_equal(pages[i * PG + j], page_byte(ws_page(i), j));
        }
        free(pages);
        free(gpa);
        free(f);
    }
    assert_true(lens[1] < lens[0] * 7 / 8);
}

/* Hostile blocks are refused with one line and nothing of theirs installed: a damaged
 * lz4 block, a block whose stated size is cut short (CRC repaired), one whose stated
 * offset or size leaves the file, and a truncated file. */
static void test_bad_blocks_are_refused(void **state)
{
    (void)state;
    if (!uffd_usable())
        skip();
    write_ws(1);
    size_t len;
    uint8_t *clean = slurp(&len), *f = malloc(len);
    assert_non_null(f);
    struct reap_ws_header h;
    struct thaw_error err = {{0}};
    assert_int_equal(reap_ws_header_decode(clean, len, len, NPAGES * PG, &test_id, &h, &err), 0);
    struct reap_ws_block b5, last;
    reap_ws_block_at(clean + PG, &h, 5, &b5);
    reap_ws_block_at(clean + PG, &h, h.blocks - 1, &last);
    assert_int_equal(b5.kind, REAP_BLOCK_LZ4);
    assert_int_equal(last.kind, REAP_BLOCK_LZ4);
    uint8_t *e5 = f + h.block_table + 5 * REAP_BLOCK_ENTRY, *el = f + h.block_table + (h.blocks - 1) * REAP_BLOCK_ENTRY;
    const char *want[] = {"block 5", "block", "block 5 is invalid", "block 5 is invalid", "block 5 is invalid", "block"};
    for (int c = 0; c < 6; c++) {
        memcpy(f, clean, len);
        size_t flen = len;
        switch (c) {
        case 0: /* lz4 data damaged: it fails to decode, or a page fails its checksum */
            for (uint32_t i = 0; i < b5.bytes; i += 61)
                f[b5.offset + i] ^= 0xa5;
            break;
        case 1: /* the last block's stated size cut by 40 bytes: it does not decode to 12 pages */
            put32(el + 8, last.bytes - 40);
            repair_crc(f);
            break;
        case 2: /* an offset past the file's end */
            put32(e5, (uint32_t)len + 4096);
            repair_crc(f);
            break;
        case 3: /* a size past the file's end */
            put32(e5 + 8, (uint32_t)len);
            repair_crc(f);
            break;
        case 4: /* an lz4 block that claims to be larger than its pages raw */
            put32(e5 + 8, 64 * 4096 + 1);
            repair_crc(f);
            break;
        case 5: /* the file cut by a page */
            flen = len - PG;
            break;
        }
        spill(f, flen);
        struct guest g;
        guest_new(&g);
        struct reap_stats rs;
        err.msg[0] = 0;
        assert_int_equal(reap_prefetch_into(dir, g.uffd, to_host, &g, NPAGES * PG, &test_id, &rs, &err), -1);
        if (!strstr(err.msg, want[c]) || strchr(err.msg, '\n'))
            fail_msg("case %d: %s", c, err.msg);
        /* What went in before the bad block is the snapshot's (nothing at all for a block
         * table refused before the first page). */
        if (c >= 2)
            assert_int_equal(rs.pages, 0);
        assert_true(rs.pages <= b5.first || c == 1);
        check_installed(&g, (unsigned)rs.pages);
        guest_free(&g);
        struct reap_ws_header h2;
        uint8_t *pages = NULL;
        uint64_t *gpa = NULL;
        assert_int_equal(reap_ws_decode(f, flen, NPAGES * PG, &test_id, &h2, &pages, &gpa, &err), -1);
        assert_null(pages);
    }
    /* A block that decodes to more or fewer pages than stated, given straight to the decoder. */
    struct reap_ws_block wrong = b5;
    uint8_t *dst = malloc(65 * PG);
    assert_non_null(dst);
    wrong.pages = 63;
    assert_int_equal(reap_ws_block_decode(clean + b5.offset, &wrong, dst, &err), -1);
    wrong.pages = 65;
    assert_int_equal(reap_ws_block_decode(clean + b5.offset, &wrong, dst, &err), -1);
    assert_non_null(strstr(err.msg, "lz4 block"));
    wrong = b5;
    wrong.kind = 7;
    assert_int_equal(reap_ws_block_decode(clean + b5.offset, &wrong, dst, &err), -1);
    wrong = b5;
    assert_int_equal(reap_ws_block_decode(clean + b5.offset, &wrong, dst, &err), 0);
    free(dst);
    spill(clean, len);
    free(clean);
    free(f);
}

/* The previous format (3.0, pages stored raw without a block table) is refused with a
 * line that says it comes from an older thaw. */
static void test_format_3_is_refused(void **state)
{
    (void)state;
    write_ws(0);
    size_t len;
    uint8_t *f = slurp(&len);
    f[8] = 3;
    f[9] = 0;
    struct reap_ws_header h;
    struct thaw_error err = {{0}};
    assert_int_equal(reap_ws_header_decode(f, len, len, NPAGES * PG, &test_id, &h, &err), -1);
    assert_non_null(strstr(err.msg, "format 3.0"));
    assert_non_null(strstr(err.msg, "older thaw"));
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_early_read_installs_every_page),
        cmocka_unit_test(test_moved_pages_are_the_snapshot),
        cmocka_unit_test(test_begun_read_can_be_dropped),
        cmocka_unit_test(test_damaged_page_in_a_later_read),
        cmocka_unit_test(test_decode_round_trip),
        cmocka_unit_test(test_bad_blocks_are_refused),
        cmocka_unit_test(test_format_3_is_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
