#include "host/util/smaps.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

int smaps_range_kb(pid_t pid, uint64_t lo, uint64_t hi, uint64_t *rss_kb, uint64_t *pss_kb)
{
    char path[64], line[512];
    *rss_kb = *pss_kb = 0;
    if (pid)
        snprintf(path, sizeof path, "/proc/%d/smaps", (int)pid);
    else
        snprintf(path, sizeof path, "/proc/self/smaps");
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    bool in = false;
    while (fgets(line, sizeof line, f)) {
        unsigned long long a, b, kb;
        char *dash = strchr(line, '-'), *sp = strchr(line, ' ');
        if (dash && sp && dash < sp && sscanf(line, "%llx-%llx ", &a, &b) == 2) {
            in = a >= lo && b <= hi;
            continue;
        }
        if (in && sscanf(line, "Rss: %llu kB", &kb) == 1)
            *rss_kb += kb;
        else if (in && sscanf(line, "Pss: %llu kB", &kb) == 1)
            *pss_kb += kb;
    }
    fclose(f);
    return 0;
}
