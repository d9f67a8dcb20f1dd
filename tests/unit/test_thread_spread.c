/* Helper threads started off their creator's CPU (src/host/util/thread_spread.c): a
 * pinned one never has the creator's CPU in its mask, a started one gets every CPU
 * back once it runs, THAW_SPREAD=0 makes plain threads, and each runs its function
 * with its argument; placed only while a CPU is idle (the rule, on crafted loads), so
 * the placement checks force it (THAW_SPREAD=1): this host's load is not the test's.
 * On a host with one CPU there is nothing to spread: said loudly. */
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "host/util/thread_spread.h"

struct seen {
    int arg;
    int ran;
    cpu_set_t mask;
};

static void *record(void *p)
{
    struct seen *s = p;
    s->ran = s->arg + 1;
    CPU_ZERO(&s->mask);
    (void)sched_getaffinity(0, sizeof s->mask, &s->mask);
    return p;
}

static int cpus(void)
{
    cpu_set_t all;
    return sched_getaffinity(0, sizeof all, &all) == 0 ? CPU_COUNT(&all) : 1;
}

/* A thread started as `how` says under THAW_SPREAD=setting ("1": placed whatever the
 * load, "0": plain), joined: what it saw. */
static struct seen run(enum spread how, const char *setting)
{
    struct seen s = {.arg = 41};
    pthread_t t;
    setenv("THAW_SPREAD", setting, 1);
    int rc = thread_start_spread(&t, record, &s, how);
    unsetenv("THAW_SPREAD");
    assert_int_equal(rc, 0);
    void *back = NULL;
    assert_int_equal(pthread_join(t, &back), 0);
    assert_ptr_equal(back, &s);
    assert_int_equal(s.ran, 42);
    return s;
}

static void pinned_stays_off_the_creators_cpu(void **state)
{
    (void)state;
    if (cpus() < 2) {
        fprintf(stderr, "SKIP pinned_stays_off_the_creators_cpu: one CPU, nothing to spread\n");
        skip();
    }
    struct seen s = run(SPREAD_PIN, "1");
    assert_int_equal(CPU_COUNT(&s.mask), cpus() - 1);
}

static void started_gets_every_cpu_back(void **state)
{
    (void)state;
    struct seen s = run(SPREAD_START, "1");
    assert_int_equal(CPU_COUNT(&s.mask), cpus());
}

static void places_only_while_a_cpu_is_idle(void **state)
{
    (void)state;
    assert_true(thread_spread_pays(&(struct cpu_load){.runnable = 1, .cpus = 2}));
    assert_false(thread_spread_pays(&(struct cpu_load){.runnable = 2, .cpus = 2}));
    assert_false(thread_spread_pays(&(struct cpu_load){.runnable = 9, .cpus = 2}));
    assert_false(thread_spread_pays(&(struct cpu_load){.runnable = 1, .cpus = 1}));
    assert_true(thread_spread_pays(&(struct cpu_load){.runnable = 3, .cpus = 4}));
}

static void off_makes_plain_threads(void **state)
{
    (void)state;
    struct seen s = run(SPREAD_PIN, "0");
    assert_int_equal(CPU_COUNT(&s.mask), cpus());
}

int main(void)
{
    unsetenv("THAW_SPREAD");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(pinned_stays_off_the_creators_cpu),
        cmocka_unit_test(started_gets_every_cpu_back),
        cmocka_unit_test(off_makes_plain_threads),
        cmocka_unit_test(places_only_while_a_cpu_is_idle),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
