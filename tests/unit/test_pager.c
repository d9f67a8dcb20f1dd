/* The memory manager without KVM: guest memory from memory_backend.c (anonymous,
 * registered with userfaultfd) served by the in-process pager thread (pager.c), and the
 * REAP working-set files (reap.c). The test thread plays the vCPU: it touches guest
 * memory and checks every byte against the snapshot's memory file. */
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
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "host/pager/huge_chunks.h"
#include "host/pager/pager.h"
#include "host/pager/reap.h"
#include "host/util/snap_identity.h"
#include "host/snapshot/memory_backend.h"
#include "host/snapshot/pager_watch.h"
#include "uffd_usable.h"

#define PG 4096ull
#define NPAGES 512ull /* 2 MiB of guest memory */

/* The memory file: data in [0,64), [100,110), pages 140, 145 and 300; every other page
 * is a hole. The 4-page hole 141-144 is short enough to be registered with its
 * neighbours; the others are left to the kernel. */
static const struct {
    uint64_t first, count;
} DATA[] = {{0, 64}, {100, 10}, {140, 1}, {145, 1}, {300, 1}};
#define NDATA (sizeof DATA / sizeof DATA[0])

static char dir[64];
static const struct snap_identity test_id = {.id = {9, 8, 7}, .digest = {6, 5, 4}};

static uint8_t page_byte(uint64_t page, uint64_t i) { return (uint8_t)(page * 13 + 1 + (i % 251)); }

static int is_data(uint64_t page)
{
    for (size_t i = 0; i < NDATA; i++)
        if (page >= DATA[i].first && page < DATA[i].first + DATA[i].count)
            return 1;
    return 0;
}

static uint64_t data_pages(void)
{
    uint64_t n = 0;
    for (size_t i = 0; i < NDATA; i++)
        n += DATA[i].count;
    return n;
}


/* A memory file of npages in d: the pages data(page) says hold data, holes elsewhere,
 * then the identity trailer after the image (snap_identity.h). */
static void write_memory_file(const char *d, uint64_t npages, int (*data)(uint64_t page))
{
    char path[128];
    snprintf(path, sizeof path, "%s/memory", d);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)(npages * PG)), 0);
    static uint8_t buf[PG];
    for (uint64_t p = 0; p < npages; p++) {
        if (!data(p))
            continue;
        for (uint64_t i = 0; i < PG; i++)
            buf[i] = page_byte(p, i);
        assert_int_equal(pwrite(fd, buf, PG, (off_t)(p * PG)), (ssize_t)PG);
    }
    static uint8_t trailer[MEMORY_TRAILER_SIZE];
    memory_trailer_encode(trailer, npages * PG, &test_id);
    assert_int_equal(pwrite(fd, trailer, sizeof trailer, (off_t)(npages * PG)), (ssize_t)sizeof trailer);
    close(fd);
}

static int setup(void **state)
{
    (void)state;
    setenv("THAW_PAGER_BATCH", "1", 1); /* exact counts; the batching test sets its own */
    setenv("THAW_REAP_HUGE", "0", 1);   /* 4 KiB installs; the huge-chunk test sets its own */
    strcpy(dir, "/tmp/thaw-pager-XXXXXX");
    assert_non_null(mkdtemp(dir));
    write_memory_file(dir, NPAGES, is_data);
    return 0;
}

static void rm_ws(void)
{
    const char *names[] = {"ws.pages", "ws.trace", "ws.stale", "ws.gens"};
    char path[128];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
}

static int teardown(void **state)
{
    (void)state;
    rm_ws();
    char path[128];
    snprintf(path, sizeof path, "%s/memory", dir);
    unlink(path);
    rmdir(dir);
    return 0;
}

/* Checks one guest page against a snapshot whose data pages data() names: file bytes,
 * or zero for a hole. */
static void check_page_of(const uint8_t *mem, uint64_t page, int (*data)(uint64_t page))
{
    for (uint64_t i = 0; i < PG; i++) {
        uint8_t want = data(page) ? page_byte(page, i) : 0;
        if (mem[page * PG + i] != want)
            fail_msg("page %llu byte %llu is %u, want %u", (unsigned long long)page, (unsigned long long)i,
                     mem[page * PG + i], want);
    }
}

static void check_page(const uint8_t *mem, uint64_t page) { check_page_of(mem, page, is_data); }

static void check_zero(const uint8_t *mem, uint64_t page)
{
    for (uint64_t i = 0; i < PG; i++)
        if (mem[page * PG + i])
            fail_msg("page %llu byte %llu is %u, want 0", (unsigned long long)page, (unsigned long long)i,
                     mem[page * PG + i]);
}

static void open_backend(struct mem_backend *b, enum mem_mode mode, enum pager_mode pm)
{
    struct thaw_error err = {{0}};
    if (mem_backend_open(b, mode, dir, NPAGES * PG, &test_id, pm, NULL, &err) < 0)
        fail_msg("mem_backend_open: %s", err.msg);
}

static struct pager_stats query(struct mem_backend *b, const char *cmd)
{
    struct pager_stats st;
    struct thaw_error err = {{0}};
    if (mem_backend_pager_query(b, cmd, &st, &err) < 0)
        fail_msg("pager %s: %s", cmd, err.msg);
    return st;
}

/* ---- lazy serving ----------------------------------------------------------------------- */

