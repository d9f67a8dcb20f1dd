#include "host/pager/reap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdbool.h>
#include <zlib.h>

#include <xxhash.h>

#include "host/util/atomic_file.h"
#include "host/util/file.h"
#include "host/util/le.h"
#include "host/util/lz4_block.h"
#include "host/util/chunk_read.h"
#include "host/util/clock.h"
#include "host/util/snapdir.h"

#define PAGE 4096u
#define WS_MAGIC "THAWWSET"
#define TRACE_MAGIC "THAWTRCE"
#define WS_MAX_PAGES (1u << 20) /* 4 GiB of guest memory */

/* ws.pages header fields (docs/snapshot-format.md), little-endian in the first block. */
enum {
    WS_H_MAGIC = 0, WS_H_MAJOR = 8, WS_H_MINOR = 10, WS_H_PAGE_SIZE = 12, WS_H_MEM_SIZE = 16, WS_H_COUNT = 24,
    WS_H_INDEX = 32, WS_H_DATA = 40, WS_H_IDENTITY = 48, WS_H_FLAGS = 96, WS_H_CRC = 100, WS_H_GEN = 104,
    WS_H_PROBE = 112, WS_H_BLOCKS = 120, WS_H_BTAB = 128, WS_H_END = 136,
};
_Static_assert(WS_H_END == REAP_WS_HEADER_BYTES, "ws.pages header size");
/* ws.pages index entry fields. */
enum { WS_I_GPA = 0, WS_I_SUM = 8, WS_I_GEN = 16, WS_I_RESERVED = 20 };
/* ws.pages block table entry fields. */
enum { WS_B_OFFSET = 0, WS_B_BYTES = 8, WS_B_PAGES = 12, WS_B_KIND = 14 };
/* ws.gens: the generations of the ws.pages it is bound to (docs/snapshot-format.md). */
#define GENS_MAGIC "THAWWGEN"
enum { GN_H_MAGIC = 0, GN_H_MAJOR = 8, GN_H_MINOR = 10, GN_H_BOUND = 12, GN_H_COUNT = 16, GN_H_GEN = 24,
       GN_H_PROBE = 32, GN_H_END = 40 };
/* ws.trace header fields. */
enum {
    TR_H_MAGIC = 0, TR_H_MAJOR = 8, TR_H_MINOR = 10, TR_H_PAGE_SIZE = 12, TR_H_MEM_SIZE = 16, TR_H_COUNT = 24,
    TR_H_IDENTITY = 32, TR_H_END = 80,
};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

uint64_t reap_page_checksum(const void *page, uint64_t gpa)
{
    return (uint64_t)XXH3_64bits_withSeed(page, PAGE, gpa);
}

/* CRC-32 of the header (with its CRC field taken as zero) followed by the index and the
 * block table (contiguous in the file). */
static uint32_t ws_crc(const uint8_t *head, const uint8_t *index, uint64_t count, uint64_t blocks)
{
    uint8_t h[WS_H_END];
    memcpy(h, head, sizeof h);
    put_le32(h + WS_H_CRC, 0);
    uint32_t crc = (uint32_t)crc32_z(0, h, sizeof h);
    return (uint32_t)crc32_z(crc, index, count * REAP_INDEX_ENTRY + blocks * REAP_BLOCK_ENTRY);
}

/* THAW_WS_COMPRESS=0 writes every block raw (to compare against); anything else, lz4. */
static bool ws_compress(void)
{
    const char *c = getenv("THAW_WS_COMPRESS");
    return !(c && !strcmp(c, "0"));
}

static int write_trace(const char *dir, const struct page_record *log, size_t n, uint64_t mem_size,
                       const struct snap_identity *id, struct thaw_error *err)
{
    size_t tlen = TR_H_END + n * 16 + 4;
    uint8_t *t = calloc(1, tlen);
    if (!t)
        return thaw_fail(err, "out of memory");
    memcpy(t + TR_H_MAGIC, TRACE_MAGIC, 8);
    put_le16(t + TR_H_MAJOR, REAP_TRACE_MAJOR);
    put_le16(t + TR_H_MINOR, REAP_TRACE_MINOR);
    put_le32(t + TR_H_PAGE_SIZE, PAGE);
    put_le64(t + TR_H_MEM_SIZE, mem_size);
    put_le64(t + TR_H_COUNT, n);
    snap_identity_put(t + TR_H_IDENTITY, id);
    for (size_t i = 0; i < n; i++) {
        put_le64(t + TR_H_END + i * 16, log[i].offset);
        put_le64(t + TR_H_END + i * 16 + 8, log[i].t_ns);
    }
    put_le32(t + tlen - 4, (uint32_t)crc32_z(0, t, tlen - 4));
    int rc = write_file_atomic(dir, SNAPDIR_WS_TRACE, t, tlen, err);
    free(t);
    return rc;
}

unsigned reap_keep(void)
{
    const char *k = getenv("THAW_WS_KEEP");
    int v = k ? atoi(k) : 0;
    return v >= 1 && v <= 64 ? (unsigned)v : REAP_KEEP_DEFAULT;
}

int reap_ws_probed(uint64_t gen, uint64_t probe_until, uint32_t last_used, uint64_t gpa, unsigned keep)
{
    if (keep == 0 || gen >= probe_until || last_used > gen || gen - last_used < keep)
        return 0;
    /* Slices of 64 KiB (a miss batch): a withheld group comes back in one pager trip. */
    uint64_t h = (gpa >> 16) * 0x9E3779B97F4A7C15ull;
    return (h >> 32) % keep == gen % keep;
}

void reap_ws_set_free(struct reap_ws_set *s)
{
    free(s->gpa);
    free(s->last_used);
    free(s->withheld);
    memset(s, 0, sizeof *s);
}

/* Writes ws.pages for the u pages gpa[] (ascending, unique, inside guest memory), each
 * last used at generation last_used[i] (NULL: all gen), contents from the memory file. */
