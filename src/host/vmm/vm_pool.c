#include "host/vmm/vm_pool.h"

#include <string.h>

#include "host/util/thread_spread.h"

/* A fresh empty VM with the guest's vCPU and, made ahead (both_vcpus), the one a REAP
 * restore's pre-fault vCPU takes (prefault_vcpu.h). A filler for a process that
 * restores once runs on that restore's path, which waits for its VM: there the
 * pre-fault vCPU is left to its own thread, which makes it while the guest runs (a
 * vCPU takes 0.1-0.3 ms to make here: docs/benchmarks-topics.md, KVM's first VM). */
static int make_vm(struct vm *vm, bool both_vcpus, struct thaw_error *err)
{
    if (vm_create(vm, err) < 0)
        return -1;
    if (vm_add_vcpu(vm, err) < 0 || (both_vcpus && vm_add_vcpu(vm, err) < 0)) {
        vm_destroy(vm);
        return -1;
    }
    return 0;
}

void vm_pool_init_empty(struct vm_pool *p, unsigned target)
{
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->changed, NULL);
    p->target = target < VM_POOL_MAX ? target : VM_POOL_MAX;
}

int vm_pool_init(struct vm_pool *p, unsigned target, struct thaw_error *err)
{
    vm_pool_init_empty(p, target);
    if (vm_pool_refill(p, err) < 0) {
        vm_pool_destroy(p);
        return -1;
    }
    return 0;
}

/* Joins a finished filler; called with the lock held, drops it while joining. */
static void join_filled(struct vm_pool *p)
{
    if (p->filler != VM_POOL_FILLED)
        return;
    p->filler = VM_POOL_IDLE;
    pthread_t tid = p->filler_tid;
    pthread_mutex_unlock(&p->lock);
    pthread_join(tid, NULL);
    pthread_mutex_lock(&p->lock);
}

static void *filler_main(void *arg)
{
    struct vm_pool *p = arg;
    pthread_mutex_lock(&p->lock);
    unsigned missing = p->count < p->target ? p->target - p->count : 0;
    pthread_mutex_unlock(&p->lock);
    /* Exactly the VMs missing now: a VM taken meanwhile is not made again, so a process
     * that takes one VM is left with no thread making more. */
    for (unsigned i = 0; i < missing; i++) {
        struct vm vm;
        struct thaw_error e;
        pthread_mutex_lock(&p->lock);
        bool ahead = p->keep_full;
        pthread_mutex_unlock(&p->lock);
        int rc = make_vm(&vm, ahead, &e);
        pthread_mutex_lock(&p->lock);
        if (rc < 0) {
            p->filler_err = e;
            missing = i + 1; /* stop: the takers make their own */
        } else if (p->count < VM_POOL_MAX) {
            p->vms[p->count++] = vm;
            p->created_by_filler++;
            rc = 1;
        }
        if (i + 1 == missing && p->keep_full && rc == 1 && p->count < p->target)
            missing += p->target - p->count; /* taken meanwhile: make those too */
        if (i + 1 == missing)
            p->filler = VM_POOL_FILLED;
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->lock);
        if (rc == 0)
            vm_destroy(&vm);
    }
    if (missing == 0) {
        pthread_mutex_lock(&p->lock);
        p->filler = VM_POOL_FILLED;
        pthread_cond_broadcast(&p->changed);
        pthread_mutex_unlock(&p->lock);
    }
    return NULL;
}

int vm_pool_fill_async(struct vm_pool *p, struct thaw_error *err)
{
    pthread_mutex_lock(&p->lock);
    join_filled(p);
    int rc = 0;
    if (p->filler == VM_POOL_IDLE && p->count < p->target) {
        p->filler = VM_POOL_FILLING;
        if (thread_start_spread(&p->filler_tid, filler_main, p, SPREAD_START) != 0) {
            p->filler = VM_POOL_IDLE;
            rc = thaw_fail(err, "cannot start the VM pool's filler thread");
        }
    }
    pthread_mutex_unlock(&p->lock);
    return rc;
}

int vm_pool_take(struct vm_pool *p, struct vm *out, struct thaw_error *err)
{
    pthread_mutex_lock(&p->lock);
    p->taken++;
    while (p->count == 0 && p->filler == VM_POOL_FILLING)
        pthread_cond_wait(&p->changed, &p->lock);
    bool got = p->count > 0;
    if (got) {
        *out = p->vms[--p->count];
        memset(&p->vms[p->count], 0, sizeof p->vms[0]);
    } else {
        p->created_on_demand++;
    }
    join_filled(p);
    pthread_mutex_unlock(&p->lock);
    return got ? 0 : make_vm(out, false, err);
}

int vm_pool_refill(struct vm_pool *p, struct thaw_error *err)
{
    for (;;) {
        pthread_mutex_lock(&p->lock);
        int full = p->count >= p->target;
        pthread_mutex_unlock(&p->lock);
        if (full)
            return 0;
        struct vm vm;
        if (make_vm(&vm, true, err) < 0)
            return -1;
        pthread_mutex_lock(&p->lock);
        if (p->count < p->target) {
            p->vms[p->count++] = vm;
            pthread_cond_broadcast(&p->changed);
            pthread_mutex_unlock(&p->lock);
        } else { /* another thread filled it meanwhile */
            pthread_mutex_unlock(&p->lock);
            vm_destroy(&vm);
        }
    }
}

void vm_pool_set_target(struct vm_pool *p, unsigned target, bool keep_full)
{
    struct vm extra[VM_POOL_MAX];
    unsigned n = 0;
    pthread_mutex_lock(&p->lock);
    p->target = target < VM_POOL_MAX ? target : VM_POOL_MAX;
    p->keep_full = keep_full;
    while (p->count > p->target) {
        extra[n++] = p->vms[--p->count];
        memset(&p->vms[p->count], 0, sizeof p->vms[0]);
    }
    pthread_mutex_unlock(&p->lock);
    for (unsigned i = 0; i < n; i++)
        vm_destroy(&extra[i]);
}

unsigned vm_pool_ready(struct vm_pool *p)
{
    pthread_mutex_lock(&p->lock);
    unsigned n = p->count;
    pthread_mutex_unlock(&p->lock);
    return n;
}

void vm_pool_destroy(struct vm_pool *p)
{
    pthread_mutex_lock(&p->lock);
    while (p->filler == VM_POOL_FILLING)
        pthread_cond_wait(&p->changed, &p->lock);
    join_filled(p);
    for (unsigned i = 0; i < p->count; i++)
        vm_destroy(&p->vms[i]);
    p->count = 0;
    pthread_mutex_unlock(&p->lock);
    pthread_cond_destroy(&p->changed);
    pthread_mutex_destroy(&p->lock);
}