static void test_lazy_serves_the_file(void **state)
{
    (void)state;
    if (!uffd_usable())
        skip();
    struct mem_backend b;
    open_backend(&b, MEM_UFFD, PAGER_LAZY);
    assert_int_equal(b.ready.prefetch_ok, 0);
    assert_int_equal(b.ready.recording, 0);
    /* Every data page, in a scattered order, then again (no second fault). */
    for (uint64_t k = 0; k < NPAGES; k++) {
        uint64_t p = (k * 37) % NPAGES;
        if (is_data(p))
            check_page(b.host, p);
    }
    for (uint64_t p = 0; p < NPAGES; p++)
        if (is_data(p))
            check_page(b.host, p);
    struct pager_stats st = query(&b, "stats");
    assert_int_equal(st.pages_served, data_pages());
    assert_int_equal(st.faults, data_pages());
    assert_int_equal(st.recorded, 0);
    /* Writes stick. */
    b.host[3 * PG + 7] = 0x5a;
    assert_int_equal(b.host[3 * PG + 7], 0x5a);
    mem_backend_close(&b);
}

static void test_discarded_memory_reads_zero(void **state)
{
    (void)state;
    if (!uffd_usable())
        skip();
    struct mem_backend b;
    open_backend(&b, MEM_UFFD, PAGER_LAZY);
    struct thaw_error err = {{0}};
    /* Touched then discarded, and discarded before any touch: zero either way. */
    check_page(b.host, 10);
    b.host[10 * PG] = 0xee;
    assert_int_equal(mem_backend_discard(&b, 10 * PG, 4 * PG, &err), 0);
    assert_int_equal(mem_backend_discard(&b, 100 * PG, 10 * PG, &err), 0);
    for (uint64_t p = 10; p < 14; p++)
        check_zero(b.host, p);
    for (uint64_t p = 100; p < 110; p++)
        check_zero(b.host, p);
    /* Reused after the discard: ordinary memory, and the neighbours are the file's. */
    memset(b.host + 100 * PG, 0x77, 10 * PG);
    assert_int_equal(b.host[109 * PG + 4095], 0x77);
    check_page(b.host, 9);
    check_page(b.host, 14);
    struct pager_stats st = query(&b, "stats");
    assert_int_equal(st.pages_served, 3); /* pages 10, 9 and 14: nothing discarded reached the pager */
    assert_int_equal(st.zero_pages, 0);
    assert_int_equal(st.removes, 0);
    mem_backend_close(&b);
}

/* Holes of the memory file are the snapshot's zero pages: the kernel serves them, in
 * uffd and in reap, and a recorded working set never holds them. */
static void touch_every_hole(struct mem_backend *b)
{
    for (uint64_t p = 0; p < NPAGES; p++)
        if (!is_data(p) && !(p > 140 && p < 145))
            check_zero(b->host, p);
    for (uint64_t p = 0; p < NPAGES; p++)
        if (!is_data(p) && !(p > 140 && p < 145))
            b->host[p * PG + 99] = 1;
}

static void test_holes_never_reach_the_pager(void **state)
{
    (void)state;
    if (!uffd_usable())
        skip();
    struct mem_backend b;
    open_backend(&b, MEM_UFFD, PAGER_LAZY);
    assert_int_equal(b.registered_ranges, 4); /* [0,64) [100,110) [140,146) [300,301) */
    assert_int_equal(b.registered_bytes, (64 + 10 + 6 + 1) * PG);
    touch_every_hole(&b);
    struct pager_stats st = query(&b, "stats");
    assert_int_equal(st.faults, 0);
    assert_int_equal(st.pages_served + st.zero_pages, 0);
    /* The short hole inside a registered range: served by the pager, as zeros. */
    check_zero(b.host, 142);
    st = query(&b, "stats");
    assert_int_equal(st.faults, 1);
    mem_backend_close(&b);

    rm_ws();
    open_backend(&b, MEM_REAP, PAGER_RECORD);
    touch_every_hole(&b);
    check_page(b.host, 140);
    check_page(b.host, 1);
    st = query(&b, "finish-record");
    assert_int_equal(st.faults, 2);
    assert_int_equal(st.recorded, 2);
    mem_backend_close(&b);
    char path[128];
    struct stat sb;
    snprintf(path, sizeof path, "%s/ws.pages", dir);
    assert_int_equal(stat(path, &sb), 0);
    /* Header, index and block table, then the two pages (one block, compressed or raw). */
    assert_true((uint64_t)sb.st_size >= 3 * 4096 && (uint64_t)sb.st_size <= 4096 + 4096 + 2 * PG);
    uint8_t *f = malloc((size_t)sb.st_size), *pages;
    uint64_t *gpa;
    struct reap_ws_header h;
    struct thaw_error err = {{0}};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(f && fd >= 0);
    assert_int_equal(pread(fd, f, (size_t)sb.st_size, 0), sb.st_size);
    close(fd);
    if (reap_ws_decode(f, (size_t)sb.st_size, NPAGES * PG, &test_id, &h, &pages, &gpa, &err) < 0)
        fail_msg("reap_ws_decode: %s", err.msg);
    assert_int_equal(h.count, 2);
    assert_int_equal(gpa[0], 1 * PG);
    assert_int_equal(gpa[1], 140 * PG);
    free(pages);
    free(gpa);
    free(f);
    rm_ws();
}

/* Miss batching: one trip to the pager installs the faulting page and the ones after it,
 * never past the file's data, never over a page that is already there. */
