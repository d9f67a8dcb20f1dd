/* What REAP's install choices cost on this host, measured by its own restores: the
 * figures the huge-chunk choice (huge_chunks.h) weighs, kept in one small host file.
 *
 * Why: whether a 2 MiB chunk of a working set is worth reading whole as a huge page
 * depends on the host, not the snapshot. It saves a 4 KiB install and a shadow-MMU
 * exit per working-set page (~30 us an exit on session 13's machine, ~3 us a page on
 * session 14's), and costs the chunk's data pages read from the disk and a 2 MiB page
 * faulted in (~0.1 ms on a plain host, 4.2 ms on session 14's: its memory is handed
 * back to the hypervisor under free page reporting, so each fresh 2 MiB costs 512 faults
 * there). A share fixed on one machine was 0.87x on one and 1.20x on the other.
 *
 * The file: /run/thaw/reap-costs (THAW_REAP_COSTS=PATH, or "off"), boot-scoped (it
 * names the boot it was measured in), 96 bytes: magic "THAWRCST", version, samples,
 * boot id, the four costs (u64 ns, little-endian), a CRC-32. Read as hostile: a file
 * that is not ours (owner, mode), of another boot, or that does not check is ignored.
 * Written atomically after a restore, off its critical path. */
#ifndef THAW_HOST_REAP_COSTS_H
#define THAW_HOST_REAP_COSTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host/util/error.h"

#define REAP_COSTS_FILE_BYTES 96u
#define REAP_COSTS_BOOT_ID_BYTES 40u

/* Each in ns; 0 means not measured yet. */
struct reap_costs {
    uint64_t touch_ns;   /* a vCPU's first touch of a 4 KiB-installed page (the pre-fault vCPU's rate) */
    uint64_t install_ns; /* installing a 4 KiB page (UFFDIO_COPY/MOVE, with its checks), per page */
    uint64_t read_ns;    /* reading 4 KiB of the snapshot's files (the prefetch's reads), per 4 KiB */
    uint64_t chunk_ns;   /* faulting in one 2 MiB huge page (zeroed); UINT64_MAX: no huge pages here */
    uint32_t samples;    /* restores learned from */
};

/* The file's bytes for c measured in boot boot_id (NUL-terminated, at most 39 bytes). */
void reap_costs_encode(const struct reap_costs *c, const char *boot_id, uint8_t out[REAP_COSTS_FILE_BYTES]);
/* Checks and reads a file's bytes: 0, or -1 with err (bad size, magic, version,
 * checksum, another boot, a cost out of range). */
int reap_costs_decode(const uint8_t *buf, size_t len, const char *boot_id, struct reap_costs *out,
                      struct thaw_error *err);
/* This host's costs from its file: true if there is one that checks. */
bool reap_costs_load(struct reap_costs *out);
/* Folds sample into into: each measured field (non-zero) moves a quarter of the way to
 * the sample's, or is taken as it is when into has none yet. */
void reap_costs_merge(struct reap_costs *into, const struct reap_costs *sample);
/* Folds one restore's measurements into the host file (and times a huge-page fault
 * when the file has none, or every 32 samples: it changes as the host's memory does).
 * Failures are silent: the next restore decides from what is there. */
void reap_costs_learn(const struct reap_costs *sample);
/* Whether the figures a chunk is weighed with (touch, read, chunk) have been measured. */
bool reap_costs_measured(const struct reap_costs *c);
/* Whether a chunk holding ws working-set pages among data data pages saves more than it
 * costs: ws * (touch + install) > chunk + data * read. False while any of touch, read or
 * chunk is unmeasured (nothing is read whole on a guess). */
bool reap_costs_chunk_pays(const struct reap_costs *c, uint64_t ws, uint64_t data);
/* Times faulting in one 2 MiB huge page: its ns, UINT64_MAX if this host gives none
 * (transparent huge pages off), 0 if it could not tell. */
uint64_t reap_costs_time_huge_fault(void);

#endif
