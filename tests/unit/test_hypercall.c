/* Hypercall decoding (src/host/vmm/hypercall.c): every hypercall type against a fake
 * 1 MiB guest memory, and every way a hostile guest can point outside of it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "host/vmm/hypercall.h"

#define MEM_SIZE (1u << 20)
#define ARG_GPA 0x1000u  /* where the tests put argument structs */
#define BUF_GPA 0x8000u  /* and the buffers they point at */
#define RSP_GPA 0x20000u /* a fault frame */

static struct guest_mem mem;

static int setup(void **state)
{
    (void)state;
    mem.host = calloc(1, MEM_SIZE);
    mem.size = MEM_SIZE;
    return mem.host ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(mem.host);
    mem.host = NULL;
    return 0;
}

/* Each test starts from zeroed guest memory. */
static int clear_mem(void **state)
{
    (void)state;
    memset(mem.host, 0, MEM_SIZE);
    return 0;
}

/* Copies a struct into guest memory at gpa (the test makes sure it fits). */
static void put(uint64_t gpa, const void *src, size_t len)
{
    assert_true(gpa <= MEM_SIZE && len <= MEM_SIZE - gpa);
    memcpy(mem.host + gpa, src, len);
}

static uint16_t port(unsigned nr) { return (uint16_t)(THAW_HC_PORT_BASE + nr); }

/* Decodes and expects success. */
static struct hypercall decode_ok(uint16_t p, uint32_t arg, uint64_t rsp)
{
    struct hypercall hc;
    struct thaw_error err = {{0}};
    int rc = hypercall_decode(&mem, p, arg, rsp, &hc, &err);
    if (rc != 0)
        fail_msg("decode of port %#x arg %#x failed: %s", p, arg, err.msg);
    return hc;
}

/* Decodes and expects a refusal with a message containing `needle` (if non-NULL). */
static void decode_bad(uint16_t p, uint32_t arg, uint64_t rsp, const char *needle)
{
    struct hypercall hc;
    struct thaw_error err = {{0}};
    assert_int_equal(hypercall_decode(&mem, p, arg, rsp, &hc, &err), -1);
    assert_true(err.msg[0] != '\0');
    if (needle && !strstr(err.msg, needle))
        fail_msg("error \"%s\" does not mention \"%s\"", err.msg, needle);
}

static void put_console(uint64_t gpa, uint64_t addr, uint64_t len, uint32_t stream)
{
    struct thaw_hc_console c = {.addr = addr, .len = len, .stream = stream};
    put(gpa, &c, sizeof c);
}

static void put_invoke(uint64_t gpa, uint64_t resp, uint64_t resp_len, uint64_t req, uint64_t cap,
                       uint32_t flags)
{
    struct thaw_hc_invoke a = {.resp_addr = resp, .resp_len = resp_len, .req_addr = req,
                               .req_cap = cap, .flags = flags};
    put(gpa, &a, sizeof a);
}

static void put_segment(uint64_t gpa, uint64_t base, uint32_t which)
{
    struct thaw_hc_segment_base s = {.base = base, .which = which};
    put(gpa, &s, sizeof s);
}

/* ---- each hypercall decodes --------------------------------------------------------- */

static void test_console_write(void **state)
{
    (void)state;
    memcpy(mem.host + BUF_GPA, "hello", 5);
    put_console(ARG_GPA, BUF_GPA, 5, 2);
    struct hypercall hc = decode_ok(port(THAW_HC_CONSOLE_WRITE), ARG_GPA, 0);
    assert_int_equal(hc.nr, THAW_HC_CONSOLE_WRITE);
    assert_int_equal(hc.u.console.data.v, BUF_GPA);
    assert_int_equal(hc.u.console.len, 5);
    assert_int_equal(hc.u.console.stream, 2);
    char got[5];
    assert_int_equal(guest_copy_in(&mem, got, hc.u.console.data, 5), 0);
    assert_memory_equal(got, "hello", 5);
}

static void test_panic(void **state)
{
    (void)state;
    put_console(ARG_GPA, BUF_GPA, 12, 3);
    struct hypercall hc = decode_ok(port(THAW_HC_PANIC), ARG_GPA, 0);
    assert_int_equal(hc.nr, THAW_HC_PANIC);
    assert_int_equal(hc.u.console.data.v, BUF_GPA);
    assert_int_equal(hc.u.console.len, 12);
    assert_int_equal(hc.u.console.stream, 3);
}

