/* The characterisation of recorded working sets (`thaw analyze`, docs/characterisation.md):
 * the analyses of vHive/REAP's paper, computed from REAP's ws.trace files. Pure code: it
 * reads recorded traces and a snapshot's memory image, never runs a guest.
 *
 *   trace       a ws.trace, checked page by page, read through reap.h's reader;
 *   page set    the working set: the distinct guest pages of a trace, ascending;
 *   runs        contiguous runs of touched pages, in guest-physical and in fault order;
 *   read-ahead  what a host read-around of W bytes on each major fault would have
 *               fetched, and how much of it the function used;
 *   reuse       pages common to all inputs, unique to one, and the share of one
 *               input's working set that another touches too (a matrix);
 *   layout      the guest's memory regions (kernel, program text and data, file
 *               archive, heap, stack) read back from a snapshot, to split a working set.
 * Every function returns 0, or -1 with one line in err. */
#ifndef THAW_HOST_ANALYSIS_H
#define THAW_HOST_ANALYSIS_H

#include <stddef.h>
#include <stdint.h>

#include "host/pager/reap.h"
#include "host/util/error.h"

#define ANALYSIS_PAGE 4096ull

/* ---- traces ------------------------------------------------------------------------- */

/* One recording: pages in first-touch order, times since the restore started. */
struct analysis_trace {
    struct page_record *pages;
    size_t n;
    uint64_t mem_size;
};

/* Checks what the file format's checksum cannot: every page aligned and inside guest
 * memory, times that never go backwards. A page may appear twice (touched, freed back
 * to the host, touched again as a zero page); the analyses count its first touch. */
int analysis_trace_check(const struct page_record *pages, size_t n, uint64_t mem_size,
                         struct thaw_error *err);

/* Reads <snap_dir>/ws.trace (reap_read_trace) and checks it. */
int analysis_trace_load(const char *snap_dir, struct analysis_trace *t, struct thaw_error *err);
void analysis_trace_free(struct analysis_trace *t);

/* ---- working sets ------------------------------------------------------------------- */

struct page_set {
    uint64_t *pages; /* guest-physical page addresses, strictly ascending */
    size_t n;
};

int page_set_from_trace(const struct analysis_trace *t, struct page_set *out, struct thaw_error *err);
size_t page_set_common(const struct page_set *a, const struct page_set *b); /* |a ∩ b| */
int page_set_contains(const struct page_set *s, uint64_t page);
void page_set_free(struct page_set *s);

/* ---- spatial locality ----------------------------------------------------------------- */

/* Distribution of run lengths: hist[L] runs of exactly L pages, for 1 <= L <= max_len. */
struct run_stats {
    size_t runs;
    size_t pages;
    size_t max_len;
    size_t median_len;  /* the run length of the median page (page-weighted) */
    double mean_len;    /* pages / runs */
    uint64_t *hist;     /* max_len + 1 entries, hist[0] = 0 */
};

/* Runs of pages adjacent in guest-physical memory (the working set's sorted order). */
int runs_guest_order(const struct page_set *ws, struct run_stats *out, struct thaw_error *err);
/* Runs of faults in which each page is the one right after the previous fault's page:
 * what a sequential read-ahead sees. */
int runs_fault_order(const struct analysis_trace *t, struct run_stats *out, struct thaw_error *err);
void run_stats_free(struct run_stats *r);

/* Linux's read-around on a fault in a file mapping, modelled: a fault on a page not yet
 * fetched reads the window of window_bytes centred on it (clamped to guest memory), in
 * one disk read; faults on fetched pages cost no read. */
struct readahead_stats {
    uint64_t window_bytes;
    uint64_t faults;        /* first touches in the trace */
    uint64_t reads;         /* faults that needed a disk read */
    uint64_t pages_fetched; /* distinct pages brought in by those reads */
    uint64_t pages_useful;  /* of those, pages the function touched */
    double useful_share;    /* pages_useful / pages_fetched */
    double faults_saved;    /* share of faults served by an earlier read: 1 - reads/faults */
};
int readahead_simulate(const struct analysis_trace *t, uint64_t window_bytes, struct readahead_stats *out,
                       struct thaw_error *err);

