/* The lifecycle layer (host/sandbox/sandbox.h) driven directly: boot, restore in every
 * memory mode, invoke, stats, snapshot, shutdown, destroy; deadlines that stop a guest
 * looping in an invocation or before its ready point; guest output delivered line by
 * line while the invocation runs; concurrent recording restores of one snapshot. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sys/stat.h>

#include "guest_helpers.h"
#include "rootfs_cow_pages.h"
#include "host/pager/reap.h"
#include "host/sandbox/sandbox.h"
#include "host/util/clock.h"
#include "host/util/snapdir.h"

static char tmp_root[] = "/tmp/thaw-sandbox-test-XXXXXX";

static void path_in_tmp(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", tmp_root, name);
}

static char *invoke_ok(struct sandbox *sb, const char *payload)
{
    uint8_t *resp;
    size_t len;
    struct thaw_error err = {{0}};
    if (sandbox_invoke(sb, payload, strlen(payload), &resp, &len, &err) < 0)
        fail_msg("invoke %s: %s (%s)", payload, err.msg, sandbox_failure_name(sandbox_last_failure(sb)));
    return (char *)resp;
}

static struct sandbox *boot_ok(const char *dir, const struct sandbox_options *opt)
{
    struct sandbox *sb;
    struct thaw_error err = {{0}};
    if (sandbox_boot(&sb, dir, opt, &err) < 0)
        fail_msg("boot %s: %s", dir, err.msg);
    return sb;
}

static struct sandbox *restore_ok(const char *snap, enum mem_mode mode, const struct sandbox_options *opt)
{
    struct sandbox *sb;
    struct thaw_error err = {{0}};
    if (sandbox_restore(&sb, snap, mode, opt, &err) < 0)
        fail_msg("restore %s (%s): %s", snap, mem_mode_name(mode), err.msg);
    return sb;
}

/* ---- captured guest output ---------------------------------------------------------- */

#define MAX_LINES 64
struct captured {
    pthread_mutex_t lock;
    size_t n;
    char text[MAX_LINES][64];
    uint64_t invocation[MAX_LINES];
    enum sandbox_stream stream[MAX_LINES];
    uint64_t t_ns[MAX_LINES];
    char id[SANDBOX_ID_MAX + 1];
};

static void capture(void *ctx, const char *id, uint64_t invocation, enum sandbox_stream stream, const char *line,
                    size_t len)
{
    struct captured *c = ctx;
    pthread_mutex_lock(&c->lock);
    if (c->n < MAX_LINES) {
        snprintf(c->text[c->n], sizeof c->text[c->n], "%.*s", (int)len, line);
        c->invocation[c->n] = invocation;
        c->stream[c->n] = stream;
        c->t_ns[c->n] = clock_now_ns();
        snprintf(c->id, sizeof c->id, "%s", id);
        c->n++;
    }
    pthread_mutex_unlock(&c->lock);
}

/* ---- tests ---------------------------------------------------------------------------- */

static void test_boot_invoke_stats_shutdown(void **state)
{
    (void)state;
    struct sandbox_options opt = {.id = "hello-under-test"};
    struct sandbox *sb = boot_ok("functions/hello", &opt);
    char *r = invoke_ok(sb, "{\"name\": \"layer\"}");
    assert_non_null(strstr(r, "Hello, layer!"));
    free(r);
    struct sandbox_stats st;
    struct thaw_error err = {{0}};
    assert_int_equal(sandbox_stats(sb, &st, &err), 0);
    assert_string_equal(st.id, "hello-under-test");
    assert_string_equal(st.function, "hello");
    assert_int_equal(st.start, SANDBOX_START_BOOT);
    assert_int_equal(st.invocations, 1);
    assert_true(st.boot_ns > 0 && st.first_invoke_ns > 0 && st.first_invoke_ns == st.last_invoke_ns);
    assert_int_equal(st.memory_bytes, 256ull << 20);
    assert_true(st.rss_kb > 0 && st.vm_exits >= 2);
    assert_int_equal(sandbox_shutdown(sb, &err), 0);
    assert_int_equal(sandbox_stats(sb, &st, &err), 0);
    assert_true(st.exited);
    assert_int_equal(st.exit_status, 0);
    sandbox_destroy(sb);
    sandbox_destroy(NULL);
}

