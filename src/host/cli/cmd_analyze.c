/* thaw analyze: the paper's characterisation of a function's snapshot working sets.
 * Every instance comes from the lifecycle layer (sandbox.h): a boot for the footprint
 * and the snapshot, then one REAP-recording restore of a fresh snapshot copy per input;
 * the analyses themselves are in host/analysis/. Output: a table, or JSON with --json;
 * figures with --plot DIR (tools/analysis/plot_analysis.py). */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "host/analysis/analysis.h"
#include "host/cli/analyze_output.h"
#include "host/cli/cli.h"
#include "host/function/build.h"
#include "host/sandbox/sandbox.h"
#include "host/snapshot/state_file.h"
#include "host/util/atomic_file.h"
#include "host/util/file.h"
#include "host/util/snapdir.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: thaw analyze <function-dir|snapshot-dir> [--payloads FILE|DIR]... [--payload JSON]...\n"
            "                    [--json] [--plot DIR] [--keep DIR]\n"
            "       thaw analyze --recorded SNAPSHOT-DIR... [--json] [--plot DIR]\n"
            "Characterises a function's snapshot working sets, as vHive/REAP's paper does. For each\n"
            "input, a fresh copy of the snapshot is restored with REAP recording and a cold page cache\n"
            "and invoked once; its ws.trace is then analysed: the footprint (resident guest memory of a\n"
            "booted instance after its first invocation vs a restored one; the snapshot memory file's\n"
            "allocated size), the working set split by guest memory region, reuse across inputs, run\n"
            "lengths in guest-physical and fault order, what a 128 KiB / 8 MiB read-around would have\n"
            "fetched usefully, and the fault timeline.\n"
            "  <function-dir>  booted (footprint, then a snapshot at its ready point); payloads default\n"
            "                  to its payloads/ directory\n"
            "  <snapshot-dir>  restored as it is (no booted footprint); needs payloads\n"
            "  --payloads P    a directory (every *.json, one input each) or a file (one input a line)\n"
            "  --payload JSON  one input\n"
            "  --recorded      analyse the ws.trace already in each SNAPSHOT-DIR (one per input)\n"
            "  --json          print JSON instead of the table\n"
            "  --plot DIR      also write DIR/analysis.json and the figures (PNG and SVG) into DIR\n"
            "  --keep DIR      keep the per-input snapshot copies and their traces in DIR (new)\n");
}

/* The function's name from the snapshot's state file, else the directory's name. */
static void function_name_of(const char *snap_dir, char *out, size_t len)
{
    char path[4096];
    uint8_t *buf = NULL;
    size_t n;
    struct snapshot_state st;
    if (snapdir_path(path, sizeof path, snap_dir, SNAPDIR_STATE) == 0 && read_file(path, 1u << 20, &buf, &n, NULL) == 0 &&
        state_file_decode(buf, n, &st, NULL) == 0) {
        snprintf(out, len, "%s", st.monitor.function_name);
    } else {
        char *copy = strdup(snap_dir);
        snprintf(out, len, "%s", copy ? basename(copy) : snap_dir);
        free(copy);
    }
    free(buf);
}

/* Analyses the recorded snapshot directories dirs[0..r->n) into r->p (names set). */
static int analyse_recorded(struct analyze_report *r, char *const *dirs, struct thaw_error *err)
{
    size_t n = r->n;
    for (size_t i = 0; i < n; i++) {
        if (analysis_trace_load(dirs[i], &r->p[i].rec.trace, err) < 0)
            return -1;
        if (i == 0) {
            r->mem_size = r->p[0].rec.trace.mem_size;
        } else if (r->p[i].rec.trace.mem_size != r->mem_size) {
            return thaw_fail(err, "%s: recorded with %llu MiB of guest memory, %s with %llu MiB: not one function",
                             dirs[i], (unsigned long long)(r->p[i].rec.trace.mem_size >> 20), dirs[0],
                             (unsigned long long)(r->mem_size >> 20));
        }
    }
    /* The layout and the memory file's size come from the first snapshot (all are copies
     * of one snapshot). */
    char path[4096];
    struct stat sb;
    if (snapdir_path(path, sizeof path, dirs[0], SNAPDIR_MEMORY) == 0 && stat(path, &sb) == 0) {
        if (r->memory_allocated < 0)
            r->memory_allocated = (int64_t)sb.st_blocks * 512;
        if (guest_layout_from_snapshot(dirs[0], r->mem_size, &r->layout, err) < 0)
            return -1;
        r->have_layout = true;
    }
    for (size_t i = 0; i < n; i++) {
        if (analysis_recording_compute(&r->p[i].rec, r->have_layout ? &r->layout : NULL, err) < 0) {
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err->msg);
            return thaw_fail(err, "%s: %s", dirs[i], why);
        }
    }
    struct page_set *sets = calloc(n, sizeof *sets);
    if (!sets)
        return thaw_fail(err, "out of memory");
    for (size_t i = 0; i < n; i++)
        sets[i] = r->p[i].rec.ws;
    int rc = reuse_compute(sets, n, &r->reuse, err);
    free(sets);
    return rc;
}

