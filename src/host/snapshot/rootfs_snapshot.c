#include "host/snapshot/rootfs_snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/pager/reap.h"
#include "host/snapshot/rootfs_pack.h"
#include "host/util/atomic_file.h"
#include "host/util/chunk_read.h"
#include "host/util/clock.h"
#include "host/util/file.h"
#include "host/util/le.h"
#include "host/util/snap_identity.h"
#include "host/util/snapdir.h"

#define PAGE 4096ull
#define PM_PRESENT (1ull << 63)
#define PM_FILE (1ull << 61) /* page cache page (or shared anonymous), not a private copy */
#define MAX_PAGES ROOTFS_PACK_MAX_PAGES

/* The pagemap entries of [host, host+size): one uint64_t per page, malloc'd. */
static uint64_t *read_pagemap(int pid, uint64_t addr, uint64_t size, struct thaw_error *err)
{
    char path[64];
    if (pid > 0)
        snprintf(path, sizeof path, "/proc/%d/pagemap", pid);
    else
        snprintf(path, sizeof path, "/proc/self/pagemap");
    uint64_t n = size / PAGE;
    uint64_t *pm = malloc(n * sizeof *pm);
    if (!pm) {
        thaw_fail(err, "out of memory");
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        free(pm);
        thaw_fail_errno(err, "cannot open %s", path);
        return NULL;
    }
    if (pread_full(fd, pm, n * sizeof *pm, addr / PAGE * sizeof *pm) < 0) {
        close(fd);
        free(pm);
        thaw_fail_errno(err, "reading %s", path);
        return NULL;
    }
    close(fd);
    return pm;
}

/* Reads the contents of pages[0..n) (image page numbers, ascending) from fd at base +
 * page * 4096 into out (packed: page i at out + i * 4096), one pread per run. */
static int read_runs(int fd, uint64_t base, const uint64_t *pages, uint64_t n, uint8_t *out)
{
    for (uint64_t i = 0; i < n;) {
        uint64_t j = i + 1;
        while (j < n && pages[j] == pages[j - 1] + 1)
            j++;
        if (pread_full(fd, out + i * PAGE, (size_t)((j - i) * PAGE), base + pages[i] * PAGE) < 0)
            return -1;
        i = j;
    }
    return 0;
}

/* THAW_ROOTFS_WS=packed: rootfs.ws carries its pages' contents (recording) and a restore
 * decodes private copies from it, instead of reading them ahead from the image. */
static bool ws_packed(void)
{
    const char *how = getenv("THAW_ROOTFS_WS");
    return how && !strcmp(how, "packed");
}

/* Encodes pages[0..n) with their packed contents (NULL: index only) into dir/name (atomic write). */
static int write_pack(const char *dir, const char *name, const struct rootfs_pack_kind *k, uint64_t image_pages,
                      const struct snap_identity *id, const uint64_t *pages, uint64_t n, const uint8_t *contents,
                      uint32_t *crc, struct thaw_error *err)
{
    uint8_t *buf;
    size_t len;
    if (rootfs_pack_encode(k, image_pages, id, pages, n, contents, &buf, &len, err) < 0)
        return -1;
    if (crc)
        *crc = get_le32(buf + ROOTFS_PACK_CRC_AT);
    int rc = write_file_atomic(dir, name, buf, len, err);
    free(buf);
    return rc;
}

/* THAW_ROOTFS_COW=packed: rootfs.cow lz4-compressed, decoded whole at every restore
 * (the layout before its pages were mapped lazily). */
static bool cow_packed(void)
{
    const char *v = getenv("THAW_ROOTFS_COW");
    return v && !strcmp(v, "packed");
}

int rootfs_snapshot_materialize(struct rootfs_map *m, struct thaw_error *err)
{
    for (uint64_t i = 0; i < m->n_lazy; i++)
        if (madvise(m->host + m->lazy[i].first * PAGE, (size_t)(m->lazy[i].pages * PAGE), MADV_POPULATE_WRITE) < 0)
            return thaw_fail_errno(err, "rootfs image: copying in the written pages at page %llu",
                                   (unsigned long long)m->lazy[i].first);
    free(m->lazy);
    m->lazy = NULL;
    m->n_lazy = 0;
    return 0;
}

/* Writes rootfs.cow and the descriptor for image m mapped at addr in process pid (0:
 * this one, m->host): the written pages' contents come from the mapping itself, or
 * from /proc/<pid>/mem for a worker's. */
static int save_from(const struct rootfs_map *m, int pid, uint64_t addr, const char *dir,
                     const struct snap_identity *id, struct thaw_error *err)
{
    uint64_t *pm = read_pagemap(pid, addr, m->size, err);
    if (!pm)
        return -1;
    uint64_t n = 0, touched = 0;
    for (uint64_t i = 0; i < m->size / PAGE; i++) {
        touched += (pm[i] & PM_PRESENT) != 0; /* read or written (with the kernel's fault-around) */
        if ((pm[i] & PM_PRESENT) && !(pm[i] & PM_FILE))
            pm[n++] = i; /* written by the guest: a private copy */
    }
    uint8_t *copy = malloc(n ? n * PAGE : 1); /* the pages, packed in index order */
    if (!copy) {
        free(pm);
        return thaw_fail(err, "out of memory");
    }
    if (pid > 0) { /* the worker's copies of those pages, read through its memory file */
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/mem", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || read_runs(fd, addr, pm, n, copy) < 0) {
            thaw_fail_errno(err, "reading the worker's image pages (%s)", path);
            if (fd >= 0)
                close(fd);
            free(copy);
            free(pm);
            return -1;
        }
        close(fd);
    } else {
        for (uint64_t k = 0; k < n; k++)
            memcpy(copy + k * PAGE, m->host + pm[k] * PAGE, PAGE);
    }
    int rc = write_pack(dir, SNAPDIR_ROOTFS_COW, cow_packed() ? &ROOTFS_PACK_COW : &ROOTFS_PACK_COW_RAW,
                        m->size / PAGE, id, pm, n, copy, NULL, err);
    free(copy);
    free(pm);
    if (rc < 0)
        return -1;
    json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "image", m->path, "gpa", (json_int_t)m->gpa,
                          "size", (json_int_t)m->size, "dev", (json_int_t)m->dev, "ino", (json_int_t)m->ino,
                          "mtime_ns", (json_int_t)m->mtime_ns, "touched_bytes", (json_int_t)(touched * PAGE),
                          "written_bytes", (json_int_t)(n * PAGE));
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!text)
        return thaw_fail(err, "out of memory");
    rc = write_file_atomic(dir, SNAPDIR_ROOTFS, text, strlen(text), err);
    free(text);
    return rc;
}

