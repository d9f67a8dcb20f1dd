#include "host/pager/pager.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <jansson.h>
#include <unistd.h>

#include "host/pager/huge_chunks.h"
#include "host/pager/reap.h"
#include "host/util/clock.h"
#include "host/util/file.h"
#include "host/util/snap_identity.h"
#include "host/util/snapdir.h"

#define PAGE 4096ull

const char *pager_mode_name(enum pager_mode m)
{
    return m == PAGER_LAZY ? "lazy" : m == PAGER_RECORD ? "record" : m == PAGER_MERGE ? "merge" : "prefetch";
}

int pager_mode_parse(const char *s, enum pager_mode *out)
{
    if (!strcmp(s, "lazy"))
        *out = PAGER_LAZY;
    else if (!strcmp(s, "record"))
        *out = PAGER_RECORD;
    else if (!strcmp(s, "prefetch"))
        *out = PAGER_PREFETCH;
    else if (!strcmp(s, "merge"))
        *out = PAGER_MERGE;
    else
        return -1;
    return 0;
}

struct pager {
    int uffd, file_fd;
    const struct fc_region *r;
    size_t n;
    uint8_t **zeroed; /* per region: bitmap of removed pages, read back as zero */
    bool recording;
    struct page_record *log;
    size_t log_len, log_cap;
    uint64_t t0;
    uint64_t *pending; /* fault addresses to retry (UFFDIO_COPY said EAGAIN) */
    size_t npending, pending_cap;
    struct pager_stats *st;
    bool vm_gone;
    uint64_t batch; /* pages per miss (PAGER_BATCH_PAGES) */
    bool record_exact; /* recording installs one page per fault (unless THAW_RECORD_BATCH=1) */
    struct snap_identity identity; /* of the snapshot being served (memory trailer) */
    bool in_process;        /* guest memory is in this address space (huge chunks possible) */
    struct huge_chunks huge; /* chunks the prefetch filled as huge pages: not via UFFDIO_COPY */
    /* PAGER_MERGE: the prefetched set, and the pages misses installed (bit per guest page) */
    bool merging;
    struct reap_ws_set set;
    uint8_t *used;
    uint8_t *probe_bits; /* the withheld pages, bit per guest page */
    unsigned keep;
    /* Recording read-ahead: windows of the memory file already advised, bit per window. */
    uint64_t ra_window; /* bytes, 0: off */
    uint8_t *ra_done;
};

static const struct fc_region *find_region(const struct pager *p, uint64_t addr, size_t *ri)
{
    for (size_t i = 0; i < p->n; i++)
        if (addr >= p->r[i].base_host_virt_addr && addr - p->r[i].base_host_virt_addr < p->r[i].size) {
            *ri = i;
            return &p->r[i];
        }
    return NULL;
}

static uint8_t *prefetch_gpa_to_host(void *ctx, uint64_t gpa, uint64_t len)
{
    const struct pager *p = ctx;
    for (size_t i = 0; i < p->n; i++) {
        const struct fc_region *r = &p->r[i];
        if (gpa >= r->offset && gpa - r->offset <= r->size && len <= r->size - (gpa - r->offset))
            return huge_chunks_cover(&p->huge, gpa, len) ? NULL /* filled already */
                                                         : (uint8_t *)(uintptr_t)(r->base_host_virt_addr + (gpa - r->offset));
    }
    return NULL;
}

static void record(struct pager *p, uint64_t off)
{
    if (p->log_len == p->log_cap) {
        size_t cap = p->log_cap ? p->log_cap * 2 : 4096;
        struct page_record *nl = realloc(p->log, cap * sizeof *nl);
        if (!nl)
            return; /* the trace will be short; serving goes on */
        p->log = nl;
        p->log_cap = cap;
    }
    p->log[p->log_len++] = (struct page_record){off, clock_now_ns() - p->t0};
}

/* Miss batching: a fault on a page of the memory file installs it and the pages after it,
 * up to PAGER_BATCH_PAGES in all, with one read and one UFFDIO_COPY: a new input that
 * walks memory outside the working set costs one pager trip per batch, not per page (the
 * kernel's fault-around does the same for the lazy baseline). The batch stops at the end
 * of the region, of the file's data extent (holes are left to the kernel), and before a
 * page the guest dropped; UFFDIO_COPY itself stops before a page that is already there.
 * Only while not recording (see serve). THAW_PAGER_BATCH=N overrides the size (1 turns batching off). */