/* ---- inputs ---------------------------------------------------------------------------------- */

struct inputs {
    char (*name)[64];
    uint8_t **data;
    size_t *len;
    size_t n, cap;
};

static int inputs_add(struct inputs *in, const char *name, const uint8_t *data, size_t len, struct thaw_error *err)
{
    if (in->n == in->cap) {
        size_t cap = in->cap ? in->cap * 2 : 8;
        void *a = realloc(in->name, cap * sizeof *in->name), *b = a ? realloc(in->data, cap * sizeof *in->data) : NULL,
             *c = b ? realloc(in->len, cap * sizeof *in->len) : NULL;
        if (a)
            in->name = a;
        if (b)
            in->data = b;
        if (!c)
            return thaw_fail(err, "out of memory");
        in->len = c;
        in->cap = cap;
    }
    if (!(in->data[in->n] = malloc(len ? len : 1)))
        return thaw_fail(err, "out of memory");
    memcpy(in->data[in->n], data, len);
    in->len[in->n] = len;
    snprintf(in->name[in->n], sizeof in->name[in->n], "%s", name);
    in->n++;
    return 0;
}

static void inputs_free(struct inputs *in)
{
    for (size_t i = 0; i < in->n; i++)
        free(in->data[i]);
    free(in->name);
    free(in->data);
    free(in->len);
}

/* The file's name without its directory and its .json. */
static void stem(const char *path, char *out, size_t len)
{
    const char *b = strrchr(path, '/');
    b = b ? b + 1 : path;
    size_t n = strlen(b);
    if (n > 5 && !strcmp(b + n - 5, ".json"))
        n -= 5;
    snprintf(out, len, "%.*s", (int)(n < len - 1 ? n : len - 1), b);
}

static int json_file(const struct dirent *d)
{
    size_t n = strlen(d->d_name);
    return d->d_name[0] != '.' && n > 5 && !strcmp(d->d_name + n - 5, ".json");
}

#define INPUT_MAX (64u << 20)

/* A directory: every *.json in it, in name order. A file: one input a line. */
static int inputs_from_path(struct inputs *in, const char *path, struct thaw_error *err)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return thaw_fail_errno(err, "--payloads %s", path);
    if (S_ISDIR(st.st_mode)) {
        struct dirent **ents;
        int n = scandir(path, &ents, json_file, alphasort);
        if (n < 0)
            return thaw_fail_errno(err, "cannot list %s", path);
        int rc = n ? 0 : thaw_fail(err, "--payloads %s: no *.json files in it", path);
        for (int i = 0; i < n; i++) {
            char file[4096], name[64];
            uint8_t *data = NULL;
            size_t len;
            snprintf(file, sizeof file, "%s/%s", path, ents[i]->d_name);
            stem(file, name, sizeof name);
            if (rc == 0 && (read_file(file, INPUT_MAX, &data, &len, err) < 0 || inputs_add(in, name, data, len, err) < 0))
                rc = -1;
            free(data);
            free(ents[i]);
        }
        free(ents);
        return rc;
    }
    uint8_t *data;
    size_t len;
    if (read_file(path, INPUT_MAX, &data, &len, err) < 0)
        return -1;
    char base[48];
    stem(path, base, sizeof base);
    size_t first = in->n, line = 0;
    int rc = 0;
    for (size_t a = 0; a < len && rc == 0;) {
        size_t b = a;
        while (b < len && data[b] != '\n')
            b++;
        size_t e = b;
        while (e > a && (data[e - 1] == '\r' || data[e - 1] == ' ' || data[e - 1] == '\t'))
            e--;
        if (e > a) {
            char name[64];
            snprintf(name, sizeof name, "%s-%zu", base, ++line);
            rc = inputs_add(in, name, data + a, e - a, err);
        }
        a = b + 1;
    }
    free(data);
    if (rc == 0 && in->n == first)
        return thaw_fail(err, "--payloads %s: no inputs in it", path);
    if (rc == 0 && in->n == first + 1)
        snprintf(in->name[first], sizeof in->name[first], "%s", base);
    return rc;
}

