/* Snapshot state file codec. Layout: docs/snapshot-format.md. Every integer in the
 * file is written and read through put_le / get_le below, byte by byte, so the
 * format does not depend on the host's byte order or struct padding; the KVM
 * structures are stored as the byte images of Linux's x86-64 UAPI structs (the
 * kernel keeps that ABI stable; their sizes are pinned by the static asserts). */
#include "host/snapshot/state_file.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "host/function/bundle.h"
#include "host/util/le.h"
#include "host/vmm/kvm_cpuid.h"

_Static_assert(sizeof(struct kvm_regs) == 144, "struct kvm_regs changed size");
_Static_assert(sizeof(struct kvm_sregs) == 312, "struct kvm_sregs changed size");
_Static_assert(sizeof(struct kvm_fpu) == 416, "struct kvm_fpu changed size");
_Static_assert(sizeof(struct kvm_xsave) == 4096, "struct kvm_xsave changed size");
_Static_assert(sizeof(struct kvm_xcrs) == 392, "struct kvm_xcrs changed size");
_Static_assert(sizeof(struct kvm_msr_entry) == 16, "struct kvm_msr_entry changed size");
_Static_assert(sizeof(struct kvm_vcpu_events) == 64, "struct kvm_vcpu_events changed size");
_Static_assert(sizeof(struct kvm_mp_state) == 4, "struct kvm_mp_state changed size");
_Static_assert(sizeof(struct kvm_debugregs) == 128, "struct kvm_debugregs changed size");
_Static_assert(sizeof(struct kvm_cpuid_entry2) == 40, "struct kvm_cpuid_entry2 changed size");
_Static_assert(sizeof(struct thaw_kernel_header) == 80, "struct thaw_kernel_header changed size");
_Static_assert(sizeof(((struct snapshot_monitor_state *)0)->function_name) == SNAPSHOT_FUNCTION_NAME_SIZE,
               "function_name size");

#define MSRS_HEADER_SIZE 4u
#define MSR_ENTRY_SIZE 16u
#define TSC_SIZE 16u
#define CPUID_HEADER_SIZE 4u
#define CPUID_ENTRY_SIZE KVM_CPUID_ENTRY_SIZE
#define IDENTITY_SIZE 16u
#define MEM_ALIGN (2ull << 20)

static uint32_t crc32_of(const uint8_t *p, size_t n)
{
    return (uint32_t)crc32_z(crc32_z(0L, Z_NULL, 0), p, n);
}

/* ---- section table --------------------------------------------------------------------- */

struct section_info {
    const char *name;
    uint64_t size; /* exact payload size; 0 for VCPU_MSRS and CPUID (depend on the count) */
    bool required;
};

static const struct section_info SECTIONS[STATE_SECTION_MAX_ID + 1] = {
    [STATE_SECTION_VCPU_REGS] = {"VCPU_REGS", sizeof(struct kvm_regs), true},
    [STATE_SECTION_VCPU_SREGS] = {"VCPU_SREGS", sizeof(struct kvm_sregs), true},
    [STATE_SECTION_VCPU_FPU] = {"VCPU_FPU", sizeof(struct kvm_fpu), true},
    [STATE_SECTION_VCPU_XSAVE] = {"VCPU_XSAVE", sizeof(struct kvm_xsave), false},
    [STATE_SECTION_VCPU_XCRS] = {"VCPU_XCRS", sizeof(struct kvm_xcrs), false},
    [STATE_SECTION_VCPU_MSRS] = {"VCPU_MSRS", 0, true},
    [STATE_SECTION_VCPU_EVENTS] = {"VCPU_EVENTS", sizeof(struct kvm_vcpu_events), true},
    [STATE_SECTION_VCPU_MP_STATE] = {"VCPU_MP_STATE", sizeof(struct kvm_mp_state), true},
    [STATE_SECTION_VCPU_DEBUGREGS] = {"VCPU_DEBUGREGS", sizeof(struct kvm_debugregs), false},
    [STATE_SECTION_TSC] = {"TSC", TSC_SIZE, true},
    [STATE_SECTION_MONITOR] = {"MONITOR", SNAPSHOT_MONITOR_STATE_SIZE, true},
    [STATE_SECTION_IDENTITY] = {"IDENTITY", IDENTITY_SIZE, true},
    [STATE_SECTION_CPUID] = {"CPUID", 0, true},
};

