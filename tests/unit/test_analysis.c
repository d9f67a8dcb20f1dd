/* The characterisation analyses (src/host/analysis/) on synthetic traces with known
 * answers, and the rejection of malformed or truncated traces and layouts. */
#include <elf.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "host/analysis/analysis.h"
#include "thaw/abi.h"

#define P ANALYSIS_PAGE
#define MEM (64ull << 20)

/* ---- helpers ---------------------------------------------------------------------------- */

static char tmpdir[64];

static int setup_dir(void **state)
{
    (void)state;
    strcpy(tmpdir, "/tmp/thaw-analysis-XXXXXX");
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown_dir(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

/* Writes ws.trace in the documented format (docs/snapshot-format.md) with our own
 * writer, so the reader is checked against the document, not against itself. */
static void write_trace_file(const char *dir, const struct page_record *r, size_t n, uint64_t mem_size,
                             uint32_t version, size_t cut)
{
    /* Header (80 bytes): magic, u16 major, u16 minor, u32 page size, u64 memory size,
     * u64 count, 48 identity bytes (zero here: analysis does not check them). */
    size_t len = 80 + n * 16 + 4;
    uint8_t *b = calloc(1, len);
    assert_non_null(b);
    memcpy(b, "THAWTRCE", 8);
    uint32_t page = 4096;
    uint64_t count = n;
    uint16_t major = (uint16_t)version;
    memcpy(b + 8, &major, 2);
    memcpy(b + 12, &page, 4);
    memcpy(b + 16, &mem_size, 8);
    memcpy(b + 24, &count, 8);
    for (size_t i = 0; i < n; i++) {
        memcpy(b + 80 + i * 16, &r[i].offset, 8);
        memcpy(b + 88 + i * 16, &r[i].t_ns, 8);
    }
    uint32_t crc = (uint32_t)crc32_z(0, b, len - 4);
    memcpy(b + len - 4, &crc, 4);
    char path[256];
    snprintf(path, sizeof path, "%s/ws.trace", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, len - cut, f), len - cut);
    fclose(f);
    free(b);
}

/* A trace of page numbers, 1 us apart. */
static struct analysis_trace make_trace(const uint64_t *pages, size_t n, uint64_t mem_size)
{
    struct analysis_trace t = {.n = n, .mem_size = mem_size};
    t.pages = calloc(n, sizeof *t.pages);
    assert_non_null(t.pages);
    for (size_t i = 0; i < n; i++)
        t.pages[i] = (struct page_record){pages[i] * P, (i + 1) * 1000};
    assert_int_equal(analysis_trace_check(t.pages, t.n, t.mem_size, NULL), 0);
    return t;
}

static struct page_set make_set(const uint64_t *pages, size_t n)
{
    struct analysis_trace t = make_trace(pages, n, MEM);
    struct page_set s;
    assert_int_equal(page_set_from_trace(&t, &s, NULL), 0);
    analysis_trace_free(&t);
    return s;
}

/* ---- traces ------------------------------------------------------------------------------ */

static void test_trace_round_trip(void **state)
{
    (void)state;
    struct page_record r[] = {{0xa000, 5}, {0x119000, 7}, {0x3000, 7}, {0xa000, 90}};
    write_trace_file(tmpdir, r, 4, MEM, 2, 0);
    struct analysis_trace t;
    struct thaw_error err = {{0}};
    assert_int_equal(analysis_trace_load(tmpdir, &t, &err), 0);
    assert_int_equal(t.n, 4);
    assert_int_equal(t.mem_size, MEM);
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(t.pages[i].offset, r[i].offset);
        assert_int_equal(t.pages[i].t_ns, r[i].t_ns);
    }
    analysis_trace_free(&t);
}

static void expect_load_error(const char *want)
{
    struct analysis_trace t = {0};
    struct thaw_error err = {{0}};
    assert_int_equal(analysis_trace_load(tmpdir, &t, &err), -1);
    if (!strstr(err.msg, want))
        fail_msg("error '%s' does not say '%s'", err.msg, want);
    assert_null(t.pages);
}