/* ---- live runs -------------------------------------------------------------------------------- */

static bool exists(const char *dir, const char *name)
{
    char path[4096];
    return snapdir_path(path, sizeof path, dir, name) == 0 && access(path, F_OK) == 0;
}

/* A fresh copy of a snapshot without anything REAP recorded (ws.*, *.ws), so the
 * restore of the copy records; every other file (state, memory, and whatever else
 * the snapshot layer keeps) is copied, sparse. */
static bool recorded_file(const char *name)
{
    size_t n = strlen(name);
    return !strncmp(name, "ws.", 3) || (n > 3 && !strcmp(name + n - 3, ".ws")) || name[0] == '.';
}

static int copy_snapshot(const char *from, const char *to, struct thaw_error *err)
{
    if (mkdir(to, 0700) < 0)
        return thaw_fail_errno(err, "cannot create %s", to);
    DIR *d = opendir(from);
    if (!d)
        return thaw_fail_errno(err, "cannot list %s", from);
    int rc = 0;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d))) {
        char a[4096], b[4096];
        struct stat st;
        if (recorded_file(e->d_name))
            continue;
        if (snapdir_path(a, sizeof a, from, e->d_name) < 0 || snapdir_path(b, sizeof b, to, e->d_name) < 0)
            rc = thaw_fail(err, "path too long");
        else if (lstat(a, &st) == 0 && S_ISREG(st.st_mode))
            rc = copy_file_sparse(a, b, err);
    }
    closedir(d);
    return rc;
}

/* Boots the function: a snapshot at its ready point into base, then a second boot whose
 * first invocation gives the booted footprint. */
static int boot_function(struct analyze_report *r, const char *fdir, const char *base, const struct inputs *in,
                         struct thaw_error *err)
{
    struct sandbox_options opt = {.id = "analyze-boot"};
    struct sandbox *sb = NULL;
    if (sandbox_boot(&sb, fdir, &opt, err) < 0)
        return -1;
    int rc = sandbox_snapshot(sb, base, err);
    sandbox_destroy(sb);
    if (rc < 0 || sandbox_boot(&sb, fdir, &opt, err) < 0)
        return -1;
    uint8_t *resp = NULL;
    size_t len;
    struct sandbox_stats st;
    rc = sandbox_invoke(sb, in->data[0], in->len[0], &resp, &len, err);
    free(resp);
    if (rc == 0 && (rc = sandbox_stats(sb, &st, err)) == 0) {
        r->booted = true;
        r->booted_rss_kb = st.rss_kb;
        r->boot_ns = st.boot_ns;
    }
    sandbox_destroy(sb);
    return rc;
}

/* Restores a fresh copy of base per input, recording, and invokes it once. */
static int record_inputs(struct analyze_report *r, const char *base, const struct inputs *in, char **dirs,
                         struct thaw_error *err)
{
    for (size_t i = 0; i < in->n; i++) {
        struct analyze_payload *p = &r->p[i];
        if (copy_snapshot(base, dirs[i], err) < 0)
            return -1;
        struct sandbox_options opt = {.id = "analyze", .drop_cache = true};
        struct sandbox *sb = NULL;
        struct sandbox_stats st;
        if (sandbox_restore(&sb, dirs[i], MEM_REAP, &opt, err) < 0)
            return -1;
        uint8_t *resp = NULL;
        size_t len;
        int rc = sandbox_stats(sb, &st, err);
        if (rc == 0 && st.start != SANDBOX_START_REAP_RECORD)
            rc = thaw_fail(err, "%s: the restore did not record (%s)%s%s", dirs[i], sandbox_start_name(st.start),
                           st.reap_note[0] ? ": " : "", st.reap_note);
        if (rc == 0 && sandbox_invoke(sb, in->data[i], in->len[i], &resp, &len, err) < 0) {
            char why[sizeof err->msg];
            snprintf(why, sizeof why, "%s", err->msg);
            rc = thaw_fail(err, "input %s: %s", in->name[i], why);
        }
        free(resp);
        if (rc == 0 && (rc = sandbox_stats(sb, &st, err)) == 0) {
            p->measured = true;
            p->restored_rss_kb = st.rss_kb;
            p->restore_ns = st.restore_ns;
            p->first_invoke_ns = st.first_invoke_ns;
            p->pages_served = st.pages_served;
            p->zero_pages = st.zero_pages;
        }
        sandbox_destroy(sb);
        if (rc < 0)
            return -1;
        if (!exists(dirs[i], SNAPDIR_WS_TRACE))
            return thaw_fail(err, "input %s: no working set was recorded%s%s", in->name[i], st.reap_note[0] ? ": " : "",
                             st.reap_note);
    }
    return 0;
}

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path);
}

