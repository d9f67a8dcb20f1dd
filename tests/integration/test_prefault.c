/* The pre-fault vCPU (host/vmm/prefault_vcpu.h) of a REAP prefetch restore: it touches
 * exactly the pages the pager installed and nothing the guest can see changes (the
 * function answers as it does without it, no page is served as a miss); it is off with
 * THAW_PREFAULT=0 and, by default, for a working set as small as hello's (THAW_PREFAULT=1
 * forces it, as these tests do); it refuses page 0, the monitor's scratch area and the stack guard;
 * a page outside the guest's map, or a guest that rewrote its code, stops it with a
 * reason while the function goes on answering. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "guest_helpers.h"
#include "host/pager/manager.h"
#include "host/snapshot/snapshot.h"
#include "host/vmm/vm_pool.h"
#include "thaw/abi.h"

static char dir[64];

static void rm_dir(void)
{
    const char *names[] = {"memory", "state", "ws.pages", "ws.trace", "ws.stale", "ws.lock", "ws.gens"};
    char path[128];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

static void answer(struct restored *r, const char *name)
{
    struct thaw_error err = {{0}};
    char req[64], want[64];
    snprintf(req, sizeof req, "{\"name\": \"%s\"}", name);
    snprintf(want, sizeof want, "Hello, %s!", name);
    uint8_t *resp = NULL;
    size_t len = 0;
    if (instance_invoke(&r->inst, req, strlen(req), &resp, &len, &err) < 0)
        fail_msg("invoke: %s", err.msg);
    if (!memmem(resp, len, want, strlen(want)))
        fail_msg("answered %.*s", (int)len, resp);
    free(resp);
}

/* A snapshot of hello with a recorded working set in dir. */
static int setup(void **state)
{
    (void)state;
    if (!kvm_available())
        return 0;
    /* The worker executable for the worker test (this binary is not one), and the
     * kernel and functions, by absolute paths (a worker starts elsewhere). */
    static char abs_build[4096], worker_exe[4200];
    if (!realpath(getenv("THAW_BUILD_DIR") ? getenv("THAW_BUILD_DIR") : "build", abs_build))
        fail_msg("no build directory");
    setenv("THAW_BUILD_DIR", abs_build, 1);
    snprintf(worker_exe, sizeof worker_exe, "%s/thaw-worker", abs_build);
    setenv("THAW_WORKER_EXE", worker_exe, 1);
    struct thaw_error err = {{0}};
    struct sandbox *bt = boot_function("functions/hello", NULL, &err);
    if (!bt)
        fail_msg("boot: %s", err.msg);
    strcpy(dir, "/tmp/thaw-prefault-XXXXXX");
    assert_non_null(mkdtemp(dir));
    if (sandbox_snapshot(bt, dir, &err) < 0)
        fail_msg("snapshot: %s", err.msg);
    sandbox_destroy(bt);
    struct restored r;
    if (snapshot_restore(&r, dir, MEM_REAP, PAGER_RECORD, NULL, -1, &err) < 0)
        fail_msg("recording restore: %s", err.msg);
    assert_null(r.prefault); /* nothing to pre-fault before there is a working set */
    answer(&r, "record");
    struct pager_stats ps;
    if (mem_backend_pager_query(&r.mem, "finish-record", &ps, &err) < 0)
        fail_msg("finish-record: %s", err.msg);
    assert_true(ps.recorded > 0);
    restored_destroy(&r);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (dir[0])
        rm_dir();
    return 0;
}

static uint64_t pages_of(const struct gpa_runs *runs)
{
    uint64_t n = 0;
    for (uint64_t i = 0; runs && i < runs->n; i++)
        n += runs->v[i].pages;
    return n;
}

/* A prefetch restore of the snapshot in dir, with its pre-fault vCPU (THAW_PREFAULT=1). */
static void prefetch_restore(struct restored *r)
{
    struct thaw_error err = {{0}};
    if (snapshot_restore(r, dir, MEM_REAP, PAGER_PREFETCH, NULL, -1, &err) < 0)
        fail_msg("restore: %s", err.msg);
    assert_non_null(r->prefault);
}

/* Waits (up to ~5 s) until the vCPU has touched target pages or stopped. */
static void wait_for(struct prefault *p, uint64_t target, struct prefault_stats *st)
{
    for (int i = 0; i < 5000; i++) {
        prefault_stats(p, st);
        if (st->touched >= target || st->stopped)
            return;
        usleep(1000);
    }
}

