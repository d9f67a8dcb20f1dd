#include "host/serve/metrics.h"

#include <string.h>

static const char *const kind_names[START_KINDS] = {"warm", "cold-reap", "cold-lazy", "cold-copy", "cold-boot",
                                                         "cold-share"};
static const char *const phase_names[PHASES] = {"queue", "restore", "prefetch", "invoke", "total"};

const double metrics_bucket_bounds[METRICS_BUCKETS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                       0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                                       1,      2.5,     5,      10,    0 /* +Inf */};

const char *start_kind_name(enum start_kind k)
{
    return (unsigned)k < START_KINDS ? kind_names[k] : "?";
}

void fn_metrics_init(struct fn_metrics *m)
{
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->lock, NULL);
}

void fn_metrics_destroy(struct fn_metrics *m)
{
    pthread_mutex_destroy(&m->lock);
}

static void observe(struct histogram *h, uint64_t ns)
{
    double s = (double)ns / 1e9;
    int b = 0;
    while (b < METRICS_BUCKETS - 1 && s > metrics_bucket_bounds[b])
        b++;
    h->counts[b]++;
    h->n++;
    h->sum_s += s;
}

void fn_metrics_invocation(struct fn_metrics *m, enum start_kind k, const uint64_t phase_ns[PHASES])
{
    pthread_mutex_lock(&m->lock);
    m->invocations[k]++;
    for (int p = 0; p < PHASES; p++)
        observe(&m->latency[p][k], phase_ns[p]);
    pthread_mutex_unlock(&m->lock);
}

static const int error_codes[6] = {400, 429, 502, 503, 504, 0};

void fn_metrics_error(struct fn_metrics *m, int status)
{
    int i = 0;
    while (i < 5 && error_codes[i] != status)
        i++;
    pthread_mutex_lock(&m->lock);
    m->errors_by_status[i]++;
    pthread_mutex_unlock(&m->lock);
}

void fn_metrics_pages(struct fn_metrics *m, uint64_t prefetched, uint64_t lazy, uint64_t zero)
{
    pthread_mutex_lock(&m->lock);
    m->pages_prefetched += prefetched;
    m->pages_lazy += lazy;
    m->pages_zero += zero;
    pthread_mutex_unlock(&m->lock);
}

void fn_metrics_deploy(struct fn_metrics *m, int ok)
{
    pthread_mutex_lock(&m->lock);
    if (ok)
        m->deploys_ok++;
    else
        m->deploys_failed++;
    pthread_mutex_unlock(&m->lock);
}

struct family {
    const char *name, *type, *help;
};
static const struct family families[] = {
    {"thaw_invocations_total", "counter", "Invocations answered by the function, by start kind."},
    {"thaw_invocation_errors_total", "counter", "Invocations that failed, by HTTP status."},
    {"thaw_invocation_phase_seconds", "histogram",
     "Latency of each phase of an invocation (queue, restore, prefetch, invoke, total), by start kind."},
    {"thaw_pages_prefetched_total", "counter", "Guest pages installed by REAP prefetch before the vCPU ran."},
    {"thaw_pages_lazy_total", "counter", "Guest pages served on demand from the snapshot (page faults)."},
    {"thaw_pages_zero_total", "counter", "Guest pages installed as zero pages."},
    {"thaw_instances", "gauge", "Instances alive, by state (idle, busy, starting)."},
    {"thaw_queue_length", "gauge", "Requests waiting for an instance."},
    {"thaw_instance_memory_bytes", "gauge",
     "Resident memory held by the function's instances, by state (idle, busy), as last sampled."},
    {"thaw_deploys_total", "counter", "Deploys of the function, by result."},
    {"thaw_instance_memory_byte_seconds_total", "counter",
     "Resident memory x time held by the function's instances, by state (idle, busy; busy time is added when "
     "an invocation ends)."},
    {"thaw_instance_pss_bytes", "gauge",
     "Proportional share of memory (PSS: a page mapped by N instances counts 1/N) held by the function's "
     "instances, by state (idle, busy), as last sampled; below thaw_instance_memory_bytes when they share pages."},
    {"thaw_instance_pss_byte_seconds_total", "counter",
     "Proportional share of memory x time held by the function's instances, by state (idle, busy; busy time is "
     "added when an invocation ends)."},
};

int metrics_families(void)
{
    return (int)(sizeof families / sizeof families[0]);
}

static void fmt_bound(char *buf, size_t n, int b)
{
    if (b == METRICS_BUCKETS - 1)
        snprintf(buf, n, "+Inf");
    else
        snprintf(buf, n, "%g", metrics_bucket_bounds[b]);
}

void mem_bytes_add(struct mem_bytes *sum, struct mem_bytes m)
{
    sum->rss += m.rss;
    sum->pss += m.pss;
}

void mem_bytes_sub(struct mem_bytes *sum, struct mem_bytes m)
{
    sum->rss -= m.rss;
    sum->pss -= m.pss;
}

