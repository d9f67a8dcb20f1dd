/* Snapshots of a function instance at its ready point (or after warm-up calls):
 *   <dir>/state   vCPU and monitor state (docs/snapshot-format.md)
 *   <dir>/memory  guest-physical memory image, sparse: never-touched pages are holes
 *   <dir>/rootfs* the root-filesystem image's written pages (rootfs_snapshot.h)
 * and restores of them in copy, lazy or uffd memory mode. */
#ifndef THAW_HOST_SNAPSHOT_H
#define THAW_HOST_SNAPSHOT_H

#include <stdint.h>

#include "host/snapshot/memory_backend.h"
#include "host/snapshot/rootfs_snapshot.h"
#include "host/util/error.h"
#include "host/vmm/instance.h"
#include "host/vmm/prefault_vcpu.h"

/* Saves a READY instance (blocked in INVOKE_NEXT) into dir (created if missing).
 * Both files are written under temporary names, fsynced and renamed. */
int snapshot_save(struct instance *inst, const char *function_name, const char *dir, struct thaw_error *err);

/* snapshot_save in two halves, for an instance that runs in another process (a jailed
 * worker, which has no writable directory): the process that owns the snapshot
 * directory opens a writer and passes writer.memory_fd to the instance's process, which
 * captures the state and writes the image into that descriptor; the owner then commits
 * the writer with the state, which it decodes and checks first. */
struct snapshot_writer {
    char dir[4096];
    char tmp[4096];          /* the fresh directory being filled (snapdir_begin) */
    int memory_fd;           /* tmp/memory, open for writing */
    uint64_t allocated_bytes; /* after commit: disk blocks of the memory file */
};
int snapshot_writer_begin(struct snapshot_writer *w, const char *dir, struct thaw_error *err);
/* Decodes the state (a malformed one is refused), cuts the image at the state's memory
 * size, appends the identity trailer, fsyncs, writes the state file and puts the
 * directory in place of dir. Aborts the writer on failure. */
int snapshot_writer_commit(struct snapshot_writer *w, const uint8_t *state, size_t len, struct thaw_error *err);
void snapshot_writer_abort(struct snapshot_writer *w);
/* The identity the snapshot with this encoded state will have (its id and the state's
 * SHA-256, as the commit makes it), for files written before the commit (rootfs.cow).
 * The state is decoded first: a malformed one is refused. */
int snapshot_state_identity(const uint8_t *state, size_t len, struct snap_identity *id, struct thaw_error *err);
/* The instance's side: the encoded state file of a READY instance (malloc'd), and the
 * memory image written sparsely (zero pages skipped) into fd with pwrite only. */
int snapshot_capture_state(struct instance *inst, const char *function_name, uint8_t **state, size_t *len,
                           struct thaw_error *err);
int snapshot_write_image(const struct instance *inst, int fd, struct thaw_error *err);

struct restore_timings {
    uint64_t state_load_ns;   /* read + decode the state file */
    uint64_t vm_create_ns;    /* KVM VM + vCPU + register state */
    uint64_t image_ns;        /* the root-filesystem image: mapped, written pages, file working set */
    uint64_t memory_setup_ns; /* memory backend set-up (copy reads everything here) */
    uint64_t total_ns;        /* restore call, start to ready */
};

/* A restored instance owns its memory backend. */
struct restored {
    struct instance inst;
    struct mem_backend mem;
    struct restore_timings t;
    char function_name[64];
    struct rootfs_restore_stats rootfs; /* the root-filesystem image, if the function has one */
    struct prefault *prefault;          /* REAP: the pre-fault vCPU, or NULL (why in prefault_st) */
    struct prefault_stats prefault_st;  /* its final stats, once destroyed */
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
