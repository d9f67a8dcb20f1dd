/* cpio newc reader (src/common/cpio.c) and writer (src/host/vmm/cpio_writer.c). */
#include <errno.h>
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

#include "common/cpio.h"
#include "host/function/cpio_writer.h"

/* Exact-size heap copy, so ASan flags any read past the end. */
static uint8_t *dup_buf(const void *p, size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    assert_non_null(b);
    if (n)
        memcpy(b, p, n);
    return b;
}

static int name_is(const struct cpio_entry *e, const char *s)
{
    return e->name_len == strlen(s) && memcmp(e->name, s, e->name_len) == 0;
}

/* Formats one raw newc header + name (+ NUL) + padding + data + padding into out. */
static size_t raw_entry(uint8_t *out, const char *magic, uint32_t mode, uint32_t filesize,
                        uint32_t namesize, const char *name, size_t name_bytes,
                        const void *data, size_t data_bytes)
{
    char hdr[CPIO_NEWC_HDR_SIZE + 1];
    snprintf(hdr, sizeof(hdr), "%s%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X",
             magic, 1u, mode, 0u, 0u, 1u, 0x5eadbeefu, filesize, 0u, 0u, 0u, 0u, namesize, 0u);
    size_t n = CPIO_NEWC_HDR_SIZE;
    memcpy(out, hdr, n);
    memcpy(out + n, name, name_bytes);
    n += name_bytes;
    while (n & 3)
        out[n++] = 0;
    if (data_bytes)
        memcpy(out + n, data, data_bytes);
    n += data_bytes;
    while (n & 3)
        out[n++] = 0;
    return n;
}

static size_t raw_file(uint8_t *out, const char *name, const char *data)
{
    return raw_entry(out, "070701", 0100644, (uint32_t)strlen(data), (uint32_t)strlen(name) + 1,
                     name, strlen(name) + 1, data, strlen(data));
}

static size_t raw_trailer(uint8_t *out)
{
    return raw_entry(out, "070701", 0, 0, 11, "TRAILER!!!", 11, NULL, 0);
}

/* Expects exactly one -1 from cpio_next on buf[0..n) (an exact-size heap copy) and
 * that *offset is left unchanged. */
static void expect_malformed(const uint8_t *buf, size_t n)
{
    uint8_t *b = dup_buf(buf, n);
    size_t off = 0;
    struct cpio_entry e;
    assert_int_equal(cpio_next(b, n, &off, &e), -1);
    assert_int_equal(off, 0);
    free(b);
}

/* ---- reader on hand-made bytes ----------------------------------------------------- */

static void test_reader_known_bytes(void **state)
{
    (void)state;
    uint8_t buf[1024];
    size_t n = raw_entry(buf, "070701", 040755, 0, 6, "./app", 6, NULL, 0);
    n += raw_file(buf + n, "./app/hello.txt", "hello, world\n");
    n += raw_entry(buf + n, "070702", 0120777, 9, 5, "/lnk", 5, "hello.txt", 9);
    n += raw_trailer(buf + n);
    uint8_t *b = dup_buf(buf, n);

    size_t off = 0;
    struct cpio_entry e;
    assert_int_equal(cpio_next(b, n, &off, &e), 1);
    assert_true(name_is(&e, "app"));
    assert_int_equal(e.mode, 040755);
    assert_int_equal(e.mtime, 0x5eadbeefu);
    assert_int_equal(e.size, 0);

    assert_int_equal(cpio_next(b, n, &off, &e), 1);
    assert_true(name_is(&e, "app/hello.txt"));
    assert_int_equal(e.mode, 0100644);
    assert_int_equal(e.size, 13);
    assert_memory_equal(e.data, "hello, world\n", 13);

    assert_int_equal(cpio_next(b, n, &off, &e), 1);
    assert_true(name_is(&e, "lnk"));
    assert_int_equal(e.mode & CPIO_S_IFMT, CPIO_S_IFLNK);
    assert_memory_equal(e.data, "hello.txt", 9);

    assert_int_equal(cpio_next(b, n, &off, &e), 0);
    assert_int_equal(off, n);
    /* Stays at the end. */
    assert_int_equal(cpio_next(b, n, &off, &e), 0);
    free(b);
}

