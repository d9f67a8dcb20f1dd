#include "host/util/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/util/snap_identity.h"
#include "host/util/writer_tag.h"

static int write_all(int fd, const uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0) {
            errno = EIO;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int write_file_atomic(const char *dir, const char *name, const void *buf, size_t len, struct thaw_error *err)
{
    if (!name[0] || strchr(name, '/') || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return thaw_fail(err, "cannot write \"%s\" in %s: not a plain file name", name, dir);
    /* Unguessable, and carrying the writer's tag so that snapdir_clean_leftovers can
     * tell a killed writer's file from a live one's. */
    uint8_t r[8];
    if (snap_random(r, sizeof r, err) < 0)
        return -1;
    char tmp[NAME_MAX + 1], who[WRITER_TAG_MAX];
    writer_tag(who);
    int n = snprintf(tmp, sizeof tmp, ".%s.tmp.%s.%02x%02x%02x%02x%02x%02x%02x%02x", name, who, r[0],
                     r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
    if (n < 0 || (size_t)n >= sizeof tmp)
        return thaw_fail(err, "cannot write %s/%s: file name too long", dir, name);

    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return thaw_fail_errno(err, "cannot open directory %s", dir);

    int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC;
    int fd = openat(dfd, tmp, flags, 0600);
    if (fd < 0) {
        thaw_fail_errno(err, "cannot create %s/%s", dir, tmp);
        close(dfd);
        return -1;
    }
    if (write_all(fd, buf, len) < 0) {
        thaw_fail_errno(err, "cannot write %s/%s", dir, tmp);
        goto fail_open;
    }
    if (fsync(fd) < 0) {
        thaw_fail_errno(err, "cannot fsync %s/%s", dir, tmp);
        goto fail_open;
    }
    if (close(fd) < 0) {
        fd = -1;
        thaw_fail_errno(err, "cannot close %s/%s", dir, tmp);
        goto fail_open;
    }
    fd = -1;
    if (renameat(dfd, tmp, dfd, name) < 0) {
        thaw_fail_errno(err, "cannot rename %s/%s to %s", dir, tmp, name);
        goto fail_open;
    }
    /* The new name is in place; make the rename itself durable. */
    if (fsync(dfd) < 0) {
        thaw_fail_errno(err, "wrote %s/%s but cannot fsync the directory", dir, name);
        close(dfd);
        return -1;
    }
    close(dfd);
    return 0;

fail_open: {
    int saved = errno;
    if (fd >= 0)
        close(fd);
    unlinkat(dfd, tmp, 0);
    close(dfd);
    errno = saved;
    return -1;
}
}
