/* Hybrid histogram keep-alive policy (hybrid_histogram.h). */
#include "host/policy/hybrid_histogram.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void hybrid_config_default(struct hybrid_config *c)
{
    *c = (struct hybrid_config){
        .bin_s = 60,
        .bins = 240,
        .head_pct = 5,
        .tail_pct = 99,
        .margin = 0.10,
        .cv_threshold = 2,
        .min_samples = 10,
        .oob_max_share = 0.5,
        .fallback_keepalive_s = 240 * 60,
    };
}

int hybrid_init(struct hybrid_histogram *h, const struct hybrid_config *cfg, struct thaw_error *err)
{
    memset(h, 0, sizeof *h);
    if (!(cfg->bin_s > 0) || cfg->bins == 0 || cfg->bins > 1000000)
        return thaw_fail(err, "hybrid policy: bin width must be positive and bins 1..1000000");
    if (!(cfg->head_pct >= 0 && cfg->head_pct <= cfg->tail_pct && cfg->tail_pct <= 100))
        return thaw_fail(err, "hybrid policy: need 0 <= head percentile <= tail percentile <= 100");
    if (!(cfg->margin >= 0 && cfg->margin < 1) || !(cfg->fallback_keepalive_s >= 0))
        return thaw_fail(err, "hybrid policy: margin must be in [0, 1) and the fallback keep-alive >= 0");
    h->counts = calloc(cfg->bins, sizeof *h->counts);
    if (!h->counts)
        return thaw_fail(err, "hybrid policy: out of memory for %u bins", cfg->bins);
    h->cfg = *cfg;
    return 0;
}

void hybrid_free(struct hybrid_histogram *h)
{
    free(h->counts);
    memset(h, 0, sizeof *h);
}

void hybrid_record_idle(struct hybrid_histogram *h, double idle_s)
{
    if (!(idle_s > 0))
        idle_s = 0;
    double bin = floor(idle_s / h->cfg.bin_s);
    if (bin >= (double)h->cfg.bins) {
        h->out_of_bounds++;
        return;
    }
    if (h->counts[(uint32_t)bin] < UINT32_MAX)
        h->counts[(uint32_t)bin]++;
    h->in_bounds++;
}

const char *hybrid_decision_name(enum hybrid_decision d)
{
    switch (d) {
    case HYBRID_HISTOGRAM:
        return "histogram";
    case HYBRID_FEW_SAMPLES:
        return "few-samples";
    case HYBRID_FLAT:
        return "flat";
    case HYBRID_OUT_OF_BOUNDS:
        return "out-of-bounds";
    }
    return "?";
}

/* First bin whose cumulative count reaches pct percent of the in-bounds idle times. */
static uint32_t percentile_bin(const struct hybrid_histogram *h, double pct)
{
    double want = pct / 100.0 * (double)h->in_bounds;
    uint64_t cum = 0;
    for (uint32_t i = 0; i < h->cfg.bins; i++) {
        cum += h->counts[i];
        if ((double)cum >= want && cum > 0)
            return i;
    }
    return h->cfg.bins - 1;
}

void hybrid_windows(const struct hybrid_histogram *h, struct hybrid_windows *out)
{
    const struct hybrid_config *c = &h->cfg;
    memset(out, 0, sizeof *out);
    double mean = (double)h->in_bounds / c->bins, sq = 0;
    for (uint32_t i = 0; i < c->bins; i++)
        sq += ((double)h->counts[i] - mean) * ((double)h->counts[i] - mean);
    out->cv = mean > 0 ? sqrt(sq / c->bins) / mean : 0;
    uint64_t all = h->in_bounds + h->out_of_bounds;
    if (h->in_bounds < c->min_samples || h->in_bounds == 0)
        out->decision = HYBRID_FEW_SAMPLES;
    else if ((double)h->out_of_bounds > c->oob_max_share * (double)all)
        out->decision = HYBRID_OUT_OF_BOUNDS;
    else if (out->cv < c->cv_threshold)
        out->decision = HYBRID_FLAT;
    else
        out->decision = HYBRID_HISTOGRAM;
    if (out->decision != HYBRID_HISTOGRAM) {
        out->prewarm_s = 0;
        out->keepalive_s = c->fallback_keepalive_s;
        return;
    }
    /* The head bin's lower edge (the next invocation may come at its start) and the
     * tail bin's upper edge, each widened by the margin. */
    double head = (double)percentile_bin(h, c->head_pct) * c->bin_s;
    double tail = (double)(percentile_bin(h, c->tail_pct) + 1) * c->bin_s;
    out->prewarm_s = head * (1.0 - c->margin);
    out->keepalive_s = tail * (1.0 + c->margin) - out->prewarm_s;
}

double hybrid_idle_ttl_s(const struct hybrid_windows *w) { return w->prewarm_s > 0 ? 0 : w->keepalive_s; }

bool hybrid_want_warm(const struct hybrid_windows *w, double since_last_s)
{
    return since_last_s >= w->prewarm_s && since_last_s < w->prewarm_s + w->keepalive_s;
}
