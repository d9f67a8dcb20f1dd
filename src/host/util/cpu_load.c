#include "host/util/cpu_load.h"

#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cpu_load_parse(const char *line, int *runnable)
{
    /* Three load averages, then running/total: only the running count is wanted. */
    const char *p = line;
    for (int field = 0; field < 3; field++) {
        p = strchr(p, ' ');
        if (!p)
            return -1;
        p++;
    }
    char *end;
    long r = strtol(p, &end, 10);
    if (end == p || *end != '/' || r < 0 || r > INT_MAX)
        return -1;
    *runnable = (int)r;
    return 0;
}

int cpu_load_now(struct cpu_load *out)
{
    memset(out, 0, sizeof *out);
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) < 0)
        return -1;
    int fd = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char buf[128];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = 0;
    if (cpu_load_parse(buf, &out->runnable) < 0) {
        out->runnable = 0;
        return -1;
    }
    out->cpus = CPU_COUNT(&set);
    return 0;
}