static void test_bad_options_refused(void **state)
{
    (void)state;
    struct sandbox *sb = (struct sandbox *)1;
    struct thaw_error err = {{0}};
    struct sandbox_options bad_id = {.id = "has space"};
    assert_int_equal(sandbox_boot(&sb, "functions/hello", &bad_id, &err), -1);
    assert_null(sb);
    assert_non_null(strstr(err.msg, "instance id"));
    struct sandbox_options worker = {.worker = true, .id = "has space"}; /* refused before any worker starts */
    assert_int_equal(sandbox_boot(&sb, "functions/hello", &worker, &err), -1);
    assert_null(sb);
    assert_non_null(strstr(err.msg, "instance id"));
    assert_int_equal(sandbox_restore(&sb, "/nonexistent-snapshot", MEM_UFFD, NULL, &err), -1);
    assert_null(sb);
}

/* Snapshot through the layer, then every restore mode answers and reports its start. */
static void test_snapshot_and_restore_every_mode(void **state)
{
    (void)state;
    char snap[256];
    path_in_tmp(snap, sizeof snap, "memtouch");
    struct thaw_error err = {{0}};
    struct sandbox *sb = boot_ok("functions/memtouch", NULL);
    const char *pl = "{\"mib\": 2, \"seed\": 7}";
    char *booted = invoke_ok(sb, pl);
    assert_int_equal(sandbox_snapshot(sb, snap, &err), 0);
    struct sandbox_stats st;
    assert_int_equal(sandbox_stats(sb, &st, &err), 0);
    assert_true(st.save_ns > 0 && st.snapshot_allocated_bytes > 0);
    sandbox_destroy(sb);

    const struct {
        enum mem_mode mode;
        enum sandbox_start start;
    } runs[] = {
        {MEM_COPY, SANDBOX_START_COPY},           {MEM_LAZY, SANDBOX_START_LAZY},
        {MEM_UFFD, SANDBOX_START_UFFD},           {MEM_REAP, SANDBOX_START_REAP_RECORD},
        {MEM_REAP, SANDBOX_START_REAP_PREFETCH},
    };
    for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
        sb = restore_ok(snap, runs[i].mode, NULL);
        char *r = invoke_ok(sb, pl);
        /* memtouch answers a checksum of what it touched: same as the booted instance. */
        assert_string_equal(strstr(r, "checksum"), strstr(booted, "checksum"));
        free(r);
        assert_int_equal(sandbox_stats(sb, &st, &err), 0);
        if (st.start != runs[i].start)
            fail_msg("restore %zu (%s): start %s, expected %s", i, mem_mode_name(runs[i].mode),
                     sandbox_start_name(st.start), sandbox_start_name(runs[i].start));
        assert_int_equal(st.mode, runs[i].mode);
        assert_true(st.restore_ns > 0 && st.invocations == 1);
        /* The restore path's breakdown: each part measured, and the parts (memory and VM
         * counted where they are not overlapped) add up to the whole. */
        if (!st.state_load_ns || !st.memory_setup_ns || !st.vm_create_ns ||
            st.state_load_ns + st.memory_setup_ns + st.vm_create_ns + st.image_restore_ns != st.restore_ns ||
            st.restore_ns > 10000000000ull)
            fail_msg("restore %zu: state %llu + memory %llu + VM %llu + image %llu ns against %llu ns in all", i,
                     (unsigned long long)st.state_load_ns, (unsigned long long)st.memory_setup_ns,
                     (unsigned long long)st.vm_create_ns, (unsigned long long)st.image_restore_ns,
                     (unsigned long long)st.restore_ns);
        if (runs[i].mode == MEM_COPY)
            assert_true(st.bytes_copied > 0);
        if (runs[i].mode == MEM_UFFD)
            assert_true(st.pages_served > 0);
        if (runs[i].start == SANDBOX_START_REAP_RECORD)
            assert_true(st.reap_recorded);
        if (runs[i].start == SANDBOX_START_REAP_PREFETCH) {
            /* ws_bytes: the whole of ws.pages, read once (its pages lz4-compressed). */
            char wsp[300];
            struct stat wst;
            snprintf(wsp, sizeof wsp, "%s/ws.pages", snap);
            assert_int_equal(stat(wsp, &wst), 0);
            assert_true(st.reap_prefetched && st.ws_pages >= 512 && st.reap_misses == 0 && st.ws_read_ns > 0 &&
                        st.ws_install_ns > 0 && st.ws_read_ns < st.restore_ns && st.ws_bytes == (uint64_t)wst.st_size);
        }
        sandbox_destroy(sb);
    }
    /* The prefetch copied in instead of moved, read by the pager instead of ahead, and read
     * as one request: the same answer, no misses. */
    const char *variants[][2] = {{"THAW_REAP_MOVE", "0"}, {"THAW_REAP_EARLY", "0"}, {"THAW_REAP_READ", "single"}};
    for (size_t v = 0; v < 3; v++) {
        setenv(variants[v][0], variants[v][1], 1);
        sb = restore_ok(snap, MEM_REAP, NULL);
        char *rv = invoke_ok(sb, pl);
        assert_string_equal(strstr(rv, "checksum"), strstr(booted, "checksum"));
        free(rv);
        assert_int_equal(sandbox_stats(sb, &st, &err), 0);
        if (st.start != SANDBOX_START_REAP_PREFETCH || st.reap_misses != 0)
            fail_msg("%s=%s: start %s, %llu misses", variants[v][0], variants[v][1], sandbox_start_name(st.start),
                     (unsigned long long)st.reap_misses);
        sandbox_destroy(sb);
        unsetenv(variants[v][0]);
    }
    /* Working-set chunks installed as huge pages (THAW_REAP_HUGE): the same answer, no
     * misses; and a bigger input, which reads pages of those chunks the working set did
     * not name (filled from the memory file), answers as a copy restore does. */
    setenv("THAW_REAP_HUGE", "0.05", 1);
    sb = restore_ok(snap, MEM_REAP, NULL);
    char *r = invoke_ok(sb, pl);
    assert_string_equal(strstr(r, "checksum"), strstr(booted, "checksum"));
    free(r);
    assert_int_equal(sandbox_stats(sb, &st, &err), 0);
    assert_int_equal(st.start, SANDBOX_START_REAP_PREFETCH);
    if (st.ws_huge_chunks == 0 || st.ws_huge_data_pages < st.ws_huge_ws_pages || st.reap_misses != 0)
        fail_msg("huge chunks %llu (ws pages %llu, data pages %llu), misses %llu",
                 (unsigned long long)st.ws_huge_chunks, (unsigned long long)st.ws_huge_ws_pages,
                 (unsigned long long)st.ws_huge_data_pages, (unsigned long long)st.reap_misses);
    sandbox_destroy(sb);
    const char *big = "{\"mib\": 6, \"seed\": 7}";
    sb = restore_ok(snap, MEM_COPY, NULL);
    char *want = invoke_ok(sb, big);
    sandbox_destroy(sb);
    sb = restore_ok(snap, MEM_REAP, NULL);
    r = invoke_ok(sb, big);
    assert_string_equal(strstr(r, "checksum"), strstr(want, "checksum"));
    assert_int_equal(sandbox_stats(sb, &st, &err), 0);
    assert_true(st.ws_huge_chunks > 0);
    free(r);
    free(want);
    sandbox_destroy(sb);
    unsetenv("THAW_REAP_HUGE");
    free(booted);
}

