/* thaw load: the load generator that drives a running `thaw serve` over HTTP for
 * experiments, in the manner of vHive's invoker and In-Vitro's loader.
 *
 *   schedule  when requests are sent: open-loop arrivals (exponential = Poisson,
 *             uniform, equidistant) from a fixed seed, or a replay of a trace in the
 *             Azure Functions 2019 dataset's format (per-minute invocation counts per
 *             function), time-compressed and mapped onto deployed functions;
 *   trace     the dataset's three files: parse (strict, errors name file and line) and
 *             generate a synthetic trace of that format from the published fits;
 *   runner    sends the schedule with libcurl's multi interface (one thread, many
 *             requests in flight), or keeps C requests in flight (closed loop), and
 *             records one row per request from the daemon's X-Thaw-* headers;
 *   record    the per-request CSV, with In-Vitro's record columns;
 *   summary   achieved rate, latency percentiles per start kind, cold/warm split,
 *             errors by kind;
 *   plot      figures from CSVs with gnuplot.
 * Everything but the runner and plot is pure and unit-tested (tests/unit/test_load*.c).
 * Every function that can fail returns -1 with a one-line reason in err. */
#ifndef THAW_HOST_LOAD_H
#define THAW_HOST_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "host/util/error.h"

/* ---- random numbers: a small seeded generator, so schedules repeat exactly ---------- */
struct load_rng {
    uint64_t s[4];
};
void load_rng_seed(struct load_rng *r, uint64_t seed);
uint64_t load_rng_next(struct load_rng *r);
double load_rng_uniform(struct load_rng *r); /* in [0, 1) */
double load_rng_normal(struct load_rng *r);  /* mean 0, sd 1 */

/* ---- schedules ---------------------------------------------------------------------- */
enum load_arrival {
    LOAD_ARRIVAL_EXPONENTIAL, /* Poisson process: CV of inter-arrival times 1 */
    LOAD_ARRIVAL_UNIFORM,     /* inter-arrival times uniform on [0, 2/rate]: CV 1/sqrt(3) */
    LOAD_ARRIVAL_EQUIDISTANT, /* exactly 1/rate apart: CV 0 */
};
/* One inter-arrival gap with mean 1/rate, in seconds. */
double load_gap_s(struct load_rng *r, enum load_arrival kind, double rate);
/* Parses "exponential" (or "poisson"), "uniform", "equidistant". Returns 0 or -1. */
int load_arrival_parse(const char *s, enum load_arrival *out, struct thaw_error *err);
const char *load_arrival_name(enum load_arrival a);

/* One request to send. */
struct load_event {
    uint64_t at_us;       /* send time from the start of the run */
    uint32_t function;    /* index into the schedule's function table */
    uint32_t minute;      /* trace minute (0 for open-loop schedules) */
    uint64_t duration_us; /* requested duration (the trace's, 0 if none) */
};

/* What each scheduled function name maps to: a deployed function and its payload. */
struct load_target {
    char trace_name[128]; /* the trace's HashFunction, or the function itself */
    char function[64];    /* deployed thaw function */
    char *payload;        /* request body (malloc'd, may be NULL: empty body) */
    size_t payload_len;
};

struct load_schedule {
    struct load_event *events; /* sorted by at_us */
    size_t count;
    struct load_target *targets;
    size_t target_count;
    uint64_t span_us; /* intended length of the run */
};
void load_schedule_free(struct load_schedule *s);

/* Open loop: arrivals at `rate` per second for `duration_s` seconds to one target
 * (copied). Returns 0 or -1. */
int load_schedule_open(struct load_schedule *s, enum load_arrival kind, double rate, double duration_s,
                       uint64_t seed, const struct load_target *target, struct thaw_error *err);

/* Inter-arrival statistics of a schedule: mean rate (events per second over the span
 * of the arrivals) and coefficient of variation of the gaps. */
void load_schedule_stats(const struct load_schedule *s, double *rate, double *cv);