static void test_reader_lowercase_hex_and_dot(void **state)
{
    (void)state;
    uint8_t buf[512];
    size_t n = raw_entry(buf, "070701", 040755, 0, 2, ".", 2, NULL, 0);
    /* Lower-case hex digits are valid too. */
    for (size_t i = 6; i < CPIO_NEWC_HDR_SIZE; i++)
        if (buf[i] >= 'A' && buf[i] <= 'F')
            buf[i] = (uint8_t)(buf[i] - 'A' + 'a');
    n += raw_file(buf + n, ".//x", "1");
    n += raw_trailer(buf + n);
    uint8_t *b = dup_buf(buf, n);
    size_t off = 0;
    struct cpio_entry e;
    assert_int_equal(cpio_next(b, n, &off, &e), 1);
    assert_true(name_is(&e, ".")); /* only "./" and "/" prefixes are stripped */
    assert_int_equal(e.mtime, 0x5eadbeefu);
    assert_int_equal(cpio_next(b, n, &off, &e), 1);
    assert_true(name_is(&e, "x"));
    assert_int_equal(cpio_next(b, n, &off, &e), 0);
    free(b);
}

static void test_reader_empty_and_no_trailer(void **state)
{
    (void)state;
    size_t off = 0;
    struct cpio_entry e;
    assert_int_equal(cpio_next(NULL, 0, &off, &e), 0);

    /* An archive that just stops after an entry (no trailer) ends cleanly, even when
     * the final data padding is cut off. */
    uint8_t buf[256];
    size_t n = raw_file(buf, "f", "abcde");
    n -= 3; /* drop the 3 padding bytes after 5 data bytes */
    uint8_t *b = dup_buf(buf, n);
    off = 0;
    assert_int_equal(cpio_next(b, n, &off, &e), 1);
    assert_int_equal(e.size, 5);
    assert_int_equal(off, n);
    assert_int_equal(cpio_next(b, n, &off, &e), 0);
    free(b);
}

static void test_reader_trailer_then_zeros(void **state)
{
    (void)state;
    uint8_t buf[1024] = {0};
    size_t n = raw_file(buf, "a", "A");
    n += raw_trailer(buf + n);
    size_t total = n + 300; /* zero padding, deliberately not a multiple of 4 */
    uint8_t *b = dup_buf(buf, total);
    size_t off = 0;
    struct cpio_entry e;
    assert_int_equal(cpio_next(b, total, &off, &e), 1);
    assert_int_equal(cpio_next(b, total, &off, &e), 0);
    assert_int_equal(off, total);
    free(b);
}

static void test_reader_concatenated_raw(void **state)
{
    (void)state;
    uint8_t buf[2048] = {0};
    size_t n = raw_file(buf, "one", "1");
    n += raw_trailer(buf + n);
    /* Second archive directly after the first trailer, no padding. */
    n += raw_file(buf + n, "two", "22");
    n += raw_trailer(buf + n);
    n += 64; /* zeros */
    /* Third after zero padding. */
    n += raw_file(buf + n, "three", "333");
    n += raw_trailer(buf + n);
    uint8_t *b = dup_buf(buf, n);
    const char *want[] = {"one", "two", "three"};
    size_t off = 0;
    struct cpio_entry e;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cpio_next(b, n, &off, &e), 1);
        assert_true(name_is(&e, want[i]));
        assert_int_equal(e.size, (uint64_t)i + 1);
    }
    assert_int_equal(cpio_next(b, n, &off, &e), 0);
    free(b);
}

static void test_reader_concatenated_misaligned(void **state)
{
    (void)state;
    uint8_t buf[1024] = {0};
    size_t n = raw_file(buf, "one", "1");
    n += raw_trailer(buf + n);
    n += 2; /* next archive would start at a non-multiple of 4 */
    n += raw_file(buf + n, "two", "2");
    uint8_t *b = dup_buf(buf, n);
    size_t off = 0;
    struct cpio_entry e;
    assert_int_equal(cpio_next(b, n, &off, &e), 1);
    size_t before = off;
    assert_int_equal(cpio_next(b, n, &off, &e), -1);
    assert_int_equal(off, before);
    free(b);
}

static void test_reader_trailer_then_junk(void **state)
{
    (void)state;
    uint8_t buf[512] = {0};
    size_t n = raw_trailer(buf);
    memcpy(buf + n, "junkjunk", 8);
    expect_malformed(buf, n + 8);
}

