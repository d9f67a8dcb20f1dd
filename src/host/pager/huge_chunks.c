#include "host/pager/huge_chunks.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "host/pager/reap.h"
#include "host/util/clock.h"
#include "host/util/file.h"
#include "host/util/snapdir.h"

#define PAGE 4096ull
/* THAW_REAP_HUGE=S: a chunk is taken where at least S of its data pages are in the
 * working set. On session 13's machine (a shadow-MMU exit ~30 us, 1.2 GB/s O_DIRECT)
 * 0.15 made the suite's cold starts 0.871x of 4 KiB installs (ABBA, 0.1 and 0.15 alike
 * but for memtouch); on session 14's (a fresh huge page's fault up to 4.2 ms, first
 * touches ~3 us a page) the same share was 1.20x: hence the default, auto, which weighs
 * each chunk with the host's own costs (docs/benchmarks-topics.md). */
void huge_policy_from_env(struct huge_policy *p)
{
    memset(p, 0, sizeof *p);
    const char *s = getenv("THAW_REAP_HUGE");
    if (!s || !*s || !strcmp(s, "auto")) {
        p->how = HUGE_AUTO;
        (void)reap_costs_load(&p->costs);
        return;
    }
    double v = strtod(s, NULL);
    p->how = v > 0 && v <= 1 ? HUGE_SHARE : HUGE_OFF;
    p->min_share = p->how == HUGE_SHARE ? v : 0;
}

const char *huge_choice_name(enum huge_choice how)
{
    return how == HUGE_AUTO ? "auto" : how == HUGE_SHARE ? "share" : "off";
}

static bool chunk_taken(const struct huge_policy *p, uint64_t ws, uint64_t data)
{
    if (p->how == HUGE_SHARE)
        return (double)ws >= p->min_share * (double)data;
    return p->how == HUGE_AUTO && reap_costs_chunk_pays(&p->costs, ws, data);
}

/* Data pages of the memory file in [off, off + len). */
static uint64_t data_pages_in(int fd, uint64_t off, uint64_t len)
{
    uint64_t n = 0, end = off + len;
    while (off < end) {
        off_t d = lseek(fd, (off_t)off, SEEK_DATA);
        if (d < 0)
            return errno == ENXIO ? n : len / PAGE; /* no SEEK_DATA: all data */
        if ((uint64_t)d >= end)
            break;
        off_t hl = lseek(fd, d, SEEK_HOLE);
        uint64_t e = hl < 0 || (uint64_t)hl > end ? end : (uint64_t)hl;
        n += (e - ((uint64_t)d & ~(PAGE - 1)) + PAGE - 1) / PAGE;
        off = e;
    }
    return n;
}

static uint8_t *chunk_host(const struct fc_region *r, size_t n, uint64_t gpa)
{
    for (size_t i = 0; i < n; i++)
        if (gpa >= r[i].offset && gpa - r[i].offset <= r[i].size && HUGE_CHUNK_BYTES <= r[i].size - (gpa - r[i].offset)) {
            uint64_t host = r[i].base_host_virt_addr + (gpa - r[i].offset);
            return host % HUGE_CHUNK_BYTES ? NULL : (uint8_t *)(uintptr_t)host;
        }
    return NULL;
}

/* A chunk worth its fixed cost (a 2 MiB page zeroed and a read's latency) holds at least
 * this many working-set pages; with fewer, one or two shadow-MMU exits would map them. */
#define HUGE_MIN_WS_PAGES 16u
/* The chunks read at most this many times the working set's pages in all: the densest
 * are taken first. It bounds what a restore reads (memtouch's 16 MiB set sits in a 128
 * MiB arena, 7.9x), which on a shared disk is what the chunks' gain is most exposed to. */
#define HUGE_MAX_AMPLIFICATION 4u

struct cand {
    uint64_t gpa, ws, data;
    uint8_t *host;
};

