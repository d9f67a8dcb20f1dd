#include "host/vmm/x86_boot.h"

#include <string.h>

#define PTE_P 0x1ull
#define PTE_RW 0x2ull
#define PTE_US 0x4ull
#define PTE_PS 0x80ull

#define CR0_PE (1u << 0)
#define CR0_MP (1u << 1)
#define CR0_ET (1u << 4)
#define CR0_NE (1u << 5)
#define CR0_WP (1u << 16)
#define CR0_AM (1u << 18)
#define CR0_PG (1u << 31)
#define CR4_PAE (1u << 5)
#define CR4_OSFXSR (1u << 9)
#define CR4_OSXMMEXCPT (1u << 10)
#define CR4_FSGSBASE (1u << 16)
#define CR4_OSXSAVE (1u << 18)
#define EFER_SCE (1u << 0)
#define EFER_LME (1u << 8)
#define EFER_LMA (1u << 10)

#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_CSTAR 0xc0000083
#define MSR_SFMASK 0xc0000084
#define MSR_IA32_TSC 0x10
#define MSR_IA32_MISC_ENABLE 0x1a0
#define MSR_IA32_CR_PAT 0x277

#define RFLAGS_RESERVED 0x2ull

#define TSS_OFFSET 0x800 /* inside the GDT page */

int x86_read_kernel_header(const struct guest_mem *mem, struct thaw_kernel_header *out,
                           struct thaw_error *err)
{
    const struct thaw_kernel_header *kh = GUEST_PTR(mem, THAW_GPA_KERNEL, struct thaw_kernel_header);
    if (!kh)
        return thaw_fail(err, "guest memory too small for the kernel");
    *out = *kh;
    if (out->magic != THAW_KERNEL_MAGIC)
        return thaw_fail(err, "guest kernel header: bad magic %#x", out->magic);
    if (out->abi_version != THAW_ABI_VERSION)
        return thaw_fail(err, "guest kernel ABI version %u, monitor speaks %u", out->abi_version,
                         THAW_ABI_VERSION);
    uint64_t addrs[] = {out->cpl3_entry, out->boot_stack_top, out->syscall_entry_r0,
                        out->exception_stubs_r0, out->ring0_stack_top, out->hypercall_ud2,
                        out->hypercall_out};
    for (size_t i = 0; i < sizeof addrs / sizeof addrs[0]; i++)
        if (addrs[i] < THAW_GPA_KERNEL || addrs[i] > out->image_end)
            return thaw_fail(err, "guest kernel header: address %#llx outside the kernel",
                             (unsigned long long)addrs[i]);
    if (out->image_end > THAW_KERNEL_MAX_END || out->exception_stub_stride == 0 ||
        out->exception_stub_stride > 64)
        return thaw_fail(err, "guest kernel header: bad image end or stub stride");
    return 0;
}

static uint64_t seg_desc(uint64_t flags_access)
{
    /* base 0, limit 0xfffff (ignored in long mode except for data granularity). */
    return 0x000f00000000ffffull | flags_access;
}

void x86_write_gdt_tss(uint64_t *gdt, uint8_t *tss, uint64_t tss_gpa, uint64_t stack_top)
{
    /* GDT: the user segments sit where STAR/SYSCALL expect them (abi.h). */
    memset(gdt, 0, 8 * 8);
    gdt[THAW_SEL_KCODE / 8] = seg_desc(0x00a09b0000000000ull);        /* L, P, DPL0, code */
    gdt[THAW_SEL_KDATA / 8] = seg_desc(0x00c0930000000000ull);        /* P, DPL0, data */
    gdt[0x18 / 8] = seg_desc(0x00c0fb0000000000ull);                  /* 32-bit user code (unused) */
    gdt[(THAW_SEL_UDATA & ~3) / 8] = seg_desc(0x00c0f30000000000ull); /* P, DPL3, data */
    gdt[(THAW_SEL_UCODE & ~3) / 8] = seg_desc(0x00a0fb0000000000ull); /* L, P, DPL3, code */
    gdt[THAW_SEL_TSS / 8] = 0x67 | ((tss_gpa & 0xffffff) << 16) | (0x89ull << 40) | ((tss_gpa >> 24 & 0xff) << 56);
    gdt[THAW_SEL_TSS / 8 + 1] = tss_gpa >> 32;
    /* TSS: RSP0 and IST1 both point at the ring-0 stack. Every IDT gate uses IST1, so
     * even a fault inside a ring-0 trampoline lands on a known-good stack. */
    memset(tss, 0, 0x68);
    memcpy(tss + 4, &stack_top, 8);    /* RSP0 */
    memcpy(tss + 0x24, &stack_top, 8); /* IST1 */
    uint16_t iomap = 0x68;             /* no I/O bitmap: IOPL decides */
    memcpy(tss + 0x66, &iomap, 2);
}

