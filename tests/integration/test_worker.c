/* Instances in worker processes (sandbox_options.worker): the same answers as in
 * process, a jailed worker seen from outside, and a worker that dies, hangs or sends
 * garbage never harming the caller. Needs /dev/kvm and root; the worker executable is
 * build/thaw-worker (THAW_WORKER_EXE): this test binary is not one. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc_status.h"
#include "rootfs_cow_pages.h"

#include "host/sandbox/sandbox_impl.h"
#include "host/util/clock.h"

/* Tests that need /dev/kvm say so loudly and count as skipped, never silently pass. */
static int kvm_available(void)
{
    int fd = open("/dev/kvm", O_RDWR);
    if (fd < 0) {
        fprintf(stderr, "\n*** SKIP: /dev/kvm is not usable here: microVM tests did not run ***\n\n");
        return 0;
    }
    close(fd);
    return 1;
}

static char tmpdir[64];
static char snapdir[128];
static char worker_exe[4096];

static void quiet_log(void *ctx, const char *id, uint64_t inv, enum sandbox_stream s, const char *line, size_t len)
{
    (void)ctx, (void)id, (void)inv, (void)s, (void)line, (void)len;
}

static struct sandbox_options worker_opt(void)
{
    return (struct sandbox_options){.worker = true, .log = quiet_log};
}

static int usable(void)
{
    if (!kvm_available())
        return 0;
    if (geteuid() != 0) {
        fprintf(stderr, "\n*** SKIP: worker processes need root (namespaces) ***\n\n");
        return 0;
    }
    return 1;
}

static char *call_str(struct sandbox *sb, const char *req)
{
    uint8_t *resp;
    size_t len;
    struct thaw_error err = {{0}};
    if (sandbox_invoke(sb, req, strlen(req), &resp, &len, &err) < 0) {
        fprintf(stderr, "invoke: %s\n", err.msg);
        return NULL;
    }
    char *s = malloc(len + 1);
    memcpy(s, resp, len);
    s[len] = 0;
    free(resp);
    return s;
}

static void assert_jailed(pid_t pid)
{
    char v[128];
    assert_true(pid > 0);
    proc_status_field(pid, "Seccomp", v, sizeof v);
    assert_string_equal(v, "2");
    proc_status_field(pid, "CapEff", v, sizeof v);
    assert_string_equal(v, "0000000000000000");
    proc_status_field(pid, "CapBnd", v, sizeof v);
    assert_string_equal(v, "0000000000000000");
    proc_status_field(pid, "NoNewPrivs", v, sizeof v);
    assert_string_equal(v, "1");
    proc_status_field(pid, "Uid", v, sizeof v);
    assert_string_equal(v, "65534\t65534\t65534\t65534");
}

static void test_boot_same_answer_and_jailed(void **state)
{
    (void)state;
    if (!usable())
        return;
    struct thaw_error err = {{0}};
    struct sandbox *local, *w;
    struct sandbox_options lo = {.log = quiet_log}, wo = worker_opt();
    assert_int_equal(sandbox_boot(&local, "functions/hello", &lo, &err), 0);
    if (sandbox_boot(&w, "functions/hello", &wo, &err) < 0)
        fail_msg("worker boot: %s", err.msg);
    const char *req = "{\"name\": \"worker\"}";
    char *a = call_str(local, req), *b = call_str(w, req);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(a, b);
    assert_non_null(strstr(b, "Hello, worker!"));
    free(a);
    free(b);
    assert_jailed(sandbox_worker_pid(w));
    struct sandbox_stats st;
    assert_int_equal(sandbox_stats(w, &st, &err), 0);
    assert_true(st.in_worker);
    assert_string_equal(st.function, "hello");
    assert_int_equal(st.invocations, 1);
    pid_t pid = sandbox_worker_pid(w);
    sandbox_destroy(w);
    sandbox_destroy(local);
    assert_int_equal(kill(pid, 0), -1); /* reaped, not a zombie */
    assert_int_equal(errno, ESRCH);
}

