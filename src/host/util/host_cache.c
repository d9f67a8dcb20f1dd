#include "host/util/host_cache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/util/atomic_file.h"

bool host_cache_path(const char *env_var, const char *default_path, char *dir, size_t cap, const char **name)
{
    const char *v = getenv(env_var);
    if (v && !strcmp(v, "off"))
        return false;
    const char *path = v && *v ? v : default_path;
    const char *slash = strrchr(path, '/');
    if (!slash || !slash[1] || (size_t)(slash - path) + 1 > cap)
        return false;
    snprintf(dir, cap, "%.*s", slash == path ? 1 : (int)(slash - path), path);
    *name = slash + 1;
    return true;
}

ssize_t host_cache_read(const char *dir, const char *name, void *buf, size_t cap)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    struct stat st;
    ssize_t n = -1;
    /* Ours only: a file someone else could have written is not trusted. */
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_uid == geteuid() && !(st.st_mode & 022))
        n = read(fd, buf, cap);
    close(fd);
    return n;
}

void host_cache_store(const char *dir, const char *name, const void *buf, size_t len)
{
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return;
    struct thaw_error ignored;
    (void)write_file_atomic(dir, name, buf, len, &ignored);
}
