#include "host/vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "host/vmm/kvm_cpuid.h"

int vm_ioctl(int fd, unsigned long req, const char *name, void *arg, struct thaw_error *err)
{
    int r;
    do {
        r = ioctl(fd, req, arg);
    } while (r < 0 && errno == EINTR);
    if (r < 0)
        return thaw_fail_errno(err, "%s failed", name);
    return r;
}

int vm_create(struct vm *vm, struct thaw_error *err)
{
    memset(vm, 0, sizeof *vm);
    vm->kvm_fd = vm->vm_fd = -1;
    vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (vm->kvm_fd < 0)
        return thaw_fail_errno(err, "cannot open /dev/kvm (KVM needs root or the kvm group)");
    int version = VM_IOCTL(vm->kvm_fd, KVM_GET_API_VERSION, NULL, err);
    if (version < 0)
        goto fail;
    if (version != KVM_API_VERSION) {
        thaw_fail(err, "KVM API version %d, expected %d", version, KVM_API_VERSION);
        goto fail;
    }
    vm->vm_fd = VM_IOCTL(vm->kvm_fd, KVM_CREATE_VM, 0, err);
    if (vm->vm_fd < 0)
        goto fail;
    (void)fcntl(vm->vm_fd, F_SETFD, FD_CLOEXEC);

    vm->cpuid = calloc(1, sizeof *vm->cpuid + (size_t)KVM_CPUID_MAX * sizeof(struct kvm_cpuid_entry2));
    if (!vm->cpuid) {
        thaw_fail(err, "out of memory");
        goto fail;
    }
    bool cached;
    if (kvm_cpuid_supported(vm->kvm_fd, vm->cpuid, &cached, err) < 0)
        goto fail;
    return 0;
fail:
    vm_destroy(vm);
    return -1;
}

int vm_set_memory(struct vm *vm, void *host, uint64_t size, struct thaw_error *err)
{
    struct kvm_userspace_memory_region region = {
        .slot = 0,
        .guest_phys_addr = 0,
        .memory_size = size,
        .userspace_addr = (uint64_t)(uintptr_t)host,
    };
    if (VM_IOCTL(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region, err) < 0)
        return -1;
    vm->mem.host = host;
    vm->mem.size = size;
    return 0;
}

int vm_add_memory(struct vm *vm, uint64_t gpa, void *host, uint64_t size, struct thaw_error *err)
{
    struct kvm_userspace_memory_region region = {
        .slot = 1,
        .guest_phys_addr = gpa,
        .memory_size = size,
        .userspace_addr = (uint64_t)(uintptr_t)host,
    };
    return VM_IOCTL(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &region, err) < 0 ? -1 : 0;
}

int vcpu_make(const struct vm *vm, unsigned index, struct vcpu *v, uint64_t *tsc_khz, struct thaw_error *err)
{
    memset(v, 0, sizeof *v);
    v->index = (int)index;
    v->stats.fd = -1;
    v->fd = VM_IOCTL(vm->vm_fd, KVM_CREATE_VCPU, (void *)(uintptr_t)index, err);
    if (v->fd < 0)
        return -1;
    (void)fcntl(v->fd, F_SETFD, FD_CLOEXEC);
    int size = VM_IOCTL(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, NULL, err);
    if (size < (int)sizeof(struct kvm_run))
        goto fail;
    v->run_size = (size_t)size;
    v->run = mmap(NULL, v->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
    if (v->run == MAP_FAILED) {
        v->run = NULL;
        thaw_fail_errno(err, "mmap of the kvm_run area failed");
        goto fail;
    }
    if (VM_IOCTL(v->fd, KVM_SET_CPUID2, vm->cpuid, err) < 0)
        goto fail;
    int khz = VM_IOCTL(v->fd, KVM_GET_TSC_KHZ, NULL, err);
    if (khz <= 0)
        goto fail;
    *tsc_khz = (uint64_t)khz;
    /* The guest's vCPU counts what its invocations cost inside KVM; without the stats
     * fd (an older kernel) they are reported as unavailable, nothing fails. */
    if (index != 0 || kvm_stats_open(v->fd, &v->stats) < 0)
        v->stats.fd = -1;
    return 0;
fail:
    vcpu_close(v);
    return -1;
}

void vcpu_close(struct vcpu *v)
{
    if (v->run)
        munmap(v->run, v->run_size);
    kvm_stats_close(&v->stats);
    if (v->fd >= 0)
        close(v->fd);
    memset(v, 0, sizeof *v);
    v->fd = v->stats.fd = -1;
}

int vm_add_vcpu(struct vm *vm, struct thaw_error *err)
{
    if (vm->nvcpus >= THAW_MAX_VCPUS)
        return thaw_fail(err, "at most %d vCPUs", THAW_MAX_VCPUS);
    if (vcpu_make(vm, vm->nvcpus, &vm->vcpus[vm->nvcpus], &vm->tsc_khz, err) < 0)
        return -1;
    vm->nvcpus++;
    return 0;
}

void vm_destroy(struct vm *vm)
{
    for (unsigned i = 0; i < vm->nvcpus; i++)
        vcpu_close(&vm->vcpus[i]);
    vm->nvcpus = 0;
    if (vm->vm_fd >= 0)
        close(vm->vm_fd);
    if (vm->kvm_fd >= 0)
        close(vm->kvm_fd);
    vm->vm_fd = vm->kvm_fd = -1;
    free(vm->cpuid);
    vm->cpuid = NULL;
}
