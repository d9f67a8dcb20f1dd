/* A synthetic trace in the Azure Functions 2019 format, drawn from the fits that
 * Shahrad et al. (ATC'20, "Serverless in the Wild") published:
 *  - invocations per function per day: log-normal, placed so that 45% of functions
 *    are invoked at most once an hour and 81% at most once a minute on average (the
 *    paper states these shares for applications; we use them per function);
 *  - triggers: HTTP 55%, timer 16%, queue 15%, orchestration 7%, storage 3%, event 2%,
 *    others 2%; timers fire periodically, the rest arrive as a Poisson process;
 *  - average execution time per function: log-normal, mu = -0.38, sigma = 2.36 (s);
 *  - average allocated memory per application: Burr XII, c = 11.652, k = 0.221,
 *    lambda = 107.083 (MB);
 *  - functions per application: 54% of applications have one (geometric).
 * Percentiles within a function or application assume a log-normal spread around
 * its average (sigma 0.5 for durations, 0.1 for memory): the dataset's percentile
 * columns then have the right shape, though the spreads are our assumption. */
#include "host/load/load.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host/util/atomic_file.h"

#define RATE_MU 3.691    /* ln(invocations per day) */
#define RATE_SIGMA 4.079
#define DUR_MU -0.38     /* ln(seconds) */
#define DUR_SIGMA 2.36
#define DUR_SPREAD 0.5
#define MEM_C 11.652
#define MEM_K 0.221
#define MEM_LAMBDA 107.083
#define MEM_SPREAD 0.1
#define APP_SINGLE 0.54

static const struct {
    const char *name;
    double share;
} triggers[] = {{"http", 0.55}, {"timer", 0.16}, {"queue", 0.15}, {"orchestration", 0.07},
                {"storage", 0.03}, {"event", 0.02}, {"others", 0.02}};

/* Standard normal quantiles for the dataset's percentile columns. */
static const double dur_z[LOAD_TRACE_DURATION_PCTS] = {-3.0, -2.326, -0.674, 0.0, 0.674, 2.326, 3.0};
static const double mem_z[LOAD_TRACE_MEMORY_PCTS] = {-2.326, -1.645, -0.674, 0.0, 0.674, 1.645, 2.326, 3.0};

static void hex_name(struct load_rng *r, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 4; i++) {
        uint64_t v = load_rng_next(r);
        for (int j = 0; j < 16; j++)
            out[i * 16 + j] = hex[(v >> (4 * j)) & 15];
    }
    out[64] = 0;
}

/* Poisson-distributed count with mean lambda. */
static uint32_t poisson(struct load_rng *r, double lambda)
{
    if (lambda <= 0)
        return 0;
    if (lambda > 30) { /* normal approximation, rounded, never negative */
        double v = lambda + sqrt(lambda) * load_rng_normal(r) + 0.5;
        return v < 0 ? 0 : v > 4e9 ? 4000000000u : (uint32_t)v;
    }
    double l = exp(-lambda), p = 1.0;
    uint32_t k = 0;
    do {
        k++;
        p *= load_rng_uniform(r);
    } while (p > l);
    return k - 1;
}

struct app {
    char owner[65], name[65];
    double mem_avg;
};

