#include "host/vmm/kvm_stats.h"

#include <fcntl.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static const char *const NAMES[KVM_COUNTERS] = {"exits", "pf_taken", "pf_fixed", "insn_emulation"};

/* Bounds on what a kernel may say, far above what any does (48-byte names, ~50 vCPU
 * counters, a few KiB of data). */
#define MAX_NAME 256u
#define MAX_DESC 4096u
#define MAX_SPAN (1u << 20)

/* The bytes of a header's descriptors, 0 if the header is out of bounds. */
static size_t descs_bytes(const struct kvm_stats_header *h)
{
    if (h->name_size == 0 || h->name_size > MAX_NAME || h->num_desc > MAX_DESC)
        return 0;
    return (size_t)h->num_desc * (sizeof(struct kvm_stats_desc) + h->name_size);
}

int kvm_stats_layout(const void *header, size_t header_len, const void *descs, size_t descs_len,
                     struct kvm_stats *s)
{
    for (int k = 0; k < KVM_COUNTERS; k++)
        s->off[k] = -1;
    s->span = 0;
    struct kvm_stats_header h;
    if (header_len < sizeof h)
        return -1;
    memcpy(&h, header, sizeof h);
    size_t need = descs_bytes(&h);
    if (!need || descs_len < need)
        return -1;
    size_t each = sizeof(struct kvm_stats_desc) + h.name_size;
    const uint8_t *p = descs;
    for (uint32_t i = 0; i < h.num_desc; i++) {
        struct kvm_stats_desc d;
        memcpy(&d, p + i * each, sizeof d);
        const char *name = (const char *)(p + i * each + sizeof d);
        if (!memchr(name, 0, h.name_size))
            return -1; /* a name must end inside its field */
        for (int k = 0; k < KVM_COUNTERS; k++) {
            if (strcmp(name, NAMES[k]))
                continue;
            /* One cumulative u64, inside the bounds. */
            if (d.size != 1 || (d.flags & KVM_STATS_TYPE_MASK) != KVM_STATS_TYPE_CUMULATIVE ||
                d.offset % 8 || d.offset > MAX_SPAN - 8)
                return -1;
            s->off[k] = d.offset;
            if (d.offset + 8 > s->span)
                s->span = d.offset + 8;
        }
    }
    s->data_offset = h.data_offset;
    return s->span ? 0 : -1;
}

int kvm_stats_open(int vcpu_fd, struct kvm_stats *s)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    int fd = ioctl(vcpu_fd, KVM_GET_STATS_FD, NULL);
    if (fd < 0)
        return -1;
    (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
    struct kvm_stats_header h;
    uint8_t *descs = NULL;
    int rc = -1;
    size_t len = pread(fd, &h, sizeof h, 0) == (ssize_t)sizeof h ? descs_bytes(&h) : 0;
    if (len && (descs = malloc(len)) && pread(fd, descs, len, h.desc_offset) == (ssize_t)len)
        rc = kvm_stats_layout(&h, sizeof h, descs, len, s);
    free(descs);
    if (rc < 0) {
        close(fd);
        return -1;
    }
    s->fd = fd;
    return 0;
}

bool kvm_stats_read(const struct kvm_stats *s, struct kvm_counters *out)
{
    memset(out, 0, sizeof *out);
    if (s->fd < 0)
        return false;
    uint8_t buf[4096], *b = s->span <= sizeof buf ? buf : malloc(s->span);
    if (!b)
        return false;
    bool ok = pread(s->fd, b, s->span, s->data_offset) == (ssize_t)s->span;
    for (int k = 0; ok && k < KVM_COUNTERS; k++)
        if (s->off[k] >= 0)
            memcpy(&out->v[k], b + s->off[k], 8);
    if (b != buf)
        free(b);
    return ok;
}

void kvm_counters_sub(const struct kvm_counters *b, const struct kvm_counters *a, struct kvm_counters *out)
{
    for (int k = 0; k < KVM_COUNTERS; k++)
        out->v[k] = b->v[k] - a->v[k];
}

void kvm_stats_close(struct kvm_stats *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}
