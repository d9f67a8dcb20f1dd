/* A pool of empty VMs made ahead of time: each has its VM, its vCPUs with KVM's CPUID
 * and their kvm_run areas, and no memory. VMs made ahead (vm_pool_refill, a filler
 * that keeps the pool full) have two vCPUs, the guest's and the pre-fault vCPU's
 * (prefault_vcpu.h); a one-shot filler's VM, waited for on a restore's path, has the
 * guest's only, and the pre-fault vCPU's thread makes its own. Creating them costs milliseconds here (KVM_CREATE_VM, KVM_CREATE_VCPU and
 * KVM_SET_CPUID2, all emulated-expensive under nested KVM; the CPUID query itself is
 * kept per boot, kvm_cpuid.h); taking one from the pool
 * takes microseconds, which moves VM creation off a restore's critical path. A
 * long-running process keeps a pool and refills it between restores; a process that
 * restores once (a jailed worker, `thaw restore`) starts the pool's filler thread at the
 * start of the restore, so that the VM is made while the state file is read and the
 * memory is set up. Thread-safe. */
#ifndef THAW_HOST_VM_POOL_H
#define THAW_HOST_VM_POOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "host/util/error.h"
#include "host/vmm/vm.h"

#define VM_POOL_MAX 64

enum vm_pool_filler { VM_POOL_IDLE, VM_POOL_FILLING, VM_POOL_FILLED };

struct vm_pool {
    pthread_mutex_t lock;
    pthread_cond_t changed;  /* a VM was added, or the filler finished */
    struct vm vms[VM_POOL_MAX];
    unsigned count;  /* ready VMs in vms[0..count) */
    unsigned target; /* what vm_pool_refill and the filler top up to */
    bool keep_full;  /* the filler makes VMs until the pool is full, takes meanwhile included */
    unsigned long long taken, created_on_demand, created_by_filler;
    /* The filler thread (vm_pool_fill_async): it makes the VMs missing when it starts,
     * then stops; whoever sees VM_POOL_FILLED joins it. */
    enum vm_pool_filler filler;
    pthread_t filler_tid;
    struct thaw_error filler_err;
};

/* Makes `target` (<= VM_POOL_MAX) empty VMs now. */
int vm_pool_init(struct vm_pool *p, unsigned target, struct thaw_error *err);
/* An empty pool that tops up to `target` when asked (vm_pool_fill_async, vm_pool_refill). */
void vm_pool_init_empty(struct vm_pool *p, unsigned target);
/* Starts a thread that tops the pool up to its target in the background (nothing if
 * it is full or a filler runs already). */
int vm_pool_fill_async(struct vm_pool *p, struct thaw_error *err);
/* Moves a ready VM into *out: from the pool, else the filler's next one (waiting for
 * it), else made on the spot. When it returns, a filler with nothing left to make has
 * been joined: a process that restores once has no thread left (the jail follows). */
int vm_pool_take(struct vm_pool *p, struct vm *out, struct thaw_error *err);
/* Tops the pool up to its target in this thread (off the critical path, e.g. after a restore). */
int vm_pool_refill(struct vm_pool *p, struct thaw_error *err);
/* Changes the target (<= VM_POOL_MAX): VMs above a lowered one are destroyed; a raised
 * one is topped up by the next vm_pool_fill_async or vm_pool_refill. keep_full: a filler
 * also makes good the VMs taken while it runs (a long-running process keeping VMs made);
 * otherwise it makes exactly those missing when it starts (a process that restores once
 * is then left with no thread). */
void vm_pool_set_target(struct vm_pool *p, unsigned target, bool keep_full);
/* VMs ready now. */
unsigned vm_pool_ready(struct vm_pool *p);
/* Joins a filler and destroys the VMs still in the pool. */
void vm_pool_destroy(struct vm_pool *p);

#endif
