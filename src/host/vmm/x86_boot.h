/* The x86-64 machine state a thaw guest starts in: identity-mapped long mode with
 * 2 MiB pages, a GDT with ring-3 segments, a TSS, an IDT pointing at the guest
 * kernel's ring-0 exception stubs, and SYSCALL MSRs pointing at its ring-0 trampoline.
 * The vCPU starts directly at CPL3: under nested PVM ring-0 code is emulated, so the
 * monitor does what a ring-0 boot path would (see docs/architecture.md). */
#ifndef THAW_HOST_X86_BOOT_H
#define THAW_HOST_X86_BOOT_H

#include "host/vmm/vm.h"
#include "thaw/abi.h"

/* Reads and validates the kernel header at THAW_GPA_KERNEL (the kernel must be loaded). */
int x86_read_kernel_header(const struct guest_mem *mem, struct thaw_kernel_header *out,
                           struct thaw_error *err);
/* Writes GDT, TSS, IDT and page tables into guest memory. */
/* map_size: bytes of guest-physical space to identity-map (RAM plus any image above
 * it), a multiple of 2 MiB, at most THAW_MAX_PD_PAGES GiB. */
int x86_write_tables(struct guest_mem *mem, uint64_t map_size, const struct thaw_kernel_header *kh,
                     struct thaw_error *err);
/* The GDT's eight descriptors (ring-0 and ring-3 code and data, the TSS at tss_gpa)
 * at gdt, and that TSS at tss, its RSP0 and IST1 at stack_top. */
void x86_write_gdt_tss(uint64_t *gdt, uint8_t *tss, uint64_t tss_gpa, uint64_t stack_top);
/* An IDT whose 32 exception gates go to ring-0 stubs at stubs + vector * stride, each
 * on IST1 (256 gates' worth of bytes written). */
void x86_write_idt(uint64_t *idt, uint64_t stubs, uint64_t stride);
/* Segment and control registers for CPL3 code in the guest's identity map (CR3 at
 * THAW_GPA_PML4), with the GDT, IDT and TSS at the given guest addresses. */
int x86_cpl3_sregs(struct vm *vm, struct vcpu *v, uint64_t gdt, uint64_t idt, uint64_t tss, struct kvm_sregs *out,
                   struct thaw_error *err);
/* Sets the vCPU's registers, segments, control registers, MSRs, FPU and XCR0 so it
 * starts at kh->cpl3_entry with rdi = boot_info_gpa. */
int x86_init_vcpu(struct vm *vm, struct vcpu *v, const struct thaw_kernel_header *kh,
                  uint64_t boot_info_gpa, struct thaw_error *err);
/* If gva is a guard page the guest kernel unmapped below a thread's stack (its 4 KiB
 * page table entry not present and tagged THAW_GUARD_PTE_TAG, abi.h), true with the
 * thread's id. Walks the guest's page directory as the guest left it (guest memory:
 * every entry is checked before it is followed). */
bool x86_guard_page_owner(const struct guest_mem *mem, uint64_t gva, uint32_t *tid);
/* Reads the guest's TSC (MSR_IA32_TSC). */
int x86_read_tsc(struct vcpu *v, uint64_t *tsc, struct thaw_error *err);

#endif
