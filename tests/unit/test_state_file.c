/* Snapshot state file codec (src/host/snapshot/state_file.c) and write_file_atomic
 * (src/host/util/atomic_file.c). */
#include <dirent.h>
#include <errno.h>
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
#include <zlib.h>

#include <cmocka.h>

#include "host/snapshot/state_file.h"
#include "host/snapshot/snapshot.h"
#include "host/util/atomic_file.h"
#include "host/util/file.h"
#include "host/util/snap_identity.h"

/* ---- helpers ---------------------------------------------------------------------------- */

/* Exact-size heap copy, so ASan flags any read past the end. */
static uint8_t *dup_buf(const void *p, size_t n)
{
    uint8_t *b = malloc(n ? n : 1);
    assert_non_null(b);
    if (n)
        memcpy(b, p, n);
    return b;
}

static void fill(void *p, size_t n, uint32_t seed)
{
    uint8_t *b = p;
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b[i] = (uint8_t)x;
    }
}

static void make_state(struct snapshot_state *s, uint32_t msr_count, bool optional)
{
    memset(s, 0, sizeof *s);
    fill(&s->regs, sizeof s->regs, 1);
    fill(&s->sregs, sizeof s->sregs, 2);
    fill(&s->fpu, sizeof s->fpu, 3);
    if (optional) {
        s->has_xsave = true;
        fill(&s->xsave, sizeof s->xsave, 4);
        s->has_xcrs = true;
        fill(&s->xcrs, sizeof s->xcrs, 5);
        s->xcrs.nr_xcrs = 1;
        s->has_debugregs = true;
        fill(&s->debugregs, sizeof s->debugregs, 9);
    }
    s->msr_count = msr_count;
    for (uint32_t i = 0; i < msr_count; i++) {
        s->msrs[i].index = 0xc0000080u + i;
        s->msrs[i].data = 0x0123456789abcdefull ^ ((uint64_t)i << 40);
    }
    fill(&s->events, sizeof s->events, 7);
    s->mp_state.mp_state = KVM_MP_STATE_RUNNABLE;
    s->tsc_khz = 2995200;
    s->tsc = 0x1122334455667788ull;
    struct snapshot_monitor_state *m = &s->monitor;
    m->mem_size = 256ull << 20;
    m->max_request = 1u << 20;
    m->pending_invoke_gpa = 0x812340;
    m->generation = 3;
    m->kernel.magic = THAW_KERNEL_MAGIC;
    m->kernel.abi_version = THAW_ABI_VERSION;
    m->kernel.cpl3_entry = 0x100100;
    m->kernel.boot_stack_top = 0x180000;
    m->kernel.syscall_entry_r0 = 0x100200;
    m->kernel.exception_stubs_r0 = 0x100300;
    m->kernel.exception_stub_stride = 16;
    m->kernel.ring0_stack_top = 0x190000;
    m->kernel.image_end = 0x1a0000;
    m->kernel.hypercall_ud2 = 0x100400;
    m->kernel.hypercall_out = 0x100360;
    m->boot_info_gpa = THAW_GPA_BOOT_INFO;
    m->created_unix_ns = 1700000000123456789ull;
    strcpy(m->function_name, "hello-world_2");
    m->vcpu_count = 1;
    m->flags = 0;
    fill(s->snapshot_id, sizeof s->snapshot_id, 12);
    s->cpuid_count = 3;
    for (uint32_t i = 0; i < 3; i++)
        s->cpuid[i] = (struct kvm_cpuid_entry2){.function = i, .index = 0, .eax = 0x1000 + i, .ebx = 0x2000 + i,
                                                .ecx = 0x3000 + i, .edx = 0x4000 + i};
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void wr64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Recomputes the trailer CRC after a test edits the bytes. */
static void fix_crc(uint8_t *b, size_t len)
{
    wr32(b + len - 8, (uint32_t)crc32_z(crc32_z(0L, Z_NULL, 0), b, len - 8));
}

static uint8_t *entry(uint8_t *b, uint32_t i)
{
    return b + STATE_FILE_HEADER_SIZE + (size_t)i * STATE_FILE_SECTION_ENTRY_SIZE;
}

/* Index of the table entry with this id, -1 if none. */
static int find_section(const uint8_t *b, uint32_t id)
{
    uint32_t count = rd32(b + 16);
    for (uint32_t i = 0; i < count; i++)
        if (rd32(b + STATE_FILE_HEADER_SIZE + (size_t)i * STATE_FILE_SECTION_ENTRY_SIZE) == id)
            return (int)i;
    return -1;
}

static uint8_t *payload(uint8_t *b, uint32_t id)
{
    int i = find_section(b, id);
    assert_true(i >= 0);
    return b + rd64(entry(b, (uint32_t)i) + 8);
}

static void encode_ok(const struct snapshot_state *s, uint8_t **buf, size_t *len)
{
    struct thaw_error err = {{0}};
    int rc = state_file_encode(s, buf, len, &err);
    if (rc != 0)
        fail_msg("encode failed: %s", err.msg);
}

static void encode_default(uint8_t **buf, size_t *len)
{
    struct snapshot_state *s = malloc(sizeof *s);
    assert_non_null(s);
    make_state(s, 12, true);
    encode_ok(s, buf, len);
    free(s);
}

static void assert_one_line(const char *msg)
{
    assert_true(msg[0] != 0);
    assert_null(strchr(msg, '\n'));
    assert_true(strlen(msg) < sizeof(((struct thaw_error *)0)->msg) - 1);
}

/* Decodes an exact-size heap copy of b[0..n), expects failure with want in the message. */
static void expect_reject(const uint8_t *b, size_t n, const char *want)
{
    uint8_t *copy = dup_buf(b, n);
    struct snapshot_state *out = malloc(sizeof *out);
    assert_non_null(out);
    struct thaw_error err = {{0}};
    int rc = state_file_decode(copy, n, out, &err);
    if (rc != -1)
        fail_msg("decode of %zu bytes accepted; wanted \"%s\"", n, want);
    assert_one_line(err.msg);
    if (want && !strstr(err.msg, want))
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, want);
    /* *out is zeroed on failure. */
    static const struct snapshot_state zero;
    assert_memory_equal(out, &zero, sizeof zero);
    free(out);
    free(copy);
}