static void test_console_edges_accepted(void **state)
{
    (void)state;
    /* A buffer ending exactly at the end of guest memory. */
    put_console(ARG_GPA, MEM_SIZE - 7, 7, 1);
    struct hypercall hc = decode_ok(port(THAW_HC_CONSOLE_WRITE), ARG_GPA, 0);
    assert_int_equal(hc.u.console.data.v, MEM_SIZE - 7);
    assert_int_equal(hc.u.console.len, 7);
    /* Exactly the limit (here also all of guest memory). */
    put_console(ARG_GPA, 0, HYPERCALL_MAX_CONSOLE, 1);
    hc = decode_ok(port(THAW_HC_CONSOLE_WRITE), ARG_GPA, 0);
    assert_int_equal(hc.u.console.len, HYPERCALL_MAX_CONSOLE);
    /* An empty write. */
    put_console(ARG_GPA, BUF_GPA, 0, 1);
    hc = decode_ok(port(THAW_HC_CONSOLE_WRITE), ARG_GPA, 0);
    assert_int_equal(hc.u.console.len, 0);
    /* The argument struct as the last bytes of guest memory. */
    uint32_t last = MEM_SIZE - (uint32_t)sizeof(struct thaw_hc_console);
    put_console(last, BUF_GPA, 3, 1);
    hc = decode_ok(port(THAW_HC_CONSOLE_WRITE), last, 0);
    assert_int_equal(hc.u.console.len, 3);
}

static void test_wallclock(void **state)
{
    (void)state;
    struct hypercall hc = decode_ok(port(THAW_HC_WALLCLOCK), ARG_GPA, 0);
    assert_int_equal(hc.nr, THAW_HC_WALLCLOCK);
    assert_int_equal(hc.u.wallclock.v, ARG_GPA);
    /* The host's reply lands in the guest's struct. */
    struct thaw_error err = {{0}};
    assert_int_equal(hypercall_wallclock_reply(&mem, &hc, 123, 456, &err), 0);
    struct thaw_hc_wallclock w;
    memcpy(&w, mem.host + ARG_GPA, sizeof w);
    assert_int_equal(w.wall_ns, 123);
    assert_int_equal(w.tsc, 456);
}

static void test_invoke_with_response(void **state)
{
    (void)state;
    put_invoke(ARG_GPA, BUF_GPA, 100, 0x10000, 0x4000, THAW_INVOKE_HAS_RESPONSE);
    struct hypercall hc = decode_ok(port(THAW_HC_INVOKE_NEXT), ARG_GPA, 0);
    assert_int_equal(hc.nr, THAW_HC_INVOKE_NEXT);
    assert_int_equal(hc.u.invoke.args.v, ARG_GPA);
    assert_true(hc.u.invoke.has_response);
    assert_int_equal(hc.u.invoke.response.v, BUF_GPA);
    assert_int_equal(hc.u.invoke.response_len, 100);
    assert_int_equal(hc.u.invoke.request.v, 0x10000);
    assert_int_equal(hc.u.invoke.request_cap, 0x4000);
    assert_false(hc.u.invoke.can_trim); /* an older guest kernel: never asked to trim */
    put_invoke(ARG_GPA, BUF_GPA, 100, 0x10000, 0x4000, THAW_INVOKE_HAS_RESPONSE | THAW_INVOKE_CAN_TRIM);
    hc = decode_ok(port(THAW_HC_INVOKE_NEXT), ARG_GPA, 0);
    assert_true(hc.u.invoke.can_trim);
    assert_true(hc.u.invoke.has_response);
}

