/* Every analysis of one recording, in one call. */
#include <string.h>

#include "host/analysis/analysis.h"

int analysis_recording_compute(struct analysis_recording *r, const struct guest_layout *layout,
                               struct thaw_error *err)
{
    if (layout && layout->mem_size != r->trace.mem_size)
        return thaw_fail(err, "the trace's guest memory (%llu MiB) is not the snapshot's (%llu MiB)",
                         (unsigned long long)(r->trace.mem_size >> 20), (unsigned long long)(layout->mem_size >> 20));
    if (page_set_from_trace(&r->trace, &r->ws, err) < 0 || runs_guest_order(&r->ws, &r->guest_runs, err) < 0 ||
        runs_fault_order(&r->trace, &r->fault_runs, err) < 0 ||
        readahead_simulate(&r->trace, ANALYSIS_RA_SMALL, &r->ra_small, err) < 0 ||
        readahead_simulate(&r->trace, ANALYSIS_RA_LARGE, &r->ra_large, err) < 0)
        return -1;
    timeline_summarise(&r->trace, &r->timeline);
    if (layout) {
        guest_layout_count(layout, &r->ws, r->by_region);
    } else {
        memset(r->by_region, 0, sizeof r->by_region);
        r->by_region[REGION_HEAP] = r->ws.n;
    }
    return 0;
}

void analysis_recording_free(struct analysis_recording *r)
{
    analysis_trace_free(&r->trace);
    page_set_free(&r->ws);
    run_stats_free(&r->guest_runs);
    run_stats_free(&r->fault_runs);
}