static int write_ws(const char *dir, const uint64_t *gpa, const uint32_t *last_used, size_t u, uint64_t mem_size,
                    const struct snap_identity *id, uint64_t gen, uint64_t probe_until, struct thaw_error *err)
{
    if (u == 0 || u > WS_MAX_PAGES)
        return thaw_fail(err, "nothing sensible to write (%zu pages)", u);
    uint64_t blocks = (u + REAP_BLOCK_PAGES - 1) / REAP_BLOCK_PAGES;
    uint64_t btab = PAGE + u * REAP_INDEX_ENTRY;
    uint64_t data_off = align_up(btab + blocks * REAP_BLOCK_ENTRY, PAGE);
    /* Room for every block raw, each after up to a page of alignment padding. */
    size_t cap = data_off + u * PAGE + blocks * PAGE;
    uint8_t *w = aligned_alloc(PAGE, align_up(cap, PAGE));
    uint8_t *pages = malloc(u * PAGE);
    size_t zcap = lz4_block_bound(REAP_BLOCK_PAGES * PAGE);
    uint8_t *z = malloc(zcap);
    char path[4096];
    snprintf(path, sizeof path, "%s/" SNAPDIR_MEMORY, dir);
    struct thaw_error oerr;
    int mfd = file_open_regular(AT_FDCWD, path, O_RDONLY | O_NOFOLLOW, 0, &oerr);
    if (!w || !pages || !z || mfd < 0) {
        free(w);
        free(pages);
        free(z);
        if (mfd >= 0)
            close(mfd);
        return mfd < 0 ? thaw_fail(err, "%s", oerr.msg) : thaw_fail(err, "out of memory");
    }
    memset(w, 0, data_off);
    int rc = 0;
    for (size_t i = 0; i < u && rc == 0; i++) {
        uint8_t *page = pages + i * PAGE;
        if (pread(mfd, page, PAGE, (off_t)gpa[i]) != PAGE)
            rc = thaw_fail_errno(err, "reading page %#llx of %s", (unsigned long long)gpa[i], path);
        uint8_t *e = w + PAGE + i * REAP_INDEX_ENTRY;
        put_le64(e + WS_I_GPA, gpa[i]);
        put_le64(e + WS_I_SUM, reap_page_checksum(page, gpa[i]));
        put_le32(e + WS_I_GEN, last_used ? last_used[i] : (uint32_t)gen);
        put_le32(e + WS_I_RESERVED, 0);
    }
    close(mfd);
    /* The blocks, back to back: an lz4 block where it saves enough, else the pages raw at
     * a page-aligned offset (so that the prefetch installs them straight from its read). */
    bool compress = ws_compress();
    uint64_t pos = data_off;
    for (uint64_t k = 0; k < blocks; k++) {
        uint64_t first = k * REAP_BLOCK_PAGES, np = u - first < REAP_BLOCK_PAGES ? u - first : REAP_BLOCK_PAGES;
        const uint8_t *src = pages + first * PAGE;
        size_t c = compress ? lz4_block_pack(src, np * PAGE, z, zcap) : 0;
        unsigned kind = c ? REAP_BLOCK_LZ4 : REAP_BLOCK_RAW;
        if (c) {
            memcpy(w + pos, z, c);
        } else {
            uint64_t at = align_up(pos, PAGE);
            memset(w + pos, 0, at - pos);
            pos = at;
            c = np * PAGE;
            memcpy(w + pos, src, c);
        }
        uint8_t *e = w + btab + k * REAP_BLOCK_ENTRY;
        put_le64(e + WS_B_OFFSET, pos);
        put_le32(e + WS_B_BYTES, (uint32_t)c);
        put_le16(e + WS_B_PAGES, (uint16_t)np);
        put_le16(e + WS_B_KIND, (uint16_t)kind);
        pos += c;
    }
    size_t total = align_up(pos, PAGE); /* whole pages: the prefetch reads it with O_DIRECT */
    memset(w + pos, 0, total - pos);
    free(pages);
    free(z);
    memcpy(w + WS_H_MAGIC, WS_MAGIC, 8);
    put_le16(w + WS_H_MAJOR, REAP_FORMAT_MAJOR);
    put_le16(w + WS_H_MINOR, REAP_FORMAT_MINOR);
    put_le32(w + WS_H_PAGE_SIZE, PAGE);
    put_le64(w + WS_H_MEM_SIZE, mem_size);
    put_le64(w + WS_H_COUNT, u);
    put_le64(w + WS_H_INDEX, PAGE);
    put_le64(w + WS_H_DATA, data_off);
    snap_identity_put(w + WS_H_IDENTITY, id);
    put_le32(w + WS_H_FLAGS, 0);
    put_le64(w + WS_H_GEN, gen);
    put_le64(w + WS_H_PROBE, probe_until);
    put_le64(w + WS_H_BLOCKS, blocks);
    put_le64(w + WS_H_BTAB, btab);
    put_le32(w + WS_H_CRC, ws_crc(w, w + PAGE, u, blocks));
    if (rc == 0)
        rc = write_file_atomic(dir, SNAPDIR_WS_PAGES, w, total, err);
    free(w);
    return rc;
}

/* A generations file (ws.gens, or rootfs.gens for rootfs.ws) for the set whose header
 * CRC is bound (count pages): a probe window that only ages pages changes no page, so
 * only these few bytes are written. */
int reap_gens_write(const char *dir, const char *name, uint32_t bound, const uint32_t *last_used, uint64_t count,
                    uint64_t gen, uint64_t probe_until, struct thaw_error *err)
{
    size_t len = GN_H_END + count * 4 + 4;
    uint8_t *g = calloc(1, len);
    if (!g)
        return thaw_fail(err, "out of memory");
    memcpy(g + GN_H_MAGIC, GENS_MAGIC, 8);
    put_le16(g + GN_H_MAJOR, REAP_GENS_MAJOR);
    put_le16(g + GN_H_MINOR, REAP_GENS_MINOR);
    put_le32(g + GN_H_BOUND, bound);
    put_le64(g + GN_H_COUNT, count);
    put_le64(g + GN_H_GEN, gen);
    put_le64(g + GN_H_PROBE, probe_until);
    for (uint64_t i = 0; i < count; i++)
        put_le32(g + GN_H_END + i * 4, last_used[i]);
    put_le32(g + len - 4, (uint32_t)crc32_z(0, g, len - 4));
    int rc = write_file_atomic(dir, name, g, len, err);
    free(g);
    return rc;
}

void reap_gens_remove(const char *dir, const char *name)
{
    char path[4096];
    if (snapdir_path(path, sizeof path, dir, name) == 0)
        (void)unlink(path);
}

/* A new ws.pages carries its own generations: a ws.gens left from the old one (bound to
 * it, so ignored anyway) goes. */
static void remove_gens(const char *dir) { reap_gens_remove(dir, SNAPDIR_WS_GENS); }

int reap_gens_decode(const uint8_t *buf, size_t len, uint32_t bound, uint64_t count, uint64_t min_gen,
                     uint32_t *last_used, uint64_t *gen, uint64_t *probe_until, struct thaw_error *err)
{
    if (len < GN_H_END + 4 || memcmp(buf + GN_H_MAGIC, GENS_MAGIC, 8))
        return thaw_fail(err, "bad magic");
    if (get_le16(buf + GN_H_MAJOR) != REAP_GENS_MAJOR)
        return thaw_fail(err, "format %u.%u, this thaw reads %u.x", get_le16(buf + GN_H_MAJOR),
                         get_le16(buf + GN_H_MINOR), REAP_GENS_MAJOR);
    if (get_le64(buf + GN_H_COUNT) != count || len != GN_H_END + count * 4 + 4)
        return thaw_fail(err, "size does not match the working set");
    if (get_le32(buf + len - 4) != (uint32_t)crc32_z(0, buf, len - 4))
        return thaw_fail(err, "checksum mismatch");
    if (get_le32(buf + GN_H_BOUND) != bound)
        return thaw_fail(err, "made for another ws.pages");
    uint64_t g = get_le64(buf + GN_H_GEN);
    if (g < min_gen || g > UINT32_MAX)
        return thaw_fail(err, "generation %llu out of range", (unsigned long long)g);
    for (uint64_t i = 0; i < count; i++)
        if (get_le32(buf + GN_H_END + i * 4) > g)
            return thaw_fail(err, "page %llu used at a later generation", (unsigned long long)i);
    for (uint64_t i = 0; i < count; i++)
        last_used[i] = get_le32(buf + GN_H_END + i * 4);
    *gen = g;
    *probe_until = get_le64(buf + GN_H_PROBE);
    return 0;
}

int reap_gens_read(const char *dir, const char *name, uint32_t bound, uint64_t count, uint64_t min_gen,
                   uint32_t *last_used, uint64_t *gen, uint64_t *probe_until)
{
    char path[4096];
    struct thaw_error err;
    if (snapdir_path(path, sizeof path, dir, name) < 0)
        return 0;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct stat sb;
    size_t want = GN_H_END + count * 4 + 4;
    uint8_t *buf = NULL;
    int ok = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && (uint64_t)sb.st_size == want && (buf = malloc(want)) &&
             pread_full(fd, buf, want, 0) == 0;
    close(fd);
    uint32_t *lu = ok ? malloc((count ? count : 1) * sizeof *lu) : NULL;
    uint64_t g, pu;
    ok = lu && reap_gens_decode(buf, want, bound, count, min_gen, lu, &g, &pu, &err) == 0;
    if (ok) {
        memcpy(last_used, lu, count * sizeof *lu);
        *gen = g;
        *probe_until = pu;
    }
    free(lu);
    free(buf);
    return ok;
}