static void test_misses_are_served_in_batches(void **state)
{
    (void)state;
    if (!uffd_usable())
        skip();
    setenv("THAW_PAGER_BATCH", "16", 1);
    struct mem_backend b;
    open_backend(&b, MEM_UFFD, PAGER_LAZY);
    /* Page 5 first: 5-20 arrive together; then page 0: 0-4, stopping before 5. */
    check_page(b.host, 5);
    struct pager_stats st = query(&b, "stats");
    assert_int_equal(st.served_faults, 1);
    assert_int_equal(st.pages_served, 16);
    check_page(b.host, 0);
    st = query(&b, "stats");
    assert_int_equal(st.served_faults, 2);
    assert_int_equal(st.pages_served, 21);
    /* Every data page in order: 21-36, 37-52, 53-63 (region data ends at the hole), then
     * 100-109, 140, the short hole with the page after it (141-145), 300. */
    for (uint64_t p = 0; p < NPAGES; p++)
        check_page(b.host, p);
    st = query(&b, "stats");
    assert_int_equal(st.served_faults, 2 + 3 + 1 + 1 + 1 + 1); /* 141-145 in one trip */
    assert_int_equal(st.pages_served, data_pages() + 4);
    mem_backend_close(&b);

    /* A fault-heavy scattered walk over a partial working set answers exactly. */
    rm_ws();
    setenv("THAW_PAGER_BATCH", "1", 1);
    open_backend(&b, MEM_REAP, PAGER_RECORD);
    check_page(b.host, 30);
    check_page(b.host, 101);
    query(&b, "finish-record");
    mem_backend_close(&b);
    setenv("THAW_PAGER_BATCH", "16", 1);
    open_backend(&b, MEM_REAP, PAGER_PREFETCH);
    assert_int_equal(b.ready.prefetch_pages, 2);
    for (uint64_t k = 0; k < 4 * NPAGES; k++) {
        uint64_t p = (k * 7919 + 13) % NPAGES;
        check_page(b.host, p);
        if (!is_data(p) && !(p > 140 && p < 145))
            b.host[p * PG + 1] = 0; /* writes to holes, zero kept */
    }
    st = query(&b, "stats");
    assert_true(st.served_faults < st.pages_served);
    assert_int_equal(st.pages_served, data_pages() + 4 - 2);
    mem_backend_close(&b);
    setenv("THAW_PAGER_BATCH", "1", 1);
}

/* Whether page p of the memory file is in the page cache. */
static int file_page_cached(uint64_t p)
{
    char path[128];
    snprintf(path, sizeof path, "%s/memory", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    void *m = mmap(NULL, NPAGES * PG, PROT_READ, MAP_SHARED, fd, 0);
    assert_true(m != MAP_FAILED);
    unsigned char v[NPAGES];
    assert_int_equal(mincore(m, NPAGES * PG, v), 0);
    munmap(m, NPAGES * PG);
    close(fd);
    return v[p] & 1;
}

static void drop_memory_file_cache(void)
{
    char path[128];
    snprintf(path, sizeof path, "%s/memory", dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(fdatasync(fd), 0);
    assert_int_equal(posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED), 0);
    close(fd);
}

/* Recording serves one page per fault (the set stays exact), but reads the window of the
 * memory file around it ahead into the page cache, so that the next faults there need no
 * disk read: page 25 is cached after a fault on page 20 with a 64 KiB window (16-31), and
 * not without read-ahead; the working set holds page 20 alone either way. A prefetching
 * restore's misses do not read ahead. */
static void test_recording_reads_ahead_but_records_exactly(void **state)
{
    (void)state;
    if (!uffd_usable())
        skip();
    for (int ra = 0; ra < 2; ra++) {
        setenv("THAW_PAGER_READAHEAD_KB", ra ? "64" : "0", 1);
        rm_ws();
        drop_memory_file_cache();
        assert_int_equal(file_page_cached(25), 0);
        struct mem_backend b;
        open_backend(&b, MEM_REAP, PAGER_RECORD);
        check_page(b.host, 20);
        /* The read-ahead is asynchronous: give it up to 15 s (a loaded host). */
        for (int i = 0; ra && i < 1500 && !file_page_cached(25); i++)
            usleep(10000);
        assert_int_equal(file_page_cached(25), ra);
        assert_int_equal(file_page_cached(40), 0); /* outside the window */
        struct pager_stats st = query(&b, "finish-record");
        assert_int_equal(st.faults, 1);
        assert_int_equal(st.pages_served, 1);
        assert_int_equal(st.recorded, 1);
        mem_backend_close(&b);
        uint64_t *gpa, n;
        struct thaw_error err = {{0}};
        assert_int_equal(reap_ws_read_index(dir, NPAGES * PG, &test_id, &gpa, &n, &err), 0);
        assert_int_equal(n, 1);
        assert_int_equal(gpa[0], 20 * PG);
        free(gpa);
    }
    /* A miss after a prefetch (page 40, outside the set {20}) does not: a new input's misses
     * are sparse, and reading their windows slowed them down (measured). */
    setenv("THAW_PAGER_READAHEAD_KB", "64", 1);
    drop_memory_file_cache();
    struct mem_backend b;
    open_backend(&b, MEM_REAP, PAGER_PREFETCH);
    assert_int_equal(b.ready.prefetch_ok, 1);
    check_page(b.host, 40);
    usleep(100000);
    assert_int_equal(file_page_cached(45), 0);
    check_page(b.host, 20);
    assert_int_equal(query(&b, "stats").pages_served, 1);
    mem_backend_close(&b);
    unsetenv("THAW_PAGER_READAHEAD_KB");
    rm_ws();
}

/* ---- REAP: record, prefetch, fall back ----------------------------------------------------- */

static const uint64_t TOUCH[] = {50, 3, 4, 5, 300, 101, 102, 7};
#define NTOUCH (sizeof TOUCH / sizeof TOUCH[0])

static void record_working_set(void)
{
    rm_ws();
    struct mem_backend b;
    open_backend(&b, MEM_REAP, PAGER_RECORD);
    assert_int_equal(b.ready.recording, 1);
    for (size_t i = 0; i < NTOUCH; i++)
        check_page(b.host, TOUCH[i]);
    struct pager_stats st = query(&b, "finish-record");
    assert_int_equal(st.recording, 0);
    assert_string_equal(st.record_error, "");
    assert_int_equal(st.recorded, NTOUCH);
    /* Touches after the finish are served but not recorded. */
    check_page(b.host, 60);
    st = query(&b, "stats");
    assert_int_equal(st.recorded, NTOUCH);
    assert_int_equal(st.pages_served, NTOUCH + 1);
    mem_backend_close(&b);
}

static void test_record_writes_the_trace_in_fault_order(void **state)
{
    (void)state;
    if (!uffd_usable())
        skip();
    record_working_set();
    struct page_record *log = NULL;
    size_t n = 0;
    uint64_t mem_size = 0;
    struct thaw_error err = {{0}};
    struct snap_identity got;
    if (reap_read_trace(dir, &log, &n, &mem_size, &got, &err) < 0)
        fail_msg("reap_read_trace: %s", err.msg);
    assert_int_equal(n, NTOUCH);
    assert_int_equal(mem_size, NPAGES * PG);
    assert_true(snap_identity_equal(&got, &test_id)); /* stamped from the memory trailer */
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(log[i].offset, TOUCH[i] * PG);
        if (i)
            assert_true(log[i].t_ns >= log[i - 1].t_ns);
    }
    free(log);
}

