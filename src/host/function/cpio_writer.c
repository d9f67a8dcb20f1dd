/* cpio "newc" writer; see cpio_writer.h. */
#include "host/function/cpio_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cpio.h"

#define DIR_MODE (CPIO_S_IFDIR | 0755u)

void cpio_writer_init(struct cpio_writer *w)
{
    memset(w, 0, sizeof(*w));
    w->next_ino = 1; /* 0 is what the trailer conventionally uses */
}

void cpio_writer_free(struct cpio_writer *w)
{
    for (size_t i = 0; i < w->npaths; i++)
        free(w->paths[i].path);
    free(w->paths);
    free(w->slots);
    free(w->buf);
    memset(w, 0, sizeof(*w));
}

/* ---- emitted-path index ------------------------------------------------------- */

static size_t hash_path(const char *p, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (uint8_t)p[i]) * 0x100000001b3ull;
    return (size_t)h;
}

/* Returns the slot holding path[0..len) or the empty slot where it would go. */
static size_t *find_slot(const struct cpio_writer *w, const char *p, size_t len)
{
    size_t mask = w->nslots - 1;
    for (size_t i = hash_path(p, len) & mask;; i = (i + 1) & mask) {
        size_t *s = &w->slots[i];
        if (*s == 0)
            return s;
        const char *q = w->paths[*s - 1].path;
        if (strncmp(q, p, len) == 0 && q[len] == '\0')
            return s;
    }
}

static struct cpio_writer_path *lookup(const struct cpio_writer *w, const char *p, size_t len)
{
    if (w->nslots == 0)
        return NULL;
    size_t *s = find_slot(w, p, len);
    return *s ? &w->paths[*s - 1] : NULL;
}

/* Makes room for one more record so that recording after emitting cannot fail
 * (an entry in the archive that the index does not know would be emitted twice). */
static int reserve_record(struct cpio_writer *w)
{
    if (w->npaths == w->paths_cap) {
        size_t cap = w->paths_cap ? w->paths_cap * 2 : 16;
        struct cpio_writer_path *np = realloc(w->paths, cap * sizeof(*np));
        if (!np)
            return -1;
        w->paths = np;
        w->paths_cap = cap;
    }
    /* Keep the load factor <= 1/2 so probing stays short. */
    if ((w->npaths + 1) * 2 > w->nslots) {
        size_t n = w->nslots ? w->nslots * 2 : 32;
        size_t *ns = calloc(n, sizeof(*ns));
        if (!ns)
            return -1;
        size_t *old = w->slots;
        w->slots = ns;
        w->nslots = n;
        for (size_t i = 0; i < w->npaths; i++) {
            const char *p = w->paths[i].path;
            *find_slot(w, p, strlen(p)) = i + 1;
        }
        free(old);
    }
    return 0;
}

/* ---- archive bytes -------------------------------------------------------------- */

static int reserve_bytes(struct cpio_writer *w, size_t extra)
{
    if (extra > SIZE_MAX - w->len) {
        errno = ENOMEM;
        return -1;
    }
    size_t need = w->len + extra;
    if (need <= w->cap)
        return 0;
    size_t cap = w->cap ? w->cap : 4096;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    uint8_t *nb = realloc(w->buf, cap);
    if (!nb) {
        errno = ENOMEM;
        return -1;
    }
    w->buf = nb;
    w->cap = cap;
    return 0;
}

static void put_hex8(uint8_t *p, uint32_t v)
{
    static const char digits[] = "0123456789ABCDEF";
    for (int i = 7; i >= 0; i--, v >>= 4)
        p[i] = (uint8_t)digits[v & 0xf];
}

static size_t pad4_len(size_t n) { return (4 - (n & 3)) & 3; }

