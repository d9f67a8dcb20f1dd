/* `thaw analyze`'s results and how they are shown: a table on the terminal, or JSON
 * (the input of tools/analysis/plot_analysis.py and of the suite report). */
#ifndef THAW_CLI_ANALYZE_OUTPUT_H
#define THAW_CLI_ANALYZE_OUTPUT_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "host/analysis/analysis.h"

/* One payload's recording, and what its restore measured (live runs only). */
struct analyze_payload {
    char name[64];
    struct analysis_recording rec;
    bool measured;
    uint64_t restored_rss_kb;  /* resident guest memory after the invocation */
    uint64_t restore_ns, first_invoke_ns;
    uint64_t pages_served, zero_pages; /* the pager's count while recording */
};

struct analyze_report {
    char function[64];
    char source[512];              /* the function directory or snapshot analysed */
    uint64_t mem_size;
    int64_t memory_allocated;      /* the snapshot memory file's allocated bytes; -1 unknown */
    bool have_layout;
    struct guest_layout layout;
    bool booted;                   /* a booted instance was measured too */
    uint64_t booted_rss_kb;        /* after its first invocation */
    uint64_t boot_ns;
    size_t n;
    struct analyze_payload *p;
    struct reuse_stats reuse;      /* computed when n >= 1 */
};

void analyze_print_table(FILE *out, const struct analyze_report *r);
json_t *analyze_to_json(const struct analyze_report *r);

#endif
