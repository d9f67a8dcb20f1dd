/* A vCPU's counters from KVM's binary statistics (KVM_GET_STATS_FD, Linux 5.14): what
 * the guest cost inside KVM, which KVM_RUN's returns to userspace do not show.
 *
 * Why: under nested PVM a REAP cold start's first invocation is mostly shadow-MMU exits
 * (a guest's first touch of each page: ~30 us each on session 13's machine) that never
 * reach the monitor. These counters say how many there were, per invocation.
 *
 * The descriptors are read once per vCPU at kvm_stats_open (before a worker's jail:
 * the ioctl is not in its filter); each kvm_stats_read is one pread of the data block. */
#ifndef THAW_HOST_KVM_STATS_H
#define THAW_HOST_KVM_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum kvm_counter {
    KVM_COUNTER_EXITS,     /* "exits": every exit from the guest, also those KVM handles itself */
    KVM_COUNTER_PF_TAKEN,  /* "pf_taken": guest page faults KVM handled (shadow-MMU faults here) */
    KVM_COUNTER_PF_FIXED,  /* "pf_fixed": of which a mapping was installed */
    KVM_COUNTER_EMULATED,  /* "insn_emulation": instructions KVM emulated */
    KVM_COUNTERS
};

struct kvm_counters {
    uint64_t v[KVM_COUNTERS];
};

struct kvm_stats {
    int fd;                       /* -1: none (a kernel without it, or not opened) */
    uint32_t data_offset;         /* of the data block in the fd */
    int64_t off[KVM_COUNTERS];    /* byte offset of each counter in the block, -1 if absent */
    uint32_t span;                /* bytes of the block read: up to the last counter's end */
};

/* Where the counters lie, from the stats fd's header and descriptors as read (hostile
 * until checked: sizes and offsets are bounded). header: struct kvm_stats_header's
 * bytes; descs: num_desc descriptors of sizeof(struct kvm_stats_desc) + name_size bytes.
 * 0, or -1 if they do not parse (then s is unusable). */
int kvm_stats_layout(const void *header, size_t header_len, const void *descs, size_t descs_len,
                     struct kvm_stats *s);
/* Opens vcpu_fd's stats fd and reads its layout: 0, or -1 with s->fd == -1 (nothing to
 * count with: the counters then read as unavailable, never as zero). */
int kvm_stats_open(int vcpu_fd, struct kvm_stats *s);
/* The counters now: true if read (absent ones read 0). */
bool kvm_stats_read(const struct kvm_stats *s, struct kvm_counters *out);
/* b - a, counter by counter. */
void kvm_counters_sub(const struct kvm_counters *b, const struct kvm_counters *a, struct kvm_counters *out);
void kvm_stats_close(struct kvm_stats *s);

#endif