static void report_free(struct analyze_report *r)
{
    for (size_t i = 0; i < r->n; i++)
        analysis_recording_free(&r->p[i].rec);
    free(r->p);
    reuse_stats_free(&r->reuse);
}

/* The plotting script: $THAW_PLOT_SCRIPT, else tools/analysis/ next to the build dir. */
static char *plot_script(void)
{
    const char *env = getenv("THAW_PLOT_SCRIPT");
    if (env)
        return strdup(env);
    char *build = thaw_build_dir(), *path = NULL;
    if (build && asprintf(&path, "%s/../tools/analysis/plot_analysis.py", build) < 0)
        path = NULL;
    free(build);
    return path;
}

/* Debian's python3 has matplotlib (scripts/install-deps.sh); another one on PATH may not. */
static const char *python(void)
{
    return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

static int write_plots(const char *dir, json_t *j, struct thaw_error *err)
{
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return thaw_fail_errno(err, "cannot create %s", dir);
    char *text = json_dumps(j, JSON_COMPACT);
    if (!text)
        return thaw_fail(err, "out of memory");
    int rc = write_file_atomic(dir, "analysis.json", text, strlen(text), err);
    free(text);
    if (rc < 0)
        return -1;
    char *script = plot_script(), json_path[4096];
    snprintf(json_path, sizeof json_path, "%s/analysis.json", dir);
    if (!script)
        return thaw_fail(err, "out of memory");
    if (access(script, R_OK) < 0) {
        thaw_fail_errno(err, "plotting script %s", script);
        free(script);
        return -1;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(STDERR_FILENO, STDOUT_FILENO); /* keep stdout for the table or the JSON */
        execlp(python(), python(), script, json_path, "-o", dir, (char *)NULL);
        _exit(127);
    }
    free(script);
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) < 0)
        return thaw_fail_errno(err, "running the plotting script");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return thaw_fail(err, "the plotting script failed (status %d)", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
    return 0;
}

