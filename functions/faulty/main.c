/* faulty: misbehaves on request, for the monitor's fault-handling tests.
 * {"fault": "null"}   writes through a NULL pointer (page 0 is never mapped)
 * {"fault": "jump"}   jumps to an unmapped address
 * {"fault": "div0"}   divides by zero
 * {"fault": "ud"}     executes an invalid instruction
 * {"fault": "hypercall-bad-arg"}    makes a hypercall whose argument is outside guest memory
 * {"fault": "hypercall-bad-buffer"} makes a console hypercall whose buffer wraps around
 * {"fault": "abort"}  calls abort()
 * {"fault": "loop"}   spins forever (the invocation deadline must stop it)
 * {"print": N}        writes "line 1".."line N" (odd lines to stdout, even to stderr),
 *                     one write each, spinning 100 ms between them, then answers
 *                     {"printed": N}: the host must see each line as it is written
 * FAULTY_LOOP_BEFORE_READY=1 in the environment: spins forever before the ready point
 * {"fault": "stack"}  recurses through 15 MiB of stack (the stack is 8 MiB)
 * {"fault": "oom"}    mallocs 1 MiB blocks, touching each, until malloc fails, then
 *                     answers how many it got (memory is not given back)
 * {"fault": "oom-respond"} the same, then tries to answer 256 KiB (the guest kernel
 *                     has no memory left for the response: the host must say so)
 * {"print_bytes": N}  writes N bytes ('x') to stdout in one write(), answers {"ok": true}
 * {"probe": "state"}  answers the monotonic and wall clocks (ns), 16 bytes from
 *                     getrandom() in hex and a counter that counts invocations
 * {"probe": "reuse"}  maps 4 MiB, dirties it, unmaps it, maps 4 MiB again and answers
 *                     whether the new mapping reads as zero (freed memory goes back to
 *                     the host through the discard hypercall)
 * anything else: answers {"ok": true} */
#include <sys/mman.h>
#include <unistd.h>
#include <sys/random.h>
#include <time.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "thaw/abi.h"
#include "thaw_function.h"

/* Each frame keeps 1 KiB live, so 15 000 calls need about 15 MiB of stack. */
static int recurse(int depth)
{
    volatile char pad[1024];
    pad[0] = (char)depth;
    if (depth == 0)
        return pad[0];
    return recurse(depth - 1) + pad[0];
}

/* Calls the guest kernel's hypercall UD2 directly, found through the kernel header. */
static void raw_hypercall(uint32_t nr, uint32_t gpa)
{
    const struct thaw_kernel_header *kh = (const struct thaw_kernel_header *)(uintptr_t)THAW_GPA_KERNEL;
    uint64_t target = kh->hypercall_ud2;
    __asm__ volatile("call *%2" : : "a"(gpa), "d"(THAW_HC_PORT_BASE + nr), "r"(target) : "memory");
}