int rootfs_snapshot_save(const struct rootfs_map *m, const char *dir, const struct snap_identity *id,
                         struct thaw_error *err)
{
    if (!m->host)
        return 0;
    if (m->size % PAGE || m->size > MAX_PAGES * PAGE)
        return thaw_fail(err, "rootfs image of %llu bytes: too large", (unsigned long long)m->size);
    if (m->n_lazy) /* their pages would read as not written (rootfs_snapshot_materialize) */
        return thaw_fail(err, "rootfs image: written pages still mapped from the last snapshot");
    return save_from(m, 0, (uint64_t)(uintptr_t)m->host, dir, id, err);
}

int rootfs_snapshot_save_remote(const struct rootfs_map *m, int pid, uint64_t addr, const char *dir,
                                const struct snap_identity *id, struct thaw_error *err)
{
    if (!m->size)
        return 0;
    if (pid <= 0 || m->size % PAGE || m->size > MAX_PAGES * PAGE || !m->path[0])
        return thaw_fail(err, "rootfs image of the worker: bad description");
    return save_from(m, pid, addr, dir, id, err);
}

bool rootfs_snapshot_present(const char *dir)
{
    char path[4096];
    return snapdir_path(path, sizeof path, dir, SNAPDIR_ROOTFS) == 0 && access(path, F_OK) == 0;
}

static int load_descriptor(const char *dir, struct rootfs_map *want, struct thaw_error *err)
{
    char path[4096];
    if (snapdir_path(path, sizeof path, dir, SNAPDIR_ROOTFS) < 0)
        return thaw_fail(err, "snapshot path too long");
    uint8_t *text;
    size_t len;
    if (read_file(path, 1u << 16, &text, &len, err) < 0)
        return -1;
    json_error_t je;
    json_t *o = json_loadb((const char *)text, len, 0, &je);
    free(text);
    const char *image = json_string_value(json_object_get(o, "image"));
    json_int_t v[5];
    const char *keys[] = {"gpa", "size", "dev", "ino", "mtime_ns"};
    bool ok = image && strlen(image) < sizeof want->path;
    for (int i = 0; i < 5 && ok; i++) {
        json_t *x = json_object_get(o, keys[i]);
        ok = json_is_integer(x) && (v[i] = json_integer_value(x)) >= 0;
    }
    if (!ok) {
        json_decref(o);
        return thaw_fail(err, "%s: not a rootfs descriptor", path);
    }
    rootfs_map_init(want);
    snprintf(want->path, sizeof want->path, "%s", image);
    want->gpa = (uint64_t)v[0], want->size = (uint64_t)v[1], want->dev = (uint64_t)v[2];
    want->ino = (uint64_t)v[3], want->mtime_ns = (uint64_t)v[4];
    json_decref(o);
    return 0;
}

int rootfs_snapshot_image_path(const char *dir, char *buf, size_t len)
{
    struct rootfs_map want;
    struct thaw_error err;
    if (load_descriptor(dir, &want, &err) < 0 || strlen(want.path) >= len)
        return -1;
    snprintf(buf, len, "%s", want.path);
    return 0;
}

/* ---- restore: rootfs.cow and rootfs.ws read in one pipeline ---------------------------- */

/* One packed file being restored: its header and index (read first), then its blocks
 * as chunks stream in. */
struct pack_src {
    const char *name;          /* SNAPDIR_ROOTFS_COW or SNAPDIR_ROOTFS_WS */
    int fd;
    uint64_t len;              /* the file's size */
    uint8_t *head;             /* mapped: the first head_len bytes */
    size_t head_len;
    struct rootfs_pack p;
    uint64_t pages_in;         /* pages decoded into the mapping */
    uint64_t done_ns;          /* when its last block was in */
    uint64_t runs, next_page;  /* anonymous runs mapped so far; the page after the last */
    bool failed;               /* a block failed (or its read): bad_entry and later not in */
    uint64_t bad_entry;
    struct thaw_error why;
};

static void pack_src_close(struct pack_src *s)
{
    if (s->head)
        munmap(s->head, s->head_len);
    if (s->fd >= 0)
        close(s->fd);
    s->head = NULL;
    s->fd = -1;
}

/* A buffer mapped and populated in the kernel: its pages are not faulted in one by one
 * from user space (~10 us each here, nested). */
static uint8_t *populated(size_t len)
{
    void *b = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
    return b == MAP_FAILED ? NULL : b;
}