/* ---- the fault timeline -------------------------------------------------------------- */

struct timeline_stats {
    uint64_t first_ns, last_ns;
    uint64_t t50_ns, t90_ns; /* when half / 90% of the working set had been touched */
};
void timeline_summarise(const struct analysis_trace *t, struct timeline_stats *out);

/* ---- reuse across inputs -------------------------------------------------------------- */

struct reuse_stats {
    size_t k;             /* number of working sets */
    uint64_t union_pages; /* pages touched by at least one */
    uint64_t common;      /* pages touched by all k */
    uint64_t *unique;     /* unique[i]: pages only working set i touched */
    double *share;        /* share[i * k + j] = |W_i ∩ W_j| / |W_i| */
};
int reuse_compute(const struct page_set *sets, size_t k, struct reuse_stats *out, struct thaw_error *err);
void reuse_stats_free(struct reuse_stats *r);

/* ---- the guest's memory layout ---------------------------------------------------------- */

enum region_kind {
    REGION_KERNEL,       /* boot tables, boot info, the guest kernel, its allocator maps */
    REGION_PROGRAM_TEXT, /* the program's executable segments */
    REGION_PROGRAM_DATA, /* its other segments: rodata, data, bss */
    REGION_FILES,        /* the read-only file archive (the library OS's file pages) */
    REGION_HEAP,         /* brk and mmap memory: everything not named otherwise */
    REGION_STACK,        /* the program's stack at the top of guest memory */
    REGION_COUNT
};
const char *region_kind_name(enum region_kind k);

#define LAYOUT_MAX_REGIONS 32

struct guest_layout {
    uint64_t mem_size;
    size_t n;
    struct layout_region {
        uint64_t start, end; /* [start, end), page-aligned */
        enum region_kind kind;
    } r[LAYOUT_MAX_REGIONS]; /* ascending, disjoint; gaps are heap */
};

/* Reads the layout back from a snapshot's guest memory (boot info, kernel header and the
 * program headers, at the places include/thaw/abi.h fixes), checking every value. */
int guest_layout_from_memory(int memory_fd, uint64_t mem_size, struct guest_layout *out, struct thaw_error *err);
int guest_layout_from_snapshot(const char *snap_dir, uint64_t mem_size, struct guest_layout *out,
                               struct thaw_error *err);
/* Adds a region (the builders use it; tests build layouts by hand). Regions must come in
 * ascending order and not overlap. */
int guest_layout_add(struct guest_layout *l, uint64_t start, uint64_t end, enum region_kind kind,
                     struct thaw_error *err);
enum region_kind guest_layout_classify(const struct guest_layout *l, uint64_t page);
void guest_layout_count(const struct guest_layout *l, const struct page_set *ws, uint64_t counts[REGION_COUNT]);

/* ---- one recording, every analysis ------------------------------------------------------- */

#define ANALYSIS_RA_SMALL (128ull << 10) /* Linux's default read_ahead_kb */
#define ANALYSIS_RA_LARGE (8ull << 20)   /* a disk tuned for streaming */

struct analysis_recording {
    struct analysis_trace trace; /* filled by the caller; freed with the rest */
    struct page_set ws;
    struct run_stats guest_runs, fault_runs;
    struct readahead_stats ra_small, ra_large;
    struct timeline_stats timeline;
    uint64_t by_region[REGION_COUNT]; /* all heap when no layout is known */
};
/* Computes everything from r->trace; layout may be NULL. */
int analysis_recording_compute(struct analysis_recording *r, const struct guest_layout *layout,
                               struct thaw_error *err);
void analysis_recording_free(struct analysis_recording *r);

#endif
