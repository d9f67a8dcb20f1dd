/* The switch between two threads' kernel stacks (sched.c). Plain x86-64 at any
 * privilege level: the guest-kernel tests run it on the host too. */

/* thread_switch(uint64_t *save_sp, uint64_t new_sp): the System V callee-saved
 * registers go on the current stack, rsp to *save_sp; the other thread's stack is
 * loaded and its registers popped; ret returns into that thread. */
    .text
    .globl thread_switch
thread_switch:
    push %rbp
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, (%rdi)
    mov %rsi, %rsp
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    pop %rbp
    ret

/* A new thread's first switch returns here with rbx = its struct thread and r12 = its
 * argument (thread_create laid them out), rsp 16-byte aligned. */
    .globl thread_trampoline
thread_trampoline:
    xor %ebp, %ebp
    mov %rbx, %rdi
    mov %r12, %rsi
    call thread_first_run
    ud2

    .section .note.GNU-stack, "", @progbits
