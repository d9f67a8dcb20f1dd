/* Inside the lifecycle layer: what every implementation of an instance shares. The
 * public functions of sandbox.h check the instance's state and dispatch through
 * sb->ops; an implementation fills in the ops and the common fields below.
 *   sandbox_local.c   the instance runs in this process (the vCPU in the caller's thread);
 *   worker_client.c   the instance runs in a jailed worker process (worker_server.c).
 * Callers outside sandbox/ never include this header. */
#ifndef THAW_HOST_SANDBOX_IMPL_H
#define THAW_HOST_SANDBOX_IMPL_H

#include "host/sandbox/sandbox.h"
#include "host/vmm/rootfs_map.h"

struct sandbox_ops {
    /* One request to its response. sb->invocation is already the new number. */
    int (*invoke)(struct sandbox *sb, const void *req, size_t len, uint8_t **resp, size_t *resp_len,
                  struct thaw_error *err);
    int (*shutdown)(struct sandbox *sb, struct thaw_error *err);
    int (*snapshot)(struct sandbox *sb, const char *dir, struct thaw_error *err);
    /* Fills everything but the common fields (id, invocations, timings of invoke). */
    int (*stats)(struct sandbox *sb, struct sandbox_stats *st, struct thaw_error *err);
    /* Optional: true if the instance died while idle (sandbox_gone). */
    bool (*gone)(struct sandbox *sb);
    /* Frees sb->impl and everything it owns (not sb itself). */
    void (*destroy)(struct sandbox *sb);
};

struct sandbox {
    const struct sandbox_ops *ops;
    void *impl;
    char id[SANDBOX_ID_MAX + 1];
    enum sandbox_failure failure;    /* of the last call; TIMEOUT/GUEST/... mean dead */
    bool dead;
    uint64_t invocation;             /* invocations started; the one in progress */
    uint64_t invoke_timeout_ns;
    uint64_t first_invoke_ns, last_invoke_ns;
    sandbox_log_fn log;
    void *log_ctx;
    /* REAP: the first call failed in the guest after a prefetch and the implementation
     * marked the working set stale (reap_policy_invoke_failed). sandbox_invoke then
     * restores the snapshot again, without it, and retries that call once; every later
     * call goes to the replacement. */
    bool retry_without_ws;
    struct sandbox *replacement;
    bool impl_gone;                  /* ops->destroy already ran (before the retry) */
    char retry_note[400];
    char *snap_dir;                  /* a restore's snapshot, mode and options, for the retry */
    enum mem_mode mode;
    struct sandbox_options opt;
    char *opt_pager_socket;
    bool stats_light;                /* during sandbox_stats_light: ops->stats samples nothing */
};

/* Allocates the common part from the options (id, log sink, timeouts). */
struct sandbox *sandbox_alloc(const struct sandbox_options *opt, const char *function_name,
                              struct thaw_error *err);
/* Frees what sandbox_alloc made (implementations call it on their failure paths). */
void sandbox_free(struct sandbox *sb);
/* Records why a call failed; returns -1. TIMEOUT, GUEST, WORKER and INTERRUPTED kill. */
int sandbox_set_failure(struct sandbox *sb, enum sandbox_failure f);

/* The in-process implementation (sandbox_local.c). */
int sandbox_local_boot(struct sandbox **out, const char *function_dir, const struct sandbox_options *opt,
                       struct thaw_error *err);
int sandbox_local_restore(struct sandbox **out, const char *snap_dir, enum mem_mode mode,
                          const struct sandbox_options *opt, struct thaw_error *err);
/* The same for a worker whose caller runs the REAP policy (mode is then uffd with the
 * caller's pager): prefetch_files says the policy chose to prefetch, so the recorded
 * root-filesystem pages are read ahead here, where the image is mapped. */
int sandbox_local_restore_files(struct sandbox **out, const char *snap_dir, enum mem_mode mode,
                                const struct sandbox_options *opt, bool prefetch_files, bool merge_files,
                                struct thaw_error *err);
/* A boot that calls before_run once the VM is built, before the guest's first
 * instruction (the worker jails itself there). */
int sandbox_local_boot_before_run(struct sandbox **out, const char *function_dir, const struct sandbox_options *opt,
                                  int (*before_run)(void *ctx, struct thaw_error *err), void *ctx,
                                  struct thaw_error *err);

/* The worker's half of a snapshot: the encoded state (malloc'd) and the memory image
 * written into fd (snapshot_capture_state, snapshot_write_image). */
int sandbox_local_snapshot_fd(struct sandbox *sb, int fd, uint8_t **state, size_t *len, struct thaw_error *err);

/* Before a restored worker enters its jail: stops the pager watcher the restore started
 * (the jail is entered with as few threads as can be: jail.h), which its first
 * invocation starts again, and waits for the pre-fault vCPU's thread to have made its
 * vCPU (KVM_CREATE_VCPU is refused in the jail). */
void sandbox_local_before_jail(struct sandbox *sb);

/* Where an in-process instance's guest memory is mapped (its worker reports it, so
 * that the caller can read its resident size from /proc/<worker>/smaps). */
uint64_t sandbox_local_guest_addr(const struct sandbox *sb);
/* Where its root-filesystem image is mapped (0, 0: none), so that the caller can record
 * the image pages a worker touched from /proc/<worker>/pagemap (REAP). */
const struct rootfs_map *sandbox_local_rootfs(const struct sandbox *sb); /* NULL: none */

/* The process's VM pool (vm_pool.h) as restores here use it: keep_vms makes count VMs
 * ahead and keeps them made (0: back to one made per restore by its filler thread);
 * prepare_vm makes the next restore's VM now, in this thread (a spare worker, before it
 * is given its instance); drop_vms destroys what is made (a spare given a boot). */
void sandbox_local_keep_vms(unsigned count);
unsigned sandbox_local_vms_ready(void);
int sandbox_local_prepare_vm(struct thaw_error *err);
void sandbox_local_drop_vms(void);

/* The worker-process implementation (worker_client.c). */
int sandbox_worker_boot(struct sandbox **out, const char *function_dir, const struct sandbox_options *opt,
                        struct thaw_error *err);
int sandbox_worker_restore(struct sandbox **out, const char *snap_dir, enum mem_mode mode,
                           const struct sandbox_options *opt, struct thaw_error *err);
/* The worker's pid, or -1 for an instance in this process (tests look at it). */
int sandbox_worker_pid(const struct sandbox *sb);

#endif