/* ---- the Azure Functions 2019 trace format -------------------------------------------
 * invocations_per_function_md.anon.dNN.csv:
 *   HashOwner,HashApp,HashFunction,Trigger,1,2,...,1440   (counts per minute)
 * function_durations_percentiles.anon.dNN.csv:
 *   HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum,
 *   percentile_Average_0,_1,_25,_50,_75,_99,_100            (milliseconds)
 * app_memory_percentiles.anon.dNN.csv:
 *   HashOwner,HashApp,SampleCount,AverageAllocatedMb,
 *   AverageAllocatedMb_pct1,_pct5,_pct25,_pct50,_pct75,_pct95,_pct99,_pct100 */
#define LOAD_TRACE_MINUTES_MAX 1440u
#define LOAD_TRACE_DURATION_PCTS 7u /* 0, 1, 25, 50, 75, 99, 100 */
#define LOAD_TRACE_MEMORY_PCTS 8u   /* 1, 5, 25, 50, 75, 95, 99, 100 */

struct load_trace_function {
    char owner[72], app[72], function[72], trigger[16];
    uint32_t *per_minute; /* minutes entries */
    uint64_t total;
    bool has_duration;
    double duration_avg_ms, duration_count, duration_min_ms, duration_max_ms;
    double duration_pct_ms[LOAD_TRACE_DURATION_PCTS];
    bool has_memory;
    double memory_samples, memory_avg_mb;
    double memory_pct_mb[LOAD_TRACE_MEMORY_PCTS];
};

struct load_trace {
    struct load_trace_function *functions;
    size_t count;
    uint32_t minutes; /* columns of per-minute counts (all rows have the same) */
};

/* Reads the invocation-count file (required) and, when not NULL, the duration and
 * memory files; durations attach by (owner, app, function), memory by (owner, app).
 * Malformed rows fail with "FILE:LINE: reason". */
int load_trace_read(struct load_trace *t, const char *invocations_csv, const char *durations_csv,
                    const char *memory_csv, struct thaw_error *err);
/* Finds the three files in a directory by their dataset names (day dNN, any day). */
int load_trace_read_dir(struct load_trace *t, const char *dir, struct thaw_error *err);
void load_trace_free(struct load_trace *t);

/* Writes a synthetic trace of `functions` functions over `minutes` minutes in the
 * dataset's format into dir (day d01), drawn from the fits Shahrad et al. (ATC'20)
 * published: daily invocations per function log-normal (45% at most hourly, 81% at
 * most once a minute), execution times log-normal, allocated memory Burr XII, a share
 * of timer-triggered functions firing periodically. Returns 0 or -1. */
struct load_tracegen_config {
    uint32_t functions;
    uint32_t minutes;
    uint64_t seed;
    double rate_scale; /* multiplies every function's rate (1 = the fit) */
};
int load_trace_generate(const char *dir, const struct load_tracegen_config *cfg, struct thaw_error *err);

/* Function mapping file: lines "trace_function,thaw_function[,payload_file]"; '#'
 * starts a comment. A trace_function of '*' maps every unmapped trace function onto
 * the '*' lines' functions in turn (by the trace's row order). Payload paths are
 * relative to the mapping file's directory. */
struct load_mapping_entry {
    char trace_name[128];
    char function[64];
    char payload_path[512];
};
struct load_mapping {
    struct load_mapping_entry *entries;
    size_t count;
};
int load_mapping_read(struct load_mapping *m, const char *path, struct thaw_error *err);
void load_mapping_free(struct load_mapping *m);

/* Replay: every trace invocation becomes an event. A trace minute lasts
 * minute_seconds of wall time (60 = real time); within a minute the invocations are
 * spread by `within` (equidistant, uniform or exponential gaps), first_minute and
 * minutes select a window. Functions without a mapping are skipped (counted in
 * *unmapped). The requested duration is the function's median from the duration
 * file when present. */