/* ---- reader: malformed input ----------------------------------------------------------- */

static void test_malformed_truncated_header(void **state)
{
    (void)state;
    uint8_t buf[256];
    raw_file(buf, "file", "data");
    for (size_t len = 1; len < CPIO_NEWC_HDR_SIZE; len++)
        expect_malformed(buf, len);
}

static void test_malformed_bad_magic(void **state)
{
    (void)state;
    const char *bad[] = {"070700", "070703", "070707", "170701", "07070 ", "\0\0\0\0\0\0"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint8_t buf[256];
        size_t n = raw_file(buf, "f", "x");
        memcpy(buf, bad[i], 6);
        expect_malformed(buf, n);
    }
}

static void test_malformed_bad_hex(void **state)
{
    (void)state;
    /* One bad digit in each of the 13 fields, at varying positions. */
    const char bad[] = {'g', 'G', ' ', 'x', '-', '\0', '@', '/', ':', '`', 0x7f, (char)0xff, 'z'};
    for (int field = 0; field < 13; field++) {
        uint8_t buf[256];
        size_t n = raw_file(buf, "f", "x");
        buf[6 + 8 * field + (field % 8)] = (uint8_t)bad[field];
        expect_malformed(buf, n);
    }
}

static void test_malformed_name(void **state)
{
    (void)state;
    uint8_t buf[512];
    size_t n;

    /* namesize runs past the end. */
    n = raw_entry(buf, "070701", 0100644, 0, 0x1000, "abc", 4, NULL, 0);
    expect_malformed(buf, n);
    n = raw_entry(buf, "070701", 0100644, 0, 0xffffffffu, "abc", 4, NULL, 0);
    expect_malformed(buf, n);
    /* The name ends exactly at the end of the buffer, but one byte short. */
    n = raw_entry(buf, "070701", 0100644, 0, 4, "abc", 4, NULL, 0);
    expect_malformed(buf, CPIO_NEWC_HDR_SIZE + 3);
    /* namesize 0: there is not even a NUL. */
    n = raw_entry(buf, "070701", 0100644, 0, 0, "", 0, NULL, 0);
    expect_malformed(buf, n);
    /* Name without its NUL. */
    n = raw_entry(buf, "070701", 0100644, 0, 3, "abc", 3, NULL, 0);
    expect_malformed(buf, n);
    /* Embedded NUL. */
    n = raw_entry(buf, "070701", 0100644, 0, 4, "a\0c", 4, NULL, 0);
    expect_malformed(buf, n);
}

static void test_malformed_data(void **state)
{
    (void)state;
    uint8_t buf[512];
    /* Data one byte longer than what is there. */
    size_t n = raw_entry(buf, "070701", 0100644, 9, 2, "f", 2, "12345678", 8);
    expect_malformed(buf, n);
    /* Huge size field: must not wrap around. */
    n = raw_entry(buf, "070701", 0100644, 0xffffffffu, 2, "f", 2, "1234", 4);
    expect_malformed(buf, n);
    n = raw_entry(buf, "070701", 0100644, 0x80000000u, 2, "f", 2, "1234", 4);
    expect_malformed(buf, n);
    /* Name padding cut off and a non-empty file: its data is past the end. */
    n = raw_entry(buf, "070701", 0100644, 1, 2, "f", 2, NULL, 0);
    expect_malformed(buf, CPIO_NEWC_HDR_SIZE + 2);
}

static void test_malformed_offsets(void **state)
{
    (void)state;
    uint8_t buf[256];
    size_t n = raw_file(buf, "f", "x");
    uint8_t *b = dup_buf(buf, n);
    struct cpio_entry e;
    size_t offs[] = {n + 1, SIZE_MAX, SIZE_MAX - 50, 1, n - 1};
    for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
        size_t off = offs[i];
        assert_int_equal(cpio_next(b, n, &off, &e), -1);
        assert_int_equal(off, offs[i]);
    }
    free(b);
}

/* ---- writer -> reader round trip ------------------------------------------------------- */

#define NFILES 300

static void fill(uint8_t *p, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(seed * 31u + i * 7u + (i >> 8));
}

