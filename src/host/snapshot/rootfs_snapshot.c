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
#include <sys/uio.h>
#include <unistd.h>

#include "host/util/atomic_file.h"
#include "host/util/clock.h"
#include "host/util/file.h"
#include "host/util/snap_identity.h"
#include "host/util/snapdir.h"

#define PAGE 4096ull
#define PM_PRESENT (1ull << 63)
#define PM_FILE (1ull << 61) /* page cache page (or shared anonymous), not a private copy */
#define COW_MAGIC "THAWCOW1"
#define WS_MAGIC "THAWRWS2" /* 2: the snapshot's identity after the count */
#define MAX_PAGES (1ull << 20) /* 4 GiB of image */

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

/* A page list file: magic, count, (ws only) the snapshot's identity, offsets, then
 * (cow only) the pages, page-aligned. */
static int write_pages(const char *dir, const char *name, const char *magic, const struct snap_identity *id,
                       const uint64_t *pages, uint64_t n, const uint8_t *contents, struct thaw_error *err)
{
    uint64_t at = 16 + (id ? SNAP_IDENTITY_SIZE : 0);
    uint64_t head = at + n * 8, data_at = (head + PAGE - 1) / PAGE * PAGE;
    size_t len = contents ? data_at + n * PAGE : head;
    uint8_t *buf = calloc(1, len);
    if (!buf)
        return thaw_fail(err, "out of memory");
    memcpy(buf, magic, 8);
    memcpy(buf + 8, &n, 8);
    if (id)
        snap_identity_put(buf + 16, id);
    memcpy(buf + at, pages, n * 8);
    for (uint64_t i = 0; contents && i < n; i++)
        memcpy(buf + data_at + i * PAGE, contents + pages[i] * PAGE, PAGE);
    int rc = write_file_atomic(dir, name, buf, len, err);
    free(buf);
    return rc;
}

/* Writes rootfs.cow and the descriptor for image m mapped at addr in process pid (0:
 * this one, m->host): the written pages' contents come from the mapping itself, or
 * from /proc/<pid>/mem for a worker's. */
static int save_from(const struct rootfs_map *m, int pid, uint64_t addr, const char *dir, struct thaw_error *err)
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
    const uint8_t *contents = pid > 0 ? NULL : m->host;
    uint8_t *copy = NULL;
    if (pid > 0) { /* the worker's copies of those pages, read through its memory file */
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/mem", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || !(copy = malloc(n ? n * PAGE : 1))) {
            if (fd >= 0)
                close(fd);
            free(pm);
            return thaw_fail_errno(err, "reading the worker's image pages (%s)", path);
        }
        for (uint64_t k = 0; k < n; k++)
            if (pread(fd, copy + k * PAGE, PAGE, (off_t)(addr + pm[k] * PAGE)) != (ssize_t)PAGE) {
                close(fd);
                free(copy);
                free(pm);
                return thaw_fail_errno(err, "reading the worker's image pages (%s)", path);
            }
        close(fd);
    }
    int rc;
    if (copy) { /* the same layout as write_pages, the contents from the copy */
        uint64_t head = 16 + n * 8, data_at = (head + PAGE - 1) / PAGE * PAGE;
        size_t len = data_at + n * PAGE;
        uint8_t *buf = calloc(1, len);
        if (buf) {
            memcpy(buf, COW_MAGIC, 8);
            memcpy(buf + 8, &n, 8);
            memcpy(buf + 16, pm, n * 8);
            memcpy(buf + data_at, copy, n * PAGE);
            rc = write_file_atomic(dir, SNAPDIR_ROOTFS_COW, buf, len, err);
        } else {
            rc = thaw_fail(err, "out of memory");
        }
        free(buf);
        free(copy);
    } else {
        rc = write_pages(dir, SNAPDIR_ROOTFS_COW, COW_MAGIC, NULL, pm, n, contents, err);
    }
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

int rootfs_snapshot_save(const struct rootfs_map *m, const char *dir, struct thaw_error *err)
{
    if (!m->host)
        return 0;
    return save_from(m, 0, (uint64_t)(uintptr_t)m->host, dir, err);
}

