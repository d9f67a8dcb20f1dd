/* Decoding of guest hypercalls. The guest is hostile: a hypercall is turned into a
 * struct hypercall only after every address and length in it has been checked against
 * guest memory; it holds copies and checked guest addresses, and the replies below
 * copy out through the same checks, so no host pointer into guest memory escapes.
 * Pure functions of guest memory: unit-tested and fuzzed without KVM. */
#ifndef THAW_HOST_HYPERCALL_H
#define THAW_HOST_HYPERCALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host/util/error.h"
#include "host/vmm/guest_mem.h"
#include "thaw/abi.h"

#define HYPERCALL_MAX_CONSOLE THAW_CONSOLE_MAX

/* A decoded hypercall holds values copied out of guest memory and guest addresses
 * (struct gpa) whose ranges were checked; never a pointer into guest memory. */
struct hypercall {
    unsigned nr; /* THAW_HC_* */
    union {
        struct {
            struct gpa data; /* [data, data + len) is guest memory */
            uint64_t len;
            unsigned stream;
        } console; /* CONSOLE_WRITE and PANIC */
        struct gpa wallclock; /* where struct thaw_hc_wallclock is written back */
        struct {
            struct gpa args;      /* struct thaw_hc_invoke: req_len and flags go back here */
            bool has_response;    /* THAW_INVOKE_HAS_RESPONSE was set */
            struct gpa response;  /* [response, +response_len) is guest memory */
            uint64_t response_len;
            struct gpa request;   /* [request, +request_cap) is guest memory, cap > 0 */
            uint64_t request_cap;
            bool response_lost;          /* THAW_INVOKE_RESPONSE_LOST */
            bool can_trim;               /* THAW_INVOKE_CAN_TRIM: the guest may be asked to trim */
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

/* Replies to an INVOKE_NEXT: copies the request (len <= request_cap) into the guest's
 * buffer and writes req_len and flags (THAW_INVOKE_SHUTDOWN or 0) into its struct.
 * Returns 0 or -1 with a reason. */
int hypercall_invoke_reply(const struct guest_mem *mem, const struct hypercall *hc, const void *req,
                           uint64_t len, uint32_t flags, struct thaw_error *err);

/* Copies the response of an INVOKE_NEXT into a malloc'd buffer with a NUL after it
 * (*out NULL and *len 0 when the call carried no response). Returns 0 or -1. */
int hypercall_invoke_response(const struct guest_mem *mem, const struct hypercall *hc, uint8_t **out,
                              size_t *len, struct thaw_error *err);

/* Writes the WALLCLOCK answer into the guest's struct. Returns 0 or -1. */
int hypercall_wallclock_reply(const struct guest_mem *mem, const struct hypercall *hc, uint64_t wall_ns,
                              uint64_t tsc, struct thaw_error *err);

/* One line describing a guest fault: exception name, rip, error code, cr2, and which
 * part of the guest it hit. */
void hypercall_describe_fault(const struct thaw_fault_frame *f, uint64_t cr2, char *buf, size_t len);

#endif
