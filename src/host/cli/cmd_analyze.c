/* thaw analyze: the paper's characterisation of a function's snapshot working sets.
 *   thaw analyze --recorded SNAPDIR...   analyses traces REAP already recorded
 * Output: a table, or JSON with --json; figures with --plot DIR. */
#include <errno.h>
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
#include "host/snapshot/state_file.h"
#include "host/util/atomic_file.h"
#include "host/util/file.h"
#include "host/util/snapdir.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: thaw analyze --recorded SNAPSHOT-DIR... [--json] [--plot DIR]\n"
            "Characterises the working sets REAP recorded (ws.trace in each snapshot directory, one per\n"
            "input): working set per input split by guest memory region, reuse across inputs, run\n"
            "lengths in guest-physical and fault order, what a 128 KiB / 8 MiB read-around would have\n"
            "fetched usefully, and the fault timeline.\n"
            "  --json       print JSON instead of the table\n"
            "  --plot DIR   also write DIR/analysis.json and the figures (PNG and SVG) into DIR\n");
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

/* Analyses the recorded snapshot directories dirs[0..n) into r (payload names given). */
static int analyse_recorded(struct analyze_report *r, char *const *dirs, char names[][64], size_t n,
                            struct thaw_error *err)
{
    r->p = calloc(n, sizeof *r->p);
    if (!r->p)
        return thaw_fail(err, "out of memory");
    r->n = n;
    for (size_t i = 0; i < n; i++) {
        snprintf(r->p[i].name, sizeof r->p[i].name, "%s", names[i]);
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
    r->memory_allocated = -1;
    if (snapdir_path(path, sizeof path, dirs[0], SNAPDIR_MEMORY) == 0 && stat(path, &sb) == 0) {
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
        {"recorded", no_argument, 0, 'r'}, {"json", no_argument, 0, 'j'},
        {"plot", required_argument, 0, 'P'}, {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    bool recorded = false, json = false;
    const char *plot_dir = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "rjP:h", opts, NULL)) != -1) {
        switch (c) {
        case 'r': recorded = true; break;
        case 'j': json = true; break;
        case 'P': plot_dir = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!recorded || optind >= argc) {
        usage(stderr);
        return 2;
    }
    size_t n = (size_t)(argc - optind);
    char (*names)[64] = calloc(n, sizeof *names);
    struct analyze_report r = {0};
    struct thaw_error err = {{0}};
    int rc = 1;
    if (!names)
        goto out;
    for (size_t i = 0; i < n; i++) {
        char *copy = strdup(argv[optind + (int)i]);
        snprintf(names[i], sizeof names[i], "%s", copy ? basename(copy) : "?");
        free(copy);
    }
    function_name_of(argv[optind], r.function, sizeof r.function);
    snprintf(r.source, sizeof r.source, "%s", argv[optind]);
    if (analyse_recorded(&r, argv + optind, names, n, &err) < 0) {
        fprintf(stderr, "thaw analyze: %s\n", err.msg);
        goto out;
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
    report_free(&r);
    free(names);
    return rc;
}