static void test_trace_truncated_and_corrupt(void **state)
{
    (void)state;
    struct page_record r[] = {{0x1000, 1}, {0x2000, 2}, {0x3000, 3}};
    write_trace_file(tmpdir, r, 3, MEM, 2, 7);
    expect_load_error("size does not match");
    write_trace_file(tmpdir, r, 3, MEM, 2, 3 * 16 + 10);
    expect_load_error("truncated");
    write_trace_file(tmpdir, r, 3, MEM, 1, 0);
    expect_load_error("trace format 1.0, this thaw reads 2.x");
    /* One flipped bit in an entry: the checksum catches it. */
    write_trace_file(tmpdir, r, 3, MEM, 2, 0);
    char path[256];
    snprintf(path, sizeof path, "%s/ws.trace", tmpdir);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, 33), 1);
    b ^= 0x10;
    assert_int_equal(pwrite(fd, &b, 1, 33), 1);
    close(fd);
    expect_load_error("checksum mismatch");
    unlink(path);
    expect_load_error("cannot open");
}

static void test_trace_semantic_checks(void **state)
{
    (void)state;
    struct page_record unaligned[] = {{0x1000, 1}, {0x2010, 2}};
    write_trace_file(tmpdir, unaligned, 2, MEM, 2, 0);
    expect_load_error("entry 1: page 0x2010 is not a page");
    struct page_record outside[] = {{MEM, 1}};
    write_trace_file(tmpdir, outside, 1, MEM, 2, 0);
    expect_load_error("entry 0: page 0x4000000 is not a page");
    struct page_record backwards[] = {{0x1000, 10}, {0x2000, 20}, {0x3000, 15}};
    write_trace_file(tmpdir, backwards, 3, MEM, 2, 0);
    expect_load_error("entry 2: time goes backwards");
    write_trace_file(tmpdir, backwards, 0, MEM, 2, 0);
    expect_load_error("no pages recorded");
    struct page_record ok[] = {{0x1000, 10}};
    write_trace_file(tmpdir, ok, 1, MEM + 100, 2, 0);
    expect_load_error("not a whole number of pages");
}

/* ---- working set and runs ------------------------------------------------------------------ */

static void test_working_set_and_runs(void **state)
{
    (void)state;
    /* Fault order 5 3 5 4 10 11 12 0: page 5 touched twice (freed, touched again). */
    uint64_t pages[] = {5, 3, 5, 4, 10, 11, 12, 0};
    struct analysis_trace t = make_trace(pages, 8, MEM);
    struct page_set ws;
    assert_int_equal(page_set_from_trace(&t, &ws, NULL), 0);
    uint64_t want[] = {0, 3, 4, 5, 10, 11, 12};
    assert_int_equal(ws.n, 7);
    for (size_t i = 0; i < 7; i++)
        assert_int_equal(ws.pages[i], want[i] * P);
    assert_true(page_set_contains(&ws, 11 * P));
    assert_false(page_set_contains(&ws, 6 * P));

    /* Guest order: {0} {3 4 5} {10 11 12}. */
    struct run_stats g;
    assert_int_equal(runs_guest_order(&ws, &g, NULL), 0);
    assert_int_equal(g.runs, 3);
    assert_int_equal(g.pages, 7);
    assert_int_equal(g.max_len, 3);
    assert_int_equal(g.hist[1], 1);
    assert_int_equal(g.hist[2], 0);
    assert_int_equal(g.hist[3], 2);
    assert_int_equal(g.median_len, 3);
    assert_true(g.mean_len > 7.0 / 3 - 1e-9 && g.mean_len < 7.0 / 3 + 1e-9);

    /* Fault order of first touches 5 3 4 10 11 12 0: {5} {3 4} {10 11 12} {0}. */
    struct run_stats f;
    assert_int_equal(runs_fault_order(&t, &f, NULL), 0);
    assert_int_equal(f.runs, 4);
    assert_int_equal(f.pages, 7);
    assert_int_equal(f.max_len, 3);
    assert_int_equal(f.hist[1], 2);
    assert_int_equal(f.hist[2], 1);
    assert_int_equal(f.hist[3], 1);
    assert_int_equal(f.median_len, 2);
    assert_true(f.mean_len > 1.75 - 1e-9 && f.mean_len < 1.75 + 1e-9);

    /* Descending neighbours are no run for a forward read-ahead. */
    uint64_t down[] = {9, 8, 7};
    struct analysis_trace d = make_trace(down, 3, MEM);
    struct run_stats fd;
    assert_int_equal(runs_fault_order(&d, &fd, NULL), 0);
    assert_int_equal(fd.runs, 3);
    assert_int_equal(fd.max_len, 1);

    run_stats_free(&fd);
    analysis_trace_free(&d);
    run_stats_free(&f);
    run_stats_free(&g);
    page_set_free(&ws);
    analysis_trace_free(&t);
}