static void test_prefetch_installs_the_working_set(void **state)
{
    (void)state;
    if (!uffd_usable())
        skip();
    record_working_set();
    struct mem_backend b;
    open_backend(&b, MEM_REAP, PAGER_PREFETCH);
    assert_int_equal(b.ready.prefetch_ok, 1);
    assert_string_equal(b.ready.prefetch_error, "");
    assert_int_equal(b.ready.recording, 0);
    assert_int_equal(b.ready.prefetch_pages, NTOUCH);
    assert_int_equal(b.ready.prefetch_regions, 5); /* 3-5, 7, 50, 101-102, 300 */
    for (size_t i = 0; i < NTOUCH; i++)
        check_page(b.host, TOUCH[i]);
    struct pager_stats st = query(&b, "stats");
    assert_int_equal(st.faults, 0);
    assert_int_equal(st.pages_served, 0);
    /* A page outside the working set is still served lazily. */
    check_page(b.host, 20);
    st = query(&b, "stats");
    assert_int_equal(st.pages_served, 1);
    mem_backend_close(&b);
}

/* Huge chunks need a snapshot of two: 4 MiB of guest memory whose second chunk holds data
 * in [600, 640). With THAW_REAP_HUGE=0.15 a chunk where the working set holds at least
 * 15% of the data pages, and 16 pages or more, is read whole from the memory file: here
 * the second chunk, 20 of its 40 data pages in the set. (By default the host's measured
 * costs decide instead: test_reap_costs, check_snapshot.py.) Every page of it is
 * right without a pager trip, the data pages the set did not name and the holes too. The
 * first chunk never is (the guest maps it with 4 KiB pages). */
#define HUGE_NPAGES 1024ull
static int huge_is_data(uint64_t pg) { return pg < 8 || (pg >= 600 && pg < 640); }

static void huge_check(const uint8_t *mem, uint64_t pg) { check_page_of(mem, pg, huge_is_data); }

static void huge_open(const char *hdir, struct mem_backend *b, enum pager_mode pm)
{
    struct thaw_error err = {{0}};
    if (mem_backend_open(b, MEM_REAP, hdir, HUGE_NPAGES * PG, &test_id, pm, NULL, &err) < 0)
        fail_msg("mem_backend_open: %s", err.msg);
}

static void test_prefetch_fills_a_dense_chunk_whole(void **state)
{
    (void)state;
    if (!uffd_usable())
        skip();
    char hdir[64], path[128];
    strcpy(hdir, "/tmp/thaw-pager-huge-XXXXXX");
    assert_non_null(mkdtemp(hdir));
    write_memory_file(hdir, HUGE_NPAGES, huge_is_data);

    struct mem_backend b;
    huge_open(hdir, &b, PAGER_RECORD);
    for (uint64_t pg = 2; pg < 6; pg++)
        huge_check(b.host, pg);
    for (uint64_t pg = 600; pg < 620; pg++)
        huge_check(b.host, pg);
    struct pager_stats st = query(&b, "finish-record");
    assert_int_equal(st.recorded, 24);
    mem_backend_close(&b);

    setenv("THAW_REAP_HUGE", "0.15", 1);
    huge_open(hdir, &b, PAGER_PREFETCH);
    setenv("THAW_REAP_HUGE", "0", 1);
    assert_int_equal(b.ready.prefetch_ok, 1);
    assert_int_equal(b.ready.huge_policy, HUGE_SHARE);
    assert_string_equal(b.ready.prefetch_error, "");
    assert_int_equal(b.ready.huge_chunks, 1);
    assert_int_equal(b.ready.huge_ws_pages, 20);
    assert_int_equal(b.ready.huge_data_pages, 40);
    assert_int_equal(b.ready.prefetch_pages, 24);
    for (uint64_t pg = 512; pg < HUGE_NPAGES; pg++)
        huge_check(b.host, pg);
    for (uint64_t pg = 2; pg < 6; pg++)
        huge_check(b.host, pg);
    st = query(&b, "stats");
    assert_int_equal(st.faults, 0);
    assert_int_equal(st.pages_served, 0);
    huge_check(b.host, 7); /* the first chunk's pages outside the set: served lazily */
    st = query(&b, "stats");
    assert_int_equal(st.pages_served, 1);
    mem_backend_close(&b);

    /* A share no chunk reaches: every page by the 4 KiB install, the rest lazily. */
    setenv("THAW_REAP_HUGE", "0.6", 1);
    huge_open(hdir, &b, PAGER_PREFETCH);
    setenv("THAW_REAP_HUGE", "0", 1);
    assert_int_equal(b.ready.huge_chunks, 0);
    assert_int_equal(b.ready.prefetch_pages, 24);
    huge_check(b.host, 630);
    st = query(&b, "stats");
    assert_int_equal(st.pages_served, 1);
    mem_backend_close(&b);

    /* Merging restores with huge chunks (share 0.15): one whose input touches page 6
     * (outside the set) grows it, which opens a probe window; a restore that withholds
     * pages to probe them then takes no chunk (a page inside one could never be seen
     * unused), one that withholds nothing may. */
    setenv("THAW_WS_KEEP", "2", 1);
    setenv("THAW_REAP_HUGE", "0.15", 1);
    uint64_t probing = 0, with_chunks = 0;
    for (int r = 0; r < 6; r++) {
        huge_open(hdir, &b, PAGER_MERGE);
        assert_int_equal(b.ready.prefetch_ok, 1);
        if (b.ready.probe_pages)
            assert_int_equal(b.ready.huge_chunks, 0);
        probing += b.ready.probe_pages > 0;
        with_chunks += b.ready.huge_chunks > 0;
        huge_check(b.host, 6);
        for (uint64_t pg = 600; pg < 620; pg++)
            huge_check(b.host, pg);
        st = query(&b, "finish-record");
        assert_string_equal(st.record_error, "");
        mem_backend_close(&b);
    }
    setenv("THAW_REAP_HUGE", "0", 1);
    unsetenv("THAW_WS_KEEP");
    assert_true(probing > 0);
    assert_true(with_chunks > 0);

    const char *names[] = {"ws.pages", "ws.trace", "ws.gens", "ws.stale", "ws.lock", "memory"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        snprintf(path, sizeof path, "%s/%s", hdir, names[i]);
        unlink(path);
    }
    assert_int_equal(rmdir(hdir), 0);
}

