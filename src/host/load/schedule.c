/* Open-loop schedules and the seeded generator behind every random choice in thaw
 * load (xoshiro256** seeded through splitmix64: fast, and the same seed gives the
 * same schedule on every machine). */
#include "host/load/load.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void load_rng_seed(struct load_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t load_rng_next(struct load_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double load_rng_uniform(struct load_rng *r) { return (double)(load_rng_next(r) >> 11) * 0x1.0p-53; }

double load_rng_normal(struct load_rng *r)
{
    /* Box-Muller; 1 - u keeps the logarithm's argument in (0, 1]. */
    double u = 1.0 - load_rng_uniform(r), v = load_rng_uniform(r);
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

int load_arrival_parse(const char *s, enum load_arrival *out, struct thaw_error *err)
{
    if (!strcmp(s, "exponential") || !strcmp(s, "poisson"))
        *out = LOAD_ARRIVAL_EXPONENTIAL;
    else if (!strcmp(s, "uniform"))
        *out = LOAD_ARRIVAL_UNIFORM;
    else if (!strcmp(s, "equidistant"))
        *out = LOAD_ARRIVAL_EQUIDISTANT;
    else
        return thaw_fail(err, "unknown arrival distribution '%s' (exponential, uniform, equidistant)", s);
    return 0;
}

const char *load_arrival_name(enum load_arrival a)
{
    switch (a) {
    case LOAD_ARRIVAL_EXPONENTIAL:
        return "exponential";
    case LOAD_ARRIVAL_UNIFORM:
        return "uniform";
    case LOAD_ARRIVAL_EQUIDISTANT:
        return "equidistant";
    }
    return "?";
}

/* One gap with mean 1/rate seconds, in seconds. */
double load_gap_s(struct load_rng *r, enum load_arrival kind, double rate)
{
    switch (kind) {
    case LOAD_ARRIVAL_EXPONENTIAL:
        return -log(1.0 - load_rng_uniform(r)) / rate;
    case LOAD_ARRIVAL_UNIFORM:
        return 2.0 * load_rng_uniform(r) / rate;
    case LOAD_ARRIVAL_EQUIDISTANT:
        break;
    }
    return 1.0 / rate;
}

void load_schedule_free(struct load_schedule *s)
{
    for (size_t i = 0; i < s->target_count; i++)
        free(s->targets[i].payload);
    free(s->targets);
    free(s->events);
    memset(s, 0, sizeof *s);
}

int load_schedule_open(struct load_schedule *s, enum load_arrival kind, double rate, double duration_s,
                       uint64_t seed, const struct load_target *target, struct thaw_error *err)
{
    memset(s, 0, sizeof *s);
    if (!(rate > 0) || rate > 1e6)
        return thaw_fail(err, "rate must be above 0 and at most 1000000 requests per second");
    if (!(duration_s > 0) || duration_s > 7 * 86400.0)
        return thaw_fail(err, "duration must be above 0 and at most a week");
    double expect = rate * duration_s;
    if (expect > 50e6)
        return thaw_fail(err, "%.0f requests is over the 50 million this schedule holds", expect);
    size_t cap = (size_t)(expect * 1.2) + 64;
    s->events = malloc(cap * sizeof *s->events);
    s->targets = calloc(1, sizeof *s->targets);
    if (!s->events || !s->targets) {
        load_schedule_free(s);
        return thaw_fail(err, "out of memory for a schedule of %zu requests", cap);
    }
    s->targets[0] = *target;
    s->targets[0].payload = NULL;
    s->target_count = 1;
    if (target->payload_len) {
        s->targets[0].payload = malloc(target->payload_len);
        if (!s->targets[0].payload) {
            load_schedule_free(s);
            return thaw_fail(err, "out of memory for the payload");
        }
        memcpy(s->targets[0].payload, target->payload, target->payload_len);
    }
    struct load_rng r;
    load_rng_seed(&r, seed);
    /* The first request goes at a gap from 0 too, so that every gap in the schedule
     * (including the first) follows the distribution. */
    double t = load_gap_s(&r, kind, rate);
    size_t k = 1;
    while (t < duration_s * (1 - 1e-12)) {
        if (s->count == cap) {
            size_t ncap = cap * 2;
            struct load_event *ne = realloc(s->events, ncap * sizeof *ne);
            if (!ne) {
                load_schedule_free(s);
                return thaw_fail(err, "out of memory for a schedule of %zu requests", ncap);
            }
            s->events = ne;
            cap = ncap;
        }
        s->events[s->count++] = (struct load_event){.at_us = (uint64_t)(t * 1e6 + 0.5)};
        /* Equidistant times are computed, not summed, so no rounding error builds up. */
        t = kind == LOAD_ARRIVAL_EQUIDISTANT ? (double)++k / rate : t + load_gap_s(&r, kind, rate);
    }
    s->span_us = (uint64_t)(duration_s * 1e6);
    return 0;
}

void load_schedule_stats(const struct load_schedule *s, double *rate, double *cv)
{
    *rate = 0;
    *cv = 0;
    if (s->count < 2)
        return;
    double n = (double)(s->count - 1), sum = 0, sq = 0;
    for (size_t i = 1; i < s->count; i++) {
        double g = (double)(s->events[i].at_us - s->events[i - 1].at_us) / 1e6;
        sum += g;
        sq += g * g;
    }
    double mean = sum / n;
    double var = sq / n - mean * mean;
    *rate = mean > 0 ? 1.0 / mean : 0;
    *cv = mean > 0 && var > 0 ? sqrt(var) / mean : 0;
}
