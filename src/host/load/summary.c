/* The end-of-run summary: rate, latency percentiles per start kind, cold/warm split,
 * errors by kind. */
#include "host/load/load.h"

#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double load_percentile(double *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    double rank = p / 100.0 * (double)(n - 1);
    size_t lo = (size_t)rank;
    if (lo + 1 >= n)
        return sorted[n - 1];
    double frac = rank - (double)lo;
    return sorted[lo] + frac * (sorted[lo + 1] - sorted[lo]);
}

void load_latency_of(double *values, size_t n, struct load_latency *out)
{
    memset(out, 0, sizeof *out);
    out->count = n;
    if (!n)
        return;
    qsort(values, n, sizeof *values, cmp_double);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += values[i];
    out->mean_us = sum / (double)n;
    out->p50_us = load_percentile(values, n, 50);
    out->p90_us = load_percentile(values, n, 90);
    out->p99_us = load_percentile(values, n, 99);
    out->max_us = values[n - 1];
}

int load_summarize(const struct load_record *rows, size_t n, double duration_s, struct load_summary *out,
                   struct thaw_error *err)
{
    memset(out, 0, sizeof *out);
    out->requests = n;
    out->duration_s = duration_s;
    double *all = malloc((n ? n : 1) * sizeof *all), *kind = malloc((n ? n : 1) * sizeof *kind);
    if (!all || !kind) {
        free(all);
        free(kind);
        return thaw_fail(err, "out of memory for the summary");
    }
    size_t nall = 0;
    for (size_t i = 0; i < n; i++) {
        const struct load_record *r = &rows[i];
        if (r->error[0]) {
            out->errors++;
            char k[48];
            load_error_kind(r->error, k, sizeof k);
            size_t j = 0;
            while (j < out->error_kind_count && strcmp(out->error_kinds[j].kind, k))
                j++;
            if (j == out->error_kind_count && j < sizeof out->error_kinds / sizeof out->error_kinds[0]) {
                snprintf(out->error_kinds[j].kind, sizeof out->error_kinds[j].kind, "%s", k);
                out->error_kind_count++;
            }
            if (j < out->error_kind_count)
                out->error_kinds[j].count++;
            continue;
        }
        out->ok++;
        all[nall++] = (double)r->response_us;
        if (load_start_is_cold(r->start))
            out->cold++;
        else if (r->start == LOAD_START_WARM)
            out->warm++;
    }
    load_latency_of(all, nall, &out->all);
    for (int k = 0; k < LOAD_START_KINDS; k++) {
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (!rows[i].error[0] && rows[i].start == (enum load_start_kind)k)
                kind[m++] = (double)rows[i].response_us;
        load_latency_of(kind, m, &out->by_start[k]);
    }
    out->achieved_rps = duration_s > 0 ? (double)out->ok / duration_s : 0;
    free(all);
    free(kind);
    return 0;
}

static void latency_line(FILE *f, const char *name, const struct load_latency *l)
{
    fprintf(f, "  %-10s %8zu  %10.2f %10.2f %10.2f %10.2f\n", name, l->count, l->p50_us / 1000.0,
            l->p90_us / 1000.0, l->p99_us / 1000.0, l->max_us / 1000.0);
}

void load_summary_print(FILE *f, const struct load_summary *s)
{
    fprintf(f, "requests %zu in %.2f s: %zu ok, %zu errors; achieved %.1f requests/s\n", s->requests,
            s->duration_s, s->ok, s->errors, s->achieved_rps);
    size_t started = s->cold + s->warm;
    fprintf(f, "starts: %zu cold (%.1f%%), %zu warm\n", s->cold, started ? 100.0 * (double)s->cold / (double)started : 0.0,
            s->warm);
    fprintf(f, "latency (ms)  count         p50        p90        p99        max\n");
    latency_line(f, "all", &s->all);
    for (int k = 0; k < LOAD_START_KINDS; k++)
        if (s->by_start[k].count)
            latency_line(f, load_start_kind_name((enum load_start_kind)k), &s->by_start[k]);
    for (size_t i = 0; i < s->error_kind_count; i++)
        fprintf(f, "errors: %zu %s\n", s->error_kinds[i].count, s->error_kinds[i].kind);
}