static void expect_accept(const uint8_t *b, size_t n, struct snapshot_state *out)
{
    uint8_t *copy = dup_buf(b, n);
    struct thaw_error err = {{0}};
    if (state_file_decode(copy, n, out, &err) != 0)
        fail_msg("decode failed: %s", err.msg);
    free(copy);
}

/* Builds a state file from raw sections at explicit offsets (0 = next aligned spot),
 * with a correct header size field and checksum. */
struct raw_section {
    uint32_t id;
    const void *data;
    uint64_t size;   /* written to the table */
    size_t data_len; /* bytes actually copied */
    uint64_t offset; /* 0 = automatic */
};

static uint8_t *build_raw(const struct raw_section *secs, uint32_t count, size_t *len)
{
    size_t off = STATE_FILE_HEADER_SIZE + (size_t)count * STATE_FILE_SECTION_ENTRY_SIZE;
    size_t end = off;
    uint64_t offs[32];
    assert_true(count <= 32);
    for (uint32_t i = 0; i < count; i++) {
        offs[i] = secs[i].offset ? secs[i].offset : off;
        size_t e = (size_t)offs[i] + secs[i].data_len;
        e = (e + 7) & ~(size_t)7;
        if (e > end)
            end = e;
        off = e;
    }
    size_t total = end + STATE_FILE_TRAILER_SIZE;
    uint8_t *b = calloc(1, total);
    assert_non_null(b);
    memcpy(b, "THAWSNAP", 8);
    wr32(b + 8, STATE_FILE_MAJOR);
    wr32(b + 12, 1);
    wr32(b + 16, count);
    wr64(b + 24, total);
    for (uint32_t i = 0; i < count; i++) {
        uint8_t *e = entry(b, i);
        wr32(e, secs[i].id);
        wr64(e + 8, offs[i]);
        wr64(e + 16, secs[i].size);
        if (secs[i].data_len)
            memcpy(b + offs[i], secs[i].data, secs[i].data_len);
    }
    memcpy(b + total - 4, "SEND", 4);
    fix_crc(b, total);
    *len = total;
    return b;
}

/* Payload bytes of every section of the default state, from its encoding. */
struct payloads {
    uint8_t *file;
    size_t len;
    const uint8_t *p[STATE_SECTION_MAX_ID + 1];
    uint64_t size[STATE_SECTION_MAX_ID + 1];
};

static void get_payloads(struct payloads *ps)
{
    memset(ps, 0, sizeof *ps);
    encode_default(&ps->file, &ps->len);
    for (uint32_t id = 1; id <= STATE_SECTION_MAX_ID; id++) {
        int i = find_section(ps->file, id);
        assert_true(i >= 0);
        ps->p[id] = ps->file + rd64(entry(ps->file, (uint32_t)i) + 8);
        ps->size[id] = rd64(entry(ps->file, (uint32_t)i) + 16);
    }
}

static struct raw_section sec_of(const struct payloads *ps, uint32_t id)
{
    return (struct raw_section){id, ps->p[id], ps->size[id], (size_t)ps->size[id], 0};
}

/* ---- round trips ---------------------------------------------------------------------------- */

static void roundtrip(uint32_t msr_count, bool optional)
{
    struct snapshot_state *s = malloc(sizeof *s), *d = malloc(sizeof *d);
    assert_non_null(s);
    assert_non_null(d);
    make_state(s, msr_count, optional);
    uint8_t *buf;
    size_t len;
    encode_ok(s, &buf, &len);
    assert_int_equal(len % 8, 0);
    expect_accept(buf, len, d);
    assert_memory_equal(s, d, sizeof *s);
    assert_int_equal(d->has_xsave, optional);
    assert_int_equal(d->has_xcrs, optional);
    assert_int_equal(d->has_debugregs, optional);
    /* Encoding is deterministic. */
    uint8_t *buf2;
    size_t len2;
    encode_ok(d, &buf2, &len2);
    assert_int_equal(len, len2);
    assert_memory_equal(buf, buf2, len);
    free(buf2);
    free(buf);
    free(d);
    free(s);
}

static void test_roundtrip_full(void **state)
{
    (void)state;
    roundtrip(12, true);
}

static void test_roundtrip_minimal(void **state)
{
    (void)state;
    roundtrip(0, false);
}

static void test_roundtrip_max_msrs(void **state)
{
    (void)state;
    roundtrip(STATE_FILE_MAX_MSRS, true);
}

