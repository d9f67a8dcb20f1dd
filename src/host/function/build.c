#include "host/function/build.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <sys/prctl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "host/function/bundle.h"
#include "host/function/python_build.h"
#include "host/util/clock.h"
#include "host/util/file.h"
#include "host/util/tree.h"

/* Bump when the recipe changes, so every stamp goes stale. */
#define BUILD_RECIPE "thaw-build-1"
#define MANIFEST_MAX (1u << 20)
#define SOURCE_FILE_MAX (256u << 20)
#define MAX_SOURCES 64

char *function_build_source_dir(void)
{
    const char *env = getenv("THAW_SOURCE_DIR");
    if (env && *env)
        return strdup(env);
    char *build = thaw_build_dir(), *p = NULL;
    if (build && asprintf(&p, "%s/..", build) < 0)
        p = NULL;
    free(build);
    return p;
}

/* snprintf into a path buffer; -1 when it does not fit. */
__attribute__((format(printf, 3, 4))) static int pathf(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, cap, fmt, ap);
    va_end(ap);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* ---- running the tools ------------------------------------------------------------ */

static void log_tail(const char *log_path, char *out, size_t cap)
{
    out[0] = 0;
    int fd = open(log_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    off_t end = lseek(fd, 0, SEEK_END);
    off_t start = end > 300 ? end - 300 : 0;
    ssize_t n = pread(fd, out, cap - 1, start);
    close(fd);
    if (n <= 0)
        return;
    out[n] = 0;
    for (ssize_t i = 0; i < n; i++)
        if (out[i] == '\n' || out[i] == '\t' || (unsigned char)out[i] < 0x20)
            out[i] = ' ';
    /* Start at a word boundary when we cut into the log. */
    if (start > 0) {
        char *sp = strchr(out, ' ');
        if (sp)
            memmove(out, sp + 1, strlen(sp + 1) + 1);
    }
}

int function_build_exec(char *const argv[], const char *cwd, const char *log_path, uint64_t timeout_ns,
                        struct thaw_error *err)
{
    int logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logfd < 0)
        return thaw_fail_errno(err, "cannot open %s", log_path);
    /* fork+exec rather than posix_spawn: the child asks to die with its parent
     * (PR_SET_PDEATHSIG), so a daemon killed mid-deploy leaves no build writing into
     * a staging directory that the next start removes. */
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        close(logfd);
        return thaw_fail_errno(err, "cannot run %s", argv[0]);
    }
    if (pid == 0) {
        setpgid(0, 0); /* its own group, so a timeout kills what it started too */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull < 0 || dup2(devnull, 0) < 0 || dup2(logfd, 1) < 0 || dup2(logfd, 2) < 0)
            _exit(127);
        if (cwd && chdir(cwd) < 0)
            _exit(127);
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execvp(argv[0], argv);
        dprintf(2, "cannot run %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(logfd);
    uint64_t deadline = clock_now_ns() + timeout_ns;
    int status = 0;
    bool timed_out = false;
    for (;;) {
        pid_t w = waitpid(pid, &status, WNOHANG);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR)
            return thaw_fail_errno(err, "waitpid %s", argv[0]);
        if (!timed_out && clock_now_ns() > deadline) {
            kill(-pid, SIGKILL);
            timed_out = true;
        }
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && !timed_out)
        return 0;
    char tail[320];
    log_tail(log_path, tail, sizeof tail);
    const char *base = strrchr(argv[0], '/');
    base = base ? base + 1 : argv[0];
    if (timed_out)
        return thaw_fail(err, "%s timed out after %.0f s: %s", base, (double)timeout_ns / 1e9, tail);
    if (WIFSIGNALED(status))
        return thaw_fail(err, "%s killed by signal %d: %s", base, WTERMSIG(status), tail);
    return thaw_fail(err, "%s failed (exit %d): %s", base, WEXITSTATUS(status), tail);
}

/* ---- the stamp: a hash of every input --------------------------------------------- */

struct hash {
    uint64_t h;
};

static void hash_bytes(struct hash *h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) {
        h->h ^= b[i];
        h->h *= 0x100000001b3ull; /* FNV-1a 64 */
    }
}

