/* The host's REAP costs (src/host/pager/reap_costs.c) and the huge-chunk policy built on
 * them (huge_chunks.c): the file read as hostile, the learning, and the choice. What a
 * real restore learns and chooses is checked through the CLI (check_snapshot.py). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

#include "host/pager/huge_chunks.h"
#include "host/pager/reap_costs.h"
#include "host/util/le.h"

#define BOOT "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"

static const struct reap_costs measured = {.touch_ns = 2000, .install_ns = 3000, .read_ns = 4000,
                                           .chunk_ns = 400000, .samples = 7};

static void recrc(uint8_t *b)
{
    put_le32(b + REAP_COSTS_FILE_BYTES - 4, (uint32_t)crc32_z(0, b, REAP_COSTS_FILE_BYTES - 4));
}

static void round_trips(void **state)
{
    (void)state;
    uint8_t b[REAP_COSTS_FILE_BYTES];
    reap_costs_encode(&measured, BOOT, b);
    struct reap_costs c;
    struct thaw_error err;
    assert_int_equal(reap_costs_decode(b, sizeof b, BOOT, &c, &err), 0);
    assert_memory_equal(&c, &measured, sizeof c);
    /* "No huge pages here" is the one cost past the range that is kept. */
    struct reap_costs none = measured;
    none.chunk_ns = UINT64_MAX;
    reap_costs_encode(&none, BOOT, b);
    assert_int_equal(reap_costs_decode(b, sizeof b, BOOT, &c, &err), 0);
    assert_true(c.chunk_ns == UINT64_MAX);
}

static void refuses_what_does_not_check(void **state)
{
    (void)state;
    uint8_t good[REAP_COSTS_FILE_BYTES], b[REAP_COSTS_FILE_BYTES];
    reap_costs_encode(&measured, BOOT, good);
    struct reap_costs c;
    struct thaw_error err;
    assert_int_equal(reap_costs_decode(good, sizeof good - 1, BOOT, &c, &err), -1);
    assert_non_null(strstr(err.msg, "bytes"));
    memcpy(b, good, sizeof b);
    b[0] = 'X';
    assert_int_equal(reap_costs_decode(b, sizeof b, BOOT, &c, &err), -1);
    assert_non_null(strstr(err.msg, "not a REAP costs file"));
    memcpy(b, good, sizeof b);
    put_le32(b + 8, 2);
    recrc(b);
    assert_int_equal(reap_costs_decode(b, sizeof b, BOOT, &c, &err), -1);
    assert_non_null(strstr(err.msg, "version"));
    memcpy(b, good, sizeof b);
    b[60] ^= 1; /* a cost, checksum left as it was */
    assert_int_equal(reap_costs_decode(b, sizeof b, BOOT, &c, &err), -1);
    assert_non_null(strstr(err.msg, "checksum"));
    assert_int_equal(reap_costs_decode(good, sizeof good, "another-boot", &c, &err), -1);
    assert_non_null(strstr(err.msg, "another boot"));
    memcpy(b, good, sizeof b);
    put_le64(b + 56, 1ull << 40); /* a touch of 18 minutes: no measurement */
    recrc(b);
    assert_int_equal(reap_costs_decode(b, sizeof b, BOOT, &c, &err), -1);
    assert_non_null(strstr(err.msg, "out of range"));
    assert_true(c.touch_ns == 0 && c.samples == 0); /* nothing half-read is left */
}

static void merges_a_quarter_of_the_way(void **state)
{
    (void)state;
    struct reap_costs c = {0};
    reap_costs_merge(&c, &measured);
    assert_true(c.touch_ns == 2000 && c.install_ns == 3000 && c.read_ns == 4000 && c.chunk_ns == 400000);
    assert_int_equal(c.samples, 1);
    /* An unmeasured field (0) keeps what was there. */
    reap_costs_merge(&c, &(struct reap_costs){.touch_ns = 6000});
    assert_true(c.touch_ns == 3000 && c.install_ns == 3000 && c.read_ns == 4000 && c.chunk_ns == 400000);
    assert_int_equal(c.samples, 2);
}