static void test_restore_every_mode(void **state)
{
    (void)state;
    if (!usable())
        return;
    struct thaw_error err = {{0}};
    const enum mem_mode modes[] = {MEM_COPY, MEM_LAZY, MEM_UFFD, MEM_REAP, MEM_REAP};
    const char *req = "{\"name\": \"restored\"}";
    for (size_t i = 0; i < 5; i++) {
        struct sandbox *w;
        struct sandbox_options wo = worker_opt();
        if (sandbox_restore(&w, snapdir, modes[i], &wo, &err) < 0)
            fail_msg("worker restore (%s): %s", mem_mode_name(modes[i]), err.msg);
        assert_jailed(sandbox_worker_pid(w));
        char *b = call_str(w, req);
        assert_non_null(b);
        assert_non_null(strstr(b, "Hello, restored!"));
        free(b);
        struct sandbox_stats st;
        assert_int_equal(sandbox_stats(w, &st, &err), 0);
        assert_true(st.in_worker);
        assert_int_equal(st.mode, modes[i]);
        if (modes[i] == MEM_UFFD || i == 3) /* served lazily by the caller-side pager */
            if (st.pages_served == 0)
                fail_msg("%s: no page served (start %s, zero %llu, ws %llu)", mem_mode_name(modes[i]),
                         sandbox_start_name(st.start), (unsigned long long)st.zero_pages,
                         (unsigned long long)st.ws_pages);
        if (i == 3)
            assert_int_equal(st.start, SANDBOX_START_REAP_RECORD);
        if (i == 4) {
            assert_int_equal(st.start, SANDBOX_START_REAP_PREFETCH);
            assert_true(st.ws_pages > 0);
            assert_int_equal(st.reap_misses, 0);
        }
        sandbox_destroy(w);
        if (i == 3) { /* the caller-side pager wrote the working set */
            char p[256];
            snprintf(p, sizeof p, "%s/ws.pages", snapdir);
            assert_int_equal(access(p, R_OK), 0);
        }
    }
}

/* A snapshot taken from inside the jail: the caller makes the files, the worker fills
 * the image through the descriptor it is given; the result restores in every mode, in
 * process and in a worker, and so does a snapshot of a worker restored lazily through
 * the caller-side pager. */
static void test_snapshot_from_jailed_worker(void **state)
{
    (void)state;
    if (!usable())
        return;
    struct thaw_error err = {{0}};
    struct sandbox *w;
    struct sandbox_options wo = worker_opt();
    char snap[192], snap2[192];
    snprintf(snap, sizeof snap, "%s/from-worker", tmpdir);
    snprintf(snap2, sizeof snap2, "%s/from-restored-worker", tmpdir);
    if (sandbox_boot(&w, "functions/hello", &wo, &err) < 0)
        fail_msg("worker boot: %s", err.msg);
    assert_jailed(sandbox_worker_pid(w)); /* the boot ran jailed, and so does the snapshot */
    if (sandbox_snapshot(w, snap, &err) < 0)
        fail_msg("snapshot from a worker: %s", err.msg);
    assert_jailed(sandbox_worker_pid(w));
    struct sandbox_stats st;
    assert_int_equal(sandbox_stats(w, &st, &err), 0);
    assert_true(st.in_worker);
    assert_true(st.save_ns > 0 && st.snapshot_allocated_bytes > 0);
    char *b = call_str(w, "{\"name\": \"after\"}"); /* the instance still serves */
    assert_non_null(b);
    assert_non_null(strstr(b, "Hello, after!"));
    free(b);
    sandbox_destroy(w);
    /* No temporary directory is left next to it. */
    char cmd[400];
    snprintf(cmd, sizeof cmd, "ls -a %s | grep -q '\\.new\\.'", tmpdir);
    assert_int_not_equal(system(cmd), 0);

    const enum mem_mode modes[] = {MEM_COPY, MEM_LAZY, MEM_UFFD, MEM_REAP, MEM_REAP};
    for (int in_worker = 0; in_worker < 2; in_worker++)
        for (size_t i = 0; i < 5; i++) {
            struct sandbox *r;
            struct sandbox_options o = in_worker ? worker_opt() : (struct sandbox_options){.log = quiet_log};
            if (sandbox_restore(&r, snap, modes[i], &o, &err) < 0)
                fail_msg("restore of the worker's snapshot (%s, worker %d): %s", mem_mode_name(modes[i]),
                         in_worker, err.msg);
            b = call_str(r, "{\"name\": \"copied\"}");
            assert_non_null(b);
            assert_non_null(strstr(b, "Hello, copied!"));
            free(b);
            sandbox_destroy(r);
        }

    /* A worker restored in uffd mode: every page it saves comes through our pager. */
    if (sandbox_restore(&w, snap, MEM_UFFD, &wo, &err) < 0)
        fail_msg("worker restore: %s", err.msg);
    if (sandbox_snapshot(w, snap2, &err) < 0)
        fail_msg("snapshot of a restored worker: %s", err.msg);
    sandbox_destroy(w);
    struct sandbox *r;
    struct sandbox_options lo = {.log = quiet_log};
    if (sandbox_restore(&r, snap2, MEM_COPY, &lo, &err) < 0)
        fail_msg("restore of the restored worker's snapshot: %s", err.msg);
    b = call_str(r, "{\"name\": \"twice\"}");
    assert_non_null(b);
    assert_non_null(strstr(b, "Hello, twice!"));
    free(b);
    sandbox_destroy(r);
}