static void test_invoke_first_call(void **state)
{
    (void)state;
    /* The ready point: no response flag, so resp_addr/resp_len are ignored even when
     * they are garbage. */
    put_invoke(ARG_GPA, UINT64_MAX - 3, UINT64_MAX, 0x10000, MEM_SIZE - 0x10000, 0);
    struct hypercall hc = decode_ok(port(THAW_HC_INVOKE_NEXT), ARG_GPA, 0);
    assert_false(hc.u.invoke.has_response);
    assert_int_equal(hc.u.invoke.response_len, 0);
    assert_int_equal(hc.u.invoke.request.v, 0x10000);
    assert_int_equal(hc.u.invoke.request_cap, MEM_SIZE - 0x10000);
    /* An empty response: no bytes to read, whatever its address. */
    put_invoke(ARG_GPA, UINT64_MAX, 0, 0x10000, 16, THAW_INVOKE_HAS_RESPONSE);
    hc = decode_ok(port(THAW_HC_INVOKE_NEXT), ARG_GPA, 0);
    assert_true(hc.u.invoke.has_response);
    assert_int_equal(hc.u.invoke.response_len, 0);
    /* The reply copies the request in and writes req_len and flags into the struct. */
    struct thaw_error err = {{0}};
    assert_int_equal(hypercall_invoke_reply(&mem, &hc, "123456789", 9, THAW_INVOKE_SHUTDOWN, &err), 0);
    struct thaw_hc_invoke a;
    memcpy(&a, mem.host + ARG_GPA, sizeof a);
    assert_int_equal(a.req_len, 9);
    assert_int_equal(a.flags, THAW_INVOKE_SHUTDOWN);
    assert_int_equal(a.req_addr, 0x10000); /* the rest of the struct is left alone */
    assert_memory_equal(mem.host + 0x10000, "123456789", 9);
}

static void test_exit(void **state)
{
    (void)state;
    struct thaw_hc_exit e = {.status = -42};
    put(ARG_GPA, &e, sizeof e);
    struct hypercall hc = decode_ok(port(THAW_HC_EXIT), ARG_GPA, 0);
    assert_int_equal(hc.nr, THAW_HC_EXIT);
    assert_int_equal(hc.u.exit_status, -42);
}

static void test_segment_base(void **state)
{
    (void)state;
    put_segment(ARG_GPA, 0x7fffdeadb000ull, THAW_SEGMENT_FS);
    struct hypercall hc = decode_ok(port(THAW_HC_SET_SEGMENT_BASE), ARG_GPA, 0);
    assert_int_equal(hc.nr, THAW_HC_SET_SEGMENT_BASE);
    assert_int_equal(hc.u.segment.which, THAW_SEGMENT_FS);
    assert_int_equal(hc.u.segment.base, 0x7fffdeadb000ull);

    /* Canonical bounds on both halves of the address space. */
    const uint64_t good[] = {0, 0x00007fffffffffffull, 0xffff800000000000ull, UINT64_MAX};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        put_segment(ARG_GPA, good[i], THAW_SEGMENT_GS);
        hc = decode_ok(port(THAW_HC_SET_SEGMENT_BASE), ARG_GPA, 0);
        assert_int_equal(hc.u.segment.which, THAW_SEGMENT_GS);
        assert_int_equal(hc.u.segment.base, good[i]);
    }
}

static void put_discard(uint64_t gpa, uint64_t addr, uint64_t len)
{
    struct thaw_hc_discard d = {.addr = addr, .len = len};
    put(gpa, &d, sizeof d);
}

static void test_discard(void **state)
{
    (void)state;
    put_discard(ARG_GPA, 0x10000, 0x40000);
    struct hypercall hc = decode_ok(port(THAW_HC_DISCARD), ARG_GPA, 0);
    assert_int_equal(hc.nr, THAW_HC_DISCARD);
    assert_int_equal(hc.u.discard.addr, 0x10000);
    assert_int_equal(hc.u.discard.len, 0x40000);
    /* Up to the very end, and all of guest memory. */
    put_discard(ARG_GPA, MEM_SIZE - THAW_PAGE_SIZE, THAW_PAGE_SIZE);
    hc = decode_ok(port(THAW_HC_DISCARD), ARG_GPA, 0);
    assert_int_equal(hc.u.discard.len, THAW_PAGE_SIZE);
    put_discard(ARG_GPA, 0, MEM_SIZE);
    hc = decode_ok(port(THAW_HC_DISCARD), ARG_GPA, 0);
    assert_int_equal(hc.u.discard.len, MEM_SIZE);
}

