#include "host/util/file.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int read_file(const char *path, size_t max, uint8_t **data, size_t *size, struct thaw_error *err)
{
    *data = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return thaw_fail_errno(err, "cannot open %s", path);
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return thaw_fail(err, "%s is not a regular file", path);
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
            return thaw_fail_errno(err, "cannot read %s", path);
        }
        got += (size_t)n;
    }
    close(fd);
    buf[got] = 0;
    *data = buf;
    *size = got;
    return 0;
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
