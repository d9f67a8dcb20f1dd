/* The host's CPU load as the pre-fault vCPU's choice reads it (src/host/util/cpu_load.c):
 * /proc/loadavg's running count, refused when the line is not what the kernel writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "host/util/cpu_load.h"

static void parses_the_running_count(void **state)
{
    (void)state;
    int r = -1;
    assert_int_equal(cpu_load_parse("0.50 0.40 0.30 3/412 9876\n", &r), 0);
    assert_int_equal(r, 3);
    assert_int_equal(cpu_load_parse("12.01 9.99 7.00 17/1024 1", &r), 0);
    assert_int_equal(r, 17);
}

static void refuses_malformed_lines(void **state)
{
    (void)state;
    int r = 42;
    assert_int_equal(cpu_load_parse("", &r), -1);
    assert_int_equal(cpu_load_parse("0.50 0.40 0.30", &r), -1);
    assert_int_equal(cpu_load_parse("0.50 0.40 0.30 3", &r), -1);   /* no total */
    assert_int_equal(cpu_load_parse("0.50 0.40 0.30 x/412", &r), -1); /* not a number */
    assert_int_equal(cpu_load_parse("0.50 0.40 0.30 -1/412", &r), -1);
    assert_int_equal(cpu_load_parse("0.50 0.40 0.30 99999999999/4", &r), -1);
    assert_int_equal(r, 42); /* untouched on refusal */
}

static void reads_this_host(void **state)
{
    (void)state;
    struct cpu_load l;
    assert_int_equal(cpu_load_now(&l), 0);
    assert_true(l.cpus >= 1);
    assert_true(l.runnable >= 1); /* this thread is running while it reads */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_the_running_count),
        cmocka_unit_test(refuses_malformed_lines),
        cmocka_unit_test(reads_this_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