static int denser_first(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    /* x->ws / x->data against y->ws / y->data, without division */
    uint64_t l = x->ws * y->data, r = y->ws * x->data; /* each at most 512 */
    return l > r ? -1 : l < r ? 1 : x->gpa < y->gpa ? -1 : x->gpa > y->gpa;
}

static int lower_first(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    return x->gpa < y->gpa ? -1 : x->gpa > y->gpa;
}

/* Puts a chunk back as it was before huge_chunks_begin took it: empty and served by
 * the pager. */
static void put_back(int uffd, uint8_t *host)
{
    (void)madvise(host, HUGE_CHUNK_BYTES, MADV_DONTNEED);
    struct uffdio_register reg = {.range = {.start = (uint64_t)(uintptr_t)host, .len = HUGE_CHUNK_BYTES},
                                  .mode = UFFDIO_REGISTER_MODE_MISSING};
    (void)ioctl(uffd, UFFDIO_REGISTER, &reg);
}

#define READ_DEPTH 64u

int huge_chunks_begin(const char *dir, int uffd, const struct fc_region *r, size_t n, uint64_t mem_size,
                      const struct snap_identity *id, const struct huge_policy *policy, unsigned keep,
                      struct huge_chunks *out, struct thaw_error *err)
{
    memset(out, 0, sizeof *out);
    out->fd_direct = out->fd_buffered = -1;
    out->begun = true;
    out->t0 = clock_now_ns();
    const uint64_t full = HUGE_CHUNK_BYTES / PAGE;
    if (policy->how == HUGE_OFF || (policy->how == HUGE_AUTO && !reap_costs_chunk_pays(&policy->costs, full, full)))
        return 0; /* not even a full chunk could pay: not even the index is read */
    uint64_t *idx = NULL, count = 0;
    bool probing = false;
    if (reap_ws_read_index_probing(dir, mem_size, id, keep, &idx, &count, &probing, err) < 0)
        return -1;
    if (probing) {
        free(idx);
        return 0;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/" SNAPDIR_MEMORY, dir);
    out->fd_buffered = file_open_regular(AT_FDCWD, path, O_RDONLY | O_NOFOLLOW, 0, err);
    if (out->fd_buffered < 0) {
        free(idx);
        return -1;
    }
    struct thaw_error derr;
    out->fd_direct = file_open_regular(AT_FDCWD, path, O_RDONLY | O_NOFOLLOW | O_DIRECT, 0, &derr);
    size_t cap = count ? count : 1;
    out->ext = malloc(cap * sizeof *out->ext);
    out->pages = malloc(cap * sizeof *out->pages);
    if (!out->ext || !out->pages) {
        free(idx);
        huge_chunks_free(out);
        return thaw_fail(err, "out of memory");
    }
    int fd = out->fd_direct >= 0 ? out->fd_direct : out->fd_buffered;
    /* The candidates: dense enough, and worth a chunk's fixed cost. */
    struct cand *c = malloc(cap * sizeof *c);
    size_t nc = 0;
    if (!c) {
        free(idx);
        huge_chunks_free(out);
        return thaw_fail(err, "out of memory");
    }
    for (uint64_t i = 0; i < count;) {
        uint64_t gpa = idx[i] & ~(HUGE_CHUNK_BYTES - 1), j = i;
        while (j < count && (idx[j] & ~(HUGE_CHUNK_BYTES - 1)) == gpa)
            j++;
        uint64_t ws = j - i;
        i = j;
        /* The guest maps its first 2 MiB with 4 KiB pages (abi.h): no gain there. */
        if (gpa == 0 || ws < HUGE_MIN_WS_PAGES || gpa + HUGE_CHUNK_BYTES > mem_size)
            continue;
        uint64_t data = data_pages_in(out->fd_buffered, gpa, HUGE_CHUNK_BYTES);
        uint8_t *host = chunk_host(r, n, gpa);
        if (!host || !chunk_taken(policy, ws, data))
            continue;
        c[nc++] = (struct cand){.gpa = gpa, .ws = ws, .data = data, .host = host};
    }
    /* The densest first, while what they read stays within HUGE_MAX_AMPLIFICATION times
     * the working set; then back in address order (huge_chunks_cover searches it). */
    qsort(c, nc, sizeof *c, denser_first);
    uint64_t budget = HUGE_MAX_AMPLIFICATION * count, used = 0;
    size_t keep_n = 0;
    for (size_t k = 0; k < nc; k++)
        if (used + c[k].data <= budget) {
            used += c[k].data;
            c[keep_n++] = c[k];
        }
    qsort(c, keep_n, sizeof *c, lower_first);
    for (size_t k = 0; k < keep_n; k++) {
        /* Out of userfaultfd first: the read's own page faults must not wait for this
         * thread. The read then faults the chunk in as one huge page where the kernel has
         * one (the VMA is advised MADV_HUGEPAGE, the chunk 2 MiB-aligned). */
        struct uffdio_range rg = {.start = (uint64_t)(uintptr_t)c[k].host, .len = HUGE_CHUNK_BYTES};
        if (ioctl(uffd, UFFDIO_UNREGISTER, &rg) < 0)
            continue;
        size_t m = out->n++;
        out->ext[m] = (struct chunk_extent){.fd = fd, .off = c[k].gpa, .len = HUGE_CHUNK_BYTES, .dst = c[k].host};
        out->pages[m] = (struct huge_chunk_pages){.ws = c[k].ws, .data = c[k].data};
        out->ws_pages += c[k].ws;
        out->data_pages += c[k].data;
    }
    free(c);
    free(idx);
    if (out->n == 0)
        return 0;
    struct thaw_error rerr;
    if (chunk_reader_start(&out->cr, out->ext, out->n, out->n < READ_DEPTH ? (unsigned)out->n : READ_DEPTH,
                           &rerr) < 0) {
        for (size_t k = 0; k < out->n; k++) /* (no memory): everything back as it was */
            put_back(uffd, out->ext[k].dst);
        out->n = 0;
        out->ws_pages = out->data_pages = 0;
        return 0;
    }
    out->reading = true;
    return 0;
}

void huge_chunks_end(struct huge_chunks *h, int uffd)
{
    if (!h->reading)
        return;
    uint64_t i;
    struct thaw_error e;
    for (int rc; (rc = chunk_reader_next(&h->cr, &i, &e)) != 0;)
        if (rc < 0 && i < h->n)
            h->pages[i].failed = true;
    chunk_reader_stop(&h->cr);
    h->reading = false;
    size_t k = 0;
    for (size_t j = 0; j < h->n; j++) {
        if (h->pages[j].failed) {
            put_back(uffd, h->ext[j].dst);
            h->ws_pages -= h->pages[j].ws;
            h->data_pages -= h->pages[j].data;
            continue;
        }
        h->ext[k] = h->ext[j];
        h->pages[k++] = h->pages[j];
    }
    h->n = k;
    h->ns = clock_now_ns() - h->t0;
}

void huge_chunks_undo(struct huge_chunks *h, int uffd)
{
    for (size_t k = 0; k < h->n; k++)
        put_back(uffd, h->ext[k].dst);
    h->n = 0;
    h->ws_pages = h->data_pages = 0;
}

bool huge_chunks_cover(const struct huge_chunks *h, uint64_t gpa, uint64_t len)
{
    /* The first chunk that ends after gpa, by binary search. */
    size_t lo = 0, hi = h->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (h->ext[mid].off + HUGE_CHUNK_BYTES <= gpa)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < h->n && h->ext[lo].off < gpa + len;
}

void huge_chunks_free(struct huge_chunks *h)
{
    if (h->reading) /* reads still in flight write into guest memory: wait for them */
        chunk_reader_stop(&h->cr);
    if (h->begun && h->fd_direct >= 0)
        close(h->fd_direct);
    if (h->begun && h->fd_buffered >= 0)
        close(h->fd_buffered);
    free(h->ext);
    free(h->pages);
    memset(h, 0, sizeof *h);
}