/* The generations ws.gens gives the set just read from ws.pages (h), if there is one
 * bound to it; otherwise (none, damaged, or from another ws.pages: it only ages pages,
 * so ignoring it costs at most a probe) ws.pages's own stay. Returns 1 if it applied. */
static int read_gens(const char *dir, const struct reap_ws_header *h, uint32_t *last_used, uint64_t *gen,
                     uint64_t *probe_until)
{
    return reap_gens_read(dir, SNAPDIR_WS_GENS, h->crc, h->count, h->generation, last_used, gen, probe_until);
}

int reap_write(const char *dir, const struct page_record *log, size_t n, uint64_t mem_size,
               const struct snap_identity *id, struct thaw_error *err)
{
    if (n == 0 || n > WS_MAX_PAGES)
        return thaw_fail(err, "nothing sensible to record (%zu pages)", n);
    if (write_trace(dir, log, n, mem_size, id, err) < 0)
        return -1;
    /* Working set: unique pages in guest order, contents from the memory file. */
    uint64_t *idx = malloc(n * sizeof *idx);
    if (!idx)
        return thaw_fail(err, "out of memory");
    for (size_t i = 0; i < n; i++)
        idx[i] = log[i].offset;
    qsort(idx, n, sizeof *idx, cmp_u64);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if ((u == 0 || idx[i] != idx[u - 1]) && idx[i] + PAGE <= mem_size)
            idx[u++] = idx[i];
    /* An exact recording opens no probe window (every page in it was touched); a batched
     * one (THAW_RECORD_BATCH=1, as the pager reads it) holds untouched neighbours: probe it. */
    const char *rb = getenv("THAW_RECORD_BATCH");
    uint64_t probe_until = rb && !strcmp(rb, "1") ? 2ull * reap_keep() : 0;
    int rc = write_ws(dir, idx, NULL, u, mem_size, id, 0, probe_until, err);
    free(idx);
    if (rc == 0)
        remove_gens(dir);
    return rc;
}

static int bit(const uint8_t *b, uint64_t i) { return b[i / 8] >> (i % 8) & 1; }

void reap_merge_plan_free(struct reap_merge_plan *m)
{
    free(m->gpa);
    free(m->last_used);
    memset(m, 0, sizeof *m);
}

int reap_merge_plan(const struct reap_ws_set *old, const uint8_t *used, uint64_t pages, unsigned keep,
                    struct reap_merge_plan *m, struct thaw_error *err)
{
    memset(m, 0, sizeof *m);
    m->generation = old->generation;
    m->probe_until = old->probe_until;
    m->n = old->n;
    /* Pages used outside the old set join; withheld pages left unused go. */
    uint8_t *in_old = calloc(pages / 8 + 1, 1);
    if (!in_old)
        return thaw_fail(err, "out of memory");
    uint64_t touched_withheld = 0;
    for (uint64_t i = 0; i < old->n; i++) {
        uint64_t pg = old->gpa[i] / PAGE;
        if (pg >= pages) {
            free(in_old);
            return thaw_fail(err, "working-set page %llu outside the %llu pages merged", (unsigned long long)pg,
                             (unsigned long long)pages);
        }
        in_old[pg / 8] |= (uint8_t)(1u << (pg % 8));
        if (old->withheld && old->withheld[i]) {
            if (bit(used, pg))
                touched_withheld++;
            else
                m->dropped++;
        }
    }
    for (uint64_t pg = 0; pg < pages; pg++)
        if (bit(used, pg) && !bit(in_old, pg))
            m->added++;
    /* Nothing learnt and no probe window to advance through: the files stay. */
    if (m->added == 0 && m->dropped == 0 && touched_withheld == 0 && old->generation >= old->probe_until) {
        free(in_old);
        return 0;
    }
    uint64_t gen = old->generation + 1, n = old->n - m->dropped + m->added;
    m->generation = gen;
    if (m->added == 0 && m->dropped == 0) {
        /* The same pages (in the window, so that generations advance, or with probed pages
         * seen used): only ages change, written apart from the pages (ws.gens). */
        free(in_old);
        m->last_used = malloc((old->n ? old->n : 1) * sizeof *m->last_used);
        if (!m->last_used)
            return thaw_fail(err, "out of memory");
        for (uint64_t i = 0; i < old->n; i++)
            m->last_used[i] = bit(used, old->gpa[i] / PAGE) ? (uint32_t)gen : old->last_used[i];
        m->outcome = REAP_MERGE_GENS;
        return 0;
    }
    m->gpa = malloc((n ? n : 1) * sizeof *m->gpa);
    m->last_used = malloc((n ? n : 1) * sizeof *m->last_used);
    if (!m->gpa || !m->last_used) {
        free(in_old);
        reap_merge_plan_free(m);
        return thaw_fail(err, "out of memory");
    }
    /* Both lists are in page order: one pass over the pages keeps the result sorted. */
    uint64_t k = 0, oi = 0;
    for (uint64_t pg = 0; pg < pages; pg++) {
        int o = bit(in_old, pg), u = bit(used, pg);
        if (!o && !u)
            continue;
        if (o) {
            uint64_t i = oi++;
            if (old->withheld && old->withheld[i] && !u)
                continue; /* probed and unused: dropped */
            m->gpa[k] = pg * PAGE;
            m->last_used[k++] = u ? (uint32_t)gen : old->last_used[i];
        } else {
            m->gpa[k] = pg * PAGE;
            m->last_used[k++] = (uint32_t)gen;
        }
    }
    free(in_old);
    m->n = k;
    m->probe_until = m->added ? gen + 2ull * keep : old->probe_until;
    m->outcome = REAP_MERGE_PAGES;
    return 0;
}

int reap_write_merged(const char *dir, const struct reap_ws_set *old, const uint8_t *used, uint64_t mem_size,
                      const struct snap_identity *id, unsigned keep, struct reap_merge_stats *ms,
                      struct thaw_error *err)
{
    memset(ms, 0, sizeof *ms);
    struct reap_merge_plan m;
    if (reap_merge_plan(old, used, mem_size / PAGE, keep, &m, err) < 0)
        return -1;
    ms->generation = old->generation;
    ms->kept = old->n;
    int rc = 0;
    if (m.outcome == REAP_MERGE_GENS) {
        rc = reap_gens_write(dir, SNAPDIR_WS_GENS, old->crc, m.last_used, old->n, m.generation, m.probe_until, err);
        if (rc == 0) {
            ms->generation = m.generation;
            ms->written = 1;
        }
    } else if (m.outcome == REAP_MERGE_PAGES) {
        /* Nothing left (every page probed and unused): record afresh next time. */
        rc = m.n ? write_ws(dir, m.gpa, m.last_used, m.n, mem_size, id, m.generation, m.probe_until, err)
                 : reap_mark_stale(dir, err);
        if (rc == 0 && m.n)
            remove_gens(dir);
        if (rc == 0) {
            ms->pages_written = m.n > 0;
            ms->added = m.added;
            ms->dropped = m.dropped;
            ms->kept = m.n;
            ms->generation = m.generation;
            ms->written = m.n > 0;
        }
    }
    reap_merge_plan_free(&m);
    return rc;
}