#define PAGER_BATCH_PAGES 16u
#define PAGER_BATCH_MAX 64u /* the per-thread read buffer: 256 KiB */
#define PAGER_READAHEAD_KB 1024u /* read-ahead window of a recording's faults (read_ahead) */

static bool page_zeroed(const struct pager *p, size_t ri, uint64_t pi)
{
    return p->zeroed[ri][pi / 8] >> (pi % 8) & 1;
}

/* A working-set page this merging restore withheld to see whether the input uses it. */
static bool probed(const struct pager *p, uint64_t gpa)
{
    return p->probe_bits && gpa / PAGE < p->st->guest_pages && (p->probe_bits[gpa / PAGE / 8] >> (gpa / PAGE % 8) & 1);
}

/* How many pages from page index pi of region ri to install in one go. */
static uint64_t batch_len(struct pager *p, size_t ri, uint64_t pi, uint64_t off)
{
    const struct fc_region *r = &p->r[ri];
    uint64_t n = p->batch, left = r->size / PAGE - pi;
    if (n > left)
        n = left;
    if (n > 1) {
        /* To the end of this data extent; from inside a (short, registered) hole, to the
         * end of the extent after it. Registered ranges end where data ends. */
        off_t end = lseek(p->file_fd, (off_t)off, SEEK_HOLE);
        if (end == (off_t)off) {
            off_t data = lseek(p->file_fd, (off_t)off, SEEK_DATA);
            end = data > (off_t)off ? lseek(p->file_fd, data, SEEK_HOLE) : -1;
        }
        if (end <= (off_t)off)
            n = 1;
        else if ((uint64_t)end - off < n * PAGE)
            n = ((uint64_t)end - off + PAGE - 1) / PAGE;
    }
    for (uint64_t k = 1; k < n; k++)
        if (page_zeroed(p, ri, pi + k) || probed(p, off + k * PAGE))
            return k;
    return n ? n : 1;
}

/* Read-ahead for a recording's faults. Recording serves one page per fault, so the memory
 * file would be read 4 KiB at a time (a cold page cache: one disk read per fault, where
 * uffd's batches read 64 KiB). After the faulting page is installed (the vCPU runs on),
 * the aligned window around it is handed to the kernel's read-ahead (asynchronous, once
 * per window), so the next faults near it find the page cache warm. Only the page cache
 * is filled: what is installed, and so recorded, stays what the guest touched.
 * THAW_PAGER_READAHEAD_KB=N sets the window (0: off). Misses after a prefetch are not
 * read ahead: they are sparse, and reading their windows made a new input slower
 * (docs/benchmarks.md, bench/different_input.py). */
static void read_ahead(struct pager *p, uint64_t off)
{
    if (!p->ra_window || !p->ra_done)
        return;
    uint64_t w = off / p->ra_window;
    if (p->ra_done[w / 8] >> (w % 8) & 1)
        return;
    p->ra_done[w / 8] |= (uint8_t)(1u << (w % 8));
    (void)posix_fadvise(p->file_fd, (off_t)(w * p->ra_window), (off_t)p->ra_window, POSIX_FADV_WILLNEED);
}

static int read_pages(struct pager *p, uint8_t *buf, uint64_t len, uint64_t off)
{
    return pread_full(p->file_fd, buf, (size_t)len, off);
}

