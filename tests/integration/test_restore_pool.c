/* The restore path with a pool of pre-created VMs (vm_pool.h) and the pager's prefetch
 * overlapping the VM set-up (snapshot_restore_pooled): every memory mode answers as a
 * booted instance does, pooled or not, and the pool hands out and refills its VMs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "guest_helpers.h"
#include "host/snapshot/snapshot.h"
#include "host/vmm/vm_pool.h"

static char dir[64];

static void rm_dir(void)
{
    const char *names[] = {"memory", "state", "ws.pages", "ws.trace", "ws.stale", "ws.lock"};
    char path[128];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

static void test_pool_hands_out_and_refills(void **state)
{
    (void)state;
    if (!kvm_available())
        skip();
    struct vm_pool pool;
    struct thaw_error err = {{0}};
    assert_int_equal(vm_pool_init(&pool, 2, &err), 0);
    assert_int_equal(pool.count, 2);
    struct vm a, b, c;
    assert_int_equal(vm_pool_take(&pool, &a, &err), 0);
    assert_int_equal(vm_pool_take(&pool, &b, &err), 0);
    assert_int_equal(vm_pool_take(&pool, &c, &err), 0); /* empty: made on the spot */
    assert_int_equal(pool.created_on_demand, 1);
    assert_true(a.vm_fd >= 0 && b.vm_fd >= 0 && c.vm_fd >= 0 && a.vm_fd != b.vm_fd);
    assert_int_equal(a.nvcpus, 2); /* made ahead: the guest's vCPU and the pre-fault vCPU's */
    assert_int_equal(c.nvcpus, 1); /* made on a restore's path: the guest's only */
    assert_int_equal(vm_pool_refill(&pool, &err), 0);
    assert_int_equal(pool.count, 2);
    vm_destroy(&a);
    vm_destroy(&b);
    vm_destroy(&c);
    vm_pool_destroy(&pool);
}

/* The filler makes the missing VMs in a thread of its own; a take waits for it, and once
 * the filler has nothing left to make it is joined: no thread survives the take. */
static void test_filler_makes_the_vm_in_the_background(void **state)
{
    (void)state;
    if (!kvm_available())
        skip();
    struct vm_pool pool;
    struct thaw_error err = {{0}};
    vm_pool_init_empty(&pool, 1);
    assert_int_equal(pool.count, 0);
    assert_int_equal(vm_pool_fill_async(&pool, &err), 0);
    struct vm a, b;
    assert_int_equal(vm_pool_take(&pool, &a, &err), 0);
    assert_int_equal(pool.created_by_filler, 1);
    assert_int_equal(pool.created_on_demand, 0);
    assert_int_equal(pool.filler, VM_POOL_IDLE);
    /* A one-shot filler is waited for on the restore's path: the guest's vCPU only (the
     * pre-fault vCPU's thread makes its own). */
    assert_true(a.vm_fd >= 0 && a.nvcpus == 1);
    /* A full pool starts no filler; an empty one with no filler makes the VM on the spot. */
    assert_int_equal(vm_pool_take(&pool, &b, &err), 0);
    assert_int_equal(pool.created_on_demand, 1);
    assert_int_equal(vm_pool_refill(&pool, &err), 0);
    assert_int_equal(vm_pool_fill_async(&pool, &err), 0);
    assert_int_equal(pool.filler, VM_POOL_IDLE);
    vm_destroy(&a);
    vm_destroy(&b);
    vm_pool_destroy(&pool);
}

static void test_pooled_restores_answer_in_every_mode(void **state)
{
    (void)state;
    if (!kvm_available())
        skip();
    struct thaw_error err = {{0}};
    struct sandbox *bt = boot_function("functions/hello", NULL, &err);
    if (!bt)
        fail_msg("boot: %s", err.msg);
    strcpy(dir, "/tmp/thaw-pool-XXXXXX");
    assert_non_null(mkdtemp(dir));
    if (sandbox_snapshot(bt, dir, &err) < 0)
        fail_msg("snapshot: %s", err.msg);
    sandbox_destroy(bt);
    struct vm_pool pool;
    assert_int_equal(vm_pool_init(&pool, 1, &err), 0);
    const enum mem_mode modes[] = {MEM_COPY, MEM_LAZY, MEM_UFFD, MEM_REAP, MEM_REAP};
    for (size_t i = 0; i < 2 * sizeof modes / sizeof modes[0]; i++) {
        enum mem_mode m = modes[i / 2];
        int pooled = i % 2;
        struct restored r;
        /* reap: the first two restores record (PAGER_RECORD), the last two prefetch. */
        enum pager_mode pm = m != MEM_REAP ? PAGER_LAZY : i / 2 == 3 ? PAGER_RECORD : PAGER_PREFETCH;
        if (snapshot_restore_pooled(&r, dir, m, pm, NULL, -1, pooled ? &pool : NULL, &err) < 0)
            fail_msg("restore %s: %s", mem_mode_name(m), err.msg);
        const char *req = "{\"name\": \"pool\"}";
        uint8_t *resp = NULL;
        size_t len = 0;
        if (instance_invoke(&r.inst, req, strlen(req), &resp, &len, &err) < 0)
            fail_msg("invoke %s: %s", mem_mode_name(m), err.msg);
        if (!memmem(resp, len, "Hello, pool!", 12))
            fail_msg("%s%s answered %.*s", mem_mode_name(m), pooled ? " (pooled)" : "", (int)len, resp);
        free(resp);
        struct pager_stats ps;
        if (pm == PAGER_RECORD && mem_backend_pager_query(&r.mem, "finish-record", &ps, &err) < 0)
            fail_msg("reap finish: %s", err.msg);
        if (pm == PAGER_PREFETCH && !r.mem.ready.prefetch_ok)
            fail_msg("reap%s: no prefetch: %s", pooled ? " (pooled)" : "", r.mem.ready.prefetch_error);
        /* The pager thread moves the read's pages in (UFFDIO_MOVE, Linux 6.8+): all of them
         * but those of the chunks read whole as huge pages (huge_chunks.h). */
        if (pm == PAGER_PREFETCH &&
            r.mem.ready.prefetch_moved + r.mem.ready.huge_ws_pages != r.mem.ready.prefetch_pages)
            fail_msg("reap%s: %llu of %llu prefetched pages moved in, %llu in huge chunks", pooled ? " (pooled)" : "",
                     (unsigned long long)r.mem.ready.prefetch_moved, (unsigned long long)r.mem.ready.prefetch_pages,
                     (unsigned long long)r.mem.ready.huge_ws_pages);
        restored_destroy(&r);
        assert_int_equal(vm_pool_refill(&pool, &err), 0);
    }
    assert_true(pool.taken >= 5);
    vm_pool_destroy(&pool);
    rm_dir();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_hands_out_and_refills),
        cmocka_unit_test(test_filler_makes_the_vm_in_the_background),
        cmocka_unit_test(test_pooled_restores_answer_in_every_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