static void test_touches_what_the_pager_installed(void **state)
{
    (void)state;
    if (!kvm_available())
        skip();
    struct thaw_error err = {{0}};
    struct restored r;
    prefetch_restore(&r);
    assert_true(r.mem.ready.prefetch_ok);
    assert_non_null(r.prefault);
    uint64_t installed = pages_of(mem_backend_installed(&r.mem));
    assert_int_equal(installed, r.mem.ready.prefetch_pages);
    /* A VM made on the restore's path has the guest's vCPU only: the thread makes its
     * own, outside the VM's list (which vCPU 0's code reads meanwhile). */
    assert_int_equal(r.inst.vm.nvcpus, 1);
    answer(&r, "prefault");
    /* A second batch runs from its start too (the vCPU left the first in its stub). */
    const struct gpa_runs *ws = mem_backend_installed(&r.mem);
    struct prefault_stats now;
    wait_for(r.prefault, installed, &now);
    prefault_add(r.prefault, ws->v, ws->n);
    wait_for(r.prefault, 2 * installed, &now);
    if (now.stopped)
        fail_msg("second batch: %s", now.why);
    assert_int_equal(now.touched, 2 * installed);
    answer(&r, "again");
    struct pager_stats ps;
    if (mem_backend_pager_query(&r.mem, "stats", &ps, &err) < 0)
        fail_msg("stats: %s", err.msg);
    assert_int_equal(ps.served_faults, 0); /* it touched installed pages only: no miss */
    restored_destroy(&r);
    assert_null(r.prefault);
    const struct prefault_stats *st = &r.prefault_st;
    if (st->stopped)
        fail_msg("stopped: %s", st->why);
    assert_int_equal(st->pages, 2 * installed);
    assert_int_equal(st->touched, 2 * installed);
    assert_int_equal(st->refused, 0);
    assert_true(st->busy_ns > 0);
}

/* A VM made ahead (a pool's refill) brings the pre-fault vCPU with it: used as it is. */
static void test_uses_the_vcpu_a_pooled_vm_brings(void **state)
{
    (void)state;
    if (!kvm_available())
        skip();
    struct thaw_error err = {{0}};
    struct vm_pool pool;
    assert_int_equal(vm_pool_init(&pool, 1, &err), 0);
    struct restored r;
    if (snapshot_restore_pooled(&r, dir, MEM_REAP, PAGER_PREFETCH, NULL, -1, &pool, &err) < 0)
        fail_msg("restore: %s", err.msg);
    assert_non_null(r.prefault);
    assert_int_equal(r.inst.vm.nvcpus, 2);
    uint64_t installed = pages_of(mem_backend_installed(&r.mem));
    prefault_wait_set_up(r.prefault);
    answer(&r, "pooled");
    struct prefault_stats st;
    wait_for(r.prefault, installed, &st);
    restored_destroy(&r);
    if (r.prefault_st.stopped)
        fail_msg("stopped: %s", r.prefault_st.why);
    assert_int_equal(r.prefault_st.touched, installed);
    vm_pool_destroy(&pool);
}

/* A prefetch restore with THAW_PREFAULT set to value (NULL: unset) that must not start
 * the vCPU, and must say why (why_part). */
static void restore_without_it(const char *value, const char *why_part, const char *name)
{
    struct thaw_error err = {{0}};
    struct restored r;
    if (value)
        setenv("THAW_PREFAULT", value, 1);
    else
        unsetenv("THAW_PREFAULT");
    int rc = snapshot_restore(&r, dir, MEM_REAP, PAGER_PREFETCH, NULL, -1, &err);
    setenv("THAW_PREFAULT", "1", 1);
    if (rc < 0)
        fail_msg("restore: %s", err.msg);
    assert_null(r.prefault);
    if (!strstr(r.prefault_st.why, why_part))
        fail_msg("why: %s", r.prefault_st.why);
    assert_int_equal(r.inst.vm.nvcpus, 1);
    answer(&r, name);
    restored_destroy(&r);
}

static void test_off_with_thaw_prefault_0(void **state)
{
    (void)state;
    if (!kvm_available())
        skip();
    restore_without_it("0", "THAW_PREFAULT=0", "off");
}