/* 1 served, 0 retry later (EAGAIN), -1 error (errno set). */
static int serve(struct pager *p, uint64_t addr, struct thaw_error *err)
{
    static _Thread_local uint8_t buf[PAGER_BATCH_MAX * PAGE] __attribute__((aligned(4096)));
    size_t ri;
    uint64_t page = addr & ~(PAGE - 1);
    const struct fc_region *r = find_region(p, page, &ri);
    if (!r)
        return thaw_fail(err, "fault at %#llx outside every memory region", (unsigned long long)addr);
    uint64_t pi = (page - r->base_host_virt_addr) / PAGE;
    uint64_t off = r->offset + pi * PAGE;
    int rc;
    bool zero = page_zeroed(p, ri, pi);
    uint64_t n = 1, installed = 1;
    if (!zero) {
        /* Recording installs exactly the pages the guest touches (a batch would hide its
         * neighbours' first touches: the set would hold pages no input uses), and so does
         * serving a probed page (its touch is what the probe is for). THAW_RECORD_BATCH=1
         * batches recording too and logs the whole batch (cheaper, a looser set). */
        n = (p->recording && p->record_exact) || probed(p, off) ? 1 : batch_len(p, ri, pi, off);
        if (read_pages(p, buf, n * PAGE, off) < 0)
            return thaw_fail_errno(err, "reading page %#llx of the memory file", (unsigned long long)off);
        struct uffdio_copy c = {.dst = page, .src = (uint64_t)(uintptr_t)buf, .len = n * PAGE};
        rc = ioctl(p->uffd, UFFDIO_COPY, &c);
        if (rc < 0 && n > 1 && c.copy > 0) {
            /* Stopped at a page that is there already (or a pending event): the faulting
             * page and the ones before the stop are in. */
            rc = 0;
            installed = (uint64_t)c.copy / PAGE;
        } else if (rc < 0 && n > 1 && errno == ENOENT) {
            /* The batch crosses into memory that is not registered: just this page. */
            n = 1;
            c = (struct uffdio_copy){.dst = page, .src = (uint64_t)(uintptr_t)buf, .len = PAGE};
            rc = ioctl(p->uffd, UFFDIO_COPY, &c);
        } else if (rc == 0) {
            installed = n;
        }
    } else {
        struct uffdio_zeropage z = {.range = {.start = page, .len = PAGE}};
        rc = ioctl(p->uffd, UFFDIO_ZEROPAGE, &z);
    }
    if (rc < 0) {
        if (errno == EAGAIN)
            return 0;
        if (errno == ESRCH) { /* the VM's address space is gone */
            p->vm_gone = true;
            return 1;
        }
        if (errno == ENOENT) /* the range was unmapped or unregistered meanwhile */
            return 1;
        if (errno != EEXIST)
            return thaw_fail_errno(err, "%s at %#llx", zero ? "UFFDIO_ZEROPAGE" : "UFFDIO_COPY",
                                   (unsigned long long)page);
        /* Already there (prefetched, or a second thread faulted on it): wake the waiter. */
        struct uffdio_range w = {.start = page, .len = PAGE};
        if (ioctl(p->uffd, UFFDIO_WAKE, &w) < 0 && errno != ESRCH && errno != ENOENT)
            return thaw_fail_errno(err, "UFFDIO_WAKE at %#llx", (unsigned long long)page);
        p->st->already_present++;
        return 1;
    }
    if (zero) {
        if (p->recording)
            record(p, off);
        p->st->zero_pages++;
        return 1;
    }
    if (p->recording)
        read_ahead(p, off);
    for (uint64_t k = 0; k < installed; k++) {
        if (p->recording)
            record(p, off + k * PAGE);
        if (p->merging && (off + k * PAGE) / PAGE < p->st->guest_pages)
            p->used[(off + k * PAGE) / PAGE / 8] |= (uint8_t)(1u << ((off + k * PAGE) / PAGE % 8));
    }
    p->st->served_faults++;
    p->st->pages_served += installed;
    return 1;
}

static int add_pending(struct pager *p, uint64_t addr, struct thaw_error *err)
{
    if (p->npending == p->pending_cap) {
        size_t cap = p->pending_cap ? p->pending_cap * 2 : 64;
        uint64_t *np = realloc(p->pending, cap * sizeof *np);
        if (!np)
            return thaw_fail(err, "out of memory");
        p->pending = np;
        p->pending_cap = cap;
    }
    p->pending[p->npending++] = addr;
    return 0;
}

static int fault(struct pager *p, uint64_t addr, struct thaw_error *err)
{
    uint64_t t = clock_now_ns();
    int rc = serve(p, addr, err);
    p->st->fault_ns += clock_now_ns() - t;
    if (rc < 0)
        return -1;
    return rc == 0 ? add_pending(p, addr, err) : 0;
}

static void on_remove(struct pager *p, uint64_t start, uint64_t end)
{
    p->st->removes++;
    for (size_t i = 0; i < p->n; i++) {
        uint64_t b = p->r[i].base_host_virt_addr, e = b + p->r[i].size;
        uint64_t s = start > b ? start : b, t = end < e ? end : e;
        for (uint64_t a = s & ~(PAGE - 1); a < t; a += PAGE) {
            uint64_t pi = (a - b) / PAGE;
            p->zeroed[i][pi / 8] |= (uint8_t)(1u << (pi % 8));
        }
    }
}

/* Writes the working set recorded so far and stops recording. */
static int finish_record(struct pager *p, const char *snap_dir, uint64_t mem_size)
{
    p->recording = false;
    p->st->recording = 0;
    if (p->log_len == 0)
        return 0;
    struct thaw_error werr;
    if (reap_write(snap_dir, p->log, p->log_len, mem_size, &p->identity, &werr) < 0) {
        snprintf(p->st->record_error, sizeof p->st->record_error, "%s", werr.msg);
        return -1;
    }
    p->st->recorded = p->log_len;
    return 0;
}

