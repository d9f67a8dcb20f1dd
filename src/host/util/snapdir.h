/* The one owner of a snapshot directory: its file names, and the rules for using it
 * safely (docs/snapshot-format.md, "Atomicity" and "Opening files"). Every layer that
 * reads or writes a snapshot directory names its files through these. */
#ifndef THAW_HOST_SNAPDIR_H
#define THAW_HOST_SNAPDIR_H

#include <stddef.h>
#include <stdio.h>

#include "host/util/error.h"

#define SNAPDIR_STATE    "state"     /* vCPU and monitor state */
#define SNAPDIR_MEMORY   "memory"    /* sparse guest-physical memory image + identity trailer */
#define SNAPDIR_WS_TRACE "ws.trace"  /* REAP: recorded pages in fault order */
#define SNAPDIR_WS_PAGES "ws.pages"  /* REAP: contents of the recorded pages */
#define SNAPDIR_WS_GENS  "ws.gens"   /* REAP: generations of an unchanged ws.pages (merging) */
#define SNAPDIR_WS_STALE "ws.stale"  /* REAP: marker, re-record on the next restore */
#define SNAPDIR_WS_LOCK  "ws.lock"   /* REAP: flock held by the one restore that records */
#define SNAPDIR_ROOTFS   "rootfs"    /* the root-filesystem image the guest maps (JSON) */
#define SNAPDIR_ROOTFS_COW "rootfs.cow" /* image pages the guest wrote (relocations) */
#define SNAPDIR_ROOTFS_WS "rootfs.ws" /* REAP: image pages the first invocation touched */
#define SNAPDIR_ROOTFS_GENS "rootfs.gens" /* REAP: generations of rootfs.ws's pages (merging) */

/* Writes "<dir>/<name>" into buf; returns 0, or -1 if it does not fit. */
static inline int snapdir_path(char *buf, size_t len, const char *dir, const char *name)
{
    int n = snprintf(buf, len, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* Refuses a directory that is a symlink, is not a directory, belongs to another user
 * (root's directories are accepted), or that group or others may write. */
int snapdir_check(const char *dir, struct thaw_error *err);

/* A new snapshot is written into a fresh directory next to dir, named
 * ".<base>.new.<pid>.<random>" (mode 0755), and then put in place as a whole with
 * snapdir_commit, so a reader never sees a mix of two snapshots. */
int snapdir_begin(const char *dir, char *tmp, size_t tmp_len, struct thaw_error *err);
/* Puts the fully written tmp in place of dir: a rename if dir does not exist, else an
 * atomic exchange (renameat2 RENAME_EXCHANGE) followed by removing the old snapshot,
 * its working set included. Refuses to replace a directory that holds anything but
 * snapshot files. */
int snapdir_commit(const char *tmp, const char *dir, struct thaw_error *err);
/* Removes a directory made by snapdir_begin (its snapshot files only). */
void snapdir_abort(const char *tmp);

/* Removes what killed writers left behind: temporary files ".<name>.tmp.<pid>.*" in
 * dir and snapshot directories ".<base>.new.<pid>.*" next to it, whose pid is no
 * longer running. Best effort, never fails. */
void snapdir_clean_leftovers(const char *dir);

#endif
