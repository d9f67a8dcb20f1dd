/* Eviction of runtime images nothing uses (python_build.h, python_images_gc). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "host/function/python_build.h"
#include "host/util/file.h"

#define MAX_IMAGES 1024
#define SCAN_DEPTH 4
#define GC_MIN_AGE_S 60 /* an image this new may be a build's whose bundle is not written yet */

struct names {
    char (*v)[256];
    size_t n;
};

static bool image_name(const char *n)
{
    size_t len = strlen(n);
    return !strncmp(n, "python3.11-", 11) && len > 15 && len < 256 && !strcmp(n + len - 4, ".img");
}

static void add_name(struct names *s, const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (!image_name(base) || s->n >= MAX_IMAGES)
        return;
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->v[i], base))
            return;
    snprintf(s->v[s->n++], sizeof s->v[0], "%s", base);
}

/* A bundle's function.json ("rootfs": "build:python3.11-images/NAME") or a snapshot's
 * rootfs descriptor ("image": PATH): the image it names, if any. */
static void note_reference(struct names *s, const char *path, const char *key)
{
    uint8_t *text;
    size_t len;
    struct thaw_error err;
    if (read_file(path, 1u << 20, &text, &len, &err) < 0)
        return;
    json_t *o = json_loadb((const char *)text, len, 0, NULL);
    free(text);
    const char *v = json_string_value(json_object_get(o, key));
    if (v)
        add_name(s, v);
    json_decref(o);
}

/* Every function.json and rootfs file under dir (symlinks not followed). */
static void scan(struct names *s, const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[4096];
        if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p)
            continue;
        struct stat st;
        if (lstat(p, &st) < 0)
            continue;
        if (S_ISDIR(st.st_mode) && depth > 0)
            scan(s, p, depth - 1);
        else if (S_ISREG(st.st_mode) && !strcmp(e->d_name, "function.json"))
            note_reference(s, p, "rootfs");
        else if (S_ISREG(st.st_mode) && !strcmp(e->d_name, "rootfs"))
            note_reference(s, p, "image");
    }
    closedir(d);
}

int python_images_gc(const char *const *keep_roots, size_t nroots, struct python_gc_result *res,
                     struct thaw_error *err)
{
    memset(res, 0, sizeof *res);
    char *build = thaw_build_dir();
    char cache[4096], bundles[4096], lockp[4200];
    if (!build)
        return thaw_fail(err, "out of memory");
    snprintf(cache, sizeof cache, "%s/functions/" PYTHON_IMAGE_DIR, build);
    snprintf(bundles, sizeof bundles, "%s/bundles", build);
    free(build);
    struct names used = {calloc(MAX_IMAGES, sizeof *used.v), 0};
    if (!used.v)
        return thaw_fail(err, "out of memory");
    scan(&used, bundles, 1);
    for (size_t i = 0; i < nroots; i++)
        scan(&used, keep_roots[i], SCAN_DEPTH);
    DIR *d = opendir(cache);
    if (!d) {
        free(used.v);
        return errno == ENOENT ? 0 : thaw_fail_errno(err, "cannot open %s", cache);
    }
    /* The builds' lock (build_function.py): no image is made while we look. */
    snprintf(lockp, sizeof lockp, "%s/.lock", cache);
    int lock = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lock < 0 || flock(lock, LOCK_EX) < 0) {
        if (lock >= 0)
            close(lock);
        closedir(d);
        free(used.v);
        return thaw_fail_errno(err, "cannot lock %s", lockp);
    }
    time_t now = time(NULL);
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d))) {
        if (!image_name(e->d_name))
            continue;
        bool keep = false;
        for (size_t i = 0; i < used.n && !keep; i++)
            keep = !strcmp(used.v[i], e->d_name);
        char img[4400], meta[4400];
        snprintf(img, sizeof img, "%s/%s", cache, e->d_name);
        snprintf(meta, sizeof meta, "%s/%.*s.json", cache, (int)strlen(e->d_name) - 4, e->d_name);
        struct stat st;
        if (lstat(img, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        if (keep || now - st.st_mtime < GC_MIN_AGE_S) {
            res->kept++;
            continue;
        }
        if (unlink(img) < 0) {
            rc = thaw_fail_errno(err, "cannot remove %s", img);
            break;
        }
        (void)unlink(meta);
        res->removed++;
        res->removed_bytes += (uint64_t)st.st_blocks * 512;
    }
    close(lock);
    closedir(d);
    free(used.v);
    return rc;
}
