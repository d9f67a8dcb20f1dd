#include "host/vmm/hypercall.h"

#include <stdio.h>
#include <string.h>

/* Copies a guest struct at gpa into a host pointer into guest memory; NULL if any byte
 * lies outside. The struct stays in guest memory: callers copy fields out once. */
#define ARGS(mem, gpa, type) GUEST_PTR(mem, gpa, type)

int hypercall_decode(const struct guest_mem *mem, uint16_t port, uint32_t arg, uint64_t guest_rsp,
                     struct hypercall *out, struct thaw_error *err)
{
    memset(out, 0, sizeof *out);
    if (port < THAW_HC_PORT_BASE || port >= THAW_HC_PORT_BASE + THAW_HC_COUNT)
        return thaw_fail(err, "guest wrote to unknown I/O port %#x", port);
    out->nr = port - THAW_HC_PORT_BASE;
    /* Argument structs hold 64-bit fields the host reads and writes in place: a
     * misaligned one would be undefined behaviour. The guest kernel's are on its stack. */
    if (out->nr != THAW_HC_FAULT && arg % 8 != 0)
        return thaw_fail(err, "hypercall %u: argument address %#x not 8-byte aligned", out->nr, arg);
    switch (out->nr) {
    case THAW_HC_CONSOLE_WRITE:
    case THAW_HC_PANIC: {
        struct thaw_hc_console *c = ARGS(mem, arg, struct thaw_hc_console);
        if (!c)
            return thaw_fail(err, "console hypercall: argument address %#x outside guest memory", arg);
        /* Read each field once: the guest could change them behind our back (TOCTOU). */
        uint64_t addr = c->addr, len = c->len;
        if (len > HYPERCALL_MAX_CONSOLE)
            return thaw_fail(err, "console hypercall: length %llu over the %u limit",
                             (unsigned long long)len, HYPERCALL_MAX_CONSOLE);
        out->u.console.data = guest_mem_ptr(mem, addr, len);
        if (!out->u.console.data)
            return thaw_fail(err, "console hypercall: buffer [%#llx, +%llu) outside guest memory",
                             (unsigned long long)addr, (unsigned long long)len);
        out->u.console.len = len;
        out->u.console.stream = c->stream;
        return 0;
    }
    case THAW_HC_WALLCLOCK:
        out->u.wallclock = ARGS(mem, arg, struct thaw_hc_wallclock);
        if (!out->u.wallclock)
            return thaw_fail(err, "wallclock hypercall: argument address %#x outside guest memory", arg);
        return 0;
    case THAW_HC_INVOKE_NEXT: {
        struct thaw_hc_invoke *a = ARGS(mem, arg, struct thaw_hc_invoke);
        if (!a)
            return thaw_fail(err, "invoke hypercall: argument address %#x outside guest memory", arg);
        uint64_t resp = a->resp_addr, resp_len = a->resp_len, req = a->req_addr, cap = a->req_cap;
        uint32_t flags = a->flags;
        out->u.invoke.args = a;
        if (flags & THAW_INVOKE_HAS_RESPONSE) {
            out->u.invoke.response = guest_mem_ptr(mem, resp, resp_len);
            if (!out->u.invoke.response && resp_len)
                return thaw_fail(err, "invoke hypercall: response [%#llx, +%llu) outside guest memory",
                                 (unsigned long long)resp, (unsigned long long)resp_len);
            out->u.invoke.response_len = resp_len;
        }
        out->u.invoke.request_buf = guest_mem_ptr(mem, req, cap);
        if (!out->u.invoke.request_buf || cap == 0)
            return thaw_fail(err, "invoke hypercall: request buffer [%#llx, +%llu) outside guest memory",
                             (unsigned long long)req, (unsigned long long)cap);
        out->u.invoke.request_cap = cap;
        return 0;
    }
    case THAW_HC_EXIT: {
        struct thaw_hc_exit *e = ARGS(mem, arg, struct thaw_hc_exit);
        if (!e)
            return thaw_fail(err, "exit hypercall: argument address %#x outside guest memory", arg);
        out->u.exit_status = e->status;
        return 0;
    }
    case THAW_HC_SET_SEGMENT_BASE: {
        struct thaw_hc_segment_base *sb = ARGS(mem, arg, struct thaw_hc_segment_base);
        if (!sb)
            return thaw_fail(err, "segment hypercall: argument address %#x outside guest memory", arg);
        out->u.segment = *sb;
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
        struct thaw_hc_discard *d = ARGS(mem, arg, struct thaw_hc_discard);
        if (!d)
            return thaw_fail(err, "discard hypercall: argument address %#x outside guest memory", arg);
        out->u.discard = *d;
        if (out->u.discard.addr % THAW_PAGE_SIZE || out->u.discard.len % THAW_PAGE_SIZE ||
            !guest_range_ok(mem, out->u.discard.addr, out->u.discard.len))
            return thaw_fail(err, "discard hypercall: range [%#llx, +%llu) not page-aligned guest memory",
                             (unsigned long long)out->u.discard.addr, (unsigned long long)out->u.discard.len);
        return 0;
    }
    case THAW_HC_FAULT: {
        /* Copied bytewise: a hostile guest's rsp need not be aligned. */
        const void *f = guest_mem_ptr(mem, guest_rsp, sizeof out->u.fault);
        if (!f)
            return thaw_fail(err, "fault report: frame at rsp %#llx outside guest memory",
                             (unsigned long long)guest_rsp);
        memcpy(&out->u.fault, f, sizeof out->u.fault);
        return 0;
    }
    default:
        return thaw_fail(err, "unknown hypercall %u", out->nr);
    }
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
