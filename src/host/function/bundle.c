#include "host/function/bundle.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/function/cpio_writer.h"
#include "thaw/abi.h"

#define MANIFEST_MAX (1u << 20)
#define PROGRAM_MAX (512u << 20)
/* Inside a bundle no path may leave its directory, through ".." or a symbolic link. */
#define BENEATH (RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)

bool bundle_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > BUNDLE_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && (c == '_' || c == '-'));
        if (!ok)
            return false;
    }
    return true;
}

/* A relative path inside the bundle: no absolute paths, no "..", no empty parts. */
static bool relative_path_safe(const char *p)
{
    if (!*p || *p == '/')
        return false;
    const char *c = p;
    while (*c) {
        const char *e = strchr(c, '/');
        size_t n = e ? (size_t)(e - c) : strlen(c);
        if (n == 0 || (n == 2 && c[0] == '.' && c[1] == '.'))
            return false;
        c += n + (e ? 1 : 0);
    }
    return true;
}

static char *resolve_path(const struct bundle *b, const char *build_dir, const char *p, struct thaw_error *err)
{
    char *out = NULL;
    const char *rel = p;
    const char *base = b->dir;
    char *build_functions = NULL;
    if (strncmp(p, "build:", 6) == 0) {
        rel = p + 6;
        if (asprintf(&build_functions, "%s/functions", build_dir) < 0)
            return NULL;
        base = build_functions;
    }
    if (!relative_path_safe(rel)) {
        thaw_fail(err, "manifest path \"%s\" must be relative, without \"..\"", p);
    } else if (asprintf(&out, "%s/%s", base, rel) < 0) {
        out = NULL;
        thaw_fail(err, "out of memory");
    }
    free(build_functions);
    return out;
}

/* Reads the bundle file p (or "build:X" from build_dir/functions) beneath its base
 * directory, charging its size to *budget first. *mode gets its permission bits. */
static int load_beneath(const struct bundle *b, const char *build_dir, const char *p, uint64_t *budget,
                        uint8_t **data, size_t *size, uint32_t *mode, struct thaw_error *err)
{
    *data = NULL;
    *size = 0;
    const char *rel = p;
    char *base = NULL;
    if (strncmp(p, "build:", 6) == 0) {
        rel = p + 6;
        if (asprintf(&base, "%s/functions", build_dir) < 0)
            return thaw_fail(err, "out of memory");
    } else if (!(base = strdup(b->dir))) {
        return thaw_fail(err, "out of memory");
    }
    int rc = -1, fd = -1;
    int dfd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (!relative_path_safe(rel)) {
        thaw_fail(err, "path \"%s\" must be relative, without \"..\"", p);
        goto out;
    }
    if (dfd < 0) {
        thaw_fail_errno(err, "cannot open %s", base);
        goto out;
    }
    struct thaw_error why;
    if ((fd = file_open_regular(dfd, rel, O_RDONLY, BENEATH, &why)) < 0) {
        thaw_fail(err, "%s: %s", base, why.msg);
        goto out;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        thaw_fail_errno(err, "cannot stat %s/%s", base, rel);
        goto out;
    }
    if ((uint64_t)st.st_size > *budget) {
        thaw_fail(err, "%s/%s: %lld bytes would take the bundle over its %llu MiB limit", base, rel,
                  (long long)st.st_size, BUNDLE_TOTAL_MAX >> 20);
        goto out;
    }
    close(fd);
    fd = -1;
    if (read_file_at(dfd, rel, BENEATH, (size_t)*budget, data, size, &why) < 0) {
        thaw_fail(err, "%s: %s", base, why.msg);
        goto out;
    }
    *budget -= *size;
    *mode = (uint32_t)st.st_mode & 0777;
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (dfd >= 0)
        close(dfd);
    free(base);
    return rc;
}

static int append(uint8_t **buf, size_t *len, const uint8_t *data, size_t n)
{
    uint8_t *nb = realloc(*buf, *len + n + 1);
    if (!nb)
        return -1;
    memcpy(nb + *len, data, n);
    *buf = nb;
    *len += n;
    return 0;
}

