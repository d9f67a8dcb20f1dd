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
#define CHUNK_PAGES (HUGE_CHUNK_BYTES / PAGE)
/* Off unless asked for: on a cold page cache the chunks' extra data pages cost more disk
 * time than the first touches they save at the working sets measured (docs/benchmarks.md). */
#define HUGE_DEFAULT_SHARE 0.0

double huge_chunks_min_share(void)
{
    const char *s = getenv("THAW_REAP_HUGE");
    if (!s)
        return HUGE_DEFAULT_SHARE;
    double v = strtod(s, NULL);
    return v > 0 && v <= 1 ? v : 0;
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

/* Takes one chunk out of userfaultfd and reads it whole (holes come back as zeros). */
static int fill_chunk(int uffd, int dfd, int bfd, uint8_t *host, uint64_t gpa)
{
    struct uffdio_range rg = {.start = (uint64_t)(uintptr_t)host, .len = HUGE_CHUNK_BYTES};
    if (ioctl(uffd, UFFDIO_UNREGISTER, &rg) < 0)
        return -1;
    (void)madvise(host, HUGE_CHUNK_BYTES, MADV_POPULATE_WRITE); /* one huge page, if the kernel has one */
    uint64_t got = 0;
    int fd = dfd >= 0 ? dfd : bfd;
    while (got < HUGE_CHUNK_BYTES) {
        ssize_t k = pread(fd, host + got, HUGE_CHUNK_BYTES - got, (off_t)(gpa + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && fd == dfd && got == 0) { /* O_DIRECT refused: buffered */
            fd = bfd;
            continue;
        }
        if (k <= 0)
            break;
        got += (uint64_t)k;
    }
    if (got == HUGE_CHUNK_BYTES)
        return 0;
    /* Put it back as it was: empty and served by the pager. */
    (void)madvise(host, HUGE_CHUNK_BYTES, MADV_DONTNEED);
    struct uffdio_register reg = {.range = rg, .mode = UFFDIO_REGISTER_MODE_MISSING};
    (void)ioctl(uffd, UFFDIO_REGISTER, &reg);
    return -1;
}

int huge_chunks_install(const char *dir, int uffd, const struct fc_region *r, size_t n, uint64_t mem_size,
                        const struct snap_identity *id, double min_share, struct huge_chunks *out,
                        struct thaw_error *err)
{
    memset(out, 0, sizeof *out);
    uint64_t t0 = clock_now_ns();
    uint64_t *idx = NULL, count = 0;
    if (reap_ws_read_index(dir, mem_size, id, &idx, &count, err) < 0)
        return -1;
    char path[4096];
    snprintf(path, sizeof path, "%s/" SNAPDIR_MEMORY, dir);
    int bfd = file_open_regular(AT_FDCWD, path, O_RDONLY | O_NOFOLLOW, 0, err);
    if (bfd < 0) {
        free(idx);
        return -1;
    }
    int dfd = file_open_regular(AT_FDCWD, path, O_RDONLY | O_NOFOLLOW | O_DIRECT, 0, err);
    out->gpa = malloc((count ? count : 1) * sizeof *out->gpa);
    if (!out->gpa) {
        free(idx);
        close(bfd);
        if (dfd >= 0)
            close(dfd);
        return thaw_fail(err, "out of memory");
    }
    for (uint64_t i = 0; i < count;) {
        uint64_t c = idx[i] & ~(HUGE_CHUNK_BYTES - 1), j = i;
        while (j < count && (idx[j] & ~(HUGE_CHUNK_BYTES - 1)) == c)
            j++;
        uint64_t ws = j - i;
        i = j;
        if (ws < 2 || c + HUGE_CHUNK_BYTES > mem_size)
            continue;
        uint64_t data = data_pages_in(bfd, c, HUGE_CHUNK_BYTES);
        uint8_t *host = chunk_host(r, n, c);
        if (!host || (double)ws < min_share * (double)data)
            continue;
        if (fill_chunk(uffd, dfd, bfd, host, c) < 0)
            continue;
        out->gpa[out->n++] = c;
        out->ws_pages += ws;
        out->data_pages += data;
    }
    free(idx);
    close(bfd);
    if (dfd >= 0)
        close(dfd);
    out->ns = clock_now_ns() - t0;
    return 0;
}

bool huge_chunks_cover(const struct huge_chunks *h, uint64_t gpa, uint64_t len)
{
    /* The first chunk that ends after gpa, by binary search. */
    size_t lo = 0, hi = h->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (h->gpa[mid] + HUGE_CHUNK_BYTES <= gpa)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < h->n && h->gpa[lo] < gpa + len;
}

void huge_chunks_free(struct huge_chunks *h)
{
    free(h->gpa);
    memset(h, 0, sizeof *h);
}
