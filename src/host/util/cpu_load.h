/* How busy the host's CPUs are right now: the kernel's count of runnable threads
 * (/proc/loadavg's "running" field, this one included) against the CPUs this process
 * may run on. For choices that only pay when a CPU would otherwise sit idle. */
#ifndef THAW_HOST_CPU_LOAD_H
#define THAW_HOST_CPU_LOAD_H

#include <stdbool.h>

struct cpu_load {
    int runnable; /* threads runnable host-wide at the moment of reading, this one included */
    int cpus;     /* CPUs in this process's affinity mask */
};

/* Parses a /proc/loadavg line ("0.50 0.40 0.30 3/412 9876"): 0, or -1 if malformed. */
int cpu_load_parse(const char *line, int *runnable);

/* Reads both now: 0, or -1 if /proc cannot be read (the fields then 0). */
int cpu_load_now(struct cpu_load *out);

#endif