/* Appends one entry: header, name + NUL, padding, data, padding. */
static int emit(struct cpio_writer *w, const char *name, size_t name_len, uint32_t mode,
                uint32_t nlink, uint32_t ino, const void *data, size_t size)
{
    if (size > UINT32_MAX || name_len > UINT32_MAX - 1) {
        errno = EFBIG;
        return -1;
    }
    /* Sizes are bounded (name <= 4 KiB, data < 4 GiB), but keep the sum checked. */
    size_t head = CPIO_NEWC_HDR_SIZE + name_len + 1;
    size_t head_pad = pad4_len(w->len + head);
    size_t total;
    if (__builtin_add_overflow(head, head_pad, &total) ||
        __builtin_add_overflow(total, size, &total) ||
        __builtin_add_overflow(total, pad4_len(w->len + total), &total)) {
        errno = ENOMEM;
        return -1;
    }
    if (reserve_bytes(w, total) < 0)
        return -1;

    uint8_t *p = w->buf + w->len;
    const uint32_t fields[13] = {
        ino, mode, 0, 0, nlink, 0, (uint32_t)size, 0, 0, 0, 0, (uint32_t)(name_len + 1), 0,
    };
    memcpy(p, "070701", 6);
    for (int i = 0; i < 13; i++)
        put_hex8(p + 6 + 8 * i, fields[i]);
    p += CPIO_NEWC_HDR_SIZE;
    memcpy(p, name, name_len);
    p += name_len;
    memset(p, 0, 1 + head_pad);
    p += 1 + head_pad;
    if (size)
        memcpy(p, data, size);
    p += size;
    memset(p, 0, (size_t)(w->buf + w->len + total - p));
    w->len += total;
    return 0;
}

/* Emits and records one entry; name is the guest path without the leading "/". */
static int add_entry(struct cpio_writer *w, const char *name, size_t name_len, bool is_dir,
                     uint32_t mode, const void *data, size_t size)
{
    if (reserve_record(w) < 0) {
        errno = ENOMEM;
        return -1;
    }
    char *copy = strndup(name, name_len);
    if (!copy) {
        errno = ENOMEM;
        return -1;
    }
    if (emit(w, name, name_len, mode, is_dir ? 2 : 1, w->next_ino, data, size) < 0) {
        free(copy);
        return -1;
    }
    w->next_ino++;
    *find_slot(w, copy, name_len) = w->npaths + 1;
    w->paths[w->npaths++] = (struct cpio_writer_path){.path = copy, .is_dir = is_dir};
    return 0;
}

/* ---- paths ---------------------------------------------------------------------- */

/* Validates an absolute guest path; on success *rel points past the leading "/" and
 * *rel_len is its length (0 only for "/" itself). */
static int check_path(const char *path, const char **rel, size_t *rel_len)
{
    if (!path || path[0] != '/') {
        errno = EINVAL;
        return -1;
    }
    size_t len = strnlen(path, CPIO_WRITER_PATH_MAX + 1);
    if (len > CPIO_WRITER_PATH_MAX) {
        errno = EINVAL;
        return -1;
    }
    const char *r = path + 1;
    size_t rlen = len - 1;
    /* Every component must be non-empty (no "//", no trailing "/"), not "." or "..". */
    for (size_t start = 0; rlen > 0 && start <= rlen;) {
        const char *slash = memchr(r + start, '/', rlen - start);
        size_t end = slash ? (size_t)(slash - r) : rlen;
        size_t clen = end - start;
        if (clen == 0 || (clen == 1 && r[start] == '.') ||
            (clen == 2 && r[start] == '.' && r[start + 1] == '.')) {
            errno = EINVAL;
            return -1;
        }
        start = end + 1;
    }
    /* The reader would take this name for the end of the archive. */
    if (rlen == strlen(CPIO_TRAILER_NAME) && memcmp(r, CPIO_TRAILER_NAME, rlen) == 0) {
        errno = EINVAL;
        return -1;
    }
    *rel = r;
    *rel_len = rlen;
    return 0;
}

/* Checks that no proper prefix directory of rel is a file. */
static int check_parents(const struct cpio_writer *w, const char *rel, size_t rel_len)
{
    for (size_t i = 0; i < rel_len; i++) {
        if (rel[i] != '/')
            continue;
        const struct cpio_writer_path *e = lookup(w, rel, i);
        if (e && !e->is_dir) {
            errno = ENOTDIR;
            return -1;
        }
    }
    return 0;
}

