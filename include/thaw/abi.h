/* thaw guest/host ABI: the only contract between the monitor (host) and the guest
 * kernel. Both sides include this file; it has no dependencies beyond fixed-width ints.
 *
 * Guest-physical memory is identity-mapped (virtual == physical) with 2 MiB pages,
 * except the first 2 MiB, which uses 4 KiB pages so that page 0 stays unmapped
 * (NULL dereferences fault). Fixed layout of the low region:
 *
 *   0x0000_0000  unmapped NULL page
 *   0x0000_1000  GDT + TSS                 (monitor-written)
 *   0x0000_2000  IDT, 256 gates            (monitor-written)
 *   0x0000_3000  PML4, 0x4000 PDPT, 0x5000.. PDs (one per GiB), 0x9000 PT (first 2 MiB)
 *   0x0000_a000  struct thaw_boot_info + strings (one page)
 *   0x0000_b000  the monitor's scratch area, up to the kernel: the guest never uses it
 *                (a restore's pre-fault vCPU keeps its code, tables and page list there)
 *   0x0010_0000  guest kernel image (ELF, linked here; header first)
 *   0x0040_0000  usual load address of static non-PIE programs
 *   mem_size     the root-filesystem image, if any (boot info rootfs_base), identity-
 *                mapped like RAM; RAM + image at most 4 GiB
 *
 * Hypercalls: the guest executes `outl %eax, %dx` with dx = THAW_HC_PORT_BASE + nr and
 * eax = the guest-physical address of the argument struct for that call. Code at CPL3
 * cannot do port I/O here (nested PVM drops IOPL on IRETQ and refuses INT n), so the
 * guest kernel executes UD2 at one known address (hypercall_ud2 in the header). The
 * ring-0 #UD stub does the OUT, skips the UD2 and IRETQs. The monitor tells a hypercall
 * from a real #UD by the rip in the exception frame: any other rip is a fault. Arguments are
 * hostile to the monitor: it bounds-checks every address and length.
 */
#ifndef THAW_ABI_H
#define THAW_ABI_H

#ifndef __ASSEMBLER__
#include <stdint.h>
#endif

#define THAW_ABI_VERSION 2u

#define THAW_PAGE_SIZE 4096ull
#define THAW_HUGE_PAGE_SIZE (2ull << 20)

/* Fixed guest-physical layout (see above). */
#define THAW_GPA_GDT 0x1000ull
#define THAW_GPA_IDT 0x2000ull
#define THAW_GPA_PML4 0x3000ull
#define THAW_GPA_PDPT 0x4000ull
#define THAW_GPA_PD 0x5000ull /* THAW_MAX_PD_PAGES pages */
#define THAW_MAX_PD_PAGES 4u  /* => guest memory up to 4 GiB */
#define THAW_GPA_PT0 0x9000ull
#define THAW_GPA_BOOT_INFO 0xa000ull
#define THAW_BOOT_INFO_SIZE 0x1000ull
#define THAW_GPA_MONITOR_SCRATCH 0xb000ull /* to THAW_GPA_KERNEL: the monitor's, never the guest's */
#define THAW_GPA_KERNEL 0x100000ull
#define THAW_KERNEL_MAX_END 0x400000ull

/* The program's stack: the top THAW_STACK_SIZE bytes of guest memory. Below it the
 * host's page tables leave THAW_STACK_GUARD_SIZE unmapped (one 2 MiB page), and the
 * guest never allocates there: an overflow faults there, reported as "stack overflow",
 * instead of running into the memory below. */
#define THAW_STACK_SIZE (8ull << 20)
#define THAW_STACK_GUARD_SIZE (2ull << 20)

/* A thread stack's guard page (the guest kernel's guard.c): its 4 KiB page table
 * entry is not present and holds THAW_GUARD_PTE_TAG in its low 12 bits (bit 0, present,
 * clear) and the thread id in bits 32-62, so the monitor can tell a fault there from
 * any other and name the thread whose stack overflowed. */
#define THAW_GUARD_PTE_TAG 0xad0ull
#define THAW_GUARD_PTE_TAG_MASK 0xfffull

#define THAW_MIN_MEM_MIB 16u
#define THAW_MAX_MEM_MIB 4096u

/* Segment selectors in the GDT the monitor builds. The user segments follow the
 * layout SYSCALL/SYSRET expect (STAR: kernel CS at 0x08, user base at 0x18). */