struct load_replay_config {
    double minute_seconds;
    uint32_t first_minute;
    uint32_t minutes; /* 0: to the end */
    enum load_arrival within;
    uint64_t seed;
};
int load_schedule_replay(struct load_schedule *s, const struct load_trace *t, const struct load_mapping *m,
                         const struct load_replay_config *cfg, size_t *unmapped, struct thaw_error *err);

/* ---- per-request records -------------------------------------------------------------- */
enum load_start_kind {
    LOAD_START_UNKNOWN,
    LOAD_START_WARM,
    LOAD_START_COLD_REAP,
    LOAD_START_COLD_LAZY,
    LOAD_START_COLD_COPY,
    LOAD_START_COLD_BOOT,
    LOAD_START_COLD_SHARE,
    LOAD_START_KINDS
};
const char *load_start_kind_name(enum load_start_kind k);
enum load_start_kind load_start_kind_parse(const char *s); /* UNKNOWN if not one of them */
static inline bool load_start_is_cold(enum load_start_kind k)
{
    return k >= LOAD_START_COLD_REAP && k <= LOAD_START_COLD_SHARE;
}

struct load_record {
    char phase[16];           /* "run" or "warmup" */
    char instance[64];        /* X-Thaw-Instance */
    uint64_t invocation_id;   /* 0, 1, ... in send order */
    char function[64];
    uint64_t start_unix_us;   /* when the request was sent */
    uint64_t scheduled_us;    /* when it should have been sent (from the run's start) */
    uint64_t requested_us;    /* requested duration (trace), 0 if none */
    uint64_t response_us;     /* client-side: send to last byte */
    uint64_t actual_us;       /* the function's own run time (= invocation time) */
    enum load_start_kind start;
    int64_t queue_us, restore_us, prefetch_us, invoke_us; /* X-Thaw-*-Us, -1 if absent */
    int http_status;          /* 0 when no response */
    char error[160];          /* empty on success: "http 503: ...", "timeout", "connect: ..." */
};

/* The CSV's header line (no newline) and one row. Fields are quoted when needed. */
extern const char *const load_csv_columns[];
size_t load_csv_column_count(void);
void load_csv_write_header(FILE *f);
void load_csv_write_row(FILE *f, const struct load_record *r);
/* Reads a CSV written by load_csv_write_*: checks the header, returns the rows. */
int load_csv_read(const char *path, struct load_record **rows, size_t *count, struct thaw_error *err);

/* Classifies an error string into a short kind for the summary ("http 503",
 * "timeout", "connect", ...). */
void load_error_kind(const char *error, char *kind, size_t len);

/* ---- summary --------------------------------------------------------------------------- */
struct load_latency {
    size_t count;
    double p50_us, p90_us, p99_us, max_us, mean_us;
};
/* Percentile by linear interpolation between closest ranks (values sorted in place). */
double load_percentile(double *sorted, size_t n, double p);
void load_latency_of(double *values, size_t n, struct load_latency *out); /* sorts values */

struct load_summary {
    size_t requests, ok, errors;
    double duration_s, achieved_rps;
    struct load_latency all;
    struct load_latency by_start[LOAD_START_KINDS];
    size_t cold, warm;
    struct {
        char kind[48];
        size_t count;
    } error_kinds[16];
    size_t error_kind_count;
};
int load_summarize(const struct load_record *rows, size_t n, double duration_s, struct load_summary *out,
                   struct thaw_error *err);
void load_summary_print(FILE *f, const struct load_summary *s);

/* ---- the runner ------------------------------------------------------------------------ */
struct load_progress; /* see progress.c */

struct load_run_config {
    const char *server;       /* "http://127.0.0.1:8080" */
    const char *token;        /* bearer token or NULL */
    const char *phase;        /* "run" */
    unsigned concurrency;     /* closed loop when > 0: keeps this many in flight */
    double duration_s;        /* closed loop: how long */
    uint64_t max_requests;    /* closed loop: stop after this many (0: no limit) */
    unsigned max_inflight;    /* open loop: at most this many at once (late ones wait) */
    double timeout_s;         /* per request */
    bool progress_tty;        /* progress bar when true, periodic lines otherwise */
    FILE *progress;           /* NULL: no progress output */
};