/* The format byte by byte, as docs/snapshot-format.md describes it. */
static void test_layout(void **state)
{
    (void)state;
    struct snapshot_state *s = malloc(sizeof *s);
    assert_non_null(s);
    make_state(s, 2, false);
    uint8_t *b;
    size_t len;
    encode_ok(s, &b, &len);
    assert_memory_equal(b, "THAWSNAP", 8);
    assert_int_equal(rd32(b + 8), 3); /* u16 major 3, u16 minor 0 */
    assert_int_equal(rd32(b + 12), 1);
    assert_int_equal(rd32(b + 16), 10); /* 10 required sections, no optional ones */
    assert_int_equal(rd32(b + 20), 0);
    assert_int_equal(rd64(b + 24), len);
    static const uint32_t ids[] = {1, 2, 3, 6, 7, 8, 10, 11, 12, 13};
    static const uint64_t sizes[] = {144, 312, 416, 4 + 2 * 16, 64, 4, 16, 200, 16, 4 + 3 * 40};
    uint64_t off = 32 + 10 * 24;
    for (uint32_t i = 0; i < 10; i++) {
        const uint8_t *e = entry(b, i);
        assert_int_equal(rd32(e), ids[i]);
        assert_int_equal(rd32(e + 4), 0);
        assert_int_equal(rd64(e + 8), off);
        assert_int_equal(rd64(e + 16), sizes[i]);
        off += (sizes[i] + 7) & ~7ull;
    }
    assert_int_equal(off + 8, len);
    assert_memory_equal(b + off + 4, "SEND", 4);
    assert_int_equal(rd32(b + off), (uint32_t)crc32_z(crc32_z(0L, Z_NULL, 0), b, off));
    /* Raw KVM structs, explicit fields elsewhere. */
    assert_memory_equal(payload(b, 1), &s->regs, sizeof s->regs);
    const uint8_t *msrs = payload(b, 6);
    assert_int_equal(rd32(msrs), 2);
    assert_int_equal(rd32(msrs + 4 + 16), 0xc0000081u);
    assert_int_equal(rd64(msrs + 4 + 16 + 8), s->msrs[1].data);
    assert_int_equal(rd32(payload(b, 8)), KVM_MP_STATE_RUNNABLE);
    assert_int_equal(rd64(payload(b, 10)), s->tsc_khz);
    assert_int_equal(rd64(payload(b, 10) + 8), s->tsc);
    const uint8_t *m = payload(b, 11);
    assert_int_equal(rd64(m + 0), s->monitor.mem_size);
    assert_int_equal(rd64(m + 8), s->monitor.max_request);
    assert_int_equal(rd64(m + 16), s->monitor.pending_invoke_gpa);
    assert_int_equal(rd64(m + 24), s->monitor.generation);
    assert_int_equal(rd32(m + 32), THAW_KERNEL_MAGIC);
    assert_int_equal(rd64(m + 32 + 64), s->monitor.kernel.hypercall_ud2);
    assert_int_equal(rd64(m + 104), s->monitor.boot_info_gpa);
    assert_int_equal(rd64(m + 112), s->monitor.created_unix_ns);
    assert_string_equal((const char *)m + 120, "hello-world_2");
    for (size_t i = 120 + strlen("hello-world_2"); i < 184; i++)
        assert_int_equal(m[i], 0);
    assert_int_equal(rd32(m + 184), 1);
    assert_int_equal(rd32(m + 188), 0);
    assert_int_equal(rd64(m + 192), s->monitor.kernel.hypercall_out);
    assert_memory_equal(payload(b, 12), s->snapshot_id, 16);
    const uint8_t *c = payload(b, 13);
    assert_int_equal(rd32(c), 3);
    assert_int_equal(rd32(c + 4 + 40 + 0), 1);      /* entry 1: function */
    assert_int_equal(rd32(c + 4 + 40 + 12), 0x1001); /* eax */
    assert_int_equal(rd32(c + 4 + 40 + 24), 0x4001); /* edx */
    free(b);
    free(s);
}

/* Tolerated variations: gaps between payloads, table not in id order. */
static void test_accepts_gaps_and_any_id_order(void **state)
{
    (void)state;
    struct payloads ps;
    get_payloads(&ps);
    static const uint32_t order[] = {13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1};
    struct raw_section secs[13];
    uint64_t off = 32 + 13 * 24 + 64; /* a 64-byte gap first */
    for (int i = 0; i < 13; i++) {
        secs[i] = sec_of(&ps, order[i]);
        secs[i].offset = off;
        off += ((ps.size[order[i]] + 7) & ~7ull) + 8 * (uint64_t)i;
    }
    size_t len;
    uint8_t *b = build_raw(secs, 13, &len);
    struct snapshot_state *a = malloc(sizeof *a), *c = malloc(sizeof *c);
    assert_non_null(a);
    assert_non_null(c);
    expect_accept(b, len, a);
    expect_accept(ps.file, ps.len, c);
    assert_memory_equal(a, c, sizeof *a);
    free(a);
    free(c);
    free(b);
    free(ps.file);
}

/* ---- encoder refusals ------------------------------------------------------------------------ */

static void expect_encode_fail(const struct snapshot_state *s, const char *want)
{
    uint8_t *buf = (uint8_t *)1;
    size_t len = 1;
    struct thaw_error err = {{0}};
    assert_int_equal(state_file_encode(s, &buf, &len, &err), -1);
    assert_null(buf);
    assert_int_equal(len, 0);
    assert_one_line(err.msg);
    if (!strstr(err.msg, want))
        fail_msg("message \"%s\" lacks \"%s\"", err.msg, want);
}

static void test_encode_rejects_invalid(void **state)
{
    (void)state;
    struct snapshot_state *s = malloc(sizeof *s);
    assert_non_null(s);
    make_state(s, 1, true);
    s->msr_count = 257;
    expect_encode_fail(s, "257 MSRs");
    make_state(s, 1, true);
    s->xcrs.nr_xcrs = 17;
    expect_encode_fail(s, "17 XCRs");
    s->has_xcrs = false; /* ignored when absent */
    uint8_t *buf;
    size_t len;
    encode_ok(s, &buf, &len);
    free(buf);
    make_state(s, 1, true);
    s->monitor.vcpu_count = 2;
    expect_encode_fail(s, "vcpu_count 2");
    make_state(s, 1, true);
    memset(s->monitor.function_name, 'a', sizeof s->monitor.function_name);
    expect_encode_fail(s, "not NUL-terminated");
    make_state(s, 1, true);
    s->monitor.mem_size += 4096;
    expect_encode_fail(s, "multiple of 2 MiB");
    free(s);
}

/* ---- rejections --------------------------------------------------------------------------------- */

static void test_truncated_every_length(void **state)
{
    (void)state;
    uint8_t *b;
    size_t len;
    encode_default(&b, &len);
    expect_reject(b, 0, "truncated");
    expect_reject(b, 7, "truncated");
    expect_reject(b, 39, "truncated");
    expect_reject(b, len - 1, "truncated");
    for (size_t n = 0; n < len; n++)
        expect_reject(b, n, NULL);
    /* A NULL buffer of length 0 is an empty file, not a crash. */
    struct snapshot_state *out = malloc(sizeof *out);
    assert_non_null(out);
    struct thaw_error err;
    assert_int_equal(state_file_decode(NULL, 0, out, &err), -1);
    assert_one_line(err.msg);
    free(out);
    free(b);
}

