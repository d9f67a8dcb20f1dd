/* Spares for long-running callers (sandbox_keep_spares): VMs made ahead in this process
 * and worker processes started ahead. Restores answer as usual, take what was made
 * ahead, and the process's descriptors, threads, children and memory stay flat over
 * thousands of restores; the spares are bounded by their target and end when it is 0. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "guest_helpers.h"

/* What is measured is what restores keep, not ASan's quarantine of what they freed. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "quarantine_size_mb=0"; }

static char dir[64];

static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    assert_non_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static long rss_kb(void)
{
    char line[256];
    FILE *f = fopen("/proc/self/status", "r");
    assert_non_null(f);
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

#define MAX_CHILDREN 256

/* This process's children (those of every thread): up to MAX_CHILDREN pids into out. */
static int child_pids(pid_t out[MAX_CHILDREN])
{
    char path[300], buf[4096];
    int n = 0;
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "/proc/self/task/%s/children", e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        size_t k = fread(buf, 1, sizeof buf - 1, f);
        buf[k] = 0;
        fclose(f);
        for (char *t = strtok(buf, " \n"); t; t = strtok(NULL, " \n")) {
            assert_true(n < MAX_CHILDREN);
            out[n++] = (pid_t)atoi(t);
        }
    }
    closedir(d);
    return n;
}

static int children(void)
{
    pid_t pids[MAX_CHILDREN];
    return child_pids(pids);
}

/* A child that is a worker not jailed yet (Seccomp 0): a spare waiting for its instance. */
static pid_t waiting_spare(void)
{
    pid_t pids[MAX_CHILDREN];
    int n = child_pids(pids);
    for (int i = 0; i < n; i++) {
        char path[64], line[256];
        snprintf(path, sizeof path, "/proc/%d/status", (int)pids[i]);
        FILE *st = fopen(path, "r");
        int seccomp = -1;
        while (st && fgets(line, sizeof line, st))
            sscanf(line, "Seccomp: %d", &seccomp);
        if (st)
            fclose(st);
        if (seccomp == 0)
            return pids[i];
    }
    return -1;
}

/* A child that has exited (a zombie: its descriptors are closed) or is gone, within 20 s. */
static void wait_dead(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    for (int i = 0; i < 2000; i++) {
        FILE *f = fopen(path, "r");
        if (!f)
            return;
        size_t k = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[k] = 0;
        const char *paren = strrchr(buf, ')');
        if (!paren || paren[1] == 0 || paren[2] == 'Z' || paren[2] == 'X')
            return;
        usleep(10 * 1000);
    }
    fail_msg("spare %d still alive 20 s after SIGKILL", (int)pid);
}

/* Waits (up to 20 s: the background refills, slowly on a loaded host) until the spares
 * are back at their target. */
static void settle(unsigned workers, unsigned vms)
{
    struct sandbox_spare_stats sp;
    for (int i = 0; i < 2000; i++) {
        sandbox_spare_stats(&sp);
        if (sp.ready == workers && sp.vms_ready == vms)
            return;
        usleep(10 * 1000);
    }
    fail_msg("spares did not settle: %u workers (want %u), %u VMs (want %u)", sp.ready, workers, sp.vms_ready, vms);
}

