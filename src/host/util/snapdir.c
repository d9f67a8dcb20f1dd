#include "host/util/snapdir.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/util/snap_identity.h"
#include "host/util/writer_tag.h"

int snapdir_check(const char *dir, struct thaw_error *err)
{
    struct stat st;
    if (lstat(dir, &st) < 0)
        return thaw_fail_errno(err, "cannot use snapshot directory %s", dir);
    if (S_ISLNK(st.st_mode))
        return thaw_fail(err, "snapshot directory %s is a symbolic link", dir);
    if (!S_ISDIR(st.st_mode))
        return thaw_fail(err, "%s is not a directory", dir);
    if (st.st_uid != geteuid() && st.st_uid != 0)
        return thaw_fail(err, "snapshot directory %s belongs to uid %u, not to this user (%u)", dir,
                         (unsigned)st.st_uid, (unsigned)geteuid());
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return thaw_fail(err, "snapshot directory %s may be written by other users (mode %03o)", dir,
                         (unsigned)(st.st_mode & 0777));
    return 0;
}

/* Splits dir into its parent and last component. */
static int split(const char *dir, char *parent, size_t plen, char *base, size_t blen, struct thaw_error *err)
{
    char tmp[PATH_MAX];
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (n == 0 || n >= sizeof tmp)
        return thaw_fail(err, "bad snapshot directory name \"%s\"", dir);
    memcpy(tmp, dir, n);
    tmp[n] = 0;
    char *slash = strrchr(tmp, '/');
    const char *b = slash ? slash + 1 : tmp;
    if (!*b || !strcmp(b, ".") || !strcmp(b, ".."))
        return thaw_fail(err, "bad snapshot directory name \"%s\"", dir);
    if ((size_t)snprintf(base, blen, "%s", b) >= blen)
        return thaw_fail(err, "snapshot directory name too long: %s", dir);
    if (slash == tmp)
        snprintf(parent, plen, "/");
    else if (slash) {
        *slash = 0;
        snprintf(parent, plen, "%s", tmp);
    } else
        snprintf(parent, plen, ".");
    return 0;
}

int snapdir_begin(const char *dir, char *tmp, size_t tmp_len, struct thaw_error *err)
{
    char parent[PATH_MAX], base[NAME_MAX + 1];
    if (split(dir, parent, sizeof parent, base, sizeof base, err) < 0)
        return -1;
    uint8_t r[8];
    if (snap_random(r, sizeof r, err) < 0)
        return -1;
    char who[WRITER_TAG_MAX];
    writer_tag(who);
    int n = snprintf(tmp, tmp_len, "%s/.%.200s.new.%s.%02x%02x%02x%02x%02x%02x%02x%02x", parent, base, who, r[0],
                     r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
    if (n < 0 || (size_t)n >= tmp_len)
        return thaw_fail(err, "snapshot directory name too long: %s", dir);
    /* mkdir never follows or reuses an existing name; the mode is set whatever the
     * umask, since snapdir_check refuses a group-writable snapshot. */
    if (mkdir(tmp, 0755) < 0)
        return thaw_fail_errno(err, "cannot create %s", tmp);
    if (chmod(tmp, 0755) < 0) {
        rmdir(tmp);
        return thaw_fail_errno(err, "cannot chmod %s", tmp);
    }
    return 0;
}

/* Names a snapshot directory may hold: state, memory, anything of the working set
 * ("ws.*", so that later ws files and locks need no change here), the root-filesystem
 * image's descriptor and its files ("rootfs", "rootfs.*": cow, ws), and the temporaries
 * of all of these. */
static bool snapshot_file(const char *n, size_t len)
{
    size_t rl = strlen(SNAPDIR_ROOTFS);
    return (len == strlen(SNAPDIR_STATE) && !strncmp(n, SNAPDIR_STATE, len)) ||
           (len == strlen(SNAPDIR_MEMORY) && !strncmp(n, SNAPDIR_MEMORY, len)) || (len > 3 && !strncmp(n, "ws.", 3)) ||
           (len == rl && !strncmp(n, SNAPDIR_ROOTFS, rl)) || (len > rl + 1 && !strncmp(n, SNAPDIR_ROOTFS ".", rl + 1));
}

static bool snapshot_name(const char *n)
{
    if (snapshot_file(n, strlen(n)))
        return true;
    const char *t = n[0] == '.' ? strstr(n + 1, ".tmp.") : NULL;
    return t && snapshot_file(n + 1, (size_t)(t - n - 1));
}

/* Calls fn for every entry of the directory open as dfd (which it closes); stops and
 * returns -1 if fn does. */
static int each_entry(int dfd, int (*fn)(int dfd, const char *name, void *ctx), void *ctx)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return -1;
    }
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            rc = fn(dirfd(d), e->d_name, ctx);
    closedir(d);
    return rc;
}

