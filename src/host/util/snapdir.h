/* The one owner of a snapshot directory's file names (docs/snapshot-format.md). Every
 * layer that reads or writes a snapshot directory names its files through these. */
#ifndef THAW_HOST_SNAPDIR_H
#define THAW_HOST_SNAPDIR_H

#include <stdio.h>

#define SNAPDIR_STATE    "state"     /* vCPU and monitor state */
#define SNAPDIR_MEMORY   "memory"    /* sparse guest-physical memory image */
#define SNAPDIR_WS_TRACE "ws.trace"  /* REAP: recorded pages in fault order */
#define SNAPDIR_WS_PAGES "ws.pages"  /* REAP: contents of the recorded pages */
#define SNAPDIR_WS_STALE "ws.stale"  /* REAP: marker, re-record on the next restore */
#define SNAPDIR_WS_LOCK  "ws.lock"   /* REAP: flock held by the one restore that records */

/* Writes "<dir>/<name>" into buf; returns 0, or -1 if it does not fit. */
static inline int snapdir_path(char *buf, size_t len, const char *dir, const char *name)
{
    int n = snprintf(buf, len, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

#endif
