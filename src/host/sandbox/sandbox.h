/* The instance lifecycle: the only way the CLI, `thaw serve`, the load generator, the
 * analysis tool, the benchmarks and the integration tests create, drive and destroy a
 * function instance. An instance is made by booting a function bundle to its ready
 * point or by restoring a snapshot in one of the memory modes; it is invoked with a
 * deadline, asked for its stats, snapshotted and destroyed.
 *
 * The REAP policy lives here: a reap-mode restore records the working set if none is
 * usable (and no other restore of the same snapshot is recording it), prefetches it
 * otherwise, finishes the recording after the first response, and marks the working
 * set stale when a restore had to read too much of it lazily.
 *
 * An instance runs in this process (the vCPU in the calling thread) or, with
 * sandbox_options.worker, in a jailed worker process driven over a socketpair
 * (worker_proto.h); the API and its results are the same either way.
 *
 * Not thread-safe per instance: one caller drives one instance at a time. Distinct
 * instances may be driven from distinct threads. */
#ifndef THAW_HOST_SANDBOX_H
#define THAW_HOST_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host/pager/reap_costs.h"
#include "host/snapshot/memory_backend.h"
#include "host/util/error.h"

#define SANDBOX_DEFAULT_TIMEOUT_NS (30ull * 1000000000ull)
#define SANDBOX_DEFAULT_BOOT_TIMEOUT_NS (30ull * 1000000000ull)
#define SANDBOX_ID_MAX 63

/* How an instance came to be: the start kind reported by every caller. */
enum sandbox_start {
    SANDBOX_START_BOOT,          /* booted from the bundle */
    SANDBOX_START_COPY,          /* restored, --mem copy */
    SANDBOX_START_LAZY,          /* restored, --mem lazy */
    SANDBOX_START_UFFD,          /* restored, --mem uffd */
    SANDBOX_START_REAP_RECORD,   /* restored, --mem reap, recording the working set */
    SANDBOX_START_REAP_PREFETCH, /* restored, --mem reap, working set prefetched */
    SANDBOX_START_REAP_NORECORD, /* restored, --mem reap, someone else is recording */
    SANDBOX_START_SHARE,         /* restored, --mem share (working set mapped from the page cache) */
};
const char *sandbox_start_name(enum sandbox_start s);

/* Why a call failed, for callers that map failures to answers (HTTP 502 vs 504). */
enum sandbox_failure {
    SANDBOX_OK,
    SANDBOX_FAIL_HOST,        /* a host-side error (files, KVM, out of memory) */
    SANDBOX_FAIL_BAD_INPUT,   /* the request was refused before the guest saw it */
    SANDBOX_FAIL_TIMEOUT,     /* the deadline passed: the instance is dead */
    SANDBOX_FAIL_GUEST,       /* the guest faulted, exited or broke the protocol: dead */
    SANDBOX_FAIL_WORKER,      /* the worker process died or misbehaved: dead */
    SANDBOX_FAIL_INTERRUPTED, /* SIGINT/SIGTERM (sandbox_interrupt_all): dead */
    SANDBOX_FAIL_PAGER,       /* the memory's pager died ("pager died: ..."): dead */
};
const char *sandbox_failure_name(enum sandbox_failure f);

/* One line of guest output (stdout or stderr of the program, or the guest kernel's
 * log), delivered as it is written, never mixed into a response. invocation is 0
 * during boot or restore, then the 1-based number of the invocation in progress. */
enum sandbox_stream { SANDBOX_STDOUT = 1, SANDBOX_STDERR = 2, SANDBOX_KERNEL = 3 };
typedef void (*sandbox_log_fn)(void *ctx, const char *instance_id, uint64_t invocation,
                               enum sandbox_stream stream, const char *line, size_t len);

struct sandbox_options {
    const char *id;              /* instance id for log tags; NULL: one is made up */
    uint64_t boot_timeout_ns;    /* boot to the ready point; 0: the default (30 s). A restore
                                    runs no guest code before its first invocation; its one
                                    wait (the pager's "ready") has the pager's reply timeout */
    uint64_t invoke_timeout_ns;  /* each invocation; 0: function.json's "timeout_s" (boot
                                    only: a snapshot does not record it), else the default */
    uint64_t memory_mib;         /* boot: guest memory; 0: function.json's */
    bool trace_syscalls;         /* boot: guest kernel logs every syscall */
    const char *pager_socket;    /* uffd/reap restore: external `thaw pager`, or NULL */
    bool drop_cache;             /* restore: drop the snapshot's files from the page cache */
    bool worker;                 /* run in a jailed worker process */
    sandbox_log_fn log;          /* guest output; NULL: written to stderr, tagged */
    void *log_ctx;
};