static void test_discard_bad_range(void **state)
{
    (void)state;
    const struct {
        uint64_t addr, len;
    } bad[] = {
        {0x10001, 0x1000},                   /* address not page-aligned */
        {0x10000, 0x1001},                   /* length not page-aligned */
        {MEM_SIZE - 0x1000, 0x2000},         /* runs past the end */
        {MEM_SIZE, 0x1000},                  /* starts at the end */
        {1ull << 40, 0x1000},                /* far outside */
        {0xfffffffffffff000ull, 0x2000},     /* wraps */
        {0x1000, 0xfffffffffffff000ull},     /* wraps with a huge length */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        put_discard(ARG_GPA, bad[i].addr, bad[i].len);
        decode_bad(port(THAW_HC_DISCARD), ARG_GPA, 0, "discard");
    }
}

static void test_fault_frame(void **state)
{
    (void)state;
    struct thaw_fault_frame f = {.vector = 14, .error_code = 6, .rip = 0x401234, .cs = 0x2b,
                                 .rflags = 0x10246, .rsp = 0x7ff000, .ss = 0x23};
    put(RSP_GPA, &f, sizeof f);
    /* THAW_HC_FAULT carries no argument struct: eax is ignored. */
    struct hypercall hc = decode_ok(port(THAW_HC_FAULT), 0xffffffffu, RSP_GPA);
    assert_int_equal(hc.nr, THAW_HC_FAULT);
    assert_memory_equal(&hc.u.fault, &f, sizeof f);
    /* A frame in the very last bytes of guest memory. */
    put(MEM_SIZE - sizeof f, &f, sizeof f);
    hc = decode_ok(port(THAW_HC_FAULT), 0, MEM_SIZE - sizeof f);
    assert_int_equal(hc.u.fault.rip, 0x401234);
}

/* ---- refusals ------------------------------------------------------------------------ */

/* Every hypercall with an argument struct, with the struct's size. */
static const struct {
    unsigned nr;
    size_t size;
} with_args[] = {
    {THAW_HC_CONSOLE_WRITE, sizeof(struct thaw_hc_console)},
    {THAW_HC_WALLCLOCK, sizeof(struct thaw_hc_wallclock)},
    {THAW_HC_INVOKE_NEXT, sizeof(struct thaw_hc_invoke)},
    {THAW_HC_EXIT, sizeof(struct thaw_hc_exit)},
    {THAW_HC_PANIC, sizeof(struct thaw_hc_console)},
    {THAW_HC_SET_SEGMENT_BASE, sizeof(struct thaw_hc_segment_base)},
    {THAW_HC_DISCARD, sizeof(struct thaw_hc_discard)},
};

static void test_arg_past_end(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof with_args / sizeof with_args[0]; i++) {
        decode_bad(port(with_args[i].nr), MEM_SIZE, 0, "outside guest memory");
        decode_bad(port(with_args[i].nr), MEM_SIZE + 0x1000, 0, "outside guest memory");
        decode_bad(port(with_args[i].nr), 0xfffffff8u, 0, "outside guest memory");
    }
}

static void test_arg_straddles_end(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof with_args / sizeof with_args[0]; i++) {
        /* One 8-byte word short of fitting. */
        uint32_t arg = (uint32_t)(MEM_SIZE - with_args[i].size + 8);
        decode_bad(port(with_args[i].nr), arg, 0, "outside guest memory");
    }
}

static void test_console_buffer_out_of_range(void **state)
{
    (void)state;
    /* Starts inside, runs past the end. */
    put_console(ARG_GPA, MEM_SIZE - 4, 5, 1);
    decode_bad(port(THAW_HC_CONSOLE_WRITE), ARG_GPA, 0, "outside guest memory");
    /* Starts past the end, even with length 0. */
    put_console(ARG_GPA, MEM_SIZE + 1, 0, 1);
    decode_bad(port(THAW_HC_CONSOLE_WRITE), ARG_GPA, 0, "outside guest memory");
    put_console(ARG_GPA, 1ull << 40, 16, 2);
    decode_bad(port(THAW_HC_PANIC), ARG_GPA, 0, "outside guest memory");
}

static void test_console_buffer_wraps(void **state)
{
    (void)state;
    /* addr + len overflows 64 bits and would land at a small address. */
    put_console(ARG_GPA, UINT64_MAX - 15, 32, 1);
    decode_bad(port(THAW_HC_CONSOLE_WRITE), ARG_GPA, 0, "outside guest memory");
    put_console(ARG_GPA, UINT64_MAX, 1, 1);
    decode_bad(port(THAW_HC_PANIC), ARG_GPA, 0, "outside guest memory");
    put_console(ARG_GPA, UINT64_MAX - 0xfff, 0x2000, 1);
    decode_bad(port(THAW_HC_CONSOLE_WRITE), ARG_GPA, 0, "outside guest memory");
}