const char *state_section_name(uint32_t id)
{
    if (id == 0 || id > STATE_SECTION_MAX_ID)
        return NULL;
    return SECTIONS[id].name;
}

static uint64_t align8(uint64_t v)
{
    return (v + (STATE_FILE_ALIGN - 1)) & ~(uint64_t)(STATE_FILE_ALIGN - 1);
}

/* ---- monitor state ------------------------------------------------------------------- */

/* Copies a hostile string into out, replacing anything unprintable, for messages. */
static void printable(char *out, size_t cap, const char *s, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; i < n && s[i] && j + 1 < cap; i++)
        out[j++] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    out[j] = 0;
}

int snapshot_monitor_state_check(const struct snapshot_monitor_state *m, struct thaw_error *err)
{
    const uint64_t min = (uint64_t)THAW_MIN_MEM_MIB << 20, max = (uint64_t)THAW_MAX_MEM_MIB << 20;
    if (m->mem_size % MEM_ALIGN != 0)
        return thaw_fail(err, "monitor state: mem_size %llu is not a multiple of 2 MiB",
                         (unsigned long long)m->mem_size);
    if (m->mem_size < min || m->mem_size > max)
        return thaw_fail(err, "monitor state: mem_size %llu MiB is outside %u..%u MiB",
                         (unsigned long long)(m->mem_size >> 20), THAW_MIN_MEM_MIB, THAW_MAX_MEM_MIB);
    if (m->vcpu_count != 1)
        return thaw_fail(err, "monitor state: vcpu_count %u (this thaw supports exactly 1)", m->vcpu_count);
    if (!memchr(m->function_name, 0, sizeof m->function_name))
        return thaw_fail(err, "monitor state: function name is not NUL-terminated within %u bytes",
                         SNAPSHOT_FUNCTION_NAME_SIZE);
    if (!bundle_name_valid(m->function_name)) {
        char shown[SNAPSHOT_FUNCTION_NAME_SIZE];
        printable(shown, sizeof shown, m->function_name, sizeof m->function_name);
        return thaw_fail(err,
                         "monitor state: invalid function name \"%s\" (want 1-63 of [a-z0-9_-], "
                         "starting with a letter or digit)",
                         shown);
    }
    const uint64_t inv = sizeof(struct thaw_hc_invoke);
    if (m->pending_invoke_gpa > m->mem_size || inv > m->mem_size - m->pending_invoke_gpa)
        return thaw_fail(err,
                         "monitor state: pending_invoke_gpa 0x%llx + %llu bytes lies outside guest memory "
                         "(mem_size 0x%llx)",
                         (unsigned long long)m->pending_invoke_gpa, (unsigned long long)inv,
                         (unsigned long long)m->mem_size);
    if (m->boot_info_gpa > m->mem_size || THAW_BOOT_INFO_SIZE > m->mem_size - m->boot_info_gpa)
        return thaw_fail(err,
                         "monitor state: boot_info_gpa 0x%llx + %llu bytes lies outside guest memory "
                         "(mem_size 0x%llx)",
                         (unsigned long long)m->boot_info_gpa, (unsigned long long)THAW_BOOT_INFO_SIZE,
                         (unsigned long long)m->mem_size);
    return 0;
}

static void encode_kernel_header(uint8_t *p, const struct thaw_kernel_header *k)
{
    put_le32(p + 0, k->magic);
    put_le32(p + 4, k->abi_version);
    put_le64(p + 8, k->cpl3_entry);
    put_le64(p + 16, k->boot_stack_top);
    put_le64(p + 24, k->syscall_entry_r0);
    put_le64(p + 32, k->exception_stubs_r0);
    put_le64(p + 40, k->exception_stub_stride);
    put_le64(p + 48, k->ring0_stack_top);
    put_le64(p + 56, k->image_end);
    put_le64(p + 64, k->hypercall_ud2);
}

static void decode_kernel_header(const uint8_t *p, struct thaw_kernel_header *k)
{
    k->magic = get_le32(p + 0);
    k->abi_version = get_le32(p + 4);
    k->cpl3_entry = get_le64(p + 8);
    k->boot_stack_top = get_le64(p + 16);
    k->syscall_entry_r0 = get_le64(p + 24);
    k->exception_stubs_r0 = get_le64(p + 32);
    k->exception_stub_stride = get_le64(p + 40);
    k->ring0_stack_top = get_le64(p + 48);
    k->image_end = get_le64(p + 56);
    k->hypercall_ud2 = get_le64(p + 64);
}