/* ---- read-ahead ------------------------------------------------------------------------------ */

static void test_readahead_known_answers(void **state)
{
    (void)state;
    uint64_t pages[] = {100, 101, 200, 116, 84};
    struct analysis_trace t = make_trace(pages, 5, MEM);
    struct readahead_stats ra;
    /* 128 KiB = 32 pages around each miss: 100 reads [84,116) (84, 100, 101 useful), 101 is
     * there, 200 reads [184,216) (1 useful), 116 reads [100,132) of which 16 are new (1
     * useful), 84 is there. */
    assert_int_equal(readahead_simulate(&t, 128 << 10, &ra, NULL), 0);
    assert_int_equal(ra.faults, 5);
    assert_int_equal(ra.reads, 3);
    assert_int_equal(ra.pages_fetched, 80);
    assert_int_equal(ra.pages_useful, 5);
    assert_true(ra.useful_share > 0.0625 - 1e-9 && ra.useful_share < 0.0625 + 1e-9);
    assert_true(ra.faults_saved > 0.4 - 1e-9 && ra.faults_saved < 0.4 + 1e-9);
    /* 8 MiB = 2048 pages: one read of [0, 2048) holds them all. */
    assert_int_equal(readahead_simulate(&t, 8 << 20, &ra, NULL), 0);
    assert_int_equal(ra.reads, 1);
    assert_int_equal(ra.pages_fetched, 2048);
    assert_int_equal(ra.pages_useful, 5);
    analysis_trace_free(&t);

    /* Clamped at the end of guest memory: [16364, 16384). */
    uint64_t top[] = {MEM / P - 4};
    t = make_trace(top, 1, MEM);
    assert_int_equal(readahead_simulate(&t, 128 << 10, &ra, NULL), 0);
    assert_int_equal(ra.pages_fetched, 20);
    analysis_trace_free(&t);

    /* A page touched twice is one fault. */
    uint64_t twice[] = {7, 7};
    t = make_trace(twice, 2, MEM);
    assert_int_equal(readahead_simulate(&t, P, &ra, NULL), 0);
    assert_int_equal(ra.faults, 1);
    assert_int_equal(ra.reads, 1);
    assert_int_equal(ra.pages_fetched, 1);
    assert_int_equal(ra.pages_useful, 1);

    struct thaw_error err = {{0}};
    assert_int_equal(readahead_simulate(&t, 1000, &ra, &err), -1);
    assert_non_null(strstr(err.msg, "not a whole number of pages"));
    assert_int_equal(readahead_simulate(&t, 0, &ra, &err), -1);
    analysis_trace_free(&t);
}

/* ---- timeline and reuse ----------------------------------------------------------------------- */

static void test_timeline(void **state)
{
    (void)state;
    struct analysis_trace t = {.n = 5, .mem_size = MEM};
    struct page_record r[] = {{1 * P, 10}, {2 * P, 20}, {1 * P, 25}, {3 * P, 30}, {4 * P, 40}};
    t.pages = r;
    struct timeline_stats tl;
    timeline_summarise(&t, &tl);
    assert_int_equal(tl.first_ns, 10);
    assert_int_equal(tl.last_ns, 40);
    assert_int_equal(tl.t50_ns, 20); /* 2 of 4 distinct pages */
    assert_int_equal(tl.t90_ns, 40); /* 4 of 4 */
}

