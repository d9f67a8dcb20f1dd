/* Guest kernel entry points.
 *
 * Under nested paravirtual KVM, ring-0 code is emulated (~0.5 us per instruction) while
 * CPL3 code runs natively, so ring 0 holds only trampolines of a few instructions:
 *  - syscall_entry_r0: SYSCALL lands here at CPL0. It saves the caller's rsp and IRETQs,
 *    through a constant frame in memory, to syscall_entry_cpl3, where the kernel's C code
 *    runs at CPL3 on its own stack. SYSRETQ is not used: it triple-faults under PVM.
 *  - exception stubs: every exception is fatal in this library OS; the stub reports it to
 *    the monitor with one OUT (THAW_HC_FAULT) and the monitor reads the frame.
 * The return to the program is done at CPL3: popfq restores the caller's flags (IOPL and
 * IF are unaffected at CPL3) and `jmp *%rcx` returns, exactly like SYSRET would.
 */
#include "thaw/abi.h"

#define KSTACK_SIZE 65536
#define R0STACK_SIZE 4096

    .section .thaw_header, "a"
    .globl kernel_header
kernel_header:
    .long THAW_KERNEL_MAGIC
    .long THAW_ABI_VERSION
    .quad kernel_boot_cpl3
    .quad kstack_top
    .quad syscall_entry_r0
    .quad exception_stubs
    .quad 16
    .quad r0stack_top
    .quad __kernel_end
    .quad hypercall_ud2
    .quad hypercall_out

/* ---------------------------------------------------------------- ring 0 */
    .section .text.r0, "ax"
    .code64
    .globl syscall_entry_r0
syscall_entry_r0:
    mov %rsp, saved_user_rsp(%rip)
    lea syscall_iret_frame(%rip), %rsp
    iretq

    .balign 16
    .globl exception_stubs
exception_stubs:
/* Vectors that push an error code: 8, 10-14, 17, 21, 29, 30. Others get a 0. */
.macro STUB vec
    .balign 16
    .if \vec == 6
    jmp ud_stub               /* does not fit in 16 bytes */
    .elseif (\vec == 8) || (\vec >= 10 && \vec <= 14) || (\vec == 17) || (\vec == 21) || (\vec == 29) || (\vec == 30)
    pushq $\vec
    jmp exception_common
    .else
    pushq $0
    pushq $\vec
    jmp exception_common
    .endif
.endm
    .irp v, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    STUB \v
    .endr

exception_common:
    mov $(THAW_HC_PORT_BASE + THAW_HC_FAULT), %dx
    out %eax, %dx
1:  hlt
    jmp 1b

/* #UD doubles as the kernel's way into ring 0, from three known UD2s:
 *  - segment_base_ud2: WRMSR (ecx = FS/GS base MSR, edx:eax = base), for the switch
 *    between threads; no VM exit (thread.h);
 *  - flush_tlb_ud2: reload CR3, after guard.c unmapped a page (clobbers rax);
 *  - hypercall_ud2 (and any other #UD): eax = argument GPA, dx = port. The monitor
 *    checks the frame's rip; for a real #UD it stops the VM and never resumes here. */
ud_stub:
    cmpq $segment_base_ud2, (%rsp)
    je 2f
    cmpq $flush_tlb_ud2, (%rsp)
    je 3f
    .globl hypercall_out
hypercall_out:
    out %eax, %dx
    addq $2, (%rsp)           /* return past the UD2 */
    iretq
2:  wrmsr
    addq $2, (%rsp)
    iretq
3:  mov %cr3, %rax
    mov %rax, %cr3
    addq $2, (%rsp)
    iretq

/* ---------------------------------------------------------------- CPL3 */
    .text
/* hypercall_trap(port, gpa): clobbers only eax and edx. */
    .globl hypercall_trap
hypercall_trap:
    mov %esi, %eax
    mov %edi, %edx
    .globl hypercall_ud2
hypercall_ud2:
    ud2
    ret

/* arch_set_segment_base(msr, base): writes MSR_FS_BASE or MSR_GS_BASE in ring 0
 * through the #UD stub. Clobbers eax, ecx and edx only. */
    .globl arch_set_segment_base