/* Offsets inside the MONITOR payload (see docs/snapshot-format.md). */
enum {
    MON_MEM_SIZE = 0,
    MON_MAX_REQUEST = 8,
    MON_PENDING_INVOKE = 16,
    MON_GENERATION = 24,
    MON_KERNEL = 32, /* the header's first 72 bytes; hypercall_out is at MON_HYPERCALL_OUT */
    MON_BOOT_INFO = 104,
    MON_CREATED = 112,
    MON_NAME = 120, /* 64 bytes */
    MON_VCPU_COUNT = 184,
    MON_FLAGS = 188,
    MON_HYPERCALL_OUT = 192, /* added in format 2 */
};
_Static_assert(MON_HYPERCALL_OUT + 8 == SNAPSHOT_MONITOR_STATE_SIZE, "monitor layout");

static void encode_monitor(uint8_t *p, const struct snapshot_monitor_state *m)
{
    put_le64(p + MON_MEM_SIZE, m->mem_size);
    put_le64(p + MON_MAX_REQUEST, m->max_request);
    put_le64(p + MON_PENDING_INVOKE, m->pending_invoke_gpa);
    put_le64(p + MON_GENERATION, m->generation);
    encode_kernel_header(p + MON_KERNEL, &m->kernel);
    put_le64(p + MON_BOOT_INFO, m->boot_info_gpa);
    put_le64(p + MON_CREATED, m->created_unix_ns);
    /* The name is known to be NUL-terminated: copy it and zero the rest. */
    size_t n = strlen(m->function_name);
    memset(p + MON_NAME, 0, SNAPSHOT_FUNCTION_NAME_SIZE);
    memcpy(p + MON_NAME, m->function_name, n);
    put_le32(p + MON_VCPU_COUNT, m->vcpu_count);
    put_le32(p + MON_FLAGS, m->flags);
    put_le64(p + MON_HYPERCALL_OUT, m->kernel.hypercall_out);
}

static void decode_monitor(const uint8_t *p, struct snapshot_monitor_state *m)
{
    m->mem_size = get_le64(p + MON_MEM_SIZE);
    m->max_request = get_le64(p + MON_MAX_REQUEST);
    m->pending_invoke_gpa = get_le64(p + MON_PENDING_INVOKE);
    m->generation = get_le64(p + MON_GENERATION);
    decode_kernel_header(p + MON_KERNEL, &m->kernel);
    m->boot_info_gpa = get_le64(p + MON_BOOT_INFO);
    m->created_unix_ns = get_le64(p + MON_CREATED);
    /* Bytes after the first NUL are ignored (and zeroed); a missing NUL is left in
     * place for snapshot_monitor_state_check to report. */
    memcpy(m->function_name, p + MON_NAME, SNAPSHOT_FUNCTION_NAME_SIZE);
    char *nul = memchr(m->function_name, 0, SNAPSHOT_FUNCTION_NAME_SIZE);
    if (nul)
        memset(nul, 0, (size_t)(m->function_name + SNAPSHOT_FUNCTION_NAME_SIZE - nul));
    m->vcpu_count = get_le32(p + MON_VCPU_COUNT);
    m->flags = get_le32(p + MON_FLAGS);
    m->kernel.hypercall_out = get_le64(p + MON_HYPERCALL_OUT);
}

/* ---- encoder ------------------------------------------------------------------------------ */

struct out_section {
    uint32_t id;
    uint64_t size;
};

static bool section_present(const struct snapshot_state *s, uint32_t id)
{
    switch (id) {
    case STATE_SECTION_VCPU_XSAVE:
        return s->has_xsave;
    case STATE_SECTION_VCPU_XCRS:
        return s->has_xcrs;
    case STATE_SECTION_VCPU_DEBUGREGS:
        return s->has_debugregs;
    default:
        return true;
    }
}