static int only_snapshot_files(int dfd, const char *name, void *ctx)
{
    (void)dfd;
    if (snapshot_name(name))
        return 0;
    snprintf(ctx, NAME_MAX + 1, "%s", name);
    return -1;
}

static int remove_snapshot_file(int dfd, const char *name, void *ctx)
{
    (void)ctx;
    if (snapshot_name(name))
        unlinkat(dfd, name, 0);
    return 0;
}

/* Removes the snapshot files of a directory and the directory if it is then empty. */
static void remove_snapshot_dir(const char *path)
{
    int dfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return;
    each_entry(dfd, remove_snapshot_file, NULL);
    rmdir(path);
}

void snapdir_abort(const char *tmp)
{
    remove_snapshot_dir(tmp);
}

static int fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int snapdir_commit(const char *tmp, const char *dir, struct thaw_error *err)
{
    char parent[PATH_MAX], base[NAME_MAX + 1];
    if (split(dir, parent, sizeof parent, base, sizeof base, err) < 0)
        return -1;
    if (fsync_dir(tmp) < 0)
        return thaw_fail_errno(err, "cannot fsync %s", tmp);
    struct stat st;
    if (lstat(dir, &st) < 0) {
        if (errno != ENOENT)
            return thaw_fail_errno(err, "cannot use %s", dir);
        if (rename(tmp, dir) < 0)
            return thaw_fail_errno(err, "cannot rename %s to %s", tmp, dir);
    } else {
        if (snapdir_check(dir, err) < 0)
            return -1;
        char other[NAME_MAX + 1] = "";
        int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dfd < 0)
            return thaw_fail_errno(err, "cannot open %s", dir);
        if (each_entry(dfd, only_snapshot_files, other) < 0)
            return thaw_fail(err, "%s holds \"%s\", which is not a snapshot file: refusing to replace it", dir,
                             other[0] ? other : "?");
        /* One step: the directory name now points at the complete new snapshot. */
        if (renameat2(AT_FDCWD, tmp, AT_FDCWD, dir, RENAME_EXCHANGE) < 0)
            return thaw_fail_errno(err, "cannot exchange %s with %s", tmp, dir);
        remove_snapshot_dir(tmp); /* the old snapshot and its working set */
    }
    if (fsync_dir(parent) < 0)
        return thaw_fail_errno(err, "cannot fsync %s", parent);
    return 0;
}

/* The writer's tag in ".<anything><kind><tag>.<random>", or NULL. */
static const char *tag_after(const char *name, const char *kind)
{
    if (name[0] != '.')
        return NULL;
    const char *t = strstr(name + 1, kind);
    return t ? t + strlen(kind) : NULL;
}

static int clean_tmp_file(int dfd, const char *name, void *ctx)
{
    (void)ctx;
    const char *tag = tag_after(name, ".tmp.");
    if (tag && snapshot_name(name) && writer_tag_gone(tag))
        unlinkat(dfd, name, 0);
    return 0;
}

struct clean_ctx {
    const char *parent, *base;
};

static int clean_new_dir(int dfd, const char *name, void *ctx)
{
    (void)dfd;
    const struct clean_ctx *c = ctx;
    size_t bl = strlen(c->base);
    if (name[0] != '.' || strncmp(name + 1, c->base, bl) || strncmp(name + 1 + bl, ".new.", 5))
        return 0;
    if (writer_tag_gone(name + 1 + bl + 5)) {
        char path[PATH_MAX];
        if ((size_t)snprintf(path, sizeof path, "%s/%s", c->parent, name) < sizeof path)
            remove_snapshot_dir(path);
    }
    return 0;
}

void snapdir_clean_leftovers(const char *dir)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd >= 0)
        each_entry(dfd, clean_tmp_file, NULL);
    char parent[PATH_MAX], base[NAME_MAX + 1];
    struct thaw_error e;
    if (split(dir, parent, sizeof parent, base, sizeof base, &e) < 0)
        return;
    int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    struct clean_ctx c = {parent, base};
    if (pfd >= 0)
        each_entry(pfd, clean_new_dir, &c);
}
