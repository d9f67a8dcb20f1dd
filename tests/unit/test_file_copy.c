/* copy_file_sparse (src/host/util/file.c): same bytes, holes kept, no overwriting. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "host/util/file.h"

static void test_sparse_copy(void **state)
{
    (void)state;
    char dir[] = "/tmp/thaw-copy-XXXXXX", src[64], dst[64];
    assert_non_null(mkdtemp(dir));
    snprintf(src, sizeof src, "%s/src", dir);
    snprintf(dst, sizeof dst, "%s/dst", dir);
    int fd = open(src, O_RDWR | O_CREAT, 0600);
    assert_true(fd >= 0);
    const size_t size = 64u << 20;
    assert_int_equal(ftruncate(fd, (off_t)size), 0);
    uint8_t page[4096];
    for (size_t i = 0; i < sizeof page; i++)
        page[i] = (uint8_t)(i * 7 + 1);
    off_t at[] = {0, 4096 * 3, 1 << 20, (off_t)size - 4096};
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(pwrite(fd, page, sizeof page, at[i]), sizeof page);
    close(fd);

    struct thaw_error err = {{0}};
    assert_int_equal(copy_file_sparse(src, dst, &err), 0);
    struct stat st;
    assert_int_equal(stat(dst, &st), 0);
    assert_int_equal(st.st_size, size);
    assert_true(st.st_blocks * 512 < 1 << 20); /* 16 KiB of data, not 64 MiB */
    uint8_t *a, *b;
    size_t na, nb;
    assert_int_equal(read_file(src, size, &a, &na, &err), 0);
    assert_int_equal(read_file(dst, size, &b, &nb, &err), 0);
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
    free(a);
    free(b);

    assert_int_equal(copy_file_sparse(src, dst, &err), -1); /* never overwrites */
    assert_non_null(strstr(err.msg, "cannot create"));
    assert_int_equal(copy_file_sparse(dir, dst, &err), -1);
    char missing[80];
    snprintf(missing, sizeof missing, "%s/missing", dir);
    assert_int_equal(copy_file_sparse(missing, dst, &err), -1);
    assert_non_null(strstr(err.msg, "cannot open"));
    unlink(src);
    unlink(dst);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_sparse_copy)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