arch_set_segment_base:
    mov %edi, %ecx
    mov %rsi, %rax
    mov %rsi, %rdx
    shr $32, %rdx
    .globl segment_base_ud2
segment_base_ud2:
    ud2
    ret

/* arch_flush_tlb(): reloads CR3 in ring 0 through the #UD stub. Clobbers rax. */
    .globl arch_flush_tlb
arch_flush_tlb:
    .globl flush_tlb_ud2
flush_tlb_ud2:
    ud2
    ret

    .globl kernel_boot_cpl3
kernel_boot_cpl3:
    /* rdi = boot info, rsp = kstack_top (set by the monitor) */
    xor %ebp, %ebp
    call kernel_main
1:  jmp 1b

/* Entered by IRETQ from syscall_entry_r0 with rsp = the running thread's kernel stack
 * top (syscall_iret_rsp), rflags = IOPL3|IF=0. rcx = return rip, r11 = caller's rflags
 * (set by SYSCALL). The caller's rsp is in saved_user_rsp. Linux preserves every
 * register but rax, rcx and r11 across a syscall. All of them are saved in the frame,
 * even the callee-saved ones the C handler keeps anyway: clone gives the new thread a
 * copy of the frame (thread.c), and the child resumes through syscall_return with the
 * parent's registers. The frame layout is struct syscall_frame in kernel.h. */
    .globl syscall_entry_cpl3
syscall_entry_cpl3:
    push saved_user_rsp(%rip)
    push %r15
    push %r14
    push %r13
    push %r12
    push %rbp
    push %rbx
    push %r11
    push %rcx
    push %r9
    push %r8
    push %r10
    push %rdx
    push %rsi
    push %rdi
    push %rax
    mov %rsp, %rdi
    call syscall_dispatch     /* returns the result in rax */
    /* syscall_return: rsp = a struct syscall_frame, rax = the result. */
    .globl syscall_return
syscall_return:
    add $8, %rsp              /* drop saved nr */
    pop %rdi
    pop %rsi
    pop %rdx
    pop %r10
    pop %r8
    pop %r9
    pop %rcx
    pop %r11
    pop %rbx
    pop %rbp
    pop %r12
    pop %r13
    pop %r14
    pop %r15
    push %r11                 /* reuses the slot r15 was just popped from */
    popfq                     /* caller's flags; IOPL/IF cannot change at CPL3 */
    pop %rsp                  /* caller's rsp: its red zone was never touched */
    jmp *%rcx

/* enter_program(entry, sp): start the program with the ELF ABI's initial state. */
    .globl enter_program
enter_program:
    mov %rsi, %rsp
    mov %rdi, %rcx
    xor %eax, %eax
    xor %ebx, %ebx
    xor %edx, %edx            /* rdx = 0: no atexit function from the loader */
    xor %esi, %esi
    xor %edi, %edi
    xor %ebp, %ebp
    xor %r8d, %r8d
    xor %r9d, %r9d
    xor %r10d, %r10d
    xor %r11d, %r11d
    xor %r12d, %r12d
    xor %r13d, %r13d
    xor %r14d, %r14d
    xor %r15d, %r15d
    jmp *%rcx

    .data
    .balign 16
/* Constant IRETQ frame used by syscall_entry_r0; IRETQ only reads it. */
syscall_iret_frame:
    .quad syscall_entry_cpl3
    .quad THAW_SEL_UCODE
    .quad 0x2                 /* IF=0, reserved bit 1 */
    .globl syscall_iret_rsp
syscall_iret_rsp:             /* the running thread's kernel stack top (thread.c) */
    .quad kstack_top
    .quad THAW_SEL_UDATA
    .globl saved_user_rsp
saved_user_rsp:
    .quad 0

    .bss
    .balign 4096
kstack:
    .skip KSTACK_SIZE
kstack_top:
r0stack:
    .skip R0STACK_SIZE
r0stack_top:

    .section .note.GNU-stack, "", @progbits
