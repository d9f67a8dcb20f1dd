/* The keep-alive simulation (src/host/load/keepalive_sim.c) on hand-made schedules
 * whose cold starts and memory-seconds can be worked out by hand. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "host/load/load.h"

#define NEAR(a, b) assert_true(fabs((a) - (b)) < 1e-6)

/* One function invoked at the given seconds, each running dur_s. */
static struct load_schedule make(const double *at, size_t n, double dur_s, double span_s)
{
    struct load_schedule s = {0};
    s.events = calloc(n, sizeof *s.events);
    s.targets = calloc(1, sizeof *s.targets);
    assert_non_null(s.events);
    assert_non_null(s.targets);
    strcpy(s.targets[0].function, "f");
    s.target_count = 1;
    for (size_t i = 0; i < n; i++)
        s.events[i] = (struct load_event){.at_us = (uint64_t)(at[i] * 1e6), .duration_us = (uint64_t)(dur_s * 1e6)};
    s.count = n;
    s.span_us = (uint64_t)(span_s * 1e6);
    return s;
}

static struct load_ka_result run(const struct load_schedule *s, enum load_ka_policy p, double keep)
{
    struct load_ka_config c = {.policy = p, .keepalive_s = keep, .hybrid_bin_s = 1, .hybrid_fallback_s = keep,
                               .cold_ms = 100, .warm_ms = 1, .memory_mb = 100};
    struct load_ka_result r;
    struct thaw_error err = {{0}};
    if (load_keepalive_simulate(s, &c, &r, &err) < 0)
        fail_msg("%s", err.msg);
    return r;
}

static void test_fixed_and_zero(void **state)
{
    (void)state;
    const double at[] = {0, 10, 20};
    struct load_schedule s = make(at, 3, 1, 30);
    /* Scale to zero: all cold, each loaded for 0.1 + 1 s: 3 x 1.1 x 100 MB. */
    struct load_ka_result r = run(&s, LOAD_KA_ZERO, 0);
    assert_int_equal(r.cold, 3);
    NEAR(r.memory_mb_s, 330);
    NEAR(r.idle_memory_mb_s, 0);
    NEAR(r.p50_ms, 100);
    /* Keep-alive 15 s covers the 10 s gaps: one cold start, loaded the whole 30 s. */
    r = run(&s, LOAD_KA_FIXED, 15);
    assert_int_equal(r.cold, 1);
    NEAR(r.cold_share, 1.0 / 3);
    NEAR(r.memory_mb_s, 3000);
    NEAR(r.idle_memory_mb_s, 3000 - 100 * (1.1 + 1.001 + 1.001));
    NEAR(r.p50_ms, 1);
    NEAR(r.p99_ms, 1 + 0.98 * 99); /* rank 1.98 between 1 and 100 */
    /* Keep-alive 5 s: every gap is longer, all cold, each loaded 1.1 + 5 s. */
    r = run(&s, LOAD_KA_FIXED, 5);
    assert_int_equal(r.cold, 3);
    NEAR(r.memory_mb_s, 3 * 6.1 * 100);
    assert_int_equal(r.max_instances, 1);
    load_schedule_free(&s);
}

static void test_overlap_needs_two_instances(void **state)
{
    (void)state;
    const double at[] = {0, 0.5, 3};
    struct load_schedule s = make(at, 3, 1, 10);
    struct load_ka_result r = run(&s, LOAD_KA_FIXED, 60);
    /* The second arrives while the first runs: a second instance; the third is warm. */
    assert_int_equal(r.cold, 2);
    assert_int_equal(r.max_instances, 2);
    NEAR(r.memory_mb_s, 2 * 100 * 10 - 100 * 0.5); /* both loaded to the end, one from 0.5 s */
    load_schedule_free(&s);
}

static void test_hybrid_learns_period(void **state)
{
    (void)state;
    /* Every 10 s, instant invocations (cold 100 ms, warm 1 ms). With 1 s bins the
     * idle times (about 10 s) land in bin 9 or 10; once 10 are recorded the policy
     * pre-warms before the next arrival instead of keeping the instance (fallback
     * here: scale to zero). */
    double at[200];
    for (int i = 0; i < 200; i++)
        at[i] = 10.0 * i;
    struct load_schedule s = make(at, 200, 0, 2000);
    struct load_ka_result hyb = run(&s, LOAD_KA_HYBRID, 0);
    struct load_ka_result keep = run(&s, LOAD_KA_FIXED, 11);
    assert_true(hyb.cold >= 10 && hyb.cold <= 12);
    assert_int_equal(keep.cold, 1);
    /* The hybrid policy holds memory only around the expected arrival: far less. */
    assert_true(hyb.memory_mb_s < 0.5 * keep.memory_mb_s);
    load_schedule_free(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixed_and_zero),
        cmocka_unit_test(test_overlap_needs_two_instances),
        cmocka_unit_test(test_hybrid_learns_period),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