static void test_flipped_every_byte(void **state)
{
    (void)state;
    uint8_t *b;
    size_t len;
    encode_default(&b, &len);
    size_t checksum_errors = 0;
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit += 7) {
            b[i] ^= (uint8_t)(1u << bit);
            /* Past the fixed header fields, only the checksum (or trailer) can notice. */
            const char *want = NULL;
            if (i >= 32 && i < len - 4)
                want = "checksum mismatch";
            else if (i >= len - 4)
                want = "trailer";
            expect_reject(b, len, want);
            if (want && strcmp(want, "checksum mismatch") == 0)
                checksum_errors++;
            b[i] ^= (uint8_t)(1u << bit);
        }
    }
    assert_true(checksum_errors > len);
    free(b);
}

static void test_bad_magic(void **state)
{
    (void)state;
    uint8_t *b;
    size_t len;
    encode_default(&b, &len);
    b[0] = 'X';
    fix_crc(b, len);
    expect_reject(b, len, "bad magic");
    expect_reject((const uint8_t *)"ELF", 3, "bad magic");
    expect_reject((const uint8_t *)"THAW", 4, "truncated");
    free(b);
}

static void test_unsupported_version(void **state)
{
    (void)state;
    uint8_t *b;
    size_t len;
    encode_default(&b, &len);
    /* Formats 1 (u32 version 1) and 2 (u32 version 2, read as 2.0): refused with the remedy. */
    wr32(b + 8, 1);
    fix_crc(b, len);
    expect_reject(b, len, "state file format 1.0 is from an older thaw (this thaw reads 3.x): take the snapshot again");
    wr32(b + 8, 2);
    fix_crc(b, len);
    expect_reject(b, len, "state file format 2.0 is from an older thaw (this thaw reads 3.x): take the snapshot again");
    wr32(b + 8, 4 | 5u << 16);
    fix_crc(b, len);
    expect_reject(b, len, "unsupported state file format 4.5 (this thaw reads 3.x)");
    /* The version is checked before the checksum: a newer file may change the trailer. */
    wr32(b + 8, 7);
    expect_reject(b, len, "format 7.0");
    free(b);
}

/* Same major, newer minor: sections this reader does not know are skipped; with the
 * reader's own minor they are an error. */
static void test_newer_minor(void **state)
{
    (void)state;
    struct payloads ps;
    get_payloads(&ps);
    static const uint8_t extra[24] = {1, 2, 3};
    struct raw_section secs[14];
    for (uint32_t id = 1; id <= 13; id++)
        secs[id - 1] = sec_of(&ps, id);
    secs[13] = (struct raw_section){20, extra, sizeof extra, sizeof extra, 0};
    size_t len;
    uint8_t *b = build_raw(secs, 14, &len);
    expect_reject(b, len, "14 sections, format 3.0 defines only 13");
    wr32(b + 8, 3 | 1u << 16);
    fix_crc(b, len);
    struct snapshot_state *a = malloc(sizeof *a), *c = malloc(sizeof *c);
    assert_non_null(a);
    assert_non_null(c);
    expect_accept(b, len, a);
    expect_accept(ps.file, ps.len, c);
    assert_memory_equal(a, c, sizeof *a);
    free(a);
    free(c);
    free(b);
    free(ps.file);
}

static void test_wrong_arch(void **state)
{
    (void)state;
    uint8_t *b;
    size_t len;
    encode_default(&b, &len);
    wr32(b + 12, 2);
    fix_crc(b, len);
    expect_reject(b, len, "architecture 2");
    free(b);
}

static void test_header_fields(void **state)
{
    (void)state;
    uint8_t *b;
    size_t len;
    encode_default(&b, &len);
    wr32(b + 20, 1);
    fix_crc(b, len);
    expect_reject(b, len, "reserved");
    wr32(b + 20, 0);
    /* Total size larger than the file, smaller than the file. */
    wr64(b + 24, len + 8);
    fix_crc(b, len);
    expect_reject(b, len, "truncated");
    wr64(b + 24, UINT64_MAX);
    fix_crc(b, len);
    expect_reject(b, len, "truncated");
    wr64(b + 24, len - 8);
    fix_crc(b, len);
    expect_reject(b, len, "trailing data");
    wr64(b + 24, len);
    fix_crc(b, len);
    /* Section count: more than format 3.0 defines; table past the end. */
    wr32(b + 16, 14);
    fix_crc(b, len);
    expect_reject(b, len, "14 sections");
    wr32(b + 16, 0xffffffffu);
    fix_crc(b, len);
    expect_reject(b, len, "sections");
    free(b);

    /* A table that does not fit: header says 11 sections, file has room for none. */
    uint8_t small[48] = {0};
    memcpy(small, "THAWSNAP", 8);
    wr32(small + 8, STATE_FILE_MAJOR);
    wr32(small + 12, 1);
    wr32(small + 16, 11);
    wr64(small + 24, sizeof small);
    memcpy(small + sizeof small - 4, "SEND", 4);
    fix_crc(small, sizeof small);
    expect_reject(small, sizeof small, "section table");
    /* No sections at all. */
    wr32(small + 16, 0);
    fix_crc(small, sizeof small);
    expect_reject(small, sizeof small, "lacks required section VCPU_REGS");
}

static void test_bad_trailer(void **state)
{
    (void)state;
    uint8_t *b;
    size_t len;
    encode_default(&b, &len);
    b[len - 1] = 'X';
    expect_reject(b, len, "trailer");
    b[len - 1] = 'D';
    wr32(b + len - 8, rd32(b + len - 8) ^ 0x80000000u);
    expect_reject(b, len, "checksum mismatch");
    free(b);
}