#define THAW_SEL_KCODE 0x08
#define THAW_SEL_KDATA 0x10
#define THAW_SEL_UDATA 0x23 /* 0x20 | RPL3 */
#define THAW_SEL_UCODE 0x2b /* 0x28 | RPL3 */
#define THAW_SEL_TSS 0x30

/* ---- The guest kernel image header: first bytes of the kernel's first PT_LOAD
 * segment, at THAW_GPA_KERNEL. The monitor reads it to build IDT, TSS and the
 * SYSCALL MSRs, since code at CPL3 cannot. */
#define THAW_KERNEL_MAGIC 0x5748544bu /* "KTHW" */

#ifndef __ASSEMBLER__
struct thaw_kernel_header {
    uint32_t magic;
    uint32_t abi_version;
    uint64_t cpl3_entry;            /* boot entry at CPL3: rdi = boot info, rsp = boot_stack_top */
    uint64_t boot_stack_top;        /* 16-byte aligned */
    uint64_t syscall_entry_r0;      /* IA32_LSTAR: ring-0 trampoline */
    uint64_t exception_stubs_r0;    /* 32 ring-0 stubs, exception_stub_stride apart */
    uint64_t exception_stub_stride;
    uint64_t ring0_stack_top;       /* TSS.RSP0 and IST1 */
    uint64_t image_end;             /* end of the kernel, bss included */
    uint64_t hypercall_ud2;         /* address of the UD2 that makes a hypercall */
    uint64_t hypercall_out;         /* address of the #UD stub's OUT: an exit there is a hypercall */
};
#endif

/* ---- Boot info, written by the monitor at THAW_GPA_BOOT_INFO. */
#define THAW_BOOT_MAGIC 0x544f4f42u /* "BOOT" */
#define THAW_BOOT_TRACE_SYSCALLS 1u /* log every syscall and its result (strace-like) */

#ifndef __ASSEMBLER__
struct thaw_mem_range {
    uint64_t base;
    uint64_t size;
};
#endif

#ifndef __ASSEMBLER__
struct thaw_boot_info {
    uint32_t magic;
    uint32_t abi_version;
    uint64_t mem_size;          /* bytes of guest-physical memory, from 0 */
    uint64_t tsc_khz;           /* guest TSC frequency */
    uint64_t wall_ns_at_boot;   /* host CLOCK_REALTIME, ns, read when... */
    uint64_t tsc_at_boot;       /* ...the guest TSC read this value */
    /* The program, already loaded by the monitor at its link addresses. */
    uint64_t prog_entry;
    uint64_t prog_phdr;         /* guest address of its program headers (AT_PHDR) */
    uint64_t prog_phnum;
    uint64_t prog_phent;
    uint64_t prog_end;          /* first byte past the highest loaded segment */
    /* Optional read-only file archive (cpio newc), 0/0 if none. */
    uint64_t archive_base;
    uint64_t archive_size;
    /* Lowest address the guest may allocate from (past kernel, program, archive). */
    uint64_t free_base;
    /* argv and envp: NUL-separated strings, stored after this struct in the page. */
    uint32_t argc;
    uint32_t envc;
    uint64_t strings;           /* guest address of argc + envc strings back to back */
    uint64_t strings_size;
    uint8_t random[32];         /* entropy for AT_RANDOM and the kernel's generator */
    uint64_t generation;        /* bumped by the monitor on every snapshot restore */
    uint64_t max_request;       /* largest request the host may send */
    uint64_t flags;             /* THAW_BOOT_* */
    /* Optional root-filesystem image (thaw/rootfs.h), mapped (not copied) at
     * rootfs_base >= mem_size, 0/0 if none. Not RAM: hypercalls never point into it. */
    uint64_t rootfs_base;
    uint64_t rootfs_size;
    uint64_t cwd;               /* guest address of the initial working directory's path
                                   (in the boot info page), 0 for "/" */
};
#endif

/* ---- Hypercalls. Port = THAW_HC_PORT_BASE + nr; eax = GPA of the struct. */
#define THAW_HC_PORT_BASE 0x7000u
#define THAW_HC_CONSOLE_WRITE 0 /* struct thaw_hc_console */
#define THAW_HC_WALLCLOCK 1     /* struct thaw_hc_wallclock */
#define THAW_HC_INVOKE_NEXT 2   /* struct thaw_hc_invoke */
#define THAW_HC_EXIT 3          /* struct thaw_hc_exit */
#define THAW_HC_PANIC 4         /* struct thaw_hc_console: kernel panic message */
#define THAW_HC_FAULT 5         /* from ring-0 exception stubs: no struct, see below */
#define THAW_HC_SET_SEGMENT_BASE 6 /* struct thaw_hc_segment_base: FS/GS base */
#define THAW_HC_DISCARD 7       /* struct thaw_hc_discard: pages read back as zero */
#define THAW_HC_COUNT 8