static void test_console_over_limit(void **state)
{
    (void)state;
    put_console(ARG_GPA, 0, HYPERCALL_MAX_CONSOLE + 1ull, 1);
    decode_bad(port(THAW_HC_CONSOLE_WRITE), ARG_GPA, 0, "limit");
    put_console(ARG_GPA, 0, UINT64_MAX, 1);
    decode_bad(port(THAW_HC_PANIC), ARG_GPA, 0, "limit");
}

static void test_invoke_request_out_of_range(void **state)
{
    (void)state;
    /* Runs past the end. */
    put_invoke(ARG_GPA, 0, 0, MEM_SIZE - 0x100, 0x101, 0);
    decode_bad(port(THAW_HC_INVOKE_NEXT), ARG_GPA, 0, "request buffer");
    /* Starts past the end. */
    put_invoke(ARG_GPA, 0, 0, MEM_SIZE + 0x1000, 0x10, 0);
    decode_bad(port(THAW_HC_INVOKE_NEXT), ARG_GPA, 0, "request buffer");
    /* Wraps around. */
    put_invoke(ARG_GPA, 0, 0, UINT64_MAX - 0xf, 0x1000, 0);
    decode_bad(port(THAW_HC_INVOKE_NEXT), ARG_GPA, 0, "request buffer");
    put_invoke(ARG_GPA, 0, 0, 0x1000, UINT64_MAX, 0);
    decode_bad(port(THAW_HC_INVOKE_NEXT), ARG_GPA, 0, "request buffer");
    /* Capacity 0: no room for any request. */
    put_invoke(ARG_GPA, 0, 0, 0x10000, 0, 0);
    decode_bad(port(THAW_HC_INVOKE_NEXT), ARG_GPA, 0, "request buffer");
    put_invoke(ARG_GPA, BUF_GPA, 4, 0x10000, 0, THAW_INVOKE_HAS_RESPONSE);
    decode_bad(port(THAW_HC_INVOKE_NEXT), ARG_GPA, 0, "request buffer");
}

static void test_invoke_response_out_of_range(void **state)
{
    (void)state;
    const struct {
        uint64_t addr, len;
    } bad[] = {
        {MEM_SIZE - 10, 11},            /* runs past the end */
        {MEM_SIZE + 1, 1},              /* starts past the end */
        {UINT64_MAX - 7, 16},           /* wraps */
        {0x1000, UINT64_MAX},           /* wraps with a huge length */
        {0, MEM_SIZE + 1ull},           /* longer than guest memory */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        /* Refused with the flag... */
        put_invoke(ARG_GPA, bad[i].addr, bad[i].len, 0x10000, 0x100, THAW_INVOKE_HAS_RESPONSE);
        decode_bad(port(THAW_HC_INVOKE_NEXT), ARG_GPA, 0, "response");
        /* ...and ignored without it. */
        put_invoke(ARG_GPA, bad[i].addr, bad[i].len, 0x10000, 0x100, 0);
        struct hypercall hc = decode_ok(port(THAW_HC_INVOKE_NEXT), ARG_GPA, 0);
        assert_false(hc.u.invoke.has_response);
        assert_int_equal(hc.u.invoke.response_len, 0);
    }
}

static void test_unknown_port(void **state)
{
    (void)state;
    const uint16_t bad[] = {0, 0x3f8, THAW_HC_PORT_BASE - 1, THAW_HC_PORT_BASE + THAW_HC_COUNT,
                            THAW_HC_PORT_BASE + 0x100, 0xffff};
    put_console(ARG_GPA, BUF_GPA, 1, 1);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        decode_bad(bad[i], ARG_GPA, RSP_GPA, "port");
}