/* A guest spinning in an invocation is kicked out at its deadline, the instance is
 * dead, and the next instance works. */
static void test_invocation_deadline(void **state)
{
    (void)state;
    struct sandbox_options opt = {.invoke_timeout_ns = 500000000ull};
    struct sandbox *sb = boot_ok("functions/faulty", &opt);
    uint8_t *resp;
    size_t len;
    struct thaw_error err = {{0}};
    uint64_t t0 = clock_now_ns();
    assert_int_equal(sandbox_invoke(sb, "{\"fault\": \"loop\"}", 17, &resp, &len, &err), -1);
    uint64_t took = clock_now_ns() - t0;
    assert_null(resp);
    assert_int_equal(sandbox_last_failure(sb), SANDBOX_FAIL_TIMEOUT);
    assert_string_equal(err.msg, "invocation timed out after 0.5 s");
    /* The upper bound only tells a deadline that fired from one that did not (the
     * guest spins for ever): generous for a loaded host under ASan. */
    if (took < 450000000ull || took > 10000000000ull)
        fail_msg("the deadline fired after %.3f s", took / 1e9);
    /* Dead: refused at once, and the stats are still there. */
    assert_int_equal(sandbox_invoke(sb, "{}", 2, &resp, &len, &err), -1);
    assert_non_null(strstr(err.msg, "dead"));
    struct sandbox_stats st;
    assert_int_equal(sandbox_stats(sb, &st, &err), 0);
    assert_string_equal(st.function, "faulty");
    sandbox_destroy(sb);
    sb = boot_ok("functions/faulty", NULL);
    char *r = invoke_ok(sb, "{}");
    assert_non_null(strstr(r, "\"ok\""));
    free(r);
    sandbox_destroy(sb);
}