/* Merges what this restore's misses installed into the working set and stops merging. */
static int finish_merge(struct pager *p, const char *snap_dir, uint64_t mem_size)
{
    p->merging = false;
    struct thaw_error werr;
    struct reap_merge_stats ms;
    if (reap_write_merged(snap_dir, &p->set, p->used, mem_size, &p->identity, p->keep, &ms, &werr) < 0) {
        snprintf(p->st->record_error, sizeof p->st->record_error, "merging the working set: %.480s", werr.msg);
        return -1;
    }
    p->st->merged = ms.written;
    p->st->merge_added = ms.added;
    p->st->merge_dropped = ms.dropped;
    p->st->ws_generation = ms.generation;
    return 0;
}

int pager_event_line(const char *ev, const struct pager_stats *st, uint64_t installed_runs, char *buf, size_t cap)
{
    struct pager_stats s = *st;
    s.installed_runs = installed_runs;
    char body[2048];
    pager_stats_json(&s, body, sizeof body);
    int n = snprintf(buf, cap, "{\"event\":\"%s\",%s}\n", ev, body);
    return n > 0 && (size_t)n < cap ? n : -1;
}

/* Sends {"event": ev, <stats>} (installed_runs: pager_event_line). Write errors are
 * ignored: a peer that does not read (a Firecracker VM) or a stop pipe must not stop the
 * serving. */