static void test_fault_rsp_out_of_range(void **state)
{
    (void)state;
    const uint64_t bad[] = {MEM_SIZE, MEM_SIZE - sizeof(struct thaw_fault_frame) + 8,
                            MEM_SIZE - 8, 1ull << 40, UINT64_MAX - 8, UINT64_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        decode_bad(port(THAW_HC_FAULT), ARG_GPA, bad[i], "outside guest memory");
}

static void test_segment_non_canonical(void **state)
{
    (void)state;
    const uint64_t bad[] = {0x0000800000000000ull, 0x8000000000000000ull, 0x00ff000000000000ull,
                            0xffff7fffffffffffull, 0x1234567812345678ull};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        put_segment(ARG_GPA, bad[i], THAW_SEGMENT_FS);
        decode_bad(port(THAW_HC_SET_SEGMENT_BASE), ARG_GPA, 0, "non-canonical");
    }
}

static void test_segment_bad_which(void **state)
{
    (void)state;
    const uint32_t bad[] = {2, 3, 0x80000000u, UINT32_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        put_segment(ARG_GPA, 0x1000, bad[i]);
        decode_bad(port(THAW_HC_SET_SEGMENT_BASE), ARG_GPA, 0, "unknown segment");
    }
}

static void test_misaligned_arg(void **state)
{
    (void)state;
    /* The guest kernel keeps argument structs 8-byte aligned: anything else is refused. */
    for (size_t i = 0; i < sizeof with_args / sizeof with_args[0]; i++)
        for (uint32_t off = 1; off < 8; off++)
            decode_bad(port(with_args[i].nr), ARG_GPA + off, 0, "aligned");
}

static void test_misaligned_fault_frame(void **state)
{
    (void)state;
    /* A fault report is copied out, so even a misaligned frame is read. */
    struct thaw_fault_frame f = {.vector = 13, .rip = 0xabc};
    put(RSP_GPA + 4, &f, sizeof f);
    struct hypercall hc = decode_ok(port(THAW_HC_FAULT), 0, RSP_GPA + 4);
    assert_int_equal(hc.u.fault.vector, 13);
    assert_int_equal(hc.u.fault.rip, 0xabc);
}

static void test_failed_decode_clears_output(void **state)
{
    (void)state;
    struct hypercall hc;
    memset(&hc, 0xa5, sizeof hc);
    struct thaw_error err = {{0}};
    put_console(ARG_GPA, MEM_SIZE, 1, 1);
    assert_int_equal(hypercall_decode(&mem, port(THAW_HC_CONSOLE_WRITE), ARG_GPA, 0, &hc, &err), -1);
    /* Nothing usable is left behind for a careless caller. */
    assert_int_equal(hc.u.console.data.v, 0);
    assert_int_equal(hc.u.console.len, 0);
}

/* ---- values are copies: the guest changing its memory afterwards changes nothing ---- */

static void test_decoded_values_are_copies(void **state)
{
    (void)state;
    put_invoke(ARG_GPA, BUF_GPA, 4, 0x10000, 0x100, THAW_INVOKE_HAS_RESPONSE);
    struct hypercall hc = decode_ok(port(THAW_HC_INVOKE_NEXT), ARG_GPA, 0);
    /* A hostile guest rewrites the struct after the exit (TOCTOU): the decoded call
     * keeps the checked values, and the reply still goes where the check said. */
    put_invoke(ARG_GPA, UINT64_MAX, UINT64_MAX, UINT64_MAX - 1, UINT64_MAX, 0);
    assert_int_equal(hc.u.invoke.request.v, 0x10000);
    assert_int_equal(hc.u.invoke.request_cap, 0x100);
    struct thaw_error err = {{0}};
    assert_int_equal(hypercall_invoke_reply(&mem, &hc, "abc", 3, 0, &err), 0);
    assert_memory_equal(mem.host + 0x10000, "abc", 3);

    put_segment(ARG_GPA, 0x1000, THAW_SEGMENT_FS);
    hc = decode_ok(port(THAW_HC_SET_SEGMENT_BASE), ARG_GPA, 0);
    put_segment(ARG_GPA, 0x8000000000000000ull, 7);
    assert_int_equal(hc.u.segment.base, 0x1000);
    assert_int_equal(hc.u.segment.which, THAW_SEGMENT_FS);
}

