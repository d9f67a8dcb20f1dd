/* Figures from thaw load CSVs, drawn by gnuplot (Debian's gnuplot-nox). For every
 * figure the data go to DIR/NAME.dat and the script to DIR/NAME.gp, kept next to the
 * image so a figure can be redrawn or restyled by hand. */
#include "host/load/load.h"

#include <errno.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

extern char **environ;

struct series {
    char label[64];
    struct load_record *rows;
    size_t count;
    uint64_t t0; /* first start time */
};

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int run_gnuplot(const char *script, struct thaw_error *err)
{
    pid_t pid;
    char *argv[] = {"gnuplot", (char *)script, NULL};
    int rc = posix_spawnp(&pid, "gnuplot", NULL, NULL, argv, environ);
    if (rc != 0)
        return thaw_fail(err, "cannot run gnuplot (install gnuplot-nox): %s", strerror(rc));
    int status;
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return thaw_fail(err, "gnuplot failed on %s", script);
    return 0;
}

static FILE *open_in(const char *dir, const char *name, char *path, size_t cap, struct thaw_error *err)
{
    snprintf(path, cap, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f)
        thaw_fail_errno(err, "cannot write %s", path);
    return f;
}

static const char *terminal(const char *format)
{
    return !strcmp(format, "svg") ? "svg size 800,500 dynamic background rgb 'white'"
                                  : "pngcairo size 1000,620 noenhanced";
}

/* Writes NAME.gp with the given plot commands and runs it. */
static int draw(const char *dir, const char *name, const char *format, const char *body, struct thaw_error *err)
{
    char path[1024];
    char file[128];
    snprintf(file, sizeof file, "%s.gp", name);
    FILE *f = open_in(dir, file, path, sizeof path, err);
    if (!f)
        return -1;
    fprintf(f, "set terminal %s\nset output '%s/%s.%s'\nset key outside right top noenhanced\nset grid\n%s",
            terminal(format), dir, name, format, body);
    if (fclose(f) != 0)
        return thaw_fail_errno(err, "cannot write %s", path);
    return run_gnuplot(path, err);
}

/* Latency CDF per series and start kind: blocks separated by two blank lines. */
static int plot_cdf(const char *dir, const char *format, struct series *ser, size_t n, struct thaw_error *err)
{
    char path[1024];
    FILE *f = open_in(dir, "latency-cdf.dat", path, sizeof path, err);
    if (!f)
        return -1;
    char *plots = NULL;
    size_t plen = 0;
    FILE *p = open_memstream(&plots, &plen);
    int block = 0;
    for (size_t i = 0; i < n; i++)
        for (int k = 0; k < LOAD_START_KINDS; k++) {
            size_t m = 0;
            uint64_t *v = malloc((ser[i].count ? ser[i].count : 1) * sizeof *v);
            if (!v)
                break;
            for (size_t j = 0; j < ser[i].count; j++)
                if (!ser[i].rows[j].error[0] && ser[i].rows[j].start == (enum load_start_kind)k)
                    v[m++] = ser[i].rows[j].response_us;
            if (m) {
                qsort(v, m, sizeof *v, cmp_u64);
                fprintf(f, "# %s %s\n", ser[i].label, load_start_kind_name((enum load_start_kind)k));
                for (size_t j = 0; j < m; j++)
                    fprintf(f, "%.3f %.6f\n", (double)v[j] / 1000.0, (double)(j + 1) / (double)m);
                fprintf(f, "\n\n");
                fprintf(p, "%s'%s' index %d with steps lw 2 title '%s %s (%zu)'", block ? ", " : "plot ", path, block,
                        ser[i].label, load_start_kind_name((enum load_start_kind)k), m);
                block++;
            }
            free(v);
        }
    fclose(f);
    fclose(p);
    int rc = 0;
    if (block) {
        char *body;
        if (asprintf(&body, "set title 'Latency CDF by start kind'\nset xlabel 'response time (ms)'\n"
                            "set ylabel 'fraction of requests'\nset logscale x\nset yrange [0:1]\n%s\n",
                     plots) < 0)
            rc = thaw_fail(err, "out of memory");
        else {
            rc = draw(dir, "latency-cdf", format, body, err);
            free(body);
        }
    }
    free(plots);
    return rc;
}