struct killer {
    pid_t pid;
    unsigned delay_ms;
};

static void *kill_later(void *arg)
{
    struct killer *k = arg;
    usleep(k->delay_ms * 1000);
    kill(k->pid, SIGKILL);
    return NULL;
}

/* A worker's restore maps the written image pages from rootfs.cow (read when touched);
 * a snapshot of that instance, whose caller tells written pages by their being private
 * copies in the worker, still holds every one, and restores to right answers. */
static void test_snapshot_of_restored_image_in_worker(void **state)
{
    (void)state;
    if (!usable())
        return;
    struct thaw_error err = {{0}};
    char a[192], b[192];
    snprintf(a, sizeof a, "%s/img-a", tmpdir);
    snprintf(b, sizeof b, "%s/img-b", tmpdir);
    struct sandbox *sb;
    struct sandbox_options lo = {.log = quiet_log}, wo = worker_opt();
    if (sandbox_boot(&sb, "functions/dynamic-image", &lo, &err) < 0 || sandbox_snapshot(sb, a, &err) < 0)
        fail_msg("boot and snapshot: %s", err.msg);
    sandbox_destroy(sb);
    uint64_t written = rootfs_cow_pages(a);
    assert_true(written >= 2 && written != UINT64_MAX);
    if (sandbox_restore(&sb, a, MEM_LAZY, &wo, &err) < 0)
        fail_msg("worker restore: %s", err.msg);
    char *r = call_str(sb, "{\"a\": 3, \"b\": 4}");
    assert_non_null(r);
    assert_non_null(strstr(r, "\"product\": 12"));
    free(r);
    if (sandbox_snapshot(sb, b, &err) < 0)
        fail_msg("snapshot of a restored image instance in a worker: %s", err.msg);
    sandbox_destroy(sb);
    if (rootfs_cow_pages(b) < written)
        fail_msg("%llu written pages, the snapshot it came from had %llu", (unsigned long long)rootfs_cow_pages(b),
                 (unsigned long long)written);
    if (sandbox_restore(&sb, b, MEM_REAP, &lo, &err) < 0)
        fail_msg("restore of the worker's snapshot: %s", err.msg);
    r = call_str(sb, "{\"a\": 9, \"b\": 9}");
    if (!r || !strstr(r, "\"product\": 81") || !strstr(r, "\"checks\": \"ok\""))
        fail_msg("restore of the worker's snapshot answered %s", r ? r : "nothing");
    free(r);
    sandbox_destroy(sb);
}

