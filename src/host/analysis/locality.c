/* Spatial locality: run lengths and the read-ahead model. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "host/analysis/analysis.h"

/* Builds the statistics from the run lengths in lens[0..nruns). */
static int run_stats_from(const size_t *lens, size_t nruns, struct run_stats *out, struct thaw_error *err)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < nruns; i++) {
        out->pages += lens[i];
        if (lens[i] > out->max_len)
            out->max_len = lens[i];
    }
    out->runs = nruns;
    out->hist = calloc(out->max_len + 1, sizeof *out->hist);
    if (!out->hist)
        return thaw_fail(err, "out of memory");
    for (size_t i = 0; i < nruns; i++)
        out->hist[lens[i]]++;
    out->mean_len = nruns ? (double)out->pages / (double)nruns : 0.0;
    /* Page-weighted median: the length of the run holding the middle page. */
    size_t seen = 0, mid = (out->pages + 1) / 2;
    for (size_t L = 1; L <= out->max_len; L++) {
        seen += out->hist[L] * L;
        if (seen >= mid && mid) {
            out->median_len = L;
            break;
        }
    }
    return 0;
}

int runs_guest_order(const struct page_set *ws, struct run_stats *out, struct thaw_error *err)
{
    size_t *lens = malloc((ws->n ? ws->n : 1) * sizeof *lens), nruns = 0;
    if (!lens)
        return thaw_fail(err, "out of memory");
    for (size_t i = 0; i < ws->n;) {
        size_t j = i + 1;
        while (j < ws->n && ws->pages[j] == ws->pages[j - 1] + ANALYSIS_PAGE)
            j++;
        lens[nruns++] = j - i;
        i = j;
    }
    int rc = run_stats_from(lens, nruns, out, err);
    free(lens);
    return rc;
}

/* The first touches of a trace, in order (a page freed and touched again counts once). */
static int first_touches(const struct analysis_trace *t, uint64_t **out, size_t *n, struct thaw_error *err)
{
    uint64_t npages = t->mem_size / ANALYSIS_PAGE;
    uint8_t *seen = calloc((npages + 7) / 8, 1);
    *out = malloc((t->n ? t->n : 1) * sizeof **out);
    if (!seen || !*out) {
        free(seen);
        free(*out);
        return thaw_fail(err, "out of memory");
    }
    *n = 0;
    for (size_t i = 0; i < t->n; i++) {
        uint64_t p = t->pages[i].offset / ANALYSIS_PAGE;
        if (p >= npages)
            continue; /* analysis_trace_check refuses these */
        if (seen[p / 8] >> (p % 8) & 1)
            continue;
        seen[p / 8] |= (uint8_t)(1u << (p % 8));
        (*out)[(*n)++] = t->pages[i].offset;
    }
    free(seen);
    return 0;
}

int runs_fault_order(const struct analysis_trace *t, struct run_stats *out, struct thaw_error *err)
{
    uint64_t *order;
    size_t n;
    if (first_touches(t, &order, &n, err) < 0)
        return -1;
    size_t *lens = malloc((n ? n : 1) * sizeof *lens), nruns = 0;
    if (!lens) {
        free(order);
        return thaw_fail(err, "out of memory");
    }
    for (size_t i = 0; i < n;) {
        size_t j = i + 1;
        while (j < n && order[j] == order[j - 1] + ANALYSIS_PAGE)
            j++;
        lens[nruns++] = j - i;
        i = j;
    }
    int rc = run_stats_from(lens, nruns, out, err);
    free(lens);
    free(order);
    return rc;
}

void run_stats_free(struct run_stats *r)
{
    free(r->hist);
    memset(r, 0, sizeof *r);
}

static bool bit(const uint8_t *m, uint64_t i) { return m[i / 8] >> (i % 8) & 1; }
static void set(uint8_t *m, uint64_t i) { m[i / 8] |= (uint8_t)(1u << (i % 8)); }

int readahead_simulate(const struct analysis_trace *t, uint64_t window_bytes, struct readahead_stats *out,
                       struct thaw_error *err)
{
    memset(out, 0, sizeof *out);
    if (window_bytes < ANALYSIS_PAGE || window_bytes % ANALYSIS_PAGE)
        return thaw_fail(err, "read-ahead window of %llu bytes is not a whole number of pages",
                         (unsigned long long)window_bytes);
    out->window_bytes = window_bytes;
    uint64_t *order;
    size_t n;
    if (first_touches(t, &order, &n, err) < 0)
        return -1;
    uint64_t npages = t->mem_size / ANALYSIS_PAGE, w = window_bytes / ANALYSIS_PAGE;
    uint8_t *fetched = calloc((npages + 7) / 8, 1), *touched = calloc((npages + 7) / 8, 1);
    if (!fetched || !touched) {
        free(order);
        free(fetched);
        free(touched);
        return thaw_fail(err, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        set(touched, order[i] / ANALYSIS_PAGE);
    out->faults = n;
    for (size_t i = 0; i < n; i++) {
        uint64_t p = order[i] / ANALYSIS_PAGE;
        if (bit(fetched, p))
            continue;
        out->reads++;
        /* Linux's read-around for a fault in a file mapping: half the window before the
         * page, half after, never before the start of the file or past its end. */
        uint64_t start = p > w / 2 ? p - w / 2 : 0, end = start + w < npages ? start + w : npages;
        for (uint64_t q = start; q < end; q++) {
            if (bit(fetched, q))
                continue;
            set(fetched, q);
            out->pages_fetched++;
            if (bit(touched, q))
                out->pages_useful++;
        }
    }
    out->useful_share = out->pages_fetched ? (double)out->pages_useful / (double)out->pages_fetched : 0.0;
    out->faults_saved = n ? 1.0 - (double)out->reads / (double)n : 0.0;
    free(order);
    free(fetched);
    free(touched);
    return 0;
}