#define HEAD_READ (32u << 10) /* a first read covers the header and index of ~1,800 pages */
#define WHOLE_READ (1u << 20)  /* a file up to this size is read whole by the first read */

/* Opens dir/name (O_DIRECT where the file system allows: the file is a multiple of
 * 4 KiB), reads its header and index and decodes them. Errors name the file. */
static int pack_src_open(struct pack_src *s, const char *dir, const char *name, const struct rootfs_pack_kind *k,
                         uint64_t image_pages, const struct snap_identity *id, bool index_only, struct thaw_error *err)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->name = name;
    char path[4096];
    if (snapdir_path(path, sizeof path, dir, name) < 0)
        return thaw_fail(err, "snapshot path too long");
    s->fd = file_open_regular(AT_FDCWD, path, O_RDONLY | O_DIRECT, RESOLVE_NO_SYMLINKS, err);
    if (s->fd < 0) /* a file system without O_DIRECT (tmpfs) */
        s->fd = file_open_regular(AT_FDCWD, path, O_RDONLY, RESOLVE_NO_SYMLINKS, err);
    if (s->fd < 0)
        return -1;
    struct stat sb;
    struct thaw_error why;
    /* The largest a file for this image can be: the header, a full index, every page raw. */
    uint64_t most = (ROOTFS_PACK_HEADER + image_pages * 24 + PAGE - 1) / PAGE * PAGE + image_pages * PAGE;
    if (fstat(s->fd, &sb) < 0) {
        thaw_fail_errno(err, "cannot stat %s", path);
        goto fail;
    }
    if (sb.st_size < (off_t)ROOTFS_PACK_HEADER || (uint64_t)sb.st_size % PAGE || (uint64_t)sb.st_size > most) {
        thaw_fail(err, "%s: %lld bytes: truncated or not a multiple of 4 KiB", path, (long long)sb.st_size);
        goto fail;
    }
    s->len = (uint64_t)sb.st_size;
    size_t first = s->len <= WHOLE_READ && !index_only ? (size_t)s->len : HEAD_READ;
    for (size_t want = first < s->len ? first : (size_t)s->len;;) {
        if (s->head)
            munmap(s->head, s->head_len);
        s->head_len = want;
        if (!(s->head = populated(want))) {
            thaw_fail_errno(err, "cannot map %zu bytes for %s", want, path);
            goto fail;
        }
        if (pread_full(s->fd, s->head, want, 0) < 0) {
            thaw_fail_errno(err, "reading %s", path);
            goto fail;
        }
        uint64_t data_off = get_le64(s->head + 40); /* the header is there: the file has >= 112 bytes */
        if (data_off <= want || data_off > s->len || data_off % PAGE || want == s->len)
            break; /* all of it is in, or the decode says what is wrong */
        want = (size_t)data_off;
    }
    if (rootfs_pack_decode(k, s->head, s->head_len, s->len, image_pages, id, &s->p, &why) < 0) {
        thaw_fail(err, "%s: %s", path, why.msg);
        goto fail;
    }
    return 0;
fail:
    pack_src_close(s);
    return -1;
}

/* A chunk: whole blocks of one file, read as one page-aligned O_DIRECT read. */
struct chunk {
    struct pack_src *src;
    struct rootfs_pack_iter at; /* its first block */
    uint64_t blocks, off, len;
};
#define CHUNK_BYTES (256u << 10)
#define CHUNK_BUFS 6u
#define CHUNK_BUF_BYTES (CHUNK_BYTES + 2 * PAGE)

/* Cuts each file's data into chunks of at most 256 KiB of whole blocks (or one). */
static struct chunk *plan_chunks(struct pack_src **srcs, int nsrc, uint64_t *n)
{
    uint64_t cap = 0;
    for (int i = 0; i < nsrc; i++)
        cap += srcs[i]->p.blocks;
    struct chunk *c = calloc(cap ? cap : 1, sizeof *c);
    if (!c)
        return NULL;
    *n = 0;
    for (int i = 0; i < nsrc; i++) {
        struct rootfs_pack_iter it = {0}, start;
        struct rootfs_pack_block b;
        struct chunk *cur = NULL;
        uint64_t end = 0;
        for (start = it; rootfs_pack_next(&srcs[i]->p, &it, &b); start = it) {
            if (!cur || b.off + b.stored - cur->off > CHUNK_BYTES - PAGE) {
                if (cur)
                    cur->len = (end + PAGE - 1) / PAGE * PAGE - cur->off;
                cur = &c[(*n)++];
                *cur = (struct chunk){.src = srcs[i], .at = start, .off = b.off / PAGE * PAGE};
            }
            cur->blocks++;
            end = b.off + b.stored;
        }
        if (cur)
            cur->len = (end + PAGE - 1) / PAGE * PAGE - cur->off;
    }
    return c;
}

/* Decodes the blocks of chunk c (its bytes in buf) into the mapping, each into private
 * anonymous memory mapped over its pages first: written, such a page is never read
 * from the image first, as a write to the private file mapping would (a random cold
 * read each), and it is populated in the kernel (a fault from user space costs ~10 us
 * here, nested). Adjacent blocks' mappings merge; past MAX_ANON_RUNS runs (the
 * process's map count) the rest are decoded into the file mapping, the slow way, same
 * contents. */