static void hash_str(struct hash *h, const char *s)
{
    hash_bytes(h, s, strlen(s) + 1);
}

static bool skipped_name(const char *n)
{
    return n[0] == '.' || !strcmp(n, "__pycache__");
}

static int filter_entry(const struct dirent *d)
{
    return !skipped_name(d->d_name);
}

/* Hashes every file under dir (names, modes, sizes and contents), in name order. */
static int hash_tree(struct hash *h, const char *dir, const char *rel, int depth, struct thaw_error *err)
{
    if (depth > 16)
        return thaw_fail(err, "%s: directories nested too deep", dir);
    struct dirent **names;
    int n = scandir(dir, &names, filter_entry, alphasort);
    if (n < 0)
        return thaw_fail_errno(err, "cannot read %s", dir);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char path[PATH_MAX], sub[PATH_MAX];
        pathf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        pathf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", names[i]->d_name);
        struct stat st;
        if (rc == 0 && lstat(path, &st) == 0) {
            hash_str(h, sub);
            uint32_t mode = (uint32_t)st.st_mode;
            hash_bytes(h, &mode, sizeof mode);
            if (S_ISDIR(st.st_mode)) {
                rc = hash_tree(h, path, sub, depth + 1, err);
            } else if (S_ISREG(st.st_mode)) {
                uint8_t *data;
                size_t len;
                if (read_file(path, SOURCE_FILE_MAX, &data, &len, err) < 0) {
                    rc = -1;
                } else {
                    hash_bytes(h, &len, sizeof len);
                    hash_bytes(h, data, len);
                    free(data);
                }
            }
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

/* Tools and interpreters: identified by path, size and mtime (they are large). */
static void hash_host_file(void *ctx, const char *path)
{
    struct hash *h = ctx;
    struct stat st;
    hash_str(h, path);
    if (stat(path, &st) == 0) {
        int64_t v[3] = {st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec};
        hash_bytes(h, v, sizeof v);
    }
}

/* ---- the build ------------------------------------------------------------------------ */

struct build_ctx {
    const char *src;
    const char *stage;
    char log[PATH_MAX];
    json_t *manifest;
    struct thaw_error *err;
    uint64_t budget; /* bytes the function's own files may still add (BUNDLE_TOTAL_MAX) */
};

static bool relative_safe(const char *p)
{
    if (!*p || *p == '/')
        return false;
    for (const char *c = p; *c;) {
        const char *e = strchr(c, '/');
        size_t n = e ? (size_t)(e - c) : strlen(c);
        if (n == 0 || (n == 2 && c[0] == '.' && c[1] == '.'))
            return false;
        c += n + (e ? 1 : 0);
    }
    return true;
}

/* A library name for the link line: "-lNAME" only, so a manifest cannot pass flags. */
static bool link_arg_ok(const char *a)
{
    if (strncmp(a, "-l", 2) || !a[2] || strlen(a) > 64)
        return false;
    for (const char *c = a + 2; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
              *c == '_' || *c == '-' || *c == '.' || *c == '+'))
            return false;
    return true;
}

static int list_c_sources(const char *dir, char ***out, size_t *n, struct thaw_error *err)
{
    struct dirent **names;
    int k = scandir(dir, &names, filter_entry, alphasort);
    if (k < 0)
        return thaw_fail_errno(err, "cannot read %s", dir);
    *out = calloc(MAX_SOURCES + 1, sizeof **out);
    *n = 0;
    int rc = *out ? 0 : thaw_fail(err, "out of memory");
    for (int i = 0; i < k; i++) {
        size_t len = strlen(names[i]->d_name);
        if (rc == 0 && len > 2 && !strcmp(names[i]->d_name + len - 2, ".c")) {
            if (*n == MAX_SOURCES)
                rc = thaw_fail(err, "%s: more than %d C sources", dir, MAX_SOURCES);
            else if (asprintf(&(*out)[(*n)++], "%s/%s", dir, names[i]->d_name) < 0)
                rc = thaw_fail(err, "out of memory");
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

/* True if thaw's own build made build_dir/functions/<rel> (a "build:" path). */
static bool build_artifact_exists(const char *rel)
{
    char *build = thaw_build_dir(), *p = NULL;
    bool ok = build && asprintf(&p, "%s/functions/%s", build, rel) >= 0 && access(p, R_OK) == 0;
    free(build);
    free(p);
    return ok;
}

/* Copies build/functions/<rel> (made by thaw's own Makefile) to `to`. */
static int copy_build_artifact(const char *rel, const char *to, struct thaw_error *err)
{
    char *build = thaw_build_dir(), *from = NULL;
    int r = build && asprintf(&from, "%s/functions/%s", build, rel) >= 0 ? 0 : -1;
    if (r == 0)
        r = tree_copy_file(from, to, 0, err);
    else
        thaw_fail(err, "out of memory");
    free(build);
    free(from);
    return r;
}

static int build_native(struct build_ctx *c)
{
    char **sources = NULL;
    size_t nsrc = 0;
    char program[PATH_MAX];
    pathf(program, sizeof program, "%s/program", c->stage);
    if (list_c_sources(c->src, &sources, &nsrc, c->err) < 0)
        goto fail;
    const char *prog = json_string_value(json_object_get(c->manifest, "program"));
    /* A program that thaw's own Makefile builds ("build:X", e.g. a dynamic program with its
     * shared libraries) is taken from there when it exists: its recipe is not "compile every
     * *.c into one program", so recompiling the sources here would make something else. */
    bool from_build = prog && !strncmp(prog, "build:", 6) && relative_safe(prog + 6) && build_artifact_exists(prog + 6);
    if (nsrc > 0 && !from_build) {
        const char *libc = json_string_value(json_object_get(c->manifest, "libc"));
        if (libc && strcmp(libc, "glibc") && strcmp(libc, "musl")) {
            thaw_fail(c->err, "function.json: \"libc\" must be \"glibc\" or \"musl\"");
            goto fail;
        }
        json_t *link = json_object_get(c->manifest, "link");
        if (link && !json_is_array(link)) {
            thaw_fail(c->err, "function.json: \"link\" must be an array like [\"-lpng16\", \"-lz\"]");
            goto fail;
        }
        char *src_root = function_build_source_dir(), *sdk = NULL, *abi = NULL;
        if (!src_root || asprintf(&sdk, "-I%s/sdk", src_root) < 0 || asprintf(&abi, "-I%s/include", src_root) < 0) {
            free(src_root);
            free(sdk);
            thaw_fail(c->err, "out of memory");
            goto fail;
        }
        free(src_root);
        const char *cc = (libc && !strcmp(libc, "musl")) ? "musl-gcc" : (getenv("CC") ? getenv("CC") : "cc");
        const char *argv[16 + MAX_SOURCES + 32] = {cc, "-std=c11", "-D_GNU_SOURCE", "-O2", "-g", "-Wall",
                                                   "-Wextra", "-Werror", "-static", sdk, abi, "-o", program};
        size_t a = 13;
        for (size_t i = 0; i < nsrc; i++)
            argv[a++] = sources[i];
        size_t i;
        json_t *l;
        json_array_foreach(link, i, l) {
            const char *s = json_string_value(l);
            if (!s || !link_arg_ok(s) || i >= 32) {
                free(sdk);
                free(abi);
                thaw_fail(c->err, "function.json: link[%zu] must be a library like \"-lpng16\"", i);
                goto fail;
            }
            argv[a++] = s;
        }
        argv[a] = NULL;
        int r = function_build_exec((char *const *)argv, c->src, c->log, FUNCTION_BUILD_TIMEOUT_NS, c->err);
        free(sdk);
        free(abi);
        if (r < 0)
            goto fail;
    } else if (prog && !strncmp(prog, "build:", 6) && relative_safe(prog + 6)) {
        /* A variant that thaw's own build makes (hello-musl): take it from there. */
        if (copy_build_artifact(prog + 6, program, c->err) < 0)
            goto fail;
    } else if (prog && relative_safe(prog)) {
        /* The deployer's files stay beneath the function directory (no symlink out). */
        if (tree_copy_file_beneath(c->src, prog, program, &c->budget, c->err) < 0)
            goto fail;
    } else {
        thaw_fail(c->err, "%s: no C sources (*.c) and no \"program\" to run", c->src);
        goto fail;
    }
    json_object_set_new(c->manifest, "program", json_string("program"));

    /* Data files: packed by the Python tool (it also runs gen_data.py). */
    char gen[PATH_MAX];
    pathf(gen, sizeof gen, "%s/gen_data.py", c->src);
    const char *archive = json_string_value(json_object_get(c->manifest, "archive"));
    if (access(gen, F_OK) != 0 && archive && !strncmp(archive, "build:", 6) && relative_safe(archive + 6) &&
        build_artifact_exists(archive + 6)) {
        /* Made by thaw's Makefile (mk/dynamic.mk: the program's libraries): copy it. */
        char to[PATH_MAX];
        pathf(to, sizeof to, "%s/files.cpio", c->stage);
        if (copy_build_artifact(archive + 6, to, c->err) < 0)
            goto fail;
        json_object_set_new(c->manifest, "archive", json_string("files.cpio"));
    } else if (access(gen, F_OK) == 0 || (archive && !strncmp(archive, "build:", 6))) {
        if (python_pack_app_archive(c->src, c->stage, c->log, FUNCTION_BUILD_TIMEOUT_NS, c->err) < 0)
            goto fail;
        json_object_set_new(c->manifest, "archive", json_string("files.cpio"));
    } else if (archive) {
        char to[PATH_MAX];
        pathf(to, sizeof to, "%s/files.cpio", c->stage);
        if (!relative_safe(archive)) {
            thaw_fail(c->err, "function.json: archive \"%s\" must be relative, without \"..\"", archive);
            goto fail;
        }
        if (tree_copy_file_beneath(c->src, archive, to, &c->budget, c->err) < 0)
            goto fail;
        json_object_set_new(c->manifest, "archive", json_string("files.cpio"));
    }
    for (size_t i = 0; i < nsrc; i++)
        free(sources[i]);
    free(sources);
    return 0;
fail:
    for (size_t i = 0; sources && i < nsrc; i++)
        free(sources[i]);
    free(sources);
    return -1;
}

/* "files" entries: copied into the bundle under files/ at the same relative path. */
static int copy_listed_files(struct build_ctx *c)
{
    json_t *files = json_object_get(c->manifest, "files");
    if (!files)
        return 0;
    if (!json_is_array(files))
        return thaw_fail(c->err, "function.json: \"files\" must be an array");
    size_t i;
    json_t *f;
    json_array_foreach(files, i, f) {
        const char *src = json_string_value(json_object_get(f, "src"));
        if (!src || !relative_safe(src))
            return thaw_fail(c->err, "files[%zu]: \"src\" must be a relative path without \"..\"", i);
        char to[PATH_MAX], rel[PATH_MAX];
        if (pathf(rel, sizeof rel, "files/%s", src) < 0 ||
            pathf(to, sizeof to, "%s/%s", c->stage, rel) < 0)
            return thaw_fail(c->err, "files[%zu]: path too long", i);
        char *slash = strrchr(to, '/');
        *slash = 0;
        if (tree_mkdir_p(to, c->err) < 0)
            return -1;
        *slash = '/';
        struct thaw_error why;
        if (tree_copy_file_beneath(c->src, src, to, &c->budget, &why) < 0)
            return thaw_fail(c->err, "files[%zu]: %s", i, why.msg);
        json_object_set_new(f, "src", json_string(rel));
    }
    return 0;
}

/* Every key a source function.json may hold: a misspelt one ("pakages") is an error
 * rather than a setting that silently does nothing. */
static const char *const manifest_keys[] = {"name", "runtime", "memory_mib", "timeout_s", "max_request_kib",
                                            "program", "args", "env", "cwd", "archive", "files", "rootfs",
                                            "libc", "link", "packages", "interpreter", "serve", NULL};
#define MANIFEST_KEYS_TEXT                                                                                 \
    "name, runtime, memory_mib, timeout_s, max_request_kib, program, args, env, cwd, archive, files, rootfs, " \
    "libc, link, packages, interpreter, serve"

static const char *unknown_manifest_key(json_t *m)
{
    const char *key;
    json_t *val;
    json_object_foreach(m, key, val) {
        (void)val;
        bool known = false;
        for (size_t i = 0; manifest_keys[i] && !known; i++)
            known = !strcmp(key, manifest_keys[i]);
        if (!known)
            return key;
    }
    return NULL;
}

json_t *function_manifest_read(const char *src_dir, struct thaw_error *err)
{
    int dfd = open(src_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        thaw_fail_errno(err, "function.json: cannot open its directory");
        return NULL;
    }
    uint8_t *text;
    size_t len;
    struct thaw_error why; /* the manifest, like every file it names, is not a symlink */
    int r = read_file_at(dfd, "function.json", RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, MANIFEST_MAX, &text, &len,
                         &why);
    close(dfd);
    if (r < 0) {
        thaw_fail(err, "function.json: %s", why.msg);
        return NULL;
    }
    json_error_t jerr;
    json_t *m = json_loadb((const char *)text, len, JSON_REJECT_DUPLICATES, &jerr);
    free(text);
    if (!m)
        thaw_fail(err, "function.json: %s (line %d)", jerr.text, jerr.line);
    return m;
}

/* What the build needs of a manifest: an object of known keys, a valid name and runtime. */
static int check_manifest(json_t *m, const char *path, struct thaw_error *err)
{
    if (!json_is_object(m))
        return thaw_fail(err, "%s: not a JSON object", path);
    const char *name = json_string_value(json_object_get(m, "name"));
    const char *rt = json_string_value(json_object_get(m, "runtime"));
    const char *unknown = unknown_manifest_key(m);
    if (unknown)
        return thaw_fail(err, "%s: unknown key \"%s\" (known: %s)", path, unknown, MANIFEST_KEYS_TEXT);
    if (json_object_get(m, "serve") && !json_is_object(json_object_get(m, "serve")))
        return thaw_fail(err, "%s: \"serve\" must be an object of thaw serve's settings (docs/serve.md)", path);
    if (!name || !bundle_name_valid(name))
        return thaw_fail(err, "%s: \"name\" must be 1-%d characters of [a-z0-9_-]", path, BUNDLE_NAME_MAX);
    if (!rt || (strcmp(rt, "native") && strcmp(rt, "python")))
        return thaw_fail(err, "%s: \"runtime\" must be \"native\" or \"python\"", path);
    return 0;
}

/* src_dir's manifest, read and checked; errors name src_dir and function.json. */
static json_t *load_manifest(const char *src_dir, struct thaw_error *err)
{
    char path[PATH_MAX];
    pathf(path, sizeof path, "%s/function.json", src_dir);
    struct thaw_error why;
    json_t *m = function_manifest_read(src_dir, &why);
    if (!m) {
        thaw_fail(err, "%s: %s", src_dir, why.msg);
        return NULL;
    }
    if (check_manifest(m, path, err) < 0) {
        json_decref(m);
        return NULL;
    }
    return m;
}

static int compute_stamp(const char *src_dir, json_t *manifest, char out[32], struct thaw_error *err)
{
    struct hash h = {0xcbf29ce484222325ull};
    hash_str(&h, BUILD_RECIPE);
    if (hash_tree(&h, src_dir, "", 0, err) < 0)
        return -1;
    char *src_root = function_build_source_dir();
    char sdk[PATH_MAX];
    pathf(sdk, sizeof sdk, "%s/sdk/thaw_function.h", src_root ? src_root : ".");
    free(src_root);
    hash_host_file(&h, sdk);
    const char *rt = json_string_value(json_object_get(manifest, "runtime"));
    const char *prog = json_string_value(json_object_get(manifest, "program"));
    char gen[PATH_MAX];
    pathf(gen, sizeof gen, "%s/gen_data.py", src_dir);
    if (!strcmp(rt, "python") || access(gen, F_OK) == 0)
        python_build_inputs(hash_host_file, &h);
    if (prog && !strncmp(prog, "build:", 6)) {
        char *build = thaw_build_dir(), *p = NULL;
        if (build && asprintf(&p, "%s/functions/%s", build, prog + 6) >= 0)
            hash_host_file(&h, p);
        free(build);
        free(p);
    }
    snprintf(out, 32, "%016llx", (unsigned long long)h.h);
    return 0;
}

static bool stamp_matches(const char *out_dir, const char *stamp)
{
    char path[PATH_MAX];
    pathf(path, sizeof path, "%s/.stamp", out_dir);
    uint8_t *old;
    size_t len;
    if (read_file(path, 64, &old, &len, NULL) < 0)
        return false;
    bool same = len >= strlen(stamp) && !memcmp(old, stamp, strlen(stamp));
    free(old);
    return same;
}

static int write_text(const char *path, const char *text, struct thaw_error *err)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0) {
        if (f)
            fclose(f);
        return thaw_fail_errno(err, "cannot write %s", path);
    }
    return fclose(f) == 0 ? 0 : thaw_fail_errno(err, "cannot write %s", path);
}

static uint64_t file_size(const char *dir, const char *name)
{
    char p[PATH_MAX];
    struct stat st;
    pathf(p, sizeof p, "%s/%s", dir, name);
    return stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* given: src_dir's manifest as the caller read it (NULL: read it here). The build works on
 * its own copy: it rewrites the paths the manifest names. */
static int build_locked(const char *src_dir, json_t *given, const char *out_dir, bool force,
                        struct function_build_result *res, struct thaw_error *err)
{
    json_t *manifest;
    if (given) {
        char path[PATH_MAX];
        pathf(path, sizeof path, "%s/function.json", src_dir);
        manifest = json_deep_copy(given);
        if (!manifest)
            return thaw_fail(err, "out of memory");
        if (check_manifest(manifest, path, err) < 0) {
            json_decref(manifest);
            return -1;
        }
    } else if (!(manifest = load_manifest(src_dir, err))) {
        return -1;
    }
    char stamp[32];
    int rc = -1;
    char stage[PATH_MAX], old[PATH_MAX];
    stage[0] = old[0] = 0;
    if (compute_stamp(src_dir, manifest, stamp, err) < 0)
        goto done;
    if (!force && stamp_matches(out_dir, stamp)) {
        res->program_bytes = file_size(out_dir, "program");
        res->archive_bytes = file_size(out_dir, "files.cpio");
        rc = 0;
        goto done;
    }
    uint64_t t0 = clock_now_ns();
    pathf(stage, sizeof stage, "%s.tmp-%d", out_dir, (int)getpid());
    tree_remove(stage, NULL);
    if (tree_mkdir_p(stage, err) < 0)
        goto done;
    struct build_ctx c = {.src = src_dir, .stage = stage, .manifest = manifest, .err = err,
                          .budget = BUNDLE_TOTAL_MAX};
    snprintf(c.log, sizeof c.log, "%s/build.log", stage);
    const char *rt = json_string_value(json_object_get(manifest, "runtime"));
    int r = !strcmp(rt, "python")
                ? python_function_build(src_dir, manifest, stage, c.log, FUNCTION_BUILD_TIMEOUT_NS, err)
                : build_native(&c);
    if (r < 0 || copy_listed_files(&c) < 0)
        goto done;
    char path[PATH_MAX];
    char *text = json_dumps(manifest, JSON_INDENT(2) | JSON_SORT_KEYS);
    pathf(path, sizeof path, "%s/function.json", stage);
    r = text ? write_text(path, text, err) : thaw_fail(err, "out of memory");
    free(text);
    pathf(path, sizeof path, "%s/.stamp", stage);
    if (r < 0 || write_text(path, stamp, err) < 0)
        goto done;
    /* Swap: the old bundle moves aside, the new one takes its name, the old goes. */
    pathf(old, sizeof old, "%s.old-%d", out_dir, (int)getpid());
    tree_remove(old, NULL);
    if (rename(out_dir, old) < 0 && errno != ENOENT) {
        thaw_fail_errno(err, "cannot move %s aside", out_dir);
        goto done;
    }
    if (rename(stage, out_dir) < 0) {
        thaw_fail_errno(err, "cannot rename %s to %s", stage, out_dir);
        goto done;
    }
    stage[0] = 0;
    res->rebuilt = true;
    res->build_ns = clock_now_ns() - t0;
    res->program_bytes = file_size(out_dir, "program");
    res->archive_bytes = file_size(out_dir, "files.cpio");
    rc = 0;
done:
    if (stage[0])
        tree_remove(stage, NULL);
    if (old[0])
        tree_remove(old, NULL);
    json_decref(manifest);
    return rc;
}

static int build(const char *src_dir, json_t *manifest, const char *out_dir, bool force,
                 struct function_build_result *res, struct thaw_error *err)
{
    struct function_build_result dummy;
    if (!res)
        res = &dummy;
    memset(res, 0, sizeof *res);
    /* Absolute paths: the compiler runs in the source directory. */
    char src_abs[PATH_MAX], out_abs[PATH_MAX], cwd[PATH_MAX];
    if (!realpath(src_dir, src_abs))
        return thaw_fail_errno(err, "cannot open function directory %s", src_dir);
    if (!getcwd(cwd, sizeof cwd))
        return thaw_fail_errno(err, "getcwd");
    if (pathf(out_abs, sizeof out_abs, "%s%s%s", out_dir[0] == '/' ? "" : cwd, out_dir[0] == '/' ? "" : "/",
              out_dir) < 0)
        return thaw_fail(err, "path too long: %s", out_dir);
    /* Every path made below appends at most a few dozen bytes to these. */
    if (strlen(src_abs) > PATH_MAX - 256 || strlen(out_abs) > PATH_MAX - 256)
        return thaw_fail(err, "path too long: %s", out_abs);
    src_dir = src_abs;
    out_dir = out_abs;
    char parent[PATH_MAX], lock[PATH_MAX];
    pathf(parent, sizeof parent, "%s", out_dir);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = 0;
        if (tree_mkdir_p(parent, err) < 0)
            return -1;
    }
    /* Two builds of one bundle at once (parallel `thaw run`s): one builds, the other
     * waits and then finds the stamp up to date. */
    pathf(lock, sizeof lock, "%s.lock", out_dir);
    int lfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (lfd < 0)
        return thaw_fail_errno(err, "cannot open %s", lock);
    while (flock(lfd, LOCK_EX) < 0 && errno == EINTR) {
    }
    int rc = build_locked(src_dir, manifest, out_dir, force, res, err);
    close(lfd);
    return rc;
}

int function_build(const char *src_dir, const char *out_dir, bool force, struct function_build_result *res,
                   struct thaw_error *err)
{
    return build(src_dir, NULL, out_dir, force, res, err);
}

int function_build_manifest(const char *src_dir, json_t *manifest, const char *out_dir, bool force,
                            struct function_build_result *res, struct thaw_error *err)
{
    return build(src_dir, manifest, out_dir, force, res, err);
}

char *function_build_default_out(const char *src_dir, struct thaw_error *err)
{
    json_t *m = load_manifest(src_dir, err);
    if (!m)
        return NULL;
    char *build = thaw_build_dir(), *out = NULL;
    if (!build || asprintf(&out, "%s/bundles/%s", build, json_string_value(json_object_get(m, "name"))) < 0) {
        out = NULL;
        thaw_fail(err, "out of memory");
    }
    free(build);
    json_decref(m);
    return out;
}

char *function_build_default(const char *src_dir, struct thaw_error *err)
{
    /* Already a bundle that `thaw build` made: use it as it is. */
    char stamp[PATH_MAX];
    if (pathf(stamp, sizeof stamp, "%s/.stamp", src_dir) == 0 && access(stamp, F_OK) == 0)
        return strdup(src_dir);
    char *out = function_build_default_out(src_dir, err);
    if (out && function_build(src_dir, out, false, NULL, err) < 0) {
        free(out);
        return NULL;
    }
    return out;
}
