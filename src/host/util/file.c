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