static void test_invoke_response_copy(void **state)
{
    (void)state;
    memcpy(mem.host + BUF_GPA, "pong", 4);
    put_invoke(ARG_GPA, BUF_GPA, 4, 0x10000, 0x100, THAW_INVOKE_HAS_RESPONSE);
    struct hypercall hc = decode_ok(port(THAW_HC_INVOKE_NEXT), ARG_GPA, 0);
    uint8_t *resp;
    size_t len;
    struct thaw_error err = {{0}};
    assert_int_equal(hypercall_invoke_response(&mem, &hc, &resp, &len, &err), 0);
    assert_int_equal(len, 4);
    memcpy(mem.host + BUF_GPA, "XXXX", 4); /* the copy does not follow guest memory */
    assert_string_equal((char *)resp, "pong");
    free(resp);
    /* An empty response is a response (an empty string), even at a junk address. */
    put_invoke(ARG_GPA, UINT64_MAX, 0, 0x10000, 0x100, THAW_INVOKE_HAS_RESPONSE);
    hc = decode_ok(port(THAW_HC_INVOKE_NEXT), ARG_GPA, 0);
    assert_int_equal(hypercall_invoke_response(&mem, &hc, &resp, &len, &err), 0);
    assert_non_null(resp);
    assert_int_equal(len, 0);
    assert_string_equal((char *)resp, "");
    free(resp);
    /* The ready point carries none. */
    put_invoke(ARG_GPA, 0, 0, 0x10000, 0x100, 0);
    hc = decode_ok(port(THAW_HC_INVOKE_NEXT), ARG_GPA, 0);
    assert_int_equal(hypercall_invoke_response(&mem, &hc, &resp, &len, &err), 0);
    assert_null(resp);
}

static void test_invoke_reply_refusals(void **state)
{
    (void)state;
    put_invoke(ARG_GPA, 0, 0, 0x10000, 8, 0);
    struct hypercall hc = decode_ok(port(THAW_HC_INVOKE_NEXT), ARG_GPA, 0);
    struct thaw_error err = {{0}};
    assert_int_equal(hypercall_invoke_reply(&mem, &hc, "123456789", 9, 0, &err), -1);
    assert_non_null(strstr(err.msg, "exceeds"));
    /* A reply to a call that is not INVOKE_NEXT is refused. */
    hc = decode_ok(port(THAW_HC_WALLCLOCK), ARG_GPA, 0);
    assert_int_equal(hypercall_invoke_reply(&mem, &hc, "x", 1, 0, &err), -1);
    put_invoke(ARG_GPA, 0, 0, 0x10000, 8, 0);
    hc = decode_ok(port(THAW_HC_INVOKE_NEXT), ARG_GPA, 0);
    assert_int_equal(hypercall_wallclock_reply(&mem, &hc, 1, 2, &err), -1);
}

static void test_copy_helpers(void **state)
{
    (void)state;
    uint8_t b[16] = {0};
    assert_int_equal(guest_copy_out(&mem, gpa_at(MEM_SIZE - 16), "0123456789abcdef", 16), 0);
    assert_int_equal(guest_copy_in(&mem, b, gpa_at(MEM_SIZE - 16), 16), 0);
    assert_memory_equal(b, "0123456789abcdef", 16);
    assert_int_equal(guest_copy_in(&mem, b, gpa_at(MEM_SIZE - 15), 16), -1);
    assert_int_equal(guest_copy_out(&mem, gpa_at(UINT64_MAX - 3), b, 8), -1);
    assert_int_equal(guest_copy_in(&mem, b, gpa_at(8), UINT64_MAX), -1);
    assert_int_equal(guest_copy_in(&mem, b, gpa_at(MEM_SIZE), 0), 0);
    assert_int_equal(guest_copy_in(&mem, b, gpa_at(MEM_SIZE + 1), 0), -1);
}

/* ---- fault descriptions --------------------------------------------------------------- */

static void test_describe_null_write(void **state)
{
    (void)state;
    struct thaw_fault_frame f = {.vector = 14, .error_code = 0x6, .rip = 0x401000};
    char buf[256];
    hypercall_describe_fault(&f, 0x18, buf, sizeof buf);
    assert_non_null(strstr(buf, "page fault"));
    assert_non_null(strstr(buf, "NULL page"));
    assert_non_null(strstr(buf, "write to"));
    assert_non_null(strstr(buf, "0x401000"));
}