static void corrupt(const char *name, off_t off)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    assert_true(fd >= 0);
    uint8_t c;
    assert_int_equal(pread(fd, &c, 1, off), 1);
    c ^= 0x40;
    assert_int_equal(pwrite(fd, &c, 1, off), 1);
    close(fd);
}

static void test_bad_working_set_falls_back_and_records(void **state)
{
    (void)state;
    if (!uffd_usable())
        skip();
    record_working_set();
    corrupt("ws.pages", 4096 + 3); /* the index */
    struct mem_backend b;
    open_backend(&b, MEM_REAP, PAGER_PREFETCH);
    assert_int_equal(b.ready.prefetch_ok, 0);
    assert_non_null(strstr(b.ready.prefetch_error, "ws.pages"));
    assert_int_equal(b.ready.prefetch_pages, 0);
    assert_int_equal(b.ready.recording, 1); /* records a new working set instead */
    for (size_t i = 0; i < NTOUCH; i++)
        check_page(b.host, TOUCH[i]);
    struct pager_stats st = query(&b, "finish-record");
    assert_int_equal(st.pages_served, NTOUCH);
    assert_int_equal(st.recorded, NTOUCH);
    mem_backend_close(&b);
    /* The new working set is good again. */
    open_backend(&b, MEM_REAP, PAGER_PREFETCH);
    assert_int_equal(b.ready.prefetch_ok, 1);
    assert_int_equal(b.ready.prefetch_pages, NTOUCH);
    mem_backend_close(&b);
    /* No working set at all: lazy, recording. */
    rm_ws();
    open_backend(&b, MEM_REAP, PAGER_PREFETCH);
    assert_int_equal(b.ready.prefetch_ok, 0);
    assert_non_null(strstr(b.ready.prefetch_error, "ws.pages"));
    check_page(b.host, 1);
    mem_backend_close(&b);
}

/* ---- working sets that follow their inputs ------------------------------------------------ */

/* The generation in ws.gens (format 1.0: magic, u16 major, u16 minor, u32 bound CRC, u64
 * count, u64 generation, ...) if it is there and bound to a ws.pages with this CRC and count. */
static int read_gens_file(uint32_t crc, uint64_t count, uint64_t *gen)
{
    char path[128];
    snprintf(path, sizeof path, "%s/ws.gens", dir);
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    uint8_t head[40];
    size_t got = fread(head, 1, sizeof head, f);
    fclose(f);
    uint32_t bound;
    uint64_t n;
    memcpy(&bound, head + 12, 4);
    memcpy(&n, head + 16, 8);
    if (got != sizeof head || memcmp(head, "THAWWGEN", 8) || bound != crc || n != count)
        return 0;
    memcpy(gen, head + 24, 8);
    return 1;
}

/* The pages ws.pages holds (format 3.x index: u64 address, u64 checksum, u32 generation,
 * u32 reserved), as a bitmap over guest pages; *gen receives the header's generation. */
static void read_ws_set(uint8_t in[NPAGES], uint64_t *gen, uint64_t *count)
{
    char path[128];
    snprintf(path, sizeof path, "%s/ws.pages", dir);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static uint8_t head[2 * 4096 + 4096];
    size_t got = fread(head, 1, sizeof head, f);
    fclose(f);
    assert_true(got >= 4096 + 24);
    assert_memory_equal(head, "THAWWSET", 8);
    assert_int_equal(head[8] | head[9] << 8, REAP_FORMAT_MAJOR);
    uint64_t n = 0, g = 0;
    memcpy(&n, head + 24, 8);
    memcpy(&g, head + 104, 8);
    memset(in, 0, NPAGES);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t gpa;
        uint32_t lu;
        memcpy(&gpa, head + 4096 + i * 24, 8);
        memcpy(&lu, head + 4096 + i * 24 + 16, 4);
        assert_true(gpa / PG < NPAGES);
        assert_true(lu <= g);
        in[gpa / PG] = 1;
    }
    /* ws.gens, when bound to this ws.pages (its header CRC), holds the current generation. */
    uint32_t crc;
    memcpy(&crc, head + 100, 4);
    uint64_t gg;
    if (read_gens_file(crc, n, &gg))
        g = gg;
    *gen = g;
    *count = n;
}