static void test_reuse_matrix(void **state)
{
    (void)state;
    uint64_t a[] = {1, 2, 3, 4}, b[] = {3, 4, 5}, c[] = {6, 4};
    struct page_set sets[3] = {make_set(a, 4), make_set(b, 3), make_set(c, 2)};
    struct reuse_stats r;
    assert_int_equal(reuse_compute(sets, 3, &r, NULL), 0);
    assert_int_equal(r.k, 3);
    assert_int_equal(r.union_pages, 6);
    assert_int_equal(r.common, 1);
    assert_int_equal(r.unique[0], 2);
    assert_int_equal(r.unique[1], 1);
    assert_int_equal(r.unique[2], 1);
    double want[9] = {1, 2.0 / 4, 1.0 / 4, 2.0 / 3, 1, 1.0 / 3, 1.0 / 2, 1.0 / 2, 1};
    for (size_t i = 0; i < 9; i++)
        if (r.share[i] < want[i] - 1e-9 || r.share[i] > want[i] + 1e-9)
            fail_msg("share[%zu] = %f, want %f", i, r.share[i], want[i]);
    reuse_stats_free(&r);

    /* One input: everything is common, nothing unique. */
    assert_int_equal(reuse_compute(sets, 1, &r, NULL), 0);
    assert_int_equal(r.common, 4);
    assert_int_equal(r.unique[0], 4);
    reuse_stats_free(&r);
    struct thaw_error err = {{0}};
    assert_int_equal(reuse_compute(sets, 0, &r, &err), -1);
    struct page_set empty = {0};
    assert_int_equal(reuse_compute(&empty, 1, &r, &err), -1);
    assert_non_null(strstr(err.msg, "empty"));
    for (size_t i = 0; i < 3; i++)
        page_set_free(&sets[i]);
}

/* ---- layout ------------------------------------------------------------------------------------ */

struct fake_guest {
    struct thaw_boot_info bi;
    struct thaw_kernel_header kh;
    Elf64_Phdr ph[4];
};

static void fake_guest_init(struct fake_guest *g)
{
    memset(g, 0, sizeof *g);
    g->kh.magic = THAW_KERNEL_MAGIC;
    g->kh.abi_version = THAW_ABI_VERSION;
    g->kh.image_end = 0x180123;
    g->bi.magic = THAW_BOOT_MAGIC;
    g->bi.abi_version = THAW_ABI_VERSION;
    g->bi.mem_size = MEM;
    g->bi.prog_phdr = 0x400040;
    g->bi.prog_phnum = 4;
    g->bi.prog_phent = sizeof(Elf64_Phdr);
    g->bi.archive_base = 0x600000;
    g->bi.archive_size = 0x12345;
    g->bi.free_base = 0x613000;
    g->ph[0] = (Elf64_Phdr){.p_type = PT_LOAD, .p_flags = PF_R, .p_vaddr = 0x400000, .p_memsz = 0x1000};
    g->ph[1] = (Elf64_Phdr){.p_type = PT_LOAD, .p_flags = PF_R | PF_X, .p_vaddr = 0x401000, .p_memsz = 0x10000};
    g->ph[2] = (Elf64_Phdr){.p_type = PT_LOAD, .p_flags = PF_R | PF_W, .p_vaddr = 0x411100, .p_memsz = 0x5000};
    g->ph[3] = (Elf64_Phdr){.p_type = PT_GNU_STACK, .p_flags = PF_R | PF_W};
}

static int write_fake_guest(const struct fake_guest *g)
{
    char path[256];
    snprintf(path, sizeof path, "%s/memory", tmpdir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)MEM), 0);
    assert_int_equal(pwrite(fd, &g->bi, sizeof g->bi, THAW_GPA_BOOT_INFO), sizeof g->bi);
    assert_int_equal(pwrite(fd, &g->kh, sizeof g->kh, THAW_GPA_KERNEL), sizeof g->kh);
    assert_int_equal(pwrite(fd, g->ph, sizeof g->ph, 0x400040), sizeof g->ph);
    return fd;
}

