/* libFuzzer target for the static ELF loader: loads the input into a 64 MiB guest and
 * checks that whatever it accepts stays within the allowed window. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "host/vmm/elf_loader.h"

#define GUEST_SIZE (64ull << 20)
#define MIN_GPA 0x400000ull
#define PIE_BASE 0x1000000ull

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Allocated once: zeroing 64 MiB per input would dominate the run time. */
    static uint8_t *guest;
    if (!guest) {
        guest = calloc(1, GUEST_SIZE);
        if (!guest)
            abort();
    }
    struct elf_image img;
    char err[128];
    if (elf_load(data, size, guest, GUEST_SIZE, MIN_GPA, GUEST_SIZE, PIE_BASE, &img, err,
                 sizeof(err)) == 0) {
        if (img.entry < MIN_GPA || img.entry >= GUEST_SIZE)
            abort();
        if (img.lowest > img.entry || img.entry >= img.end || img.end > GUEST_SIZE)
            abort();
    }
    return 0;
}