/* POSIX timers of this process (/proc/self/timers has one "ID:" line each). */
static int count_timers(void)
{
    FILE *f = fopen("/proc/self/timers", "r");
    assert_non_null(f);
    char line[256];
    int n = 0;
    while (fgets(line, sizeof line, f))
        n += !strncmp(line, "ID:", 3);
    fclose(f);
    return n;
}

struct timer_probe {
    struct sandbox *sb;
    int before, between, calls_ok;
};

static void *invoke_in_thread(void *arg)
{
    struct timer_probe *p = arg;
    p->before = count_timers();
    for (int i = 0; i < 3; i++) {
        uint8_t *resp;
        size_t len;
        struct thaw_error err;
        if (sandbox_invoke(p->sb, "{\"name\": \"t\"}", 13, &resp, &len, &err) == 0) {
            p->calls_ok++;
            free(resp);
        }
    }
    p->between = count_timers();
    return NULL;
}

/* The deadline timer is made once per thread, kept between invocations, and deleted when
 * the thread ends (not one timer_create per invocation, nor one left per thread). */
static void test_deadline_timer_once_per_thread(void **state)
{
    (void)state;
    struct sandbox *sb = boot_ok("functions/hello", NULL);
    struct timer_probe p = {.sb = sb};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, invoke_in_thread, &p), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(p.calls_ok, 3);
    assert_int_equal(p.between, p.before + 1);
    assert_int_equal(count_timers(), p.before);
    sandbox_destroy(sb);
}

/* The same for a restored instance (the vCPU is restored, not booted). */
static void test_invocation_deadline_after_restore(void **state)
{
    (void)state;
    char snap[256];
    path_in_tmp(snap, sizeof snap, "faulty");
    struct thaw_error err = {{0}};
    struct sandbox *sb = boot_ok("functions/faulty", NULL);
    assert_int_equal(sandbox_snapshot(sb, snap, &err), 0);
    sandbox_destroy(sb);
    struct sandbox_options opt = {.invoke_timeout_ns = 300000000ull};
    sb = restore_ok(snap, MEM_UFFD, &opt);
    uint8_t *resp;
    size_t len;
    assert_int_equal(sandbox_invoke(sb, "{\"fault\": \"loop\"}", 17, &resp, &len, &err), -1);
    assert_int_equal(sandbox_last_failure(sb), SANDBOX_FAIL_TIMEOUT);
    assert_string_equal(err.msg, "invocation timed out after 0.3 s");
    sandbox_destroy(sb);
    sb = restore_ok(snap, MEM_UFFD, NULL);
    char *r = invoke_ok(sb, "{}");
    assert_non_null(strstr(r, "\"ok\""));
    free(r);
    sandbox_destroy(sb);
}

/* A bundle in the temp dir running faulty with extra manifest fields. */
static void make_faulty_bundle(char *dir, size_t len, const char *name, const char *extra)
{
    path_in_tmp(dir, len, name);
    assert_int_equal(mkdir(dir, 0755), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/function.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "{\"name\": \"faulty\", \"runtime\": \"native\", \"program\": \"build:faulty-glibc\", "
               "\"memory_mib\": 64%s}\n", extra);
    fclose(f);
}

static void test_boot_deadline(void **state)
{
    (void)state;
    char dir[256];
    make_faulty_bundle(dir, sizeof dir, "hang", ", \"env\": {\"FAULTY_LOOP_BEFORE_READY\": \"1\"}");
    struct sandbox_options opt = {.boot_timeout_ns = 400000000ull};
    struct sandbox *sb;
    struct thaw_error err = {{0}};
    uint64_t t0 = clock_now_ns();
    assert_int_equal(sandbox_boot(&sb, dir, &opt, &err), -1);
    uint64_t took = clock_now_ns() - t0;
    assert_null(sb);
    assert_non_null(strstr(err.msg, "boot timed out after 0.4 s"));
    assert_true(took >= 350000000ull && took < 10000000000ull); /* fired (a loaded host is slow) */
    sb = boot_ok("functions/hello", NULL);
    free(invoke_ok(sb, "{}"));
    sandbox_destroy(sb);
}

