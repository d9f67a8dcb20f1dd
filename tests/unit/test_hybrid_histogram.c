/* The hybrid histogram keep-alive policy (src/host/policy/hybrid_histogram.c) on
 * synthetic idle-time histograms with known answers. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "host/policy/hybrid_histogram.h"

#define NEAR(a, b) assert_true(fabs((a) - (b)) < 1e-6)

static struct hybrid_histogram make(void)
{
    struct hybrid_config c;
    hybrid_config_default(&c);
    struct hybrid_histogram h;
    struct thaw_error err = {{0}};
    assert_int_equal(hybrid_init(&h, &c, &err), 0);
    return h;
}

static void test_single_peak(void **state)
{
    (void)state;
    /* 100 idle times of 10.5 minutes: all in bin 10. head = bin 10's lower edge (600 s),
     * tail = its upper edge (660 s); prewarm 600 * 0.9 = 540 s, keep-alive until
     * 660 * 1.1 = 726 s, i.e. 186 s. */
    struct hybrid_histogram h = make();
    for (int i = 0; i < 100; i++)
        hybrid_record_idle(&h, 630);
    struct hybrid_windows w;
    hybrid_windows(&h, &w);
    assert_int_equal(w.decision, HYBRID_HISTOGRAM);
    NEAR(w.prewarm_s, 540);
    NEAR(w.keepalive_s, 186);
    /* CV of 240 bins with one holding everything: sqrt(239). */
    NEAR(w.cv, sqrt(239.0));
    hybrid_free(&h);
}

static void test_two_peaks(void **state)
{
    (void)state;
    /* 5 idle times in bin 2, 90 in bin 30, 5 in bin 60. The 5th percentile reaches bin
     * 2 (5 of 100), the 99th bin 60: prewarm 120 * 0.9 = 108 s, keep-alive until
     * 61 * 60 * 1.1 = 4026 s, i.e. 3918 s. */
    struct hybrid_histogram h = make();
    for (int i = 0; i < 5; i++)
        hybrid_record_idle(&h, 2 * 60 + 1);
    for (int i = 0; i < 90; i++)
        hybrid_record_idle(&h, 30 * 60 + 59);
    for (int i = 0; i < 5; i++)
        hybrid_record_idle(&h, 60 * 60);
    struct hybrid_windows w;
    hybrid_windows(&h, &w);
    assert_int_equal(w.decision, HYBRID_HISTOGRAM);
    NEAR(w.prewarm_s, 108);
    NEAR(w.keepalive_s, 4026 - 108);
    hybrid_free(&h);
}

static void test_short_idle_keeps_warm(void **state)
{
    (void)state;
    /* Idle times under a minute: head bin 0, so no pre-warm gap (keep the instance);
     * keep-alive to 60 * 1.1 = 66 s. */
    struct hybrid_histogram h = make();
    for (int i = 0; i < 50; i++)
        hybrid_record_idle(&h, 5 + i % 30);
    hybrid_record_idle(&h, -3); /* a clock step: counts as 0 */
    struct hybrid_windows w;
    hybrid_windows(&h, &w);
    assert_int_equal(w.decision, HYBRID_HISTOGRAM);
    NEAR(w.prewarm_s, 0);
    NEAR(w.keepalive_s, 66);
    hybrid_free(&h);
}

static void test_fallbacks(void **state)
{
    (void)state;
    struct hybrid_windows w;
    /* Too few idle times. */
    struct hybrid_histogram h = make();
    for (int i = 0; i < 9; i++)
        hybrid_record_idle(&h, 600);
    hybrid_windows(&h, &w);
    assert_int_equal(w.decision, HYBRID_FEW_SAMPLES);
    NEAR(w.prewarm_s, 0);
    NEAR(w.keepalive_s, 4 * 3600);
    hybrid_free(&h);
    /* A flat histogram: one idle time in every bin, CV 0. */
    h = make();
    for (int b = 0; b < 240; b++)
        hybrid_record_idle(&h, b * 60 + 30);
    hybrid_windows(&h, &w);
    assert_int_equal(w.decision, HYBRID_FLAT);
    NEAR(w.cv, 0);
    NEAR(w.keepalive_s, 4 * 3600);
    hybrid_free(&h);
    /* Mostly beyond the 4-hour range. */
    h = make();
    for (int i = 0; i < 20; i++)
        hybrid_record_idle(&h, 600);
    for (int i = 0; i < 21; i++)
        hybrid_record_idle(&h, 5 * 3600);
    hybrid_windows(&h, &w);
    assert_int_equal(w.decision, HYBRID_OUT_OF_BOUNDS);
    assert_int_equal(h.out_of_bounds, 21);
    hybrid_free(&h);
    assert_string_equal(hybrid_decision_name(HYBRID_FLAT), "flat");
}

static void test_compressed_time(void **state)
{
    (void)state;
    /* One trace minute per second: bins of 1 s, fallback 240 s. Idle times of 10.5 s
     * give the single-peak answer scaled by 1/60. */
    struct hybrid_config c;
    hybrid_config_default(&c);
    c.bin_s = 1;
    c.fallback_keepalive_s = 240;
    struct hybrid_histogram h;
    struct thaw_error err = {{0}};
    assert_int_equal(hybrid_init(&h, &c, &err), 0);
    for (int i = 0; i < 100; i++)
        hybrid_record_idle(&h, 10.5);
    struct hybrid_windows w;
    hybrid_windows(&h, &w);
    NEAR(w.prewarm_s, 9);
    NEAR(w.keepalive_s, 12.1 - 9);
    hybrid_free(&h);
}

static void test_pool_decisions(void **state)
{
    (void)state;
    struct hybrid_windows pre = {.prewarm_s = 540, .keepalive_s = 186};
    NEAR(hybrid_idle_ttl_s(&pre), 0); /* tear down now, pre-warm at 540 s */
    assert_false(hybrid_want_warm(&pre, 0));
    assert_false(hybrid_want_warm(&pre, 539.9));
    assert_true(hybrid_want_warm(&pre, 540));
    assert_true(hybrid_want_warm(&pre, 725.9));
    assert_false(hybrid_want_warm(&pre, 726));
    struct hybrid_windows keep = {.prewarm_s = 0, .keepalive_s = 66};
    NEAR(hybrid_idle_ttl_s(&keep), 66);
    assert_true(hybrid_want_warm(&keep, 0));
    assert_false(hybrid_want_warm(&keep, 66));
}

static void test_bad_config(void **state)
{
    (void)state;
    struct hybrid_config c;
    struct hybrid_histogram h;
    struct thaw_error err = {{0}};
    hybrid_config_default(&c);
    c.bins = 0;
    assert_int_equal(hybrid_init(&h, &c, &err), -1);
    hybrid_config_default(&c);
    c.head_pct = 99.5;
    assert_int_equal(hybrid_init(&h, &c, &err), -1);
    assert_non_null(strstr(err.msg, "percentile"));
    hybrid_config_default(&c);
    c.margin = 1;
    assert_int_equal(hybrid_init(&h, &c, &err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_single_peak),  cmocka_unit_test(test_two_peaks),
        cmocka_unit_test(test_short_idle_keeps_warm), cmocka_unit_test(test_fallbacks),
        cmocka_unit_test(test_compressed_time), cmocka_unit_test(test_pool_decisions),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
