/* One field of /proc/PID/status ("Seccomp", "CapEff", "Uid", ...), its value with the
 * leading blanks and the newline cut; "" when absent. For the jail's tests. Include
 * after <cmocka.h>, <stdio.h> and <string.h>. */
#ifndef THAW_TESTS_PROC_STATUS_H
#define THAW_TESTS_PROC_STATUS_H

#include <sys/types.h>

static inline void proc_status_field(pid_t pid, const char *name, char *out, size_t cap)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    out[0] = 0;
    size_t nl = strlen(name);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, name, nl) && line[nl] == ':') {
            char *v = line + nl + 1;
            v += strspn(v, " \t");
            v[strcspn(v, "\n")] = 0;
            snprintf(out, cap, "%s", v);
        }
    fclose(f);
}

#endif