int reap_ws_header_decode(const uint8_t *head, size_t len, uint64_t file_size, uint64_t mem_size,
                          const struct snap_identity *id, struct reap_ws_header *h, struct thaw_error *err)
{
    memset(h, 0, sizeof *h);
    if (len < WS_H_END || memcmp(head + WS_H_MAGIC, WS_MAGIC, 8))
        return thaw_fail(err, "bad magic");
    unsigned major = get_le16(head + WS_H_MAJOR), minor = get_le16(head + WS_H_MINOR);
    if (major != REAP_FORMAT_MAJOR)
        return thaw_fail(err, "working-set format %u.%u, this thaw reads %u.x (from %s thaw: it is recorded again)",
                         major, minor, REAP_FORMAT_MAJOR, major < REAP_FORMAT_MAJOR ? "an older" : "a newer");
    h->page_size = get_le32(head + WS_H_PAGE_SIZE);
    h->mem_size = get_le64(head + WS_H_MEM_SIZE);
    h->count = get_le64(head + WS_H_COUNT);
    h->index_offset = get_le64(head + WS_H_INDEX);
    h->data_offset = get_le64(head + WS_H_DATA);
    snap_identity_get(head + WS_H_IDENTITY, &h->identity);
    h->flags = get_le32(head + WS_H_FLAGS);
    h->crc = get_le32(head + WS_H_CRC);
    h->generation = get_le64(head + WS_H_GEN);
    h->probe_until = get_le64(head + WS_H_PROBE);
    h->blocks = get_le64(head + WS_H_BLOCKS);
    h->block_table = get_le64(head + WS_H_BTAB);
    h->file_size = file_size;
    if (id && !snap_identity_equal(&h->identity, id))
        return thaw_fail(err, "made from another snapshot (identity differs)");
    /* Every product below is bounded first (count by guest memory, blocks by count). */
    if (h->page_size != PAGE || h->mem_size != mem_size || h->count == 0 || h->count > mem_size / PAGE ||
        h->count > WS_MAX_PAGES || h->blocks != (h->count + REAP_BLOCK_PAGES - 1) / REAP_BLOCK_PAGES ||
        h->index_offset != PAGE || h->block_table != PAGE + h->count * REAP_INDEX_ENTRY ||
        h->data_offset != align_up(h->block_table + h->blocks * REAP_BLOCK_ENTRY, PAGE) ||
        file_size % PAGE || h->data_offset >= file_size ||
        file_size - h->data_offset > (h->count + h->blocks) * PAGE)
        return thaw_fail(err, "header sizes do not match the file or the snapshot");
    if (h->generation > UINT32_MAX)
        return thaw_fail(err, "generation %llu out of range", (unsigned long long)h->generation);
    if (minor == REAP_FORMAT_MINOR && h->flags != 0)
        return thaw_fail(err, "unknown flags %#x", h->flags);
    return 0;
}

int reap_ws_index_check(const uint8_t *head, const struct reap_ws_header *h, const uint8_t *index,
                        struct thaw_error *err)
{
    if (ws_crc(head, index, h->count, h->blocks) != h->crc)
        return thaw_fail(err, "checksum mismatch");
    uint64_t prev = 0;
    for (uint64_t i = 0; i < h->count; i++) {
        const uint8_t *e = index + i * REAP_INDEX_ENTRY;
        uint64_t gpa = get_le64(e + WS_I_GPA);
        if (gpa % PAGE || gpa >= h->mem_size || (i && gpa <= prev) || get_le32(e + WS_I_GEN) > h->generation ||
            get_le32(e + WS_I_RESERVED) != 0)
            return thaw_fail(err, "index entry %llu is invalid", (unsigned long long)i);
        prev = gpa;
    }
    /* The blocks: in file order, covering the pages in index order, inside the file. */
    uint64_t end = h->data_offset, first = 0;
    for (uint64_t k = 0; k < h->blocks; k++) {
        const uint8_t *e = index + h->count * REAP_INDEX_ENTRY + k * REAP_BLOCK_ENTRY;
        uint64_t off = get_le64(e + WS_B_OFFSET);
        uint32_t bytes = get_le32(e + WS_B_BYTES);
        unsigned pages = get_le16(e + WS_B_PAGES), kind = get_le16(e + WS_B_KIND);
        /* Every block but the last holds REAP_BLOCK_PAGES pages: block k starts at page k * 64. */
        bool full = pages == REAP_BLOCK_PAGES || (k + 1 == h->blocks && pages >= 1 && pages < REAP_BLOCK_PAGES);
        bool ok = full && pages <= h->count - first && off >= end &&
                  off <= h->file_size && bytes <= h->file_size - off && bytes > 0;
        if (ok && kind == REAP_BLOCK_RAW)
            ok = off % PAGE == 0 && bytes == pages * PAGE;
        else if (ok)
            ok = kind == REAP_BLOCK_LZ4 && bytes < pages * PAGE;
        if (!ok)
            return thaw_fail(err, "block %llu is invalid (offset %llu, %u bytes, %u pages, kind %u)",
                             (unsigned long long)k, (unsigned long long)off, bytes, pages, kind);
        end = off + bytes;
        first += pages;
    }
    if (first != h->count)
        return thaw_fail(err, "the blocks hold %llu pages, the index %llu", (unsigned long long)first,
                         (unsigned long long)h->count);
    if (align_up(end, PAGE) != h->file_size)
        return thaw_fail(err, "the blocks end at %llu, the file at %llu", (unsigned long long)end,
                         (unsigned long long)h->file_size);
    return 0;
}

void reap_ws_block_at(const uint8_t *index, const struct reap_ws_header *h, uint64_t k, struct reap_ws_block *b)
{
    const uint8_t *e = index + h->count * REAP_INDEX_ENTRY + k * REAP_BLOCK_ENTRY;
    *b = (struct reap_ws_block){.offset = get_le64(e + WS_B_OFFSET), .bytes = get_le32(e + WS_B_BYTES),
                                .pages = get_le16(e + WS_B_PAGES), .first = k * REAP_BLOCK_PAGES,
                                .kind = get_le16(e + WS_B_KIND)};
}

int reap_ws_block_decode(const uint8_t *src, const struct reap_ws_block *b, uint8_t *dst, struct thaw_error *err)
{
    if (b->kind == REAP_BLOCK_RAW) {
        if (b->bytes != b->pages * PAGE)
            return thaw_fail(err, "raw block of %u bytes for %u pages", b->bytes, b->pages);
        memcpy(dst, src, b->bytes);
        return 0;
    }
    if (b->kind != REAP_BLOCK_LZ4)
        return thaw_fail(err, "block kind %u", b->kind);
    return lz4_block_unpack(src, b->bytes, dst, (size_t)b->pages * PAGE, err);
}

int reap_ws_decode(const uint8_t *file, size_t len, uint64_t mem_size, const struct snap_identity *id,
                   struct reap_ws_header *h, uint8_t **pages, uint64_t **gpa, struct thaw_error *err)
{
    *pages = NULL;
    *gpa = NULL;
    if (len < PAGE)
        return thaw_fail(err, "truncated");
    if (reap_ws_header_decode(file, len, len, mem_size, id, h, err) < 0 ||
        reap_ws_index_check(file, h, file + PAGE, err) < 0)
        return -1;
    uint8_t *out = malloc(h->count * PAGE);
    uint64_t *g = malloc(h->count * sizeof *g);
    if (!out || !g) {
        free(out);
        free(g);
        return thaw_fail(err, "out of memory");
    }
    struct thaw_error why;
    for (uint64_t k = 0; k < h->blocks; k++) {
        struct reap_ws_block b;
        reap_ws_block_at(file + PAGE, h, k, &b);
        if (reap_ws_block_decode(file + b.offset, &b, out + b.first * PAGE, &why) < 0) {
            free(out);
            free(g);
            return thaw_fail(err, "block %llu: %s", (unsigned long long)k, why.msg);
        }
    }
    for (uint64_t i = 0; i < h->count; i++) {
        const uint8_t *e = file + PAGE + i * REAP_INDEX_ENTRY;
        g[i] = get_le64(e + WS_I_GPA);
        if (reap_page_checksum(out + i * PAGE, g[i]) != get_le64(e + WS_I_SUM)) {
            thaw_fail(err, "page %llu (guest %#llx) fails its checksum", (unsigned long long)i,
                      (unsigned long long)g[i]);
            free(out);
            free(g);
            return -1;
        }
    }
    *pages = out;
    *gpa = g;
    return 0;
}

