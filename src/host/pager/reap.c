#include "host/pager/reap.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <liburing.h>
#include <stdbool.h>
#include <zlib.h>

#include "host/util/atomic_file.h"
#include "host/util/clock.h"
#include "host/util/snapdir.h"

#define PAGE 4096u
#define WS_MAGIC "THAWWSET"
#define TRACE_MAGIC "THAWTRCE"
#define REAP_VERSION 1u
#define WS_MAX_PAGES (1u << 20) /* 4 GiB of guest memory */
/* How ws.pages is read: one read then install, or chunks installed as they land. The
 * pipeline costs two small reads up front and pays off from a few MiB on
 * (bench/reap_read.py, docs/benchmarks.md); THAW_REAP_READ=single|pipelined overrides. */
#define REAP_PIPELINE_MIN_BYTES (4ull << 20)

/* ws.pages header, little-endian, in the first 4 KiB block. */
struct ws_header {
    char magic[8];
    uint32_t version;
    uint32_t page_size;
    uint64_t mem_size;
    uint64_t count;       /* pages */
    uint64_t index_offset; /* = 4096: count x u64 guest offsets, ascending */
    uint64_t data_offset;  /* 4096-aligned, after the index */
    uint32_t crc;          /* CRC-32 of this header (crc field zero) and the index */
    uint32_t reserved;
};

/* ws.trace: header, count x {u64 offset, u64 t_ns} in fault order, u32 CRC-32 of all
 * preceding bytes. */
struct trace_header {
    char magic[8];
    uint32_t version;
    uint32_t page_size;
    uint64_t mem_size;
    uint64_t count;
};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

int reap_write(const char *dir, const struct page_record *log, size_t n, uint64_t mem_size, struct thaw_error *err)
{
    if (n == 0 || n > WS_MAX_PAGES)
        return thaw_fail(err, "nothing sensible to record (%zu pages)", n);
    /* Trace: fault order as recorded. */
    size_t tlen = sizeof(struct trace_header) + n * 16 + 4;
    uint8_t *t = calloc(1, tlen);
    if (!t)
        return thaw_fail(err, "out of memory");
    struct trace_header th = {.version = REAP_VERSION, .page_size = PAGE, .mem_size = mem_size, .count = n};
    memcpy(th.magic, TRACE_MAGIC, 8);
    memcpy(t, &th, sizeof th);
    for (size_t i = 0; i < n; i++) {
        memcpy(t + sizeof th + i * 16, &log[i].offset, 8);
        memcpy(t + sizeof th + i * 16 + 8, &log[i].t_ns, 8);
    }
    uint32_t tcrc = (uint32_t)crc32_z(0, t, tlen - 4);
    memcpy(t + tlen - 4, &tcrc, 4);
    int rc = write_file_atomic(dir, SNAPDIR_WS_TRACE, t, tlen, err);
    free(t);
    if (rc < 0)
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
    uint64_t data_off = align_up(PAGE + u * 8, PAGE);
    size_t total = data_off + u * PAGE;
    uint8_t *w = aligned_alloc(PAGE, align_up(total, PAGE));
    char path[4096];
    snprintf(path, sizeof path, "%s/" SNAPDIR_MEMORY, dir);
    int mfd = open(path, O_RDONLY | O_CLOEXEC);
    if (!w || mfd < 0) {
        free(idx);
        free(w);
        if (mfd >= 0)
            close(mfd);
        return thaw_fail_errno(err, "cannot read %s", path);
    }
    memset(w, 0, data_off);
    memcpy(w + PAGE, idx, u * 8);
    rc = 0;
    for (size_t i = 0; i < u && rc == 0; i++)
        if (pread(mfd, w + data_off + i * PAGE, PAGE, (off_t)idx[i]) != PAGE)
            rc = thaw_fail_errno(err, "reading page %#llx of %s", (unsigned long long)idx[i], path);
    close(mfd);
    struct ws_header h = {.version = REAP_VERSION, .page_size = PAGE, .mem_size = mem_size, .count = u,
                          .index_offset = PAGE, .data_offset = data_off};
    memcpy(h.magic, WS_MAGIC, 8);
    uint32_t crc = (uint32_t)crc32_z(0, (const uint8_t *)&h, sizeof h);
    h.crc = (uint32_t)crc32_z(crc, w + PAGE, u * 8);
    memcpy(w, &h, sizeof h);
    if (rc == 0)
        rc = write_file_atomic(dir, SNAPDIR_WS_PAGES, w, total, err);
    free(w);
    free(idx);
    return rc;
}