static void encode_payload(uint8_t *p, const struct snapshot_state *s, uint32_t id)
{
    switch (id) {
    case STATE_SECTION_VCPU_REGS:
        memcpy(p, &s->regs, sizeof s->regs);
        break;
    case STATE_SECTION_VCPU_SREGS:
        memcpy(p, &s->sregs, sizeof s->sregs);
        break;
    case STATE_SECTION_VCPU_FPU:
        memcpy(p, &s->fpu, sizeof s->fpu);
        break;
    case STATE_SECTION_VCPU_XSAVE:
        memcpy(p, &s->xsave, sizeof s->xsave);
        break;
    case STATE_SECTION_VCPU_XCRS:
        memcpy(p, &s->xcrs, sizeof s->xcrs);
        break;
    case STATE_SECTION_VCPU_MSRS:
        put_le32(p, s->msr_count);
        for (uint32_t i = 0; i < s->msr_count; i++) {
            uint8_t *e = p + MSRS_HEADER_SIZE + (size_t)i * MSR_ENTRY_SIZE;
            put_le32(e + 0, s->msrs[i].index);
            put_le32(e + 4, s->msrs[i].reserved);
            put_le64(e + 8, s->msrs[i].data);
        }
        break;
    case STATE_SECTION_VCPU_EVENTS:
        memcpy(p, &s->events, sizeof s->events);
        break;
    case STATE_SECTION_VCPU_MP_STATE:
        put_le32(p, s->mp_state.mp_state);
        break;
    case STATE_SECTION_VCPU_DEBUGREGS:
        memcpy(p, &s->debugregs, sizeof s->debugregs);
        break;
    case STATE_SECTION_TSC:
        put_le64(p + 0, s->tsc_khz);
        put_le64(p + 8, s->tsc);
        break;
    case STATE_SECTION_MONITOR:
        encode_monitor(p, &s->monitor);
        break;
    case STATE_SECTION_IDENTITY:
        memcpy(p, s->snapshot_id, IDENTITY_SIZE);
        break;
    case STATE_SECTION_CPUID:
        put_le32(p, s->cpuid_count);
        for (uint32_t i = 0; i < s->cpuid_count; i++)
            kvm_cpuid_entry_put(p + CPUID_HEADER_SIZE + (size_t)i * CPUID_ENTRY_SIZE, &s->cpuid[i]);
        break;
    }
}

int state_file_encode(const struct snapshot_state *s, uint8_t **buf, size_t *len, struct thaw_error *err)
{
    *buf = NULL;
    *len = 0;
    if (s->msr_count > STATE_FILE_MAX_MSRS)
        return thaw_fail(err, "cannot encode snapshot state: %u MSRs (at most %u)", s->msr_count,
                         STATE_FILE_MAX_MSRS);
    if (s->cpuid_count > STATE_FILE_MAX_CPUID)
        return thaw_fail(err, "cannot encode snapshot state: %u CPUID entries (at most %u)", s->cpuid_count,
                         STATE_FILE_MAX_CPUID);
    if (s->has_xcrs && s->xcrs.nr_xcrs > KVM_MAX_XCRS)
        return thaw_fail(err, "cannot encode snapshot state: %u XCRs (at most %u)", s->xcrs.nr_xcrs, KVM_MAX_XCRS);
    struct thaw_error merr;
    if (snapshot_monitor_state_check(&s->monitor, &merr) < 0)
        return thaw_fail(err, "cannot encode snapshot state: %s", merr.msg);

    struct out_section secs[STATE_SECTION_MAX_ID];
    uint32_t count = 0;
    for (uint32_t id = 1; id <= STATE_SECTION_MAX_ID; id++) {
        if (!section_present(s, id))
            continue;
        uint64_t size = SECTIONS[id].size;
        if (id == STATE_SECTION_VCPU_MSRS)
            size = MSRS_HEADER_SIZE + (uint64_t)s->msr_count * MSR_ENTRY_SIZE;
        if (id == STATE_SECTION_CPUID)
            size = CPUID_HEADER_SIZE + (uint64_t)s->cpuid_count * CPUID_ENTRY_SIZE;
        secs[count++] = (struct out_section){id, size};
    }

    uint64_t total = STATE_FILE_HEADER_SIZE + (uint64_t)count * STATE_FILE_SECTION_ENTRY_SIZE;
    for (uint32_t i = 0; i < count; i++)
        total += align8(secs[i].size);
    total += STATE_FILE_TRAILER_SIZE;

    uint8_t *b = calloc(1, (size_t)total);
    if (!b)
        return thaw_fail(err, "out of memory encoding a %llu-byte snapshot state file",
                         (unsigned long long)total);

    memcpy(b, STATE_FILE_MAGIC, 8);
    put_le16(b + 8, STATE_FILE_MAJOR);
    put_le16(b + 10, STATE_FILE_MINOR);
    put_le32(b + 12, STATE_FILE_ARCH_X86_64);
    put_le32(b + 16, count);
    put_le32(b + 20, 0);
    put_le64(b + 24, total);

    uint64_t off = STATE_FILE_HEADER_SIZE + (uint64_t)count * STATE_FILE_SECTION_ENTRY_SIZE;
    for (uint32_t i = 0; i < count; i++) {
        uint8_t *e = b + STATE_FILE_HEADER_SIZE + (size_t)i * STATE_FILE_SECTION_ENTRY_SIZE;
        put_le32(e + 0, secs[i].id);
        put_le32(e + 4, 0);
        put_le64(e + 8, off);
        put_le64(e + 16, secs[i].size);
        encode_payload(b + off, s, secs[i].id);
        off += align8(secs[i].size);
    }
    put_le32(b + off, crc32_of(b, (size_t)off));
    memcpy(b + off + 4, STATE_FILE_TRAILER_MAGIC, 4);

    *buf = b;
    *len = (size_t)total;
    return 0;
}