/* ws.stat of a file in the snapshot, or st_ino 0 if it is missing. */
static struct stat ws_stat(const char *name)
{
    char path[128];
    struct stat sb;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (stat(path, &sb) < 0)
        memset(&sb, 0, sizeof sb);
    return sb;
}

static int same_file(struct stat a, struct stat b)
{
    return a.st_ino == b.st_ino && a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
}

/* One merging restore whose input touches pages[0..n): every byte checked. */
static struct pager_stats merge_restore(const uint64_t *pages, size_t n)
{
    struct mem_backend b;
    open_backend(&b, MEM_REAP, PAGER_MERGE);
    assert_int_equal(b.ready.prefetch_ok, 1);
    for (size_t i = 0; i < n; i++)
        check_page(b.host, pages[i]);
    struct pager_stats st = query(&b, "finish-record");
    assert_string_equal(st.record_error, "");
    st.probe_pages = b.ready.probe_pages;
    st.huge_chunks = b.ready.huge_chunks;
    mem_backend_close(&b);
    return st;
}

static const uint64_t INPUT_A[] = {3, 4, 5, 50};
static const uint64_t INPUT_B[] = {100, 101, 4};

/* Recorded on input A, restored on input B: the set becomes the union; restores on B
 * alone then probe A's pages and drop the ones B never touches. */
