/* Integration tests: boot real guests in microVMs through the lifecycle layer and talk
 * to them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "guest_helpers.h"

static void expect_greeting(const char *dir)
{
    struct thaw_error err = {{0}};
    struct sandbox *b = boot_function(dir, NULL, &err);
    if (!b)
        fail_msg("boot %s: %s", dir, err.msg);
    char *r = invoke_str(b, "{\"name\": \"Ada Lovelace\"}", &err);
    assert_non_null(r);
    assert_non_null(strstr(r, "Hello, Ada Lovelace!"));
    free(r);
    r = invoke_str(b, "{\"name\": \"second call\"}", &err);
    assert_non_null(r);
    assert_non_null(strstr(r, "second call"));
    free(r);
    assert_int_equal(sandbox_shutdown(b, &err), 0);
    struct sandbox_stats st;
    assert_int_equal(sandbox_stats(b, &st, &err), 0);
    assert_true(st.exited);
    assert_int_equal(st.exit_status, 0);
    sandbox_destroy(b);
}

static void test_hello_glibc(void **state)
{
    (void)state;
    expect_greeting("functions/hello");
}

static void test_hello_musl(void **state)
{
    (void)state;
    expect_greeting("functions/hello-musl");
}

static void test_thousand_warm_invocations(void **state)
{
    (void)state;
    struct thaw_error err = {{0}};
    struct sandbox *b = boot_function("functions/hello", NULL, &err);
    if (!b)
        fail_msg("boot: %s", err.msg);
    for (int i = 0; i < 1000; i++) {
        char payload[64], want[64];
        snprintf(payload, sizeof payload, "{\"name\": \"n%d\"}", i);
        snprintf(want, sizeof want, "Hello, n%d!", i);
        char *r = invoke_str(b, payload, &err);
        if (!r)
            fail_msg("invocation %d: %s", i, err.msg);
        if (!strstr(r, want))
            fail_msg("invocation %d answered %s", i, r);
        free(r);
    }
    struct sandbox_stats st;
    assert_int_equal(sandbox_stats(b, &st, &err), 0);
    assert_int_equal(st.invocations, 1000);
    sandbox_destroy(b);
}

/* Boots faulty, sends one payload, expects the invocation to fail with a message
 * containing each of the given fragments, and the instance to be dead (a guest
 * failure) and, if exited, to say so. */

static void expect_stop(const char *payload, const char *frag1, const char *frag2, bool exited)
{
    struct thaw_error err = {{0}};
    struct sandbox *b = boot_function("functions/faulty", NULL, &err);
    if (!b)
        fail_msg("boot: %s", err.msg);
    char *r = invoke_str(b, payload, &err);
    if (r)
        fail_msg("%s: expected a failure, got response %s", payload, r);
    if (!strstr(err.msg, frag1) || (frag2 && !strstr(err.msg, frag2)))
        fail_msg("%s: message \"%s\" lacks \"%s\"/\"%s\"", payload, err.msg, frag1, frag2 ? frag2 : "");
    assert_int_equal(sandbox_last_failure(b), SANDBOX_FAIL_GUEST);
    struct sandbox_stats st;
    assert_int_equal(sandbox_stats(b, &st, &err), 0);
    assert_int_equal(st.exited, exited);
    /* The stopped instance refuses further work with a clear error. */
    assert_null(invoke_str(b, "{}", &err));
    assert_non_null(strstr(err.msg, "dead"));
    sandbox_destroy(b);
}

static void test_fault_null_write(void **state)
{
    (void)state;
    expect_stop("{\"fault\": \"null\"}", "page fault", "write to the NULL page", false);
}

static void test_fault_bad_jump(void **state)
{
    (void)state;
    expect_stop("{\"fault\": \"jump\"}", "page fault", "instruction fetch from an unmapped address", false);
}

static void test_fault_divide_by_zero(void **state)
{
    (void)state;
    expect_stop("{\"fault\": \"div0\"}", "divide error", "[in the program]", false);
}

static void test_fault_invalid_opcode(void **state)
{
    (void)state;
    expect_stop("{\"fault\": \"ud\"}", "invalid opcode", "[in the program]", false);
}

static void test_abort_exits_with_signal_status(void **state)
{
    (void)state;
    expect_stop("{\"fault\": \"abort\"}", "exited with status 134", NULL, true);
}

static void test_bad_hypercall_argument_refused(void **state)
{
    (void)state;
    expect_stop("{\"fault\": \"hypercall-bad-arg\"}", "bad hypercall", "outside guest memory", false);
}

static void test_bad_hypercall_buffer_refused(void **state)
{
    (void)state;
    expect_stop("{\"fault\": \"hypercall-bad-buffer\"}", "bad hypercall", "outside guest memory", false);
    /* The host is unharmed: a fresh instance still works after the refusal. */
    expect_greeting("functions/hello");
}

static void test_memtouch_glibc_and_musl_agree(void **state)
{
    (void)state;
    struct thaw_error err = {{0}};
    struct sandbox *g = boot_function("functions/memtouch", NULL, &err);
    struct sandbox *m = g ? boot_function("functions/memtouch-musl", NULL, &err) : NULL;
    if (!g || !m)
        fail_msg("boot: %s", err.msg);
    const char *payloads[] = {"{\"mib\": 1, \"seed\": 1}", "{\"mib\": 8, \"seed\": 99}"};
    for (size_t i = 0; i < 2; i++) {
        char *a = invoke_str(g, payloads[i], &err), *c = invoke_str(m, payloads[i], &err);
        assert_non_null(a);
        assert_non_null(c);
        const char *ka = strstr(a, "checksum"), *kc = strstr(c, "checksum");
        assert_non_null(ka);
        assert_non_null(kc);
        assert_string_equal(ka, kc);
        free(a);
        free(c);
    }
    /* Different seeds touch different pages: different checksums. */
    char *x = invoke_str(g, "{\"mib\": 1, \"seed\": 2}", &err), *y = invoke_str(g, "{\"mib\": 1, \"seed\": 3}", &err);
    assert_string_not_equal(strstr(x, "checksum"), strstr(y, "checksum"));
    free(x);
    free(y);
    sandbox_destroy(g);
    sandbox_destroy(m);
}

static void test_guest_output_reaches_the_log(void **state)
{
    (void)state;
    struct guest_output out = {0};
    struct thaw_error err = {{0}};
    struct sandbox *b = boot_function("functions/faulty", &out, &err);
    if (!b)
        fail_msg("boot: %s", err.msg);
    char *r = invoke_str(b, "{\"fault\": \"abort\"}", &err);
    assert_null(r);
    assert_non_null(strstr(out.text, "signal 6"));
    sandbox_destroy(b);
}

int main(void)
{
    if (!kvm_available())
        return 0;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_glibc),
        cmocka_unit_test(test_hello_musl),
        cmocka_unit_test(test_thousand_warm_invocations),
        cmocka_unit_test(test_fault_null_write),
        cmocka_unit_test(test_fault_bad_jump),
        cmocka_unit_test(test_fault_divide_by_zero),
        cmocka_unit_test(test_fault_invalid_opcode),
        cmocka_unit_test(test_abort_exits_with_signal_status),
        cmocka_unit_test(test_bad_hypercall_argument_refused),
        cmocka_unit_test(test_bad_hypercall_buffer_refused),
        cmocka_unit_test(test_memtouch_glibc_and_musl_agree),
        cmocka_unit_test(test_guest_output_reaches_the_log),
    };
    return cmocka_run_group_tests_name("boot", tests, NULL, NULL);
}
