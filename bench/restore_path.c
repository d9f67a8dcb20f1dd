/* The restore path to the vCPU's first instruction, measured inside one long-running
 * process (as a worker of `thaw serve` runs it), with and without a pool of pre-created
 * VMs (vm_pool.h). Each round restores SNAP in MODE, checks the first response, destroys
 * the instance and (pool) refills the pool off the critical path.
 *
 * usage: build/bench/restore_path SNAP copy|lazy|uffd|reap N PAYLOAD
 * Prints a Markdown table of medians in microseconds. reap: SNAP must hold a working set. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/pager/pager.h"
#include "host/snapshot/snapshot.h"
#include "host/util/clock.h"
#include "host/vmm/vm_pool.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double median_us(uint64_t *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_u64);
    return (n % 2 ? (double)v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0) / 1e3;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s SNAP copy|lazy|uffd|reap N PAYLOAD\n", argv[0]);
        return 2;
    }
    enum mem_mode mode;
    if (mem_mode_parse(argv[2], &mode) < 0) {
        fprintf(stderr, "unknown mode %s\n", argv[2]);
        return 2;
    }
    int n = atoi(argv[3]);
    if (n < 1 || n > 10000)
        return 2;
    const char *payload = argv[4];
    uint64_t *v[2][9];
    for (int k = 0; k < 2; k++)
        for (int f = 0; f < 9; f++)
            v[k][f] = calloc((size_t)n, sizeof(uint64_t));
    struct thaw_error err = {{0}};
    struct vm_pool pool;
    if (vm_pool_init(&pool, 2, &err) < 0) {
        fprintf(stderr, "vm pool: %s\n", err.msg);
        return 1;
    }
    for (int i = 0; i < 2 * n; i++) {
        int pooled = i % 2; /* interleaved: both variants see the same machine */
        struct restored r;
        uint64_t t0 = clock_now_ns();
        /* reap: the working set must exist already (the script records it first). */
        enum pager_mode pm = mode == MEM_REAP ? PAGER_PREFETCH : PAGER_LAZY;
        if (snapshot_restore_pooled(&r, argv[1], mode, pm, NULL, -1, pooled ? &pool : NULL, &err) < 0) {
            fprintf(stderr, "restore: %s\n", err.msg);
            return 1;
        }
        uint64_t t1 = clock_now_ns();
        uint8_t *resp = NULL;
        size_t len = 0;
        if (instance_invoke(&r.inst, payload, strlen(payload), &resp, &len, &err) < 0) {
            fprintf(stderr, "invoke: %s\n", err.msg);
            return 1;
        }
        uint64_t t2 = clock_now_ns();
        if (mode == MEM_REAP && !r.mem.ready.prefetch_ok) {
            fprintf(stderr, "no working set was prefetched: %s\n", r.mem.ready.prefetch_error);
            return 1;
        }
        free(resp);
        restored_destroy(&r);
        if (pooled && vm_pool_refill(&pool, &err) < 0) {
            fprintf(stderr, "refill: %s\n", err.msg);
            return 1;
        }
        int j = i / 2;
        v[pooled][0][j] = r.t.state_load_ns;
        v[pooled][1][j] = r.t.memory_setup_ns;
        v[pooled][2][j] = r.t.vm_create_ns;
        v[pooled][3][j] = t1 - t0;
        v[pooled][4][j] = t2 - t1;
        v[pooled][5][j] = t2 - t0;
        /* The prefetch as the pager reported it (reap): its read (from issue to the last
         * byte seen), its install, and the install per page in ns. */
        v[pooled][6][j] = r.mem.ready.prefetch_read_ns;
        v[pooled][7][j] = r.mem.ready.prefetch_install_ns;
        v[pooled][8][j] = r.mem.ready.prefetch_pages ? r.mem.ready.prefetch_install_ns * 1000 / r.mem.ready.prefetch_pages : 0;
    }
    printf("Command: `build/bench/restore_path %s %s %d '%s'`  \n", argv[1], argv[2], n, payload);
    printf("Medians of %d restores each, interleaved, in one process; microseconds.\n\n", n);
    printf("| VMs | state load | memory set-up (not overlapped) | VM + vCPU state | restore to first instruction "
           "| first response | cold start | prefetch read | install | install per page (ns) |\n"
           "|---|---|---|---|---|---|---|---|---|---|\n");
    for (int k = 0; k < 2; k++)
        printf("| %s | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f |\n",
               k ? "from the pool" : "created per restore", median_us(v[k][0], n), median_us(v[k][1], n),
               median_us(v[k][2], n), median_us(v[k][3], n), median_us(v[k][4], n), median_us(v[k][5], n),
               median_us(v[k][6], n), median_us(v[k][7], n), median_us(v[k][8], n));
    vm_pool_destroy(&pool);
    return 0;
}
