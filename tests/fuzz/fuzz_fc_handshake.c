/* libFuzzer target: the Firecracker handshake's region list (JSON from another process). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "host/pager/fc_handshake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fc_region r[8];
    size_t n = 0;
    struct thaw_error err;
    if (fc_regions_parse((const char *)data, size, r, 8, &n, 1ull << 30, &err) == 0) {
        if (n == 0 || n > 8)
            abort();
        for (size_t i = 0; i < n; i++)
            if (r[i].size == 0 || r[i].offset + r[i].size > (1ull << 30) || r[i].page_size != 4096)
                abort();
    }
    return 0;
}
