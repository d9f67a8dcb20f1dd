/* The chunked reader (src/host/util/chunk_read.c): extents handed back in order with
 * their bytes, buffers shared by extents `depth` apart never overwritten before they
 * are handed back, short and failed reads, no io_uring at all (depth 0). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "host/util/chunk_read.h"

#define FILE_BYTES (3u << 20)
#define CHUNK 65536u
#define NCHUNK (FILE_BYTES / CHUNK)

static char path[64];
static int fd = -1;

static uint8_t byte_at(uint64_t off) { return (uint8_t)(off * 2654435761u >> 13); }

static int setup(void **state)
{
    (void)state;
    snprintf(path, sizeof path, "/tmp/thaw-chunk-read-XXXXXX");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    uint8_t *b = malloc(FILE_BYTES);
    for (uint64_t i = 0; i < FILE_BYTES; i++)
        b[i] = byte_at(i);
    assert_int_equal(write(fd, b, FILE_BYTES), FILE_BYTES);
    free(b);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    close(fd);
    unlink(path);
    return 0;
}

static void check_bytes(const uint8_t *p, uint64_t off, uint64_t len)
{
    for (uint64_t i = 0; i < len; i++)
        if (p[i] != byte_at(off + i))
            fail_msg("byte %llu of the extent at %llu differs", (unsigned long long)i, (unsigned long long)off);
}

/* Extents in a shuffled file order, `depth` buffers shared round robin: each is whole
 * when handed back, in list order. */
static void in_order(unsigned depth)
{
    struct chunk_extent ext[NCHUNK];
    uint8_t *bufs = malloc((size_t)(depth ? depth : 1) * CHUNK);
    for (unsigned i = 0; i < NCHUNK; i++) {
        unsigned c = (i * 7) % NCHUNK; /* 7 is prime to 48: every chunk once */
        uint64_t len = CHUNK - (i % 3) * 4096; /* some shorter than the buffer */
        ext[i] = (struct chunk_extent){.fd = fd, .off = (uint64_t)c * CHUNK, .len = len,
                                       .dst = bufs + (size_t)(depth ? i % depth : 0) * CHUNK};
    }
    struct chunk_reader cr;
    struct thaw_error err;
    assert_int_equal(chunk_reader_start(&cr, ext, NCHUNK, depth, &err), 0);
    uint64_t i, want = 0;
    int got;
    while ((got = chunk_reader_next(&cr, &i, &err)) != 0) {
        assert_int_equal(got, 1);
        assert_int_equal(i, want++);
        check_bytes(ext[i].dst, ext[i].off, ext[i].len);
    }
    assert_int_equal(want, NCHUNK);
    assert_false(chunk_reader_ready(&cr));
    chunk_reader_stop(&cr);
    free(bufs);
}

static void order_and_contents(void **state)
{
    (void)state;
    in_order(4);
    in_order(1);
    in_order(32);
    in_order(0); /* no ring: read on demand */
}

/* An extent past the end of the file is a failed read naming it; the next ones still come. */
static void failures(void **state)
{
    (void)state;
    uint8_t *bufs = malloc(3 * CHUNK);
    struct chunk_extent ext[3] = {
        {.fd = fd, .off = 0, .len = CHUNK, .dst = bufs},
        {.fd = fd, .off = FILE_BYTES - 4096, .len = CHUNK, .dst = bufs + CHUNK}, /* short: at the end */
        {.fd = fd, .off = CHUNK, .len = CHUNK, .dst = bufs + 2 * CHUNK},
    };
    struct chunk_reader cr;
    struct thaw_error err;
    uint64_t i;
    assert_int_equal(chunk_reader_start(&cr, ext, 3, 2, &err), 0);
    assert_int_equal(chunk_reader_next(&cr, &i, &err), 1);
    assert_int_equal(i, 0);
    assert_int_equal(chunk_reader_next(&cr, &i, &err), -1);
    assert_int_equal(i, 1);
    assert_non_null(strstr(err.msg, "reading 65536 bytes at 3141632"));
    assert_int_equal(chunk_reader_next(&cr, &i, &err), 1);
    assert_int_equal(i, 2);
    check_bytes(ext[2].dst, CHUNK, CHUNK);
    assert_int_equal(chunk_reader_next(&cr, &i, &err), 0);
    chunk_reader_stop(&cr);
    /* A descriptor that cannot be read. */
    struct chunk_extent bad = {.fd = -1, .off = 0, .len = 4096, .dst = bufs};
    assert_int_equal(chunk_reader_start(&cr, &bad, 1, 1, &err), 0);
    assert_int_equal(chunk_reader_next(&cr, &i, &err), -1);
    assert_non_null(strstr(err.msg, "reading 4096 bytes at 0"));
    chunk_reader_stop(&cr);
    /* Too large for one read's result. */
    struct chunk_extent huge = {.fd = fd, .off = 0, .len = 1ull << 31, .dst = bufs};
    assert_int_equal(chunk_reader_start(&cr, &huge, 1, 1, &err), -1);
    assert_non_null(strstr(err.msg, "too large"));
    /* Nothing to read. */
    assert_int_equal(chunk_reader_start(&cr, ext, 0, 4, &err), 0);
    assert_int_equal(chunk_reader_next(&cr, &i, &err), 0);
    chunk_reader_stop(&cr);
    free(bufs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(order_and_contents),
        cmocka_unit_test(failures),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