int load_trace_generate(const char *dir, const struct load_tracegen_config *cfg, struct thaw_error *err)
{
    if (cfg->functions == 0 || cfg->functions > 1000000)
        return thaw_fail(err, "functions must be 1..1000000");
    if (cfg->minutes == 0 || cfg->minutes > LOAD_TRACE_MINUTES_MAX)
        return thaw_fail(err, "minutes must be 1..%u", LOAD_TRACE_MINUTES_MAX);
    double scale = cfg->rate_scale > 0 ? cfg->rate_scale : 1.0;
    struct load_rng r;
    load_rng_seed(&r, cfg->seed);

    char *inv = NULL, *dur = NULL, *mem = NULL;
    size_t inv_len = 0, dur_len = 0, mem_len = 0;
    FILE *fi = open_memstream(&inv, &inv_len), *fd = open_memstream(&dur, &dur_len),
         *fm = open_memstream(&mem, &mem_len);
    struct app *apps = calloc(cfg->functions, sizeof *apps);
    int rc = -1;
    if (!fi || !fd || !fm || !apps) {
        thaw_fail(err, "out of memory for the trace");
        goto out;
    }
    fputs("HashOwner,HashApp,HashFunction,Trigger", fi);
    for (uint32_t m = 1; m <= cfg->minutes; m++)
        fprintf(fi, ",%u", m);
    fputc('\n', fi);
    fputs("HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum,percentile_Average_0,"
          "percentile_Average_1,percentile_Average_25,percentile_Average_50,percentile_Average_75,"
          "percentile_Average_99,percentile_Average_100\n",
          fd);
    fputs("HashOwner,HashApp,SampleCount,AverageAllocatedMb,AverageAllocatedMb_pct1,AverageAllocatedMb_pct5,"
          "AverageAllocatedMb_pct25,AverageAllocatedMb_pct50,AverageAllocatedMb_pct75,AverageAllocatedMb_pct95,"
          "AverageAllocatedMb_pct99,AverageAllocatedMb_pct100\n",
          fm);

    size_t napps = 0;
    uint32_t left_in_app = 0;
    uint32_t *counts = calloc(cfg->minutes, sizeof *counts);
    if (!counts) {
        thaw_fail(err, "out of memory for the trace");
        goto out;
    }
    for (uint32_t i = 0; i < cfg->functions; i++) {
        if (left_in_app == 0) {
            struct app *a = &apps[napps++];
            hex_name(&r, a->owner);
            hex_name(&r, a->name);
            double u = load_rng_uniform(&r);
            a->mem_avg = MEM_LAMBDA * pow(pow(1.0 - u, -1.0 / MEM_K) - 1.0, 1.0 / MEM_C);
            /* Functions in this application: 1 with APP_SINGLE, else geometric. */
            left_in_app = 1;
            while (load_rng_uniform(&r) >= APP_SINGLE && left_in_app < 50)
                left_in_app++;
        }
        left_in_app--;
        const struct app *a = &apps[napps - 1];
        char fname[65];
        hex_name(&r, fname);
        double u = load_rng_uniform(&r), acc = 0;
        const char *trigger = triggers[0].name;
        for (size_t k = 0; k < sizeof triggers / sizeof triggers[0]; k++) {
            acc += triggers[k].share;
            if (u < acc) {
                trigger = triggers[k].name;
                break;
            }
        }
        double per_day = exp(RATE_MU + RATE_SIGMA * load_rng_normal(&r)) * scale;
        double per_minute = per_day / 1440.0;
        uint64_t total = 0;
        if (!strcmp(trigger, "timer")) {
            /* Periodic: every `period` minutes, `burst` invocations, from a random phase. */
            double period = per_minute >= 1 ? 1 : round(1.0 / per_minute);
            if (period > 1440)
                period = 1440;
            uint32_t burst = per_minute >= 1 ? (uint32_t)round(per_minute) : 1;
            uint32_t phase = (uint32_t)(load_rng_uniform(&r) * period);
            for (uint32_t m = 0; m < cfg->minutes; m++)
                counts[m] = (m % (uint32_t)period) == phase ? burst : 0;
        } else {
            for (uint32_t m = 0; m < cfg->minutes; m++)
                counts[m] = poisson(&r, per_minute);
        }
        fprintf(fi, "%s,%s,%s,%s", a->owner, a->name, fname, trigger);
        for (uint32_t m = 0; m < cfg->minutes; m++) {
            fprintf(fi, ",%u", counts[m]);
            total += counts[m];
        }
        fputc('\n', fi);
        /* Durations in ms, from the function's average. */
        double avg_ms = exp(DUR_MU + DUR_SIGMA * load_rng_normal(&r)) * 1000.0;
        double med = avg_ms * exp(-DUR_SPREAD * DUR_SPREAD / 2);
        double pct[LOAD_TRACE_DURATION_PCTS];
        for (unsigned k = 0; k < LOAD_TRACE_DURATION_PCTS; k++)
            pct[k] = med * exp(DUR_SPREAD * dur_z[k]);
        fprintf(fd, "%s,%s,%s,%.0f,%llu,%.0f,%.0f", a->owner, a->name, fname, avg_ms,
                (unsigned long long)(total ? total : 1), pct[0], pct[LOAD_TRACE_DURATION_PCTS - 1]);
        for (unsigned k = 0; k < LOAD_TRACE_DURATION_PCTS; k++)
            fprintf(fd, ",%.0f", pct[k]);
        fputc('\n', fd);
    }
    free(counts);
    for (size_t i = 0; i < napps; i++) {
        const struct app *a = &apps[i];
        fprintf(fm, "%s,%s,%u,%.0f", a->owner, a->name, cfg->minutes, a->mem_avg);
        for (unsigned k = 0; k < LOAD_TRACE_MEMORY_PCTS; k++)
            fprintf(fm, ",%.0f", a->mem_avg * exp(MEM_SPREAD * mem_z[k]));
        fputc('\n', fm);
    }
    fclose(fi);
    fclose(fd);
    fclose(fm);
    fi = fd = fm = NULL;
    if (write_file_atomic(dir, "invocations_per_function_md.anon.d01.csv", inv, inv_len, err) < 0 ||
        write_file_atomic(dir, "function_durations_percentiles.anon.d01.csv", dur, dur_len, err) < 0 ||
        write_file_atomic(dir, "app_memory_percentiles.anon.d01.csv", mem, mem_len, err) < 0)
        goto out;
    rc = 0;
out:
    if (fi)
        fclose(fi);
    if (fd)
        fclose(fd);
    if (fm)
        fclose(fm);
    free(inv);
    free(dur);
    free(mem);
    free(apps);
    return rc;
}
