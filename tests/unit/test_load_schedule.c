/* thaw load's arrival processes (src/host/load/schedule.c): mean rate and coefficient
 * of variation of generated schedules, per distribution, with fixed seeds. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "host/load/load.h"

static struct load_target target(void)
{
    struct load_target t = {0};
    strcpy(t.function, "hello");
    strcpy(t.trace_name, "hello");
    t.payload = "{}";
    t.payload_len = 2;
    return t;
}

/* rate R for S seconds: the count, rate and CV must match the distribution. */
static void check(enum load_arrival kind, double rate, double seconds, double want_cv, double cv_tol)
{
    struct load_schedule s;
    struct thaw_error err = {{0}};
    struct load_target t = target();
    assert_int_equal(load_schedule_open(&s, kind, rate, seconds, 42, &t, &err), 0);
    double want_n = rate * seconds;
    /* A Poisson count has sd sqrt(n): allow 4 sd (and 1 for the deterministic ones). */
    double tol_n = kind == LOAD_ARRIVAL_EQUIDISTANT ? 1.5 : 4 * sqrt(want_n);
    if (fabs((double)s.count - want_n) > tol_n)
        fail_msg("%s: %zu events, expected %.0f +- %.0f", load_arrival_name(kind), s.count, want_n, tol_n);
    double got_rate, got_cv;
    load_schedule_stats(&s, &got_rate, &got_cv);
    if (fabs(got_rate - rate) > 0.03 * rate)
        fail_msg("%s: rate %.2f, expected %.2f within 3%%", load_arrival_name(kind), got_rate, rate);
    if (fabs(got_cv - want_cv) > cv_tol)
        fail_msg("%s: CV %.3f, expected %.3f +- %.3f", load_arrival_name(kind), got_cv, want_cv, cv_tol);
    for (size_t i = 1; i < s.count; i++)
        assert_true(s.events[i].at_us >= s.events[i - 1].at_us);
    assert_true(s.events[s.count - 1].at_us < (uint64_t)(seconds * 1e6));
    assert_int_equal(s.target_count, 1);
    assert_string_equal(s.targets[0].function, "hello");
    assert_memory_equal(s.targets[0].payload, "{}", 2);
    load_schedule_free(&s);
}

static void test_exponential(void **state)
{
    (void)state;
    check(LOAD_ARRIVAL_EXPONENTIAL, 100, 200, 1.0, 0.05);
    check(LOAD_ARRIVAL_EXPONENTIAL, 5, 4000, 1.0, 0.05);
}

static void test_uniform(void **state)
{
    (void)state;
    check(LOAD_ARRIVAL_UNIFORM, 100, 200, 1.0 / sqrt(3.0), 0.03);
}

static void test_equidistant(void **state)
{
    (void)state;
    check(LOAD_ARRIVAL_EQUIDISTANT, 50, 100, 0.0, 0.001);
    /* Exactly 1/rate apart (to the microsecond). */
    struct load_schedule s;
    struct thaw_error err = {{0}};
    struct load_target t = target();
    assert_int_equal(load_schedule_open(&s, LOAD_ARRIVAL_EQUIDISTANT, 4, 2, 1, &t, &err), 0);
    assert_int_equal(s.count, 7); /* 0.25, 0.5, ..., 1.75 s */
    for (size_t i = 0; i < s.count; i++)
        assert_true(llabs((long long)s.events[i].at_us - (long long)(250000 * (i + 1))) <= 1);
    load_schedule_free(&s);
}

static void test_seed_repeats(void **state)
{
    (void)state;
    struct load_schedule a, b, c;
    struct thaw_error err = {{0}};
    struct load_target t = target();
    assert_int_equal(load_schedule_open(&a, LOAD_ARRIVAL_EXPONENTIAL, 20, 10, 7, &t, &err), 0);
    assert_int_equal(load_schedule_open(&b, LOAD_ARRIVAL_EXPONENTIAL, 20, 10, 7, &t, &err), 0);
    assert_int_equal(load_schedule_open(&c, LOAD_ARRIVAL_EXPONENTIAL, 20, 10, 8, &t, &err), 0);
    assert_int_equal(a.count, b.count);
    assert_memory_equal(a.events, b.events, a.count * sizeof *a.events);
    assert_true(a.count != c.count || memcmp(a.events, c.events, a.count * sizeof *a.events));
    load_schedule_free(&a);
    load_schedule_free(&b);
    load_schedule_free(&c);
}

static void test_normal_and_uniform_rng(void **state)
{
    (void)state;
    struct load_rng r;
    load_rng_seed(&r, 3);
    double sum = 0, sq = 0, usum = 0;
    const int n = 200000;
    for (int i = 0; i < n; i++) {
        double x = load_rng_normal(&r);
        sum += x;
        sq += x * x;
        double u = load_rng_uniform(&r);
        assert_true(u >= 0 && u < 1);
        usum += u;
    }
    assert_true(fabs(sum / n) < 0.01);
    assert_true(fabs(sq / n - 1) < 0.02);
    assert_true(fabs(usum / n - 0.5) < 0.005);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    struct load_schedule s;
    struct thaw_error err = {{0}};
    struct load_target t = target();
    assert_int_equal(load_schedule_open(&s, LOAD_ARRIVAL_EXPONENTIAL, 0, 10, 1, &t, &err), -1);
    assert_non_null(strstr(err.msg, "rate"));
    assert_int_equal(load_schedule_open(&s, LOAD_ARRIVAL_EXPONENTIAL, 10, -1, 1, &t, &err), -1);
    assert_non_null(strstr(err.msg, "duration"));
    assert_int_equal(load_schedule_open(&s, LOAD_ARRIVAL_EXPONENTIAL, NAN, 10, 1, &t, &err), -1);
    enum load_arrival a;
    assert_int_equal(load_arrival_parse("poisson", &a, &err), 0);
    assert_int_equal(a, LOAD_ARRIVAL_EXPONENTIAL);
    assert_int_equal(load_arrival_parse("gamma", &a, &err), -1);
    assert_non_null(strstr(err.msg, "gamma"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exponential),     cmocka_unit_test(test_uniform),
        cmocka_unit_test(test_equidistant),     cmocka_unit_test(test_seed_repeats),
        cmocka_unit_test(test_normal_and_uniform_rng), cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
