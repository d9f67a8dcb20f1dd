/* Guest kernel internals shared by its components. The kernel is a library OS: it runs
 * at CPL3 in the same identity-mapped address space as the program, and all of its
 * state lives in guest memory, so a snapshot of guest memory captures it. */
#ifndef THAW_GUEST_KERNEL_H
#define THAW_GUEST_KERNEL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "thaw/abi.h"
#include "linux_abi.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ALIGN_UP(x, a) (((x) + ((a) - 1)) & ~((uint64_t)(a) - 1))
#define ALIGN_DOWN(x, a) ((x) & ~((uint64_t)(a) - 1))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

/* klib.c: the few libc pieces the kernel needs. */
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
int ksnprintf(char *buf, size_t size, const char *fmt, ...);
int kvsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
void klog(const char *fmt, ...);                       /* kernel log via the console */
_Noreturn void kpanic(const char *fmt, ...);

/* One hypercall (entry.S): UD2 at a known address; the ring-0 #UD stub performs the
 * OUT (a VM exit) and returns past the UD2. */
void hypercall_trap(uint32_t port, const volatile void *arg);
static inline void hypercall(unsigned nr, const volatile void *arg)
{
    /* The host reads and writes *arg: keep the compiler from caching it. */
    __asm__ volatile("" : : : "memory");
    hypercall_trap(THAW_HC_PORT_BASE + nr, arg);
    __asm__ volatile("" : : : "memory");
}
void console_write(unsigned stream, const void *buf, size_t len);
_Noreturn void kernel_exit(int64_t status);

/* The boot info the monitor wrote; restored snapshots see the monitor's updates. */
extern volatile struct thaw_boot_info *boot_info;

/* time.c */
void time_init(void);
uint64_t time_monotonic_ns(void);
uint64_t time_realtime_ns(void);
void time_resync(void);   /* after a restore: refetch the wall clock */

/* random.c: ChaCha20-based generator, reseeded on every new generation. */
void random_init(void);
void random_bytes(void *buf, size_t len);

/* mm.c: guest-physical page allocator backing brk and mmap. */
void mm_init(uint64_t free_base, uint64_t mem_size, uint64_t stack_size);
void *mm_alloc_pages(uint64_t bytes);            /* zeroed, NULL when out of memory */
void mm_free_pages(void *p, uint64_t bytes);
void mm_trim(void);            /* large kept free ranges back to the host (mm.c) */
uint64_t mm_kept_bytes(void);  /* freed memory kept for reuse */
uint64_t mm_stack_top(void);
uint64_t mm_stack_bottom(void);

/* fs.c */
void fs_init(const uint8_t *archive, uint64_t size);

/* syscall.c */
struct syscall_frame {
    uint64_t nr, rdi, rsi, rdx, r10, r8, r9, rcx, r11;
    uint64_t rbx, rbp, r12, r13, r14, r15; /* for clone's child: see entry.S */
    uint64_t user_rsp;
};
int64_t syscall_dispatch(struct syscall_frame *f);

/* Pointers from the program are checked before use: a range must lie inside guest
 * memory and outside the NULL page. The kernel shares the address space, so this
 * guards against EFAULT-style bugs, not against a malicious program (the VM is the
 * isolation boundary). */
void uaccess_init(uint64_t mem_size);
bool user_range_ok(uint64_t addr, uint64_t len);
bool user_array_ok(uint64_t addr, uint64_t count, uint64_t elem_size); /* count * size cannot wrap */
int64_t user_string_len(const char *s, size_t max); /* -EFAULT / -ENAMETOOLONG */
/* One more range accepted as user memory [lo, hi). The guest never needs it (its
 * stack is guest memory); the host-side tests, whose kernel stack is the host
 * thread's, do. */
void uaccess_allow(uint64_t lo, uint64_t hi);

void enter_program(uint64_t entry, uint64_t sp) __attribute__((noreturn));

#endif
