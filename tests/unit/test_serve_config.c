/* The daemon's pure parts: per-function configuration checks, upload path checks,
 * the fixed keep-alive policy, and the Prometheus histogram buckets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "host/serve/fn_config.h"
#include "host/serve/keepalive.h"
#include "host/serve/metrics.h"
#include "host/serve/upload.h"

static void test_config_defaults_and_json(void **state)
{
    (void)state;
    struct fn_config c;
    struct thaw_error err;
    fn_config_default(&c);
    assert_int_equal(c.restore, FN_RESTORE_REAP);
    json_t *j = json_loads("{\"restore\": \"lazy\", \"max_instances\": 8, \"keep_alive_ms\": 0}", 0, NULL);
    assert_int_equal(fn_config_apply_json(&c, j, &err), 0);
    json_decref(j);
    assert_int_equal(c.restore, FN_RESTORE_LAZY);
    assert_int_equal(c.max_instances, 8);
    assert_int_equal(c.keep_alive_ms, 0);
    json_t *out = fn_config_to_json(&c);
    assert_string_equal(json_string_value(json_object_get(out, "restore")), "lazy");
    json_decref(out);
}

static void expect_refused(const char *text, const char *msg_part)
{
    struct fn_config c, before;
    struct thaw_error err = {{0}};
    fn_config_default(&c);
    before = c;
    json_t *j = json_loads(text, 0, NULL);
    assert_non_null(j);
    assert_int_equal(fn_config_apply_json(&c, j, &err), -1);
    json_decref(j);
    assert_non_null(strstr(err.msg, msg_part));
    assert_memory_equal(&c, &before, sizeof c); /* unchanged on failure */
}

static void test_config_refusals(void **state)
{
    (void)state;
    expect_refused("{\"colour\": 1}", "unknown");
    expect_refused("{\"max_instances\": 0}", "max_instances");
    expect_refused("{\"max_instances\": \"4\"}", "integer");
    expect_refused("{\"max_instances\": -1}", "integer");
    expect_refused("{\"min_instances\": 5, \"max_instances\": 2}", "exceeds");
    expect_refused("{\"restore\": \"uffd\"}", "restore");
    expect_refused("{\"memory_mib\": 17}", "memory_mib");
    expect_refused("{\"keep_alive_policy\": \"never\"}", "policy");
    expect_refused("{\"hybrid_bin_ms\": 0}", "hybrid_bin_ms");
    expect_refused("{\"warmup\": 101}", "warmup");
    expect_refused("[1, 2]", "object");
}

static void test_config_text(void **state)
{
    (void)state;
    struct fn_config c;
    struct thaw_error err;
    fn_config_default(&c);
    assert_int_equal(fn_config_apply_text(&c, "queue_max", "3", &err), 0);
    assert_int_equal(c.queue_max, 3);
    assert_int_equal(fn_config_apply_text(&c, "queue_max", "3x", &err), -1);
    assert_int_equal(fn_config_apply_text(&c, "queue_max", "-3", &err), -1);
    assert_int_equal(fn_config_apply_text(&c, "queue_max", "", &err), -1);
    assert_int_equal(fn_config_apply_text(&c, "timeout_ms", "99999999999999999999", &err), -1);
    assert_int_equal(fn_config_apply_text(&c, "restore", "boot", &err), 0);
    assert_int_equal(c.restore, FN_RESTORE_BOOT);
    assert_int_equal(fn_config_apply_text(&c, "restore", "share", &err), 0);
    assert_int_equal(c.restore, FN_RESTORE_SHARE);
    json_t *out = fn_config_to_json(&c);
    assert_string_equal(json_string_value(json_object_get(out, "restore")), "share");
    json_decref(out);
    assert_int_equal(fn_config_apply_text(&c, "restore", "shared", &err), -1);
    assert_non_null(strstr(err.msg, "share"));
    /* warmup: 0 by default, up to 100, stored with the rest. */
    assert_int_equal(c.warmup, 0);
    assert_int_equal(fn_config_apply_text(&c, "warmup", "100", &err), 0);
    out = fn_config_to_json(&c);
    assert_int_equal(json_integer_value(json_object_get(out, "warmup")), 100);
    struct fn_config back;
    fn_config_default(&back);
    assert_int_equal(fn_config_apply_json(&back, out, &err), 0);
    assert_int_equal(back.warmup, 100);
    json_decref(out);
}

static void test_upload_paths(void **state)
{
    (void)state;
    assert_true(upload_path_safe("function.json"));
    assert_true(upload_path_safe("payloads/a.json"));
    assert_true(upload_path_safe("dir/"));
    assert_false(upload_path_safe(""));
    assert_false(upload_path_safe("/etc/passwd"));
    assert_false(upload_path_safe(".."));
    assert_false(upload_path_safe("a/../../b"));
    assert_false(upload_path_safe("a/.."));
    assert_false(upload_path_safe("a//b"));
    assert_false(upload_path_safe("caf\xc3\xa9"));
    assert_false(upload_path_safe("a\nb"));
    assert_false(upload_path_safe("a\\b"));
    assert_true(upload_path_safe("..a/b.."));
}

