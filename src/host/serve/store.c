#include "host/serve/store.h"

#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "host/function/bundle.h"
#include "host/serve/serve_impl.h"
#include "host/util/atomic_file.h"
#include "host/util/file.h"
#include "host/util/tree.h"

#define CURRENT "current"
#define CONFIG "config.json"

void store_bundle_dir(const struct fn_version *v, char *out, size_t cap)
{
    snprintf(out, cap, "%s/bundle", v->dir);
}

void store_snapshot_dir(const struct fn_version *v, char *out, size_t cap)
{
    snprintf(out, cap, "%s/snapshot", v->dir);
}

void store_source_dir(const struct fn_version *v, char *out, size_t cap)
{
    snprintf(out, cap, "%s/source", v->dir);
}

int store_write_config(const char *version_dir, const struct fn_config *cfg, struct thaw_error *err)
{
    json_t *j = fn_config_to_json(cfg);
    char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    if (!text)
        return thaw_fail(err, "out of memory");
    int r = write_file_atomic(version_dir, CONFIG, text, strlen(text), err);
    free(text);
    return r;
}

static int read_config(const char *version_dir, struct fn_config *cfg, struct thaw_error *err)
{
    char path[1200];
    tree_path(path, sizeof path, "%s/" CONFIG, version_dir);
    uint8_t *text;
    size_t len;
    fn_config_default(cfg);
    if (read_file(path, 1u << 16, &text, &len, err) < 0)
        return -1;
    json_error_t jerr;
    json_t *j = json_loadb((const char *)text, len, 0, &jerr);
    free(text);
    int r = j ? fn_config_apply_json(cfg, j, err) : thaw_fail(err, "%s: %s", path, jerr.text);
    json_decref(j);
    return r;
}

/* Parses "v<N>"; 0 if it is not one. */
static unsigned version_gen(const char *s)
{
    if (s[0] != 'v' || !s[1])
        return 0;
    char *end;
    unsigned long g = strtoul(s + 1, &end, 10);
    return *end || g == 0 || g > 1000000000ul ? 0 : (unsigned)g;
}

static unsigned read_current(const char *fn_dir)
{
    char path[1200];
    tree_path(path, sizeof path, "%s/" CURRENT, fn_dir);
    uint8_t *text;
    size_t len;
    if (read_file(path, 64, &text, &len, NULL) < 0)
        return 0;
    while (len && (text[len - 1] == '\n' || text[len - 1] == ' '))
        text[--len] = 0;
    unsigned g = version_gen((char *)text);
    free(text);
    return g;
}

/* Loads one function directory; removes everything current does not name. */
static void load_function(struct serve *s, const char *name)
{
    char dir[1200];
    tree_path(dir, sizeof dir, "%s/%s", s->functions_dir, name);
    if (!bundle_name_valid(name)) {
        fprintf(stderr, "thaw serve: ignoring %s (not a function name)\n", dir);
        return;
    }
    unsigned cur = read_current(dir);
    char vdir[1300];
    tree_path(vdir, sizeof vdir, "%s/v%u", dir, cur);
    struct stat st;
    if (!cur || stat(vdir, &st) < 0 || !S_ISDIR(st.st_mode)) {
        /* A first deploy that never committed. */
        fprintf(stderr, "thaw serve: removing %s (no committed version)\n", dir);
        tree_remove(dir, NULL);
        return;
    }
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || !strcmp(e->d_name, CURRENT))
            continue;
        if (version_gen(e->d_name) == cur)
            continue;
        char p[1300];
        tree_path(p, sizeof p, "%s/%s", dir, e->d_name);
        tree_remove(p, NULL); /* staging dirs, old versions, temporary files */
    }
    if (d)
        closedir(d);
    struct fn_config cfg;
    struct thaw_error err;
    if (read_config(vdir, &cfg, &err) < 0) {
        fprintf(stderr, "thaw serve: %s: %s; using the defaults\n", name, err.msg);
        fn_config_default(&cfg);
    }
    struct fn_version *v = version_new(vdir, cur);
    struct function *f = v ? registry_add(s, name, &cfg, v, &err) : NULL;
    if (!f) {
        fprintf(stderr, "thaw serve: cannot load %s: %s\n", name, v ? err.msg : "out of memory");
        version_put(v);
        return;
    }
    function_put(f);
}

int store_open(struct serve *s, struct thaw_error *err)
{
    char trash[1200];
    tree_path(trash, sizeof trash, "%s/trash", s->state_dir);
    if (tree_mkdir_p(s->functions_dir, err) < 0)
        return -1;
    tree_remove(trash, NULL);
    if (tree_mkdir_p(trash, err) < 0)
        return -1;
    DIR *d = opendir(s->functions_dir);
    if (!d)
        return thaw_fail_errno(err, "cannot read %s", s->functions_dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char **nn = realloc(names, (n + 1) * sizeof *nn);
        if (!nn)
            break;
        names = nn;
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    for (size_t i = 0; i < n; i++) {
        if (names[i])
            load_function(s, names[i]);
        free(names[i]);
    }
    free(names);
    return 0;
}

int store_stage(struct serve *s, const char *name, char *out, size_t cap, struct thaw_error *err)
{
    static atomic_uint counter;
    char fn_dir[1200];
    tree_path(fn_dir, sizeof fn_dir, "%s/%s", s->functions_dir, name);
    if (tree_mkdir_p(fn_dir, err) < 0)
        return -1;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (snprintf(out, cap, "%s/.deploy-%d-%u-%ld", fn_dir, (int)getpid(), atomic_fetch_add(&counter, 1),
                 (long)ts.tv_nsec) >= (int)cap)
        return thaw_fail(err, "state directory path too long");
    return tree_mkdir_p(out, err);
}

struct fn_version *store_commit(struct serve *s, const char *name, const char *stage, struct thaw_error *err)
{
    char fn_dir[1200], vdir[1300];
    tree_path(fn_dir, sizeof fn_dir, "%s/%s", s->functions_dir, name);
    unsigned gen = 0;
    DIR *d = opendir(fn_dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        unsigned g = version_gen(e->d_name);
        if (g > gen)
            gen = g;
    }
    if (d)
        closedir(d);
    gen++;
    tree_path(vdir, sizeof vdir, "%s/v%u", fn_dir, gen);
    if (rename(stage, vdir) < 0) {
        thaw_fail_errno(err, "cannot commit %s", vdir);
        return NULL;
    }
    if (tree_sync_dir(fn_dir, err) < 0)
        return NULL;
    char text[32];
    int n = snprintf(text, sizeof text, "v%u\n", gen);
    if (write_file_atomic(fn_dir, CURRENT, text, (size_t)n, err) < 0) {
        tree_remove(vdir, NULL);
        return NULL;
    }
    struct fn_version *v = version_new(vdir, gen);
    if (!v)
        thaw_fail(err, "out of memory");
    return v;
}

int store_delete(struct serve *s, const char *name, struct thaw_error *err)
{
    static atomic_uint counter;
    char fn_dir[1200], dst[1300];
    tree_path(fn_dir, sizeof fn_dir, "%s/%s", s->functions_dir, name);
    tree_path(dst, sizeof dst, "%s/trash/%s-%d-%u", s->state_dir, name, (int)getpid(),
             atomic_fetch_add(&counter, 1));
    if (rename(fn_dir, dst) < 0)
        return thaw_fail_errno(err, "cannot remove %s", fn_dir);
    char functions[1200];
    snprintf(functions, sizeof functions, "%s", s->functions_dir);
    tree_sync_dir(functions, NULL);
    tree_remove(dst, NULL);
    return 0;
}