static void test_sigkill_mid_invocation(void **state)
{
    (void)state;
    if (!usable())
        return;
    struct thaw_error err = {{0}};
    struct sandbox *w;
    struct sandbox_options wo = worker_opt();
    if (sandbox_boot(&w, "functions/faulty", &wo, &err) < 0)
        fail_msg("worker boot: %s", err.msg);
    /* The guest spins for ever (until the default deadline, far off): the kill lands
     * in the invocation however late the killer thread runs on a loaded host. */
    struct killer k = {.pid = sandbox_worker_pid(w), .delay_ms = 300};
    pthread_t t;
    pthread_create(&t, NULL, kill_later, &k);
    const char *req = "{\"fault\": \"loop\"}";
    uint8_t *resp;
    size_t len;
    assert_int_equal(sandbox_invoke(w, req, strlen(req), &resp, &len, &err), -1);
    pthread_join(t, NULL);
    assert_int_equal(sandbox_last_failure(w), SANDBOX_FAIL_WORKER);
    assert_non_null(strstr(err.msg, "killed by signal 9"));
    assert_int_equal(kill(k.pid, 0), -1); /* already reaped */
    /* Dead: later calls refuse cleanly; stats still answer. */
    assert_int_equal(sandbox_invoke(w, req, strlen(req), &resp, &len, &err), -1);
    assert_non_null(strstr(err.msg, "dead"));
    struct sandbox_stats st;
    assert_int_equal(sandbox_stats(w, &st, &err), 0);
    assert_string_equal(st.function, "faulty");
    sandbox_destroy(w);
    /* The caller is fine: the next worker works. */
    assert_int_equal(sandbox_boot(&w, "functions/hello", &wo, &err), 0);
    char *b = call_str(w, "{\"name\": \"again\"}");
    assert_non_null(b);
    free(b);
    sandbox_destroy(w);
}

/* A fake worker (a shell script) in place of build/thaw. */
static int fake_worker(const char *body, uint64_t boot_timeout_ns, char *msg, size_t cap)
{
    char path[128];
    snprintf(path, sizeof path, "%s/fake-worker.sh", tmpdir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "#!/bin/sh\n%s\n", body);
    fclose(f);
    chmod(path, 0755);
    setenv("THAW_WORKER_EXE", path, 1);
    struct sandbox *w = NULL;
    struct sandbox_options wo = worker_opt();
    wo.boot_timeout_ns = boot_timeout_ns;
    struct thaw_error err = {{0}};
    int rc = sandbox_boot(&w, "functions/hello", &wo, &err);
    setenv("THAW_WORKER_EXE", worker_exe, 1);
    snprintf(msg, cap, "%s", err.msg);
    assert_null(w);
    /* Nothing left behind: every child was reaped. */
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
    return rc;
}

static void test_misbehaving_workers(void **state)
{
    (void)state;
    if (!usable())
        return;
    char msg[512];
    assert_int_equal(fake_worker("exit 3", 0, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "exited with status 3"));
    assert_int_equal(fake_worker("printf 'GARBAGE!GARBAGE!' >&3; sleep 5", 0, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "unknown message type"));
    uint64_t t0 = clock_now_ns();
    assert_int_equal(fake_worker("exec sleep 30", 100000000ull, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "did not answer"));
    assert_true(clock_now_ns() - t0 < 10000000000ull);
    /* A frame header claiming 4 GiB: refused before any allocation. */
    assert_int_equal(fake_worker("printf '\\021\\000\\000\\000\\377\\377\\377\\377' >&3; sleep 5", 0, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "exceeds"));
}

static int setup(void **state)
{
    (void)state;
    const char *build = getenv("THAW_BUILD_DIR") ? getenv("THAW_BUILD_DIR") : "build";
    char p[4200], abs_build[4096];
    if (!realpath(build, abs_build))
        return -1;
    setenv("THAW_BUILD_DIR", abs_build, 1); /* the kernel and functions, for this binary too */
    snprintf(p, sizeof p, "%s/thaw-worker", abs_build);
    if (!realpath(p, worker_exe))
        return -1;
    setenv("THAW_WORKER_EXE", worker_exe, 1);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/thaw-worker-test-XXXXXX");
    if (!mkdtemp(tmpdir))
        return -1;
    snprintf(snapdir, sizeof snapdir, "%s/snap", tmpdir);
    if (!kvm_available())
        return 0;
    struct sandbox *sb;
    struct thaw_error err = {{0}};
    struct sandbox_options lo = {.log = quiet_log};
    if (sandbox_boot(&sb, "functions/hello", &lo, &err) < 0 || sandbox_snapshot(sb, snapdir, &err) < 0) {
        fprintf(stderr, "setup: %s\n", err.msg);
        return -1;
    }
    sandbox_destroy(sb);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_boot_same_answer_and_jailed),
        cmocka_unit_test(test_restore_every_mode),
        cmocka_unit_test(test_snapshot_from_jailed_worker),
        cmocka_unit_test(test_snapshot_of_restored_image_in_worker),
        cmocka_unit_test(test_sigkill_mid_invocation),
        cmocka_unit_test(test_misbehaving_workers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
