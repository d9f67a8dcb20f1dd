#include "host/cli/analyze_output.h"

#include <string.h>

#define MIB(pages) ((double)(pages) * ANALYSIS_PAGE / 1048576.0)

static double share(uint64_t part, uint64_t whole) { return whole ? (double)part / (double)whole : 0.0; }

/* Mean of the off-diagonal reuse shares: how much of one input's working set another
 * input touches too, on average. */
static double mean_cross_share(const struct reuse_stats *u)
{
    if (u->k < 2)
        return 1.0;
    double s = 0;
    for (size_t i = 0; i < u->k; i++)
        for (size_t j = 0; j < u->k; j++)
            if (i != j)
                s += u->share[i * u->k + j];
    return s / (double)(u->k * (u->k - 1));
}

/* One row of run lengths (mean/median/max pages) per payload, in guest or fault order. */
static void print_run_lengths(FILE *out, const char *label, const struct analyze_report *r, bool fault_order)
{
    fprintf(out, "  %-34s", label);
    for (size_t i = 0; i < r->n; i++) {
        const struct run_stats *s = fault_order ? &r->p[i].rec.fault_runs : &r->p[i].rec.guest_runs;
        char cell[40];
        snprintf(cell, sizeof cell, "%.1f/%zu/%zu", s->mean_len, s->median_len, s->max_len);
        fprintf(out, " %12s", cell);
    }
    fputc('\n', out);
}