/* Everything a caller reports about an instance. Times in nanoseconds. */
struct sandbox_stats {
    char id[SANDBOX_ID_MAX + 1];
    char function[64];
    enum sandbox_start start;
    enum mem_mode mode;              /* restores only */
    bool in_worker;
    /* creation */
    uint64_t boot_ns;                /* boot: bundle load + boot to ready */
    uint64_t state_load_ns;          /* restore: read + decode state */
    uint64_t memory_setup_ns;        /* restore: memory backend (includes any prefetch) */
    uint64_t vm_create_ns;           /* restore: KVM VM, vCPU, registers */
    uint64_t image_restore_ns;       /* restore: the root-filesystem image (0: none) */
    uint64_t restore_ns;             /* restore: start to ready */
    /* invocations */
    uint64_t invocations;
    uint64_t first_invoke_ns;        /* the first invocation's round trip */
    uint64_t last_invoke_ns;
    uint64_t vm_exits;               /* KVM_RUN returns since creation */
    uint64_t hypercalls;
    bool kvm_first_ok;               /* the kvm_first_* counters were read (host/vmm/kvm_stats.h) */
    uint64_t kvm_first_exits;        /* the first invocation inside KVM: every exit, */
    uint64_t kvm_first_faults;       /* the guest page faults KVM took (shadow MMU), */
    uint64_t kvm_first_faults_fixed; /* of which it installed a mapping, */
    uint64_t kvm_first_emulated;     /* and the instructions it emulated */
    bool exited;                     /* the program exited (sandbox_shutdown) */
    int64_t exit_status;
    /* memory */
    uint64_t pages_served;           /* pager: pages copied in from the snapshot */
    uint64_t zero_pages;             /* pager: pages installed as zero */
    uint64_t host_page_faults;       /* minor + major faults of the process since creation */
    uint64_t memory_bytes;           /* guest memory size */
    uint64_t rss_kb;                 /* resident guest memory */
    uint64_t pss_kb;                 /* its proportional share (pages shared by N count 1/N) */
    uint64_t bytes_copied;           /* copy mode: bytes read */
    /* REAP */
    bool reap_recorded;              /* this restore recorded the working set */
    bool reap_prefetched;            /* this restore prefetched it */
    uint64_t ws_pages, ws_regions, ws_bytes;
    uint64_t ws_read_ns, ws_install_ns;
    uint64_t ws_huge_chunks;         /* 2 MiB chunks prefetched as huge pages (THAW_REAP_HUGE) */
    uint64_t ws_huge_ws_pages;       /* working-set pages inside them */
    uint64_t ws_huge_data_pages;     /* memory-file pages read for them */
    uint64_t ws_huge_ns;
    int ws_huge_policy;              /* how they were chosen (enum huge_choice) */
    struct reap_costs host_costs;    /* auto: the host's costs they were weighed with (reap_costs.h) */
    uint64_t reap_misses;            /* pages served after a prefetch */
    uint64_t ws_probed;              /* working-set pages withheld to see if the input uses them */
    bool ws_merged;                  /* this restore merged its misses into the working set */
    uint64_t ws_merge_added, ws_merge_dropped, ws_generation;
    char reap_note[640];             /* why no prefetch, why re-recording, ... */
    uint64_t prefault_pages;         /* pages handed to the pre-fault vCPU (host/vmm/prefault_vcpu.h) */
    uint64_t prefault_touched;       /* of them, touched so far */
    uint64_t prefault_ns;            /* its time inside KVM_RUN so far */
    uint64_t prefault_setup_ns;      /* its set-up, on the restore's path */
    char prefault_note[256];         /* why it is off or stopped early ("" if neither) */
    /* the root-filesystem image, if the function has one (thaw/rootfs.h) */
    uint64_t rootfs_bytes;           /* its size (0: no image) */
    uint64_t rootfs_cow_pages;       /* restore: written pages copied back (rootfs.cow) */
    uint64_t rootfs_ws_pages;        /* reap prefetch: image pages read ahead (rootfs.ws) */
    uint64_t rootfs_ws_ns;           /* the time that read-ahead took */
    uint64_t rootfs_cow_ns;          /* the time the copy-back took (read, decode) */
    uint64_t rootfs_cow_bytes, rootfs_ws_bytes; /* rootfs.cow and rootfs.ws read (compressed) */
    uint64_t rootfs_ws_withheld;     /* reap merging: rootfs.ws pages probed, not read ahead */
    bool rootfs_ws_merged;           /* after the first response: rootfs.ws or rootfs.gens rewritten */
    uint64_t rootfs_ws_merge_added, rootfs_ws_merge_dropped, rootfs_ws_generation;
    /* the last sandbox_snapshot */
    uint64_t save_ns;
    uint64_t snapshot_allocated_bytes; /* disk blocks of its memory file */
};