/* function.json's "timeout_s" is the default deadline; the option overrides it. */
static void test_function_json_timeout(void **state)
{
    (void)state;
    char dir[256];
    make_faulty_bundle(dir, sizeof dir, "short", ", \"timeout_s\": 0.3");
    struct sandbox *sb = boot_ok(dir, NULL);
    uint8_t *resp;
    size_t len;
    struct thaw_error err = {{0}};
    assert_int_equal(sandbox_invoke(sb, "{\"fault\": \"loop\"}", 17, &resp, &len, &err), -1);
    assert_string_equal(err.msg, "invocation timed out after 0.3 s");
    sandbox_destroy(sb);
    struct sandbox_options opt = {.invoke_timeout_ns = 200000000ull};
    sb = boot_ok(dir, &opt);
    assert_int_equal(sandbox_invoke(sb, "{\"fault\": \"loop\"}", 17, &resp, &len, &err), -1);
    assert_string_equal(err.msg, "invocation timed out after 0.2 s");
    sandbox_destroy(sb);
    char bad[256];
    make_faulty_bundle(bad, sizeof bad, "bad-timeout", ", \"timeout_s\": -1");
    assert_int_equal(sandbox_boot(&sb, bad, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "timeout_s"));
}

/* Lines arrive one by one, in order, tagged, while the invocation is running: the
 * guest spins 100 ms between lines, so delivery at the end would bunch them up. */
static void check_lines(struct captured *c, uint64_t invocation, uint64_t t_start, uint64_t t_end)
{
    assert_int_equal(c->n, 4);
    for (size_t i = 0; i < 4; i++) {
        char want[16];
        snprintf(want, sizeof want, "line %zu", i + 1);
        assert_string_equal(c->text[i], want);
        assert_int_equal(c->invocation[i], invocation);
        assert_int_equal(c->stream[i], i % 2 == 0 ? SANDBOX_STDOUT : SANDBOX_STDERR);
        assert_true(c->t_ns[i] >= t_start && c->t_ns[i] <= t_end);
        if (i && c->t_ns[i] - c->t_ns[i - 1] < 80000000ull)
            fail_msg("line %zu came %.1f ms after line %zu: not delivered as written", i + 1,
                     (c->t_ns[i] - c->t_ns[i - 1]) / 1e6, i);
    }
}

static void test_guest_output_lines(void **state)
{
    (void)state;
    struct captured c = {.lock = PTHREAD_MUTEX_INITIALIZER};
    struct sandbox_options opt = {.id = "printer", .log = capture, .log_ctx = &c};
    struct sandbox *sb = boot_ok("functions/faulty", &opt);
    c.n = 0; /* whatever the boot printed */
    free(invoke_ok(sb, "{}"));
    uint64_t t0 = clock_now_ns();
    char *r = invoke_ok(sb, "{\"print\": 4}");
    uint64_t t1 = clock_now_ns();
    assert_string_equal(r, "{\"printed\": 4}"); /* never mixed into the response */
    free(r);
    check_lines(&c, 2, t0, t1);
    assert_string_equal(c.id, "printer");

    char snap[256];
    struct thaw_error err = {{0}};
    path_in_tmp(snap, sizeof snap, "printer");
    assert_int_equal(sandbox_snapshot(sb, snap, &err), 0);
    sandbox_destroy(sb);
    for (enum mem_mode m = MEM_COPY; m <= MEM_REAP; m++) {
        c.n = 0;
        sb = restore_ok(snap, m, &opt);
        t0 = clock_now_ns();
        r = invoke_ok(sb, "{\"print\": 4}");
        t1 = clock_now_ns();
        assert_string_equal(r, "{\"printed\": 4}");
        free(r);
        check_lines(&c, 1, t0, t1);
        sandbox_destroy(sb);
    }
    /* The guest kernel's own report reaches the log too. */
    c.n = 0;
    sb = boot_ok("functions/faulty", &opt);
    uint8_t *resp;
    size_t len;
    assert_int_equal(sandbox_invoke(sb, "{\"fault\": \"abort\"}", 18, &resp, &len, &err), -1);
    assert_int_equal(sandbox_last_failure(sb), SANDBOX_FAIL_GUEST);
    bool seen = false;
    for (size_t i = 0; i < c.n; i++)
        seen |= c.stream[i] == SANDBOX_KERNEL && strstr(c.text[i], "signal 6") != NULL;
    assert_true(seen);
    sandbox_destroy(sb);
}