static void test_keepalive_fixed(void **state)
{
    (void)state;
    struct keepalive ka;
    struct thaw_error err;
    struct keepalive_params p = {.keep_alive_ns = 5000, .bin_ns = 100};
    assert_int_equal(keepalive_create(&ka, "nope", &p, &err), -1);
    assert_non_null(strstr(err.msg, "fixed"));
    assert_non_null(strstr(err.msg, "hybrid"));
    assert_int_equal(keepalive_create(&ka, "fixed", &p, &err), 0);
    ka.ops->on_invocation(ka.state, 1);
    ka.ops->on_invocation_end(ka.state, 2);
    assert_int_equal(ka.ops->idle_ttl_ns(ka.state, 2), 5000);
    assert_null(ka.ops->want_warm);
    p.keep_alive_ns = 7;
    ka.ops->set_params(ka.state, &p);
    assert_int_equal(ka.ops->idle_ttl_ns(ka.state, 3), 7);
    keepalive_destroy(&ka);
}

#define MS 1000000ull

/* One invocation arriving at *t, running 10 ms; *t moves to its end. */
static void invoke_at(struct keepalive *ka, uint64_t *t)
{
    ka->ops->on_invocation(ka->state, *t);
    *t += 10 * MS;
    ka->ops->on_invocation_end(ka->state, *t);
}

static void test_keepalive_hybrid(void **state)
{
    (void)state;
    struct keepalive ka;
    struct thaw_error err;
    struct keepalive_params p = {.keep_alive_ns = 60000 * MS, .bin_ns = 100 * MS};
    assert_true(keepalive_known("hybrid"));
    assert_int_equal(keepalive_create(&ka, "hybrid", &p, &err), 0);
    struct keepalive_windows w;
    /* Before 10 idle times: the fixed fallback, and no pre-warming. */
    uint64_t t = 1000 * MS;
    invoke_at(&ka, &t);
    for (int i = 0; i < 5; i++) {
        t += 1000 * MS;
        invoke_at(&ka, &t);
    }
    ka.ops->windows(ka.state, &w);
    assert_string_equal(w.decision, "few-samples");
    assert_int_equal(w.idle_times, 5);
    assert_int_equal(ka.ops->idle_ttl_ns(ka.state, t), 60000 * MS);
    assert_false(ka.ops->want_warm(ka.state, t + 950 * MS));
    /* Idle times of 1.0 s (bin 10 of 100 ms): pre-warm at 0.9 s, keep to 1.21 s. */
    for (int i = 0; i < 7; i++) {
        t += 1000 * MS;
        invoke_at(&ka, &t);
    }
    ka.ops->windows(ka.state, &w);
    assert_string_equal(w.decision, "histogram");
    assert_int_equal(w.idle_times, 12);
    assert_true(w.prewarm_ns > 899 * MS && w.prewarm_ns < 901 * MS);
    assert_true(w.prewarm_ns + w.keep_alive_ns > 1209 * MS && w.prewarm_ns + w.keep_alive_ns < 1211 * MS);
    assert_int_equal(ka.ops->idle_ttl_ns(ka.state, t), 0); /* torn down at the end */
    assert_false(ka.ops->want_warm(ka.state, t + 100 * MS));
    assert_true(ka.ops->want_warm(ka.state, t + 950 * MS));
    assert_false(ka.ops->want_warm(ka.state, t + 1300 * MS));
    /* While an invocation runs nothing is pre-warmed, and an arrival during it is no
     * idle time. */
    ka.ops->on_invocation(ka.state, t + 950 * MS);
    assert_false(ka.ops->want_warm(ka.state, t + 960 * MS));
    ka.ops->on_invocation(ka.state, t + 970 * MS);
    ka.ops->windows(ka.state, &w);
    assert_int_equal(w.idle_times, 13);
    ka.ops->on_invocation_end(ka.state, t + 980 * MS);
    ka.ops->on_invocation_end(ka.state, t + 990 * MS);
    /* A new bin width starts a new histogram; a new keep-alive moves the fallback. */
    p.bin_ns = 200 * MS;
    p.keep_alive_ns = 3000 * MS;
    ka.ops->set_params(ka.state, &p);
    ka.ops->windows(ka.state, &w);
    assert_int_equal(w.idle_times, 0);
    assert_int_equal(w.keep_alive_ns, 3000 * MS);
    assert_int_equal(ka.ops->idle_ttl_ns(ka.state, t), 3000 * MS);
    keepalive_destroy(&ka);
}

static void test_histogram_buckets(void **state)
{
    (void)state;
    struct fn_metrics m;
    fn_metrics_init(&m);
    uint64_t ph[PHASES] = {0, 0, 0, 300000 /* 0.3 ms */, 20000000000ull /* 20 s */};
    fn_metrics_invocation(&m, START_COLD_REAP, ph);
    struct histogram *inv = &m.latency[PHASE_INVOKE][START_COLD_REAP];
    assert_int_equal(inv->n, 1);
    assert_int_equal(inv->counts[2], 1); /* 0.00025 < 0.0003 <= 0.0005 */
    assert_int_equal(m.latency[PHASE_TOTAL][START_COLD_REAP].counts[METRICS_BUCKETS - 1], 1); /* +Inf */
    assert_int_equal(m.invocations[START_COLD_REAP], 1);
    fn_metrics_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_defaults_and_json), cmocka_unit_test(test_config_refusals),
        cmocka_unit_test(test_config_text),              cmocka_unit_test(test_upload_paths),
        cmocka_unit_test(test_keepalive_fixed), cmocka_unit_test(test_keepalive_hybrid),          cmocka_unit_test(test_histogram_buckets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