void analyze_print_table(FILE *out, const struct analyze_report *r)
{
    fprintf(out, "thaw analyze: %s (%s), guest memory %llu MiB", r->function, r->source,
            (unsigned long long)(r->mem_size >> 20));
    if (r->memory_allocated >= 0)
        fprintf(out, ", snapshot memory file %.2f MiB allocated", r->memory_allocated / 1048576.0);
    fputc('\n', out);
    if (r->booted)
        fprintf(out, "booted instance after its first invocation: %.2f MiB resident (boot to ready %.1f ms)\n",
                r->booted_rss_kb / 1024.0, r->boot_ns / 1e6);

    fprintf(out, "\n  %-34s", "payload");
    for (size_t i = 0; i < r->n; i++)
        fprintf(out, " %12.12s", r->p[i].name);
    fputc('\n', out);
    bool measured = r->n && r->p[0].measured;
    if (measured) {
        fprintf(out, "  %-34s", "restored footprint (MiB)");
        for (size_t i = 0; i < r->n; i++)
            fprintf(out, " %12.2f", r->p[i].restored_rss_kb / 1024.0);
        fputc('\n', out);
        if (r->booted) {
            fprintf(out, "  %-34s", "  reduction vs booted");
            for (size_t i = 0; i < r->n; i++)
                fprintf(out, " %11.1f%%", 100.0 * (1 - share(r->p[i].restored_rss_kb, r->booted_rss_kb)));
            fputc('\n', out);
        }
    }
    fprintf(out, "  %-34s", "working set (pages)");
    for (size_t i = 0; i < r->n; i++)
        fprintf(out, " %12zu", r->p[i].rec.ws.n);
    fputc('\n', out);
    fprintf(out, "  %-34s", "working set (MiB)");
    for (size_t i = 0; i < r->n; i++)
        fprintf(out, " %12.2f", MIB(r->p[i].rec.ws.n));
    fputc('\n', out);
    if (measured) {
        fprintf(out, "  %-34s", "  share of the restored footprint");
        for (size_t i = 0; i < r->n; i++)
            fprintf(out, " %11.1f%%", 100.0 * share(r->p[i].rec.ws.n * 4, r->p[i].restored_rss_kb));
        fputc('\n', out);
    }
    if (r->have_layout)
        for (int k = 0; k < REGION_COUNT; k++) {
            char label[64];
            snprintf(label, sizeof label, "  %s (pages)", region_kind_name((enum region_kind)k));
            fprintf(out, "  %-34s", label);
            for (size_t i = 0; i < r->n; i++)
                fprintf(out, " %12llu", (unsigned long long)r->p[i].rec.by_region[k]);
            fputc('\n', out);
        }
    fprintf(out, "  %-34s", "runs, guest order: count");
    for (size_t i = 0; i < r->n; i++)
        fprintf(out, " %12zu", r->p[i].rec.guest_runs.runs);
    fputc('\n', out);
    print_run_lengths(out, "  mean / median / max (pages)", r, false);
    print_run_lengths(out, "runs, fault order: mean/median/max", r, true);
    const struct {
        const char *label;
        size_t off;
    } ra[] = {{"read-around 128 KiB: useful share", offsetof(struct analyze_payload, rec.ra_small)},
              {"read-around 8 MiB: useful share", offsetof(struct analyze_payload, rec.ra_large)}};
    for (size_t k = 0; k < 2; k++) {
        fprintf(out, "  %-34s", ra[k].label);
        for (size_t i = 0; i < r->n; i++)
            fprintf(out, " %11.1f%%",
                    100.0 * ((const struct readahead_stats *)((const char *)&r->p[i] + ra[k].off))->useful_share);
        fputc('\n', out);
        fprintf(out, "  %-34s", "  disk reads / faults");
        for (size_t i = 0; i < r->n; i++) {
            const struct readahead_stats *s = (const void *)((const char *)&r->p[i] + ra[k].off);
            char cell[40];
            snprintf(cell, sizeof cell, "%llu/%llu", (unsigned long long)s->reads, (unsigned long long)s->faults);
            fprintf(out, " %12s", cell);
        }
        fputc('\n', out);
    }
    fprintf(out, "  %-34s", "faults: 50% / 90% / all by (ms)");
    for (size_t i = 0; i < r->n; i++) {
        char cell[48];
        const struct timeline_stats *t = &r->p[i].rec.timeline;
        snprintf(cell, sizeof cell, "%.1f/%.1f/%.1f", t->t50_ns / 1e6, t->t90_ns / 1e6, t->last_ns / 1e6);
        fprintf(out, " %12s", cell);
    }
    fputc('\n', out);
    if (measured) {
        fprintf(out, "  %-34s", "first response, recording (ms)");
        for (size_t i = 0; i < r->n; i++)
            fprintf(out, " %12.1f", r->p[i].first_invoke_ns / 1e6);
        fputc('\n', out);
    }

    const struct reuse_stats *u = &r->reuse;
    if (u->k >= 2) {
        fprintf(out, "\nreuse across %zu inputs: %llu pages touched by all, %llu by any; one input's working set "
                     "reused by another: %.1f%% on average\n",
                u->k, (unsigned long long)u->common, (unsigned long long)u->union_pages, 100.0 * mean_cross_share(u));
        fprintf(out, "  %-12s", "unique pages");
        for (size_t i = 0; i < r->n; i++)
            fprintf(out, " %12llu", (unsigned long long)u->unique[i]);
        fprintf(out, "\n  share of row's working set that column touches:\n");
        fprintf(out, "  %-12s", "");
        for (size_t j = 0; j < u->k; j++)
            fprintf(out, " %12.12s", r->p[j].name);
        fputc('\n', out);
        for (size_t i = 0; i < u->k; i++) {
            fprintf(out, "  %-12.12s", r->p[i].name);
            for (size_t j = 0; j < u->k; j++)
                fprintf(out, " %11.1f%%", 100.0 * u->share[i * u->k + j]);
            fputc('\n', out);
        }
    }
}

static json_t *runs_json(const struct run_stats *s)
{
    json_t *hist = json_array();
    for (size_t L = 1; L <= s->max_len; L++)
        if (s->hist[L])
            json_array_append_new(hist, json_pack("[I,I]", (json_int_t)L, (json_int_t)s->hist[L]));
    return json_pack("{s:I,s:f,s:I,s:I,s:o}", "runs", (json_int_t)s->runs, "mean", s->mean_len, "median",
                     (json_int_t)s->median_len, "max", (json_int_t)s->max_len, "histogram", hist);
}

static json_t *ra_json(const struct readahead_stats *s)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:f,s:f}", "window_bytes", (json_int_t)s->window_bytes, "faults",
                     (json_int_t)s->faults, "reads", (json_int_t)s->reads, "pages_fetched",
                     (json_int_t)s->pages_fetched, "pages_useful", (json_int_t)s->pages_useful, "useful_share",
                     s->useful_share, "faults_saved", s->faults_saved);
}