static int emit_parents(struct cpio_writer *w, const char *rel, size_t rel_len)
{
    for (size_t i = 0; i < rel_len; i++) {
        if (rel[i] == '/' && !lookup(w, rel, i) &&
            add_entry(w, rel, i, true, DIR_MODE, NULL, 0) < 0)
            return -1;
    }
    return 0;
}

int cpio_writer_add_file(struct cpio_writer *w, const char *guest_path, const void *data,
                         size_t size, uint32_t mode)
{
    const char *rel;
    size_t rel_len;
    if (w->finished || check_path(guest_path, &rel, &rel_len) < 0 || rel_len == 0 ||
        (mode & ~(CPIO_S_IFMT | 07777u)) != 0 ||
        ((mode & CPIO_S_IFMT) != 0 && (mode & CPIO_S_IFMT) != CPIO_S_IFREG) ||
        (size > 0 && data == NULL)) {
        errno = EINVAL;
        return -1;
    }
    if (size > UINT32_MAX) {
        errno = EFBIG;
        return -1;
    }
    /* Check every conflict before emitting anything, so a rejected add leaves the
     * archive as it was. */
    if (check_parents(w, rel, rel_len) < 0)
        return -1;
    if (lookup(w, rel, rel_len)) {
        errno = EEXIST;
        return -1;
    }
    if (emit_parents(w, rel, rel_len) < 0)
        return -1;
    return add_entry(w, rel, rel_len, false, CPIO_S_IFREG | (mode & 07777u), data, size);
}

int cpio_writer_add_dir(struct cpio_writer *w, const char *guest_path)
{
    const char *rel;
    size_t rel_len;
    if (w->finished || check_path(guest_path, &rel, &rel_len) < 0) {
        errno = EINVAL;
        return -1;
    }
    if (rel_len == 0) /* "/" is the archive root: nothing to emit */
        return 0;
    if (check_parents(w, rel, rel_len) < 0)
        return -1;
    const struct cpio_writer_path *e = lookup(w, rel, rel_len);
    if (e) {
        if (e->is_dir)
            return 0;
        errno = EEXIST;
        return -1;
    }
    if (emit_parents(w, rel, rel_len) < 0)
        return -1;
    return add_entry(w, rel, rel_len, true, DIR_MODE, NULL, 0);
}

int cpio_writer_add_host_file(struct cpio_writer *w, const char *guest_path,
                              const char *host_path)
{
    int fd = open(host_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        errno = EINVAL;
        return -1;
    }
    if ((uint64_t)st.st_size > UINT32_MAX) {
        close(fd);
        errno = EFBIG;
        return -1;
    }
    size_t size = (size_t)st.st_size;
    uint8_t *data = malloc(size ? size : 1);
    if (!data) {
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    /* Read exactly the size fstat saw; a file shrinking underneath us is an error
     * rather than a silently truncated archive entry. */
    size_t got = 0;
    while (got < size) {
        ssize_t n = read(fd, data + got, size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            int e = n < 0 ? errno : EIO;
            free(data);
            close(fd);
            errno = e;
            return -1;
        }
        got += (size_t)n;
    }
    close(fd);
    int rc = cpio_writer_add_file(w, guest_path, data, size, st.st_mode & 07777u);
    int e = errno;
    free(data);
    errno = e;
    return rc;
}

int cpio_writer_finish(struct cpio_writer *w)
{
    if (w->finished) {
        errno = EINVAL;
        return -1;
    }
    if (emit(w, CPIO_TRAILER_NAME, strlen(CPIO_TRAILER_NAME), 0, 1, 0, NULL, 0) < 0)
        return -1;
    size_t pad = (512 - (w->len & 511)) & 511;
    if (reserve_bytes(w, pad) < 0)
        return -1;
    memset(w->buf + w->len, 0, pad);
    w->len += pad;
    w->finished = true;
    return 0;
}