/* hello's working set is a few dozen pages: by default not worth a second vCPU. */
static void test_off_by_default_for_a_small_working_set(void **state)
{
    (void)state;
    if (!kvm_available())
        skip();
    restore_without_it(NULL, "fewer than 256", "small");
}

static void test_refuses_monitor_areas_and_stops_outside_the_map(void **state)
{
    (void)state;
    if (!kvm_available())
        skip();
    struct restored r;
    prefetch_restore(&r);
    assert_non_null(r.prefault);
    answer(&r, "first"); /* the working set's batch is done by the end of the call, or soon */
    struct prefault_stats st;
    prefault_stats(r.prefault, &st);
    wait_for(r.prefault, st.pages, &st);
    assert_false(st.stopped);
    uint64_t guard = r.inst.mem_size - THAW_STACK_SIZE - THAW_STACK_GUARD_SIZE;
    const struct gpa_run bad[] = {
        {0, 1},                                   /* page 0 */
        {THAW_GPA_MONITOR_SCRATCH + 0x1000, 2},   /* its own tables */
        {guard + 0x1000, 1},                      /* the stack guard */
        {(4ull << 30) - 0x1000, 2},               /* past 4 GiB */
        {0x201001, 1},                            /* not page-aligned */
    };
    prefault_add(r.prefault, bad, sizeof bad / sizeof bad[0]);
    prefault_stats(r.prefault, &st);
    assert_int_equal(st.refused, 1 + 2 + 1 + 2 + 1);
    /* Mapped by no page table (the identity map ends with RAM): it stops, says why. */
    const struct gpa_run outside = {3ull << 30, 1};
    prefault_add(r.prefault, &outside, 1);
    wait_for(r.prefault, UINT64_MAX, &st);
    assert_true(st.stopped);
    if (!strstr(st.why, "0xc0000000"))
        fail_msg("why: %s", st.why);
    answer(&r, "after"); /* the guest never noticed */
    restored_destroy(&r);
}

/* The scratch area is guest memory: a guest may rewrite the code there. A batch has a
 * deadline, so the second CPU is not kept busy for long. */
static void test_rewritten_code_hits_the_deadline(void **state)
{
    (void)state;
    if (!kvm_available())
        skip();
    struct restored r;
    prefetch_restore(&r);
    answer(&r, "first");
    struct prefault_stats st;
    prefault_stats(r.prefault, &st);
    wait_for(r.prefault, st.pages, &st);
    assert_false(st.stopped);
    static const uint8_t spin[] = {0xeb, 0xfe}; /* jmp $ */
    memcpy(r.inst.mem + THAW_GPA_MONITOR_SCRATCH, spin, sizeof spin);
    const struct gpa_run one = {0x200000, 1};
    prefault_add(r.prefault, &one, 1);
    wait_for(r.prefault, UINT64_MAX, &st);
    assert_true(st.stopped);
    if (!strstr(st.why, "too long"))
        fail_msg("why: %s", st.why);
    answer(&r, "after");
    restored_destroy(&r);
}

static void quiet_log(void *ctx, const char *id, uint64_t invocation, enum sandbox_stream stream, const char *line,
                      size_t len)
{
    (void)ctx, (void)id, (void)invocation, (void)stream, (void)line, (void)len;
}

/* In a jailed worker the pager is its caller's: the caller relays the pages it installed
 * after the "ready" line, and the worker's pre-fault vCPU touches them all, then the
 * image's. helloworld (Python), whose working set is large enough that the pairs hold
 * newline bytes: were they sent on the caller's own control stream, its next query
 * would read them as a line. */