/* ---- decoder ------------------------------------------------------------------------------ */

static void decode_payload(const uint8_t *p, struct snapshot_state *s, uint32_t id)
{
    switch (id) {
    case STATE_SECTION_VCPU_REGS:
        memcpy(&s->regs, p, sizeof s->regs);
        break;
    case STATE_SECTION_VCPU_SREGS:
        memcpy(&s->sregs, p, sizeof s->sregs);
        break;
    case STATE_SECTION_VCPU_FPU:
        memcpy(&s->fpu, p, sizeof s->fpu);
        break;
    case STATE_SECTION_VCPU_XSAVE:
        memcpy(&s->xsave, p, sizeof s->xsave);
        s->has_xsave = true;
        break;
    case STATE_SECTION_VCPU_XCRS:
        memcpy(&s->xcrs, p, sizeof s->xcrs);
        s->has_xcrs = true;
        break;
    case STATE_SECTION_VCPU_MSRS:
        /* Count and size already checked against each other. */
        s->msr_count = get_le32(p);
        for (uint32_t i = 0; i < s->msr_count; i++) {
            const uint8_t *e = p + MSRS_HEADER_SIZE + (size_t)i * MSR_ENTRY_SIZE;
            s->msrs[i].index = get_le32(e + 0);
            s->msrs[i].reserved = get_le32(e + 4);
            s->msrs[i].data = get_le64(e + 8);
        }
        break;
    case STATE_SECTION_VCPU_EVENTS:
        memcpy(&s->events, p, sizeof s->events);
        break;
    case STATE_SECTION_VCPU_MP_STATE:
        s->mp_state.mp_state = get_le32(p);
        break;
    case STATE_SECTION_VCPU_DEBUGREGS:
        memcpy(&s->debugregs, p, sizeof s->debugregs);
        s->has_debugregs = true;
        break;
    case STATE_SECTION_TSC:
        s->tsc_khz = get_le64(p + 0);
        s->tsc = get_le64(p + 8);
        break;
    case STATE_SECTION_MONITOR:
        decode_monitor(p, &s->monitor);
        break;
    case STATE_SECTION_IDENTITY:
        memcpy(s->snapshot_id, p, IDENTITY_SIZE);
        break;
    case STATE_SECTION_CPUID:
        s->cpuid_count = get_le32(p);
        for (uint32_t i = 0; i < s->cpuid_count; i++)
            kvm_cpuid_entry_get(p + CPUID_HEADER_SIZE + (size_t)i * CPUID_ENTRY_SIZE, &s->cpuid[i]);
        break;
    }
}