#define MAX_ANON_RUNS 8192
static void decode_chunk(struct rootfs_map *m, const struct chunk *c, const uint8_t *buf, uint64_t t0)
{
    struct pack_src *s = c->src;
    struct rootfs_pack_iter it = c->at;
    struct rootfs_pack_block b;
    for (uint64_t k = 0; k < c->blocks && !s->failed && rootfs_pack_next(&s->p, &it, &b); k++) {
        uint64_t first = rootfs_pack_page(&s->p, b.first);
        uint8_t *at = m->host + first * PAGE;
        s->runs += first != s->next_page;
        s->next_page = first + b.pages;
        if (s->runs <= MAX_ANON_RUNS) /* if it fails: decoded into the file mapping */
            (void)mmap(at, (size_t)(b.pages * PAGE), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_POPULATE, -1, 0);
        if (rootfs_pack_unpack(&s->p, buf + (b.off - c->off), &b, at, &s->why) < 0) {
            s->failed = true;
            s->bad_entry = b.first;
            return;
        }
        s->pages_in += b.pages;
    }
    s->done_ns = clock_now_ns() - t0;
}

/* Reads the files' chunks in order, a few in flight (chunk_read.h), and decodes each
 * chunk as it lands: the disk reads ahead while the kernel allocates the pages and the
 * chunk decompresses. Only
 * a failure to read or decode a block is recorded (in its pack_src); -1 if set-up
 * failed (nothing decoded). */
static int read_and_decode(struct rootfs_map *m, struct pack_src **srcs, int nsrc, uint64_t t0, struct thaw_error *err)
{
    uint64_t all = 0, n = 0, nhead = 0;
    struct chunk *plan = plan_chunks(srcs, nsrc, &all);
    /* Chunks whose bytes the first read brought in (a small file: all of it) are
     * decoded from there; c[] keeps those still to read, each file's in order. */
    struct chunk *c = plan ? calloc(all ? all : 1, sizeof *c) : NULL;
    if (!c) {
        free(plan);
        return thaw_fail(err, "out of memory");
    }
    for (uint64_t i = 0; i < all; i++)
        if (plan[i].off + plan[i].len <= plan[i].src->head_len)
            plan[nhead++] = plan[i];
        else
            c[n++] = plan[i];
    size_t nbufs = n < CHUNK_BUFS ? (size_t)n : CHUNK_BUFS;
    uint8_t *bufs = nbufs ? populated(nbufs * CHUNK_BUF_BYTES) : NULL;
    struct chunk_extent *ext = calloc(n ? n : 1, sizeof *ext);
    struct chunk_reader cr;
    /* Chunk i reads into buffer i % CHUNK_BUFS: the reader queues it once chunk
     * i - CHUNK_BUFS was handed back and decoded. */
    for (uint64_t i = 0; ext && i < n; i++)
        ext[i] = (struct chunk_extent){.fd = c[i].src->fd, .off = c[i].off, .len = c[i].len,
                                       .dst = bufs + (size_t)(i % CHUNK_BUFS) * CHUNK_BUF_BYTES};
    int rc = (nbufs && !bufs) || !ext ? thaw_fail(err, "out of memory") : chunk_reader_start(&cr, ext, n, CHUNK_BUFS, err);
    if (rc < 0) {
        if (bufs)
            munmap(bufs, nbufs * CHUNK_BUF_BYTES);
        free(ext);
        free(plan);
        free(c);
        return -1;
    }
    for (uint64_t i = 0; i < nhead; i++) /* while the first chunks are read */
        if (!plan[i].src->failed)
            decode_chunk(m, &plan[i], plan[i].src->head + plan[i].off, t0);
    uint64_t i;
    struct thaw_error why;
    for (int got; (got = chunk_reader_next(&cr, &i, &why)) != 0;) {
        struct pack_src *src = c[i].src;
        if (got < 0 && !src->failed) {
            struct rootfs_pack_block b;
            struct rootfs_pack_iter it = c[i].at;
            rootfs_pack_next(&src->p, &it, &b);
            src->failed = true;
            src->bad_entry = b.first;
            src->why = why;
        } else if (got > 0 && !src->failed) {
            decode_chunk(m, &c[i], ext[i].dst, t0);
        }
    }
    chunk_reader_stop(&cr);
    if (bufs)
        munmap(bufs, nbufs * CHUNK_BUF_BYTES);
    free(ext);
    free(plan);
    free(c);
    return 0;
}

/* rootfs.ws failed after some blocks went in (those are verified): its bad block and
 * every later page go back to the image, read lazily; where the mapping cannot be
 * made again the image's bytes are read into the page (a half-decoded page never
 * stays). -1 only if that fails too. */
/* The next run of contiguous image pages of p from index entry *i on, leaving out the
 * entries skip marks (NULL: none): its first page and length in pages; *i moves past
 * it. false when none is left. */
static bool next_run(const struct rootfs_pack *p, const uint8_t *skip, uint64_t *i, uint64_t *first, uint64_t *pages)
{
    while (skip && *i < p->count && skip[*i])
        ++*i;
    if (*i >= p->count)
        return false;
    uint64_t j = *i + 1;
    *first = rootfs_pack_page(p, *i);
    while (j < p->count && rootfs_pack_page(p, j) == *first + (j - *i) && !(skip && skip[j]))
        j++;
    *pages = j - *i;
    *i = j;
    return true;
}

static int put_back_file_pages(struct rootfs_map *m, const struct rootfs_pack *p, uint64_t from,
                               struct thaw_error *err)
{
    uint64_t first, pages;
    for (uint64_t i = from; next_run(p, NULL, &i, &first, &pages);) {
        uint8_t *at = m->host + first * PAGE;
        size_t run = (size_t)(pages * PAGE);
        if (mmap(at, run, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, m->fd,
                 (off_t)(first * PAGE)) == MAP_FAILED &&
            pread_full(m->fd, at, run, first * PAGE) < 0)
            return thaw_fail_errno(err, "rootfs image %s: putting back image pages", m->path);
    }
    return 0;
}

