#include "host/vmm/hypercall.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Copies the argument struct of type `type` at arg into *dst; on failure returns from
 * hypercall_decode with the hypercall's name in the message. The copy is read once, so
 * a guest changing the struct behind our back (TOCTOU) cannot matter. */
#define COPY_ARGS(dst, name)                                                                          \
    do {                                                                                              \
        if (guest_copy_in(mem, (dst), gpa_at(arg), sizeof *(dst)) < 0)                                \
            return thaw_fail(err, name " hypercall: argument address %#x outside guest memory", arg); \
    } while (0)

int hypercall_decode(const struct guest_mem *mem, uint16_t port, uint32_t arg, uint64_t guest_rsp,
                     struct hypercall *out, struct thaw_error *err)
{
    memset(out, 0, sizeof *out);
    if (port < THAW_HC_PORT_BASE || port >= THAW_HC_PORT_BASE + THAW_HC_COUNT)
        return thaw_fail(err, "guest wrote to unknown I/O port %#x", port);
    out->nr = port - THAW_HC_PORT_BASE;
    /* The guest kernel keeps argument structs 8-byte aligned on its stack; anything else
     * is a broken or hostile guest, refused so the ABI stays exact. */
    if (out->nr != THAW_HC_FAULT && arg % 8 != 0)
        return thaw_fail(err, "hypercall %u: argument address %#x not 8-byte aligned", out->nr, arg);
    switch (out->nr) {
    case THAW_HC_CONSOLE_WRITE:
    case THAW_HC_PANIC: {
        struct thaw_hc_console c;
        COPY_ARGS(&c, "console");
        if (c.len > HYPERCALL_MAX_CONSOLE)
            return thaw_fail(err, "console hypercall: length %llu over the %u limit",
                             (unsigned long long)c.len, HYPERCALL_MAX_CONSOLE);
        if (!guest_range_ok(mem, gpa_at(c.addr), c.len))
            return thaw_fail(err, "console hypercall: buffer [%#llx, +%llu) outside guest memory",
                             (unsigned long long)c.addr, (unsigned long long)c.len);
        out->u.console.data = gpa_at(c.addr);
        out->u.console.len = c.len;
        out->u.console.stream = c.stream;
        return 0;
    }
    case THAW_HC_WALLCLOCK: {
        struct thaw_hc_wallclock w;
        COPY_ARGS(&w, "wallclock");
        out->u.wallclock = gpa_at(arg);
        return 0;
    }
    case THAW_HC_INVOKE_NEXT: {
        struct thaw_hc_invoke a;
        COPY_ARGS(&a, "invoke");
        out->u.invoke.args = gpa_at(arg);
        out->u.invoke.can_trim = (a.flags & THAW_INVOKE_CAN_TRIM) != 0;
        if (a.flags & THAW_INVOKE_HAS_RESPONSE) {
            if (!guest_range_ok(mem, gpa_at(a.resp_addr), a.resp_len) && a.resp_len)
                return thaw_fail(err, "invoke hypercall: response [%#llx, +%llu) outside guest memory",
                                 (unsigned long long)a.resp_addr, (unsigned long long)a.resp_len);
            out->u.invoke.has_response = true;
            out->u.invoke.response = gpa_at(a.resp_len ? a.resp_addr : 0);
            out->u.invoke.response_len = a.resp_len;
            out->u.invoke.response_lost = (a.flags & THAW_INVOKE_RESPONSE_LOST) != 0;
        }
        if (!guest_range_ok(mem, gpa_at(a.req_addr), a.req_cap) || a.req_cap == 0)
            return thaw_fail(err, "invoke hypercall: request buffer [%#llx, +%llu) outside guest memory",
                             (unsigned long long)a.req_addr, (unsigned long long)a.req_cap);
        out->u.invoke.request = gpa_at(a.req_addr);
        out->u.invoke.request_cap = a.req_cap;
        return 0;
    }
    case THAW_HC_EXIT: {
        struct thaw_hc_exit e;
        COPY_ARGS(&e, "exit");
        out->u.exit_status = e.status;
        return 0;
    }
    case THAW_HC_SET_SEGMENT_BASE: {
        COPY_ARGS(&out->u.segment, "segment");
        if (out->u.segment.which > THAW_SEGMENT_GS)
            return thaw_fail(err, "segment hypercall: unknown segment %u", out->u.segment.which);
        /* A non-canonical base would make KVM_SET_SREGS fail or the guest fault later. */
        uint64_t top = out->u.segment.base >> 47;
        if (top != 0 && top != 0x1ffff)
            return thaw_fail(err, "segment hypercall: non-canonical base %#llx",
                             (unsigned long long)out->u.segment.base);
        return 0;
    }
    case THAW_HC_DISCARD: {
        COPY_ARGS(&out->u.discard, "discard");
        if (out->u.discard.addr % THAW_PAGE_SIZE || out->u.discard.len % THAW_PAGE_SIZE ||
            !guest_range_ok(mem, gpa_at(out->u.discard.addr), out->u.discard.len))
            return thaw_fail(err, "discard hypercall: range [%#llx, +%llu) not page-aligned guest memory",
                             (unsigned long long)out->u.discard.addr, (unsigned long long)out->u.discard.len);
        return 0;
    }
    case THAW_HC_FAULT:
        /* Copied bytewise: a hostile guest's rsp need not be aligned. */
        if (guest_copy_in(mem, &out->u.fault, gpa_at(guest_rsp), sizeof out->u.fault) < 0)
            return thaw_fail(err, "fault report: frame at rsp %#llx outside guest memory",
                             (unsigned long long)guest_rsp);
        return 0;
    default:
        return thaw_fail(err, "unknown hypercall %u", out->nr);
    }
}