/* Edits table entry i of the default encoding (-1 = leave a field alone). */
static void expect_table_reject(uint32_t id, int64_t new_off, int64_t new_size, uint64_t raw_off,
                                uint64_t raw_size, bool use_raw, const char *want)
{
    uint8_t *b;
    size_t len;
    encode_default(&b, &len);
    int i = find_section(b, id);
    assert_true(i >= 0);
    uint8_t *e = entry(b, (uint32_t)i);
    if (use_raw) {
        wr64(e + 8, raw_off);
        wr64(e + 16, raw_size);
    } else {
        if (new_off >= 0)
            wr64(e + 8, (uint64_t)new_off);
        if (new_size >= 0)
            wr64(e + 16, (uint64_t)new_size);
    }
    fix_crc(b, len);
    expect_reject(b, len, want);
    free(b);
}

static void test_section_bounds(void **state)
{
    (void)state;
    uint8_t *b;
    size_t len;
    encode_default(&b, &len);
    free(b);
    /* MONITOR is last: past the end of the file, into the trailer, at the end. */
    expect_table_reject(11, (int64_t)len, -1, 0, 0, false, "outside the payload area");
    expect_table_reject(11, (int64_t)len - 8 - 184, -1, 0, 0, false, "outside the payload area");
    expect_table_reject(11, (int64_t)len + 4096, -1, 0, 0, false, "outside the payload area");
    expect_table_reject(11, -1, 1ll << 40, 0, 0, false, "outside the payload area");
    /* Inside the header or the section table. */
    expect_table_reject(1, 0, -1, 0, 0, false, "outside the payload area");
    expect_table_reject(1, 32, -1, 0, 0, false, "outside the payload area");
    /* offset + size wraps around. */
    expect_table_reject(11, -1, -1, 0xfffffffffffffff8ull, 200, true, "overflows");
    expect_table_reject(1, -1, -1, 296, UINT64_MAX - 200, true, "overflows");
    /* Misaligned. */
    encode_default(&b, &len);
    uint64_t regs_off = rd64(entry(b, 0) + 8);
    free(b);
    expect_table_reject(1, (int64_t)regs_off + 4, -1, 0, 0, false, "aligned");
}

static void test_overlapping_sections(void **state)
{
    (void)state;
    uint8_t *b;
    size_t len;
    encode_default(&b, &len);
    /* SREGS starts inside REGS. */
    uint64_t regs_off = rd64(entry(b, 0) + 8);
    assert_int_equal(regs_off, 344);
    wr64(entry(b, 1) + 8, regs_off + 8);
    fix_crc(b, len);
    /* The example in docs/snapshot-format.md. */
    expect_reject(b, len,
                  "section 1 (VCPU_SREGS) at offset 352 overlaps the previous section (ends at 488); "
                  "offsets must ascend");
    free(b);
    /* Two sections at the same offset. */
    encode_default(&b, &len);
    wr64(entry(b, 1) + 8, rd64(entry(b, 0) + 8));
    fix_crc(b, len);
    expect_reject(b, len, "overlaps");
    free(b);
    /* Descending offsets (entries swapped without moving payloads). */
    encode_default(&b, &len);
    uint8_t tmp[24];
    memcpy(tmp, entry(b, 0), 24);
    memcpy(entry(b, 0), entry(b, 1), 24);
    memcpy(entry(b, 1), tmp, 24);
    fix_crc(b, len);
    expect_reject(b, len, "overlaps");
    free(b);
}

static void test_section_ids(void **state)
{
    (void)state;
    static const uint32_t bad_ids[] = {0, 14, 99, 0xffffffffu};
    for (size_t k = 0; k < sizeof bad_ids / sizeof bad_ids[0]; k++) {
        uint8_t *b;
        size_t len;
        encode_default(&b, &len);
        wr32(entry(b, 4), bad_ids[k]); /* the XCRS entry */
        fix_crc(b, len);
        char want[64];
        snprintf(want, sizeof want, "unknown id %u", bad_ids[k]);
        expect_reject(b, len, want);
        free(b);
    }
    /* Section reserved field. */
    uint8_t *b;
    size_t len;
    encode_default(&b, &len);
    wr32(entry(b, 2) + 4, 1);
    fix_crc(b, len);
    expect_reject(b, len, "reserved");
    free(b);
}

static void test_duplicate_section(void **state)
{
    (void)state;
    struct payloads ps;
    get_payloads(&ps);
    struct raw_section secs[14];
    for (uint32_t id = 1; id <= 13; id++)
        secs[id - 1] = sec_of(&ps, id);
    size_t len;
    /* REGS twice (replacing XCRS to stay within 13 entries, and as a 14th). */
    secs[4] = sec_of(&ps, 1);
    uint8_t *b = build_raw(secs, 13, &len);
    expect_reject(b, len, "duplicates section id 1 (VCPU_REGS)");
    free(b);
    secs[4] = sec_of(&ps, 5);
    secs[13] = sec_of(&ps, 11);
    b = build_raw(secs, 14, &len);
    expect_reject(b, len, "14 sections");
    free(b);
    /* A duplicated optional section. */
    secs[4] = sec_of(&ps, 9);
    b = build_raw(secs, 13, &len);
    expect_reject(b, len, "duplicates section id 9 (VCPU_DEBUGREGS)");
    free(b);
    free(ps.file);
}

static void test_missing_required(void **state)
{
    (void)state;
    struct payloads ps;
    get_payloads(&ps);
    static const uint32_t required[] = {1, 2, 3, 6, 7, 8, 10, 11, 12, 13};
    static const char *names[] = {"VCPU_REGS",     "VCPU_SREGS", "VCPU_FPU", "VCPU_MSRS", "VCPU_EVENTS",
                                  "VCPU_MP_STATE", "TSC",        "MONITOR",  "IDENTITY",  "CPUID"};
    for (size_t k = 0; k < 10; k++) {
        struct raw_section secs[13];
        uint32_t n = 0;
        for (uint32_t id = 1; id <= 13; id++)
            if (id != required[k])
                secs[n++] = sec_of(&ps, id);
        size_t len;
        uint8_t *b = build_raw(secs, n, &len);
        char want[96];
        snprintf(want, sizeof want, "lacks required section %s (id %u)", names[k], required[k]);
        expect_reject(b, len, want);
        free(b);
    }
    /* Each optional one may be left out. */
    static const uint32_t optional[] = {4, 5, 9};
    for (size_t k = 0; k < 3; k++) {
        struct raw_section secs[13];
        uint32_t n = 0;
        for (uint32_t id = 1; id <= 13; id++)
            if (id != optional[k])
                secs[n++] = sec_of(&ps, id);
        size_t len;
        uint8_t *b = build_raw(secs, n, &len);
        struct snapshot_state *out = malloc(sizeof *out);
        assert_non_null(out);
        expect_accept(b, len, out);
        assert_int_equal(out->has_xsave, optional[k] != 4);
        assert_int_equal(out->has_xcrs, optional[k] != 5);
        assert_int_equal(out->has_debugregs, optional[k] != 9);
        free(out);
        free(b);
    }
    free(ps.file);
}