int cmd_analyze(int argc, char **argv)
{
    static const struct option opts[] = {
        {"recorded", no_argument, 0, 'r'},      {"json", no_argument, 0, 'j'},
        {"plot", required_argument, 0, 'P'},    {"payloads", required_argument, 0, 'f'},
        {"payload", required_argument, 0, 'p'}, {"keep", required_argument, 0, 'k'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0},
    };
    bool recorded = false, json = false;
    const char *plot_dir = NULL, *keep = NULL;
    struct inputs in = {0};
    struct analyze_report r = {.memory_allocated = -1};
    struct thaw_error err = {{0}};
    char work[4096] = "", base[4096] = "";
    char **dirs = NULL;
    bool made_work = false;
    int rc = 1, c;
    while ((c = getopt_long(argc, argv, "rjP:f:p:k:h", opts, NULL)) != -1) {
        switch (c) {
        case 'r': recorded = true; break;
        case 'j': json = true; break;
        case 'P': plot_dir = optarg; break;
        case 'k': keep = optarg; break;
        case 'f':
            if (inputs_from_path(&in, optarg, &err) < 0) {
                fprintf(stderr, "thaw analyze: %s\n", err.msg);
                goto out;
            }
            break;
        case 'p': {
            char name[32];
            snprintf(name, sizeof name, "payload%zu", in.n + 1);
            if (inputs_add(&in, name, (const uint8_t *)optarg, strlen(optarg), &err) < 0) {
                fprintf(stderr, "thaw analyze: %s\n", err.msg);
                goto out;
            }
            break;
        }
        case 'h': usage(stdout); rc = 0; goto out;
        default: usage(stderr); rc = 2; goto out;
        }
    }
    if (optind >= argc || (!recorded && optind != argc - 1) || (recorded && (in.n || keep))) {
        usage(stderr);
        rc = 2;
        goto out;
    }
    const char *target = argv[optind];
    if (recorded) {
        r.n = (size_t)(argc - optind);
        dirs = argv + optind;
        if (!(r.p = calloc(r.n, sizeof *r.p))) {
            fprintf(stderr, "thaw analyze: out of memory\n");
            goto out;
        }
        for (size_t i = 0; i < r.n; i++) {
            char *copy = strdup(dirs[i]);
            snprintf(r.p[i].name, sizeof r.p[i].name, "%s", copy ? basename(copy) : "?");
            free(copy);
        }
        function_name_of(target, r.function, sizeof r.function);
        snprintf(r.source, sizeof r.source, "%s", target);
        dirs = NULL; /* not ours to free */
        if (analyse_recorded(&r, argv + optind, &err) < 0) {
            fprintf(stderr, "thaw analyze: %s\n", err.msg);
            goto out;
        }
    } else {
        bool is_function = exists(target, "function.json");
        if (!is_function && !exists(target, SNAPDIR_STATE)) {
            fprintf(stderr, "thaw analyze: %s is neither a function directory (function.json) nor a snapshot (%s)\n",
                    target, SNAPDIR_STATE);
            goto out;
        }
        if (in.n == 0 && is_function) {
            char pdir[4096];
            snprintf(pdir, sizeof pdir, "%s/payloads", target);
            if (access(pdir, F_OK) == 0 && inputs_from_path(&in, pdir, &err) < 0) {
                fprintf(stderr, "thaw analyze: %s\n", err.msg);
                goto out;
            }
        }
        if (in.n == 0) {
            fprintf(stderr, "thaw analyze: no inputs: give --payloads or --payload\n");
            goto out;
        }
        if (keep) {
            if (mkdir(keep, 0755) < 0) {
                fprintf(stderr, "thaw analyze: --keep %s: %s\n", keep, strerror(errno));
                goto out;
            }
            snprintf(work, sizeof work, "%s", keep);
        } else {
            const char *tmp = getenv("TMPDIR");
            snprintf(work, sizeof work, "%s/thaw-analyze-XXXXXX", tmp && *tmp ? tmp : "/tmp");
            if (!mkdtemp(work)) {
                fprintf(stderr, "thaw analyze: cannot create a work directory in %s: %s\n", tmp && *tmp ? tmp : "/tmp",
                        strerror(errno));
                goto out;
            }
        }
        made_work = true;
        r.n = in.n;
        if (!(r.p = calloc(r.n, sizeof *r.p)) || !(dirs = calloc(r.n, sizeof *dirs))) {
            fprintf(stderr, "thaw analyze: out of memory\n");
            goto out;
        }
        for (size_t i = 0; i < r.n; i++) {
            snprintf(r.p[i].name, sizeof r.p[i].name, "%s", in.name[i]);
            if (asprintf(&dirs[i], "%s/input-%02zu", work, i + 1) < 0) {
                dirs[i] = NULL;
                fprintf(stderr, "thaw analyze: out of memory\n");
                goto out;
            }
        }
        snprintf(r.source, sizeof r.source, "%s", target);
        if (is_function) {
            snprintf(base, sizeof base, "%s/snapshot", work);
            /* A source directory is built first, as `thaw run` and `snapshot` do (a Python
             * function has no program until then): function/build.h. */
            char *bundle = function_build_default(target, &err);
            if (!bundle) {
                fprintf(stderr, "thaw analyze: %s\n", err.msg);
                goto out;
            }
            int booted = boot_function(&r, bundle, base, &in, &err);
            free(bundle);
            if (booted < 0) {
                fprintf(stderr, "thaw analyze: boot: %s\n", err.msg);
                goto out;
            }
        } else {
            snprintf(base, sizeof base, "%s", target);
        }
        char path[4096];
        struct stat sb;
        if (snapdir_path(path, sizeof path, base, SNAPDIR_MEMORY) == 0 && stat(path, &sb) == 0)
            r.memory_allocated = (int64_t)sb.st_blocks * 512;
        function_name_of(base, r.function, sizeof r.function);
        if (record_inputs(&r, base, &in, dirs, &err) < 0 || analyse_recorded(&r, dirs, &err) < 0) {
            fprintf(stderr, "thaw analyze: %s\n", err.msg);
            goto out;
        }
    }
    json_t *j = analyze_to_json(&r);
    if (!j) {
        fprintf(stderr, "thaw analyze: out of memory\n");
        goto out;
    }
    if (json) {
        json_dumpf(j, stdout, JSON_COMPACT);
        fputc('\n', stdout);
    } else {
        analyze_print_table(stdout, &r);
    }
    rc = 0;
    if (plot_dir && write_plots(plot_dir, j, &err) < 0) {
        fprintf(stderr, "thaw analyze: --plot: %s\n", err.msg);
        rc = 1;
    }
    json_decref(j);
out:
    if (made_work && !keep && work[0])
        nftw(work, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (dirs)
        for (size_t i = 0; i < r.n; i++)
            free(dirs[i]);
    free(dirs);
    report_free(&r);
    inputs_free(&in);
    return rc;
}
