/* The hybrid histogram keep-alive policy of Shahrad et al., "Serverless in the Wild"
 * (ATC'20), as a pure module: no clocks, no I/O, so it is unit-tested with known
 * answers and driven by whoever owns time (thaw serve's keep-alive hook, or a
 * simulation).
 *
 * Per function, the idle times between the end of one invocation and the start of
 * the next go into a histogram of `bins` bins of `bin_s` seconds (the paper: 1-minute
 * bins over 4 hours); longer ones are counted as out of bounds. When the histogram is
 * representative, the policy gives two windows, measured from the end of an
 * invocation:
 *   prewarm_s    how long to keep no instance (the head percentile, less a margin);
 *   keepalive_s  how long to keep one after that (to the tail percentile plus a margin).
 * prewarm_s 0 means "keep the instance from the end of the invocation". When the
 * histogram is not representative (too few idle times, too flat a histogram: a
 * coefficient of variation of the bin counts under cv_threshold, or mostly
 * out-of-bounds idle times), it falls back to a fixed keep-alive (prewarm 0,
 * keepalive fallback_keepalive_s). The paper forecasts out-of-bounds-heavy functions
 * with ARIMA; this module falls back instead (documented limitation). */
#ifndef THAW_HOST_POLICY_HYBRID_HISTOGRAM_H
#define THAW_HOST_POLICY_HYBRID_HISTOGRAM_H

#include <stdbool.h>
#include <stdint.h>

#include "host/util/error.h"

struct hybrid_config {
    double bin_s;               /* width of a bin (60: the paper's minute) */
    uint32_t bins;              /* number of bins (240: four hours) */
    double head_pct;            /* pre-warm percentile (5) */
    double tail_pct;            /* keep-alive percentile (99) */
    double margin;              /* widen both windows by this fraction (0.10) */
    double cv_threshold;        /* representative when the bin counts' CV is at least this (2) */
    uint32_t min_samples;       /* and at least this many in-bounds idle times (10) */
    double oob_max_share;       /* and at most this share out of bounds (0.5) */
    double fallback_keepalive_s; /* fixed keep-alive otherwise (the histogram's range) */
};

/* The paper's parameters for idle times in seconds of real time. For a time-compressed
 * experiment, scale bin_s and fallback_keepalive_s by the compression. */
void hybrid_config_default(struct hybrid_config *c);

struct hybrid_histogram {
    struct hybrid_config cfg;
    uint32_t *counts; /* cfg.bins */
    uint64_t in_bounds, out_of_bounds;
};

int hybrid_init(struct hybrid_histogram *h, const struct hybrid_config *cfg, struct thaw_error *err);
void hybrid_free(struct hybrid_histogram *h);

/* One idle time, in seconds (negative ones, from clocks that stepped, count as 0). */
void hybrid_record_idle(struct hybrid_histogram *h, double idle_s);

enum hybrid_decision {
    HYBRID_HISTOGRAM,      /* windows from the histogram */
    HYBRID_FEW_SAMPLES,    /* fallback: fewer than min_samples idle times */
    HYBRID_FLAT,           /* fallback: CV of the bin counts under cv_threshold */
    HYBRID_OUT_OF_BOUNDS,  /* fallback: too many idle times beyond the range */
};
const char *hybrid_decision_name(enum hybrid_decision d);

struct hybrid_windows {
    double prewarm_s;
    double keepalive_s;
    enum hybrid_decision decision;
    double cv; /* of the bin counts */
};
void hybrid_windows(const struct hybrid_histogram *h, struct hybrid_windows *out);

/* For a pool driven by the windows: how long an instance that just became idle may
 * stay (keepalive_s when there is no pre-warm gap, else 0: tear it down now and
 * pre-warm later), and whether an instance should be warm `since_last_s` seconds
 * after the last invocation ended (inside [prewarm_s, prewarm_s + keepalive_s)). */
double hybrid_idle_ttl_s(const struct hybrid_windows *w);
bool hybrid_want_warm(const struct hybrid_windows *w, double since_last_s);

#endif