static void test_wrong_section_sizes(void **state)
{
    (void)state;
    struct payloads ps;
    get_payloads(&ps);
    static const uint32_t fixed[] = {1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12};
    for (size_t k = 0; k < sizeof fixed / sizeof fixed[0]; k++) {
        uint32_t id = fixed[k];
        for (int delta = -1; delta <= 1; delta += 2) {
            struct raw_section secs[13];
            for (uint32_t j = 1; j <= 13; j++)
                secs[j - 1] = sec_of(&ps, j);
            secs[id - 1].size = ps.size[id] + (uint64_t)(int64_t)delta;
            secs[id - 1].data_len = (size_t)secs[id - 1].size;
            size_t len;
            uint8_t *b = build_raw(secs, 13, &len);
            char want[96];
            snprintf(want, sizeof want, "(%s) is %llu bytes, expected %llu", state_section_name(id),
                     (unsigned long long)secs[id - 1].size, (unsigned long long)ps.size[id]);
            expect_reject(b, len, want);
            free(b);
        }
    }
    free(ps.file);
}

static void msrs_case(const struct payloads *ps, uint32_t count, uint64_t size, const char *want)
{
    uint8_t *msrs = calloc(1, 4 + 300 * 16);
    assert_non_null(msrs);
    wr32(msrs, count);
    struct raw_section secs[13];
    for (uint32_t j = 1; j <= 13; j++)
        secs[j - 1] = sec_of(ps, j);
    secs[5] = (struct raw_section){6, msrs, size, (size_t)size, 0};
    size_t len;
    uint8_t *b = build_raw(secs, 13, &len);
    if (want) {
        expect_reject(b, len, want);
    } else {
        struct snapshot_state *out = malloc(sizeof *out);
        assert_non_null(out);
        expect_accept(b, len, out);
        assert_int_equal(out->msr_count, count);
        free(out);
    }
    free(b);
    free(msrs);
}

static void test_bad_xcr_count(void **state)
{
    (void)state;
    uint8_t *b;
    size_t len;
    encode_default(&b, &len);
    wr32(payload(b, 5), 17);
    fix_crc(b, len);
    expect_reject(b, len, "(VCPU_XCRS) holds 17 XCRs (at most 16)");
    wr32(payload(b, 5), 16);
    fix_crc(b, len);
    struct snapshot_state *out = malloc(sizeof *out);
    assert_non_null(out);
    expect_accept(b, len, out);
    assert_int_equal(out->xcrs.nr_xcrs, 16);
    free(out);
    free(b);
}

static void test_bad_msr_count(void **state)
{
    (void)state;
    struct payloads ps;
    get_payloads(&ps);
    msrs_case(&ps, 257, 4 + 257 * 16, "257 MSRs (at most 256)");
    msrs_case(&ps, 0xffffffffu, 4 + 16, "4294967295 MSRs");
    msrs_case(&ps, 3, 4 + 2 * 16, "3 MSRs need 52");
    msrs_case(&ps, 3, 4 + 4 * 16, "3 MSRs need 52");
    msrs_case(&ps, 1, 4 + 16 + 8, "1 MSRs need 20");
    msrs_case(&ps, 0, 0, "too short");
    msrs_case(&ps, 0, 3, "too short");
    msrs_case(&ps, 0, 4, NULL);
    msrs_case(&ps, 256, 4 + 256 * 16, NULL);
    free(ps.file);
}

/* Patches MONITOR field bytes in the default encoding and expects rejection. */
static void monitor_case(size_t field, const void *bytes, size_t n, const char *want)
{
    uint8_t *b;
    size_t len;
    encode_default(&b, &len);
    memcpy(payload(b, 11) + field, bytes, n);
    fix_crc(b, len);
    if (want) {
        expect_reject(b, len, want);
    } else {
        struct snapshot_state *out = malloc(sizeof *out);
        assert_non_null(out);
        expect_accept(b, len, out);
        free(out);
    }
    free(b);
}

static void monitor_u64(size_t field, uint64_t v, const char *want)
{
    uint8_t x[8];
    wr64(x, v);
    monitor_case(field, x, 8, want);
}

