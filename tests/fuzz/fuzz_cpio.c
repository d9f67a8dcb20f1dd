/* libFuzzer target for the cpio newc reader: walks the archive and touches every
 * byte it hands out, so ASan reports any entry that points outside the input. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/cpio.h"

#define MAX_ENTRIES 100000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    struct cpio_entry e;
    volatile uint8_t sink = 0;
    for (int n = 0; n < MAX_ENTRIES; n++) {
        size_t before = off;
        int rc = cpio_next(data, size, &off, &e);
        if (rc <= 0) {
            if (rc < 0 && off != before)
                abort(); /* errors must not move the cursor */
            break;
        }
        if (off <= before || off > size)
            abort(); /* every entry must make progress and stay inside the input */
        for (size_t i = 0; i < e.name_len; i++)
            sink ^= (uint8_t)e.name[i];
        for (uint64_t i = 0; i < e.size; i++)
            sink ^= e.data[i];
    }
    (void)sink;
    return 0;
}