#ifndef __ASSEMBLER__
/* Most bytes one console hypercall may carry; the guest kernel splits longer writes. */
#define THAW_CONSOLE_MAX (1u << 20)
struct thaw_hc_console {
    uint64_t addr;   /* GPA of the bytes */
    uint64_t len;    /* at most THAW_CONSOLE_MAX */
    uint32_t stream; /* 1 = stdout, 2 = stderr, 3 = kernel log */
    uint32_t pad;
};
#endif

#ifndef __ASSEMBLER__
struct thaw_hc_wallclock {
    uint64_t wall_ns; /* out: CLOCK_REALTIME in ns */
    uint64_t tsc;     /* out: the guest's TSC at about the same instant */
};
#endif

/* The invocation channel. The guest passes the finished response of the previous
 * request (resp_len 0 and no THAW_INVOKE_HAS_RESPONSE on the first call: the ready
 * point) and a buffer for the next request; the host fills req_len. If
 * THAW_INVOKE_SHUTDOWN is set on return there are no more requests and the guest should
 * exit. If THAW_INVOKE_TRIM is set there is no request either: the guest gives the freed
 * memory it keeps for reuse back to the host (DISCARD) and calls again with resp_len 0
 * and no response flag, where the host takes a snapshot (one after warm-up invocations
 * then holds none of that memory). The host asks only a guest that sets
 * THAW_INVOKE_CAN_TRIM on its calls (an older one would take the flag for an empty
 * request). */
#define THAW_INVOKE_HAS_RESPONSE 1u
#define THAW_INVOKE_RESPONSE_LOST 2u /* in: a write of the response failed (guest out of memory) */
#define THAW_INVOKE_SHUTDOWN 1u
#define THAW_INVOKE_TRIM 2u /* out */
#define THAW_INVOKE_CAN_TRIM 4u /* in: this guest kernel knows THAW_INVOKE_TRIM */
/* The largest request the host sends unless function.json says "max_request_kib"; the
 * C SDK (sdk/thaw_function.h) and the Python runtime size their buffers from FIONREAD,
 * so any configured limit works for them. */
#define THAW_MAX_REQUEST_DEFAULT (1u << 20)
#ifndef __ASSEMBLER__
struct thaw_hc_invoke {
    uint64_t resp_addr; /* in */
    uint64_t resp_len;  /* in */
    uint64_t req_addr;  /* in */
    uint64_t req_cap;   /* in */
    uint64_t req_len;   /* out */
    uint32_t flags;     /* in: THAW_INVOKE_HAS_RESPONSE, _RESPONSE_LOST, _CAN_TRIM; out: _SHUTDOWN, _TRIM */
    uint32_t pad;
};
#endif

/* Sets the FS or GS base. Without FSGSBASE (nested PVM does not offer it) CPL3 code
 * cannot write these bases itself, so arch_prctl asks the monitor. */
#define THAW_SEGMENT_FS 0u
#define THAW_SEGMENT_GS 1u
#ifndef __ASSEMBLER__
struct thaw_hc_segment_base {
    uint64_t base;
    uint32_t which; /* THAW_SEGMENT_FS or THAW_SEGMENT_GS */
    uint32_t pad;
};
#endif

/* The guest freed [addr, addr + len) (page-aligned): the monitor drops the host
 * pages so they read back as zero and stop counting towards the footprint. Cheaper
 * than zeroing large freed ranges in the guest, and keeps them out of snapshots. */
#ifndef __ASSEMBLER__
struct thaw_hc_discard {
    uint64_t addr;
    uint64_t len;
};
#endif

#ifndef __ASSEMBLER__
struct thaw_hc_exit {
    int64_t status;
};
#endif

/* THAW_HC_FAULT: a ring-0 exception stub pushed the vector, then the error code (0
 * for vectors without one) on top of the CPU's frame and executed OUT. At the exit,
 * guest rsp points at struct thaw_fault_frame. */
#ifndef __ASSEMBLER__
struct thaw_fault_frame {
    uint64_t vector;
    uint64_t error_code;
    uint64_t rip;
    uint64_t cs;
    uint64_t rflags;
    uint64_t rsp;
    uint64_t ss;
};
#endif

#endif
