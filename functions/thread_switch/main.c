/* thread_switch: what threads cost in the guest (bench/thread_switch.py). Each request
 * {"n": N} times, per operation over N repetitions: a syscall that does nothing
 * (getppid), an FS/GS base write (arch_prctl ARCH_SET_GS with alternating bases: the
 * ring-0 WRMSR a switch makes when the two threads' TLS differ), sched_yield with no
 * other thread, and a futex ping-pong round between two threads (two switches, each
 * with a TLS base write, and four futex calls). Response: microseconds per operation. */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "thaw_function.h"

#define ARCH_SET_GS 0x1001
#define FUTEX_WAIT_PRIVATE 128
#define FUTEX_WAKE_PRIVATE 129

static volatile uint32_t turn;
static long rounds;

static double now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static void *pong(void *arg)
{
    (void)arg;
    for (long i = 0; i < rounds; i++) {
        while (turn != 1)
            syscall(SYS_futex, &turn, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
        turn = 0;
        syscall(SYS_futex, &turn, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    }
    return NULL;
}

int main(void)
{
    static char req[4096];
    char out[512];
    int fd = thaw_open();
    if (fd < 0) {
        perror("open /dev/invoke");
        return 1;
    }
    while (thaw_next(fd, req, sizeof req) > 0) {
        long n = thaw_json_int(req, "n", 1000);
        if (n < 1 || n > 1000000)
            n = 1000;
        double t0 = now_us();
        for (long i = 0; i < n; i++)
            syscall(SYS_getppid);
        double t1 = now_us();
        for (long i = 0; i < n; i++)
            syscall(SYS_arch_prctl, ARCH_SET_GS, (i & 1) ? 0x1000 : 0x2000);
        syscall(SYS_arch_prctl, ARCH_SET_GS, 0);
        double t2 = now_us();
        for (long i = 0; i < n; i++)
            sched_yield();
        double t3 = now_us();
        pthread_t p;
        turn = 0;
        rounds = n;
        pthread_create(&p, NULL, pong, NULL);
        double t4 = now_us();
        for (long i = 0; i < n; i++) {
            turn = 1;
            syscall(SYS_futex, &turn, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
            while (turn != 0)
                syscall(SYS_futex, &turn, FUTEX_WAIT_PRIVATE, 1, NULL, NULL, 0);
        }
        double t5 = now_us();
        pthread_join(p, NULL);
        int len = snprintf(out, sizeof out,
                           "{\"n\": %ld, \"syscall_us\": %.2f, \"set_base_us\": %.2f, \"yield_us\": %.2f, "
                           "\"pingpong_round_us\": %.2f}",
                           n, (t1 - t0) / n, (t2 - t1) / n, (t3 - t2) / n, (t5 - t4) / n);
        thaw_respond(fd, out, (size_t)len);
    }
    return 0;
}
