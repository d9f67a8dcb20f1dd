/* The Azure Functions 2019 trace format (src/host/load/trace.c, tracegen.c): small
 * files in the real format, malformed rows (errors name file and line), the
 * synthetic generator read back, the function mapping and the time-compressed replay. */
#include <math.h>
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

#include "host/load/load.h"

static char dir[256];

static int setup(void **state)
{
    (void)state;
    strcpy(dir, "/tmp/thaw-trace-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd);
}

static const char *put(const char *name, const char *text)
{
    static char path[4][512];
    static int k;
    char *p = path[k++ % 4];
    snprintf(p, 512, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    return p;
}

#define INV_HEADER "HashOwner,HashApp,HashFunction,Trigger,1,2,3,4,5\n"
#define DUR_HEADER                                                                                              \
    "HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum,percentile_Average_0,percentile_Average_1,"  \
    "percentile_Average_25,percentile_Average_50,percentile_Average_75,percentile_Average_99,"                 \
    "percentile_Average_100\n"
#define MEM_HEADER                                                                                              \
    "HashOwner,HashApp,SampleCount,AverageAllocatedMb,AverageAllocatedMb_pct1,AverageAllocatedMb_pct5,"        \
    "AverageAllocatedMb_pct25,AverageAllocatedMb_pct50,AverageAllocatedMb_pct75,AverageAllocatedMb_pct95,"    \
    "AverageAllocatedMb_pct99,AverageAllocatedMb_pct100\n"

static void test_small_real_format(void **state)
{
    (void)state;
    const char *inv = put("invocations_per_function_md.anon.d01.csv",
                          INV_HEADER "o1,a1,f1,http,1,0,3,0,2\n"
                                     "o1,a1,f2,timer,0,1,0,1,0\n"
                                     "o2,a2,f3,queue,0,0,0,0,10\n");
    const char *dur = put("function_durations_percentiles.anon.d01.csv",
                          DUR_HEADER "o1,a1,f1,120,6,10,900,10,11,50,100,200,800,900\n"
                                     "o2,a2,f3,5.5,10,1,20,1,1,3,5,7,19,20\n"
                                     "o9,a9,f9,1,1,1,1,1,1,1,1,1,1,1\n"); /* not in the trace: ignored */
    const char *mem = put("app_memory_percentiles.anon.d01.csv",
                          MEM_HEADER "o1,a1,1440,150,100,110,120,140,160,190,200,210\n");
    struct load_trace t;
    struct thaw_error err = {{0}};
    if (load_trace_read(&t, inv, dur, mem, &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(t.count, 3);
    assert_int_equal(t.minutes, 5);
    assert_string_equal(t.functions[0].function, "f1");
    assert_string_equal(t.functions[1].trigger, "timer");
    assert_int_equal(t.functions[0].total, 6);
    assert_int_equal(t.functions[0].per_minute[2], 3);
    assert_int_equal(t.functions[2].total, 10);
    assert_true(t.functions[0].has_duration);
    assert_true(fabs(t.functions[0].duration_pct_ms[3] - 100) < 1e-9); /* the median */
    assert_false(t.functions[1].has_duration);
    assert_true(fabs(t.functions[2].duration_avg_ms - 5.5) < 1e-9);
    /* Memory is per application: both of a1's functions get it, a2's none. */
    assert_true(t.functions[0].has_memory && t.functions[1].has_memory);
    assert_true(fabs(t.functions[1].memory_avg_mb - 150) < 1e-9);
    assert_false(t.functions[2].has_memory);
    load_trace_free(&t);
    /* The same through the directory, by the dataset's file names. */
    if (load_trace_read_dir(&t, dir, &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(t.count, 3);
    assert_true(t.functions[0].has_duration && t.functions[0].has_memory);
    load_trace_free(&t);
}

static void expect_bad(const char *inv_text, const char *dur_text, const char *want)
{
    const char *inv = put("bad-inv.csv", inv_text);
    const char *dur = dur_text ? put("bad-dur.csv", dur_text) : NULL;
    struct load_trace t;
    struct thaw_error err = {{0}};
    assert_int_equal(load_trace_read(&t, inv, dur, NULL, &err), -1);
    if (!strstr(err.msg, want))
        fail_msg("error \"%s\" does not contain \"%s\"", err.msg, want);
    assert_int_equal(t.count, 0);
}

static void test_malformed_rows(void **state)
{
    (void)state;
    expect_bad(INV_HEADER "o,a,f,http,1,2,3,4,5\no,a,g,http,1,2\n", NULL, "bad-inv.csv:3: 6 fields, expected 9");
    expect_bad(INV_HEADER "o,a,f,http,1,2,x3,4,5\n", NULL, "bad-inv.csv:2: field 7 ('x3') is not a count");
    expect_bad(INV_HEADER "o,a,f,http,1,-2,3,4,5\n", NULL, "bad-inv.csv:2: field 6 ('-2') is not a count");
    expect_bad(INV_HEADER "o,a,f,http,1,2,3,4,99999999999\n", NULL, "bad-inv.csv:2: field 9");
    expect_bad(INV_HEADER "o,a,,http,1,2,3,4,5\n", NULL, "bad-inv.csv:2: field 3 is empty");
    expect_bad("HashOwner,HashApp,HashFunction,Trigger,1,3\n", NULL, "column 6 is '3', expected minute '2'");
    expect_bad("Owner,HashApp,HashFunction,Trigger,1\n", NULL, "column 1 is 'Owner', expected 'HashOwner'");
    expect_bad("", NULL, "empty file");
    expect_bad(INV_HEADER "o,a,f,http,1,2,3,4,5\n", DUR_HEADER "o,a,f,1,2,3\n", "bad-dur.csv:2: 6 fields, expected 14");
    expect_bad(INV_HEADER "o,a,f,http,1,2,3,4,5\n", DUR_HEADER "o,a,f,1,2,3,4,5,6,7,8,nan,10,11\n",
               "bad-dur.csv:2: field 12");
    expect_bad(INV_HEADER "o,a,f,http,1,2,3,4,5\n", "HashOwner,HashApp\n", "bad-dur.csv:1: header has 2 columns");
    /* A trailing blank line and CRLF line ends are fine. */
    const char *ok = put("ok-inv.csv", "HashOwner,HashApp,HashFunction,Trigger,1,2\r\no,a,f,http,1,2\r\n\n");
    struct load_trace t;
    struct thaw_error err = {{0}};
    if (load_trace_read(&t, ok, NULL, NULL, &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(t.count, 1);
    assert_int_equal(t.functions[0].total, 3);
    load_trace_free(&t);
}

static void test_generator_round_trip(void **state)
{
    (void)state;
    char gdir[300];
    snprintf(gdir, sizeof gdir, "%s/gen", dir);
    assert_int_equal(mkdir(gdir, 0755), 0);
    struct load_tracegen_config cfg = {.functions = 400, .minutes = 1440, .seed = 5, .rate_scale = 1};
    struct thaw_error err = {{0}};
    if (load_trace_generate(gdir, &cfg, &err) < 0)
        fail_msg("%s", err.msg);
    struct load_trace t;
    if (load_trace_read_dir(&t, gdir, &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(t.count, 400);
    assert_int_equal(t.minutes, 1440);
    size_t hourly = 0, per_minute = 0, timers = 0, with_all = 0;
    for (size_t i = 0; i < t.count; i++) {
        const struct load_trace_function *f = &t.functions[i];
        hourly += f->total <= 24;
        per_minute += f->total <= 1440;
        timers += !strcmp(f->trigger, "timer");
        with_all += f->has_duration && f->has_memory;
        for (unsigned k = 1; k < LOAD_TRACE_DURATION_PCTS; k++)
            assert_true(f->duration_pct_ms[k] >= f->duration_pct_ms[k - 1]);
    }
    assert_int_equal(with_all, 400);
    /* The fit's targets (45% at most hourly, 81% at most once a minute), within the
     * noise of 400 draws. */
    double h = (double)hourly / 400, m = (double)per_minute / 400;
    if (fabs(h - 0.45) > 0.08 || fabs(m - 0.81) > 0.07)
        fail_msg("at most hourly %.2f (want 0.45), at most per minute %.2f (want 0.81)", h, m);
    assert_true(timers > 30 && timers < 100); /* 16% of 400 */
    load_trace_free(&t);
    /* The same seed gives the same files. */
    char g2[300];
    snprintf(g2, sizeof g2, "%s/gen2", dir);
    assert_int_equal(mkdir(g2, 0755), 0);
    assert_int_equal(load_trace_generate(g2, &cfg, &err), 0);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "cmp -s %s/invocations_per_function_md.anon.d01.csv %s/invocations_per_function_md.anon.d01.csv", gdir, g2);
    assert_int_equal(system(cmd), 0);
}

static void test_mapping_and_replay(void **state)
{
    (void)state;
    const char *inv = put("inv.csv", INV_HEADER "o,a,f1,http,2,0,3,0,1\n"
                                                "o,a,f2,http,0,4,0,0,0\n"
                                                "o,a,f3,http,1,1,1,1,1\n"
                                                "o,a,f4,http,5,5,5,5,5\n");
    const char *dur = put("dur.csv", DUR_HEADER "o,a,f1,120,6,10,900,10,11,50,100,200,800,900\n");
    put("p.json", "{\"n\": 1}");
    const char *map = put("map.csv", "# trace function, thaw function, payload\n"
                                     "f1, hello, p.json\n"
                                     "*, memtouch\n"
                                     "*, hello-musl\n");
    struct load_trace t;
    struct load_mapping m;
    struct thaw_error err = {{0}};
    assert_int_equal(load_trace_read(&t, inv, dur, NULL, &err), 0);
    if (load_mapping_read(&m, map, &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(m.count, 3);
    struct load_replay_config cfg = {.minute_seconds = 2, .first_minute = 1, .minutes = 3,
                                     .within = LOAD_ARRIVAL_EXPONENTIAL, .seed = 9};
    struct load_schedule s;
    size_t unmapped;
    if (load_schedule_replay(&s, &t, &m, &cfg, &unmapped, &err) < 0)
        fail_msg("%s", err.msg);
    assert_int_equal(unmapped, 0);
    assert_int_equal(s.target_count, 4);
    assert_string_equal(s.targets[0].function, "hello");
    assert_memory_equal(s.targets[0].payload, "{\"n\": 1}", 8);
    assert_string_equal(s.targets[1].function, "memtouch");   /* '*' lines in turn */
    assert_string_equal(s.targets[2].function, "hello-musl");
    assert_string_equal(s.targets[3].function, "memtouch");
    assert_null(s.targets[1].payload);
    /* Minutes 2..4: f1 0+3+0, f2 4+0+0, f3 3, f4 15. */
    assert_int_equal(s.count, 25);
    assert_int_equal(s.span_us, 6000000);
    size_t per[4] = {0};
    for (size_t i = 0; i < s.count; i++) {
        const struct load_event *e = &s.events[i];
        per[e->function]++;
        if (i)
            assert_true(e->at_us >= s.events[i - 1].at_us);
        /* Each invocation lies inside its (compressed) minute. */
        uint64_t lo = (uint64_t)(e->minute - 1) * 2000000, hi = lo + 2000000;
        assert_true(e->at_us >= lo && e->at_us < hi);
        if (e->function == 0)
            assert_int_equal(e->duration_us, 100000); /* the median, 100 ms */
        else
            assert_int_equal(e->duration_us, 0);
    }
    assert_int_equal(per[0], 3);
    assert_int_equal(per[1], 4);
    assert_int_equal(per[2], 3);
    assert_int_equal(per[3], 15);
    load_schedule_free(&s);
    /* Without '*', unmapped functions are skipped and counted. */
    load_mapping_free(&m);
    map = put("map.csv", "f2,hello\n");
    assert_int_equal(load_mapping_read(&m, map, &err), 0);
    cfg.first_minute = 0;
    cfg.minutes = 0;
    cfg.within = LOAD_ARRIVAL_EQUIDISTANT;
    assert_int_equal(load_schedule_replay(&s, &t, &m, &cfg, &unmapped, &err), 0);
    assert_int_equal(unmapped, 3);
    assert_int_equal(s.count, 4);
    assert_int_equal(s.span_us, 10000000);
    load_schedule_free(&s);
    cfg.first_minute = 5;
    assert_int_equal(load_schedule_replay(&s, &t, &m, &cfg, &unmapped, &err), -1);
    assert_non_null(strstr(err.msg, "past the trace"));
    load_mapping_free(&m);
    load_trace_free(&t);
}

static void test_bad_mapping(void **state)
{
    (void)state;
    struct load_mapping m;
    struct thaw_error err = {{0}};
    const char *p = put("m1.csv", "f1,hello\njustone\n");
    assert_int_equal(load_mapping_read(&m, p, &err), -1);
    assert_non_null(strstr(err.msg, "m1.csv:2:"));
    p = put("m2.csv", "f1,Hello/../x\n");
    assert_int_equal(load_mapping_read(&m, p, &err), -1);
    assert_non_null(strstr(err.msg, "m2.csv:1: bad thaw function name"));
    p = put("m3.csv", "# nothing\n\n");
    assert_int_equal(load_mapping_read(&m, p, &err), -1);
    assert_non_null(strstr(err.msg, "no mappings"));
    p = put("m4.csv", "a,b,c,d\n");
    assert_int_equal(load_mapping_read(&m, p, &err), -1);
    assert_non_null(strstr(err.msg, "m4.csv:1: more than 3 fields"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_real_format), cmocka_unit_test(test_malformed_rows),
        cmocka_unit_test(test_generator_round_trip), cmocka_unit_test(test_mapping_and_replay),
        cmocka_unit_test(test_bad_mapping),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