static void reply(struct pager *p, int fd, const char *ev, uint64_t installed_runs)
{
    if (fd < 0)
        return;
    p->st->recording = p->recording;
    char line[2200];
    int n = pager_event_line(ev, p->st, installed_runs, line, sizeof line);
    if (n > 0)
        (void)!send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

int pager_send_installed(int fd, const struct gpa_runs *runs)
{
    /* The VMM reads them at once (it waits for "ready"): a bounded wait is enough. */
    const uint8_t *at = (const uint8_t *)runs->v;
    for (size_t left = runs->n * sizeof *runs->v; left;) {
        struct pollfd pf = {.fd = fd, .events = POLLOUT};
        if (poll(&pf, 1, 10000) <= 0)
            return -1;
        ssize_t k = send(fd, at, left, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (k <= 0)
            return -1;
        at += k;
        left -= (size_t)k;
    }
    return 0;
}

/* Handles readable stop_fd: commands, or end of file. Returns -1 to stop serving. */
static int control(struct pager *p, int fd, char *buf, size_t cap, size_t *len, const char *snap_dir,
                   uint64_t mem_size)
{
    ssize_t n = read(fd, buf + *len, cap - 1 - *len);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (n <= 0)
        return -1;
    *len += (size_t)n;
    buf[*len] = 0;
    char *nl;
    while ((nl = strchr(buf, '\n'))) {
        *nl = 0;
        if (!strcmp(buf, "stats")) {
            reply(p, fd, "stats", 0);
        } else if (!strcmp(buf, "finish-record")) {
            if (p->recording)
                (void)finish_record(p, snap_dir, mem_size);
            else if (p->merging)
                (void)finish_merge(p, snap_dir, mem_size);
            reply(p, fd, "recorded", 0);
        } else {
            reply(p, fd, "unknown-command", 0);
        }
        size_t used = (size_t)(nl + 1 - buf);
        memmove(buf, nl + 1, *len - used + 1);
        *len -= used;
    }
    if (*len == cap - 1) /* an over-long line: drop it */
        *len = 0;
    return 0;
}

void pager_stats_json(const struct pager_stats *st, char *buf, size_t len)
{
    json_t *o = json_pack("{sIsIsIsIsIsIsbsIsIsIsIsIsbsIsssssbsIsIsIsIsIsbsIsIsIsIsI}", "faults", (json_int_t)st->faults,
                          "served_faults", (json_int_t)st->served_faults,
                          "pages_served", (json_int_t)st->pages_served, "zero_pages", (json_int_t)st->zero_pages,
                          "already_present", (json_int_t)st->already_present, "removes", (json_int_t)st->removes,
                          "prefetch_ok", st->prefetch_ok, "prefetch_pages", (json_int_t)st->prefetch_pages,
                          "prefetch_regions", (json_int_t)st->prefetch_regions,
                          "prefetch_bytes", (json_int_t)st->prefetch_bytes,
                          "prefetch_read_ns", (json_int_t)st->prefetch_read_ns,
                          "prefetch_install_ns", (json_int_t)st->prefetch_install_ns,
                          "recording", st->recording, "recorded", (json_int_t)st->recorded,
                          "prefetch_error", st->prefetch_error, "record_error", st->record_error,
                          "vm_gone", st->vm_gone, "huge_chunks", (json_int_t)st->huge_chunks,
                          "huge_ws_pages", (json_int_t)st->huge_ws_pages,
                          "huge_data_pages", (json_int_t)st->huge_data_pages, "huge_ns", (json_int_t)st->huge_ns,
                          "probe_pages", (json_int_t)st->probe_pages,
                          "merged", st->merged, "merge_added", (json_int_t)st->merge_added,
                          "merge_dropped", (json_int_t)st->merge_dropped,
                          "ws_generation", (json_int_t)st->ws_generation,
                          "prefetch_moved", (json_int_t)st->prefetch_moved,
                          "installed_runs", (json_int_t)st->installed_runs);
    json_t *huge = json_pack("{sisIsIsIsIsI}", "huge_policy", st->huge_policy,
                             "huge_cost_samples", (json_int_t)st->huge_costs.samples,
                             "huge_touch_ns", (json_int_t)st->huge_costs.touch_ns,
                             "huge_install_ns", (json_int_t)st->huge_costs.install_ns,
                             "huge_read_ns", (json_int_t)st->huge_costs.read_ns,
                             "huge_chunk_ns", (json_int_t)st->huge_costs.chunk_ns);
    if (o && huge)
        (void)json_object_update(o, huge);
    json_decref(huge);
    char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
    /* Strip the braces: the caller wraps the members with its event. */
    size_t sl = s ? strlen(s) : 0;
    if (sl >= 2)
        snprintf(buf, len, "%.*s", (int)(sl - 2), s + 1);
    else if (len)
        buf[0] = 0;
    free(s);
    json_decref(o);
}

const char *pager_stats_parse(const char *line, struct pager_stats *st, struct thaw_error *err)
{
    static const char *const events[] = {"ready", "stats", "recorded"};
    json_error_t je;
    json_t *o = json_loads(line, 0, &je);
    const char *ev = json_string_value(json_object_get(o, "event"));
    const char *known = NULL;
    for (size_t i = 0; ev && i < sizeof events / sizeof events[0]; i++)
        if (!strcmp(ev, events[i]))
            known = events[i];
    if (!o || !known) {
        json_decref(o);
        thaw_fail(err, "pager sent a malformed control line");
        return NULL;
    }
    memset(st, 0, sizeof *st);
#define U64(f) st->f = (uint64_t)json_integer_value(json_object_get(o, #f))
    U64(faults); U64(served_faults); U64(pages_served); U64(zero_pages); U64(already_present); U64(removes);
    U64(prefetch_pages); U64(prefetch_regions); U64(prefetch_bytes); U64(prefetch_read_ns);
    U64(prefetch_install_ns); U64(recorded); U64(huge_chunks); U64(huge_ws_pages); U64(huge_data_pages); U64(huge_ns);
    U64(probe_pages); U64(merge_added); U64(merge_dropped); U64(ws_generation); U64(prefetch_moved);
    U64(installed_runs);
#undef U64
#define COST(f, key) st->huge_costs.f = (uint64_t)json_integer_value(json_object_get(o, key))
    COST(touch_ns, "huge_touch_ns"); COST(install_ns, "huge_install_ns"); COST(read_ns, "huge_read_ns");
    COST(chunk_ns, "huge_chunk_ns");
#undef COST
    st->huge_costs.samples = (uint32_t)json_integer_value(json_object_get(o, "huge_cost_samples"));
    st->huge_policy = (int)json_integer_value(json_object_get(o, "huge_policy"));
    if (st->huge_policy < 0 || st->huge_policy > 2)
        st->huge_policy = 0;
    st->prefetch_ns = st->prefetch_read_ns + st->prefetch_install_ns;
    st->prefetch_ok = json_is_true(json_object_get(o, "prefetch_ok"));
    st->recording = json_is_true(json_object_get(o, "recording"));
    st->vm_gone = json_is_true(json_object_get(o, "vm_gone"));
    st->merged = json_is_true(json_object_get(o, "merged"));
    const char *pe = json_string_value(json_object_get(o, "prefetch_error"));
    const char *re = json_string_value(json_object_get(o, "record_error"));
    snprintf(st->prefetch_error, sizeof st->prefetch_error, "%s", pe ? pe : "");
    snprintf(st->record_error, sizeof st->record_error, "%s", re ? re : "");
    json_decref(o);
    return known;
}

/* Opens the memory file and reads the identity its trailer carries: working sets are
 * checked against it and stamped with it. */
static int open_memory(const char *dir, uint64_t need, struct snap_identity *id, struct thaw_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/" SNAPDIR_MEMORY, dir);
    int fd = file_open_regular(AT_FDCWD, path, O_RDONLY | O_NOFOLLOW, 0, err);
    if (fd < 0)
        return -1;
    struct stat sb;
    uint64_t image;
    if (fstat(fd, &sb) < 0 || memory_trailer_read(fd, (uint64_t)sb.st_size, path, &image, id, err) < 0) {
        close(fd);
        return -1;
    }
    if (image < need) {
        close(fd);
        return thaw_fail(err, "%s holds %llu bytes of memory, the VM has %llu", path, (unsigned long long)image,
                         (unsigned long long)need);
    }
    return fd;
}

static int serve_all(int uffd, const struct fc_region *r, size_t n, const char *snap_dir, enum pager_mode mode,
                     int stop_fd, bool in_process, struct reap_ws_read *early, struct gpa_runs *installed,
                     bool send_installed, struct pager_stats *st, struct thaw_error *err);

/* A pager in the VM's process installs the prefetch by moving the read's pages in
 * (THAW_REAP_MOVE=0 copies them, to compare). */
static unsigned may_move(bool in_process)
{
    const char *m = getenv("THAW_REAP_MOVE");
    return in_process && !(m && !strcmp(m, "0")) ? REAP_PREFETCH_MOVE : 0;
}

int pager_serve(int uffd, const struct fc_region *r, size_t n, const char *snap_dir, enum pager_mode mode,
                int stop_fd, bool send_installed, struct pager_stats *st, struct thaw_error *err)
{
    struct gpa_runs installed = {0};
    int rc = serve_all(uffd, r, n, snap_dir, mode, stop_fd, false, NULL, send_installed ? &installed : NULL,
                       send_installed, st, err);
    gpa_runs_free(&installed);
    return rc;
}

int pager_serve_early(int uffd, const struct fc_region *r, size_t n, const char *snap_dir, enum pager_mode mode,
                      int stop_fd, struct reap_ws_read *early, struct gpa_runs *installed, struct pager_stats *st,
                      struct thaw_error *err)
{
    return serve_all(uffd, r, n, snap_dir, mode, stop_fd, false, early, installed, false, st, err);
}

int pager_serve_in_process(int uffd, const struct fc_region *r, size_t n, const char *snap_dir,
                           enum pager_mode mode, int stop_fd, struct reap_ws_read *early, struct gpa_runs *installed,
                           struct pager_stats *st, struct thaw_error *err)
{
    return serve_all(uffd, r, n, snap_dir, mode, stop_fd, true, early, installed, false, st, err);
}

static int serve_all(int uffd, const struct fc_region *r, size_t n, const char *snap_dir, enum pager_mode mode,
                     int stop_fd, bool in_process, struct reap_ws_read *early, struct gpa_runs *installed,
                     bool send_installed, struct pager_stats *st, struct thaw_error *err)
{
    memset(st, 0, sizeof *st);
    struct pager p = {.uffd = uffd, .r = r, .n = n, .st = st, .t0 = clock_now_ns(), .recording = mode == PAGER_RECORD,
                      .in_process = in_process};
    int rc = -1;
    uint64_t mem_size = 0;
    for (size_t i = 0; i < n; i++)
        if (r[i].offset + r[i].size > mem_size)
            mem_size = r[i].offset + r[i].size;
    p.batch = PAGER_BATCH_PAGES;
    const char *bs = getenv("THAW_PAGER_BATCH");
    if (bs && atoi(bs) >= 1)
        p.batch = (uint64_t)atoi(bs) < PAGER_BATCH_MAX ? (uint64_t)atoi(bs) : PAGER_BATCH_MAX;
    const char *rb = getenv("THAW_RECORD_BATCH");
    p.record_exact = !(rb && !strcmp(rb, "1"));
    p.keep = reap_keep();
    st->guest_pages = mem_size / PAGE;
    const char *ra = getenv("THAW_PAGER_READAHEAD_KB");
    p.ra_window = (ra ? (uint64_t)strtoull(ra, NULL, 10) : PAGER_READAHEAD_KB) * 1024 / PAGE * PAGE;
    if (p.ra_window && !(p.ra_done = calloc(mem_size / p.ra_window / 8 + 1, 1)))
        p.ra_window = 0;
    p.file_fd = open_memory(snap_dir, mem_size, &p.identity, err);
    if (p.file_fd < 0) {
        reap_ws_read_free(early);
        return -1;
    }
    p.zeroed = calloc(n ? n : 1, sizeof *p.zeroed);
    if (!p.zeroed) {
        thaw_fail(err, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        if (!(p.zeroed[i] = calloc(r[i].size / PAGE / 8 + 1, 1))) {
            thaw_fail(err, "out of memory");
            goto out;
        }
    /* poll() on a userfaultfd needs O_NONBLOCK (the flag is shared with the VM process,
     * which never reads it). */
    int fl = fcntl(uffd, F_GETFL);
    if (fl < 0 || fcntl(uffd, F_SETFL, fl | O_NONBLOCK) < 0) {
        thaw_fail_errno(err, "making the userfaultfd non-blocking");
        goto out;
    }
    if (mode == PAGER_PREFETCH || mode == PAGER_MERGE) {
        struct reap_stats rs;
        struct thaw_error perr = {{0}}, herr;
        bool merge = mode == PAGER_MERGE;
        if (merge && !(p.used = calloc(mem_size / PAGE / 8 + 1, 1))) {
            thaw_fail(err, "out of memory");
            goto out;
        }
        /* The working set's read first (if not issued already, early), then the huge
         * chunks' reads behind it: the disk serves ws.pages first, whose pages go in
         * while the chunks are read. The read is freed after "ready": an unmap in a
         * threaded process can wait milliseconds for the other CPU here. */
        int began = early || reap_ws_read_begin(snap_dir, &early, &perr) == 0 ? 0 : -1;
        struct huge_policy hp = {.how = HUGE_OFF};
        if (in_process)
            huge_policy_from_env(&hp);
        if (hp.how != HUGE_OFF && huge_chunks_begin(snap_dir, uffd, r, n, mem_size, &p.identity, &hp,
                                                    merge ? p.keep : 0, &p.huge, &herr) < 0)
            huge_chunks_free(&p.huge);
        st->huge_policy = (int)hp.how;
        st->huge_costs = hp.costs;
        /* No chunk is taken while a merging restore probes (huge_chunks_begin), so keep
         * only matters without them. */
        int prc = began == 0 ? reap_prefetch_read(early, uffd, prefetch_gpa_to_host, &p, mem_size, &p.identity,
                                                  merge && p.huge.n == 0 ? p.keep : 0,
                                                  may_move(in_process) | (merge ? 0 : REAP_PREFETCH_INDEX),
                                                  merge || installed ? &p.set : NULL, &rs, &perr)
                             : (memset(&rs, 0, sizeof rs), -1);
        huge_chunks_end(&p.huge, uffd);
        /* A working set refused before any of its own pages went in is not used at all
         * (below: the restore records anew), so its chunks go back under the pager too:
         * a recording must see every page the guest touches. */
        if (prc < 0 && rs.pages == 0)
            huge_chunks_undo(&p.huge, uffd);
        st->huge_chunks = p.huge.n;
        st->huge_ws_pages = p.huge.ws_pages;
        st->huge_data_pages = p.huge.data_pages;
        st->huge_ns = p.huge.ns;
        rs.pages += p.huge.ws_pages; /* prefetched too, as part of their chunks */
        if (prc == 0) {
            /* The pages now in, for the caller's pre-fault vCPU (withheld ones are not:
             * a touch there would look like the guest's use). */
            for (uint64_t i = 0; installed && i < p.set.n; i++)
                if (!p.set.withheld[i] && gpa_runs_add(installed, p.set.gpa[i], 1) < 0)
                    break;
            if (!merge)
                reap_ws_set_free(&p.set);
            p.merging = merge;
            st->probe_pages = rs.withheld;
            if (merge && rs.withheld) {
                if (!(p.probe_bits = calloc(mem_size / PAGE / 8 + 1, 1))) {
                    thaw_fail(err, "out of memory");
                    goto out;
                }
                for (uint64_t i = 0; i < p.set.n; i++)
                    if (p.set.withheld[i])
                        p.probe_bits[p.set.gpa[i] / PAGE / 8] |= (uint8_t)(1u << (p.set.gpa[i] / PAGE % 8));
            }
            st->prefetch_ok = 1;
            st->prefetch_pages = rs.pages;
            st->prefetch_regions = rs.regions + p.huge.n;
            st->prefetch_ns = rs.read_ns + rs.install_ns;
            st->prefetch_bytes = rs.bytes;
            st->prefetch_read_ns = rs.read_ns;
            st->prefetch_install_ns = rs.install_ns;
            st->prefetch_moved = rs.moved;
        } else if (rs.pages == 0) {
            /* A bad working set never costs the snapshot: serve lazily, record anew. */
            snprintf(st->prefetch_error, sizeof st->prefetch_error, "%s", perr.msg);
            p.recording = true;
        } else {
            /* A page failed its check after verified ones went in: those are correct,
             * the rest is served lazily. A recording now would miss the installed
             * pages, so mark the working set stale: the next restore records it. */
            struct thaw_error serr;
            snprintf(st->prefetch_error, sizeof st->prefetch_error, "%.400s (working set marked stale)", perr.msg);
            st->prefetch_pages = rs.pages;
            if (reap_mark_stale(snap_dir, &serr) < 0)
                snprintf(st->record_error, sizeof st->record_error, "%s", serr.msg);
        }
    }
    char ctl[256];
    size_t ctl_len = 0;
    /* Asked for (pager_serve's send_installed: a VMM's hello), what it installed follows
     * the line; otherwise it stays in *installed for the caller (an in-process pager, or
     * a worker's caller, which relays it itself: its stop_fd is its own control socket). */
    bool send = send_installed && installed && installed->n && stop_fd >= 0 && st->prefetch_ok && !p.recording;
    reply(&p, stop_fd, "ready", send ? installed->n : 0);
    if (send)
        (void)pager_send_installed(stop_fd, installed); /* a VMM that misses them says so */
    reap_ws_read_free(early);
    early = NULL;
    struct pollfd fds[2] = {{.fd = uffd, .events = POLLIN}, {.fd = stop_fd, .events = POLLIN}};
    while (!p.vm_gone) {
        int timeout = p.npending ? 1 : -1;
        int k = poll(fds, stop_fd >= 0 ? 2 : 1, timeout);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            thaw_fail_errno(err, "poll on the userfaultfd");
            goto out;
        }
        if (stop_fd >= 0 && fds[1].revents) {
            int c = control(&p, stop_fd, ctl, sizeof ctl, &ctl_len, snap_dir, mem_size);
            if (c < 0)
                break;
        }
        if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) {
            p.vm_gone = true;
            break;
        }
        if (fds[0].revents & POLLIN) {
            struct uffd_msg msgs[32];
            ssize_t got = read(uffd, msgs, sizeof msgs);
            if (got == 0) {
                p.vm_gone = true;
                break;
            }
            if (got < 0 && errno != EAGAIN && errno != EINTR) {
                thaw_fail_errno(err, "read on the userfaultfd");
                goto out;
            }
            for (size_t i = 0; got > 0 && i < (size_t)got / sizeof msgs[0]; i++) {
                if (msgs[i].event == UFFD_EVENT_PAGEFAULT) {
                    st->faults++;
                    if (fault(&p, msgs[i].arg.pagefault.address, err) < 0)
                        goto out;
                } else if (msgs[i].event == UFFD_EVENT_REMOVE) {
                    on_remove(&p, msgs[i].arg.remove.start, msgs[i].arg.remove.end);
                }
                /* Other events (fork, remap, unmap) are not negotiated by thaw's VMs. */
            }
        }
        /* Retry faults that hit EAGAIN (a non-cooperative event was pending). */
        size_t np = p.npending;
        p.npending = 0;
        for (size_t i = 0; i < np; i++)
            if (fault(&p, p.pending[i], err) < 0)
                goto out;
    }
    rc = 0;
out:
    reap_ws_read_free(early);
    st->vm_gone = p.vm_gone;
    if (p.recording && finish_record(&p, snap_dir, mem_size) < 0 && rc == 0)
        rc = thaw_fail(err, "%s", st->record_error);
    if (p.zeroed)
        for (size_t i = 0; i < n; i++)
            free(p.zeroed[i]);
    free(p.zeroed);
    free(p.log);
    free(p.pending);
    huge_chunks_free(&p.huge);
    free(p.used);
    free(p.probe_bits);
    free(p.ra_done);
    reap_ws_set_free(&p.set);
    close(p.file_fd);
    return rc;
}