/* Checks header and index in buf (the file's first data_offset bytes at least) and
 * decodes the index into in->idx/in->sum. */
static int check_head(const char *path, const uint8_t *buf, uint64_t file_size, uint64_t mem_size,
                      const struct snap_identity *id, struct reap_ws_header *h, struct thaw_error *err)
{
    struct thaw_error why;
    if (reap_ws_header_decode(buf, PAGE, file_size, mem_size, id, h, &why) < 0)
        return thaw_fail(err, "%s: %s", path, why.msg);
    return 0;
}

struct installer {
    int uffd;
    uint8_t *(*gpa_to_host)(void *ctx, uint64_t gpa, uint64_t len);
    void *ctx;
    const char *path;
    uint64_t *idx;  /* guest addresses, decoded from the index */
    uint64_t *sum;  /* page checksums */
    uint32_t *last_used;
    uint8_t *withheld; /* pages a merging restore probes: not installed */
    uint64_t count, generation, probe_until;
    uint32_t crc;   /* ws.pages's header CRC (what ws.gens binds to) */
    unsigned keep;  /* 0: install everything */
    const char *dir; /* the snapshot: for ws.gens when merging, else NULL */
    bool move;      /* UFFDIO_MOVE the read buffer's pages (REAP_PREFETCH_MOVE) */
    bool moved;     /* a move worked: a later refusal is about its run, not the descriptor */
    struct reap_stats *st;
};

/* Decodes the index (already checked) and chooses the probed pages. */
static int decode_index(struct installer *in, const uint8_t *index, const struct reap_ws_header *h,
                        struct thaw_error *err)
{
    uint64_t count = h->count;
    in->idx = malloc(count * sizeof *in->idx);
    in->sum = malloc(count * sizeof *in->sum);
    in->last_used = malloc(count * sizeof *in->last_used);
    in->withheld = calloc(count, 1);
    if (!in->idx || !in->sum || !in->last_used || !in->withheld)
        return thaw_fail(err, "out of memory");
    in->count = count;
    in->generation = h->generation;
    in->probe_until = h->probe_until;
    in->crc = h->crc;
    for (uint64_t i = 0; i < count; i++) {
        const uint8_t *e = index + i * REAP_INDEX_ENTRY;
        in->idx[i] = get_le64(e + WS_I_GPA);
        in->sum[i] = get_le64(e + WS_I_SUM);
        in->last_used[i] = get_le32(e + WS_I_GEN);
    }
    /* A merging restore ages pages: the generations ws.gens holds for this ws.pages, if any. */
    if (in->dir)
        (void)read_gens(in->dir, h, in->last_used, &in->generation, &in->probe_until);
    for (uint64_t i = 0; i < count; i++) {
        in->withheld[i] =
            (uint8_t)reap_ws_probed(in->generation, in->probe_until, in->last_used[i], in->idx[i], in->keep);
        in->st->withheld += in->withheld[i];
    }
    return 0;
}

/* UFFDIO_MOVE (Linux 6.8; Debian 12's headers predate it). */
#ifndef UFFDIO_MOVE
struct uffdio_move {
    uint64_t dst, src, len, mode;
    int64_t move;
};
#define UFFDIO_MOVE_MODE_DONTWAKE ((uint64_t)1 << 0)
#define UFFDIO_MOVE _IOWR(UFFDIO, 0x05, struct uffdio_move)
#endif

/* Moves a run's pages from the read buffer into guest memory: no page is allocated nor
 * copied (the read filled them), only page-table entries change, which on this nested
 * host is 5-20x cheaper per page than UFFDIO_COPY (docs/benchmarks.md). 0 if the whole
 * run went in; otherwise c is advanced past what did, for UFFDIO_COPY to finish (and
 * moving stops for good if the descriptor cannot move at all). */
static int move_run(struct installer *in, struct uffdio_copy *c)
{
    struct uffdio_move m = {.dst = c->dst, .src = c->src, .len = c->len, .mode = UFFDIO_MOVE_MODE_DONTWAKE};
    for (;;) {
        if (ioctl(in->uffd, UFFDIO_MOVE, &m) == 0) {
            in->moved = true;
            return 0;
        }
        int e = errno;
        uint64_t done = m.move > 0 ? (uint64_t)m.move : 0;
        m.dst += done;
        m.src += done;
        m.len -= done;
        m.move = 0;
        if (e == EAGAIN && done > 0 && m.len > 0)
            continue;
        if (done)
            in->moved = true;
        else if (e == EINVAL && !in->moved)
            in->move = false; /* not negotiated (or not this kind of memory): copy from now on */
        c->dst = m.dst;
        c->src = m.src;
        c->len = m.len;
        return m.len ? -1 : 0;
    }
}

/* Installs working-set pages [first, last), whose contents start at data, with one
 * UFFDIO_COPY per contiguous guest run and without waking anyone: the vCPU has not
 * run yet. */
static int install(struct installer *in, uint64_t first, uint64_t last, const uint8_t *data,
                   struct thaw_error *err)
{
    const uint64_t *idx = in->idx;
    /* Every page is checked before any of its run is installed: a damaged working set
     * never reaches the guest. (THAW_BENCH_NO_PAGE_CHECKS is only for the build
     * bench/reap_checksum.py compares against; no shipped build defines it.) */
#ifndef THAW_BENCH_NO_PAGE_CHECKS
    for (uint64_t i = first; i < last; i++)
        if (reap_page_checksum(data + (i - first) * PAGE, idx[i]) != in->sum[i])
            return thaw_fail(err, "%s: page %llu (guest %#llx) fails its checksum", in->path, (unsigned long long)i,
                             (unsigned long long)idx[i]);
#endif
    for (uint64_t i = first; i < last;) {
        if (in->withheld[i]) { /* probed: left to fault in (or not) */
            i++;
            continue;
        }
        uint64_t j = i + 1;
        while (j < last && idx[j] == idx[j - 1] + PAGE && !in->withheld[j])
            j++;
        uint8_t *dst = in->gpa_to_host(in->ctx, idx[i], (j - i) * PAGE);
        if (!dst && j - i > 1) {
            /* The run crosses a mapping boundary: install it page by page. */
            j = i + 1;
            dst = in->gpa_to_host(in->ctx, idx[i], PAGE);
        }
        if (!dst) { /* not mapped by the receiver: nothing to install */
            i = j;
            continue;
        }
        struct uffdio_copy c = {.dst = (uint64_t)(uintptr_t)dst,
                                .src = (uint64_t)(uintptr_t)(data + (i - first) * PAGE),
                                .len = (j - i) * PAGE, .mode = UFFDIO_COPY_MODE_DONTWAKE};
        if (in->move && move_run(in, &c) == 0) {
            in->st->regions++;
            in->st->pages += j - i;
            in->st->moved += j - i;
            i = j;
            continue;
        }
        while (ioctl(in->uffd, UFFDIO_COPY, &c) < 0) {
            if (errno == EAGAIN && c.copy > 0) { /* partial copy: continue after it */
                c.dst += (uint64_t)c.copy;
                c.src += (uint64_t)c.copy;
                c.len -= (uint64_t)c.copy;
                c.copy = 0;
                continue;
            }
            if (errno == EEXIST)
                break;
            if (errno == ENOENT && j - i > 1) {
                /* Part of the run is not registered (a hole of the memory file, zero in the
                 * snapshot, left to the kernel): install it page by page. */
                j = i + 1;
                c = (struct uffdio_copy){.dst = (uint64_t)(uintptr_t)dst,
                                         .src = (uint64_t)(uintptr_t)(data + (i - first) * PAGE),
                                         .len = PAGE, .mode = UFFDIO_COPY_MODE_DONTWAKE};
                continue;
            }
            if (errno == ENOENT) { /* this page is not registered: the kernel serves it */
                c.len = 0;
                break;
            }
            return thaw_fail_errno(err, "UFFDIO_COPY of %llu pages at %#llx", (unsigned long long)(j - i),
                                   (unsigned long long)idx[i]);
        }
        if (c.len) {
            in->st->regions++;
            in->st->pages += j - i;
        }
        i = j;
    }
    return 0;
}

