/* The kernel's cost of installing a page into userfaultfd-registered memory, per page:
 * UFFDIO_COPY (allocate a page, copy 4 KiB in, map it) against UFFDIO_MOVE (remap a page
 * the prefetch read already filled), for runs of 1 to 64 contiguous pages with a one-page
 * gap between runs (REAP's working sets average 2-3 pages a run). Also the cost of
 * faulting in the source buffer, which an O_DIRECT read into fresh memory pays either
 * way. Variants alternate within each round; medians over the rounds.
 *
 * usage: build/bench/install_cost [ROUNDS] [PAGES]    (defaults 15, 2048)
 * With THAW_BENCH_BUSY=1 a second thread of the process spins meanwhile (as the VMM's
 * thread does while the pager installs): a move must then flush that CPU's TLB. */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "host/util/clock.h"

#ifndef UFFDIO_MOVE
struct uffdio_move {
    uint64_t dst, src, len, mode;
    int64_t move;
};
#define UFFDIO_MOVE_MODE_DONTWAKE ((uint64_t)1 << 0)
#define UFFDIO_MOVE _IOWR(UFFDIO, 0x05, struct uffdio_move)
#endif
#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1ull << 16)
#endif

#define PG 4096ull

static atomic_int stop;

static void *spin(void *arg)
{
    (void)arg;
    while (!atomic_load_explicit(&stop, memory_order_relaxed))
        ;
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* One trial: ns per page to fill the source (fill != NULL) and to install it. */
static void trial(uint64_t pages, uint64_t run, int move, uint64_t *fill_ns, uint64_t *install_ns)
{
    uint64_t slots = pages + pages / run + 1;
    uint8_t *src = mmap(NULL, pages * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    uint8_t *dst = mmap(NULL, slots * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (src == MAP_FAILED || dst == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    (void)madvise(src, pages * PG, MADV_NOHUGEPAGE);
    (void)madvise(dst, slots * PG, MADV_NOHUGEPAGE);
    uint64_t t0 = clock_now_ns();
    for (uint64_t i = 0; i < pages; i++)
        memset(src + i * PG, (int)(i * 7 + 1), PG);
    *fill_ns = (clock_now_ns() - t0) / pages;
    int u = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    struct uffdio_api api = {.api = UFFD_API, .features = move ? UFFD_FEATURE_MOVE : 0};
    struct uffdio_register reg = {.range = {.start = (uint64_t)(uintptr_t)dst, .len = slots * PG},
                                  .mode = UFFDIO_REGISTER_MODE_MISSING};
    if (u < 0 || ioctl(u, UFFDIO_API, &api) < 0 || ioctl(u, UFFDIO_REGISTER, &reg) < 0) {
        fprintf(stderr, "userfaultfd%s: %s\n", move ? " with UFFDIO_MOVE" : "", strerror(errno));
        exit(1);
    }
    t0 = clock_now_ns();
    for (uint64_t i = 0; i < pages; i += run) {
        uint64_t n = pages - i < run ? pages - i : run;
        uint64_t to = (uint64_t)(uintptr_t)(dst + (i + i / run) * PG), from = (uint64_t)(uintptr_t)(src + i * PG);
        int rc;
        if (move) {
            struct uffdio_move m = {.dst = to, .src = from, .len = n * PG, .mode = UFFDIO_MOVE_MODE_DONTWAKE};
            rc = ioctl(u, UFFDIO_MOVE, &m);
        } else {
            struct uffdio_copy c = {.dst = to, .src = from, .len = n * PG, .mode = UFFDIO_COPY_MODE_DONTWAKE};
            rc = ioctl(u, UFFDIO_COPY, &c);
        }
        if (rc < 0) {
            fprintf(stderr, "%s: %s\n", move ? "UFFDIO_MOVE" : "UFFDIO_COPY", strerror(errno));
            exit(1);
        }
    }
    *install_ns = (clock_now_ns() - t0) / pages;
    /* The pages must be the source's. */
    for (uint64_t i = 0; i < pages; i += 97)
        if (dst[(i + i / run) * PG + 5] != (uint8_t)(i * 7 + 1)) {
            fprintf(stderr, "page %llu was not installed right\n", (unsigned long long)i);
            exit(1);
        }
    close(u);
    munmap(dst, slots * PG);
    munmap(src, pages * PG);
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 15;
    uint64_t pages = argc > 2 ? (uint64_t)atoll(argv[2]) : 2048;
    if (rounds < 1 || rounds > 1000 || pages < 64 || pages > (1u << 20))
        return 2;
    const char *busy = getenv("THAW_BENCH_BUSY");
    pthread_t th;
    int spinning = busy && !strcmp(busy, "1") && pthread_create(&th, NULL, spin, NULL) == 0;
    static const uint64_t runs[] = {1, 2, 4, 16, 64};
    enum { NR = sizeof runs / sizeof runs[0] };
    uint64_t *v[NR][3];
    for (int r = 0; r < NR; r++)
        for (int k = 0; k < 3; k++)
            v[r][k] = calloc((size_t)rounds, sizeof(uint64_t));
    for (int i = 0; i < rounds; i++)
        for (int r = 0; r < NR; r++) {
            uint64_t fill, copy, move;
            trial(pages, runs[r], i % 2, &fill, i % 2 ? &move : &copy);
            trial(pages, runs[r], !(i % 2), &fill, i % 2 ? &copy : &move); /* ABBA over rounds */
            v[r][0][i] = fill;
            v[r][1][i] = copy;
            v[r][2][i] = move;
        }
    if (spinning) {
        atomic_store(&stop, 1);
        pthread_join(th, NULL);
    }
    printf("Command: `%sbuild/bench/install_cost %d %llu`  \n", spinning ? "THAW_BENCH_BUSY=1 " : "", rounds,
           (unsigned long long)pages);
    printf("Medians of %d rounds, %llu pages each, ns per page%s.\n\n", rounds, (unsigned long long)pages,
           spinning ? "; another thread of the process spinning meanwhile" : "");
    printf("| pages per run | source filled (the read's page faults) | UFFDIO_COPY | UFFDIO_MOVE | move / copy |\n"
           "|---|---|---|---|---|\n");
    for (int r = 0; r < NR; r++) {
        for (int k = 0; k < 3; k++)
            qsort(v[r][k], (size_t)rounds, sizeof(uint64_t), cmp_u64);
        uint64_t f = v[r][0][rounds / 2], c = v[r][1][rounds / 2], m = v[r][2][rounds / 2];
        printf("| %llu | %llu | %llu | %llu | %.2f |\n", (unsigned long long)runs[r], (unsigned long long)f,
               (unsigned long long)c, (unsigned long long)m, c ? (double)m / (double)c : 0.0);
    }
    return 0;
}