static void test_roundtrip_many(void **state)
{
    (void)state;
    struct cpio_writer w;
    cpio_writer_init(&w);

    static char paths[NFILES][64];
    static size_t sizes[NFILES];
    static uint8_t data[5000];
    for (unsigned i = 0; i < NFILES; i++) {
        /* Spread over nested directories; every 7th file is empty. */
        snprintf(paths[i], sizeof(paths[i]), "/d%u/sub%u/deep%u/file%u.bin", i % 5, i % 3,
                 i % 2, i);
        sizes[i] = i % 7 == 0 ? 0 : (i * 37u) % sizeof(data);
        fill(data, sizes[i], i);
        assert_int_equal(cpio_writer_add_file(&w, paths[i], data, sizes[i], 0644 + (i % 2)), 0);
    }
    assert_int_equal(cpio_writer_add_file(&w, "/top", "t", 1, 0755), 0);
    assert_int_equal(cpio_writer_add_dir(&w, "/empty/dir"), 0);
    assert_int_equal(cpio_writer_add_dir(&w, "/empty/dir"), 0); /* idempotent */
    assert_int_equal(cpio_writer_add_dir(&w, "/"), 0);
    assert_int_equal(cpio_writer_finish(&w), 0);
    assert_int_equal(w.len % 512, 0);

    uint8_t *b = dup_buf(w.buf, w.len);
    size_t n = w.len;
    size_t off = 0;
    struct cpio_entry e;
    unsigned files = 0, dirs = 0;
    char seen_dirs[64][64];
    int rc;
    while ((rc = cpio_next(b, n, &off, &e)) == 1) {
        char name[128];
        assert_true(e.name_len < sizeof(name));
        memcpy(name, e.name, e.name_len);
        name[e.name_len] = '\0';
        assert_true(name[0] != '/');
        /* Every parent must have appeared as a directory before its child. */
        for (char *s = strchr(name, '/'); s; s = strchr(s + 1, '/')) {
            int found = 0;
            for (unsigned d = 0; d < dirs; d++)
                if (strlen(seen_dirs[d]) == (size_t)(s - name) &&
                    memcmp(seen_dirs[d], name, (size_t)(s - name)) == 0)
                    found = 1;
            assert_true(found);
        }
        if ((e.mode & CPIO_S_IFMT) == CPIO_S_IFDIR) {
            for (unsigned d = 0; d < dirs; d++)
                assert_string_not_equal(seen_dirs[d], name); /* each directory once */
            assert_true(dirs < 64);
            strcpy(seen_dirs[dirs++], name);
            assert_int_equal(e.size, 0);
            continue;
        }
        assert_int_equal(e.mode & CPIO_S_IFMT, CPIO_S_IFREG);
        if (strcmp(name, "top") == 0) {
            assert_int_equal(e.mode, CPIO_S_IFREG | 0755);
            assert_memory_equal(e.data, "t", 1);
            continue;
        }
        unsigned i;
        assert_int_equal(sscanf(strrchr(name, '/'), "/file%u.bin", &i), 1);
        assert_true(i < NFILES);
        assert_string_equal(name, paths[i] + 1);
        assert_int_equal(e.mode, CPIO_S_IFREG | (0644 + (i % 2)));
        assert_int_equal(e.size, sizes[i]);
        fill(data, sizes[i], i);
        if (sizes[i])
            assert_memory_equal(e.data, data, sizes[i]);
        files++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(files, NFILES);
    /* d0..d4, each with sub0..sub2, each with deep0..deep1, plus empty, empty/dir. */
    assert_int_equal(dirs, 5 + 5 * 3 + 5 * 3 * 2 + 2);
    free(b);
    cpio_writer_free(&w);
}

static void test_roundtrip_concatenated(void **state)
{
    (void)state;
    struct cpio_writer a, b;
    cpio_writer_init(&a);
    cpio_writer_init(&b);
    assert_int_equal(cpio_writer_add_file(&a, "/bin/fn", "ELF", 3, 0755), 0);
    assert_int_equal(cpio_writer_add_file(&a, "/empty", NULL, 0, 0644), 0);
    assert_int_equal(cpio_writer_finish(&a), 0);
    assert_int_equal(cpio_writer_add_file(&b, "/etc/conf", "k=v\n", 4, 0600), 0);
    assert_int_equal(cpio_writer_finish(&b), 0);

    size_t n = a.len + b.len;
    uint8_t *buf = malloc(n);
    assert_non_null(buf);
    memcpy(buf, a.buf, a.len);
    memcpy(buf + a.len, b.buf, b.len);

    const char *want[] = {"bin", "bin/fn", "empty", "etc", "etc/conf"};
    size_t off = 0;
    struct cpio_entry e;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(cpio_next(buf, n, &off, &e), 1);
        assert_true(name_is(&e, want[i]));
    }
    assert_int_equal(e.size, 4);
    assert_memory_equal(e.data, "k=v\n", 4);
    assert_int_equal(cpio_next(buf, n, &off, &e), 0);
    assert_int_equal(off, n);
    free(buf);
    cpio_writer_free(&a);
    cpio_writer_free(&b);
}