/* Checks the payload size of section id (known, in range) whose bytes are p[0..size). */
static int check_section_size(uint32_t index, uint32_t id, const uint8_t *p, uint64_t size,
                              struct thaw_error *err)
{
    const char *name = SECTIONS[id].name;
    if (id == STATE_SECTION_VCPU_MSRS) {
        if (size < MSRS_HEADER_SIZE)
            return thaw_fail(err, "section %u (VCPU_MSRS) is %llu bytes, too short for its count", index,
                             (unsigned long long)size);
        uint32_t n = get_le32(p);
        if (n > STATE_FILE_MAX_MSRS)
            return thaw_fail(err, "section %u (VCPU_MSRS) holds %u MSRs (at most %u)", index, n,
                             STATE_FILE_MAX_MSRS);
        uint64_t want = MSRS_HEADER_SIZE + (uint64_t)n * MSR_ENTRY_SIZE;
        if (size != want)
            return thaw_fail(err, "section %u (VCPU_MSRS) is %llu bytes, but %u MSRs need %llu", index,
                             (unsigned long long)size, n, (unsigned long long)want);
        return 0;
    }
    if (id == STATE_SECTION_CPUID) {
        if (size < CPUID_HEADER_SIZE)
            return thaw_fail(err, "section %u (CPUID) is %llu bytes, too short for its count", index,
                             (unsigned long long)size);
        uint32_t n = get_le32(p);
        if (n > STATE_FILE_MAX_CPUID)
            return thaw_fail(err, "section %u (CPUID) holds %u entries (at most %u)", index, n,
                             STATE_FILE_MAX_CPUID);
        uint64_t want = CPUID_HEADER_SIZE + (uint64_t)n * CPUID_ENTRY_SIZE;
        if (size != want)
            return thaw_fail(err, "section %u (CPUID) is %llu bytes, but %u entries need %llu", index,
                             (unsigned long long)size, n, (unsigned long long)want);
        return 0;
    }
    if (size != SECTIONS[id].size)
        return thaw_fail(err, "section %u (%s) is %llu bytes, expected %llu", index, name,
                         (unsigned long long)size, (unsigned long long)SECTIONS[id].size);
    return 0;
}

