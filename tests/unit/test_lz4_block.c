/* lz4_block (util/lz4_block.c): a compressible block round-trips, an incompressible one is
 * left raw (pack returns 0), and damaged, truncated or mis-sized blocks are refused with
 * one line, never written past the stated size. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "host/util/lz4_block.h"

#define LEN (64u * 4096u)

static uint8_t src[LEN], packed[LEN + LEN / 64 + 64], out[LEN + 64];

static size_t pack_text(void)
{
    for (size_t i = 0; i < LEN; i++)
        src[i] = (uint8_t)("some guest page text "[i % 21] + (i / 4096));
    size_t n = lz4_block_pack(src, LEN, packed, sizeof packed);
    assert_true(n > 0 && n < LEN / 4);
    return n;
}

static void test_round_trip(void **state)
{
    (void)state;
    size_t n = pack_text();
    struct thaw_error err = {{0}};
    memset(out, 0xee, sizeof out);
    assert_int_equal(lz4_block_unpack(packed, n, out, LEN, &err), 0);
    assert_memory_equal(out, src, LEN);
    assert_int_equal(out[LEN], 0xee); /* nothing past the stated size */
}

static void test_random_bytes_stay_raw(void **state)
{
    (void)state;
    uint64_t x = 88172645463325252ull;
    for (size_t i = 0; i < LEN; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        src[i] = (uint8_t)x;
    }
    assert_int_equal(lz4_block_pack(src, LEN, packed, sizeof packed), 0);
    assert_int_equal(lz4_block_pack(src, 0, packed, sizeof packed), 0);
    assert_int_equal(lz4_block_pack(src, LEN, packed, 100), 0); /* no room: raw */
    assert_int_equal(lz4_block_bound(0), 0);
}

static void test_wrong_size_refused(void **state)
{
    (void)state;
    size_t n = pack_text();
    struct thaw_error err = {{0}};
    /* It claims fewer bytes than it holds: refused, nothing written past the claim. */
    memset(out, 0xee, sizeof out);
    assert_int_equal(lz4_block_unpack(packed, n, out, LEN - 4096, &err), -1);
    assert_non_null(strstr(err.msg, "lz4 block"));
    assert_null(strchr(err.msg, '\n'));
    for (size_t i = LEN - 4096; i < sizeof out; i++)
        assert_int_equal(out[i], 0xee);
    /* More than it holds. */
    assert_int_equal(lz4_block_unpack(packed, n, out, LEN + 64, &err), -1);
    assert_non_null(strstr(err.msg, "not the"));
    assert_int_equal(lz4_block_unpack(packed, 0, out, LEN, &err), -1);
    assert_int_equal(lz4_block_unpack(packed, n, out, 0, &err), -1);
}

static void test_damaged_or_truncated_refused(void **state)
{
    (void)state;
    size_t n = pack_text();
    struct thaw_error err = {{0}};
    assert_int_equal(lz4_block_unpack(packed, n / 2, out, LEN, &err), -1);
    assert_non_null(strstr(err.msg, "lz4 block"));
    /* Every single-byte change either fails or still decodes to exactly LEN bytes (an lz4
     * block has no checksum: the callers' page checksums catch the rest). */
    for (size_t i = 0; i < n; i += 7) {
        uint8_t b = packed[i];
        packed[i] ^= 0x5a;
        memset(out, 0, sizeof out);
        int rc = lz4_block_unpack(packed, n, out, LEN, &err);
        assert_true(rc == 0 || rc == -1);
        if (rc < 0)
            assert_true(err.msg[0] && !strchr(err.msg, '\n'));
        for (size_t k = LEN; k < sizeof out; k++)
            assert_int_equal(out[k], 0);
        packed[i] = b;
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_random_bytes_stay_raw),
        cmocka_unit_test(test_wrong_size_refused),
        cmocka_unit_test(test_damaged_or_truncated_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
