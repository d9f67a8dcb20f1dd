#include "host/vmm/vm_pool.h"

#include <string.h>

/* A fresh empty VM with its one vCPU. */
static int make_vm(struct vm *vm, struct thaw_error *err)
{
    if (vm_create(vm, err) < 0)
        return -1;
    if (vm_add_vcpu(vm, err) < 0) {
        vm_destroy(vm);
        return -1;
    }
    return 0;
}

int vm_pool_init(struct vm_pool *p, unsigned target, struct thaw_error *err)
{
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    p->target = target < VM_POOL_MAX ? target : VM_POOL_MAX;
    if (vm_pool_refill(p, err) < 0) {
        vm_pool_destroy(p);
        return -1;
    }
    return 0;
}

int vm_pool_take(struct vm_pool *p, struct vm *out, struct thaw_error *err)
{
    pthread_mutex_lock(&p->lock);
    p->taken++;
    if (p->count) {
        *out = p->vms[--p->count];
        memset(&p->vms[p->count], 0, sizeof p->vms[0]);
        pthread_mutex_unlock(&p->lock);
        return 0;
    }
    p->created_on_demand++;
    pthread_mutex_unlock(&p->lock);
    return make_vm(out, err);
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
        if (make_vm(&vm, err) < 0)
            return -1;
        pthread_mutex_lock(&p->lock);
        if (p->count < p->target) {
            p->vms[p->count++] = vm;
            pthread_mutex_unlock(&p->lock);
        } else { /* another thread filled it meanwhile */
            pthread_mutex_unlock(&p->lock);
            vm_destroy(&vm);
        }
    }
}

void vm_pool_destroy(struct vm_pool *p)
{
    pthread_mutex_lock(&p->lock);
    for (unsigned i = 0; i < p->count; i++)
        vm_destroy(&p->vms[i]);
    p->count = 0;
    pthread_mutex_unlock(&p->lock);
    pthread_mutex_destroy(&p->lock);
}