int hypercall_invoke_reply(const struct guest_mem *mem, const struct hypercall *hc, const void *req,
                           uint64_t len, uint32_t flags, struct thaw_error *err)
{
    if (hc->nr != THAW_HC_INVOKE_NEXT)
        return thaw_fail(err, "no invocation is pending");
    if (len > hc->u.invoke.request_cap)
        return thaw_fail(err, "request of %llu bytes exceeds the instance's %llu-byte limit",
                         (unsigned long long)len, (unsigned long long)hc->u.invoke.request_cap);
    struct gpa args = hc->u.invoke.args;
    if (guest_copy_out(mem, hc->u.invoke.request, req, len) < 0 ||
        guest_copy_out(mem, gpa_at(args.v + offsetof(struct thaw_hc_invoke, req_len)), &len, sizeof len) < 0 ||
        guest_copy_out(mem, gpa_at(args.v + offsetof(struct thaw_hc_invoke, flags)), &flags, sizeof flags) < 0)
        return thaw_fail(err, "invocation buffers outside guest memory");
    return 0;
}

int hypercall_invoke_response(const struct guest_mem *mem, const struct hypercall *hc, uint8_t **out,
                              size_t *len, struct thaw_error *err)
{
    *out = NULL;
    *len = 0;
    if (hc->nr != THAW_HC_INVOKE_NEXT || !hc->u.invoke.has_response)
        return 0;
    uint64_t n = hc->u.invoke.response_len;
    if (n >= SIZE_MAX)
        return thaw_fail(err, "response of %llu bytes is too large", (unsigned long long)n);
    uint8_t *buf = malloc((size_t)n + 1);
    if (!buf)
        return thaw_fail(err, "out of memory for a %llu-byte response", (unsigned long long)n);
    if (guest_copy_in(mem, buf, hc->u.invoke.response, n) < 0) {
        free(buf);
        return thaw_fail(err, "response outside guest memory");
    }
    buf[n] = 0;
    *out = buf;
    *len = (size_t)n;
    return 0;
}

int hypercall_wallclock_reply(const struct guest_mem *mem, const struct hypercall *hc, uint64_t wall_ns,
                              uint64_t tsc, struct thaw_error *err)
{
    struct thaw_hc_wallclock w = {.wall_ns = wall_ns, .tsc = tsc};
    if (hc->nr != THAW_HC_WALLCLOCK || guest_copy_out(mem, hc->u.wallclock, &w, sizeof w) < 0)
        return thaw_fail(err, "wallclock reply outside guest memory");
    return 0;
}

static const char *vector_name(uint64_t v)
{
    static const char *const names[32] = {
        [0] = "divide error (#DE)",        [1] = "debug (#DB)",
        [2] = "NMI",                       [3] = "breakpoint (#BP)",
        [4] = "overflow (#OF)",            [5] = "bound range (#BR)",
        [6] = "invalid opcode (#UD)",      [7] = "device not available (#NM)",
        [8] = "double fault (#DF)",        [10] = "invalid TSS (#TS)",
        [11] = "segment not present (#NP)", [12] = "stack fault (#SS)",
        [13] = "general protection (#GP)", [14] = "page fault (#PF)",
        [16] = "x87 floating point (#MF)", [17] = "alignment check (#AC)",
        [18] = "machine check (#MC)",      [19] = "SIMD floating point (#XM)",
        [21] = "control protection (#CP)",
    };
    return v < 32 && names[v] ? names[v] : "reserved exception";
}

void hypercall_describe_fault(const struct thaw_fault_frame *f, uint64_t cr2, char *buf, size_t len)
{
    int n = snprintf(buf, len, "guest fault: %s, vector %llu, at rip %#llx, rflags %#llx, error code %#llx",
                     vector_name(f->vector), (unsigned long long)f->vector,
                     (unsigned long long)f->rip, (unsigned long long)f->rflags, (unsigned long long)f->error_code);
    if (n < 0 || (size_t)n >= len)
        return;
    if (f->vector == 14) {
        const char *what = (f->error_code & 0x10) || cr2 == f->rip ? "instruction fetch from"
                         : (f->error_code & 2)    ? "write to"
                                                  : "read from";
        snprintf(buf + n, len - (size_t)n, ", cr2 %#llx (%s %s%s)", (unsigned long long)cr2, what,
                 cr2 < THAW_PAGE_SIZE ? "the NULL page" : "an unmapped address",
                 (f->error_code & 1) ? ", protection violation" : "");
    }
}
