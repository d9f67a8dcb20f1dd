/* An external page-fault handler for a VM process that handed over its userfaultfd
 * (fc_handshake.h): serves every missing page from <snap_dir>/memory with UFFDIO_COPY,
 * and pages the guest dropped (UFFD_EVENT_REMOVE) as zero pages afterwards.
 *   PAGER_LAZY      serve each fault as it comes;
 *   PAGER_RECORD    the same, recording the served pages in fault order; at the end
 *                   writes ws.trace + ws.pages into snap_dir (reap.h);
 *   PAGER_PREFETCH  first installs every page of snap_dir/ws.pages, then serves lazily.
 *                   If ws.pages cannot be used, serves lazily and says why in the stats. */
#ifndef THAW_HOST_PAGER_H
#define THAW_HOST_PAGER_H

#include <stddef.h>
#include <stdint.h>

#include "host/pager/fc_handshake.h"
#include "host/util/error.h"

enum pager_mode { PAGER_LAZY, PAGER_RECORD, PAGER_PREFETCH };

const char *pager_mode_name(enum pager_mode m);
int pager_mode_parse(const char *s, enum pager_mode *out);

struct pager_stats {
    uint64_t faults;          /* page-fault events read */
    uint64_t pages_served;    /* installed from the memory file */
    uint64_t zero_pages;      /* installed as zero (removed earlier) */
    uint64_t already_present; /* fault on a page already installed (prefetched): woken only */
    uint64_t removes;         /* UFFD_EVENT_REMOVE events */
    uint64_t fault_ns;        /* time spent serving faults */
    uint64_t prefetch_pages, prefetch_regions, prefetch_ns;
    int prefetch_ok;          /* PAGER_PREFETCH: ws.pages installed */
    char prefetch_error[512]; /* why not, if it was not */
    uint64_t recorded;        /* PAGER_RECORD: faults recorded into ws.trace/ws.pages */
    int vm_gone;              /* stopped because the VM's memory went away */
};

/* Serves faults on uffd for the regions r[0..n) until stop_fd becomes readable (or hangs
 * up) or the VM process goes away. Returns 0 on a clean stop, -1 with err otherwise
 * (the stats are filled either way). Does not close uffd or stop_fd. */
int pager_serve(int uffd, const struct fc_region *r, size_t n, const char *snap_dir, enum pager_mode mode,
                int stop_fd, struct pager_stats *st, struct thaw_error *err);

#endif