static void test_describe_other_faults(void **state)
{
    (void)state;
    char buf[256];
    struct thaw_fault_frame de = {.vector = 0, .rip = 0x400123};
    hypercall_describe_fault(&de, 0, buf, sizeof buf);
    assert_non_null(strstr(buf, "divide error"));
    assert_null(strstr(buf, "cr2"));

    struct thaw_fault_frame rd = {.vector = 14, .error_code = 0x4, .rip = 0x401000};
    hypercall_describe_fault(&rd, 0x7f0000001000ull, buf, sizeof buf);
    assert_non_null(strstr(buf, "read from"));
    assert_non_null(strstr(buf, "unmapped address"));

    struct thaw_fault_frame fetch = {.vector = 14, .error_code = 0x14, .rip = 0x0};
    hypercall_describe_fault(&fetch, 0, buf, sizeof buf);
    assert_non_null(strstr(buf, "instruction fetch"));

    struct thaw_fault_frame gp = {.vector = 13, .error_code = 0};
    hypercall_describe_fault(&gp, 0, buf, sizeof buf);
    assert_non_null(strstr(buf, "general protection"));

    /* Vectors without a name, including huge ones from a hostile frame. */
    struct thaw_fault_frame odd = {.vector = 9};
    hypercall_describe_fault(&odd, 0, buf, sizeof buf);
    assert_non_null(strstr(buf, "reserved"));
    odd.vector = UINT64_MAX;
    hypercall_describe_fault(&odd, 0, buf, sizeof buf);
    assert_non_null(strstr(buf, "reserved"));
}

static void test_describe_small_buffer(void **state)
{
    (void)state;
    /* Truncates, never overflows (ASan watches the exact-size heap buffer). */
    struct thaw_fault_frame f = {.vector = 14, .error_code = 2, .rip = 0xffffffffffffull};
    for (size_t len = 1; len < 200; len += 7) {
        char *buf = malloc(len);
        assert_non_null(buf);
        hypercall_describe_fault(&f, 0x10, buf, len);
        assert_true(strlen(buf) < len);
        free(buf);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_console_write, clear_mem),
        cmocka_unit_test_setup(test_panic, clear_mem),
        cmocka_unit_test_setup(test_console_edges_accepted, clear_mem),
        cmocka_unit_test_setup(test_wallclock, clear_mem),
        cmocka_unit_test_setup(test_invoke_with_response, clear_mem),
        cmocka_unit_test_setup(test_invoke_first_call, clear_mem),
        cmocka_unit_test_setup(test_exit, clear_mem),
        cmocka_unit_test_setup(test_segment_base, clear_mem),
        cmocka_unit_test_setup(test_discard, clear_mem),
        cmocka_unit_test_setup(test_discard_bad_range, clear_mem),
        cmocka_unit_test_setup(test_fault_frame, clear_mem),
        cmocka_unit_test_setup(test_arg_past_end, clear_mem),
        cmocka_unit_test_setup(test_arg_straddles_end, clear_mem),
        cmocka_unit_test_setup(test_console_buffer_out_of_range, clear_mem),
        cmocka_unit_test_setup(test_console_buffer_wraps, clear_mem),
        cmocka_unit_test_setup(test_console_over_limit, clear_mem),
        cmocka_unit_test_setup(test_invoke_request_out_of_range, clear_mem),
        cmocka_unit_test_setup(test_invoke_response_out_of_range, clear_mem),
        cmocka_unit_test_setup(test_unknown_port, clear_mem),
        cmocka_unit_test_setup(test_fault_rsp_out_of_range, clear_mem),
        cmocka_unit_test_setup(test_segment_non_canonical, clear_mem),
        cmocka_unit_test_setup(test_segment_bad_which, clear_mem),
        cmocka_unit_test_setup(test_misaligned_arg, clear_mem),
        cmocka_unit_test_setup(test_misaligned_fault_frame, clear_mem),
        cmocka_unit_test_setup(test_failed_decode_clears_output, clear_mem),
        cmocka_unit_test_setup(test_decoded_values_are_copies, clear_mem),
        cmocka_unit_test_setup(test_invoke_response_copy, clear_mem),
        cmocka_unit_test_setup(test_invoke_reply_refusals, clear_mem),
        cmocka_unit_test_setup(test_copy_helpers, clear_mem),
        cmocka_unit_test(test_describe_null_write),
        cmocka_unit_test(test_describe_other_faults),
        cmocka_unit_test(test_describe_small_buffer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
