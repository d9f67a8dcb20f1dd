#include "host/util/lz4_block.h"

#include <lz4.h>

size_t lz4_block_bound(size_t len)
{
    if (len == 0 || len > LZ4_BLOCK_MAX_INPUT)
        return 0;
    return (size_t)LZ4_compressBound((int)len);
}

size_t lz4_block_pack(const void *src, size_t len, void *dst, size_t cap)
{
    size_t bound = lz4_block_bound(len);
    if (bound == 0 || cap < bound)
        return 0;
    int n = LZ4_compress_default(src, dst, (int)len, (int)bound);
    if (n <= 0 || (size_t)n > len - len / 8)
        return 0;
    return (size_t)n;
}

int lz4_block_unpack(const void *src, size_t len, void *dst, size_t want, struct thaw_error *err)
{
    if (len == 0 || len > LZ4_BLOCK_MAX_INPUT || want == 0 || want > LZ4_BLOCK_MAX_INPUT)
        return thaw_fail(err, "lz4 block of %zu bytes for %zu is out of range", len, want);
    int n = LZ4_decompress_safe(src, dst, (int)len, (int)want);
    if (n < 0)
        return thaw_fail(err, "lz4 block of %zu bytes is damaged (it does not decode into %zu bytes)", len, want);
    if ((size_t)n != want)
        return thaw_fail(err, "lz4 block decodes to %d bytes, not the %zu it claims", n, want);
    return 0;
}