static void test_in_a_worker_with_the_callers_pager(void **state)
{
    (void)state;
    if (!kvm_available())
        skip();
    if (geteuid() != 0) {
        fprintf(stderr, "\n*** SKIP: worker processes need root (namespaces) ***\n\n");
        skip();
    }
    struct thaw_error err = {{0}};
    char py[96];
    snprintf(py, sizeof py, "%.80s-py", dir);
    char cmd[300]; /* the CLI builds the Python bundle on the way */
    snprintf(cmd, sizeof cmd, "%s/thaw snapshot functions/helloworld -o '%s' >/dev/null 2>&1", getenv("THAW_BUILD_DIR"), py);
    if (system(cmd) != 0)
        fail_msg("%s failed", cmd);
    struct sandbox_options o = {.worker = true, .log = quiet_log};
    struct sandbox *sb;
    struct sandbox_stats st;
    for (int round = 0; round < 2; round++) { /* the first records, the second prefetches */
        if (sandbox_restore(&sb, py, MEM_REAP, &o, &err) < 0)
            fail_msg("restore: %s", err.msg);
        for (int call = 0; call < 2; call++) {
            char *resp = invoke_str(sb, "{}", &err);
            if (!resp || !strstr(resp, "Hello, world!"))
                fail_msg("call %d answered %s (%s)", call, resp ? resp : "nothing", err.msg);
            free(resp);
            for (int i = 0; i < 2000; i++) {
                if (sandbox_stats(sb, &st, &err) < 0)
                    fail_msg("stats: %s", err.msg);
                if (!round || (st.prefault_touched == st.prefault_pages && st.prefault_pages))
                    break;
                usleep(1000);
            }
        }
        if (round == 0) {
            assert_true(st.reap_recorded);
            sandbox_destroy(sb);
        }
    }
    assert_true(st.in_worker);
    assert_true(st.reap_prefetched);
    if (st.prefault_note[0])
        fail_msg("note: %s", st.prefault_note);
    assert_int_equal(st.invocations, 2);
    assert_int_equal(st.prefault_pages, st.ws_pages + st.rootfs_ws_pages);
    assert_int_equal(st.prefault_touched, st.prefault_pages);
    sandbox_destroy(sb);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", py);
    assert_int_equal(system(cmd), 0);
}

/* Through the host's memory manager (`thaw pager --serve`, manager.h): the VMM's hello
 * asks for the installed pages, the manager sends them after "ready". */
static void test_through_the_memory_manager(void **state)
{
    (void)state;
    if (!kvm_available())
        skip();
    char sock[96];
    snprintf(sock, sizeof sock, "%.80s.sock", dir);
    unlink(sock);
    int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, sock, strlen(sock) + 1);
    assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(ls, 8), 0);
    int sp[2];
    assert_int_equal(pipe2(sp, O_CLOEXEC), 0);
    pid_t manager = fork();
    assert_true(manager >= 0);
    if (manager == 0) {
        close(sp[1]);
        alarm(60);
        struct pager_manager_opts o = {.default_mode = PAGER_LAZY, .snapshot_root = "/tmp", .max_sessions = 4};
        struct pager_manager_stats mst;
        struct thaw_error merr = {{0}};
        _exit(pager_manager_run(ls, sp[0], &o, &mst, &merr) == 0 ? 0 : 1);
    }
    close(ls);
    close(sp[0]);
    struct thaw_error err = {{0}};
    struct restored r;
    int rc = snapshot_restore(&r, dir, MEM_REAP, PAGER_PREFETCH, sock, -1, &err);
    if (rc == 0) {
        assert_true(r.mem.ready.prefetch_ok);
        assert_null(r.mem.thread); /* the pager is the manager */
        uint64_t installed = pages_of(mem_backend_installed(&r.mem));
        assert_int_equal(installed, r.mem.ready.prefetch_pages);
        assert_non_null(r.prefault);
        answer(&r, "manager");
        struct prefault_stats st;
        wait_for(r.prefault, installed, &st);
        if (st.stopped)
            fail_msg("stopped: %s", st.why);
        assert_int_equal(st.pages, installed);
        assert_int_equal(st.touched, installed);
        restored_destroy(&r);
    }
    close(sp[1]); /* the manager stops */
    int status;
    assert_int_equal(waitpid(manager, &status, 0), manager);
    unlink(sock);
    if (rc < 0)
        fail_msg("restore: %s", err.msg);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

int main(void)
{
    setenv("THAW_PREFAULT", "1", 1); /* hello's working set is below the default's threshold */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_touches_what_the_pager_installed),
        cmocka_unit_test(test_uses_the_vcpu_a_pooled_vm_brings),
        cmocka_unit_test(test_off_with_thaw_prefault_0),
        cmocka_unit_test(test_off_by_default_for_a_small_working_set),
        cmocka_unit_test(test_refuses_monitor_areas_and_stops_outside_the_map),
        cmocka_unit_test(test_rewritten_code_hits_the_deadline),
        cmocka_unit_test(test_in_a_worker_with_the_callers_pager),
        cmocka_unit_test(test_through_the_memory_manager),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
