#include "host/util/writer_tag.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* The inode of our pid namespace; 0 if it cannot be known (no /proc, as in a jail). */
static uint64_t pid_namespace(void)
{
    struct stat st;
    return stat("/proc/self/ns/pid", &st) == 0 ? (uint64_t)st.st_ino : 0;
}

void writer_tag(char out[WRITER_TAG_MAX])
{
    snprintf(out, WRITER_TAG_MAX, "%ld-%" PRIu64, (long)getpid(), pid_namespace());
}

bool writer_tag_gone(const char *s)
{
    char *end;
    errno = 0;
    long pid = strtol(s, &end, 10);
    if (errno || pid <= 0 || *end != '-' || end[1] < '0' || end[1] > '9')
        return false;
    uint64_t ns = strtoull(end + 1, &end, 10);
    if (errno || *end != '.' || ns == 0)
        return false;
    uint64_t ours = pid_namespace();
    return ours != 0 && ns == ours && kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}
