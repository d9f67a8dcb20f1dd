/* libFuzzer target for hypercall decoding (src/host/vmm/hypercall.c). The input picks
 * the port, the argument GPA and the guest rsp, then fills a 64 KiB guest memory.
 * Whenever a decode succeeds, every byte of every guest range it returned is read and
 * the replies the monitor makes are written, so ASan flags any range that escaped the
 * bounds checks.
 *
 * Input layout:
 *   [0]      port selector: low 4 bits pick THAW_HC_PORT_BASE + 0..9 (from
 *            THAW_HC_COUNT on invalid), or 10..15 a raw port from the next two bytes; bit 4 folds the argument
 *            GPA into guest memory (+64 bytes past the end); bit 5 does so for rsp.
 *   [1..2]   raw port (little endian), used for selectors 10..15
 *   [3..6]   argument GPA (little endian)
 *   [7..14]  guest rsp (little endian)
 *   [15..]   guest memory contents (zero-filled past the input)
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/vmm/hypercall.h"

#define GUEST_SIZE (64u * 1024)
#define HEADER 15u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t le(const uint8_t *p, unsigned n)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Checks [gpa, gpa + len) lies inside guest memory and reads every byte of it. */
static uint8_t touch(const struct guest_mem *m, struct gpa gpa, uint64_t len)
{
    if (gpa.v > m->size || len > m->size - gpa.v)
        abort();
    volatile uint8_t sink = 0;
    for (uint64_t i = 0; i < len; i++)
        sink ^= m->host[gpa.v + i];
    return sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t hdr[HEADER] = {0};
    memcpy(hdr, data, size < HEADER ? size : HEADER);

    unsigned sel = hdr[0] & 0xf;
    uint16_t port = sel < 10 ? (uint16_t)(THAW_HC_PORT_BASE + sel) : (uint16_t)le(hdr + 1, 2);
    uint32_t arg = (uint32_t)le(hdr + 3, 4);
    uint64_t rsp = le(hdr + 7, 8);
    if (hdr[0] & 0x10)
        arg %= GUEST_SIZE + 64;
    if (hdr[0] & 0x20)
        rsp %= GUEST_SIZE + 64;

    /* An exact-size heap block: one byte past it is a redzone ASan watches. */
    struct guest_mem mem = {.host = calloc(1, GUEST_SIZE), .size = GUEST_SIZE};
    if (!mem.host)
        abort();
    if (size > HEADER)
        memcpy(mem.host, data + HEADER, size - HEADER < GUEST_SIZE ? size - HEADER : GUEST_SIZE);

    struct hypercall hc;
    struct thaw_error err = {{0}};
    volatile uint8_t sink = 0;
    if (hypercall_decode(&mem, port, arg, rsp, &hc, &err) == 0) {
        if (hc.nr >= THAW_HC_COUNT || port != THAW_HC_PORT_BASE + hc.nr)
            abort();
        switch (hc.nr) {
        case THAW_HC_CONSOLE_WRITE:
        case THAW_HC_PANIC:
            if (hc.u.console.len > HYPERCALL_MAX_CONSOLE)
                abort();
            sink ^= touch(&mem, hc.u.console.data, hc.u.console.len);
            break;
        case THAW_HC_WALLCLOCK:
            if (hypercall_wallclock_reply(&mem, &hc, 1, 2, &err) < 0)
                abort();
            break;
        case THAW_HC_INVOKE_NEXT: {
            sink ^= touch(&mem, hc.u.invoke.args, sizeof(struct thaw_hc_invoke));
            if (hc.u.invoke.has_response)
                sink ^= touch(&mem, hc.u.invoke.response, hc.u.invoke.response_len);
            if (hc.u.invoke.request_cap == 0)
                abort();
            sink ^= touch(&mem, hc.u.invoke.request, hc.u.invoke.request_cap);
            uint8_t *resp;
            size_t len;
            if (hypercall_invoke_response(&mem, &hc, &resp, &len, &err) < 0)
                abort();
            free(resp);
            /* The monitor copies a request in and writes the length back. */
            uint64_t n = hc.u.invoke.request_cap < 4096 ? hc.u.invoke.request_cap : 4096;
            static const uint8_t req[4096];
            if (hypercall_invoke_reply(&mem, &hc, req, n, 0, &err) < 0)
                abort();
            break;
        }
        case THAW_HC_SET_SEGMENT_BASE:
            if (hc.u.segment.which > THAW_SEGMENT_GS)
                abort();
            break;
        case THAW_HC_DISCARD:
            if (hc.u.discard.addr % THAW_PAGE_SIZE || hc.u.discard.len % THAW_PAGE_SIZE)
                abort();
            /* The monitor drops these pages: they must all be guest memory. */
            sink ^= touch(&mem, gpa_at(hc.u.discard.addr), hc.u.discard.len);
            memset(mem.host + hc.u.discard.addr, 0, hc.u.discard.len);
            break;
        default:
            break;
        }
    } else if (strnlen(err.msg, sizeof err.msg) == 0) {
        abort(); /* every refusal says why */
    }
    (void)sink;
    free(mem.host);
    return 0;
}