/* Two first restores of one snapshot at once: one records, the other runs without
 * recording, and what is left is one valid working set that the next restore uses. */
struct racer {
    const char *snap;
    pthread_barrier_t *both_restored;
    enum sandbox_start start;
    char response[256];
    char error[512];
};

static void *race(void *arg)
{
    struct racer *r = arg;
    struct sandbox *sb;
    struct thaw_error err = {{0}};
    int ok = sandbox_restore(&sb, r->snap, MEM_REAP, NULL, &err);
    pthread_barrier_wait(r->both_restored); /* both hold their choice before either answers */
    if (ok < 0) {
        snprintf(r->error, sizeof r->error, "%s", err.msg);
        return NULL;
    }
    struct sandbox_stats st;
    uint8_t *resp;
    size_t len;
    if (sandbox_invoke(sb, "{\"mib\": 2, \"seed\": 3}", 21, &resp, &len, &err) == 0) {
        snprintf(r->response, sizeof r->response, "%s", (char *)resp);
        free(resp);
    } else {
        snprintf(r->error, sizeof r->error, "%s", err.msg);
    }
    if (sandbox_stats(sb, &st, &err) == 0)
        r->start = st.start;
    sandbox_destroy(sb);
    return NULL;
}

static void test_concurrent_recording_restores(void **state)
{
    (void)state;
    char snap[256];
    path_in_tmp(snap, sizeof snap, "race");
    struct thaw_error err = {{0}};
    struct sandbox *sb = boot_ok("functions/memtouch", NULL);
    assert_int_equal(sandbox_snapshot(sb, snap, &err), 0);
    sandbox_destroy(sb);
    for (int round = 0; round < 3; round++) {
        char p[512];
        snprintf(p, sizeof p, "%s/" SNAPDIR_WS_PAGES, snap);
        unlink(p);
        snprintf(p, sizeof p, "%s/" SNAPDIR_WS_TRACE, snap);
        unlink(p);
        pthread_barrier_t b;
        pthread_barrier_init(&b, NULL, 2);
        struct racer r[2] = {{.snap = snap, .both_restored = &b}, {.snap = snap, .both_restored = &b}};
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        pthread_barrier_destroy(&b);
        for (int i = 0; i < 2; i++)
            if (r[i].error[0] || !strstr(r[i].response, "checksum"))
                fail_msg("racer %d: %s %s", i, r[i].error, r[i].response);
        int rec = (r[0].start == SANDBOX_START_REAP_RECORD) + (r[1].start == SANDBOX_START_REAP_RECORD);
        int norec = (r[0].start == SANDBOX_START_REAP_NORECORD) + (r[1].start == SANDBOX_START_REAP_NORECORD);
        if (rec != 1 || norec != 1)
            fail_msg("round %d: starts %s and %s, expected one record and one norecord", round,
                     sandbox_start_name(r[0].start), sandbox_start_name(r[1].start));
        /* What is left is one whole working set: the next restore prefetches all of it. */
        sb = restore_ok(snap, MEM_REAP, NULL);
        char *resp = invoke_ok(sb, "{\"mib\": 2, \"seed\": 3}");
        assert_string_equal(resp, r[0].response);
        free(resp);
        struct sandbox_stats st;
        assert_int_equal(sandbox_stats(sb, &st, &err), 0);
        if (st.start != SANDBOX_START_REAP_PREFETCH || st.reap_misses != 0)
            fail_msg("after the race: start %s, %llu misses (%s)", sandbox_start_name(st.start),
                     (unsigned long long)st.reap_misses, st.reap_note);
        sandbox_destroy(sb);
    }
}

static uint64_t memory_allocated(const char *snap)
{
    char p[512];
    snprintf(p, sizeof p, "%s/" SNAPDIR_MEMORY, snap);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    return (uint64_t)st.st_blocks * 512;
}

/* A snapshot of a restored instance that has served requests: its guest first gives
 * back the memory it kept for reuse (THAW_INVOKE_TRIM, asked because its kernel says it
 * knows it), so two invocations that each freed 8 MiB leave the snapshot no larger. */