static json_t *payload_json(const struct analyze_report *r, const struct analyze_payload *p)
{
    const struct analysis_recording *c = &p->rec;
    json_t *regions = json_object();
    for (int k = 0; k < REGION_COUNT; k++)
        json_object_set_new(regions, region_kind_name((enum region_kind)k), json_integer((json_int_t)c->by_region[k]));
    /* The timeline: every recorded touch, [us since the restore started, guest address]. */
    json_t *points = json_array();
    for (size_t i = 0; i < c->trace.n; i++)
        json_array_append_new(points, json_pack("[f,I]", c->trace.pages[i].t_ns / 1e3, (json_int_t)c->trace.pages[i].offset));
    json_t *o = json_pack(
        "{s:s,s:{s:I,s:f,s:o},s:{s:o,s:o},s:[o,o],s:{s:f,s:f,s:f,s:f,s:o}}", "name", p->name, "working_set",
        "pages", (json_int_t)c->ws.n, "mib", MIB(c->ws.n), "by_region", regions, "runs", "guest_order",
        runs_json(&c->guest_runs), "fault_order", runs_json(&c->fault_runs), "readahead", ra_json(&c->ra_small),
        ra_json(&c->ra_large), "timeline", "first_us", c->timeline.first_ns / 1e3, "t50_us", c->timeline.t50_ns / 1e3,
        "t90_us", c->timeline.t90_ns / 1e3, "last_us", c->timeline.last_ns / 1e3, "points", points);
    if (p->measured) {
        json_object_set_new(o, "restore",
                            json_pack("{s:I,s:f,s:f,s:I,s:I}", "rss_kb", (json_int_t)p->restored_rss_kb, "restore_us",
                                      p->restore_ns / 1e3, "first_response_us", p->first_invoke_ns / 1e3,
                                      "pages_served", (json_int_t)p->pages_served, "zero_pages",
                                      (json_int_t)p->zero_pages));
        json_object_set_new(json_object_get(o, "working_set"), "share_of_footprint",
                            json_real(share(c->ws.n * 4, p->restored_rss_kb)));
    }
    (void)r;
    return o;
}

json_t *analyze_to_json(const struct analyze_report *r)
{
    json_t *o = json_pack("{s:s,s:s,s:I,s:I}", "function", r->function, "source", r->source, "mem_size",
                          (json_int_t)r->mem_size, "page_size", (json_int_t)ANALYSIS_PAGE);
    json_object_set_new(o, "memory_file_allocated",
                        r->memory_allocated >= 0 ? json_integer(r->memory_allocated) : json_null());
    json_object_set_new(o, "booted",
                        r->booted ? json_pack("{s:I,s:f}", "rss_kb", (json_int_t)r->booted_rss_kb, "boot_us",
                                              r->boot_ns / 1e3)
                                  : json_null());
    json_t *layout = json_array();
    for (size_t i = 0; r->have_layout && i < r->layout.n; i++)
        json_array_append_new(layout, json_pack("{s:I,s:I,s:s}", "start", (json_int_t)r->layout.r[i].start, "end",
                                                (json_int_t)r->layout.r[i].end, "kind",
                                                region_kind_name(r->layout.r[i].kind)));
    json_object_set_new(o, "layout", layout);
    json_t *ps = json_array();
    for (size_t i = 0; i < r->n; i++)
        json_array_append_new(ps, payload_json(r, &r->p[i]));
    json_object_set_new(o, "payloads", ps);
    const struct reuse_stats *u = &r->reuse;
    if (u->k) {
        json_t *names = json_array(), *unique = json_array(), *matrix = json_array();
        for (size_t i = 0; i < u->k; i++) {
            json_array_append_new(names, json_string(r->p[i].name));
            json_array_append_new(unique, json_integer((json_int_t)u->unique[i]));
            json_t *row = json_array();
            for (size_t j = 0; j < u->k; j++)
                json_array_append_new(row, json_real(u->share[i * u->k + j]));
            json_array_append_new(matrix, row);
        }
        json_object_set_new(o, "reuse",
                            json_pack("{s:o,s:I,s:I,s:o,s:f,s:o}", "payloads", names, "union_pages",
                                      (json_int_t)u->union_pages, "common_pages", (json_int_t)u->common, "unique_pages",
                                      unique, "mean_cross_share", mean_cross_share(u), "matrix", matrix));
    } else {
        json_object_set_new(o, "reuse", json_null());
    }
    return o;
}