/* Sends the schedule (open loop), or loops on its first target (closed loop), writing
 * one record per request to csv (if not NULL) and collecting them in *rows.
 * Returns 0 when the run finished (requests may have failed: see the records), -1 on
 * a setup failure. */
int load_run(const struct load_run_config *cfg, const struct load_schedule *s, FILE *csv,
             struct load_record **rows, size_t *count, double *elapsed_s, struct thaw_error *err);

/* ---- progress --------------------------------------------------------------------------- */
/* Draws "[#####.....] 512/1000 sent, 498 done, 3 errors, 102.3 rps" on a terminal (one
 * line, redrawn) or prints a plain line every `every_s` seconds otherwise. */
struct load_progress {
    FILE *out;
    bool tty;
    double every_s;
    double last_s;
};
void load_progress_update(struct load_progress *p, double now_s, uint64_t sent, uint64_t done,
                          uint64_t errors, uint64_t total, double elapsed_s, bool final);

/* ---- keep-alive simulation -------------------------------------------------------------
 * Replays a schedule against a model of per-function instance pools to compare
 * keep-alive policies the way Shahrad et al. evaluated theirs (by simulation over the
 * trace): an arrival finds an idle, loaded instance (warm) or starts one (cold); an
 * instance is busy for the invocation's requested duration, then kept per policy:
 *   fixed   loaded for keepalive_s after each invocation, then torn down;
 *   hybrid  per-function hybrid histogram (host/policy): unloaded for prewarm_s, then
 *           loaded (pre-warmed) for keepalive_s; fixed fallback while not representative;
 *   zero    torn down at once (scale to zero: every start is cold).
 * Memory held = loaded instance-seconds x the function's memory (the trace's
 * application average, or memory_mb when it has none). Start latency = cold_ms or
 * warm_ms per request (measured values are passed in). */
enum load_ka_policy { LOAD_KA_FIXED, LOAD_KA_HYBRID, LOAD_KA_ZERO };

struct load_ka_config {
    enum load_ka_policy policy;
    double keepalive_s;        /* fixed */
    double hybrid_bin_s;       /* hybrid: bin width (60 / compression) */
    double hybrid_fallback_s;  /* hybrid: keep-alive when not representative */
    double cold_ms, warm_ms;   /* start latency of a cold and of a warm start */
    double memory_mb;          /* per instance, for functions without trace memory */
    const double *function_memory_mb; /* per schedule target (may be NULL) */
};

struct load_ka_result {
    uint64_t invocations, cold;
    double cold_share;
    double p50_ms, p99_ms;       /* start latency */
    double memory_mb_s;          /* loaded instance memory over time */
    double idle_memory_mb_s;     /* of which idle (loaded, not running) */
    uint64_t max_instances;
};

/* Fills mb[i] with the trace's application memory (average allocated MB) for each
 * target of a replay schedule made from t (0 where the trace has none). */
void load_trace_target_memory(const struct load_trace *t, const struct load_schedule *s, double *mb);

int load_keepalive_simulate(const struct load_schedule *s, const struct load_ka_config *cfg,
                            struct load_ka_result *out, struct thaw_error *err);

/* ---- plot -------------------------------------------------------------------------------- */
/* Draws figures from one or more CSVs (each a series, labelled by its file name)
 * into dir: latency CDF per start kind (latency-cdf), latency over time
 * (latency-time), cold-start share over time (cold-share), instances in use over
 * time (instances), as format "png" or "svg". Needs gnuplot. Returns 0 or -1. */
int load_plot(const char *const *csvs, size_t n, const char *dir, const char *format, double bucket_s,
              struct thaw_error *err);

#endif