static int setup(void **state)
{
    (void)state;
    /* Workers run build/thaw-worker (this test binary is not one), with absolute paths. */
    const char *build = getenv("THAW_BUILD_DIR") ? getenv("THAW_BUILD_DIR") : "build";
    char abs_build[4096], p[4200], exe[4096];
    if (!realpath(build, abs_build))
        return -1;
    setenv("THAW_BUILD_DIR", abs_build, 1);
    snprintf(p, sizeof p, "%s/thaw-worker", abs_build);
    if (!realpath(p, exe))
        return -1;
    setenv("THAW_WORKER_EXE", exe, 1);
    if (!kvm_available())
        return 0;
    struct thaw_error err = {{0}};
    struct sandbox *bt = boot_function("functions/hello", NULL, &err);
    if (!bt) {
        fprintf(stderr, "boot: %s\n", err.msg);
        return -1;
    }
    strcpy(dir, "/tmp/thaw-spares-XXXXXX");
    if (!mkdtemp(dir) || sandbox_snapshot(bt, dir, &err) < 0) {
        fprintf(stderr, "snapshot: %s\n", err.msg);
        sandbox_destroy(bt);
        return -1;
    }
    sandbox_destroy(bt);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (!dir[0])
        return 0;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void restore_and_answer(bool worker, enum mem_mode mode, int i)
{
    struct thaw_error err = {{0}};
    struct sandbox_options opt = {.worker = worker};
    struct sandbox *sb;
    if (sandbox_restore(&sb, dir, mode, &opt, &err) < 0)
        fail_msg("restore %d: %s", i, err.msg);
    char req[64];
    snprintf(req, sizeof req, "{\"name\": \"s%d\"}", i);
    char *resp = invoke_str(sb, req, &err);
    char want[64];
    snprintf(want, sizeof want, "Hello, s%d!", i);
    if (!resp || !strstr(resp, want))
        fail_msg("restore %d answered %s (%s)", i, resp ? resp : "nothing", err.msg);
    free(resp);
    sandbox_destroy(sb);
}

/* In process: 2 VMs kept made; 1,500 restores take them and the pool makes them good;
 * descriptors, threads and memory flat, the pool never above its target. */
static void test_kept_vms_flat_over_thousands_of_restores(void **state)
{
    (void)state;
    if (!dir[0])
        skip();
    struct thaw_error err = {{0}};
    assert_int_equal(sandbox_keep_spares(2, false, &err), 0);
    settle(0, 2);
    for (int i = 0; i < 200; i++) /* warm up: allocator arenas, thread stacks */
        restore_and_answer(false, i % 2 ? MEM_LAZY : MEM_COPY, i);
    settle(0, 2);
    int fds0 = count_dir("/proc/self/fd"), threads0 = count_dir("/proc/self/task");
    long rss0 = rss_kb();
    struct sandbox_spare_stats sp;
    for (int i = 0; i < 1300; i++) {
        restore_and_answer(false, i % 2 ? MEM_LAZY : MEM_COPY, i);
        sandbox_spare_stats(&sp);
        if (sp.vms_ready > 2)
            fail_msg("pool above its target: %u VMs", sp.vms_ready);
    }
    settle(0, 2);
    int fds1 = count_dir("/proc/self/fd"), threads1 = count_dir("/proc/self/task");
    long rss1 = rss_kb();
    fprintf(stderr, "after 200 restores: %d fds, %d threads, %ld KiB; after 1500: %d fds, %d threads, %ld KiB\n", fds0,
            threads0, rss0, fds1, threads1, rss1);
    assert_int_equal(fds1, fds0);
    assert_int_equal(threads1, threads0);
    assert_true(rss1 - rss0 < 8192);
    assert_int_equal(sandbox_keep_spares(0, false, &err), 0);
    sandbox_spare_stats(&sp);
    assert_true(sp.vms_ready <= 1);
}

/* Workers: 2 spares kept started; restores take them (uffd: with our pager thread too),
 * the refiller replaces them; a spare killed while it waits is replaced, never used;
 * descriptors and children flat; at 0 no child is left. */
static void test_spare_workers_taken_and_replaced(void **state)
{
    (void)state;
    if (!dir[0])
        skip();
    struct thaw_error err = {{0}};
    int kids0 = children();
    assert_int_equal(sandbox_keep_spares(2, true, &err), 0);
    settle(2, 2);
    assert_int_equal(children(), kids0 + 2);
    for (int i = 0; i < 20; i++) /* warm up */
        restore_and_answer(true, i % 2 ? MEM_LAZY : MEM_UFFD, i);
    settle(2, 2);
    struct sandbox_spare_stats sp0, sp;
    sandbox_spare_stats(&sp0);
    int fds0 = count_dir("/proc/self/fd");
    const int n = 120;
    uint64_t must_take = 0;
    for (int i = 0; i < n; i++) {
        /* Every other restore waits for the refiller first and must take a spare (a
         * killed one is found dead and the other taken); the rest race it, and take
         * one or start their own. */
        bool settled = i % 2 == 0;
        struct sandbox_spare_stats before, after;
        if (settled)
            settle(2, 2);
        sandbox_spare_stats(&before);
        restore_and_answer(true, i % 3 == 0 ? MEM_LAZY : i % 3 == 1 ? MEM_UFFD : MEM_REAP, i);
        if (settled) {
            sandbox_spare_stats(&after);
            if (after.taken != before.taken + 1)
                fail_msg("restore %d with %u spares ready took %llu (missed %llu)", i, before.ready,
                         (unsigned long long)(after.taken - before.taken),
                         (unsigned long long)(after.missed - before.missed));
            must_take++;
        }
        if (i % 40 == 20) { /* a spare killed while it waits: replaced, never handed out */
            settle(2, 2);
            pid_t victim = waiting_spare();
            assert_true(victim > 0);
            assert_int_equal(kill(victim, SIGKILL), 0);
            wait_dead(victim); /* not taken while it is still dying */
        }
    }
    settle(2, 2);
    sandbox_spare_stats(&sp);
    int fds1 = count_dir("/proc/self/fd");
    fprintf(stderr, "spare workers over %d restores: %llu taken, %llu missed, %llu died; fds %d -> %d\n", n,
            (unsigned long long)(sp.taken - sp0.taken), (unsigned long long)(sp.missed - sp0.missed),
            (unsigned long long)(sp.died - sp0.died), fds0, fds1);
    assert_int_equal(fds1, fds0);
    assert_int_equal(children(), kids0 + 2);
    assert_true(sp.taken - sp0.taken + sp.missed - sp0.missed == (uint64_t)n);
    assert_true(sp.taken - sp0.taken >= must_take); /* every start that found one ready took it */
    assert_true(must_take == (uint64_t)n / 2);
    assert_true(sp.died - sp0.died >= 1);
    assert_int_equal(sandbox_keep_spares(0, true, &err), 0);
    assert_int_equal(children(), kids0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kept_vms_flat_over_thousands_of_restores),
        cmocka_unit_test(test_spare_workers_taken_and_replaced),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
