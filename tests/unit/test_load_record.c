/* thaw load's per-request CSV (src/host/load/record.c) and summary (summary.c):
 * the schema, a round trip, quoting, and percentiles with known answers. */
#include <math.h>
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

static void test_schema(void **state)
{
    (void)state;
    /* In-Vitro's record columns first, then thaw's breakdown. The header is the
     * contract with plotting scripts: a change here must be deliberate. */
    static const char *const want =
        "phase,instance,invocationID,function,startTime,scheduledTime,requestedDuration,responseTime,"
        "actualDuration,startKind,queueTime,restoreTime,prefetchTime,invocationTime,httpStatus,error\n";
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    load_csv_write_header(f);
    fclose(f);
    assert_string_equal(buf, want);
    assert_int_equal(load_csv_column_count(), 16);
    free(buf);
}

static struct load_record sample(uint64_t id)
{
    struct load_record r = {0};
    strcpy(r.phase, "run");
    snprintf(r.instance, sizeof r.instance, "hello-%llu", (unsigned long long)id % 3);
    strcpy(r.function, "hello");
    r.invocation_id = id;
    r.start_unix_us = 1764590000000000ull + id * 1000;
    r.scheduled_us = id * 1000;
    r.requested_us = 100000;
    r.response_us = 5000 + id;
    r.actual_us = 70;
    r.start = id % 2 ? LOAD_START_WARM : LOAD_START_COLD_REAP;
    r.queue_us = 3;
    r.restore_us = id % 2 ? -1 : 4000;
    r.prefetch_us = id % 2 ? -1 : 900;
    r.invoke_us = 70;
    r.http_status = 200;
    return r;
}

static void test_round_trip(void **state)
{
    (void)state;
    char path[] = "/tmp/thaw-csv-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    load_csv_write_header(f);
    struct load_record rows[5];
    for (int i = 0; i < 5; i++) {
        rows[i] = sample((uint64_t)i);
        load_csv_write_row(f, &rows[i]);
    }
    /* An error with commas, quotes and a newline survives (the newline as a space). */
    struct load_record e = sample(9);
    e.http_status = 503;
    e.start = LOAD_START_UNKNOWN;
    e.queue_us = e.restore_us = e.prefetch_us = e.invoke_us = -1;
    e.actual_us = 0;
    strcpy(e.error, "http 503: queue full, \"hello\" waited\n30 s");
    strcpy(e.instance, "");
    load_csv_write_row(f, &e);
    fclose(f);
    struct load_record *got;
    size_t n;
    struct thaw_error err = {{0}};
    if (load_csv_read(path, &got, &n, &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(n, 6);
    for (int i = 0; i < 5; i++)
        assert_memory_equal(&got[i], &rows[i], sizeof rows[i]);
    assert_string_equal(got[5].error, "http 503: queue full, \"hello\" waited 30 s");
    assert_int_equal(got[5].restore_us, -1);
    assert_int_equal(got[5].http_status, 503);
    assert_int_equal(got[5].start, LOAD_START_UNKNOWN);
    free(got);
    /* A CSV with another header or a short row is refused with its line. */
    f = fopen(path, "w");
    fputs("a,b,c\n", f);
    fclose(f);
    assert_int_equal(load_csv_read(path, &got, &n, &err), -1);
    assert_non_null(strstr(err.msg, ":1: not a thaw load CSV"));
    f = fopen(path, "w");
    load_csv_write_header(f);
    load_csv_write_row(f, &rows[0]);
    fputs("run,x,1,hello,5\n", f);
    fclose(f);
    assert_int_equal(load_csv_read(path, &got, &n, &err), -1);
    assert_non_null(strstr(err.msg, ":3: 5 fields, expected 16"));
    unlink(path);
}

static void test_start_kinds(void **state)
{
    (void)state;
    const char *names[] = {"warm", "cold-reap", "cold-lazy", "cold-copy", "cold-boot"};
    for (size_t i = 0; i < 5; i++) {
        enum load_start_kind k = load_start_kind_parse(names[i]);
        assert_int_not_equal(k, LOAD_START_UNKNOWN);
        assert_string_equal(load_start_kind_name(k), names[i]);
        assert_int_equal(load_start_is_cold(k), i > 0);
    }
    assert_int_equal(load_start_kind_parse("tepid"), LOAD_START_UNKNOWN);
}

static void test_error_kinds(void **state)
{
    (void)state;
    char k[48];
    load_error_kind("http 503: queue full", k, sizeof k);
    assert_string_equal(k, "http 503");
    load_error_kind("timeout after 30.0 s", k, sizeof k);
    assert_string_equal(k, "timeout after 30.0 s");
    load_error_kind("connect: Couldn't connect to server", k, sizeof k);
    assert_string_equal(k, "connect");
}

static void test_percentiles(void **state)
{
    (void)state;
    double v[] = {5, 1, 4, 2, 3}; /* sorted 1..5 */
    struct load_latency l;
    load_latency_of(v, 5, &l);
    assert_true(fabs(l.p50_us - 3) < 1e-9);
    assert_true(fabs(l.p90_us - 4.6) < 1e-9); /* rank 3.6 between 4 and 5 */
    assert_true(fabs(l.p99_us - 4.96) < 1e-9);
    assert_true(fabs(l.max_us - 5) < 1e-9);
    assert_true(fabs(l.mean_us - 3) < 1e-9);
    double one[] = {7};
    load_latency_of(one, 1, &l);
    assert_true(fabs(l.p99_us - 7) < 1e-9);
}

static void test_summary(void **state)
{
    (void)state;
    struct load_record rows[10];
    for (int i = 0; i < 10; i++)
        rows[i] = sample((uint64_t)i);
    strcpy(rows[8].error, "http 503: queue full");
    strcpy(rows[9].error, "http 503: queue full again");
    strcpy(rows[7].error, "timeout after 1.0 s");
    struct load_summary s;
    struct thaw_error err = {{0}};
    assert_int_equal(load_summarize(rows, 10, 2.0, &s, &err), 0);
    assert_int_equal(s.requests, 10);
    assert_int_equal(s.ok, 7);
    assert_int_equal(s.errors, 3);
    assert_true(fabs(s.achieved_rps - 3.5) < 1e-9);
    /* ok: ids 0..6; cold = even ids 0,2,4,6, warm = 1,3,5. */
    assert_int_equal(s.cold, 4);
    assert_int_equal(s.warm, 3);
    assert_int_equal(s.by_start[LOAD_START_COLD_REAP].count, 4);
    assert_true(fabs(s.by_start[LOAD_START_COLD_REAP].p50_us - 5003) < 1e-9); /* 5000, 5002, 5004, 5006 */
    assert_true(fabs(s.by_start[LOAD_START_WARM].max_us - 5005) < 1e-9);
    assert_int_equal(s.error_kind_count, 2);
    assert_string_equal(s.error_kinds[0].kind, "timeout after 1.0 s");
    assert_string_equal(s.error_kinds[1].kind, "http 503");
    assert_int_equal(s.error_kinds[1].count, 2);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    load_summary_print(f, &s);
    fclose(f);
    assert_non_null(strstr(buf, "achieved 3.5 requests/s"));
    assert_non_null(strstr(buf, "cold-reap"));
    assert_non_null(strstr(buf, "errors: 2 http 503"));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schema),      cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_start_kinds), cmocka_unit_test(test_error_kinds),
        cmocka_unit_test(test_percentiles), cmocka_unit_test(test_summary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
