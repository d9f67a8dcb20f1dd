/* Resident and proportional memory of an address range of a process, from
 * /proc/<pid>/smaps: every mapping inside [lo, hi) counts (userfaultfd registration and
 * discards split guest memory into several). Pss divides each page by the number of
 * mappings that share it, so pages shared by N instances count 1/N in each. */
#ifndef THAW_HOST_SMAPS_H
#define THAW_HOST_SMAPS_H

#include <stdint.h>
#include <sys/types.h>

/* pid 0 is this process. Returns 0, or -1 if smaps cannot be read (*rss, *pss zero). */
int smaps_range_kb(pid_t pid, uint64_t lo, uint64_t hi, uint64_t *rss_kb, uint64_t *pss_kb);

#endif