void x86_write_idt(uint64_t *idt, uint64_t stubs, uint64_t stride)
{
    /* Exceptions 0-31 go to the ring-0 stubs; everything else is absent. */
    memset(idt, 0, 256 * 16);
    for (uint64_t v = 0; v < 32; v++) {
        uint64_t off = stubs + v * stride;
        idt[2 * v] = (off & 0xffff) | ((uint64_t)THAW_SEL_KCODE << 16) | (1ull << 32) /* IST1 */ |
                     (0x8eull << 40) /* P, DPL0, 64-bit interrupt gate */ | ((off >> 16 & 0xffff) << 48);
        idt[2 * v + 1] = off >> 32;
    }
}

int x86_write_tables(struct guest_mem *mem, uint64_t map_size, const struct thaw_kernel_header *kh,
                     struct thaw_error *err)
{
    if (map_size % THAW_HUGE_PAGE_SIZE || map_size > (uint64_t)THAW_MAX_PD_PAGES << 30 || map_size < mem->size)
        return thaw_fail(err, "guest memory size must be a multiple of 2 MiB, at most %u GiB",
                         THAW_MAX_PD_PAGES);
    uint64_t *gdt = guest_mem_ptr(mem, THAW_GPA_GDT, 0x1000);
    uint64_t *idt = guest_mem_ptr(mem, THAW_GPA_IDT, 0x1000);
    uint64_t *pml4 = guest_mem_ptr(mem, THAW_GPA_PML4, 0x1000);
    uint64_t *pdpt = guest_mem_ptr(mem, THAW_GPA_PDPT, 0x1000);
    uint64_t *pd = guest_mem_ptr(mem, THAW_GPA_PD, 0x1000ull * THAW_MAX_PD_PAGES);
    uint64_t *pt0 = guest_mem_ptr(mem, THAW_GPA_PT0, 0x1000);
    if (!gdt || !idt || !pml4 || !pdpt || !pd || !pt0)
        return thaw_fail(err, "guest memory too small for the boot tables");

    memset(gdt, 0, 0x1000);
    x86_write_gdt_tss(gdt, (uint8_t *)gdt + TSS_OFFSET, THAW_GPA_GDT + TSS_OFFSET, kh->ring0_stack_top);
    x86_write_idt(idt, kh->exception_stubs_r0, kh->exception_stub_stride);

    /* Page tables: identity map, 2 MiB pages, except the first 2 MiB in 4 KiB pages
     * with page 0 left unmapped so NULL dereferences fault. */
    memset(pml4, 0, 0x1000);
    memset(pdpt, 0, 0x1000);
    pml4[0] = THAW_GPA_PDPT | PTE_P | PTE_RW | PTE_US;
    uint64_t huge_pages = map_size / THAW_HUGE_PAGE_SIZE;
    uint64_t pd_pages = (huge_pages + 511) / 512;
    memset(pd, 0, 0x1000 * THAW_MAX_PD_PAGES);
    for (uint64_t i = 0; i < pd_pages; i++)
        pdpt[i] = (THAW_GPA_PD + i * 0x1000) | PTE_P | PTE_RW | PTE_US;
    for (uint64_t i = 0; i < huge_pages; i++)
        pd[i] = (i * THAW_HUGE_PAGE_SIZE) | PTE_P | PTE_RW | PTE_US | PTE_PS;
    pd[0] = THAW_GPA_PT0 | PTE_P | PTE_RW | PTE_US;
    /* The stack guard: the 2 MiB page below the stack is not mapped (abi.h). */
    pd[(mem->size - THAW_STACK_SIZE - THAW_STACK_GUARD_SIZE) / THAW_HUGE_PAGE_SIZE] = 0;
    pt0[0] = 0;
    for (uint64_t i = 1; i < 512; i++)
        pt0[i] = (i * THAW_PAGE_SIZE) | PTE_P | PTE_RW | PTE_US;
    return 0;
}