int rootfs_snapshot_save_remote(const struct rootfs_map *m, int pid, uint64_t addr, const char *dir,
                                struct thaw_error *err)
{
    if (!m->size)
        return 0;
    if (pid <= 0 || m->size % PAGE || m->size > MAX_PAGES * PAGE || !m->path[0])
        return thaw_fail(err, "rootfs image of the worker: bad description");
    return save_from(m, pid, addr, dir, err);
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

/* Reads a page list; *file malloc'd, *pages inside it. Offsets must be inside the
 * image, ascending. With id (ws), the file must carry that snapshot identity. */
static int read_pages(const char *dir, const char *name, const char *magic, const struct snap_identity *id,
                      uint64_t image_pages, uint8_t **file, size_t *file_len, uint64_t **pages, uint64_t *n,
                      uint64_t *data_at, struct thaw_error *err)
{
    char path[4096];
    if (snapdir_path(path, sizeof path, dir, name) < 0)
        return thaw_fail(err, "snapshot path too long");
    if (read_file(path, (size_t)(MAX_PAGES * (PAGE + 8) + PAGE), file, file_len, err) < 0)
        return -1;
    uint8_t *b = *file;
    uint64_t at = 16 + (id ? SNAP_IDENTITY_SIZE : 0);
    if (*file_len < at || memcmp(b, magic, 8) != 0)
        goto bad;
    if (id) {
        struct snap_identity got;
        snap_identity_get(b + 16, &got);
        if (!snap_identity_equal(&got, id)) {
            free(*file);
            *file = NULL;
            return thaw_fail(err, "%s belongs to another snapshot", path);
        }
    }
    memcpy(n, b + 8, 8);
    if (*n > MAX_PAGES || *n > image_pages || at + *n * 8 > *file_len)
        goto bad;
    *data_at = (at + *n * 8 + PAGE - 1) / PAGE * PAGE;
    *pages = (uint64_t *)(void *)(b + at); /* 8-aligned: read_file's buffer is malloc'd, at is 16 or 64 */
    for (uint64_t i = 0; i < *n; i++)
        if ((*pages)[i] >= image_pages || (i && (*pages)[i] <= (*pages)[i - 1]))
            goto bad;
    return 0;
bad:
    free(*file);
    *file = NULL;
    return thaw_fail(err, "%s is malformed", path);
}

static void prefetch_ws(struct rootfs_map *m, const char *dir, const struct snap_identity *id,
                        struct rootfs_restore_stats *st)
{
    uint8_t *file;
    size_t len;
    uint64_t *pages = NULL, n = 0, data_at = 0;
    struct thaw_error err;
    char path[4096];
    if (snapdir_path(path, sizeof path, dir, SNAPDIR_ROOTFS_WS) < 0 || access(path, F_OK) != 0)
        return; /* no file working set yet: file pages fault in lazily */
    if (read_pages(dir, SNAPDIR_ROOTFS_WS, WS_MAGIC, id, m->size / PAGE, &file, &len, &pages, &n, &data_at,
                   &err) < 0) {
        /* A bad one, or another snapshot's: refused, file pages fault in lazily. */
        st->ws_refused = true;
        snprintf(st->ws_error, sizeof st->ws_error, "%.255s", err.msg);
        return;
    }
    uint64_t t0 = clock_now_ns();
    /* Runs of pages: start the reads for all of them, then map them. */
    for (int pass = 0; pass < 2; pass++)
        for (uint64_t i = 0; i < n;) {
            uint64_t j = i + 1;
            while (j < n && pages[j] == pages[j - 1] + 1)
                j++;
            uint8_t *at = m->host + pages[i] * PAGE;
            size_t run = (size_t)((j - i) * PAGE);
            (void)madvise(at, run, pass == 0 ? MADV_WILLNEED : MADV_POPULATE_READ);
            i = j;
        }
    st->ws_pages = n;
    st->ws_ns = clock_now_ns() - t0;
    free(file);
}

/* Reads len bytes at off into the iovecs (page-aligned, so O_DIRECT works), however
 * short the reads; iov is consumed. */
static int preadv_full(int fd, struct iovec *iov, int cnt, uint64_t off)
{
    while (cnt > 0) {
        ssize_t k = preadv(fd, iov, cnt > IOV_MAX ? IOV_MAX : cnt, (off_t)off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        off += (uint64_t)k;
        for (size_t left = (size_t)k; left && cnt > 0;) {
            size_t take = left < iov->iov_len ? left : iov->iov_len;
            iov->iov_base = (uint8_t *)iov->iov_base + take;
            iov->iov_len -= take;
            left -= take;
            if (!iov->iov_len)
                iov++, cnt--;
        }
    }
    return 0;
}

/* Puts rootfs.cow's pages back over the fresh image mapping as anonymous memory, in one
 * sequential O_DIRECT read scattered over the runs. Two costs avoided, together a
 * second for PyTorch's 3,665 written pages: writing into the private file mapping
 * would make the kernel read each original page from the image first (a write fault
 * on a private file page copies the file's page: a random cold read each); and every
 * fresh page the monitor touches from user space costs a fault (~25 us nested), so
 * the pages are populated in the kernel (MAP_POPULATE) and filled by the read, with no
 * buffer between. Each run is its own mapping: past MAX_ANON_RUNS (the process's map
 * count) the rest is read into the file mapping, the slow way. */
#define MAX_ANON_RUNS 8192
static int restore_written(struct rootfs_map *m, const char *dir, uint64_t *restored, struct thaw_error *err)
{
    char path[4096];
    if (snapdir_path(path, sizeof path, dir, SNAPDIR_ROOTFS_COW) < 0)
        return thaw_fail(err, "snapshot path too long");
    int fd = file_open_regular(AT_FDCWD, path, O_RDONLY | O_DIRECT, RESOLVE_NO_SYMLINKS, err);
    if (fd < 0) /* a file system without O_DIRECT (tmpfs) */
        fd = file_open_regular(AT_FDCWD, path, O_RDONLY, RESOLVE_NO_SYMLINKS, err);
    if (fd < 0)
        return -1;
    uint64_t *pages = NULL, n = 0, image_pages = m->size / PAGE;
    struct iovec *iov = NULL;
    uint8_t *head = NULL;
    struct stat sb;
    int rc = -1;
    /* The header and index, read whole pages at a time (O_DIRECT). */
    if (fstat(fd, &sb) < 0 || sb.st_size < 16 || posix_memalign((void **)&head, PAGE, PAGE) != 0 ||
        pread_full(fd, head, PAGE, 0) < 0 || memcmp(head, COW_MAGIC, 8) != 0)
        goto bad;
    memcpy(&n, head + 8, 8);
    if (n > MAX_PAGES || n > image_pages)
        goto bad;
    uint64_t data_at = (16 + n * 8 + PAGE - 1) / PAGE * PAGE;
    if ((uint64_t)sb.st_size < data_at + n * PAGE)
        goto bad;
    free(head);
    head = NULL;
    if (posix_memalign((void **)&head, PAGE, data_at) != 0 || pread_full(fd, head, data_at, 0) < 0)
        goto bad;
    pages = (uint64_t *)(void *)(head + 16);
    for (uint64_t i = 0; i < n; i++)
        if (pages[i] >= image_pages || (i && pages[i] <= pages[i - 1]))
            goto bad;
    if (!(iov = calloc(n ? n : 1, sizeof *iov))) {
        thaw_fail(err, "out of memory");
        goto out;
    }
    int cnt = 0;
    for (uint64_t i = 0; i < n;) {
        uint64_t j = i + 1;
        while (j < n && pages[j] == pages[j - 1] + 1)
            j++;
        uint8_t *at = m->host + pages[i] * PAGE;
        size_t len = (size_t)((j - i) * PAGE);
        if (cnt < MAX_ANON_RUNS)
            (void)mmap(at, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_POPULATE, -1,
                       0); /* if it fails, the read lands in the file mapping: slower, same contents */
        iov[cnt++] = (struct iovec){at, len};
        i = j;
    }
    if (preadv_full(fd, iov, cnt, data_at) < 0) {
        thaw_fail_errno(err, "reading %s", path);
        goto out;
    }
    *restored = n;
    rc = 0;
    goto out;
bad:
    thaw_fail(err, "%s is malformed", path);
out:
    free(iov);
    free(head);
    close(fd);
    return rc;
}

int rootfs_snapshot_restore(struct rootfs_map *m, const char *dir, const struct snap_identity *id, bool prefetch,
                            struct rootfs_restore_stats *st, struct thaw_error *err)
{
    memset(st, 0, sizeof *st);
    struct rootfs_map want;
    if (load_descriptor(dir, &want, err) < 0 || rootfs_map_reopen(m, &want, err) < 0)
        return -1;
    if (restore_written(m, dir, &st->cow_pages, err) < 0)
        goto fail;
    if (prefetch)
        prefetch_ws(m, dir, id, st);
    return 0;
fail:
    rootfs_map_close(m);
    return -1;
}

int rootfs_snapshot_record(const struct rootfs_pages *where, const char *dir, struct thaw_error *err)
{
    if (!where->size)
        return 0;
    if (where->size % PAGE || where->size > MAX_PAGES * PAGE)
        return thaw_fail(err, "rootfs mapping of %llu bytes: not an image", (unsigned long long)where->size);
    /* The snapshot's identity, from its memory file's trailer: a restore of another
     * snapshot refuses this file (rootfs_snapshot_restore). */
    char mpath[4096];
    struct snap_identity id;
    uint64_t mem_size;
    if (snapdir_path(mpath, sizeof mpath, dir, SNAPDIR_MEMORY) < 0)
        return thaw_fail(err, "snapshot path too long");
    int mfd = open(mpath, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (mfd < 0)
        return thaw_fail_errno(err, "cannot open %s", mpath);
    int tr = fstat(mfd, &sb) < 0 ? thaw_fail_errno(err, "cannot stat %s", mpath)
                                  : memory_trailer_read(mfd, (uint64_t)sb.st_size, mpath, &mem_size, &id, err);
    close(mfd);
    if (tr < 0)
        return -1;
    uint64_t *pm = read_pagemap(where->pid, where->addr, where->size, err);
    if (!pm)
        return -1;
    uint64_t n = 0;
    for (uint64_t i = 0; i < where->size / PAGE; i++)
        if ((pm[i] & PM_PRESENT) && (pm[i] & PM_FILE))
            pm[n++] = i; /* read from the image since the restore (copied-back pages are not) */
    int rc = write_pages(dir, SNAPDIR_ROOTFS_WS, WS_MAGIC, &id, pm, n, NULL, err);
    free(pm);
    return rc;
}