static int decode(const uint8_t *buf, size_t len, struct snapshot_state *out, struct thaw_error *err)
{
    const size_t hdr = STATE_FILE_HEADER_SIZE, trl = STATE_FILE_TRAILER_SIZE;
    if (len < 8 || memcmp(buf, STATE_FILE_MAGIC, 8) != 0) {
        if (len < 8 && memcmp(buf, STATE_FILE_MAGIC, len) == 0)
            return thaw_fail(err, "state file truncated: %zu bytes, shorter than the %zu-byte header", len,
                             hdr);
        return thaw_fail(err, "not a thaw snapshot state file (bad magic, expected \"%s\")",
                         STATE_FILE_MAGIC);
    }
    if (len < hdr + trl)
        return thaw_fail(err, "state file truncated: %zu bytes, shorter than header and trailer (%zu)", len,
                         hdr + trl);
    uint32_t major = get_le16(buf + 8), minor = get_le16(buf + 10);
    if (major < STATE_FILE_MAJOR)
        return thaw_fail(err, "state file format %u.%u is from an older thaw (this thaw reads %u.x): take the "
                              "snapshot again",
                         major, minor, STATE_FILE_MAJOR);
    if (major != STATE_FILE_MAJOR)
        return thaw_fail(err, "unsupported state file format %u.%u (this thaw reads %u.x)", major, minor,
                         STATE_FILE_MAJOR);
    /* A newer minor may add sections this reader does not know: those it skips. */
    const bool newer_minor = minor > STATE_FILE_MINOR;
    const uint32_t max_count = newer_minor ? 64u : STATE_SECTION_MAX_ID;
    uint32_t arch = get_le32(buf + 12);
    if (arch != STATE_FILE_ARCH_X86_64)
        return thaw_fail(err, "state file is for architecture %u, this thaw reads only x86_64 (%u)", arch,
                         STATE_FILE_ARCH_X86_64);
    uint32_t count = get_le32(buf + 16);
    uint32_t reserved = get_le32(buf + 20);
    if (reserved != 0)
        return thaw_fail(err, "state file header: reserved field is 0x%x, expected 0", reserved);
    uint64_t total = get_le64(buf + 24);
    if (total > len)
        return thaw_fail(err, "state file truncated: header says %llu bytes, file has %zu",
                         (unsigned long long)total, len);
    if (total < len)
        return thaw_fail(err, "state file has %zu bytes but its header says %llu (trailing data)", len,
                         (unsigned long long)total);

    /* Trailer and checksum before anything else is trusted. */
    const uint8_t *t = buf + len - trl;
    if (memcmp(t + 4, STATE_FILE_TRAILER_MAGIC, 4) != 0)
        return thaw_fail(err, "state file trailer is damaged (expected \"%s\" in the last 4 bytes)",
                         STATE_FILE_TRAILER_MAGIC);
    uint32_t stored = get_le32(t), computed = crc32_of(buf, len - trl);
    if (stored != computed)
        return thaw_fail(err, "state file checksum mismatch: stored 0x%08x, computed 0x%08x", stored, computed);

    /* Section table. */
    if (count > max_count)
        return thaw_fail(err, "state file has %u sections, format %u.%u defines only %u", count, major, minor,
                         max_count);
    const uint64_t payload_start = hdr + (uint64_t)count * STATE_FILE_SECTION_ENTRY_SIZE;
    const uint64_t payload_end = len - trl;
    if (payload_start > payload_end)
        return thaw_fail(err, "state file section table (%u entries) runs past the end of the file", count);

    uint64_t seen = 0; /* bit id */
    uint64_t prev_end = payload_start;
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *e = buf + hdr + (size_t)i * STATE_FILE_SECTION_ENTRY_SIZE;
        uint32_t id = get_le32(e + 0), res = get_le32(e + 4);
        uint64_t off = get_le64(e + 8), size = get_le64(e + 16);
        const char *name = state_section_name(id);
        if (!name && !(newer_minor && id > STATE_SECTION_MAX_ID && id < 64))
            return thaw_fail(err,
                             "section %u has unknown id %u (format %u.%u defines ids 1-%u; unknown ids are "
                             "an error)",
                             i, id, STATE_FILE_MAJOR, STATE_FILE_MINOR, STATE_SECTION_MAX_ID);
        if (!name)
            name = "unknown";
        if (seen & (1ull << id))
            return thaw_fail(err, "section %u duplicates section id %u (%s)", i, id, name);
        seen |= 1ull << id;
        if (res != 0)
            return thaw_fail(err, "section %u (%s): reserved field is 0x%x, expected 0", i, name, res);
        if (size > UINT64_MAX - off)
            return thaw_fail(err, "section %u (%s): offset %llu + size %llu overflows", i, name,
                             (unsigned long long)off, (unsigned long long)size);
        if (off < payload_start || off > payload_end || size > payload_end - off)
            return thaw_fail(err, "section %u (%s) at offset %llu, size %llu lies outside the payload area "
                                  "[%llu, %llu)",
                             i, name, (unsigned long long)off, (unsigned long long)size,
                             (unsigned long long)payload_start, (unsigned long long)payload_end);
        if (off % STATE_FILE_ALIGN != 0)
            return thaw_fail(err, "section %u (%s) at offset %llu is not %u-byte aligned", i, name,
                             (unsigned long long)off, STATE_FILE_ALIGN);
        if (off < prev_end)
            return thaw_fail(err, "section %u (%s) at offset %llu overlaps the previous section (ends at %llu); "
                                  "offsets must ascend",
                             i, name, (unsigned long long)off, (unsigned long long)prev_end);
        prev_end = off + size;
        if (id > STATE_SECTION_MAX_ID) /* from a newer minor: skipped */
            continue;
        if (check_section_size(i, id, buf + off, size, err) < 0)
            return -1;
        decode_payload(buf + off, out, id);
        if (id == STATE_SECTION_VCPU_XCRS && out->xcrs.nr_xcrs > KVM_MAX_XCRS)
            return thaw_fail(err, "section %u (VCPU_XCRS) holds %u XCRs (at most %u)", i, out->xcrs.nr_xcrs,
                             KVM_MAX_XCRS);
    }
    for (uint32_t id = 1; id <= STATE_SECTION_MAX_ID; id++)
        if (SECTIONS[id].required && !(seen & (1ull << id)))
            return thaw_fail(err, "state file lacks required section %s (id %u)", SECTIONS[id].name, id);
    return snapshot_monitor_state_check(&out->monitor, err);
}

int state_file_decode(const uint8_t *buf, size_t len, struct snapshot_state *out, struct thaw_error *err)
{
    memset(out, 0, sizeof *out);
    if (!buf && len > 0)
        return thaw_fail(err, "state file: no buffer");
    static const uint8_t empty[1];
    if (decode(buf ? buf : empty, len, out, err) < 0) {
        memset(out, 0, sizeof *out);
        return -1;
    }
    return 0;
}
