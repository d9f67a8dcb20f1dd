/* libFuzzer target: the worker protocol's decoder (frames from a hostile peer). The
 * first 4 bytes pick the message type, the rest is the payload. Whatever decodes must
 * encode back to exactly the same bytes: the encoding is canonical. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "host/sandbox/worker_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    uint32_t type = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;
    type %= 24;
    struct wp_msg *m = malloc(sizeof *m);
    struct thaw_error err;
    if (m && wp_decode(type, data + 4, size - 4, m, &err) == 0) {
        uint8_t *frame;
        size_t len;
        if (wp_encode(m, &frame, &len, &err) < 0)
            abort();
        if (len != size - 4 + WP_HEADER_SIZE || memcmp(frame + WP_HEADER_SIZE, data + 4, size - 4))
            abort();
        free(frame);
    }
    free(m);
    return 0;
}
