/* Decoding of guest hypercalls. The guest is hostile: a hypercall is turned into a
 * struct hypercall only after every address and length in it has been checked against
 * guest memory, so the code acting on it never forms an unchecked host pointer.
 * Pure functions of guest memory: unit-tested and fuzzed without KVM. */
#ifndef THAW_HOST_HYPERCALL_H
#define THAW_HOST_HYPERCALL_H

#include <stddef.h>
#include <stdint.h>

#include "host/util/error.h"
#include "host/vmm/guest_mem.h"
#include "thaw/abi.h"

#define HYPERCALL_MAX_CONSOLE (1u << 20)

struct hypercall {
    unsigned nr; /* THAW_HC_* */
    union {
        struct {
            const uint8_t *data;
            uint64_t len;
            unsigned stream;
        } console; /* CONSOLE_WRITE and PANIC */
        struct thaw_hc_wallclock *wallclock;
        struct {
            struct thaw_hc_invoke *args; /* in guest memory: write req_len/flags back */
            const uint8_t *response;     /* NULL unless THAW_INVOKE_HAS_RESPONSE */
            uint64_t response_len;
            uint8_t *request_buf;
            uint64_t request_cap;
        } invoke;
        int64_t exit_status;
        struct thaw_hc_segment_base segment;
        struct thaw_hc_discard discard; /* validated: page-aligned, inside guest memory */
        struct thaw_fault_frame fault;
    } u;
};

/* Decodes the OUT the guest made to `port` with `arg` (a GPA) in eax. guest_rsp is
 * the guest's rsp at the exit (THAW_HC_FAULT frames live there). Returns 0, or -1
 * with a reason in err; a failed decode means the guest misbehaved. */
int hypercall_decode(const struct guest_mem *mem, uint16_t port, uint32_t arg, uint64_t guest_rsp,
                     struct hypercall *out, struct thaw_error *err);

/* One line describing a guest fault: exception name, rip, error code, cr2, and which
 * part of the guest it hit. */
void hypercall_describe_fault(const struct thaw_fault_frame *f, uint64_t cr2, char *buf, size_t len);

#endif
