/* One lz4 block (liblz4's block API) of a file that stores its data compressed in blocks,
 * each decompressing to a size its own table states: ws.pages (docs/snapshot-format.md),
 * and any other file that wants the same. A block that does not compress well enough is
 * stored raw by the caller (lz4_block_pack says so by returning 0). Decompression is
 * bounded: a block that is malformed or decodes to any size but the stated one is refused. */
#ifndef THAW_HOST_LZ4_BLOCK_H
#define THAW_HOST_LZ4_BLOCK_H

#include <stddef.h>

#include "host/util/error.h"

/* The largest block lz4_block_pack accepts (liblz4's limit is ~2 GiB; ours is smaller). */
#define LZ4_BLOCK_MAX_INPUT (64u << 20)

/* Room dst needs for lz4_block_pack of len bytes (0 if len is out of range). */
size_t lz4_block_bound(size_t len);

/* Compresses src[0..len) into dst (cap >= lz4_block_bound(len)) at lz4's default (fast)
 * level. Returns the compressed size, or 0 if the block should be stored raw: it did not
 * compress to at most 7/8 of len (decompressing would cost more than reading the bytes
 * saved), or len is 0 or too large. */
size_t lz4_block_pack(const void *src, size_t len, void *dst, size_t cap);

/* Decompresses the len bytes at src into exactly want bytes at dst; -1 with one line in
 * err if the block fails to decode or decodes to another size (never writes past
 * dst + want, never reads past src + len). */
int lz4_block_unpack(const void *src, size_t len, void *dst, size_t want, struct thaw_error *err);

#endif
