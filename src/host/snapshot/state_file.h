/* The snapshot state file: vCPU registers, TSC and monitor bookkeeping of a paused
 * microVM, in a versioned, checksummed, little-endian binary format. A snapshot
 * directory holds `state` (this file) and `memory` (the raw guest-physical image).
 * The byte layout is specified in docs/snapshot-format.md; summary:
 *
 *   header    32 bytes  "THAWSNAP", u16 major (3), u16 minor (0), u32 arch (1 = x86_64),
 *                       u32 section count, u32 reserved (0), u64 total file size
 *   table     count x 24 bytes {u32 id, u32 reserved (0), u64 offset, u64 size}
 *   payloads  8-byte aligned, ascending offsets, no overlap
 *   trailer   8 bytes   u32 CRC-32 (zlib) of every byte before it, "SEND"
 *
 * The decoder treats its input as hostile: it never reads outside the buffer and
 * reports every problem as one readable line in struct thaw_error. */
#ifndef THAW_HOST_STATE_FILE_H
#define THAW_HOST_STATE_FILE_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "thaw/abi.h"
#include "host/util/error.h"

#define STATE_FILE_MAGIC "THAWSNAP"   /* 8 bytes, no NUL */
#define STATE_FILE_TRAILER_MAGIC "SEND" /* 4 bytes, no NUL */
/* Format version major.minor. A reader refuses any other major; it reads any minor of
 * its own major, skipping section ids above the ones it knows only when the file's
 * minor is newer than its own (a minor bump only ever adds sections that may be
 * skipped). Incompatible changes bump the major. */
#define STATE_FILE_MAJOR 3u
#define STATE_FILE_MINOR 0u
#define STATE_FILE_ARCH_X86_64 1u

#define STATE_FILE_HEADER_SIZE 32u
#define STATE_FILE_SECTION_ENTRY_SIZE 24u
#define STATE_FILE_TRAILER_SIZE 8u
#define STATE_FILE_ALIGN 8u

#define STATE_FILE_MAX_MSRS 256u
#define STATE_FILE_MAX_CPUID 256u
#define SNAPSHOT_FUNCTION_NAME_SIZE 64u
/* Encoded size of struct snapshot_monitor_state (section MONITOR). */
#define SNAPSHOT_MONITOR_STATE_SIZE 200u

/* Section ids: stable numbers, never reused. */
enum state_section_id {
    STATE_SECTION_VCPU_REGS = 1,      /* struct kvm_regs */
    STATE_SECTION_VCPU_SREGS = 2,     /* struct kvm_sregs */
    STATE_SECTION_VCPU_FPU = 3,       /* struct kvm_fpu */
    STATE_SECTION_VCPU_XSAVE = 4,     /* struct kvm_xsave (optional) */
    STATE_SECTION_VCPU_XCRS = 5,      /* struct kvm_xcrs (optional) */
    STATE_SECTION_VCPU_MSRS = 6,      /* u32 count, count x struct kvm_msr_entry */
    STATE_SECTION_VCPU_EVENTS = 7,    /* struct kvm_vcpu_events */
    STATE_SECTION_VCPU_MP_STATE = 8,  /* struct kvm_mp_state */
    STATE_SECTION_VCPU_DEBUGREGS = 9, /* struct kvm_debugregs (optional) */
    STATE_SECTION_TSC = 10,           /* u64 tsc_khz, u64 tsc */
    STATE_SECTION_MONITOR = 11,       /* struct snapshot_monitor_state */
    STATE_SECTION_IDENTITY = 12,      /* u8 snapshot_id[16] (format 3) */
    STATE_SECTION_CPUID = 13,         /* u32 count, count x struct kvm_cpuid_entry2 (format 3) */
};
#define STATE_SECTION_MAX_ID 13u /* highest id format 3.0 defines */

/* What the monitor needs besides the vCPU to resume a snapshot. Encoded field by
 * field, in this order, as 200 little-endian bytes (no padding). */
struct snapshot_monitor_state {
    uint64_t mem_size;           /* bytes of guest memory; multiple of 2 MiB */
    uint64_t max_request;        /* largest request the host may send */
    uint64_t pending_invoke_gpa; /* GPA of the struct thaw_hc_invoke the guest is blocked in */
    uint64_t generation;         /* restore generation (see thaw_boot_info.generation) */
    struct thaw_kernel_header kernel; /* the guest kernel's header, as read at boot */
    uint64_t boot_info_gpa;
    uint64_t created_unix_ns;    /* CLOCK_REALTIME when the snapshot was taken */
    char function_name[SNAPSHOT_FUNCTION_NAME_SIZE]; /* NUL-terminated, bundle_name_valid() */
    uint32_t vcpu_count;         /* must be 1 */
    uint32_t flags;              /* none defined yet; carried through unchecked */
};

/* struct kvm_xsave ends in a flexible array (for KVM_GET_XSAVE2), which clang flags
 * when the struct is embedded; only its fixed 4096-byte part is used here. */
#ifdef __clang__
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wgnu-variable-sized-type-not-at-end"
#endif
struct snapshot_state {
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_fpu fpu;
    bool has_xsave;
    struct kvm_xsave xsave;
    bool has_xcrs;
    struct kvm_xcrs xcrs;
    bool has_debugregs;
    struct kvm_debugregs debugregs;
    uint32_t msr_count;
    struct kvm_msr_entry msrs[STATE_FILE_MAX_MSRS];
    struct kvm_vcpu_events events;
    struct kvm_mp_state mp_state;
    uint64_t tsc_khz, tsc;
    struct snapshot_monitor_state monitor;
    uint8_t snapshot_id[16];      /* random; with the file's SHA-256, the snapshot's identity */
    uint32_t cpuid_count;         /* the CPUID the vCPU ran with (KVM_GET_CPUID2) */
    struct kvm_cpuid_entry2 cpuid[STATE_FILE_MAX_CPUID];
};
#ifdef __clang__
#pragma clang diagnostic pop
#endif

/* Serialises s into a malloc'd buffer (*buf, *len; free() it). Refuses a state the
 * decoder would refuse (msr_count > 256, cpuid_count > 256, xcrs.nr_xcrs > 16, invalid
 * monitor fields). Deterministic:
 * sections in ascending id order, zero padding, bytes after the function name's NUL
 * written as zero. */
int state_file_encode(const struct snapshot_state *s, uint8_t **buf, size_t *len, struct thaw_error *err);

/* Parses hostile bytes into *out: checks magic, version, architecture, sizes, offsets,
 * overlap, overflow, checksum, trailer, required/duplicate/unknown sections, the MSR,
 * CPUID and XCR counts and the monitor fields. On failure returns -1, leaves *out zeroed and writes one line in
 * err. Never reads outside [buf, buf + len). */
int state_file_decode(const uint8_t *buf, size_t len, struct snapshot_state *out, struct thaw_error *err);

/* Checks the monitor fields the way the decoder does (mem_size, vcpu_count, function
 * name, pending_invoke_gpa, boot_info_gpa). */
int snapshot_monitor_state_check(const struct snapshot_monitor_state *m, struct thaw_error *err);

/* "VCPU_REGS" etc. for a known id, NULL otherwise. */
const char *state_section_name(uint32_t id);

#endif