bool x86_guard_page_owner(const struct guest_mem *mem, uint64_t gva, uint32_t *tid)
{
    uint64_t i = gva / THAW_HUGE_PAGE_SIZE;
    if (i >= THAW_MAX_PD_PAGES * 512ull)
        return false;
    const uint64_t *pde = GUEST_PTR(mem, THAW_GPA_PD + i * 8, uint64_t);
    if (!pde || !(*pde & PTE_P) || (*pde & PTE_PS))
        return false;
    const uint64_t *pte = GUEST_PTR(mem, (*pde & 0x000ffffffffff000ull) + (gva / THAW_PAGE_SIZE % 512) * 8, uint64_t);
    if (!pte || (*pte & PTE_P) || (*pte & THAW_GUARD_PTE_TAG_MASK) != THAW_GUARD_PTE_TAG)
        return false;
    *tid = (uint32_t)(*pte >> 32) & 0x7fffffffu;
    return true;
}

static struct kvm_segment segment(uint16_t sel, uint8_t type, uint8_t dpl, int code64)
{
    return (struct kvm_segment){
        .base = 0, .limit = 0xffffffff, .selector = sel, .type = type, .present = 1,
        .dpl = dpl, .db = code64 ? 0 : 1, .s = 1, .l = code64 ? 1 : 0, .g = 1,
    };
}

static uint64_t supported_xcr0(const struct kvm_cpuid2 *cpuid)
{
    for (uint32_t i = 0; i < cpuid->nent; i++)
        if (cpuid->entries[i].function == 0xd && cpuid->entries[i].index == 0)
            /* x87, SSE, AVX and AVX-512 state; AMX (which needs a permission dance) is left out. */
            return (cpuid->entries[i].eax | ((uint64_t)cpuid->entries[i].edx << 32)) & 0xe7;
    return 0x3;
}

static int cpuid_has(const struct kvm_cpuid2 *cpuid, uint32_t fn, uint32_t idx, int reg, int bit)
{
    for (uint32_t i = 0; i < cpuid->nent; i++) {
        const struct kvm_cpuid_entry2 *e = &cpuid->entries[i];
        if (e->function == fn && e->index == idx) {
            uint32_t r = reg == 1 ? e->ebx : reg == 2 ? e->ecx : reg == 3 ? e->edx : e->eax;
            return (r >> bit) & 1;
        }
    }
    return 0;
}

int x86_cpl3_sregs(struct vm *vm, struct vcpu *v, uint64_t gdt, uint64_t idt, uint64_t tss, struct kvm_sregs *out,
                   struct thaw_error *err)
{
    /* Nested PVM offers neither FSGSBASE nor XSAVE to its guests; the guest kernel
     * asks the monitor to set FS/GS bases (THAW_HC_SET_SEGMENT_BASE) instead. */
    int has_fsgsbase = cpuid_has(vm->cpuid, 7, 0, 1, 0);
    int has_xsave = cpuid_has(vm->cpuid, 1, 0, 2, 26);
    struct kvm_sregs sregs;
    if (VM_IOCTL(v->fd, KVM_GET_SREGS, &sregs, err) < 0)
        return -1;
    sregs.cs = segment(THAW_SEL_UCODE, 11, 3, 1);
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = segment(THAW_SEL_UDATA, 3, 3, 0);
    sregs.tr = (struct kvm_segment){.base = tss, .limit = 0x67, .selector = THAW_SEL_TSS, .type = 11, .present = 1};
    sregs.ldt = (struct kvm_segment){.type = 2, .present = 1, .unusable = 1};
    sregs.gdt.base = gdt;
    sregs.gdt.limit = 8 * 8 - 1;
    sregs.idt.base = idt;
    sregs.idt.limit = 32 * 16 - 1;
    sregs.cr0 = CR0_PE | CR0_MP | CR0_ET | CR0_NE | CR0_WP | CR0_AM | CR0_PG;
    sregs.cr3 = THAW_GPA_PML4;
    sregs.cr4 = CR4_PAE | CR4_OSFXSR | CR4_OSXMMEXCPT | (has_fsgsbase ? CR4_FSGSBASE : 0) | (has_xsave ? CR4_OSXSAVE : 0);
    sregs.efer = EFER_SCE | EFER_LME | EFER_LMA;
    *out = sregs;
    return 0;
}