struct sandbox;

/* Boots the function directory to its ready point. */
int sandbox_boot(struct sandbox **out, const char *function_dir, const struct sandbox_options *opt,
                 struct thaw_error *err);

/* Restores the snapshot in snap_dir in the given memory mode (reap: the REAP policy). */
int sandbox_restore(struct sandbox **out, const char *snap_dir, enum mem_mode mode,
                    const struct sandbox_options *opt, struct thaw_error *err);

/* True if snap_dir holds a recorded working set not marked stale: what a share restore
 * maps in (without one it runs as lazy) and a reap restore prefetches (without one it
 * records). A caller that wants share to record first (thaw serve) asks this. */
bool sandbox_has_working_set(const char *snap_dir);

/* Sends one request, returns the response (malloc'd, caller frees). On failure the
 * reason is in err and sandbox_last_failure(); a TIMEOUT, GUEST, WORKER or
 * INTERRUPTED failure leaves the instance dead (only sandbox_destroy remains). */
int sandbox_invoke(struct sandbox *sb, const void *req, size_t len, uint8_t **resp, size_t *resp_len,
                   struct thaw_error *err);

/* Tells the program there are no more requests and runs it to its exit (the instance
 * is then spent: stats say exited and exit_status). Fails if it does not exit. */
int sandbox_shutdown(struct sandbox *sb, struct thaw_error *err);

/* Saves a ready instance as a snapshot into dir (atomically). */
int sandbox_snapshot(struct sandbox *sb, const char *dir, struct thaw_error *err);

int sandbox_stats(struct sandbox *sb, struct sandbox_stats *st, struct thaw_error *err);
/* The same without sampling anything: no resident memory (rss_kb, pss_kb 0), no pager
 * query (pages_served, zero_pages as last known), no question to a worker (its numbers
 * as of its creation or its last stats). Cheap enough for a cold start's critical path. */
int sandbox_stats_light(struct sandbox *sb, struct sandbox_stats *st, struct thaw_error *err);
/* True if the instance is known to be dead without asking it: after a failure that
 * killed it, or (in a worker) when its process has exited or hung up while idle. Then
 * the instance is dead (SANDBOX_FAIL_WORKER) and only sandbox_destroy remains. Cheap:
 * a pool checks an idle instance with it before handing it a request. */
bool sandbox_gone(struct sandbox *sb);
enum sandbox_failure sandbox_last_failure(const struct sandbox *sb);

/* Tears the instance down (the worker process too) and frees it. NULL is fine. */
void sandbox_destroy(struct sandbox *sb);

/* Installs SIGINT/SIGTERM handlers that stop every running instance of this process
 * (their calls fail with SANDBOX_FAIL_INTERRUPTED, and so does every later boot,
 * restore or invocation) so the caller can clean up and exit. A second signal kills
 * the process the default way. */
int sandbox_handle_signals(struct thaw_error *err);
/* The signal that stopped this process's instances, or 0. */
int sandbox_interrupted(void);

/* Spares, for a long-running caller (thaw serve). Restores in this process keep `count`
 * (at most SANDBOX_SPARES_MAX) empty VMs made ahead (vmm/vm_pool.h), made good in the
 * background after each take, so a cold start skips the VM creation. With workers, also
 * `count` worker processes started ahead, each exec'd in its namespaces with its empty VM
 * made and waiting for its instance: a worker boot or restore takes one (skipping the
 * process start and the VM creation) and a background thread starts the next; a spare
 * that died is reaped and replaced. 0 (the default) ends the spares (no child of ours is
 * left when it returns) and goes back to one VM made per restore while its state is read. */
#define SANDBOX_SPARES_MAX 32
int sandbox_keep_spares(unsigned count, bool workers, struct thaw_error *err);
struct sandbox_spare_stats {
    unsigned target, ready;     /* spare workers wanted and waiting now */
    unsigned vms_ready;         /* VMs made ahead in this process */
    uint64_t taken;             /* worker creations that took a spare */
    uint64_t missed;            /* ... that found none and started their own */
    uint64_t started, died;     /* spares started; found dead before use */
};
void sandbox_spare_stats(struct sandbox_spare_stats *st);

/* The worker process's side (`thaw worker --fd N`, started by this layer for
 * sandbox_options.worker): serves one instance over fd (worker_proto.h); one that has
 * no request waiting when it starts (a spare) makes its VM while it waits. Returns the
 * process's exit status. */
int sandbox_worker_main(int fd);

#endif