static void test_bad_monitor_fields(void **state)
{
    (void)state;
    const uint64_t MiB = 1ull << 20;
    /* mem_size */
    monitor_u64(0, 256 * MiB + 4096, "multiple of 2 MiB");
    monitor_u64(0, 1, "multiple of 2 MiB");
    monitor_u64(0, 0, "outside 16..4096 MiB");
    monitor_u64(0, 14 * MiB, "outside 16..4096 MiB");
    monitor_u64(0, 4098 * MiB, "outside 16..4096 MiB");
    monitor_u64(0, UINT64_MAX - (2 * MiB - 1), "outside 16..4096 MiB");
    monitor_u64(0, 16 * MiB, NULL);
    monitor_u64(0, 4096 * MiB, NULL);
    /* vcpu_count */
    uint8_t v[4];
    wr32(v, 0);
    monitor_case(184, v, 4, "vcpu_count 0");
    wr32(v, 2);
    monitor_case(184, v, 4, "vcpu_count 2");
    /* function name */
    char name[64];
    memset(name, 'a', sizeof name);
    monitor_case(120, name, 64, "not NUL-terminated");
    memset(name, 0, sizeof name);
    monitor_case(120, name, 64, "invalid function name \"\"");
    strcpy(name, "Hello");
    monitor_case(120, name, 64, "invalid function name \"Hello\"");
    strcpy(name, "-x");
    monitor_case(120, name, 64, "invalid function name");
    strcpy(name, "a\nb\x7f");
    monitor_case(120, name, 64, "invalid function name \"a?b?\"");
    memset(name, 'a', 63);
    name[63] = 0;
    monitor_case(120, name, 64, NULL);
    /* Bytes after the NUL are ignored and come back zeroed. */
    memset(name, 'z', sizeof name);
    memcpy(name, "ok", 3);
    monitor_case(120, name, 64, NULL);
    /* pending_invoke_gpa */
    uint64_t mem = 256 * MiB, inv = sizeof(struct thaw_hc_invoke);
    monitor_u64(16, mem - inv, NULL);
    monitor_u64(16, mem - inv + 1, "pending_invoke_gpa");
    monitor_u64(16, mem, "pending_invoke_gpa");
    monitor_u64(16, UINT64_MAX - 8, "pending_invoke_gpa");
    monitor_u64(16, UINT64_MAX, "pending_invoke_gpa");
    /* boot_info_gpa */
    monitor_u64(104, mem - 4096, NULL);
    monitor_u64(104, mem - 4095, "boot_info_gpa");
    monitor_u64(104, UINT64_MAX - 100, "boot_info_gpa");
}

static void test_name_tail_zeroed(void **state)
{
    (void)state;
    uint8_t *b;
    size_t len;
    encode_default(&b, &len);
    char name[64];
    memset(name, 'z', sizeof name);
    memcpy(name, "ok", 3);
    memcpy(payload(b, 11) + 120, name, 64);
    fix_crc(b, len);
    struct snapshot_state *out = malloc(sizeof *out);
    assert_non_null(out);
    expect_accept(b, len, out);
    assert_string_equal(out->monitor.function_name, "ok");
    for (size_t i = 2; i < 64; i++)
        assert_int_equal(out->monitor.function_name[i], 0);
    free(out);
    free(b);
}

/* ---- write_file_atomic ------------------------------------------------------------------------ */

static char *make_tmpdir(void)
{
    char tmpl[] = "/tmp/thaw-test-state-XXXXXX";
    char *d = mkdtemp(tmpl);
    assert_non_null(d);
    return strdup(d);
}

static void slurp(const char *dir, const char *name, uint8_t **data, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t *b = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            b = realloc(b, cap);
            assert_non_null(b);
        }
        size_t r = fread(b + n, 1, cap - n, f);
        if (r == 0)
            break;
        n += r;
    }
    fclose(f);
    *data = b;
    *len = n;
}

/* Number of entries in dir besides . and .. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void rm_dir(char *dir, const char *const *names, size_t n)
{
    char path[512];
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    assert_int_equal(rmdir(dir), 0);
    free(dir);
}

static void test_atomic_write_content(void **state)
{
    (void)state;
    char *dir = make_tmpdir();
    uint8_t *b;
    size_t len;
    encode_default(&b, &len);
    struct thaw_error err;
    if (write_file_atomic(dir, "state", b, len, &err) != 0)
        fail_msg("write_file_atomic: %s", err.msg);
    uint8_t *got;
    size_t got_len;
    slurp(dir, "state", &got, &got_len);
    assert_int_equal(got_len, len);
    assert_memory_equal(got, b, len);
    assert_int_equal(count_entries(dir), 1); /* no temporary left behind */
    struct snapshot_state *out = malloc(sizeof *out);
    assert_non_null(out);
    expect_accept(got, got_len, out);
    free(out);
    free(got);
    /* Empty file. */
    assert_int_equal(write_file_atomic(dir, "empty", NULL, 0, &err), 0);
    slurp(dir, "empty", &got, &got_len);
    assert_int_equal(got_len, 0);
    free(got);
    assert_int_equal(count_entries(dir), 2);
    free(b);
    static const char *const names[] = {"state", "empty"};
    rm_dir(dir, names, 2);
}