int x86_init_vcpu(struct vm *vm, struct vcpu *v, const struct thaw_kernel_header *kh,
                  uint64_t boot_info_gpa, struct thaw_error *err)
{
    int has_xsave = cpuid_has(vm->cpuid, 1, 0, 2, 26);
    struct kvm_sregs sregs;
    if (x86_cpl3_sregs(vm, v, THAW_GPA_GDT, THAW_GPA_IDT, THAW_GPA_GDT + TSS_OFFSET, &sregs, err) < 0)
        return -1;
    if (VM_IOCTL(v->fd, KVM_SET_SREGS, &sregs, err) < 0)
        return -1;

    /* XCR0 after CR4.OSXSAVE is set: KVM refuses XSETBV-equivalents before. */
    if (has_xsave) {
        struct kvm_xcrs xcrs = {.nr_xcrs = 1};
        xcrs.xcrs[0].xcr = 0;
        xcrs.xcrs[0].value = supported_xcr0(vm->cpuid);
        if (VM_IOCTL(v->fd, KVM_SET_XCRS, &xcrs, err) < 0)
            return -1;
    }

    struct kvm_fpu fpu = {.fcw = 0x37f, .mxcsr = 0x1f80};
    if (VM_IOCTL(v->fd, KVM_SET_FPU, &fpu, err) < 0)
        return -1;

    /* SYSCALL: STAR's user base 0x18 gives user CS 0x2b and SS 0x23 (abi.h). SFMASK
     * clears TF, IF, DF, NT and AC on entry. */
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry e[5];
    } msrs = {.hdr.nmsrs = 5};
    msrs.e[0] = (struct kvm_msr_entry){.index = MSR_STAR,
                                       .data = (0x18ull << 48) | ((uint64_t)THAW_SEL_KCODE << 32)};
    msrs.e[1] = (struct kvm_msr_entry){.index = MSR_LSTAR, .data = kh->syscall_entry_r0};
    msrs.e[2] = (struct kvm_msr_entry){.index = MSR_SFMASK, .data = 0x47700};
    msrs.e[3] = (struct kvm_msr_entry){.index = MSR_IA32_MISC_ENABLE, .data = 1 /* fast strings */};
    msrs.e[4] = (struct kvm_msr_entry){.index = MSR_IA32_CR_PAT, .data = 0x0007040600070406ull};
    int set = VM_IOCTL(v->fd, KVM_SET_MSRS, &msrs, err);
    if (set < 0)
        return -1;
    if (set != 5)
        return thaw_fail(err, "KVM_SET_MSRS set %d of 5 MSRs (index %#x refused)", set,
                         msrs.e[set].index);

    struct kvm_regs regs = {
        .rip = kh->cpl3_entry,
        .rsp = kh->boot_stack_top,
        .rdi = boot_info_gpa,
        .rflags = RFLAGS_RESERVED,
    };
    if (VM_IOCTL(v->fd, KVM_SET_REGS, &regs, err) < 0)
        return -1;
    return 0;
}

int x86_read_tsc(struct vcpu *v, uint64_t *tsc, struct thaw_error *err)
{
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry e[1];
    } msrs = {.hdr.nmsrs = 1, .e[0].index = MSR_IA32_TSC};
    if (VM_IOCTL(v->fd, KVM_GET_MSRS, &msrs, err) != 1)
        return thaw_fail(err, "KVM_GET_MSRS could not read the TSC");
    *tsc = msrs.e[0].data;
    return 0;
}