static void test_merged_working_set_follows_inputs(void **state)
{
    (void)state;
    if (!uffd_usable())
        skip();
    setenv("THAW_WS_KEEP", "2", 1);
    rm_ws();
    struct mem_backend b;
    open_backend(&b, MEM_REAP, PAGER_RECORD);
    for (size_t i = 0; i < 4; i++)
        check_page(b.host, INPUT_A[i]);
    query(&b, "finish-record");
    mem_backend_close(&b);
    uint8_t in[NPAGES];
    uint64_t gen, count;
    read_ws_set(in, &gen, &count);
    assert_int_equal(count, 4);
    assert_int_equal(gen, 0);

    /* B: two misses (100, 101) merged; 4 was prefetched. */
    struct pager_stats st = merge_restore(INPUT_B, 3);
    assert_int_equal(st.served_faults, 2);
    assert_int_equal(st.merged, 1);
    assert_int_equal(st.merge_added, 2);
    assert_int_equal(st.merge_dropped, 0);
    read_ws_set(in, &gen, &count);
    assert_int_equal(gen, 1);
    assert_int_equal(count, 6);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(in[INPUT_A[i]], 1);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(in[INPUT_B[i]], 1);

    /* A again: no misses, everything prefetched from the union. */
    st = merge_restore(INPUT_A, 4);
    assert_int_equal(st.served_faults, 0);

    /* B alone from now on: within the probe window (2 * keep generations after the set
     * grew) A's other pages are withheld once each and dropped; 4 and B's stay. Misses
     * are batched, but a probed page is served alone: were 4's batch to bring 5 in, 5
     * would count as used and stay. */
    setenv("THAW_PAGER_BATCH", "16", 1);
    uint64_t probed = 0, dropped = 0;
    for (int r = 0; r < 6; r++) {
        st = merge_restore(INPUT_B, 3);
        probed += st.probe_pages;
        dropped += st.merge_dropped;
        assert_true(st.served_faults <= st.probe_pages); /* only probed pages miss */
    }
    setenv("THAW_PAGER_BATCH", "1", 1);
    assert_true(probed >= 3);
    assert_int_equal(dropped, 3);
    read_ws_set(in, &gen, &count);
    assert_int_equal(count, 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(in[INPUT_B[i]], 1);
    /* Past the window: nothing is withheld, nothing rewritten. */
    uint64_t before = gen;
    st = merge_restore(INPUT_B, 3);
    assert_int_equal(st.probe_pages, 0);
    assert_int_equal(st.served_faults, 0);
    assert_int_equal(st.merged, 0);
    read_ws_set(in, &gen, &count);
    assert_int_equal(gen, before);

    /* A plain prefetch (no lock) never withholds and never writes. */
    open_backend(&b, MEM_REAP, PAGER_PREFETCH);
    assert_int_equal(b.ready.probe_pages, 0);
    check_page(b.host, 50);
    st = query(&b, "finish-record");
    assert_int_equal(st.merged, 0);
    mem_backend_close(&b);
    read_ws_set(in, &gen, &count);
    assert_int_equal(in[50], 0);
    assert_int_equal(gen, before);
    unsetenv("THAW_WS_KEEP");
    rm_ws();
}

/* A probe window costs a rewrite of ws.pages only when pages join or leave the set: a
 * merging restore that only ages pages (or sees probed pages used) writes ws.gens, bound to
 * the unchanged ws.pages; one past the window with nothing new writes nothing; and a
 * damaged ws.gens is ignored (the restore still answers exactly). */
static void test_probe_window_rewrites_only_what_changed(void **state)
{
    (void)state;
    if (!uffd_usable())
        skip();
    setenv("THAW_WS_KEEP", "2", 1);
    rm_ws();
    struct mem_backend b;
    open_backend(&b, MEM_REAP, PAGER_RECORD);
    for (size_t i = 0; i < 4; i++)
        check_page(b.host, INPUT_A[i]);
    query(&b, "finish-record");
    mem_backend_close(&b);
    /* B's misses join: ws.pages is rewritten, generation 1, the window open until 1 + 2 * 2. */
    struct stat p0 = ws_stat("ws.pages");
    struct pager_stats st = merge_restore(INPUT_B, 3);
    assert_int_equal(st.merge_added, 2);
    struct stat p1 = ws_stat("ws.pages");
    assert_false(same_file(p0, p1));
    assert_int_equal(ws_stat("ws.gens").st_ino, 0);
    uint8_t in[NPAGES];
    uint64_t gen, count;
    read_ws_set(in, &gen, &count);
    assert_int_equal(gen, 1);
    assert_int_equal(count, 6);

    /* Restores that touch all six pages in the window: probed pages come back as misses and
     * stay, nothing joins or leaves: ws.pages stays, ws.gens carries the generations. */
    static const uint64_t ALL[] = {3, 4, 5, 50, 100, 101};
    uint64_t probed = 0;
    for (uint64_t want = 2; want <= 4; want++) {
        struct stat g0 = ws_stat("ws.gens");
        st = merge_restore(ALL, 6);
        probed += st.probe_pages;
        assert_int_equal(st.merged, 1);
        assert_int_equal(st.merge_added, 0);
        assert_int_equal(st.merge_dropped, 0);
        assert_true(same_file(p1, ws_stat("ws.pages")));
        assert_false(same_file(g0, ws_stat("ws.gens")));
        read_ws_set(in, &gen, &count);
        assert_int_equal(gen, want);
        assert_int_equal(count, 6);
    }
    assert_true(probed > 0); /* A's pages were old enough to be probed, and seen used */

    /* A damaged ws.gens: ignored (ws.pages's own generations), every page still exact. */
    char path[128];
    snprintf(path, sizeof path, "%s/ws.gens", dir);
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    assert_int_equal(fseek(f, 30, SEEK_SET), 0);
    fputc(0x5a, f);
    fclose(f);
    open_backend(&b, MEM_REAP, PAGER_PREFETCH);
    assert_int_equal(b.ready.prefetch_ok, 1);
    for (size_t i = 0; i < 6; i++)
        check_page(b.host, ALL[i]);
    mem_backend_close(&b);
    struct stat gd = ws_stat("ws.gens");
    st = merge_restore(ALL, 6); /* at ws.pages's generation 1: in the window, writes ws.gens */
    assert_int_equal(st.ws_generation, 2);
    assert_true(same_file(p1, ws_stat("ws.pages")));
    assert_false(same_file(gd, ws_stat("ws.gens")));

    /* Past the window with nothing new: neither file is written. */
    for (int r = 0; r < 4; r++)
        merge_restore(ALL, 6);
    read_ws_set(in, &gen, &count);
    assert_true(gen >= 5);
    struct stat g1 = ws_stat("ws.gens");
    st = merge_restore(ALL, 6);
    assert_int_equal(st.merged, 0);
    assert_int_equal(st.probe_pages, 0);
    assert_true(same_file(p1, ws_stat("ws.pages")));
    assert_true(same_file(g1, ws_stat("ws.gens")));

    /* A page joins again: ws.pages is rewritten with the generations, ws.gens goes. */
    static const uint64_t NEW[] = {300};
    st = merge_restore(NEW, 1);
    assert_int_equal(st.merge_added, 1);
    assert_false(same_file(p1, ws_stat("ws.pages")));
    assert_int_equal(ws_stat("ws.gens").st_ino, 0);
    read_ws_set(in, &gen, &count);
    assert_int_equal(count, 7);
    assert_int_equal(gen, st.ws_generation);
    unsetenv("THAW_WS_KEEP");
    rm_ws();
}

/* A ws.pages of the previous major (3.0: pages stored raw, no block table) is refused with a line that says so, and the
 * restore records a new one. */
static void test_old_working_set_format_is_recorded_again(void **state)
{
    (void)state;
    if (!uffd_usable())
        skip();
    record_working_set();
    char path[128];
    snprintf(path, sizeof path, "%s/ws.pages", dir);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    assert_true(fd >= 0);
    uint8_t three[2] = {3, 0};
    assert_int_equal(pwrite(fd, three, 2, 8), 2);
    close(fd);
    struct mem_backend b;
    open_backend(&b, MEM_REAP, PAGER_MERGE);
    assert_int_equal(b.ready.prefetch_ok, 0);
    assert_non_null(strstr(b.ready.prefetch_error, "format 3.0"));
    assert_non_null(strstr(b.ready.prefetch_error, "older thaw"));
    assert_int_equal(b.ready.recording, 1);
    check_page(b.host, 7);
    query(&b, "finish-record");
    mem_backend_close(&b);
    uint8_t in[NPAGES];
    uint64_t gen, count;
    read_ws_set(in, &gen, &count);
    assert_int_equal(count, 1);
    rm_ws();
}

/* ---- ws.* round trip, straight through reap.c ------------------------------------------------ */

struct region_ctx {
    uint8_t *host;
    uint64_t size;
};

static uint8_t *to_host(void *ctx, uint64_t gpa, uint64_t len)
{
    struct region_ctx *r = ctx;
    return gpa <= r->size && len <= r->size - gpa ? r->host + gpa : NULL;
}

/* ---- a dead pager ------------------------------------------------------------------------- */

struct death {
    char why[512];
    uint64_t at_ns;
};

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void on_death(void *ctx, const char *why)
{
    struct death *d = ctx;
    snprintf(d->why, sizeof d->why, "%s", why);
    d->at_ns = now_ns();
}

/* A pager thread that stops on a read error (here: the memory file shrank) must not
 * leave the faulting thread blocked: the watcher reports "pager died" and releases
 * the fault, promptly. */
static void test_dead_pager_thread_releases_faults(void **state)
{
    (void)state;
    if (!uffd_usable())
        skip();
    struct mem_backend b;
    open_backend(&b, MEM_UFFD, PAGER_LAZY);
    struct death d = {0};
    struct thaw_error err = {{0}};
    assert_int_equal(pager_watch_start(&b, on_death, &d, &err), 0);
    check_page(b.host, 1); /* served normally */
    char path[128];
    snprintf(path, sizeof path, "%s/memory", dir);
    assert_int_equal(truncate(path, 0), 0);
    alarm(30); /* without the watcher this touch blocks for ever */
    uint64_t t0 = now_ns();
    volatile uint8_t v = b.host[3 * PG]; /* a data page never served: the pager fails on it */
    (void)v;
    uint64_t t1 = now_ns();
    alarm(0);
    assert_true(atomic_load(&b.pager_dead));
    if (!strstr(d.why, "pager died: the pager thread stopped: reading page"))
        fail_msg("death reported as \"%s\"", d.why);
    /* Released promptly (milliseconds; generous for a loaded host under ASan). */
    assert_true(t1 - t0 < 5000000000ull);
    assert_true(d.at_ns >= t0 && d.at_ns - t0 < 5000000000ull);
    mem_backend_close(&b);
    /* The next tests get their memory file back. */
    teardown(NULL);
    setup(NULL);
}

static void test_ws_files_round_trip(void **state)
{
    (void)state;
    if (!uffd_usable())
        skip();
    rm_ws();
    /* Duplicates and an out-of-range page: written once, and not at all. */
    struct page_record log[] = {{101 * PG, 5}, {0, 9}, {1 * PG, 12}, {101 * PG, 20}, {2 * PG, 30}, {63 * PG, 31}};
    size_t n = sizeof log / sizeof log[0];
    struct thaw_error err = {{0}};
    if (reap_write(dir, log, n, NPAGES * PG, &test_id, &err) < 0)
        fail_msg("reap_write: %s", err.msg);
    struct page_record *back = NULL;
    size_t nb = 0;
    uint64_t ms = 0;
    assert_int_equal(reap_read_trace(dir, &back, &nb, &ms, NULL, &err), 0);
    assert_int_equal(nb, n);
    assert_memory_equal(back, log, sizeof log);
    free(back);
    /* Prefetch into fresh registered memory: exactly the unique pages, in 3 runs. */
    uint8_t *mem = mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(mem != MAP_FAILED);
    int ufd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    assert_true(ufd >= 0);
    struct uffdio_api api = {.api = UFFD_API};
    assert_int_equal(ioctl(ufd, UFFDIO_API, &api), 0);
    struct uffdio_register reg = {.range = {.start = (uint64_t)(uintptr_t)mem, .len = NPAGES * PG},
                                  .mode = UFFDIO_REGISTER_MODE_MISSING};
    assert_int_equal(ioctl(ufd, UFFDIO_REGISTER, &reg), 0);
    struct region_ctx ctx = {mem, NPAGES * PG};
    struct reap_stats rs;
    /* Another snapshot's identity is refused before anything is installed. */
    struct snap_identity other = test_id;
    other.digest[31] ^= 1;
    assert_int_equal(reap_prefetch_into(dir, ufd, to_host, &ctx, NPAGES * PG, &other, &rs, &err), -1);
    assert_non_null(strstr(err.msg, "another snapshot"));
    assert_int_equal(rs.pages, 0);
    if (reap_prefetch_into(dir, ufd, to_host, &ctx, NPAGES * PG, &test_id, &rs, &err) < 0)
        fail_msg("reap_prefetch_into: %s", err.msg);
    assert_int_equal(rs.pages, 5);
    assert_int_equal(rs.regions, 3); /* 0-2, 63, 101 */
    struct stat sb;
    char wsp[128];
    snprintf(wsp, sizeof wsp, "%s/ws.pages", dir);
    assert_int_equal(stat(wsp, &sb), 0);
    assert_int_equal(rs.bytes, (uint64_t)sb.st_size); /* the whole file, read once */
    /* Installed pages are there without a fault: no handler runs in this test, so a
     * missing page would block; mincore says they are resident. */
    unsigned char vec[NPAGES];
    assert_int_equal(mincore(mem, NPAGES * PG, vec), 0);
    for (uint64_t p = 0; p < NPAGES; p++)
        assert_int_equal(vec[p] & 1, p <= 2 || p == 63 || p == 101);
    check_page(mem, 0);
    check_page(mem, 2);
    check_page(mem, 63);
    check_page(mem, 101);
    /* A mismatched snapshot size is refused. */
    assert_int_equal(reap_prefetch_into(dir, ufd, to_host, &ctx, 2 * NPAGES * PG, &test_id, &rs, &err), -1);
    assert_non_null(strstr(err.msg, "ws.pages"));
    close(ufd);
    munmap(mem, NPAGES * PG);
    /* The stale marker. */
    assert_int_equal(reap_is_stale(dir), 0);
    assert_int_equal(reap_mark_stale(dir, &err), 0);
    assert_int_equal(reap_is_stale(dir), 1);
    reap_clear_stale(dir);
    assert_int_equal(reap_is_stale(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lazy_serves_the_file),
        cmocka_unit_test(test_discarded_memory_reads_zero),
        cmocka_unit_test(test_holes_never_reach_the_pager),
        cmocka_unit_test(test_misses_are_served_in_batches),
        cmocka_unit_test(test_record_writes_the_trace_in_fault_order),
        cmocka_unit_test(test_recording_reads_ahead_but_records_exactly),
        cmocka_unit_test(test_prefetch_installs_the_working_set),
        cmocka_unit_test(test_prefetch_fills_a_dense_chunk_whole),
        cmocka_unit_test(test_bad_working_set_falls_back_and_records),
        cmocka_unit_test(test_ws_files_round_trip),
        cmocka_unit_test(test_dead_pager_thread_releases_faults),
        cmocka_unit_test(test_merged_working_set_follows_inputs),
        cmocka_unit_test(test_probe_window_rewrites_only_what_changed),
        cmocka_unit_test(test_old_working_set_format_is_recorded_again),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