static void spin_ms(long ms)
{
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    do
        clock_gettime(CLOCK_MONOTONIC, &b);
    while ((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 < ms);
}

int main(void)
{
    static char req[4096];
    char what[64];
    const char *hang = getenv("FAULTY_LOOP_BEFORE_READY");
    if (hang && !strcmp(hang, "1"))
        for (;;)
            __asm__ volatile("" ::: "memory");
    int fd = thaw_open();
    if (fd < 0)
        return 1;
    static unsigned long counter; /* state created before a snapshot survives it */
    while (thaw_next(fd, req, sizeof req) > 0) {
        counter++;
        if (thaw_json_string(req, "probe", what, sizeof what) == 0 && !strcmp(what, "reuse")) {
            const size_t len = 4u << 20;
            unsigned char *a = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (a == MAP_FAILED)
                return 1;
            memset(a, 0xab, len);
            munmap(a, len);
            unsigned char *b = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (b == MAP_FAILED)
                return 1;
            size_t nonzero = 0;
            for (size_t i = 0; i < len; i++)
                nonzero += b[i] != 0;
            memset(b, 0xcd, len); /* leave it dirty for the next call */
            munmap(b, len);
            char out[128];
            int n = snprintf(out, sizeof out, "{\"same_address\": %s, \"nonzero_bytes\": %zu}",
                             a == b ? "true" : "false", nonzero);
            thaw_respond(fd, out, (size_t)n);
            continue;
        }
        if (thaw_json_string(req, "probe", what, sizeof what) == 0) {
            struct timespec mono, wall;
            unsigned char rnd[16];
            char out[256], hex[33];
            clock_gettime(CLOCK_MONOTONIC, &mono);
            clock_gettime(CLOCK_REALTIME, &wall);
            if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
                return 1;
            for (int i = 0; i < 16; i++)
                snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
            int n = snprintf(out, sizeof out, "{\"mono_ns\": %lld, \"wall_ns\": %lld, \"random\": \"%s\", \"counter\": %lu}",
                             (long long)mono.tv_sec * 1000000000ll + mono.tv_nsec,
                             (long long)wall.tv_sec * 1000000000ll + wall.tv_nsec, hex, counter);
            thaw_respond(fd, out, (size_t)n);
            continue;
        }
        long lines = thaw_json_int(req, "print", -1);
        if (lines >= 0) {
            for (long i = 1; i <= lines; i++) {
                char line[64];
                int n = snprintf(line, sizeof line, "line %ld\n", i);
                if (write(i % 2 ? 1 : 2, line, (size_t)n) != n)
                    return 1;
                if (i < lines)
                    spin_ms(100);
            }
            char out[64];
            int n = snprintf(out, sizeof out, "{\"printed\": %ld}", lines);
            thaw_respond(fd, out, (size_t)n);
            continue;
        }
        long print = thaw_json_int(req, "print_bytes", -1);
        if (print >= 0) {
            char *big = malloc((size_t)print + 1);
            if (!big)
                return 1;
            memset(big, 'x', (size_t)print);
            if (write(1, big, (size_t)print) != (ssize_t)print)
                return 1;
            free(big);
            thaw_respond(fd, "{\"ok\": true}", 12);
            continue;
        }
        if (thaw_json_string(req, "fault", what, sizeof what) < 0)
            what[0] = 0;
        if (!strcmp(what, "null")) {
            *(volatile int *)(uintptr_t)0 = 1;
        } else if (!strcmp(what, "jump")) {
            ((void (*)(void))(uintptr_t)0xdead0000ull)();
        } else if (!strcmp(what, "div0")) {
            volatile int zero = 0;
            volatile int x = 100 / zero;
            (void)x;
        } else if (!strcmp(what, "ud")) {
            __asm__ volatile("ud2");
        } else if (!strcmp(what, "hypercall-bad-arg")) {
            raw_hypercall(THAW_HC_CONSOLE_WRITE, 0xfffff000u);
        } else if (!strcmp(what, "hypercall-bad-buffer")) {
            static struct thaw_hc_console c = {.addr = ~0ull - 8, .len = 64, .stream = 1};
            raw_hypercall(THAW_HC_CONSOLE_WRITE, (uint32_t)(uintptr_t)&c);
        } else if (!strcmp(what, "abort")) {
            abort();
        } else if (!strcmp(what, "loop")) {
            for (;;)
                __asm__ volatile("" ::: "memory");
        } else if (!strcmp(what, "stack")) {
            char out[64];
            int n = snprintf(out, sizeof out, "{\"sum\": %d}", recurse(15000));
            thaw_respond(fd, out, (size_t)n);
            continue;
        } else if (!strcmp(what, "oom-respond")) {
            while (malloc(1u << 20))
                ;
            for (size_t sz = 1u << 20; sz >= 4096; sz /= 2)
                while (mmap(NULL, sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) != MAP_FAILED)
                    ;
            static char big[256 * 1024];
            memset(big, 'y', sizeof big);
            thaw_respond(fd, big, sizeof big);
            continue;
        } else if (!strcmp(what, "oom")) {
            unsigned long got = 0;
            for (char *p; (p = malloc(1u << 20)); got++)
                memset(p, 1, 1u << 20);
            char out[64];
            int n = snprintf(out, sizeof out, "{\"mib\": %lu}", got);
            thaw_respond(fd, out, (size_t)n);
            continue;
        }
        thaw_respond(fd, "{\"ok\": true}", 12);
    }
    return 0;
}
