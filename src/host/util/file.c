#include "host/util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

int file_open_regular(int dirfd, const char *path, int flags, uint64_t resolve, struct thaw_error *err)
{
    struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC | O_NONBLOCK), .resolve = resolve};
    int fd = (int)syscall(SYS_openat2, dirfd, path, &how, sizeof how);
    if (fd < 0) {
        if (errno == ELOOP && (flags & O_NOFOLLOW))
            return thaw_fail(err, "%s is a symbolic link", path);
        if (errno == EXDEV || (errno == ELOOP && resolve))
            return thaw_fail(err, "%s resolves outside its directory or through a symbolic link", path);
        return thaw_fail_errno(err, "cannot open %s", path);
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return thaw_fail(err, "%s is not a regular file", path);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        close(fd);
        return thaw_fail_errno(err, "fcntl on %s", path);
    }
    return fd;
}

int read_file_at(int dirfd, const char *path, uint64_t resolve, size_t max, uint8_t **data, size_t *size,
                 struct thaw_error *err)
{
    *data = NULL;
    *size = 0;
    int fd = file_open_regular(dirfd, path, O_RDONLY, resolve, err);
    if (fd < 0)
        return -1;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return thaw_fail_errno(err, "cannot stat %s", path);
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return thaw_fail(err, "%s is larger than %zu bytes", path, max);
    }
    uint8_t *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        close(fd);
        return thaw_fail(err, "out of memory reading %s", path);
    }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            free(buf);
            close(fd);
            return n == 0 ? thaw_fail(err, "%s shrank while it was read", path)
                          : thaw_fail_errno(err, "cannot read %s", path);
        }
        got += (size_t)n;
    }
    close(fd);
    buf[got] = 0;
    *data = buf;
    *size = got;
    return 0;
}

int read_file(const char *path, size_t max, uint8_t **data, size_t *size, struct thaw_error *err)
{
    return read_file_at(AT_FDCWD, path, 0, max, data, size, err);
}

char *thaw_build_dir(void)
{
    const char *env = getenv("THAW_BUILD_DIR");
    if (env && *env)
        return strdup(env);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return strdup("build");
    exe[n] = 0;
    return strdup(dirname(exe));
}

int exe_sibling(char *out, size_t cap, const char *name)
{
    ssize_t n = cap > 1 ? readlink("/proc/self/exe", out, cap - 1) : -1;
    if (n <= 0)
        return -1;
    out[n] = 0;
    char *slash = strrchr(out, '/');
    size_t at = slash ? (size_t)(slash + 1 - out) : 0;
    if (at + strlen(name) + 1 > cap) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(out + at, name, strlen(name) + 1);
    return 0;
}

int copy_file_sparse(const char *src, const char *dst, struct thaw_error *err)
{
    int in = file_open_regular(AT_FDCWD, src, O_RDONLY | O_NOFOLLOW, 0, err); /* a FIFO never blocks */
    if (in < 0)
        return -1;
    struct stat st;
    if (fstat(in, &st) < 0) {
        close(in);
        return thaw_fail_errno(err, "cannot stat %s", src);
    }
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (out < 0) {
        close(in);
        return thaw_fail_errno(err, "cannot create %s", dst);
    }
    const size_t cap = 1u << 20;
    char *buf = malloc(cap);
    int rc = buf ? 0 : thaw_fail(err, "out of memory");
    off_t pos = 0;
    while (rc == 0 && pos < st.st_size) {
        off_t data = lseek(in, pos, SEEK_DATA);
        if (data < 0)
            break; /* only a hole is left */
        off_t hole = lseek(in, data, SEEK_HOLE);
        if (hole < 0) {
            rc = thaw_fail_errno(err, "seeking in %s", src);
            break;
        }
        for (off_t o = data; o < hole && rc == 0;) {
            size_t want = (size_t)(hole - o) < cap ? (size_t)(hole - o) : cap;
            ssize_t r = pread(in, buf, want, o);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                rc = thaw_fail_errno(err, "reading %s", src);
                break;
            }
            for (ssize_t done = 0; done < r;) {
                ssize_t w = pwrite(out, buf + done, (size_t)(r - done), o + done);
                if (w < 0 && errno == EINTR)
                    continue;
                if (w <= 0) {
                    rc = thaw_fail_errno(err, "writing %s", dst);
                    break;
                }
                done += w;
            }
            o += r;
        }
        pos = hole;
    }
    if (rc == 0 && (ftruncate(out, st.st_size) < 0 || fsync(out) < 0))
        rc = thaw_fail_errno(err, "finishing %s", dst);
    free(buf);
    close(in);
    if (close(out) < 0 && rc == 0)
        rc = thaw_fail_errno(err, "closing %s", dst);
    if (rc < 0)
        unlink(dst);
    return rc;
}

int pread_full(int fd, void *buf, size_t len, uint64_t off)
{
    for (size_t done = 0; done < len;) {
        ssize_t k = pread(fd, (uint8_t *)buf + done, len - done, (off_t)(off + done));
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            if (k == 0)
                errno = 0;
            return -1;
        }
        done += (size_t)k;
    }
    return 0;
}