/* Maps image pages [first, first + pages) from the page cache: read-only where they come
 * from the image, as private copies where they are written pages mapped from rootfs.cow
 * (m->lazy, ascending), which the guest is likely to write again (library data) and
 * would otherwise copy at its first write, a host fault each. */
static void populate_run(struct rootfs_map *m, uint64_t first, uint64_t pages)
{
    uint64_t lo = 0, hi = m->n_lazy, end = first + pages;
    while (lo < hi) { /* the first lazy run that ends after first */
        uint64_t mid = (lo + hi) / 2;
        if (m->lazy[mid].first + m->lazy[mid].pages <= first)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (uint64_t at = first; at < end;) {
        const struct rootfs_run *r = lo < m->n_lazy ? &m->lazy[lo] : NULL;
        bool in = r && r->first <= at;
        uint64_t stop = !r ? end : in ? r->first + r->pages : r->first;
        if (stop > end)
            stop = end;
        (void)madvise(m->host + at * PAGE, (size_t)((stop - at) * PAGE), in ? MADV_POPULATE_WRITE : MADV_POPULATE_READ);
        at = stop;
        if (in && stop == r->first + r->pages)
            lo++;
    }
}

/* The working set's runs read ahead (all reads started, then the pages mapped from the
 * page cache: of the image, or of rootfs.cow for written pages mapped from there). */
static void read_ahead_from_image(struct rootfs_map *m, const struct rootfs_pack *p, const uint8_t *skip)
{
    uint64_t first, pages;
    for (uint64_t i = 0; next_run(p, skip, &i, &first, &pages);)
        (void)madvise(m->host + first * PAGE, (size_t)(pages * PAGE), MADV_WILLNEED);
    for (uint64_t i = 0; next_run(p, skip, &i, &first, &pages);)
        populate_run(m, first, pages);
}

/* The file working set's runs as guest addresses, for a pre-fault vCPU. */
static void ws_guest_runs(const struct rootfs_map *m, const struct rootfs_pack *p, const uint8_t *skip,
                          struct gpa_runs *out)
{
    uint64_t first, pages;
    for (uint64_t i = 0; next_run(p, skip, &i, &first, &pages);)
        if (gpa_runs_add(out, m->gpa + first * PAGE, pages) < 0)
            return;
}

/* True if every block of p is stored raw at a 4 KiB-aligned offset (ROOTFS_PACK_COW_RAW),
 * in at most MAX_ANON_RUNS runs: a restore maps such a rootfs.cow (map_cow_lazily). */
static bool cow_mappable(const struct rootfs_pack *p)
{
    struct rootfs_pack_iter it = {0};
    struct rootfs_pack_block b;
    uint64_t runs = 0, next_page = UINT64_MAX, next_off = 0;
    while (rootfs_pack_next(p, &it, &b)) {
        if (!b.raw || b.off % PAGE)
            return false;
        uint64_t first = rootfs_pack_page(p, b.first);
        runs += first != next_page || b.off != next_off;
        next_page = first + b.pages;
        next_off = b.off + b.pages * PAGE;
    }
    return runs <= MAX_ANON_RUNS;
}

/* A mappable rootfs.cow (cow_mappable): each run of written pages is mapped MAP_PRIVATE
 * from the file over the image mapping, so a page is read (from the disk, or the page
 * cache that instances of the snapshot share) only when the guest first touches it,
 * and copied only when the guest writes it: a first invocation touches a few percent of
 * them (cnn_serving: 59 of 3,665), where decoding all of them took most of the image's
 * restore. Their checksums are not checked, as a lazy restore's memory file pages are
 * not. Returns true when mapped (the runs in m->lazy); false when the file must be
 * decoded (not mappable, or a mapping failed: the decode maps over every run). */
static bool map_cow_lazily(struct rootfs_map *m, const struct pack_src *cow)
{
    if (!cow_mappable(&cow->p))
        return false;
    uint64_t cap = cow->p.blocks ? cow->p.blocks : 1, n = 0, next_page = UINT64_MAX, next_off = 0;
    struct rootfs_run *r = calloc(cap, sizeof *r);
    uint64_t *off = calloc(cap, sizeof *off); /* each run's offset in the file */
    bool ok = r && off;
    struct rootfs_pack_iter it = {0};
    struct rootfs_pack_block b;
    while (ok && rootfs_pack_next(&cow->p, &it, &b)) {
        uint64_t first = rootfs_pack_page(&cow->p, b.first);
        if (n == 0 || first != next_page || b.off != next_off) {
            r[n] = (struct rootfs_run){.first = first};
            off[n++] = b.off;
        }
        r[n - 1].pages += b.pages;
        next_page = first + b.pages;
        next_off = b.off + b.pages * PAGE;
    }
    for (uint64_t i = 0; ok && i < n; i++)
        ok = mmap(m->host + r[i].first * PAGE, (size_t)(r[i].pages * PAGE), PROT_READ | PROT_WRITE,
                  MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, cow->fd, (off_t)off[i]) != MAP_FAILED;
    free(off);
    if (!ok) {
        free(r);
        return false;
    }
    free(m->lazy);
    m->lazy = r;
    m->n_lazy = n;
    return true;
}

/* rootfs.ws's pages (p) as a working set to merge by the memory set's rules (reap.h):
 * positions are image offsets, generations come from rootfs.gens when it is bound to
 * this rootfs.ws (else 0, as after a recording), and the set marks the pages a merging
 * restore withholds (reap_ws_probed: 64 KiB groups of the image, a slice of the old ones
 * per generation). Files unchanged (ws.lock held) give the same set at the restore and
 * at the merge after its first response, which may run in another process (a worker's
 * caller), so the set is derived twice rather than handed over. */
static int file_set_load(const struct rootfs_pack *p, const char *dir, struct reap_ws_set *set,
                         struct thaw_error *err)
{
    memset(set, 0, sizeof *set);
    uint64_t n = p->count;
    set->gpa = malloc((n ? n : 1) * sizeof *set->gpa);
    set->last_used = calloc(n ? n : 1, sizeof *set->last_used);
    set->withheld = calloc(n ? n : 1, 1);
    if (!set->gpa || !set->last_used || !set->withheld) {
        reap_ws_set_free(set);
        return thaw_fail(err, "out of memory");
    }
    set->n = n;
    set->crc = p->crc;
    for (uint64_t i = 0; i < n; i++)
        set->gpa[i] = rootfs_pack_page(p, i) * PAGE;
    (void)reap_gens_read(dir, SNAPDIR_ROOTFS_GENS, p->crc, n, 0, set->last_used, &set->generation,
                         &set->probe_until);
    unsigned keep = reap_keep();
    for (uint64_t i = 0; i < n; i++)
        set->withheld[i] =
            (uint8_t)reap_ws_probed(set->generation, set->probe_until, set->last_used[i], set->gpa[i], keep);
    return 0;
}

int rootfs_snapshot_restore(struct rootfs_map *m, const char *dir, const struct snap_identity *id, bool prefetch,
                            bool probe, struct rootfs_restore_stats *st, struct gpa_runs *ws_runs,
                            struct thaw_error *err)
{
    struct reap_ws_set probe_set = {0};
    memset(st, 0, sizeof *st);
    struct rootfs_map want;
    if (load_descriptor(dir, &want, err) < 0 || rootfs_map_reopen(m, &want, err) < 0)
        return -1;
    uint64_t t0 = clock_now_ns(), image_pages = m->size / PAGE;
    /* rootfs.cow's pages are not optional: a bad one fails the restore. rootfs.ws (REAP)
     * is: without one, or with one that fails its checks, file pages fault in lazily
     * from the image, as without REAP. */
    struct pack_src cow, ws;
    struct pack_src *srcs[2] = {&cow, &ws};
    int nsrc = 1;
    /* rootfs.ws's pages are read ahead from the image into its page cache and mapped
     * from there, shared by every instance; THAW_ROOTFS_WS=packed decodes them from
     * rootfs.ws into private copies instead (half the bytes read, but more CPU and a
     * private copy per instance: slower here under concurrency, see the header). */
    bool from_cache = !ws_packed();
    ws.fd = -1;
    ws.head = NULL;
    /* Its header and index first (the pages too, if the file is small): an all-raw one
     * is mapped, not read (map_cow_lazily), unless the packed file working set's pages
     * are decoded over the mapping (their recording reads the image, not rootfs.cow). */
    if (pack_src_open(&cow, dir, SNAPDIR_ROOTFS_COW, &ROOTFS_PACK_COW, image_pages, id, !ws_packed(), err) < 0)
        goto fail;
    bool lazy = !ws_packed() && map_cow_lazily(m, &cow);
    char path[4096];
    if (prefetch && snapdir_path(path, sizeof path, dir, SNAPDIR_ROOTFS_WS) == 0 && access(path, F_OK) == 0) {
        struct thaw_error why;
        if (pack_src_open(&ws, dir, SNAPDIR_ROOTFS_WS, &ROOTFS_PACK_WS, image_pages, id, from_cache, &why) == 0) {
            from_cache |= ws.p.index_only; /* no contents to decode: read ahead from the image */
            nsrc = from_cache ? 1 : 2;
            /* A merging restore leaves the probed pages out: the ones its input touches
             * come in as it touches them, and stay (rootfs_snapshot_merge). */
            if (probe && ws.p.index_only && file_set_load(&ws.p, dir, &probe_set, &why) == 0)
                for (uint64_t i = 0; i < probe_set.n; i++)
                    st->ws_withheld += probe_set.withheld[i];
        } else {
            st->ws_refused = true;
            snprintf(st->ws_error, sizeof st->ws_error, "%.255s", why.msg);
        }
    }
    /* Mapped lazily: nothing of rootfs.cow to read (the packed rootfs.ws never comes
     * with it). A mapping that failed is decoded over. */
    bool mapped = lazy && nsrc == 1;
    int rc = mapped ? 0 : read_and_decode(m, srcs, nsrc, t0, err);
    if (mapped) {
        for (uint64_t i = 0; i < m->n_lazy; i++)
            cow.pages_in += m->lazy[i].pages;
        cow.done_ns = clock_now_ns() - t0;
        cow.len = cow.head_len; /* what was read of it */
    }
    if (rc == 0 && from_cache && ws.head) {
        read_ahead_from_image(m, &ws.p, probe_set.withheld);
        if (ws_runs)
            ws_guest_runs(m, &ws.p, probe_set.withheld, ws_runs);
        st->ws_pages = ws.p.count - st->ws_withheld;
        st->ws_bytes = ws.head_len;
        st->ws_ns = clock_now_ns() - t0;
    }
    st->cow_pages = cow.pages_in;
    st->cow_bytes = cow.len;
    st->cow_ns = cow.done_ns ? cow.done_ns : clock_now_ns() - t0;
    if (rc == 0 && cow.failed)
        rc = thaw_fail(err, "%s: %s", SNAPDIR_ROOTFS_COW, cow.why.msg);
    if (nsrc == 2) {
        st->ws_pages = ws.pages_in;
        st->ws_bytes = ws.len;
        st->ws_ns = ws.done_ns ? ws.done_ns : clock_now_ns() - t0;
        if (rc == 0 && ws.failed) {
            st->ws_refused = true;
            snprintf(st->ws_error, sizeof st->ws_error, "%s: %.200s", SNAPDIR_ROOTFS_WS, ws.why.msg);
            rc = put_back_file_pages(m, &ws.p, ws.bad_entry, err);
        } else if (rc == 0 && ws_runs) {
            ws_guest_runs(m, &ws.p, NULL, ws_runs);
        }
    }
    pack_src_close(&cow);
    pack_src_close(&ws);
    reap_ws_set_free(&probe_set);
    if (rc < 0)
        goto fail;
    return 0;
fail:
    rootfs_map_close(m);
    return -1;
}

/* The pages a mappable rootfs.cow in dir holds (the ones a restore mapped from it), as a
 * bitmap over the image's pages (malloc'd), or NULL (none; a packed file, decoded into
 * private pages that are all present; or one that does not decode): the recording then
 * names file pages only. */
static uint8_t *cow_page_bitmap(const char *dir, const struct snap_identity *id, uint64_t image_pages)
{
    struct pack_src cow;
    struct thaw_error why;
    if (pack_src_open(&cow, dir, SNAPDIR_ROOTFS_COW, &ROOTFS_PACK_COW, image_pages, id, true, &why) < 0)
        return NULL;
    uint8_t *bits = cow.p.count && cow_mappable(&cow.p) ? calloc(image_pages / 8 + 1, 1) : NULL;
    for (uint64_t i = 0; bits && i < cow.p.count; i++) {
        uint64_t pg = rootfs_pack_page(&cow.p, i);
        bits[pg / 8] |= (uint8_t)(1u << (pg % 8));
    }
    pack_src_close(&cow);
    return bits;
}

/* The image pages of the instance at where that were read from the image since its
 * restore (present in its page tables: file pages, and written pages of a mappable
 * rootfs.cow once touched), ascending, into *pages (malloc'd, *n of them); with the
 * snapshot's identity (its memory file's trailer) and the image file open in *ifd,
 * checked against the descriptor (it must not have changed since the restore). */
static int touched_image_pages(const struct rootfs_pages *where, const char *dir, struct snap_identity *id,
                               int *ifd, uint64_t **pages, uint64_t *n, struct thaw_error *err)
{
    if (where->size % PAGE || where->size > MAX_PAGES * PAGE)
        return thaw_fail(err, "rootfs mapping of %llu bytes: not an image", (unsigned long long)where->size);
    /* The snapshot's identity, from its memory file's trailer: a restore of another
     * snapshot refuses this file (rootfs_snapshot_restore). */
    char mpath[4096];
    uint64_t mem_size;
    if (snapdir_path(mpath, sizeof mpath, dir, SNAPDIR_MEMORY) < 0)
        return thaw_fail(err, "snapshot path too long");
    if (memory_trailer_read_path(mpath, &mem_size, id, err) < 0)
        return -1;
    struct stat sb;
    /* The pages' contents come from the image file the descriptor names (the same one
     * the restore checked: it must not have changed since). */
    struct rootfs_map want;
    if (load_descriptor(dir, &want, err) < 0)
        return -1;
    if (want.size != where->size)
        return thaw_fail(err, "rootfs mapping of %llu bytes, the snapshot's image has %llu",
                         (unsigned long long)where->size, (unsigned long long)want.size);
    *ifd = file_open_regular(AT_FDCWD, want.path, O_RDONLY, 0, err);
    if (*ifd < 0)
        return -1;
    if (fstat(*ifd, &sb) < 0 || (uint64_t)sb.st_dev != want.dev || (uint64_t)sb.st_ino != want.ino ||
        (uint64_t)sb.st_size != want.size ||
        (uint64_t)sb.st_mtim.tv_sec * 1000000000ull + (uint64_t)sb.st_mtim.tv_nsec != want.mtime_ns) {
        close(*ifd);
        *ifd = -1;
        return thaw_fail(err, "rootfs image %s changed since the snapshot was taken", want.path);
    }
    uint64_t *pm = read_pagemap(where->pid, where->addr, where->size, err);
    if (!pm) {
        close(*ifd);
        *ifd = -1;
        return -1;
    }
    /* Written pages of rootfs.cow that the restore mapped from it (not packed) are in
     * the working set once touched: read (a page-cache page of rootfs.cow) or written
     * again (a private copy now). Unmapped ones were not touched. */
    uint8_t *cow = ws_packed() ? NULL : cow_page_bitmap(dir, id, where->size / PAGE);
    uint64_t k = 0;
    for (uint64_t i = 0; i < where->size / PAGE; i++)
        if ((pm[i] & PM_PRESENT) && ((pm[i] & PM_FILE) || (cow && (cow[i / 8] >> (i % 8) & 1))))
            pm[k++] = i; /* read from the image since the restore (decoded written pages are not) */
    free(cow);
    *pages = pm;
    *n = k;
    return 0;
}

/* Writes rootfs.ws naming pages[n] (index only, or THAW_ROOTFS_WS=packed with their
 * contents read from the image ifd); a recording's pages carry no generations. */
static int write_file_ws(const char *dir, uint64_t image_pages, const struct snap_identity *id, int ifd,
                         const uint64_t *pages, uint64_t n, uint32_t *crc, struct thaw_error *err)
{
    bool packed = ws_packed();
    uint8_t *contents = packed ? malloc(n ? n * PAGE : 1) : NULL;
    int rc = -1;
    if (packed && !contents)
        thaw_fail(err, "out of memory");
    else if (packed && read_runs(ifd, 0, pages, n, contents) < 0)
        thaw_fail_errno(err, "reading the rootfs image");
    else
        rc = write_pack(dir, SNAPDIR_ROOTFS_WS, &ROOTFS_PACK_WS, image_pages, id, pages, n, contents, crc, err);
    free(contents);
    return rc;
}

int rootfs_snapshot_record(const struct rootfs_pages *where, const char *dir, struct thaw_error *err)
{
    if (!where->size)
        return 0;
    struct snap_identity id;
    int ifd = -1;
    uint64_t *pm = NULL, n = 0;
    if (touched_image_pages(where, dir, &id, &ifd, &pm, &n, err) < 0)
        return -1;
    /* The default restore reads these pages ahead from the image, so the file names
     * them only; THAW_ROOTFS_WS=packed records their contents too, for restores that
     * decode private copies of them. */
    int rc = write_file_ws(dir, where->size / PAGE, &id, ifd, pm, n, NULL, err);
    if (rc == 0)
        reap_gens_remove(dir, SNAPDIR_ROOTFS_GENS); /* bound to the file replaced, so ignored anyway */
    free(pm);
    close(ifd);
    return rc;
}

int rootfs_snapshot_merge(const struct rootfs_pages *where, const char *dir, struct rootfs_merge_stats *ms,
                          struct thaw_error *err)
{
    memset(ms, 0, sizeof *ms);
    if (!where->size || ws_packed()) /* packed file working sets are recorded, not merged */
        return 0;
    struct snap_identity id;
    int ifd = -1;
    uint64_t *pm = NULL, n = 0, image_pages = where->size / PAGE;
    if (touched_image_pages(where, dir, &id, &ifd, &pm, &n, err) < 0)
        return -1;
    struct pack_src ws;
    struct thaw_error why;
    struct reap_ws_set set = {0};
    struct reap_merge_plan plan = {0};
    uint8_t *used = NULL;
    int rc = 0;
    if (pack_src_open(&ws, dir, SNAPDIR_ROOTFS_WS, &ROOTFS_PACK_WS, image_pages, &id, true, &why) < 0) {
        /* None (its recording failed) or one the restore refused: record this one. */
        rc = write_file_ws(dir, image_pages, &id, ifd, pm, n, NULL, err);
        if (rc == 0)
            reap_gens_remove(dir, SNAPDIR_ROOTFS_GENS);
        ms->recorded = rc == 0;
        ms->kept = n;
        goto out;
    }
    if (!ws.p.index_only) /* with contents (recorded with THAW_ROOTFS_WS=packed): not merged */
        goto out_ws;
    if (file_set_load(&ws.p, dir, &set, err) < 0) {
        rc = -1;
        goto out_ws;
    }
    if (!(used = calloc(image_pages / 8 + 1, 1))) {
        rc = thaw_fail(err, "out of memory");
        goto out_ws;
    }
    /* What this input used: pages touched outside the set, and withheld pages it touched.
     * A prefetched page is present whether or not the input used it: no sign either way. */
    for (uint64_t i = 0; i < n; i++)
        used[pm[i] / 8] |= (uint8_t)(1u << (pm[i] % 8));
    for (uint64_t i = 0; i < set.n; i++)
        if (!set.withheld[i])
            used[set.gpa[i] / PAGE / 8] &= (uint8_t)~(1u << (set.gpa[i] / PAGE % 8));
    if (reap_merge_plan(&set, used, image_pages, reap_keep(), &plan, err) < 0) {
        rc = -1;
        goto out_ws;
    }
    ms->generation = plan.generation;
    ms->kept = plan.n;
    if (plan.outcome == REAP_MERGE_GENS) {
        rc = reap_gens_write(dir, SNAPDIR_ROOTFS_GENS, set.crc, plan.last_used, set.n, plan.generation,
                             plan.probe_until, err);
    } else if (plan.outcome == REAP_MERGE_PAGES && plan.n == 0) {
        /* Every page probed and unused: no file working set until one is recorded. */
        char path[4096];
        if (snapdir_path(path, sizeof path, dir, SNAPDIR_ROOTFS_WS) == 0 && unlink(path) < 0 && errno != ENOENT)
            rc = thaw_fail_errno(err, "removing %s", path);
        reap_gens_remove(dir, SNAPDIR_ROOTFS_GENS);
    } else if (plan.outcome == REAP_MERGE_PAGES) {
        for (uint64_t i = 0; i < plan.n; i++)
            plan.gpa[i] /= PAGE;
        uint32_t crc;
        rc = write_file_ws(dir, image_pages, &id, ifd, plan.gpa, plan.n, &crc, err);
        /* rootfs.ws first: a rootfs.gens left bound to the old one is ignored. */
        if (rc == 0)
            rc = reap_gens_write(dir, SNAPDIR_ROOTFS_GENS, crc, plan.last_used, plan.n, plan.generation,
                                 plan.probe_until, err);
    }
    if (rc == 0) {
        ms->written = plan.outcome != REAP_MERGE_NOTHING;
        ms->added = plan.added;
        ms->dropped = plan.dropped;
    }
out_ws:
    pack_src_close(&ws);
out:
    reap_merge_plan_free(&plan);
    reap_ws_set_free(&set);
    free(used);
    free(pm);
    close(ifd);
    return rc;
}
