/* thaw load's runner (src/host/load/runner.c) against a stand-in for thaw serve: a
 * libmicrohttpd server on a random loopback port that answers POST /invoke/NAME with
 * the daemon's X-Thaw-* headers. Checks that every request sent becomes exactly one
 * record and one CSV row, that the headers land in the right columns, and that HTTP
 * and connection errors are recorded with their reason. (The end-to-end test against
 * a real thaw serve lives with the daemon's tests.) */
#include <microhttpd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "host/load/load.h"

static struct MHD_Daemon *daemon_;
static char server[64];
static volatile int served;

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                              const char *version, const char *data, size_t *size, void **con_cls)
{
    (void)cls, (void)version, (void)data;
    static int marker;
    if (!*con_cls) {
        *con_cls = &marker;
        return MHD_YES;
    }
    if (*size) {
        *size = 0; /* the body is read and dropped */
        return MHD_YES;
    }
    struct MHD_Response *r;
    unsigned status;
    if (strcmp(method, "POST") || strncmp(url, "/invoke/", 8)) {
        static const char body[] = "{\"error\": \"no such endpoint\"}";
        r = MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
        status = 404;
    } else if (strcmp(url + 8, "hello")) {
        static char body[128];
        snprintf(body, sizeof body, "{\"error\": \"no function %s\"}", url + 8);
        r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_COPY);
        status = 404;
    } else {
        int n = __atomic_fetch_add(&served, 1, __ATOMIC_SEQ_CST);
        static const char body[] = "{\"greeting\": \"hi\"}";
        r = MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
        char inst[32];
        snprintf(inst, sizeof inst, "hello-%d", n % 2);
        MHD_add_response_header(r, "X-Thaw-Instance", inst);
        MHD_add_response_header(r, "X-Thaw-Start", n < 2 ? "cold-reap" : "warm");
        MHD_add_response_header(r, "X-Thaw-Queue-Us", "7");
        if (n < 2) {
            MHD_add_response_header(r, "X-Thaw-Restore-Us", "4100");
            MHD_add_response_header(r, "X-Thaw-Prefetch-Us", "900");
        }
        MHD_add_response_header(r, "X-Thaw-Invoke-Us", "55");
        status = 200;
    }
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static int setup(void **state)
{
    (void)state;
    daemon_ = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL, NULL,
                               answer, NULL, MHD_OPTION_END);
    if (!daemon_)
        return -1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(server, sizeof server, "http://127.0.0.1:%u", (unsigned)info->port);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    MHD_stop_daemon(daemon_);
    return 0;
}

static struct load_target target(const char *fn)
{
    struct load_target t = {0};
    snprintf(t.function, sizeof t.function, "%s", fn);
    t.payload = "{\"name\": \"x\"}";
    t.payload_len = strlen(t.payload);
    return t;
}

static size_t csv_rows(const char *buf)
{
    size_t n = 0;
    for (const char *p = buf; *p; p++)
        n += *p == '\n';
    return n - 1; /* the header */
}

static void test_open_loop(void **state)
{
    (void)state;
    served = 0;
    struct load_schedule s;
    struct thaw_error err = {{0}};
    struct load_target t = target("hello");
    assert_int_equal(load_schedule_open(&s, LOAD_ARRIVAL_EQUIDISTANT, 40, 1, 1, &t, &err), 0);
    assert_int_equal(s.count, 39);
    char *buf = NULL;
    size_t len = 0;
    FILE *csv = open_memstream(&buf, &len);
    load_csv_write_header(csv);
    struct load_run_config cfg = {.server = server, .phase = "run", .max_inflight = 16, .timeout_s = 10};
    struct load_record *rows;
    size_t n;
    double elapsed;
    if (load_run(&cfg, &s, csv, &rows, &n, &elapsed, &err) < 0)
        fail_msg("%s", err.msg);
    fclose(csv);
    assert_int_equal(n, 39);
    assert_int_equal(csv_rows(buf), 39);
    assert_int_equal(served, 39);
    /* The schedule spans ~1 s, and the run took at least that; the upper bound only
     * catches a run that hangs (a loaded host under ASan is slow). */
    assert_true(elapsed > 0.9 && elapsed < 10);
    size_t cold = 0;
    bool seen[39] = {0};
    for (size_t i = 0; i < n; i++) {
        const struct load_record *r = &rows[i];
        assert_string_equal(r->error, "");
        assert_int_equal(r->http_status, 200);
        assert_string_equal(r->function, "hello");
        assert_true(!strcmp(r->instance, "hello-0") || !strcmp(r->instance, "hello-1"));
        assert_int_equal(r->queue_us, 7);
        assert_int_equal(r->invoke_us, 55);
        assert_int_equal(r->actual_us, 55);
        assert_true(r->response_us > 0);
        assert_true(r->invocation_id < 39 && !seen[r->invocation_id]);
        seen[r->invocation_id] = true;
        assert_int_equal(r->scheduled_us, s.events[r->invocation_id].at_us);
        if (load_start_is_cold(r->start)) {
            cold++;
            assert_int_equal(r->restore_us, 4100);
            assert_int_equal(r->prefetch_us, 900);
        } else {
            assert_int_equal(r->start, LOAD_START_WARM);
            assert_int_equal(r->restore_us, -1);
        }
    }
    assert_int_equal(cold, 2);
    free(rows);
    free(buf);
    load_schedule_free(&s);
}

static void test_closed_loop(void **state)
{
    (void)state;
    served = 0;
    struct load_schedule s;
    struct thaw_error err = {{0}};
    struct load_target t = target("hello");
    assert_int_equal(load_schedule_open(&s, LOAD_ARRIVAL_EQUIDISTANT, 1, 1, 1, &t, &err), 0);
    struct load_run_config cfg = {.server = server, .concurrency = 4, .duration_s = 30, .max_requests = 50,
                                  .timeout_s = 10};
    struct load_record *rows;
    size_t n;
    double elapsed;
    assert_int_equal(load_run(&cfg, &s, NULL, &rows, &n, &elapsed, &err), 0);
    assert_int_equal(n, 50);
    assert_int_equal(served, 50);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(rows[i].error, "");
    free(rows);
    load_schedule_free(&s);
}

static void test_errors_recorded(void **state)
{
    (void)state;
    struct load_schedule s;
    struct thaw_error err = {{0}};
    struct load_target t = target("missing");
    assert_int_equal(load_schedule_open(&s, LOAD_ARRIVAL_EQUIDISTANT, 20, 0.5, 1, &t, &err), 0);
    struct load_run_config cfg = {.server = server, .max_inflight = 4, .timeout_s = 10};
    struct load_record *rows;
    size_t n;
    double elapsed;
    assert_int_equal(load_run(&cfg, &s, NULL, &rows, &n, &elapsed, &err), 0);
    assert_int_equal(n, s.count);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(rows[i].http_status, 404);
        assert_string_equal(rows[i].error, "http 404: no function missing");
    }
    free(rows);
    /* Nobody listening: every request is a connection error, none is lost. */
    cfg.server = "http://127.0.0.1:1";
    assert_int_equal(load_run(&cfg, &s, NULL, &rows, &n, &elapsed, &err), 0);
    assert_int_equal(n, s.count);
    for (size_t i = 0; i < n; i++)
        assert_non_null(strstr(rows[i].error, "connect"));
    free(rows);
    load_schedule_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_open_loop),
        cmocka_unit_test(test_closed_loop),
        cmocka_unit_test(test_errors_recorded),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
