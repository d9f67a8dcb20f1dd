/* Integration tests: boot real guests in microVMs and talk to them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "guest_helpers.h"

static void expect_greeting(const char *dir)
{
    struct booted b;
    struct thaw_error err = {{0}};
    if (boot_function(&b, dir, &err) < 0)
        fail_msg("boot %s: %s", dir, err.msg);
    char *r = invoke_str(&b, "{\"name\": \"Ada Lovelace\"}", &err);
    assert_non_null(r);
    assert_non_null(strstr(r, "Hello, Ada Lovelace!"));
    free(r);
    r = invoke_str(&b, "{\"name\": \"second call\"}", &err);
    assert_non_null(r);
    assert_non_null(strstr(r, "second call"));
    free(r);
    assert_int_equal(instance_shutdown(&b.inst, &err), 0);
    assert_int_equal(b.inst.state, INSTANCE_EXITED);
    assert_int_equal(b.inst.exit_status, 0);
    booted_free(&b);
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
    struct booted b;
    struct thaw_error err = {{0}};
    if (boot_function(&b, "functions/hello", &err) < 0)
        fail_msg("boot: %s", err.msg);
    for (int i = 0; i < 1000; i++) {
        char payload[64], want[64];
        snprintf(payload, sizeof payload, "{\"name\": \"n%d\"}", i);
        snprintf(want, sizeof want, "Hello, n%d!", i);
        char *r = invoke_str(&b, payload, &err);
        if (!r)
            fail_msg("invocation %d: %s", i, err.msg);
        if (!strstr(r, want))
            fail_msg("invocation %d answered %s", i, r);
        free(r);
    }
    assert_int_equal(b.inst.stats.invocations, 1000);
    booted_free(&b);
}

/* Boots faulty, sends one payload, expects the invocation to fail with a message
 * containing each of the given fragments, and the instance to be stopped. */

static void expect_stop(const char *payload, const char *frag1, const char *frag2, enum instance_state want)
{
    struct booted b;
    struct thaw_error err = {{0}};
    if (boot_function(&b, "functions/faulty", &err) < 0)
        fail_msg("boot: %s", err.msg);
    char *r = invoke_str(&b, payload, &err);
    if (r)
        fail_msg("%s: expected a failure, got response %s", payload, r);
    if (!strstr(err.msg, frag1) || (frag2 && !strstr(err.msg, frag2)))
        fail_msg("%s: message \"%s\" lacks \"%s\"/\"%s\"", payload, err.msg, frag1, frag2 ? frag2 : "");
    assert_int_equal(b.inst.state, want);
    /* The stopped instance refuses further work with a clear error. */
    assert_null(invoke_str(&b, "{}", &err));
    booted_free(&b);
}

static void test_fault_null_write(void **state)
{
    (void)state;
    expect_stop("{\"fault\": \"null\"}", "page fault", "write to the NULL page", INSTANCE_FAILED);
}

static void test_fault_bad_jump(void **state)
{
    (void)state;
    expect_stop("{\"fault\": \"jump\"}", "page fault", "instruction fetch from an unmapped address", INSTANCE_FAILED);
}

static void test_fault_divide_by_zero(void **state)
{
    (void)state;
    expect_stop("{\"fault\": \"div0\"}", "divide error", "[in the program]", INSTANCE_FAILED);
}

static void test_fault_invalid_opcode(void **state)
{
    (void)state;
    expect_stop("{\"fault\": \"ud\"}", "invalid opcode", "[in the program]", INSTANCE_FAILED);
}

static void test_abort_exits_with_signal_status(void **state)
{
    (void)state;
    expect_stop("{\"fault\": \"abort\"}", "exited with status 134", NULL, INSTANCE_EXITED);
}

static void test_bad_hypercall_argument_refused(void **state)
{
    (void)state;
    expect_stop("{\"fault\": \"hypercall-bad-arg\"}", "bad hypercall", "outside guest memory", INSTANCE_FAILED);
}

static void test_bad_hypercall_buffer_refused(void **state)
{
    (void)state;
    expect_stop("{\"fault\": \"hypercall-bad-buffer\"}", "bad hypercall", "outside guest memory", INSTANCE_FAILED);
    /* The host is unharmed: a fresh instance still works after the refusal. */
    expect_greeting("functions/hello");
}

static void test_memtouch_glibc_and_musl_agree(void **state)
{
    (void)state;
    struct booted g, m;
    struct thaw_error err = {{0}};
    if (boot_function(&g, "functions/memtouch", &err) < 0 || boot_function(&m, "functions/memtouch-musl", &err) < 0)
        fail_msg("boot: %s", err.msg);
    const char *payloads[] = {"{\"mib\": 1, \"seed\": 1}", "{\"mib\": 8, \"seed\": 99}"};
    for (size_t i = 0; i < 2; i++) {
        char *a = invoke_str(&g, payloads[i], &err), *c = invoke_str(&m, payloads[i], &err);
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
    char *x = invoke_str(&g, "{\"mib\": 1, \"seed\": 2}", &err), *y = invoke_str(&g, "{\"mib\": 1, \"seed\": 3}", &err);
    assert_string_not_equal(strstr(x, "checksum"), strstr(y, "checksum"));
    free(x);
    free(y);
    booted_free(&g);
    booted_free(&m);
}

static void test_guest_output_reaches_console(void **state)
{
    (void)state;
    struct booted b;
    struct thaw_error err = {{0}};
    if (boot_function(&b, "functions/faulty", &err) < 0)
        fail_msg("boot: %s", err.msg);
    char *r = invoke_str(&b, "{\"fault\": \"abort\"}", &err);
    assert_null(r);
    char buf[4096] = {0};
    assert_true(pread(b.console_fd, buf, sizeof buf - 1, 0) > 0);
    assert_non_null(strstr(buf, "signal 6"));
    booted_free(&b);
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
        cmocka_unit_test(test_guest_output_reaches_console),
    };
    return cmocka_run_group_tests_name("boot", tests, NULL, NULL);
}
