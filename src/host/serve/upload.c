#include "host/serve/upload.h"

#include <archive.h>
#include <archive_entry.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define MEMBER_PATH_MAX 1024

int upload_path_safe(const char *p)
{
    if (!*p || *p == '/' || strlen(p) > MEMBER_PATH_MAX)
        return 0;
    for (const unsigned char *c = (const unsigned char *)p; *c; c++)
        if (*c < 0x20 || *c >= 0x7f || *c == '\\')
            return 0;
    for (const char *c = p; *c;) {
        const char *e = strchr(c, '/');
        size_t n = e ? (size_t)(e - c) : strlen(c);
        if (n == 2 && c[0] == '.' && c[1] == '.')
            return 0;
        if (n == 0 && e && e[1]) /* "a//b" */
            return 0;
        c += n + (e ? 1 : 0);
    }
    return 1;
}

/* A symlink target that cannot leave the tree: relative and without "..". Any chain
 * of such links only ever descends from the link's own directory. */
static int link_target_safe(const char *t)
{
    if (!t || !*t || *t == '/' || strlen(t) > MEMBER_PATH_MAX)
        return 0;
    for (const char *c = t; *c;) {
        const char *e = strchr(c, '/');
        size_t n = e ? (size_t)(e - c) : strlen(c);
        if (n == 2 && c[0] == '.' && c[1] == '.')
            return 0;
        c += n + (e ? 1 : 0);
    }
    return 1;
}

int upload_unpack_tar(const void *buf, size_t len, const char *dest, const struct upload_limits *lim,
                      struct thaw_error *err)
{
    struct archive *a = archive_read_new();
    struct archive *w = archive_write_disk_new();
    int rc = -1;
    if (!a || !w) {
        thaw_fail(err, "out of memory");
        goto out;
    }
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    archive_read_support_filter_gzip(a);
    archive_read_support_filter_none(a);
    /* No owners, no permissions beyond rwx (no setuid), never through a symlink. */
    /* (Member paths are checked above and made absolute under dest, which is ours.) */
    archive_write_disk_set_options(w, ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                          ARCHIVE_EXTRACT_NO_OVERWRITE);
    if (archive_read_open_memory(a, buf, len) != ARCHIVE_OK) {
        thaw_fail(err, "the upload is not a tar archive: %s", archive_error_string(a));
        goto out;
    }
    uint64_t total = 0, entries = 0;
    struct archive_entry *e;
    for (;;) {
        int r = archive_read_next_header(a, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            thaw_fail(err, "the upload is not a valid tar archive: %s", archive_error_string(a));
            goto out;
        }
        if (++entries > lim->max_entries) {
            thaw_fail(err, "the upload has more than %llu entries", (unsigned long long)lim->max_entries);
            goto out;
        }
        const char *name = archive_entry_pathname(e);
        if (!name) {
            thaw_fail(err, "tar entry %llu has no name", (unsigned long long)entries);
            goto out;
        }
        char path[MEMBER_PATH_MAX + 2];
        while (name[0] == '.' && name[1] == '/')
            name += 2;
        if (strlen(name) > MEMBER_PATH_MAX) {
            thaw_fail(err, "tar entry \"%.200s...\": path too long", name);
            goto out;
        }
        strcpy(path, name); /* the entry's own copy changes below */
        if (!*path || !strcmp(path, "."))
            continue; /* the root itself */
        if (!upload_path_safe(path)) {
            thaw_fail(err, "tar entry \"%.200s\": path must be relative, ASCII, without \"..\"", path);
            goto out;
        }
        mode_t type = archive_entry_filetype(e);
        if (archive_entry_hardlink(e)) {
            thaw_fail(err, "tar entry \"%.200s\": hard links are not accepted", path);
            goto out;
        }
        if (type == AE_IFLNK) {
            if (!link_target_safe(archive_entry_symlink(e))) {
                thaw_fail(err, "tar entry \"%.200s\": symlink to \"%.200s\" leaves the function directory", path,
                          archive_entry_symlink(e) ? archive_entry_symlink(e) : "");
                goto out;
            }
        } else if (type != AE_IFREG && type != AE_IFDIR) {
            thaw_fail(err, "tar entry \"%.200s\": only files, directories and symlinks are accepted", path);
            goto out;
        }
        int64_t size = archive_entry_size(e);
        if (type == AE_IFREG && (size < 0 || (uint64_t)size > lim->max_file_bytes ||
                                 total + (uint64_t)size > lim->max_bytes)) {
            thaw_fail(err, "tar entry \"%.200s\": the upload unpacks to more than %llu bytes", path,
                      (unsigned long long)lim->max_bytes);
            goto out;
        }
        char full[PATH_MAX];
        if (snprintf(full, sizeof full, "%s/%s", dest, path) >= (int)sizeof full) {
            thaw_fail(err, "tar entry \"%.200s\": path too long", path);
            goto out;
        }
        archive_entry_set_pathname(e, full);
        archive_entry_set_perm(e, type == AE_IFDIR || (archive_entry_perm(e) & 0100) ? 0755 : 0644);
        archive_entry_set_uid(e, 0);
        archive_entry_set_gid(e, 0);
        if (archive_write_header(w, e) != ARCHIVE_OK) {
            thaw_fail(err, "tar entry \"%.200s\": %s", path, archive_error_string(w));
            goto out;
        }
        if (type == AE_IFREG) {
            const void *blk;
            size_t n;
            la_int64_t off;
            uint64_t got = 0;
            while ((r = archive_read_data_block(a, &blk, &n, &off)) == ARCHIVE_OK) {
                /* Count what really arrives, not what the header claimed. */
                got += n;
                if (got > (uint64_t)size || total + got > lim->max_bytes) {
                    thaw_fail(err, "tar entry \"%.200s\": more data than its header says", path);
                    goto out;
                }
                if (archive_write_data_block(w, blk, n, off) != ARCHIVE_OK) {
                    thaw_fail(err, "tar entry \"%.200s\": %s", path, archive_error_string(w));
                    goto out;
                }
            }
            if (r != ARCHIVE_EOF) {
                thaw_fail(err, "tar entry \"%.200s\": %s", path, archive_error_string(a));
                goto out;
            }
            total += (uint64_t)size;
        }
        if (archive_write_finish_entry(w) != ARCHIVE_OK) {
            thaw_fail(err, "tar entry \"%.200s\": %s", path, archive_error_string(w));
            goto out;
        }
    }
    if (entries == 0) {
        thaw_fail(err, "the upload is an empty archive");
        goto out;
    }
    rc = 0;
out:
    if (w) {
        archive_write_close(w);
        archive_write_free(w);
    }
    if (a)
        archive_read_free(a);
    return rc;
}