/* Latency over time (every request), cold share and distinct instances per bucket. */
static int plot_time(const char *dir, const char *format, struct series *ser, size_t n, double bucket_s,
                     struct thaw_error *err)
{
    char lpath[1024], bpath[1024];
    FILE *lf = open_in(dir, "latency-time.dat", lpath, sizeof lpath, err);
    if (!lf)
        return -1;
    FILE *bf = open_in(dir, "buckets.dat", bpath, sizeof bpath, err);
    if (!bf) {
        fclose(lf);
        return -1;
    }
    uint64_t bucket_us = (uint64_t)(bucket_s * 1e6);
    if (bucket_us == 0)
        bucket_us = 1000000;
    for (size_t i = 0; i < n; i++) {
        fprintf(lf, "# %s: seconds latency_ms cold\n", ser[i].label);
        fprintf(bf, "# %s: bucket_start_s cold_share instances requests\n", ser[i].label);
        uint64_t last = ser[i].t0;
        for (size_t j = 0; j < ser[i].count; j++) {
            const struct load_record *r = &ser[i].rows[j];
            if (r->start_unix_us > last)
                last = r->start_unix_us;
            if (!r->error[0])
                fprintf(lf, "%.3f %.3f %d\n", (double)(r->start_unix_us - ser[i].t0) / 1e6,
                        (double)r->response_us / 1000.0, load_start_is_cold(r->start));
        }
        size_t nb = (size_t)((last - ser[i].t0) / bucket_us) + 1;
        if (nb > 100000)
            nb = 100000;
        for (size_t b = 0; b < nb; b++) {
            uint64_t lo = ser[i].t0 + b * bucket_us, hi = lo + bucket_us;
            size_t total = 0, cold = 0, inst = 0;
            const char **seen = malloc(ser[i].count * sizeof *seen + 1);
            if (!seen)
                break;
            for (size_t j = 0; j < ser[i].count; j++) {
                const struct load_record *r = &ser[i].rows[j];
                if (r->start_unix_us < lo || r->start_unix_us >= hi || r->error[0])
                    continue;
                total++;
                cold += load_start_is_cold(r->start);
                bool dup = !r->instance[0];
                for (size_t k = 0; k < inst && !dup; k++)
                    dup = !strcmp(seen[k], r->instance);
                if (!dup)
                    seen[inst++] = r->instance;
            }
            free(seen);
            fprintf(bf, "%.3f %.6f %zu %zu\n", (double)(lo - ser[i].t0) / 1e6,
                    total ? (double)cold / (double)total : 0.0, inst, total);
        }
        fprintf(lf, "\n\n");
        fprintf(bf, "\n\n");
    }
    fclose(lf);
    fclose(bf);
    char *lat = NULL, *cold = NULL, *inst = NULL;
    size_t ll, cl, il;
    FILE *a = open_memstream(&lat, &ll), *b = open_memstream(&cold, &cl), *c = open_memstream(&inst, &il);
    for (size_t i = 0; i < n; i++) {
        const char *sep = i ? ", " : "plot ";
        fprintf(a, "%s'%s' index %zu using 1:2 with points pt 7 ps 0.4 title '%s'", sep, lpath, i, ser[i].label);
        fprintf(b, "%s'%s' index %zu using 1:2 with steps lw 2 title '%s'", sep, bpath, i, ser[i].label);
        fprintf(c, "%s'%s' index %zu using 1:3 with steps lw 2 title '%s'", sep, bpath, i, ser[i].label);
    }
    fclose(a);
    fclose(b);
    fclose(c);
    char *body = NULL;
    int rc = 0;
    if (asprintf(&body, "set title 'Latency over time'\nset xlabel 'seconds since start'\nset ylabel 'response time (ms)'\n"
                        "set logscale y\n%s\n", lat) < 0 ||
        draw(dir, "latency-time", format, body, err) < 0)
        rc = -1;
    free(body);
    body = NULL;
    if (rc == 0 && (asprintf(&body, "set title 'Cold-start share per %.0f s'\nset xlabel 'seconds since start'\n"
                                    "set ylabel 'cold starts / requests'\nset yrange [0:1]\n%s\n", bucket_s, cold) < 0 ||
                    draw(dir, "cold-share", format, body, err) < 0))
        rc = -1;
    free(body);
    body = NULL;
    if (rc == 0 && (asprintf(&body, "set title 'Instances serving per %.0f s'\nset xlabel 'seconds since start'\n"
                                    "set ylabel 'distinct instances'\nset yrange [0:*]\n%s\n", bucket_s, inst) < 0 ||
                    draw(dir, "instances", format, body, err) < 0))
        rc = -1;
    free(body);
    free(lat);
    free(cold);
    free(inst);
    if (rc < 0 && !err->msg[0])
        thaw_fail(err, "out of memory");
    return rc;
}

int load_plot(const char *const *csvs, size_t n, const char *dir, const char *format, double bucket_s,
              struct thaw_error *err)
{
    if (strcmp(format, "png") && strcmp(format, "svg"))
        return thaw_fail(err, "format must be png or svg, not '%s'", format);
    if (strchr(dir, '\'') || strchr(dir, '\n'))
        return thaw_fail(err, "the output directory's name may not contain quotes or newlines");
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return thaw_fail_errno(err, "cannot create %s", dir);
    struct series *ser = calloc(n ? n : 1, sizeof *ser);
    if (!ser)
        return thaw_fail(err, "out of memory");
    int rc = -1;
    for (size_t i = 0; i < n; i++) {
        if (load_csv_read(csvs[i], &ser[i].rows, &ser[i].count, err) < 0)
            goto out;
        const char *base = strrchr(csvs[i], '/');
        base = base ? base + 1 : csvs[i];
        size_t bl = strcspn(base, ".");
        snprintf(ser[i].label, sizeof ser[i].label, "%.*s", (int)bl, base);
        for (char *c = ser[i].label; *c; c++)
            if (*c == '\'')
                *c = '_';
        ser[i].t0 = UINT64_MAX;
        for (size_t j = 0; j < ser[i].count; j++)
            if (ser[i].rows[j].start_unix_us < ser[i].t0)
                ser[i].t0 = ser[i].rows[j].start_unix_us;
        if (ser[i].count == 0) {
            thaw_fail(err, "%s has no rows", csvs[i]);
            goto out;
        }
    }
    if (plot_cdf(dir, format, ser, n, err) < 0 || plot_time(dir, format, ser, n, bucket_s, err) < 0)
        goto out;
    rc = 0;
out:
    for (size_t i = 0; i < n; i++)
        free(ser[i].rows);
    free(ser);
    return rc;
}
