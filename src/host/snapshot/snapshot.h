/* Snapshots of a function instance at its ready point (or after warm-up calls):
 *   <dir>/state   vCPU and monitor state (docs/snapshot-format.md)
 *   <dir>/memory  guest-physical memory image, sparse: never-touched pages are holes
 * and restores of them in copy, lazy or uffd memory mode. */
#ifndef THAW_HOST_SNAPSHOT_H
#define THAW_HOST_SNAPSHOT_H

#include <stdint.h>

#include "host/snapshot/memory_backend.h"
#include "host/util/error.h"
#include "host/vmm/instance.h"

/* Saves a READY instance (blocked in INVOKE_NEXT) into dir (created if missing).
 * Both files are written under temporary names, fsynced and renamed. */
int snapshot_save(struct instance *inst, const char *function_name, const char *dir, struct thaw_error *err);

struct restore_timings {
    uint64_t state_load_ns;   /* read + decode the state file */
    uint64_t vm_create_ns;    /* KVM VM + vCPU + register state */
    uint64_t memory_setup_ns; /* memory backend set-up (copy reads everything here) */
    uint64_t total_ns;        /* restore call, start to ready */
};

/* A restored instance owns its memory backend. */
struct restored {
    struct instance inst;
    struct mem_backend mem;
    struct restore_timings t;
    char function_name[64];
};

/* pmode: the in-process pager's mode for uffd/reap, also sent to an external pager in
 * its hello (the REAP policy that picks it lives in the lifecycle layer, sandbox/);
 * pager_socket: an external `thaw pager` to serve uffd/reap memory, or NULL for a
 * pager thread in this process. */
int snapshot_restore(struct restored *r, const char *dir, enum mem_mode mode, enum pager_mode pmode,
                     const char *pager_socket, int console_fd, struct thaw_error *err);
/* The same with the VM taken from a pool of pre-created ones (NULL: created here). Either
 * way the pager's working-set read overlaps the VM set-up: memory_setup_ns counts only
 * the part of it the restore waited for. */
struct vm_pool;
int snapshot_restore_pooled(struct restored *r, const char *dir, enum mem_mode mode, enum pager_mode pmode,
                            const char *pager_socket, int console_fd, struct vm_pool *pool, struct thaw_error *err);
void restored_destroy(struct restored *r);

#endif