/* ---- the prefetch read -------------------------------------------------------------
 * The whole of ws.pages as 2 MiB O_DIRECT reads all queued at once on an io_uring
 * (reap_ws_read_begin), so that the disk works while the caller does anything else (a
 * restore begins it before it sets up memory and the VM); the prefetch then installs the
 * pages as the reads land, in file order: the header, index and block table once the
 * first bytes are in, a raw block page by page as its bytes land (straight from the
 * read's buffer), an lz4 block once all its bytes are in (blocks straddle read chunks: a
 * block waits for the chunk its last byte is in), decompressed in place into the pages
 * below and over its own consumed bytes (place_output), so that the install of chunk k
 * overlaps the read of k+1. No header read comes first: the file's size is all that is
 * needed to issue everything. THAW_REAP_READ=single issues the file as one read instead
 * (to compare). */
#define CHUNK_BYTES (2u << 20)
#define RING_DEPTH 32u

struct reap_ws_read {
    char dir[4096], path[4096];
    int fd;
    uint64_t size, chunk, chunks;
    uint8_t *buf;
    uint8_t *area;    /* the mapping buf lies at the top of (reserve bytes below it, then the file) */
    uint64_t reserve;
    uint8_t *out;     /* decompressed pages: page i of the index at out + i * 4096 (in area or staging) */
    uint8_t *staging; /* its own mapping, when the pages do not fit in area */
    uint64_t staging_len;
    uint8_t *meta;    /* a copy of the index and block table (decoding in place overwrites buf's) */
    struct chunk_extent *ext; /* the chunks, one read each */
    struct chunk_reader cr;   /* zeroed until started (chunk_reader_stop takes either) */
    uint64_t t0;       /* when the first read was issued */
    uint64_t read_end; /* when all of it was first seen in (0: not yet) */
};