void mem_byte_s_add(struct mem_byte_s *acc, struct mem_bytes m, uint64_t ns)
{
    acc->rss += (double)m.rss * (double)ns / 1e9;
    acc->pss += (double)m.pss * (double)ns / 1e9;
}

static void write_memory(FILE *out, const char *name, const char *fn, uint64_t idle, uint64_t busy)
{
    fprintf(out, "%s{function=\"%s\",state=\"idle\"} %llu\n", name, fn, (unsigned long long)idle);
    fprintf(out, "%s{function=\"%s\",state=\"busy\"} %llu\n", name, fn, (unsigned long long)busy);
}

static void write_memory_time(FILE *out, const char *name, const char *fn, double idle, double busy)
{
    fprintf(out, "%s{function=\"%s\",state=\"idle\"} %.3f\n", name, fn, idle);
    fprintf(out, "%s{function=\"%s\",state=\"busy\"} %.3f\n", name, fn, busy);
}

void metrics_write_family(FILE *out, int f, const char *fn, struct fn_metrics *m, const struct fn_gauges *g)
{
    const struct family *fam = &families[f];
    if (!fn) { /* the family's header */
        fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", fam->name, fam->help, fam->name, fam->type);
        return;
    }
    pthread_mutex_lock(&m->lock);
    switch (f) {
    case 0:
        for (int k = 0; k < START_KINDS; k++)
            fprintf(out, "%s{function=\"%s\",start=\"%s\"} %llu\n", fam->name, fn, kind_names[k],
                    (unsigned long long)m->invocations[k]);
        break;
    case 1:
        for (int i = 0; i < 6; i++) {
            char code[8];
            snprintf(code, sizeof code, "%d", error_codes[i]);
            fprintf(out, "%s{function=\"%s\",status=\"%s\"} %llu\n", fam->name, fn, i == 5 ? "other" : code,
                    (unsigned long long)m->errors_by_status[i]);
        }
        break;
    case 2:
        for (int p = 0; p < PHASES; p++)
            for (int k = 0; k < START_KINDS; k++) {
                struct histogram *h = &m->latency[p][k];
                uint64_t cum = 0;
                for (int b = 0; b < METRICS_BUCKETS; b++) {
                    char le[16];
                    cum += h->counts[b];
                    fmt_bound(le, sizeof le, b);
                    fprintf(out, "%s_bucket{function=\"%s\",phase=\"%s\",start=\"%s\",le=\"%s\"} %llu\n",
                            fam->name, fn, phase_names[p], kind_names[k], le, (unsigned long long)cum);
                }
                fprintf(out, "%s_sum{function=\"%s\",phase=\"%s\",start=\"%s\"} %.9f\n", fam->name, fn,
                        phase_names[p], kind_names[k], h->sum_s);
                fprintf(out, "%s_count{function=\"%s\",phase=\"%s\",start=\"%s\"} %llu\n", fam->name, fn,
                        phase_names[p], kind_names[k], (unsigned long long)h->n);
            }
        break;
    case 3: fprintf(out, "%s{function=\"%s\"} %llu\n", fam->name, fn, (unsigned long long)m->pages_prefetched); break;
    case 4: fprintf(out, "%s{function=\"%s\"} %llu\n", fam->name, fn, (unsigned long long)m->pages_lazy); break;
    case 5: fprintf(out, "%s{function=\"%s\"} %llu\n", fam->name, fn, (unsigned long long)m->pages_zero); break;
    case 6:
        fprintf(out, "%s{function=\"%s\",state=\"idle\"} %llu\n", fam->name, fn, (unsigned long long)g->idle);
        fprintf(out, "%s{function=\"%s\",state=\"busy\"} %llu\n", fam->name, fn, (unsigned long long)g->busy);
        fprintf(out, "%s{function=\"%s\",state=\"starting\"} %llu\n", fam->name, fn,
                (unsigned long long)g->starting);
        break;
    case 7: fprintf(out, "%s{function=\"%s\"} %llu\n", fam->name, fn, (unsigned long long)g->queued); break;
    case 8: write_memory(out, fam->name, fn, g->idle_memory.rss, g->busy_memory.rss); break;
    case 9:
        fprintf(out, "%s{function=\"%s\",result=\"ok\"} %llu\n", fam->name, fn, (unsigned long long)m->deploys_ok);
        fprintf(out, "%s{function=\"%s\",result=\"failed\"} %llu\n", fam->name, fn,
                (unsigned long long)m->deploys_failed);
        break;
    case 10: write_memory_time(out, fam->name, fn, g->idle_byte_s.rss, g->busy_byte_s.rss); break;
    case 11: write_memory(out, fam->name, fn, g->idle_memory.pss, g->busy_memory.pss); break;
    case 12: write_memory_time(out, fam->name, fn, g->idle_byte_s.pss, g->busy_byte_s.pss); break;
    }
    pthread_mutex_unlock(&m->lock);
}
