/* libFuzzer target for the snapshot state file decoder. Each input is decoded twice:
 * as is, and with its header size field, trailer magic and CRC repaired, so that
 * mutations reach the section table and payload checks instead of stopping at the
 * checksum. Whatever decodes must satisfy the decoder's promises and survive an
 * encode/decode round trip unchanged. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "host/function/bundle.h"
#include "host/snapshot/state_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct snapshot_state decoded, again;

static void check_error(const struct thaw_error *err)
{
    if (err->msg[0] == 0 || strchr(err->msg, '\n'))
        abort(); /* every error is one non-empty line */
}

static void check_one(const uint8_t *data, size_t size)
{
    struct thaw_error err;
    err.msg[0] = 0;
    if (state_file_decode(data, size, &decoded, &err) < 0) {
        check_error(&err);
        return;
    }
    const struct snapshot_monitor_state *m = &decoded.monitor;
    if (decoded.msr_count > STATE_FILE_MAX_MSRS || m->vcpu_count != 1 ||
        !memchr(m->function_name, 0, sizeof m->function_name) || !bundle_name_valid(m->function_name) ||
        m->mem_size % (2ull << 20) != 0 || m->pending_invoke_gpa >= m->mem_size)
        abort();
    uint8_t *enc;
    size_t enc_len;
    if (state_file_encode(&decoded, &enc, &enc_len, &err) < 0)
        abort(); /* anything the decoder accepts must encode */
    if (state_file_decode(enc, enc_len, &again, &err) < 0)
        abort();
    if (memcmp(&decoded, &again, sizeof decoded) != 0)
        abort();
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_one(data, size);

    const size_t hdr = STATE_FILE_HEADER_SIZE, trl = STATE_FILE_TRAILER_SIZE;
    if (size < hdr + trl || size > (64u << 10))
        return 0;
    uint8_t *fixed = malloc(size);
    if (!fixed)
        return 0;
    memcpy(fixed, data, size);
    for (int i = 0; i < 8; i++)
        fixed[24 + i] = (uint8_t)((uint64_t)size >> (8 * i));
    memcpy(fixed + size - 4, STATE_FILE_TRAILER_MAGIC, 4);
    uint32_t crc = (uint32_t)crc32_z(crc32_z(0L, Z_NULL, 0), fixed, size - trl);
    for (int i = 0; i < 4; i++)
        fixed[size - trl + (size_t)i] = (uint8_t)(crc >> (8 * i));
    check_one(fixed, size);
    free(fixed);
    return 0;
}
