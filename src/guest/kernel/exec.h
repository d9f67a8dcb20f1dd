/* Program start: the dynamic program's interpreter (exec.c). */
#ifndef THAW_GUEST_EXEC_H
#define THAW_GUEST_EXEC_H
#include "kernel.h"

struct exec_interp {
    uint64_t base;  /* load address (AT_BASE) */
    uint64_t entry; /* where the program starts */
};

/* The program's PT_INTERP path in guest memory, or NULL for a static program. */
const char *exec_interp_path(const struct thaw_boot_info *bi);

/* Loads the program's interpreter from the file system; false for a static program.
 * Panics (the boot fails with that message) if the interpreter cannot be loaded. */
bool exec_load_interp(const struct thaw_boot_info *bi, struct exec_interp *out);

#endif
