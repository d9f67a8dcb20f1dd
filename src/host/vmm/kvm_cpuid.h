/* KVM's supported CPUID (KVM_GET_SUPPORTED_CPUID), kept for the rest of the host's boot.
 *
 * Why: the ioctl runs CPUID on the host for every leaf, and under nested KVM each CPUID
 * traps to the outer hypervisor: about 1 ms (up to 4 on a busy host) at every VM
 * creation, on a restore's CPU if not on its path. What it reports changes only with
 * the KVM module, so the answer is kept in a file (THAW_CPUID_CACHE, default
 * /run/thaw/kvm-cpuid; "off": always ask KVM) bound to the boot (boot_id) and to
 * /dev/kvm's inode and change time (a reloaded module registers a new node). A file
 * that is missing, unreadable or fails any check is ignored and replaced; one that
 * cannot be written costs only the ioctl next time.
 *
 * File: "THAWCPUI" | u32 version 1 | u32 entries n (<= KVM_CPUID_MAX) | boot_id (40
 * bytes, NUL-padded) | u64 /dev/kvm inode | u64 its ctime (ns) | 8 reserved | n x
 * 40-byte kvm_cpuid_entry2 (kvm_cpuid_entry_put)
 * | u32 CRC-32 of everything before it. */
#ifndef THAW_HOST_KVM_CPUID_H
#define THAW_HOST_KVM_CPUID_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host/util/error.h"

/* One kvm_cpuid_entry2 as 40 bytes (its ten u32 fields, padding included, LE): the
 * layout of this file's entries and of the snapshot state file's CPUID section. */
#define KVM_CPUID_ENTRY_SIZE 40u
void kvm_cpuid_entry_put(uint8_t *p, const struct kvm_cpuid_entry2 *e);
void kvm_cpuid_entry_get(const uint8_t *p, struct kvm_cpuid_entry2 *e);

#define KVM_CPUID_MAX 256
#define KVM_CPUID_FILE_MAX (80 + KVM_CPUID_MAX * KVM_CPUID_ENTRY_SIZE + 4)

/* What the cached answer is bound to. */
struct kvm_cpuid_key {
    char boot_id[40];
    uint64_t ino, ctime_ns;
};

/* This boot's key: 0, or -1 if boot_id or /dev/kvm cannot be read. */
int kvm_cpuid_key_now(struct kvm_cpuid_key *k);
/* The file's bytes for c (c->nent <= KVM_CPUID_MAX) into buf (KVM_CPUID_FILE_MAX
 * bytes); returns the length. */
size_t kvm_cpuid_encode(const struct kvm_cpuid_key *k, const struct kvm_cpuid2 *c, uint8_t *buf);
/* Checks buf[0..len) and, if it holds an answer for key k, copies it into out (room for
 * KVM_CPUID_MAX entries): 0, or -1 with err saying what is wrong. */
int kvm_cpuid_decode(const uint8_t *buf, size_t len, const struct kvm_cpuid_key *k, struct kvm_cpuid2 *out,
                     struct thaw_error *err);
/* KVM's supported CPUID into out (room for KVM_CPUID_MAX entries): from the file when
 * it holds this boot's answer (*from_cache true), else from kvm_fd's ioctl, which is
 * then written to the file. */
int kvm_cpuid_supported(int kvm_fd, struct kvm_cpuid2 *out, bool *from_cache, struct thaw_error *err);

#endif