static void test_layout_from_memory(void **state)
{
    (void)state;
    struct fake_guest g;
    fake_guest_init(&g);
    int fd = write_fake_guest(&g);
    close(fd);
    struct guest_layout l;
    struct thaw_error err = {{0}};
    if (guest_layout_from_snapshot(tmpdir, MEM, &l, &err) < 0)
        fail_msg("%s", err.msg);
    struct layout_region want[] = {
        {0, 0x181000, REGION_KERNEL},
        {0x400000, 0x401000, REGION_PROGRAM_DATA},
        {0x401000, 0x411000, REGION_PROGRAM_TEXT},
        {0x411000, 0x417000, REGION_PROGRAM_DATA},
        {0x600000, 0x613000, REGION_FILES},
        {0x613000, 0x615000, REGION_KERNEL}, /* two 1-page bitmaps for 16384 pages */
        {MEM - THAW_STACK_SIZE, MEM, REGION_STACK},
    };
    assert_int_equal(l.n, 7);
    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(l.r[i].start, want[i].start);
        assert_int_equal(l.r[i].end, want[i].end);
        assert_int_equal(l.r[i].kind, want[i].kind);
    }
    assert_int_equal(guest_layout_classify(&l, 0), REGION_KERNEL);
    assert_int_equal(guest_layout_classify(&l, 0x402000), REGION_PROGRAM_TEXT);
    assert_int_equal(guest_layout_classify(&l, 0x500000), REGION_HEAP);
    assert_int_equal(guest_layout_classify(&l, 0x612000), REGION_FILES);
    assert_int_equal(guest_layout_classify(&l, 0x614000), REGION_KERNEL);
    assert_int_equal(guest_layout_classify(&l, 0x615000), REGION_HEAP);
    assert_int_equal(guest_layout_classify(&l, MEM - P), REGION_STACK);

    uint64_t pages[] = {0xa, 0x402, 0x403, 0x500, 0x612, MEM / P - 1, 0x800};
    struct page_set ws = make_set(pages, 7);
    uint64_t counts[REGION_COUNT];
    guest_layout_count(&l, &ws, counts);
    assert_int_equal(counts[REGION_KERNEL], 1);
    assert_int_equal(counts[REGION_PROGRAM_TEXT], 2);
    assert_int_equal(counts[REGION_PROGRAM_DATA], 0);
    assert_int_equal(counts[REGION_FILES], 1);
    assert_int_equal(counts[REGION_HEAP], 2);
    assert_int_equal(counts[REGION_STACK], 1);
    page_set_free(&ws);
    assert_string_equal(region_kind_name(REGION_FILES), "file archive");
}

static void expect_layout_error(const struct fake_guest *g, uint64_t mem_size, const char *want)
{
    int fd = write_fake_guest(g);
    struct guest_layout l;
    struct thaw_error err = {{0}};
    assert_int_equal(guest_layout_from_memory(fd, mem_size, &l, &err), -1);
    close(fd);
    if (!strstr(err.msg, want))
        fail_msg("error '%s' does not say '%s'", err.msg, want);
}

static void test_layout_rejects_nonsense(void **state)
{
    (void)state;
    struct fake_guest g;
    fake_guest_init(&g);
    expect_layout_error(&g, 128ull << 20, "does not describe this snapshot");
    g.bi.magic = 0;
    expect_layout_error(&g, MEM, "does not describe this snapshot");
    fake_guest_init(&g);
    g.kh.image_end = 0x10000000;
    expect_layout_error(&g, MEM, "kernel header");
    fake_guest_init(&g);
    g.bi.prog_phnum = 1000;
    expect_layout_error(&g, MEM, "program headers");
    fake_guest_init(&g);
    g.bi.prog_phdr = MEM - 8;
    expect_layout_error(&g, MEM, "program headers");
    fake_guest_init(&g);
    g.ph[2].p_memsz = ~0ull - 0x1000;
    expect_layout_error(&g, MEM, "program segment 2");
    fake_guest_init(&g);
    g.bi.archive_size = MEM;
    expect_layout_error(&g, MEM, "archive");

    struct guest_layout l = {.mem_size = MEM};
    struct thaw_error err = {{0}};
    assert_int_equal(guest_layout_add(&l, 0x2000, 0x3000, REGION_HEAP, &err), 0);
    assert_int_equal(guest_layout_add(&l, 0x1000, 0x2000, REGION_HEAP, &err), -1);
    assert_int_equal(guest_layout_add(&l, 0x3000, 0x3800, REGION_HEAP, &err), -1);
    assert_int_equal(guest_layout_add(&l, 0x3000, MEM + P, REGION_HEAP, &err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trace_round_trip),
        cmocka_unit_test(test_trace_truncated_and_corrupt),
        cmocka_unit_test(test_trace_semantic_checks),
        cmocka_unit_test(test_working_set_and_runs),
        cmocka_unit_test(test_readahead_known_answers),
        cmocka_unit_test(test_timeline),
        cmocka_unit_test(test_reuse_matrix),
        cmocka_unit_test(test_layout_from_memory),
        cmocka_unit_test(test_layout_rejects_nonsense),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
