/* A pool of empty VMs made ahead of time: each has its VM, one vCPU with KVM's CPUID and
 * its kvm_run area, and no memory. Creating them costs milliseconds here (KVM_CREATE_VM,
 * KVM_CREATE_VCPU and the CPUID query, all emulated-expensive under nested KVM); taking one
 * from the pool takes microseconds, which moves VM creation off a restore's critical path.
 * A long-running worker keeps a pool and refills it between restores. Thread-safe. */
#ifndef THAW_HOST_VM_POOL_H
#define THAW_HOST_VM_POOL_H

#include <pthread.h>
#include <stddef.h>

#include "host/util/error.h"
#include "host/vmm/vm.h"

#define VM_POOL_MAX 64

struct vm_pool {
    pthread_mutex_t lock;
    struct vm vms[VM_POOL_MAX];
    unsigned count;  /* ready VMs in vms[0..count) */
    unsigned target; /* what vm_pool_refill tops up to */
    unsigned long long taken, created_on_demand;
};

/* Makes `target` (<= VM_POOL_MAX) empty VMs now. */
int vm_pool_init(struct vm_pool *p, unsigned target, struct thaw_error *err);
/* Moves a ready VM into *out (made on the spot if the pool is empty). */
int vm_pool_take(struct vm_pool *p, struct vm *out, struct thaw_error *err);
/* Tops the pool up to its target (call off the critical path, e.g. after a restore). */
int vm_pool_refill(struct vm_pool *p, struct thaw_error *err);
/* Destroys the VMs still in the pool. */
void vm_pool_destroy(struct vm_pool *p);

#endif
