/* The daemon's measurements of one function, and their rendering in Prometheus text
 * exposition format (version 0.0.4) for GET /metrics. Latencies are histograms per
 * phase (queue, restore, prefetch, invoke, total) and start kind. Thread-safe: every
 * update takes the metrics' own lock. */
#ifndef THAW_SERVE_METRICS_H
#define THAW_SERVE_METRICS_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

enum start_kind { START_WARM, START_COLD_REAP, START_COLD_LAZY, START_COLD_COPY, START_COLD_BOOT, START_COLD_SHARE,
                  START_KINDS };
enum phase { PHASE_QUEUE, PHASE_RESTORE, PHASE_PREFETCH, PHASE_INVOKE, PHASE_TOTAL, PHASES };

const char *start_kind_name(enum start_kind k);

#define METRICS_BUCKETS 17
extern const double metrics_bucket_bounds[METRICS_BUCKETS]; /* seconds; the last is +Inf */

struct histogram {
    uint64_t counts[METRICS_BUCKETS]; /* not cumulative */
    uint64_t n;
    double sum_s;
};

struct fn_metrics {
    pthread_mutex_t lock;
    uint64_t invocations[START_KINDS];
    uint64_t errors_by_status[6]; /* 400, 429, 502, 503, 504, other */
    struct histogram latency[PHASES][START_KINDS];
    uint64_t pages_prefetched, pages_lazy, pages_zero;
    uint64_t deploys_ok, deploys_failed;
};

void fn_metrics_init(struct fn_metrics *m);
void fn_metrics_destroy(struct fn_metrics *m);
/* One finished invocation: its start kind and phase times in nanoseconds. */
void fn_metrics_invocation(struct fn_metrics *m, enum start_kind k, const uint64_t phase_ns[PHASES]);
void fn_metrics_error(struct fn_metrics *m, int http_status);
void fn_metrics_pages(struct fn_metrics *m, uint64_t prefetched, uint64_t lazy, uint64_t zero);
void fn_metrics_deploy(struct fn_metrics *m, int ok);

/* Guest memory held on the host, as last sampled: resident (rss) and its proportional
 * share (pss: a page mapped by N instances counts 1/N in each). With restore=share the
 * instances' rss counts the shared pages once per instance; their pss adds up to what
 * they hold together. */
struct mem_bytes {
    uint64_t rss, pss;
};
/* That memory x time, in byte-seconds. */
struct mem_byte_s {
    double rss, pss;
};
void mem_bytes_add(struct mem_bytes *sum, struct mem_bytes m);
void mem_bytes_sub(struct mem_bytes *sum, struct mem_bytes m);
/* Adds m held for ns nanoseconds to acc. */
void mem_byte_s_add(struct mem_byte_s *acc, struct mem_bytes m, uint64_t ns);

/* Gauges sampled when rendering. */
struct fn_gauges {
    uint64_t idle, busy, starting, queued;
    struct mem_bytes idle_memory, busy_memory; /* as last sampled */
    uint64_t memory_bytes;                     /* resident, idle + busy */
    struct mem_byte_s idle_byte_s, busy_byte_s; /* memory x time, so far */
};

/* Writes the samples of one function. family is which family to write (0..n) so all
 * samples of a family stay together: call for each family over every function. */
int metrics_families(void);
void metrics_write_family(FILE *out, int family, const char *function, struct fn_metrics *m,
                          const struct fn_gauges *g);

#endif