static int read_full(int fd, void *buf, size_t len, off_t off)
{
    size_t got = 0;
    while (got < len) {
        ssize_t r = pread(fd, (uint8_t *)buf + got, len - got, off + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* Checks the header against the file and the snapshot. */
static int check_header(const char *path, const struct ws_header *h, uint64_t file_size, uint64_t mem_size,
                        struct thaw_error *err)
{
    if (memcmp(h->magic, WS_MAGIC, 8))
        return thaw_fail(err, "%s: bad magic", path);
    if (h->version != REAP_VERSION)
        return thaw_fail(err, "%s: unsupported version %u (this thaw reads %u)", path, h->version, REAP_VERSION);
    if (h->page_size != PAGE || h->mem_size != mem_size || h->count == 0 || h->count > mem_size / PAGE ||
        h->index_offset != PAGE || h->data_offset != align_up(PAGE + h->count * 8, PAGE) ||
        h->data_offset + h->count * PAGE != file_size)
        return thaw_fail(err, "%s: header sizes do not match the file or the snapshot", path);
    return 0;
}

/* Checks the checksum over header and index, and that the index is sorted and in range. */
static int check_index(const char *path, struct ws_header h, const uint64_t *idx, uint64_t mem_size,
                       struct thaw_error *err)
{
    uint32_t want = h.crc;
    h.crc = 0;
    uint32_t crc = (uint32_t)crc32_z(0, (const uint8_t *)&h, sizeof h);
    crc = (uint32_t)crc32_z(crc, (const uint8_t *)idx, h.count * 8);
    if (crc != want)
        return thaw_fail(err, "%s: checksum mismatch", path);
    for (uint64_t i = 0; i < h.count; i++)
        if (idx[i] % PAGE || idx[i] >= mem_size || (i && idx[i] <= idx[i - 1]))
            return thaw_fail(err, "%s: index entry %llu is invalid", path, (unsigned long long)i);
    return 0;
}

struct installer {
    int uffd;
    uint8_t *(*gpa_to_host)(void *ctx, uint64_t gpa, uint64_t len);
    void *ctx;
    const uint64_t *idx;
    struct reap_stats *st;
};

/* Installs working-set pages [first, last), whose contents start at data, with one
 * UFFDIO_COPY per contiguous guest run and without waking anyone: the vCPU has not
 * run yet. */
static int install(const struct installer *in, uint64_t first, uint64_t last, const uint8_t *data,
                   struct thaw_error *err)
{
    const uint64_t *idx = in->idx;
    for (uint64_t i = first; i < last;) {
        uint64_t j = i + 1;
        while (j < last && idx[j] == idx[j - 1] + PAGE)
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

/* The whole file in one read, then everything installed. */
static int prefetch_single(const char *path, int fd, uint64_t file_size, uint64_t mem_size, struct installer *in,
                           struct thaw_error *err)
{
    uint64_t t0 = clock_now_ns();
    uint8_t *buf = aligned_alloc(PAGE, file_size);
    if (!buf || read_full(fd, buf, file_size, 0) < 0) {
        free(buf);
        return thaw_fail_errno(err, "reading %s", path);
    }
    in->st->read_ns = clock_now_ns() - t0;
    in->st->bytes = file_size;
    struct ws_header h;
    memcpy(&h, buf, sizeof h);
    int rc = -1;
    if (check_header(path, &h, file_size, mem_size, err) == 0 &&
        check_index(path, h, (const uint64_t *)(buf + PAGE), mem_size, err) == 0) {
        in->idx = (const uint64_t *)(buf + PAGE);
        uint64_t t1 = clock_now_ns();
        rc = install(in, 0, h.count, buf + h.data_offset, err);
        in->st->install_ns = clock_now_ns() - t1;
    }
    free(buf);
    return rc;
}

/* Header and index first, then the data as large chunks all queued at once on an
 * io_uring; each chunk is installed as soon as it lands, overlapping the rest of the
 * read. install_ns then counts only the install time not hidden behind the read. */
#define CHUNK_PAGES 512u /* 2 MiB */
#define RING_DEPTH 32u

static int prefetch_pipelined(const char *path, int fd, uint64_t file_size, uint64_t mem_size,
                              struct installer *in, struct thaw_error *err)
{
    uint64_t t0 = clock_now_ns();
    struct ws_header h;
    uint8_t *head = aligned_alloc(PAGE, PAGE), *buf = NULL;
    if (!head || read_full(fd, head, PAGE, 0) < 0) {
        free(head);
        return thaw_fail_errno(err, "reading %s", path);
    }
    memcpy(&h, head, sizeof h);
    free(head);
    if (check_header(path, &h, file_size, mem_size, err) < 0)
        return -1;
    buf = aligned_alloc(PAGE, file_size);
    if (!buf || read_full(fd, buf + PAGE, h.data_offset - PAGE, PAGE) < 0) {
        free(buf);
        return thaw_fail_errno(err, "reading %s", path);
    }
    const uint64_t *idx = (const uint64_t *)(buf + PAGE);
    if (check_index(path, h, idx, mem_size, err) < 0) {
        free(buf);
        return -1;
    }
    in->idx = idx;
    struct io_uring ring;
    int r = io_uring_queue_init(RING_DEPTH, &ring, 0);
    if (r < 0) {
        free(buf);
        errno = -r;
        return thaw_fail_errno(err, "io_uring_queue_init");
    }
    uint64_t chunks = (h.count + CHUNK_PAGES - 1) / CHUNK_PAGES, submitted = 0, done = 0, install_ns = 0;
    int rc = 0;
    while (done < chunks && rc == 0) {
        while (submitted < chunks && submitted - done < RING_DEPTH) {
            struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
            if (!sqe)
                break;
            uint64_t first = submitted * CHUNK_PAGES;
            uint64_t n = (h.count - first < CHUNK_PAGES ? h.count - first : CHUNK_PAGES) * PAGE;
            io_uring_prep_read(sqe, fd, buf + h.data_offset + first * PAGE, (unsigned)n,
                               h.data_offset + first * PAGE);
            io_uring_sqe_set_data64(sqe, submitted);
            submitted++;
        }
        io_uring_submit(&ring);
        struct io_uring_cqe *cqe;
        r = io_uring_wait_cqe(&ring, &cqe);
        if (r < 0) {
            errno = -r;
            rc = thaw_fail_errno(err, "io_uring_wait_cqe on %s", path);
            break;
        }
        uint64_t c = io_uring_cqe_get_data64(cqe);
        uint64_t first = c * CHUNK_PAGES;
        uint64_t last = first + CHUNK_PAGES < h.count ? first + CHUNK_PAGES : h.count;
        if (cqe->res != (int)((last - first) * PAGE)) {
            /* Short or failed read: a regular file on a working disk does not do this. */
            errno = cqe->res < 0 ? -cqe->res : EIO;
            rc = thaw_fail_errno(err, "reading chunk %llu of %s", (unsigned long long)c, path);
        }
        io_uring_cqe_seen(&ring, cqe);
        if (rc == 0) {
            uint64_t t = clock_now_ns();
            rc = install(in, first, last, buf + h.data_offset + first * PAGE, err);
            install_ns += clock_now_ns() - t;
        }
        done++;
    }
    /* Drain what is still in flight before the buffer goes away. */
    while (submitted > done) {
        struct io_uring_cqe *cqe;
        if (io_uring_wait_cqe(&ring, &cqe) < 0)
            break;
        io_uring_cqe_seen(&ring, cqe);
        done++;
    }
    io_uring_queue_exit(&ring);
    in->st->bytes = file_size;
    in->st->read_ns = clock_now_ns() - t0 - install_ns;
    in->st->install_ns = install_ns;
    free(buf);
    return rc;
}

int reap_prefetch_into(const char *dir, int uffd, uint8_t *(*gpa_to_host)(void *ctx, uint64_t gpa, uint64_t len),
                       void *ctx, uint64_t mem_size, struct reap_stats *st, struct thaw_error *err)
{
    memset(st, 0, sizeof *st);
    char path[4096];
    snprintf(path, sizeof path, "%s/" SNAPDIR_WS_PAGES, dir);
    /* O_DIRECT: large reads straight from the disk, no page-cache copy. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_DIRECT);
    if (fd < 0)
        return thaw_fail_errno(err, "cannot open %s", path);
    struct stat sb;
    int rc = -1;
    if (fstat(fd, &sb) < 0 || sb.st_size < (off_t)PAGE || sb.st_size % PAGE) {
        thaw_fail(err, "%s: size %lld is not a whole number of pages", path, (long long)sb.st_size);
    } else {
        struct installer in = {.uffd = uffd, .gpa_to_host = gpa_to_host, .ctx = ctx, .st = st};
        const char *how = getenv("THAW_REAP_READ");
        bool pipelined = how ? !strcmp(how, "pipelined") : (uint64_t)sb.st_size >= REAP_PIPELINE_MIN_BYTES;
        rc = (pipelined ? prefetch_pipelined : prefetch_single)(path, fd, (uint64_t)sb.st_size, mem_size, &in, err);
    }
    close(fd);
    if (rc < 0)
        memset(st, 0, sizeof *st);
    return rc;
}


int reap_read_trace(const char *dir, struct page_record **out, size_t *n, uint64_t *mem_size, struct thaw_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/" SNAPDIR_WS_TRACE, dir);
    FILE *f = fopen(path, "rb");
    if (!f)
        return thaw_fail_errno(err, "cannot open %s", path);
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 65536;
            if (cap > (64u << 20) || !(buf = realloc(buf, cap))) {
                fclose(f);
                free(buf);
                return thaw_fail(err, "%s: too large", path);
            }
        }
        size_t r = fread(buf + len, 1, cap - len, f);
        len += r;
        if (r == 0)
            break;
    }
    fclose(f);
    struct trace_header th;
    int rc = -1;
    if (len < sizeof th + 4) {
        thaw_fail(err, "%s: truncated", path);
        goto out;
    }
    memcpy(&th, buf, sizeof th);
    uint32_t crc;
    memcpy(&crc, buf + len - 4, 4);
    if (memcmp(th.magic, TRACE_MAGIC, 8)) {
        thaw_fail(err, "%s: bad magic", path);
    } else if (th.version != REAP_VERSION) {
        thaw_fail(err, "%s: unsupported version %u (this thaw reads %u)", path, th.version, REAP_VERSION);
    } else if (th.count > WS_MAX_PAGES || sizeof th + th.count * 16 + 4 != len) {
        thaw_fail(err, "%s: size does not match its page count", path);
    } else if ((uint32_t)crc32_z(0, buf, len - 4) != crc) {
        thaw_fail(err, "%s: checksum mismatch", path);
    } else if (!(*out = malloc((th.count + 1) * sizeof **out))) {
        thaw_fail(err, "out of memory");
    } else {
        for (uint64_t i = 0; i < th.count; i++) {
            memcpy(&(*out)[i].offset, buf + sizeof th + i * 16, 8);
            memcpy(&(*out)[i].t_ns, buf + sizeof th + i * 16 + 8, 8);
        }
        *n = th.count;
        *mem_size = th.mem_size;
        rc = 0;
    }
out:
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
    snprintf(path, sizeof path, "%s/" SNAPDIR_WS_STALE, dir);
    return access(path, F_OK) == 0;
}

void reap_clear_stale(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/" SNAPDIR_WS_STALE, dir);
    unlink(path);
}