static int load_files(struct bundle *b, json_t *files, uint64_t *budget, struct thaw_error *err)
{
    struct cpio_writer w;
    cpio_writer_init(&w);
    size_t i;
    json_t *f;
    int rc = -1;
    json_array_foreach(files, i, f) {
        const char *src = json_string_value(json_object_get(f, "src"));
        const char *dst = json_string_value(json_object_get(f, "dst"));
        if (!src || !dst) {
            thaw_fail(err, "files[%zu]: needs \"src\" and \"dst\" strings", i);
            goto out;
        }
        if (!relative_path_safe(src) || !strncmp(src, "build:", 6)) {
            thaw_fail(err, "files[%zu]: src \"%s\" must be relative, without \"..\"", i, src);
            goto out;
        }
        uint8_t *data;
        size_t size;
        uint32_t mode;
        struct thaw_error why;
        if (load_beneath(b, "", src, budget, &data, &size, &mode, &why) < 0) {
            thaw_fail(err, "files[%zu]: %s", i, why.msg);
            goto out;
        }
        int r = cpio_writer_add_file(&w, dst, data, size, mode);
        free(data);
        if (r < 0) {
            thaw_fail_errno(err, "files[%zu]: cannot add %s as %s", i, src, dst);
            goto out;
        }
    }
    if (cpio_writer_finish(&w) < 0 || append(&b->archive, &b->archive_size, w.buf, w.len) < 0) {
        thaw_fail(err, "out of memory building the file archive");
        goto out;
    }
    rc = 0;
out:
    cpio_writer_free(&w);
    return rc;
}

