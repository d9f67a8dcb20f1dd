#include "host/util/snap_identity.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "host/util/file.h"
#include "host/util/le.h"

int snap_random(void *buf, size_t len, struct thaw_error *err)
{
    uint8_t *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return thaw_fail_errno(err, "getrandom");
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int snap_identity_digest(struct snap_identity *id, const uint8_t *state, size_t len, struct thaw_error *err)
{
    /* Nettle's SHA-256, not OpenSSL's: OpenSSL's first digest in a process loads its
     * configuration and providers, 1.4-2 ms of CPU (6.7 ms with a cold page cache) on
     * every CLI restore's critical path; Nettle's costs 15 us for a state file. */
    (void)err;
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, len, state);
    sha256_digest(&ctx, SNAP_DIGEST_SIZE, id->digest);
    return 0;
}

bool snap_identity_equal(const struct snap_identity *a, const struct snap_identity *b)
{
    return memcmp(a->id, b->id, SNAP_ID_SIZE) == 0 && memcmp(a->digest, b->digest, SNAP_DIGEST_SIZE) == 0;
}

void snap_identity_str(const struct snap_identity *id, char *buf, size_t len)
{
    snprintf(buf, len, "id %02x%02x%02x%02x.., state sha256 %02x%02x%02x%02x..", id->id[0], id->id[1], id->id[2],
             id->id[3], id->digest[0], id->digest[1], id->digest[2], id->digest[3]);
}

void snap_identity_put(uint8_t *p, const struct snap_identity *id)
{
    memcpy(p, id->id, SNAP_ID_SIZE);
    memcpy(p + SNAP_ID_SIZE, id->digest, SNAP_DIGEST_SIZE);
}

void snap_identity_get(const uint8_t *p, struct snap_identity *id)
{
    memcpy(id->id, p, SNAP_ID_SIZE);
    memcpy(id->digest, p + SNAP_ID_SIZE, SNAP_DIGEST_SIZE);
}

#define TRAILER_MAGIC "THAWMEMT"
#define TRAILER_CRC_AT (24u + SNAP_IDENTITY_SIZE)

void memory_trailer_encode(uint8_t out[MEMORY_TRAILER_SIZE], uint64_t mem_size, const struct snap_identity *id)
{
    memset(out, 0, MEMORY_TRAILER_SIZE);
    memcpy(out, TRAILER_MAGIC, 8);
    put_le16(out + 8, MEMORY_FORMAT_MAJOR);
    put_le16(out + 10, MEMORY_FORMAT_MINOR);
    put_le32(out + 12, 4096);
    put_le64(out + 16, mem_size);
    snap_identity_put(out + 24, id);
    put_le32(out + TRAILER_CRC_AT, (uint32_t)crc32_z(0, out, TRAILER_CRC_AT));
}

int memory_trailer_read(int fd, uint64_t file_size, const char *path, uint64_t *mem_size, struct snap_identity *id,
                        struct thaw_error *err)
{
    uint8_t t[MEMORY_TRAILER_SIZE];
    if (file_size < 2 * (uint64_t)MEMORY_TRAILER_SIZE || file_size % 4096)
        return thaw_fail(err, "%s: %llu bytes is not an image plus its 4 KiB trailer (a memory file from an "
                              "older thaw? take the snapshot again)",
                         path, (unsigned long long)file_size);
    if (pread_full(fd, t, sizeof t, file_size - MEMORY_TRAILER_SIZE) < 0)
        return thaw_fail_errno(err, "cannot read the trailer of %s", path);
    if (memcmp(t, TRAILER_MAGIC, 8))
        return thaw_fail(err, "%s has no identity trailer (a memory file from an older thaw? take the snapshot "
                              "again)",
                         path);
    unsigned major = get_le16(t + 8), minor = get_le16(t + 10);
    if (major != MEMORY_FORMAT_MAJOR)
        return thaw_fail(err, "%s: memory file format %u.%u, this thaw reads %u.x: take the snapshot again", path,
                         major, minor, MEMORY_FORMAT_MAJOR);
    if (get_le32(t + TRAILER_CRC_AT) != (uint32_t)crc32_z(0, t, TRAILER_CRC_AT))
        return thaw_fail(err, "%s: trailer checksum mismatch", path);
    *mem_size = get_le64(t + 16);
    if (get_le32(t + 12) != 4096 || *mem_size != file_size - MEMORY_TRAILER_SIZE)
        return thaw_fail(err, "%s: trailer says %llu bytes of memory, the file holds %llu", path,
                         (unsigned long long)*mem_size, (unsigned long long)(file_size - MEMORY_TRAILER_SIZE));
    snap_identity_get(t + 24, id);
    return 0;
}

int memory_trailer_read_path(const char *path, uint64_t *mem_size, struct snap_identity *id, struct thaw_error *err)
{
    int fd = file_open_regular(AT_FDCWD, path, O_RDONLY, RESOLVE_NO_SYMLINKS, err);
    if (fd < 0)
        return -1;
    struct stat sb;
    int rc = fstat(fd, &sb) < 0 ? thaw_fail_errno(err, "cannot stat %s", path)
                                : memory_trailer_read(fd, (uint64_t)sb.st_size, path, mem_size, id, err);
    close(fd);
    return rc;
}