int reap_ws_read_begin(const char *dir, struct reap_ws_read **out, struct thaw_error *err)
{
    *out = NULL;
    struct reap_ws_read *r = calloc(1, sizeof *r);
    if (!r)
        return thaw_fail(err, "out of memory");
    snprintf(r->dir, sizeof r->dir, "%s", dir);
    snprintf(r->path, sizeof r->path, "%s/" SNAPDIR_WS_PAGES, dir);
    /* O_DIRECT: large reads straight from the disk, no page-cache copy. */
    r->fd = file_open_regular(AT_FDCWD, r->path, O_RDONLY | O_NOFOLLOW, 0, err);
    if (r->fd < 0) {
        free(r);
        return -1;
    }
    int fl = fcntl(r->fd, F_GETFL); /* O_DIRECT only once it is known to be a regular file */
    struct stat sb;
    if (fl < 0 || fcntl(r->fd, F_SETFL, fl | O_DIRECT) < 0) {
        thaw_fail_errno(err, "cannot use O_DIRECT on %s", r->path);
        goto fail;
    }
    if (fstat(r->fd, &sb) < 0 || sb.st_size < (off_t)PAGE || sb.st_size % PAGE ||
        (uint64_t)sb.st_size > (uint64_t)WS_MAX_PAGES * (2 * PAGE + REAP_INDEX_ENTRY + REAP_BLOCK_ENTRY) + 2 * PAGE) {
        thaw_fail(err, "%s: size %lld is not a whole number of pages", r->path, (long long)sb.st_size);
        goto fail;
    }
    r->size = (uint64_t)sb.st_size;
    const char *how = getenv("THAW_REAP_READ");
    r->chunk = how && !strcmp(how, "single") ? r->size : CHUNK_BYTES;
    r->chunks = (r->size + r->chunk - 1) / r->chunk;
    /* Its own mapping, not the heap: UFFDIO_MOVE takes its pages away. The file is read
     * into the top of a larger reservation (address space only, never touched unless used),
     * so that lz4 blocks decode in place below and over their own consumed bytes: the
     * pages the read brought in are reused for the decompressed pages instead of as many
     * fresh ones (a first touch costs ~2.5 us a page on this nested host). */
    uint64_t cap = (uint64_t)WS_MAX_PAGES * PAGE;
    const char *inplace = getenv("THAW_REAP_INPLACE"); /* 0: a separate staging mapping (tests, A/B) */
    r->reserve = inplace && !strcmp(inplace, "0") ? 0 : r->size < cap / 64 ? 64 * r->size : cap;
    r->area = mmap(NULL, r->reserve + r->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (r->area == MAP_FAILED) { /* (an address-space limit): no room to decode in place */
        r->reserve = 0;
        r->area = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    }
    if (r->area == MAP_FAILED)
        r->area = NULL;
    r->buf = r->area ? r->area + r->reserve : NULL;
    r->ext = calloc(r->chunks, sizeof *r->ext);
    if (!r->buf || !r->ext) {
        thaw_fail(err, "out of memory");
        goto fail;
    }
    for (uint64_t c = 0; c < r->chunks; c++) {
        uint64_t off = c * r->chunk;
        r->ext[c] = (struct chunk_extent){.fd = r->fd, .off = off, .dst = r->buf + off,
                                          .len = r->size - off < r->chunk ? r->size - off : r->chunk};
    }
    r->t0 = clock_now_ns();
    if (chunk_reader_start(&r->cr, r->ext, r->chunks, RING_DEPTH, err) < 0)
        goto fail;
    *out = r;
    return 0;
fail:
    reap_ws_read_free(r);
    return -1;
}

void reap_ws_read_free(struct reap_ws_read *r)
{
    if (!r)
        return;
    chunk_reader_stop(&r->cr); /* reads still in flight write into buf: they are waited for */
    if (r->fd >= 0)
        close(r->fd);
    if (r->area)
        munmap(r->area, r->reserve + r->size);
    if (r->staging)
        munmap(r->staging, r->staging_len);
    free(r->meta);
    free(r->ext);
    free(r);
}

/* Where the decompressed pages go, once the header and block table are in: in place, so
 * that block k's pages end at least a page (more than lz4's in-place margin, 32 bytes +
 * 1/256 of a block) before its stored bytes end. Stored blocks are never larger than their
 * pages, so if the last block's pages end a page before the data's end, every earlier
 * block's do before its own: out = data end - all pages - a page, rounded down to a page.
 * Without that room below buf, a separate staging mapping. The index and block table are
 * copied first (decoding may write over them). */
static int place_output(struct reap_ws_read *r, const struct reap_ws_header *h)
{
    uint64_t meta_len = h->count * REAP_INDEX_ENTRY + h->blocks * REAP_BLOCK_ENTRY;
    if (!(r->meta = malloc(meta_len)))
        return -1;
    memcpy(r->meta, r->buf + PAGE, meta_len);
    struct reap_ws_block last;
    reap_ws_block_at(r->meta, h, h->blocks - 1, &last);
    uint64_t end = r->reserve + last.offset + last.bytes, need = h->count * PAGE + PAGE; /* in area */
    if (end >= need) {
        r->out = r->area + (end - need) / PAGE * PAGE;
        return 0;
    }
    /* Populated at once: ~20% cheaper here than a first touch per page. */
    r->staging_len = h->count * PAGE;
    r->staging = mmap(NULL, r->staging_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    if (r->staging == MAP_FAILED) {
        r->staging = NULL;
        return -1;
    }
    r->out = r->staging;
    return 0;
}

/* Times the read's end: looked at between blocks, so that a read landing during an
 * install is seen within a block's install of landing, not after the whole chunk's. */
static void note_landing(struct reap_ws_read *r)
{
    if (!r->read_end && chunk_reader_all_in(&r->cr))
        r->read_end = clock_now_ns();
}

/* Decodes and installs what has landed (the first prefix bytes of the file) from block
 * *next on, of which *done pages are in already: an lz4 block once all its bytes are in,
 * a raw block page by page as its bytes are. Consecutive blocks whose pages lie back to
 * back (raw blocks adjacent in the file, lz4 blocks in the staging memory) go in as one
 * span. */
static int install_landed(struct reap_ws_read *r, const struct reap_ws_header *h, struct installer *in,
                          uint64_t prefix, uint64_t *next, uint64_t *done, struct thaw_error *err)
{
    const uint8_t *index = r->meta, *span = NULL;
    uint64_t span_first = 0, span_pages = 0;
    bool span_raw = false; /* the span holds pages installed from buf (a raw block's bytes) */
    struct thaw_error why;
    for (; *next < h->blocks; (*next)++, *done = 0) {
        note_landing(r);
        struct reap_ws_block b;
        reap_ws_block_at(index, h, *next, &b);
        if (b.kind == REAP_BLOCK_RAW && b.offset + b.bytes > prefix) {
            uint64_t whole = prefix > b.offset ? (prefix - b.offset) / PAGE : 0;
            if (whole > *done) { /* the pages of a raw block that are in */
                const uint8_t *src = r->buf + b.offset + *done * PAGE;
                if (!(span && span + span_pages * PAGE == src && span_first + span_pages == b.first + *done)) {
                    if (span && install(in, span_first, span_first + span_pages, span, err) < 0)
                        return -1;
                    span = src;
                    span_first = b.first + *done;
                    span_pages = 0;
                }
                span_raw = true;
                span_pages += whole - *done;
                *done = whole;
            }
            break;
        }
        if (b.offset + b.bytes > prefix)
            break;
        const uint8_t *src = r->buf + b.offset + *done * PAGE;
        b.first += *done; /* (only a raw block can be partly in) */
        b.pages -= (uint32_t)*done;
        if (b.kind == REAP_BLOCK_LZ4) {
            /* Decoding in place may write over what the pending span installs from (a
             * raw block's bytes in buf): that goes in first. */
            if (span && span_raw && r->out != r->staging) {
                if (install(in, span_first, span_first + span_pages, span, err) < 0)
                    return -1;
                span = NULL;
            }
            uint8_t *dst = r->out + b.first * PAGE;
            if (reap_ws_block_decode(src, &b, dst, &why) < 0)
                return thaw_fail(err, "%s: block %llu: %s", r->path, (unsigned long long)*next, why.msg);
            src = dst;
        }
        if (span && span + span_pages * PAGE == src && span_first + span_pages == b.first) {
            span_pages += b.pages;
            span_raw |= b.kind == REAP_BLOCK_RAW;
            continue;
        }
        if (span && install(in, span_first, span_first + span_pages, span, err) < 0)
            return -1;
        span = src;
        span_first = b.first;
        span_pages = b.pages;
        span_raw = b.kind == REAP_BLOCK_RAW;
    }
    return span ? install(in, span_first, span_first + span_pages, span, err) : 0;
}

/* Installs the working set as its bytes land. read_ns: from the read's issue until its
 * last byte was seen to land (an upper bound: a read that lands during an install is seen
 * at the next block, note_landing); install_ns: all the install time (lz4, checksums,
 * UFFDIO_MOVE/COPY), part of which overlapped the read. */
static int prefetch_landing(struct reap_ws_read *r, uint64_t mem_size, const struct snap_identity *id,
                            struct installer *in, struct thaw_error *err)
{
    struct reap_ws_header h;
    struct thaw_error why;
    bool indexed = false;
    uint64_t prefix = 0, install_ns = 0;
    uint64_t next = 0, done = 0; /* the next block, and how many of its pages are in */
    for (;;) {
        uint64_t c;
        int got;
        /* The next chunk, and those that have landed after it already (no wait). */
        bool any = false;
        while ((!any || chunk_reader_ready(&r->cr)) && (got = chunk_reader_next(&r->cr, &c, &why)) != 0) {
            if (got < 0)
                return thaw_fail(err, "%s: %s", r->path, why.msg);
            prefix = r->ext[c].off + r->ext[c].len;
            any = true;
        }
        if (!any)
            break;
        note_landing(r);
        if (!indexed && prefix >= PAGE) {
            if (check_head(r->path, r->buf, r->size, mem_size, id, &h, err) < 0)
                return -1;
            if (prefix < h.data_offset)
                continue;
            if (reap_ws_index_check(r->buf, &h, r->buf + PAGE, &why) < 0 || decode_index(in, r->buf + PAGE, &h, &why) < 0)
                return thaw_fail(err, "%s: %s", r->path, why.msg);
            uint64_t t = clock_now_ns();
            if (place_output(r, &h) < 0)
                return thaw_fail(err, "out of memory for %s", r->path);
            install_ns += clock_now_ns() - t; /* (a staging mapping is populated here) */
            indexed = true;
        }
        if (!indexed)
            continue;
        uint64_t t = clock_now_ns();
        int rc = install_landed(r, &h, in, prefix, &next, &done, err);
        install_ns += clock_now_ns() - t;
        if (rc < 0)
            return -1;
    }
    if (!indexed || next < h.blocks)
        return thaw_fail(err, "%s: truncated", r->path);
    in->st->bytes = r->size;
    in->st->install_ns = install_ns;
    in->st->read_ns = r->read_end - r->t0;
    return 0;
}

int reap_prefetch_read(struct reap_ws_read *r, int uffd, uint8_t *(*gpa_to_host)(void *ctx, uint64_t gpa, uint64_t len),
                       void *ctx, uint64_t mem_size, const struct snap_identity *id, unsigned keep, unsigned flags,
                       struct reap_ws_set *set, struct reap_stats *st, struct thaw_error *err)
{
    memset(st, 0, sizeof *st);
    if (set)
        memset(set, 0, sizeof *set);
    struct installer in = {.uffd = uffd, .gpa_to_host = gpa_to_host, .ctx = ctx, .path = r->path, .st = st,
                           .keep = keep, .dir = set && !(flags & REAP_PREFETCH_INDEX) ? r->dir : NULL,
                           .move = flags & REAP_PREFETCH_MOVE};
    int rc = prefetch_landing(r, mem_size, id, &in, err);
    if (rc == 0 && set) { /* hand the index over */
        *set = (struct reap_ws_set){.n = in.count, .generation = in.generation, .probe_until = in.probe_until,
                                    .crc = in.crc, .gpa = in.idx, .last_used = in.last_used, .withheld = in.withheld};
        in.idx = NULL;
        in.last_used = NULL;
        in.withheld = NULL;
    }
    free(in.idx);
    free(in.sum);
    free(in.last_used);
    free(in.withheld);
    if (rc < 0) { /* keep only how many pages did get installed */
        uint64_t installed = st->pages;
        memset(st, 0, sizeof *st);
        st->pages = installed;
    }
    return rc;
}

int reap_prefetch_merge(const char *dir, int uffd, uint8_t *(*gpa_to_host)(void *ctx, uint64_t gpa, uint64_t len),
                        void *ctx, uint64_t mem_size, const struct snap_identity *id, unsigned keep,
                        struct reap_ws_set *set, struct reap_stats *st, struct thaw_error *err)
{
    memset(st, 0, sizeof *st);
    if (set)
        memset(set, 0, sizeof *set);
    struct reap_ws_read *r;
    if (reap_ws_read_begin(dir, &r, err) < 0)
        return -1;
    int rc = reap_prefetch_read(r, uffd, gpa_to_host, ctx, mem_size, id, keep, 0, set, st, err);
    reap_ws_read_free(r);
    return rc;
}

int reap_prefetch_into(const char *dir, int uffd, uint8_t *(*gpa_to_host)(void *ctx, uint64_t gpa, uint64_t len),
                       void *ctx, uint64_t mem_size, const struct snap_identity *id, struct reap_stats *st,
                       struct thaw_error *err)
{
    return reap_prefetch_merge(dir, uffd, gpa_to_host, ctx, mem_size, id, 0, NULL, st, err);
}

int reap_ws_read_index(const char *dir, uint64_t mem_size, const struct snap_identity *id, uint64_t **gpa,
                       uint64_t *n, struct thaw_error *err)
{
    return reap_ws_read_index_probing(dir, mem_size, id, 0, gpa, n, NULL, err);
}

/* Whether a merging restore with this keep withholds a page of the set (decode_index's
 * choice: the generations of ws.gens if bound to it, else ws.pages's own). */
static bool any_probed(const char *dir, const struct reap_ws_header *h, const uint8_t *index, unsigned keep)
{
    uint32_t *lu = malloc((h->count ? h->count : 1) * sizeof *lu);
    if (!lu)
        return true; /* unknown: say yes, which only costs the huge chunks */
    for (uint64_t i = 0; i < h->count; i++)
        lu[i] = get_le32(index + i * REAP_INDEX_ENTRY + WS_I_GEN);
    uint64_t gen = h->generation, pu = h->probe_until;
    (void)read_gens(dir, h, lu, &gen, &pu);
    bool any = false;
    for (uint64_t i = 0; i < h->count && !any; i++)
        any = reap_ws_probed(gen, pu, lu[i], get_le64(index + i * REAP_INDEX_ENTRY + WS_I_GPA), keep);
    free(lu);
    return any;
}

int reap_ws_read_index_probing(const char *dir, uint64_t mem_size, const struct snap_identity *id, unsigned keep,
                               uint64_t **gpa, uint64_t *n, bool *probing, struct thaw_error *err)
{
    *gpa = NULL;
    *n = 0;
    if (probing)
        *probing = false;
    char path[4096];
    snprintf(path, sizeof path, "%s/" SNAPDIR_WS_PAGES, dir);
    int fd = file_open_regular(AT_FDCWD, path, O_RDONLY | O_NOFOLLOW, 0, err);
    if (fd < 0)
        return -1;
    struct stat sb;
    uint8_t *head = NULL;
    struct reap_ws_header h;
    struct thaw_error why;
    int rc = -1;
    if (fstat(fd, &sb) < 0 || sb.st_size < (off_t)PAGE || sb.st_size % PAGE) {
        thaw_fail(err, "%s: size is not a whole number of pages", path);
    } else if (!(head = malloc(PAGE)) || pread_full(fd, head, PAGE, 0) < 0) {
        thaw_fail_errno(err, "reading %s", path);
    } else if (check_head(path, head, (uint64_t)sb.st_size, mem_size, id, &h, err) == 0) {
        uint8_t *all = realloc(head, h.data_offset);
        if (!all) {
            thaw_fail(err, "out of memory");
        } else {
            head = all;
            if (pread_full(fd, head + PAGE, h.data_offset - PAGE, PAGE) < 0)
                thaw_fail_errno(err, "reading %s", path);
            else if (reap_ws_index_check(head, &h, head + PAGE, &why) < 0)
                thaw_fail(err, "%s: %s", path, why.msg);
            else if (!(*gpa = malloc(h.count * sizeof **gpa)))
                thaw_fail(err, "out of memory");
            else {
                for (uint64_t i = 0; i < h.count; i++)
                    (*gpa)[i] = get_le64(head + PAGE + i * REAP_INDEX_ENTRY + WS_I_GPA);
                *n = h.count;
                if (probing && keep)
                    *probing = any_probed(dir, &h, head + PAGE, keep);
                rc = 0;
            }
        }
    }
    free(head);
    close(fd);
    return rc;
}

int reap_trace_decode(const uint8_t *buf, size_t len, struct page_record **out, size_t *n, uint64_t *mem_size,
                      struct snap_identity *id, struct thaw_error *err)
{
    *out = NULL;
    *n = 0;
    if (len < TR_H_END + 4)
        return thaw_fail(err, "truncated");
    if (memcmp(buf + TR_H_MAGIC, TRACE_MAGIC, 8))
        return thaw_fail(err, "bad magic");
    unsigned major = get_le16(buf + TR_H_MAJOR), minor = get_le16(buf + TR_H_MINOR);
    if (major != REAP_TRACE_MAJOR)
        return thaw_fail(err, "trace format %u.%u, this thaw reads %u.x", major, minor, REAP_TRACE_MAJOR);
    uint64_t count = get_le64(buf + TR_H_COUNT);
    if (count > WS_MAX_PAGES || TR_H_END + count * 16 + 4 != len)
        return thaw_fail(err, "size does not match its page count");
    if (get_le32(buf + len - 4) != (uint32_t)crc32_z(0, buf, len - 4))
        return thaw_fail(err, "checksum mismatch");
    if (get_le32(buf + TR_H_PAGE_SIZE) != PAGE)
        return thaw_fail(err, "page size %u", get_le32(buf + TR_H_PAGE_SIZE));
    if (!(*out = malloc((count + 1) * sizeof **out)))
        return thaw_fail(err, "out of memory");
    for (uint64_t i = 0; i < count; i++) {
        (*out)[i].offset = get_le64(buf + TR_H_END + i * 16);
        (*out)[i].t_ns = get_le64(buf + TR_H_END + i * 16 + 8);
    }
    *n = count;
    *mem_size = get_le64(buf + TR_H_MEM_SIZE);
    if (id)
        snap_identity_get(buf + TR_H_IDENTITY, id);
    return 0;
}

int reap_read_trace(const char *dir, struct page_record **out, size_t *n, uint64_t *mem_size,
                    struct snap_identity *id, struct thaw_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/" SNAPDIR_WS_TRACE, dir);
    uint8_t *buf;
    size_t len;
    *out = NULL;
    *n = 0;
    if (read_file_at(AT_FDCWD, path, 0, 64u << 20, &buf, &len, err) < 0)
        return -1;
    struct thaw_error why;
    int rc = reap_trace_decode(buf, len, out, n, mem_size, id, &why);
    if (rc < 0)
        thaw_fail(err, "%s: %s", path, why.msg);
    free(buf);
    return rc;
}

int reap_mark_stale(const char *dir, struct thaw_error *err)
{
    return write_file_atomic(dir, SNAPDIR_WS_STALE, "stale\n", 6, err);
}

int reap_is_stale(const char *dir)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/" SNAPDIR_WS_STALE, dir);
    return lstat(path, &st) == 0;
}

void reap_clear_stale(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/" SNAPDIR_WS_STALE, dir);
    unlink(path);
}