static void test_snapshot_after_invocations_holds_no_kept_memory(void **state)
{
    (void)state;
    char a[256], b[256];
    path_in_tmp(a, sizeof a, "kept-a");
    path_in_tmp(b, sizeof b, "kept-b");
    struct thaw_error err = {{0}};
    struct sandbox *sb = boot_ok("functions/memtouch", NULL);
    assert_int_equal(sandbox_snapshot(sb, a, &err), 0);
    sandbox_destroy(sb);
    sb = restore_ok(a, MEM_COPY, NULL);
    for (int i = 0; i < 2; i++) {
        char *r = invoke_ok(sb, "{\"alloc_mib\": 8}");
        assert_non_null(strstr(r, "allocated_mib"));
        free(r);
    }
    if (sandbox_snapshot(sb, b, &err) < 0)
        fail_msg("snapshot of a restored instance after invocations: %s", err.msg);
    sandbox_destroy(sb);
    uint64_t before = memory_allocated(a), after = memory_allocated(b);
    if (after > before + (1u << 20))
        fail_msg("the snapshot grew by %llu bytes", (unsigned long long)(after - before));
    sb = restore_ok(b, MEM_LAZY, NULL);
    char *r = invoke_ok(sb, "{\"mib\": 2, \"seed\": 5}");
    assert_non_null(strstr(r, "checksum"));
    free(r);
    sandbox_destroy(sb);
}

/* A restored instance maps its written image pages from rootfs.cow, read only when
 * touched; a snapshot of it must still hold every one of them, not only those the guest
 * touched again, and restore to right answers (in a jailed worker: test_worker.c). */
static void test_snapshot_of_restored_image_keeps_written_pages(void **state)
{
    (void)state;
    struct thaw_error err = {{0}};
    char a[256], b[256];
    path_in_tmp(a, sizeof a, "img-a");
    path_in_tmp(b, sizeof b, "img-b");
    struct sandbox *sb = boot_ok("functions/dynamic-image", NULL);
    assert_int_equal(sandbox_snapshot(sb, a, &err), 0);
    sandbox_destroy(sb);
    uint64_t written = rootfs_cow_pages(a);
    assert_true(written >= 2 && written != UINT64_MAX);
    sb = restore_ok(a, MEM_LAZY, NULL);
    char *r = invoke_ok(sb, "{\"a\": 3, \"b\": 4}");
    assert_non_null(strstr(r, "\"product\": 12"));
    free(r);
    if (sandbox_snapshot(sb, b, &err) < 0)
        fail_msg("snapshot of a restored image instance: %s", err.msg);
    sandbox_destroy(sb);
    if (rootfs_cow_pages(b) < written)
        fail_msg("%llu written pages, the snapshot it came from had %llu", (unsigned long long)rootfs_cow_pages(b),
                 (unsigned long long)written);
    sb = restore_ok(b, MEM_REAP, NULL);
    r = invoke_ok(sb, "{\"a\": 9, \"b\": 9}");
    if (!strstr(r, "\"product\": 81") || !strstr(r, "\"checks\": \"ok\""))
        fail_msg("restore of the second snapshot answered %s", r);
    free(r);
    sandbox_destroy(sb);
}

static int cleanup(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp_root);
    return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
    if (!kvm_available())
        return 0;
    setenv("THAW_BUILD_DIR", "build", 0);
    if (!mkdtemp(tmp_root)) {
        perror("mkdtemp");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_boot_invoke_stats_shutdown),
        cmocka_unit_test(test_bad_options_refused),
        cmocka_unit_test(test_snapshot_and_restore_every_mode),
        cmocka_unit_test(test_invocation_deadline),
        cmocka_unit_test(test_invocation_deadline_after_restore),
        cmocka_unit_test(test_deadline_timer_once_per_thread),
        cmocka_unit_test(test_boot_deadline),
        cmocka_unit_test(test_function_json_timeout),
        cmocka_unit_test(test_guest_output_lines),
        cmocka_unit_test(test_concurrent_recording_restores),
        cmocka_unit_test(test_snapshot_after_invocations_holds_no_kept_memory),
        cmocka_unit_test(test_snapshot_of_restored_image_keeps_written_pages),
    };
    return cmocka_run_group_tests_name("sandbox", tests, NULL, cleanup);
}
