/* An external page-fault handler for a VM process that handed over its userfaultfd
 * (fc_handshake.h): serves every missing page from <snap_dir>/memory with UFFDIO_COPY,
 * and pages the guest dropped (UFFD_EVENT_REMOVE) as zero pages afterwards.
 *   PAGER_LAZY      serve each fault as it comes;
 *   PAGER_RECORD    the same, recording the served pages in fault order; at the end
 *                   writes ws.trace + ws.pages into snap_dir (reap.h);
 *   PAGER_PREFETCH  first installs every page of snap_dir/ws.pages, then serves lazily.
 *                   If ws.pages cannot be used, says why in the stats, serves lazily
 *                   and records a new working set instead (as PAGER_RECORD).
 *   PAGER_MERGE     as PAGER_PREFETCH, but withholds the pages this generation probes
 *                   (reap.h), and finish-record merges the pages its misses installed
 *                   into ws.pages (only for the one restore holding ws.lock).
 *
 * Control protocol on stop_fd (a stream socket: the handshake connection), beyond
 * Firecracker's handshake, which a Firecracker VM simply never uses:
 *   pager -> VMM  once set up (after any prefetch): {"event":"ready", <stats>}\n
 *                 with "installed_runs": N, N pairs of u64 (gpa, pages) follow the
 *                 newline: the pages installed, for the VMM's pre-fault vCPU. Sent
 *                 only to a VMM that asked (pager_serve's send_installed: the manager's
 *                 hello), and by a worker's caller relaying its own pager's list.
 *   VMM -> pager  "stats\n"          -> {"event":"stats", <stats>}\n
 *   VMM -> pager  "finish-record\n"  -> writes ws.trace/ws.pages now if recording (merges
 *                                      into ws.pages if merging), stops recording, then
 *                                      {"event":"recorded", <stats>}\n
 *   end of file on stop_fd: stop (writing the working set first if still recording).
 * The VMM waits for "ready" before it lets the vCPU run: REAP installs everything first. */
#ifndef THAW_HOST_PAGER_H
#define THAW_HOST_PAGER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host/pager/fc_handshake.h"
#include "host/pager/reap_costs.h"
#include "host/util/error.h"
#include "host/util/gpa_run.h"

enum pager_mode { PAGER_LAZY, PAGER_RECORD, PAGER_PREFETCH, PAGER_MERGE };

const char *pager_mode_name(enum pager_mode m);
int pager_mode_parse(const char *s, enum pager_mode *out);

struct pager_stats {
    uint64_t faults;          /* page-fault events read */
    uint64_t served_faults;   /* faults served from the memory file (misses) */
    uint64_t pages_served;    /* installed from the memory file: a miss installs a batch */
    uint64_t zero_pages;      /* installed as zero (removed earlier) */
    uint64_t already_present; /* fault on a page already installed (prefetched): woken only */
    uint64_t removes;         /* UFFD_EVENT_REMOVE events */
    uint64_t fault_ns;        /* time spent serving faults */
    uint64_t prefetch_pages, prefetch_regions, prefetch_ns;
    uint64_t prefetch_bytes, prefetch_read_ns, prefetch_install_ns;
    uint64_t prefetch_moved;  /* of prefetch_pages, moved in (UFFDIO_MOVE) rather than copied */
    int recording;            /* still recording (PAGER_RECORD, or a failed prefetch) */
    int prefetch_ok;          /* PAGER_PREFETCH: ws.pages installed */
    char prefetch_error[512]; /* why not, if it was not */
    uint64_t recorded;        /* faults recorded into ws.trace/ws.pages */
    char record_error[512];   /* why writing the working set failed, if it did */
    int vm_gone;              /* stopped because the VM's memory went away */
    uint64_t huge_chunks;     /* 2 MiB chunks the prefetch filled as huge pages (huge_chunks.h) */
    uint64_t huge_ws_pages;   /* working-set pages inside them */
    uint64_t huge_data_pages; /* memory-file data pages read for them */
    uint64_t huge_ns;         /* time that took */
    int huge_policy;          /* how they were chosen (enum huge_choice: 0 off, 1 share, 2 auto) */
    struct reap_costs huge_costs; /* auto: the host's costs weighed (reap_costs.h) */
    uint64_t guest_pages;     /* guest memory served, in pages (not sent) */
    uint64_t probe_pages;     /* PAGER_MERGE: working-set pages withheld to probe them */
    int merged;               /* finish-record merged and wrote a new ws.pages */
    uint64_t merge_added, merge_dropped, ws_generation;
    uint64_t installed_runs;  /* as parsed from a "ready": this many (gpa, pages) pairs of u64
                                 follow the line, the pages the prefetch installed */
};

/* Serves faults on uffd for the regions r[0..n) until stop_fd becomes readable (or hangs
 * up) or the VM process goes away. Returns 0 on a clean stop, -1 with err otherwise
 * (the stats are filled either way). Does not close uffd or stop_fd. */
int pager_serve(int uffd, const struct fc_region *r, size_t n, const char *snap_dir, enum pager_mode mode,
                int stop_fd, bool send_installed, struct pager_stats *st, struct thaw_error *err);

/* The same with the working-set read issued already (early, or NULL; taken over and
 * freed either way): a pager that knows its snapshot before the VM's handshake arrives
 * issues the read first, so that it overlaps the handshake and the VM's set-up. If
 * installed is not NULL, it gets the pages a prefetch installed, before "ready" (as
 * pager_serve_in_process). */
struct reap_ws_read;
int pager_serve_early(int uffd, const struct fc_region *r, size_t n, const char *snap_dir, enum pager_mode mode,
                      int stop_fd, struct reap_ws_read *early, struct gpa_runs *installed, struct pager_stats *st,
                      struct thaw_error *err);

/* The same for a pager that runs in the VM's own process: it may also write guest
 * memory directly (huge_chunks.h, THAW_REAP_HUGE), and its caller may have issued the
 * working-set read already (early, or NULL; taken over and freed either way). If
 * installed is not NULL, a prefetch appends the guest addresses it installed to it
 * before it replies "ready" (so the caller may read it once it has the reply). */
int pager_serve_in_process(int uffd, const struct fc_region *r, size_t n, const char *snap_dir,
                           enum pager_mode mode, int stop_fd, struct reap_ws_read *early, struct gpa_runs *installed,
                           struct pager_stats *st, struct thaw_error *err);

/* Sends the (gpa, pages) pairs that follow a "ready" line announcing installed_runs
 * (the pager's own, or a worker's caller relaying its pager's): 0, or -1 if the VMM
 * did not take them within 10 s or went away. */
int pager_send_installed(int fd, const struct gpa_runs *runs);

/* One control-protocol line, {"event": ev, <stats>}\n, into buf: its length, or -1 if it
 * does not fit. installed_runs: on a "ready", how many (gpa, pages) pairs follow it (0:
 * none), whatever st says. For the pager, and a worker's caller relaying its "ready". */
int pager_event_line(const char *ev, const struct pager_stats *st, uint64_t installed_runs, char *buf, size_t cap);
/* The stats as the JSON object members the control protocol sends (no braces). */
void pager_stats_json(const struct pager_stats *st, char *buf, size_t len);
/* Parses one control-protocol line back into stats; returns its "event" or NULL. */
const char *pager_stats_parse(const char *line, struct pager_stats *st, struct thaw_error *err);

#endif
