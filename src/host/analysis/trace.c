/* Traces, working sets, the fault timeline and reuse across inputs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/analysis/analysis.h"

int analysis_trace_check(const struct page_record *pages, size_t n, uint64_t mem_size, struct thaw_error *err)
{
    if (mem_size == 0 || mem_size % ANALYSIS_PAGE)
        return thaw_fail(err, "trace: guest memory size %llu is not a whole number of pages",
                         (unsigned long long)mem_size);
    if (n == 0)
        return thaw_fail(err, "trace: no pages recorded");
    for (size_t i = 0; i < n; i++) {
        if (pages[i].offset % ANALYSIS_PAGE || pages[i].offset >= mem_size)
            return thaw_fail(err, "trace: entry %zu: page %#llx is not a page of the %llu MiB guest memory", i,
                             (unsigned long long)pages[i].offset, (unsigned long long)(mem_size >> 20));
        if (i && pages[i].t_ns < pages[i - 1].t_ns)
            return thaw_fail(err, "trace: entry %zu: time goes backwards (%llu ns after %llu ns)", i,
                             (unsigned long long)pages[i].t_ns, (unsigned long long)pages[i - 1].t_ns);
    }
    return 0;
}

int analysis_trace_load(const char *snap_dir, struct analysis_trace *t, struct thaw_error *err)
{
    memset(t, 0, sizeof *t);
    if (reap_read_trace(snap_dir, &t->pages, &t->n, &t->mem_size, NULL, err) < 0)
        return -1;
    if (analysis_trace_check(t->pages, t->n, t->mem_size, err) < 0) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        analysis_trace_free(t);
        return thaw_fail(err, "%s/ws.trace: %s", snap_dir, why);
    }
    return 0;
}

void analysis_trace_free(struct analysis_trace *t)
{
    free(t->pages);
    memset(t, 0, sizeof *t);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int page_set_from_trace(const struct analysis_trace *t, struct page_set *out, struct thaw_error *err)
{
    out->n = 0;
    out->pages = malloc((t->n ? t->n : 1) * sizeof *out->pages);
    if (!out->pages)
        return thaw_fail(err, "out of memory");
    for (size_t i = 0; i < t->n; i++)
        out->pages[i] = t->pages[i].offset;
    qsort(out->pages, t->n, sizeof *out->pages, cmp_u64);
    for (size_t i = 0; i < t->n; i++)
        if (out->n == 0 || out->pages[i] != out->pages[out->n - 1])
            out->pages[out->n++] = out->pages[i];
    return 0;
}

size_t page_set_common(const struct page_set *a, const struct page_set *b)
{
    size_t i = 0, j = 0, c = 0;
    while (i < a->n && j < b->n) {
        if (a->pages[i] < b->pages[j])
            i++;
        else if (a->pages[i] > b->pages[j])
            j++;
        else
            c++, i++, j++;
    }
    return c;
}

int page_set_contains(const struct page_set *s, uint64_t page)
{
    return bsearch(&page, s->pages, s->n, sizeof *s->pages, cmp_u64) != NULL;
}

void page_set_free(struct page_set *s)
{
    free(s->pages);
    s->pages = NULL;
    s->n = 0;
}

void timeline_summarise(const struct analysis_trace *t, struct timeline_stats *out)
{
    memset(out, 0, sizeof *out);
    if (t->n == 0)
        return;
    out->first_ns = t->pages[0].t_ns;
    out->last_ns = t->pages[t->n - 1].t_ns;
    /* Distinct pages in first-touch order: a second touch of a freed page is no new page. */
    struct page_set ws;
    if (page_set_from_trace(t, &ws, NULL) < 0)
        return;
    size_t half = (ws.n + 1) / 2, ninety = (ws.n * 9 + 9) / 10, seen = 0;
    uint8_t *done = calloc(ws.n, 1);
    for (size_t i = 0; done && i < t->n; i++) {
        uint64_t *p = bsearch(&t->pages[i].offset, ws.pages, ws.n, sizeof *ws.pages, cmp_u64);
        size_t k = (size_t)(p - ws.pages);
        if (done[k])
            continue;
        done[k] = 1;
        seen++;
        if (seen == half)
            out->t50_ns = t->pages[i].t_ns;
        if (seen == ninety)
            out->t90_ns = t->pages[i].t_ns;
    }
    free(done);
    page_set_free(&ws);
}

struct tagged {
    uint64_t page;
    size_t set;
};

static int cmp_tagged(const void *a, const void *b)
{
    const struct tagged *x = a, *y = b;
    if (x->page != y->page)
        return x->page < y->page ? -1 : 1;
    return x->set < y->set ? -1 : x->set > y->set;
}

int reuse_compute(const struct page_set *sets, size_t k, struct reuse_stats *out, struct thaw_error *err)
{
    memset(out, 0, sizeof *out);
    if (k == 0)
        return thaw_fail(err, "reuse: no working sets");
    size_t total = 0;
    for (size_t i = 0; i < k; i++) {
        if (sets[i].n == 0)
            return thaw_fail(err, "reuse: working set %zu is empty", i + 1);
        total += sets[i].n;
    }
    out->k = k;
    out->unique = calloc(k, sizeof *out->unique);
    out->share = calloc(k * k, sizeof *out->share);
    struct tagged *all = malloc(total * sizeof *all);
    if (!out->unique || !out->share || !all) {
        free(all);
        reuse_stats_free(out);
        return thaw_fail(err, "out of memory");
    }
    size_t m = 0;
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < sets[i].n; j++)
            all[m++] = (struct tagged){sets[i].pages[j], i};
    qsort(all, total, sizeof *all, cmp_tagged);
    /* Each group of equal pages names the sets that touched it (each set once: sets are
     * strictly ascending). */
    for (size_t a = 0; a < total;) {
        size_t b = a + 1;
        while (b < total && all[b].page == all[a].page)
            b++;
        out->union_pages++;
        if (b - a == k)
            out->common++;
        if (b - a == 1)
            out->unique[all[a].set]++;
        a = b;
    }
    free(all);
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < k; j++)
            out->share[i * k + j] =
                i == j ? 1.0 : (double)page_set_common(&sets[i], &sets[j]) / (double)sets[i].n;
    return 0;
}

void reuse_stats_free(struct reuse_stats *r)
{
    free(r->unique);
    free(r->share);
    memset(r, 0, sizeof *r);
}