static void a_chunk_pays_when_its_pages_save_more_than_it_reads(void **state)
{
    (void)state;
    struct reap_costs c = measured; /* a page saves 5 us; a chunk costs 0.4 ms + 4 us a data page */
    assert_false(reap_costs_chunk_pays(&c, 400, 400)); /* 2.0 ms saved against 2.0 ms: not more */
    assert_true(reap_costs_chunk_pays(&c, 400, 399));
    assert_false(reap_costs_chunk_pays(&c, 399, 400));
    assert_false(reap_costs_chunk_pays(&c, 100, 512));
    c.touch_ns = 30000; /* session 13's machine: first touches dear */
    assert_true(reap_costs_chunk_pays(&c, 100, 512));
    c.chunk_ns = 4200000; /* a huge page's fault under free page reporting */
    assert_false(reap_costs_chunk_pays(&c, 100, 512));
    /* Nothing is taken on a guess. */
    struct reap_costs none = {0};
    assert_false(reap_costs_chunk_pays(&none, 512, 512));
    c = measured;
    c.chunk_ns = UINT64_MAX;
    assert_false(reap_costs_chunk_pays(&c, 512, 512));
    c = measured;
    c.touch_ns = 0;
    assert_false(reap_costs_chunk_pays(&c, 512, 512));
}

static char dir[64];
static char path[128];

static int make_dir(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/thaw-costs-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/costs", dir);
    setenv("THAW_REAP_COSTS", path, 1);
    return 0;
}

static int remove_dir(void **state)
{
    (void)state;
    unlink(path);
    rmdir(dir);
    unsetenv("THAW_REAP_COSTS");
    unsetenv("THAW_REAP_HUGE");
    return 0;
}

static void learns_into_the_host_file(void **state)
{
    (void)state;
    unlink(path);
    struct reap_costs c;
    assert_false(reap_costs_load(&c));
    reap_costs_learn(&(struct reap_costs){.touch_ns = 2000, .install_ns = 3000, .read_ns = 4000});
    assert_true(reap_costs_load(&c));
    assert_true(c.touch_ns == 2000 && c.install_ns == 3000 && c.read_ns == 4000);
    assert_int_equal(c.samples, 1);
    assert_true(c.chunk_ns > 0); /* timed with the first sample (or "none here") */
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    reap_costs_learn(&(struct reap_costs){.touch_ns = 6000});
    assert_true(reap_costs_load(&c));
    assert_true(c.touch_ns == 3000 && c.read_ns == 4000);
    assert_int_equal(c.samples, 2);
    /* A file others could have written steers nothing. */
    assert_int_equal(chmod(path, 0666), 0);
    assert_false(reap_costs_load(&c));
    assert_int_equal(chmod(path, 0600), 0);
    /* Garbage: ignored, and learning starts over from the sample. */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("not a costs file", f);
    fclose(f);
    assert_false(reap_costs_load(&c));
    reap_costs_learn(&(struct reap_costs){.touch_ns = 5000, .read_ns = 1000});
    assert_true(reap_costs_load(&c));
    assert_true(c.touch_ns == 5000 && c.read_ns == 1000 && c.install_ns == 0);
    assert_int_equal(c.samples, 1);
    /* Off: nothing read, nothing written. */
    setenv("THAW_REAP_COSTS", "off", 1);
    assert_false(reap_costs_load(&c));
    setenv("THAW_REAP_COSTS", path, 1);
}

static void the_policy_comes_from_the_environment(void **state)
{
    (void)state;
    unlink(path);
    reap_costs_learn(&(struct reap_costs){.touch_ns = 2500, .read_ns = 4000});
    struct huge_policy p;
    unsetenv("THAW_REAP_HUGE");
    huge_policy_from_env(&p);
    assert_int_equal(p.how, HUGE_AUTO);
    assert_true(p.costs.touch_ns == 2500 && p.costs.read_ns == 4000); /* the host's, loaded */
    setenv("THAW_REAP_HUGE", "auto", 1);
    huge_policy_from_env(&p);
    assert_int_equal(p.how, HUGE_AUTO);
    setenv("THAW_REAP_HUGE", "0.25", 1);
    huge_policy_from_env(&p);
    assert_int_equal(p.how, HUGE_SHARE);
    assert_true(p.min_share == 0.25);
    setenv("THAW_REAP_HUGE", "0", 1);
    huge_policy_from_env(&p);
    assert_int_equal(p.how, HUGE_OFF);
    setenv("THAW_REAP_HUGE", "2", 1); /* not a share */
    huge_policy_from_env(&p);
    assert_int_equal(p.how, HUGE_OFF);
    assert_string_equal(huge_choice_name(HUGE_AUTO), "auto");
    unsetenv("THAW_REAP_HUGE");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trips),
        cmocka_unit_test(refuses_what_does_not_check),
        cmocka_unit_test(merges_a_quarter_of_the_way),
        cmocka_unit_test(a_chunk_pays_when_its_pages_save_more_than_it_reads),
        cmocka_unit_test_setup_teardown(learns_into_the_host_file, make_dir, remove_dir),
        cmocka_unit_test_setup_teardown(the_policy_comes_from_the_environment, make_dir, remove_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