int bundle_load(struct bundle *b, const char *dir, const char *build_dir, struct thaw_error *err)
{
    memset(b, 0, sizeof *b);
    b->dir = strdup(dir);
    char *manifest_path = NULL;
    uint8_t *text = NULL;
    size_t text_len;
    json_t *root = NULL;
    if (!b->dir || asprintf(&manifest_path, "%s/function.json", dir) < 0) {
        thaw_fail(err, "out of memory");
        goto fail;
    }
    uint64_t budget = BUNDLE_TOTAL_MAX;
    uint32_t mode;
    struct thaw_error why;
    /* The bundle directory is the caller's choice; what is inside it must stay inside. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        thaw_fail_errno(err, "cannot open %s", manifest_path);
        goto fail;
    }
    int r = read_file_at(dfd, "function.json", BENEATH, MANIFEST_MAX, &text, &text_len, &why);
    close(dfd);
    if (r < 0) {
        thaw_fail(err, "%s: %s", dir, why.msg);
        goto fail;
    }
    json_error_t jerr;
    root = json_loadb((const char *)text, text_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root || !json_is_object(root)) {
        thaw_fail(err, "%s: %s (line %d)", manifest_path, root ? "not a JSON object" : jerr.text,
                  root ? 0 : jerr.line);
        goto fail;
    }
    const char *name = json_string_value(json_object_get(root, "name"));
    if (!name || !bundle_name_valid(name)) {
        thaw_fail(err, "%s: \"name\" must be 1-%d characters of [a-z0-9_-]", manifest_path, BUNDLE_NAME_MAX);
        goto fail;
    }
    snprintf(b->name, sizeof b->name, "%s", name);
    const char *runtime = json_string_value(json_object_get(root, "runtime"));
    if (!runtime || (strcmp(runtime, "native") && strcmp(runtime, "python"))) {
        thaw_fail(err, "%s: \"runtime\" must be \"native\" or \"python\"", manifest_path);
        goto fail;
    }
    snprintf(b->runtime, sizeof b->runtime, "%s", runtime);
    json_t *mem = json_object_get(root, "memory_mib");
    b->memory_mib = mem ? (uint64_t)json_integer_value(mem) : 256;
    if ((mem && !json_is_integer(mem)) || b->memory_mib < 16 || b->memory_mib > 4096 || b->memory_mib % 2) {
        thaw_fail(err, "%s: \"memory_mib\" must be an even integer from 16 to 4096", manifest_path);
        goto fail;
    }
    json_t *timeout = json_object_get(root, "timeout_s");
    if (timeout) {
        double t = json_number_value(timeout);
        if (!json_is_number(timeout) || !(t > 0) || t > BUNDLE_TIMEOUT_MAX_S) {
            thaw_fail(err, "%s: \"timeout_s\" must be a number of seconds above 0 and at most %d", manifest_path,
                      BUNDLE_TIMEOUT_MAX_S);
            goto fail;
        }
        b->timeout_ns = (uint64_t)(t * 1e9);
    }
    /* One request limit for host, guest and SDK (abi.h); at most a quarter of memory. */
    json_t *mr = json_object_get(root, "max_request_kib");
    b->max_request = mr ? (uint64_t)json_integer_value(mr) << 10 : THAW_MAX_REQUEST_DEFAULT;
    if ((mr && (!json_is_integer(mr) || json_integer_value(mr) < 1)) || b->max_request > (b->memory_mib << 20) / 4) {
        thaw_fail(err, "%s: \"max_request_kib\" must be an integer from 1 to a quarter of memory_mib (%llu)",
                  manifest_path, (unsigned long long)(b->memory_mib << 8));
        goto fail;
    }
    const char *program = json_string_value(json_object_get(root, "program"));
    if (!program) {
        thaw_fail(err, "%s: \"program\" is required", manifest_path);
        goto fail;
    }
    if (!(b->program_path = resolve_path(b, build_dir, program, err)))
        goto fail;
    if (load_beneath(b, build_dir, program, &budget, &b->program, &b->program_size, &mode, err) < 0)
        goto fail;
    if (b->program_size > PROGRAM_MAX) {
        thaw_fail(err, "%s is larger than %u MiB", b->program_path, PROGRAM_MAX >> 20);
        goto fail;
    }

    /* argv: program basename, then "args". */
    json_t *args = json_object_get(root, "args");
    if (args && !json_is_array(args)) {
        thaw_fail(err, "%s: \"args\" must be an array of strings", manifest_path);
        goto fail;
    }
    size_t nargs = args ? json_array_size(args) : 0;
    b->argv = calloc(nargs + 2, sizeof *b->argv);
    if (!b->argv)
        goto oom;
    const char *slash = strrchr(b->program_path, '/');
    b->argv[b->argc++] = strdup(slash ? slash + 1 : b->program_path);
    for (size_t i = 0; i < nargs; i++) {
        const char *a = json_string_value(json_array_get(args, i));
        if (!a) {
            thaw_fail(err, "%s: args[%zu] is not a string", manifest_path, i);
            goto fail;
        }
        b->argv[b->argc++] = strdup(a);
    }
    json_t *env = json_object_get(root, "env");
    if (env && !json_is_object(env)) {
        thaw_fail(err, "%s: \"env\" must be an object of strings", manifest_path);
        goto fail;
    }
    b->envp = calloc((env ? json_object_size(env) : 0) + 1, sizeof *b->envp);
    if (!b->envp)
        goto oom;
    const char *key;
    json_t *val;
    json_object_foreach(env, key, val) {
        if (!json_is_string(val) || !*key || strchr(key, '=')) {
            thaw_fail(err, "%s: env \"%s\" must be a string with a name without '='", manifest_path, key);
            goto fail;
        }
        if (asprintf(&b->envp[b->envc], "%s=%s", key, json_string_value(val)) < 0)
            goto oom;
        b->envc++;
    }

    const char *archive = json_string_value(json_object_get(root, "archive"));
    if (archive) {
        if (load_beneath(b, build_dir, archive, &budget, &b->archive, &b->archive_size, &mode, err) < 0)
            goto fail;
        /* Concatenated archives start 4-byte aligned. */
        static const uint8_t zero[4];
        if (b->archive_size % 4 && append(&b->archive, &b->archive_size, zero, 4 - b->archive_size % 4) < 0)
            goto oom;
    }
    const char *rootfs = json_string_value(json_object_get(root, "rootfs"));
    if (json_object_get(root, "rootfs") && !rootfs) {
        thaw_fail(err, "%s: \"rootfs\" must be a path", manifest_path);
        goto fail;
    }
    if (rootfs) {
        if (!(b->rootfs_path = resolve_path(b, build_dir, rootfs, err)))
            goto fail;
        if (access(b->rootfs_path, R_OK) != 0) {
            thaw_fail_errno(err, "%s: rootfs image %s", manifest_path, b->rootfs_path);
            goto fail;
        }
    }
    json_t *cwd = json_object_get(root, "cwd");
    if (cwd) {
        const char *c = json_string_value(cwd);
        if (!c || c[0] != '/' || strlen(c) > 255) {
            thaw_fail(err, "%s: \"cwd\" must be an absolute guest path of at most 255 bytes", manifest_path);
            goto fail;
        }
        if (!(b->cwd = strdup(c)))
            goto oom;
    }
    json_t *files = json_object_get(root, "files");
    if (files) {
        if (!json_is_array(files)) {
            thaw_fail(err, "%s: \"files\" must be an array", manifest_path);
            goto fail;
        }
        if (load_files(b, files, &budget, err) < 0)
            goto fail;
    }
    json_decref(root);
    free(text);
    free(manifest_path);
    return 0;
oom:
    thaw_fail(err, "out of memory");
fail:
    json_decref(root);
    free(text);
    free(manifest_path);
    bundle_free(b);
    return -1;
}

void bundle_free(struct bundle *b)
{
    for (size_t i = 0; b->argv && i < b->argc; i++)
        free(b->argv[i]);
    for (size_t i = 0; b->envp && i < b->envc; i++)
        free(b->envp[i]);
    free(b->argv);
    free(b->envp);
    free(b->dir);
    free(b->program_path);
    free(b->program);
    free(b->archive);
    free(b->rootfs_path);
    free(b->cwd);
    memset(b, 0, sizeof *b);
}
