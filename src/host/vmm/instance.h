/* A function instance: one microVM running the guest kernel and one program. The vCPU
 * runs in the calling thread; instance_boot returns at the program's ready point (its
 * first read of /dev/invoke) and instance_invoke runs one request to its response.
 * No global state: any number of instances can coexist in a process. */
#ifndef THAW_HOST_INSTANCE_H
#define THAW_HOST_INSTANCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host/util/error.h"
#include "host/vmm/hypercall.h"
#include "host/vmm/rootfs_map.h"
#include "host/vmm/vcpu_kick.h"
#include "host/vmm/vm.h"

/* Where guest output goes when set (else console_fd): stream 1 stdout, 2 stderr,
 * 3 the guest kernel's log; data is not NUL-terminated and may hold partial lines. */
typedef void (*instance_console_fn)(void *ctx, unsigned stream, const uint8_t *data, size_t len);

struct instance_config {
    const uint8_t *kernel;      /* guest kernel ELF */
    size_t kernel_size;
    const uint8_t *program;     /* static x86-64 ELF */
    size_t program_size;
    const char *const *argv;    /* argv[0] included */
    size_t argc;
    const char *const *envp;
    size_t envc;
    const uint8_t *archive;     /* cpio newc or NULL */
    size_t archive_size;
    const char *rootfs_path;    /* root-filesystem image (thaw/rootfs.h) or NULL */
    const char *cwd;            /* the program's working directory in the guest, NULL: "/" */
    uint64_t mem_size;          /* bytes, multiple of 2 MiB */
    uint64_t max_request;       /* largest request accepted, bytes */
    int console_fd;             /* guest stdout and stderr go here, unless console is set */
    instance_console_fn console;
    void *console_ctx;
    bool kernel_log;            /* show the guest kernel's log lines */
    bool trace_syscalls;        /* guest kernel logs every syscall */
    uint64_t boot_timeout_ns;   /* boot to the ready point; 0: none */
    /* Called once the VM is built, before its first instruction runs (a worker enters
     * its jail here); failing stops the boot. NULL: nothing. */
    int (*before_run)(void *ctx, struct thaw_error *err);
    void *before_run_ctx;
};

enum instance_state { INSTANCE_NEW, INSTANCE_READY, INSTANCE_EXITED, INSTANCE_FAILED };

/* Why a FAILED instance stopped, when it was not the guest's doing. */
enum instance_stop { INSTANCE_STOP_NONE, INSTANCE_STOP_TIMEOUT, INSTANCE_STOP_INTERRUPTED, INSTANCE_STOP_KICKED };

struct instance_stats {
    uint64_t vm_exits;
    uint64_t hypercalls;
    uint64_t discarded_bytes;
    uint64_t invocations;
    bool kvm_first_ok;               /* kvm_first was counted (the kernel has stats fds) */
    struct kvm_counters kvm_first;   /* what the first invocation cost inside KVM */
};

/* How guest memory is backed decides how freed pages are dropped (boot: anonymous
 * memory; snapshot restores install their own). Returns 0 or -1. */
struct instance;
typedef int (*instance_discard_fn)(struct instance *inst, uint64_t gpa, uint64_t len, struct thaw_error *err);

struct instance {
    instance_discard_fn discard;
    void *backend;              /* owned by whoever set discard */
    struct vm vm;
    uint8_t *mem;               /* owned mapping of guest memory */
    uint64_t mem_size;
    bool mem_owned;
    struct thaw_kernel_header kernel;
    struct rootfs_map rootfs;   /* the root-filesystem image, if the function has one */
    enum instance_state state;
    struct hypercall pending;   /* the INVOKE_NEXT the guest is blocked in */
    int64_t exit_status;
    int console_fd;
    instance_console_fn console; /* NULL: write to console_fd */
    void *console_ctx;
    bool kernel_log;
    uint64_t max_request;
    struct instance_stats stats;
    char failure[512];          /* why the guest stopped, when state is FAILED */
    bool response_lost;         /* the last response could not be kept (guest out of memory) */
    uint64_t run_timeout_ns;    /* limit of each instance_run (one invocation); 0: none */
    enum instance_stop stopped_by;
    /* instance_kick from another thread (a dead pager): stopped_by KICKED, failure = why */
    struct vcpu_kicker kicker;
};

/* Creates the microVM, loads kernel, program and archive, and runs the guest to its
 * ready point. On failure the instance is destroyed and err says why. */
int instance_boot(struct instance *inst, const struct instance_config *cfg, struct thaw_error *err);

/* Sends one request and runs the guest until it asks for the next one. *resp is a
 * malloc'd copy of the response (the caller frees it). */
int instance_invoke(struct instance *inst, const void *req, size_t req_len, uint8_t **resp,
                    size_t *resp_len, struct thaw_error *err);

/* Tells the program there are no more requests and runs it to its exit. */
int instance_shutdown(struct instance *inst, struct thaw_error *err);
/* Before a snapshot of an instance that has served requests: the guest gives the freed
 * memory it keeps for reuse back (THAW_INVOKE_TRIM, abi.h) and waits again. 1 when it
 * did, 0 when its kernel does not say it knows the flag (nothing asked), -1 on error. */
int instance_trim(struct instance *inst, struct thaw_error *err);

void instance_destroy(struct instance *inst);

/* Runs the vCPU until the guest blocks in INVOKE_NEXT (returns 0, state READY), exits
 * (0, EXITED) or fails (-1, FAILED). Shared with snapshot restore. A run longer than
 * run_timeout_ns, or one that vcpu_stop_all() stops (vcpu_kick.h), is kicked out of
 * KVM_RUN and fails with stopped_by saying why; the instance is then unusable. */
int instance_run(struct instance *inst, uint8_t **resp, size_t *resp_len, struct thaw_error *err);

/* From any thread: stops the instance's vCPU now (or its next run) and fails that run
 * with why, as INSTANCE_STOP_KICKED. A response computed after the kick is dropped:
 * whatever made the kick necessary (a pager gone) may have spoilt it. */
void instance_kick(struct instance *inst, const char *why);

#endif