static void test_writer_rejects_paths(void **state)
{
    (void)state;
    struct cpio_writer w;
    cpio_writer_init(&w);
    assert_int_equal(cpio_writer_add_file(&w, "/ok", "x", 1, 0644), 0);
    size_t len0 = w.len;

    static char longp[4097];
    memset(longp, 'a', sizeof(longp) - 1);
    longp[0] = '/';
    longp[4096] = '\0'; /* 4096 bytes: too long */

    const char *bad[] = {
        "", "rel", "rel/x", "/", "/..", "/a/..", "/../a", "/a/../b", "/.", "/./a", "/a/./b",
        "/a/.", "//a", "/a//b", "/a/", "/TRAILER!!!", longp,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        errno = 0;
        assert_int_equal(cpio_writer_add_file(&w, bad[i], "x", 1, 0644), -1);
        assert_int_equal(errno, EINVAL);
        if (strcmp(bad[i], "/") != 0) {
            errno = 0;
            assert_int_equal(cpio_writer_add_dir(&w, bad[i]), -1);
            assert_int_equal(errno, EINVAL);
        }
        assert_int_equal(w.len, len0); /* nothing emitted */
    }
    errno = 0;
    assert_int_equal(cpio_writer_add_file(&w, NULL, "x", 1, 0644), -1);
    assert_int_equal(errno, EINVAL);

    /* 4095 bytes is the limit and fine; so are names merely containing dots. */
    longp[4095] = '\0';
    assert_int_equal(cpio_writer_add_file(&w, longp, "x", 1, 0644), 0);
    assert_int_equal(cpio_writer_add_file(&w, "/a..b/.hidden/...", "x", 1, 0644), 0);

    /* Bad modes. */
    errno = 0;
    assert_int_equal(cpio_writer_add_file(&w, "/m1", "x", 1, CPIO_S_IFDIR | 0755), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(cpio_writer_add_file(&w, "/m2", "x", 1, CPIO_S_IFREG | 0640), 0);
    cpio_writer_free(&w);
}

static void test_writer_conflicts(void **state)
{
    (void)state;
    struct cpio_writer w;
    cpio_writer_init(&w);
    assert_int_equal(cpio_writer_add_file(&w, "/a/b", "x", 1, 0644), 0);
    size_t len0 = w.len;
    errno = 0;
    assert_int_equal(cpio_writer_add_file(&w, "/a/b", "y", 1, 0644), -1);
    assert_int_equal(errno, EEXIST);
    errno = 0;
    assert_int_equal(cpio_writer_add_file(&w, "/a", "y", 1, 0644), -1);
    assert_int_equal(errno, EEXIST);
    errno = 0;
    assert_int_equal(cpio_writer_add_dir(&w, "/a/b"), -1);
    assert_int_equal(errno, EEXIST);
    errno = 0;
    assert_int_equal(cpio_writer_add_file(&w, "/a/b/c/d", "y", 1, 0644), -1);
    assert_int_equal(errno, ENOTDIR);
    errno = 0;
    assert_int_equal(cpio_writer_add_dir(&w, "/a/b/c"), -1);
    assert_int_equal(errno, ENOTDIR);
    assert_int_equal(w.len, len0);

    assert_int_equal(cpio_writer_finish(&w), 0);
    errno = 0;
    assert_int_equal(cpio_writer_add_file(&w, "/late", "y", 1, 0644), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(cpio_writer_finish(&w), -1);
    cpio_writer_free(&w);

    /* The writer is reusable after free + init. */
    cpio_writer_init(&w);
    assert_int_equal(cpio_writer_add_file(&w, "/a/b", "x", 1, 0644), 0);
    cpio_writer_free(&w);
}

static void test_writer_host_file(void **state)
{
    (void)state;
    char tmpl[] = "/tmp/thaw-test-cpio-XXXXXX";
    int fd = mkstemp(tmpl);
    assert_true(fd >= 0);
    static uint8_t content[70000];
    fill(content, sizeof(content), 99);
    assert_int_equal(write(fd, content, sizeof(content)), (ssize_t)sizeof(content));
    assert_int_equal(fchmod(fd, 0751), 0);
    close(fd);

    struct cpio_writer w;
    cpio_writer_init(&w);
    assert_int_equal(cpio_writer_add_host_file(&w, "/srv/blob", tmpl), 0);
    errno = 0;
    assert_int_equal(cpio_writer_add_host_file(&w, "/srv/missing", "/nonexistent/thaw/x"), -1);
    assert_int_equal(errno, ENOENT);
    errno = 0;
    assert_int_equal(cpio_writer_add_host_file(&w, "/srv/dir", "/tmp"), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(cpio_writer_add_host_file(&w, "/srv/../x", tmpl), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(cpio_writer_finish(&w), 0);
    unlink(tmpl);

    size_t off = 0;
    struct cpio_entry e;
    assert_int_equal(cpio_next(w.buf, w.len, &off, &e), 1);
    assert_true(name_is(&e, "srv"));
    assert_int_equal(e.mode, CPIO_S_IFDIR | 0755);
    assert_int_equal(cpio_next(w.buf, w.len, &off, &e), 1);
    assert_true(name_is(&e, "srv/blob"));
    assert_int_equal(e.mode, CPIO_S_IFREG | 0751);
    assert_int_equal(e.size, sizeof(content));
    assert_memory_equal(e.data, content, sizeof(content));
    assert_int_equal(cpio_next(w.buf, w.len, &off, &e), 0);
    cpio_writer_free(&w);
}

/* Every entry header in a writer archive starts 4-byte aligned and uses upper-case
 * hex like GNU cpio, so `cpio -i` and the kernel accept it. */
static void test_writer_layout(void **state)
{
    (void)state;
    struct cpio_writer w;
    cpio_writer_init(&w);
    assert_int_equal(cpio_writer_add_file(&w, "/x", "abcde", 5, 0644), 0);
    assert_int_equal(cpio_writer_finish(&w), 0);
    /* Header + "x\0" = 112 (aligned), data 5 + 3 pad = 120, then the trailer. */
    assert_memory_equal(w.buf, "070701", 6);
    assert_memory_equal(w.buf + 6 + 8 * 1, "000081A4", 8);  /* mode */
    assert_memory_equal(w.buf + 6 + 8 * 6, "00000005", 8);  /* filesize */
    assert_memory_equal(w.buf + 6 + 8 * 11, "00000002", 8); /* namesize */
    assert_memory_equal(w.buf + 110, "x\0abcde\0\0\0", 10);
    assert_memory_equal(w.buf + 120, "070701", 6);
    assert_memory_equal(w.buf + 120 + 110, "TRAILER!!!\0", 11);
    assert_int_equal(w.len, 512);
    for (size_t i = 120 + 124; i < w.len; i++)
        assert_int_equal(w.buf[i], 0);
    cpio_writer_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reader_known_bytes),
        cmocka_unit_test(test_reader_lowercase_hex_and_dot),
        cmocka_unit_test(test_reader_empty_and_no_trailer),
        cmocka_unit_test(test_reader_trailer_then_zeros),
        cmocka_unit_test(test_reader_concatenated_raw),
        cmocka_unit_test(test_reader_concatenated_misaligned),
        cmocka_unit_test(test_reader_trailer_then_junk),
        cmocka_unit_test(test_malformed_truncated_header),
        cmocka_unit_test(test_malformed_bad_magic),
        cmocka_unit_test(test_malformed_bad_hex),
        cmocka_unit_test(test_malformed_name),
        cmocka_unit_test(test_malformed_data),
        cmocka_unit_test(test_malformed_offsets),
        cmocka_unit_test(test_roundtrip_many),
        cmocka_unit_test(test_roundtrip_concatenated),
        cmocka_unit_test(test_writer_rejects_paths),
        cmocka_unit_test(test_writer_conflicts),
        cmocka_unit_test(test_writer_host_file),
        cmocka_unit_test(test_writer_layout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
