/* A KVM virtual machine: the VM and vCPU file descriptors and guest memory. This file
 * knows KVM, not thaw's guest: x86_boot.h lays out the guest, instance.h runs it.
 * Every ioctl failure names the ioctl. */
#ifndef THAW_HOST_VM_H
#define THAW_HOST_VM_H

#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>

#include "host/util/error.h"
#include "host/vmm/guest_mem.h"
#include "host/vmm/kvm_stats.h"

#define THAW_MAX_VCPUS 2 /* the guest's one, and a restore's pre-fault vCPU (prefault_vcpu.h) */

struct vcpu {
    int fd;
    int index;
    struct kvm_run *run;
    size_t run_size;
    struct kvm_stats stats; /* vCPU 0's KVM counters (kvm_stats.h); fd -1 for the others */
};

struct vm {
    int kvm_fd;
    int vm_fd;
    struct guest_mem mem;
    struct vcpu vcpus[THAW_MAX_VCPUS];
    unsigned nvcpus;
    uint64_t tsc_khz;
    struct kvm_cpuid2 *cpuid; /* what KVM supports, given to every vCPU */
};

/* Opens /dev/kvm and creates an empty VM. */
int vm_create(struct vm *vm, struct thaw_error *err);
/* Makes [host, host + size) guest-physical memory from address 0 (slot 0). The caller
 * owns the mapping; it must outlive the VM. */
int vm_set_memory(struct vm *vm, void *host, uint64_t size, struct thaw_error *err);
/* A second memory slot (slot 1) at gpa: memory that is not RAM (the root-filesystem
 * image). Hypercalls never reach it (vm->mem stays the RAM slot). */
int vm_add_memory(struct vm *vm, uint64_t gpa, void *host, uint64_t size, struct thaw_error *err);
/* Creates the next vCPU and gives it KVM's supported CPUID. */
int vm_add_vcpu(struct vm *vm, struct thaw_error *err);
/* Creates vCPU `index` into *v (KVM's CPUID, its kvm_run area; its TSC rate in
 * *tsc_khz) without changing *vm: a thread of its own may make one while vCPU 0 runs.
 * vcpu_close undoes it (safe on a closed one: fd -1). */
int vcpu_make(const struct vm *vm, unsigned index, struct vcpu *v, uint64_t *tsc_khz, struct thaw_error *err);
void vcpu_close(struct vcpu *v);
/* Closes the vCPUs and the VM (not the guest memory). Safe on a partly built VM. */
void vm_destroy(struct vm *vm);

/* ioctl wrapper that names the request on failure. */
int vm_ioctl(int fd, unsigned long req, const char *name, void *arg, struct thaw_error *err);
#define VM_IOCTL(fd, req, arg, err) vm_ioctl((fd), (req), #req, (arg), (err))

#endif