static void test_atomic_write_replaces(void **state)
{
    (void)state;
    char *dir = make_tmpdir();
    struct thaw_error err;
    assert_int_equal(write_file_atomic(dir, "f", "old contents, longer", 20, &err), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/f", dir);
    struct stat before;
    assert_int_equal(stat(path, &before), 0);
    /* A reader that opened the old file keeps seeing all of it. */
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(write_file_atomic(dir, "f", "new", 3, &err), 0);
    struct stat after;
    assert_int_equal(stat(path, &after), 0);
    assert_true(before.st_ino != after.st_ino); /* a new inode renamed into place */
    assert_int_equal(after.st_size, 3);
    char old[32] = {0};
    assert_int_equal(pread(fd, old, sizeof old, 0), 20);
    assert_memory_equal(old, "old contents, longer", 20);
    close(fd);
    uint8_t *got;
    size_t got_len;
    slurp(dir, "f", &got, &got_len);
    assert_int_equal(got_len, 3);
    assert_memory_equal(got, "new", 3);
    free(got);
    assert_int_equal(count_entries(dir), 1);
    static const char *const names[] = {"f"};
    rm_dir(dir, names, 1);
}

static void test_atomic_write_errors(void **state)
{
    (void)state;
    struct thaw_error err = {{0}};
    assert_int_equal(write_file_atomic("/nonexistent/thaw/dir", "state", "x", 1, &err), -1);
    assert_one_line(err.msg);
    assert_non_null(strstr(err.msg, "/nonexistent/thaw/dir"));
    assert_non_null(strstr(err.msg, "No such file or directory"));
    char *dir = make_tmpdir();
    static const char *bad[] = {"", ".", "..", "a/b", "/abs"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(write_file_atomic(dir, bad[i], "x", 1, &err), -1);
        assert_one_line(err.msg);
    }
    /* Name too long for the temporary. */
    char longname[300];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    assert_int_equal(write_file_atomic(dir, longname, "x", 1, &err), -1);
    assert_one_line(err.msg);
    /* The target is a directory: rename fails, temporary removed, directory intact. */
    char sub[512];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    assert_int_equal(mkdir(sub, 0700), 0);
    char subfile[600];
    snprintf(subfile, sizeof subfile, "%s/keep", sub);
    FILE *f = fopen(subfile, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(write_file_atomic(dir, "sub", "x", 1, &err), -1);
    assert_one_line(err.msg);
    assert_non_null(strstr(err.msg, "rename"));
    assert_int_equal(count_entries(dir), 1);
    assert_int_equal(unlink(subfile), 0);
    assert_int_equal(rmdir(sub), 0);
    assert_int_equal(count_entries(dir), 0);
    rm_dir(dir, NULL, 0);
}

/* snapshot_writer (snapshot.c): the owner's half of a snapshot taken in another
 * process. Whatever that process wrote past the image is cut, the identity trailer
 * comes from the state the owner checks, and a state that does not decode leaves the
 * old snapshot untouched with nothing left behind. */
/* The state digest is plain SHA-256 (FIPS 180-4's "abc" example), whichever library
 * computes it: identities written by one thaw are read by another. */
static void test_state_digest_is_sha256(void **state)
{
    (void)state;
    static const uint8_t want[32] = {0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
                                     0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
                                     0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
    struct snap_identity id;
    struct thaw_error err;
    assert_int_equal(snap_identity_digest(&id, (const uint8_t *)"abc", 3, &err), 0);
    assert_memory_equal(id.digest, want, sizeof want);
}

static void test_snapshot_writer(void **state)
{
    (void)state;
    char root[] = "/tmp/thaw-writer-XXXXXX", dir[64], path[128];
    assert_non_null(mkdtemp(root));
    snprintf(dir, sizeof dir, "%s/snap", root);
    struct snapshot_state *s = calloc(1, sizeof *s);
    assert_non_null(s);
    make_state(s, 4, true);
    uint8_t *buf;
    size_t len;
    struct thaw_error err = {{0}};
    assert_int_equal(state_file_encode(s, &buf, &len, &err), 0);
    struct snapshot_writer w;
    assert_int_equal(snapshot_writer_begin(&w, dir, &err), 0);
    assert_int_equal(pwrite(w.memory_fd, "page", 4, 8192), 4);
    assert_int_equal(pwrite(w.memory_fd, "junk", 4, (off_t)(300ull << 20)), 4); /* past mem_size */
    if (snapshot_writer_commit(&w, buf, len, &err) < 0)
        fail_msg("commit: %s", err.msg);
    snprintf(path, sizeof path, "%s/memory", dir);
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal((uint64_t)st.st_size, s->monitor.mem_size + MEMORY_TRAILER_SIZE);
    uint64_t mem_size;
    struct snap_identity id, want;
    assert_int_equal(memory_trailer_read(fd, (uint64_t)st.st_size, path, &mem_size, &id, &err), 0);
    memcpy(want.id, s->snapshot_id, sizeof want.id);
    assert_int_equal(snap_identity_digest(&want, buf, len, &err), 0);
    assert_true(snap_identity_equal(&id, &want));
    char c[4];
    assert_int_equal(pread(fd, c, 4, 8192), 4);
    assert_memory_equal(c, "page", 4);
    close(fd);

    /* A state that does not decode: refused, the snapshot in place is kept. */
    assert_int_equal(snapshot_writer_begin(&w, dir, &err), 0);
    uint8_t garbage[64] = {1, 2, 3};
    assert_int_equal(snapshot_writer_commit(&w, garbage, sizeof garbage, &err), -1);
    assert_non_null(strstr(err.msg, "does not decode"));
    snprintf(path, sizeof path, "%s/state", dir);
    uint8_t *back;
    size_t back_len;
    assert_int_equal(read_file(path, 1u << 20, &back, &back_len, &err), 0);
    assert_int_equal(back_len, len);
    assert_memory_equal(back, buf, len);
    free(back);
    DIR *d = opendir(root);
    int entries = 0;
    for (struct dirent *e; (e = readdir(d));)
        entries += e->d_name[0] != '.' || strstr(e->d_name, ".new.") != NULL;
    closedir(d);
    assert_int_equal(entries, 1); /* snap only: no .snap.new.* left */
    free(buf);
    free(s);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_full),
        cmocka_unit_test(test_roundtrip_minimal),
        cmocka_unit_test(test_roundtrip_max_msrs),
        cmocka_unit_test(test_layout),
        cmocka_unit_test(test_accepts_gaps_and_any_id_order),
        cmocka_unit_test(test_encode_rejects_invalid),
        cmocka_unit_test(test_truncated_every_length),
        cmocka_unit_test(test_flipped_every_byte),
        cmocka_unit_test(test_bad_magic),
        cmocka_unit_test(test_unsupported_version),
        cmocka_unit_test(test_newer_minor),
        cmocka_unit_test(test_wrong_arch),
        cmocka_unit_test(test_header_fields),
        cmocka_unit_test(test_bad_trailer),
        cmocka_unit_test(test_section_bounds),
        cmocka_unit_test(test_overlapping_sections),
        cmocka_unit_test(test_section_ids),
        cmocka_unit_test(test_duplicate_section),
        cmocka_unit_test(test_missing_required),
        cmocka_unit_test(test_wrong_section_sizes),
        cmocka_unit_test(test_bad_msr_count),
        cmocka_unit_test(test_bad_xcr_count),
        cmocka_unit_test(test_bad_monitor_fields),
        cmocka_unit_test(test_name_tail_zeroed),
        cmocka_unit_test(test_atomic_write_content),
        cmocka_unit_test(test_atomic_write_replaces),
        cmocka_unit_test(test_atomic_write_errors),
        cmocka_unit_test(test_snapshot_writer),
        cmocka_unit_test(test_state_digest_is_sha256),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
