#include "host/util/tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "host/util/file.h"

int tree_mkdir_p(const char *path, struct thaw_error *err)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return thaw_fail(err, "path too long: %s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0755) < 0 && errno != EEXIST)
            return thaw_fail_errno(err, "cannot create %s", buf);
        *p = '/';
    }
    if (mkdir(buf, 0755) < 0 && errno != EEXIST)
        return thaw_fail_errno(err, "cannot create %s", buf);
    return 0;
}

static int remove_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    int r = (type == FTW_DP) ? rmdir(path) : unlink(path);
    return r < 0 && errno != ENOENT ? -1 : 0;
}

int tree_remove(const char *path, struct thaw_error *err)
{
    struct stat st;
    if (lstat(path, &st) < 0)
        return errno == ENOENT ? 0 : thaw_fail_errno(err, "cannot remove %s", path);
    if (!S_ISDIR(st.st_mode))
        return unlink(path) < 0 ? thaw_fail_errno(err, "cannot remove %s", path) : 0;
    if (nftw(path, remove_one, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) < 0)
        return thaw_fail_errno(err, "cannot remove %s", path);
    return 0;
}

/* Copies the regular file open as in (st its status) to a new file `to`. */
static int copy_fd(int in, const struct stat *st, const char *from, const char *to, int sync,
                   struct thaw_error *err)
{
    int out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, (st->st_mode & 0111) ? 0755 : 0644);
    if (out < 0)
        return thaw_fail_errno(err, "cannot create %s", to);
    int rc = 0;
    off_t left = st->st_size;
    while (left > 0) {
        ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)left, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n == 0 ? thaw_fail(err, "%s shrank while it was copied", from)
                        : thaw_fail_errno(err, "cannot copy %s to %s", from, to);
            break;
        }
        left -= n;
    }
    if (rc == 0 && sync && fsync(out) < 0)
        rc = thaw_fail_errno(err, "cannot sync %s", to);
    if (close(out) < 0 && rc == 0)
        rc = thaw_fail_errno(err, "cannot write %s", to);
    if (rc < 0)
        unlink(to);
    return rc;
}

int tree_copy_file(const char *from, const char *to, int sync, struct thaw_error *err)
{
    int in = file_open_regular(AT_FDCWD, from, O_RDONLY, 0, err); /* a FIFO never blocks */
    if (in < 0)
        return -1;
    struct stat st;
    int rc = fstat(in, &st) < 0 ? thaw_fail_errno(err, "cannot stat %s", from) : copy_fd(in, &st, from, to, sync, err);
    close(in);
    return rc;
}

int tree_copy_file_beneath(const char *dir, const char *rel, const char *to, uint64_t *budget,
                           struct thaw_error *err)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return thaw_fail_errno(err, "cannot open %s", dir);
    struct thaw_error why;
    int in = file_open_regular(dfd, rel, O_RDONLY, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, &why);
    close(dfd);
    if (in < 0)
        return thaw_fail(err, "%s: %s", dir, why.msg);
    struct stat st;
    int rc;
    if (fstat(in, &st) < 0)
        rc = thaw_fail_errno(err, "cannot stat %s/%s", dir, rel);
    else if ((uint64_t)st.st_size > *budget)
        rc = thaw_fail(err, "%s/%s: %lld bytes would take the bundle over its size limit", dir, rel,
                       (long long)st.st_size);
    else if ((rc = copy_fd(in, &st, rel, to, 0, err)) == 0)
        *budget -= (uint64_t)st.st_size;
    close(in);
    return rc;
}

static uint64_t usage_alloc, usage_apparent;
static int usage_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)path;
    (void)ftw;
    if (type == FTW_F) {
        usage_alloc += (uint64_t)st->st_blocks * 512;
        usage_apparent += (uint64_t)st->st_size;
    }
    return 0;
}

int tree_usage(const char *path, uint64_t *allocated, uint64_t *apparent)
{
    /* nftw has no context argument: serialise the two accumulators. */
    static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&lock);
    usage_alloc = usage_apparent = 0;
    int r = nftw(path, usage_one, 16, FTW_PHYS | FTW_MOUNT);
    if (allocated)
        *allocated = usage_alloc;
    if (apparent)
        *apparent = usage_apparent;
    pthread_mutex_unlock(&lock);
    return r < 0 ? -1 : 0;
}

int tree_sync_dir(const char *path, struct thaw_error *err)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return thaw_fail_errno(err, "cannot open %s", path);
    int r = fsync(fd);
    close(fd);
    return r < 0 ? thaw_fail_errno(err, "cannot sync %s", path) : 0;
}

int tree_path(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int tree_copy(const char *from, const char *to, struct thaw_error *err)
{
    struct stat st;
    if (lstat(from, &st) < 0)
        return thaw_fail_errno(err, "cannot copy %s", from);
    if (S_ISREG(st.st_mode))
        return tree_copy_file(from, to, 1, err);
    if (S_ISLNK(st.st_mode)) {
        char target[PATH_MAX];
        ssize_t n = readlink(from, target, sizeof target - 1);
        if (n < 0)
            return thaw_fail_errno(err, "cannot read the link %s", from);
        target[n] = 0;
        return symlink(target, to) < 0 ? thaw_fail_errno(err, "cannot create %s", to) : 0;
    }
    if (!S_ISDIR(st.st_mode))
        return thaw_fail(err, "cannot copy %s: not a file, directory or symlink", from);
    if (mkdir(to, 0755) < 0)
        return thaw_fail_errno(err, "cannot create %s", to);
    DIR *d = opendir(from);
    if (!d)
        return thaw_fail_errno(err, "cannot list %s", from);
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char a[PATH_MAX], b[PATH_MAX];
        if (tree_path(a, sizeof a, "%s/%s", from, e->d_name) < 0 || tree_path(b, sizeof b, "%s/%s", to, e->d_name) < 0)
            rc = thaw_fail(err, "path too long under %s", from);
        else
            rc = tree_copy(a, b, err);
    }
    closedir(d);
    return rc < 0 ? -1 : tree_sync_dir(to, err);
}
