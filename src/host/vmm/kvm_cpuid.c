#include "host/vmm/kvm_cpuid.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "host/util/host_cache.h"
#include "host/util/le.h"
#include "host/vmm/vm.h"

#define MAGIC "THAWCPUI"
#define VERSION 1
#define HEAD 80 /* magic 8, version 4, n 4, boot_id 40, ino 8, ctime 8, reserved 8 */
#define ENTRY KVM_CPUID_ENTRY_SIZE

static uint32_t crc_of(const uint8_t *p, size_t n)
{
    return (uint32_t)crc32_z(crc32_z(0L, Z_NULL, 0), p, n);
}

void kvm_cpuid_entry_put(uint8_t *p, const struct kvm_cpuid_entry2 *e)
{
    const uint32_t w[10] = {e->function, e->index, e->flags,      e->eax,       e->ebx,
                            e->ecx,      e->edx,   e->padding[0], e->padding[1], e->padding[2]};
    for (int k = 0; k < 10; k++)
        put_le32(p + 4 * k, w[k]);
}

void kvm_cpuid_entry_get(const uint8_t *p, struct kvm_cpuid_entry2 *e)
{
    uint32_t *w[10] = {&e->function, &e->index, &e->flags,      &e->eax,       &e->ebx,
                       &e->ecx,      &e->edx,   &e->padding[0], &e->padding[1], &e->padding[2]};
    for (int k = 0; k < 10; k++)
        *w[k] = get_le32(p + 4 * k);
}

int kvm_cpuid_key_now(struct kvm_cpuid_key *k)
{
    memset(k, 0, sizeof *k);
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, k->boot_id, sizeof k->boot_id - 1);
    close(fd);
    if (n < 32)
        return -1;
    k->boot_id[strcspn(k->boot_id, "\n")] = 0; /* the rest is still zero */
    struct stat st;
    if (stat("/dev/kvm", &st) < 0)
        return -1;
    k->ino = (uint64_t)st.st_ino;
    k->ctime_ns = (uint64_t)st.st_ctim.tv_sec * 1000000000ull + (uint64_t)st.st_ctim.tv_nsec;
    return 0;
}

size_t kvm_cpuid_encode(const struct kvm_cpuid_key *k, const struct kvm_cpuid2 *c, uint8_t *buf)
{
    uint32_t n = c->nent <= KVM_CPUID_MAX ? c->nent : KVM_CPUID_MAX;
    memset(buf, 0, HEAD);
    memcpy(buf, MAGIC, 8);
    put_le32(buf + 8, VERSION);
    put_le32(buf + 12, n);
    memcpy(buf + 16, k->boot_id, sizeof k->boot_id);
    put_le64(buf + 56, k->ino);
    put_le64(buf + 64, k->ctime_ns);
    uint8_t *e = buf + HEAD;
    for (uint32_t i = 0; i < n; i++, e += ENTRY)
        kvm_cpuid_entry_put(e, &c->entries[i]);
    put_le32(e, crc_of(buf, (size_t)(e - buf)));
    return (size_t)(e - buf) + 4;
}

int kvm_cpuid_decode(const uint8_t *buf, size_t len, const struct kvm_cpuid_key *k, struct kvm_cpuid2 *out,
                     struct thaw_error *err)
{
    if (len < HEAD + 4 || memcmp(buf, MAGIC, 8) != 0)
        return thaw_fail(err, "not a thaw CPUID file");
    if (get_le32(buf + 8) != VERSION)
        return thaw_fail(err, "CPUID file version %u, expected %u", get_le32(buf + 8), VERSION);
    uint32_t n = get_le32(buf + 12);
    if (n == 0 || n > KVM_CPUID_MAX || len != HEAD + (size_t)n * ENTRY + 4)
        return thaw_fail(err, "CPUID file of %zu bytes for %u entries", len, n);
    if (get_le32(buf + len - 4) != crc_of(buf, len - 4))
        return thaw_fail(err, "CPUID file checksum mismatch");
    if (memcmp(buf + 16, k->boot_id, sizeof k->boot_id) != 0 || get_le64(buf + 56) != k->ino ||
        get_le64(buf + 64) != k->ctime_ns)
        return thaw_fail(err, "CPUID file from another boot or KVM module");
    const uint8_t *e = buf + HEAD;
    for (uint32_t i = 0; i < n; i++, e += ENTRY)
        kvm_cpuid_entry_get(e, &out->entries[i]);
    out->nent = n;
    return 0;
}

static bool load_cached(const char *dir, const char *name, const struct kvm_cpuid_key *k, struct kvm_cpuid2 *out)
{
    uint8_t *buf = malloc(KVM_CPUID_FILE_MAX + 1);
    ssize_t n = buf ? host_cache_read(dir, name, buf, KVM_CPUID_FILE_MAX + 1) : -1;
    struct thaw_error ignored;
    bool ok = n > 0 && kvm_cpuid_decode(buf, (size_t)n, k, out, &ignored) == 0;
    free(buf);
    return ok;
}

static void store(const char *dir, const char *name, const struct kvm_cpuid_key *k, const struct kvm_cpuid2 *c)
{
    uint8_t *buf = malloc(KVM_CPUID_FILE_MAX);
    if (!buf)
        return;
    host_cache_store(dir, name, buf, kvm_cpuid_encode(k, c, buf));
    free(buf);
}

int kvm_cpuid_supported(int kvm_fd, struct kvm_cpuid2 *out, bool *from_cache, struct thaw_error *err)
{
    char dir[4096];
    const char *name = NULL;
    struct kvm_cpuid_key k;
    bool cached = host_cache_path("THAW_CPUID_CACHE", "/run/thaw/kvm-cpuid", dir, sizeof dir, &name) &&
                  kvm_cpuid_key_now(&k) == 0;
    *from_cache = cached && load_cached(dir, name, &k, out);
    if (*from_cache)
        return 0;
    out->nent = KVM_CPUID_MAX;
    if (VM_IOCTL(kvm_fd, KVM_GET_SUPPORTED_CPUID, out, err) < 0)
        return -1;
    if (cached)
        store(dir, name, &k, out);
    return 0;
}
