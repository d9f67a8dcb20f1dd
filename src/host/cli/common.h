/* Pieces shared by the subcommands: booting a function directory and collecting
 * payload arguments. */
#ifndef THAW_CLI_COMMON_H
#define THAW_CLI_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host/function/bundle.h"
#include "host/vmm/instance.h"

struct cli_function {
    struct bundle bundle;
    uint8_t *kernel;
    size_t kernel_size;
};

/* Loads function dir and boots it to its ready point. */
int cli_boot(const char *dir, long memory_mib, bool trace_syscalls, struct cli_function *fn,
             struct instance *inst, struct thaw_error *err);
void cli_function_free(struct cli_function *fn);

struct payloads {
    char **data;
    size_t *len;
    bool *owned;
    size_t n;
};
int payloads_init(struct payloads *p, int argc);
int payloads_add_arg(struct payloads *p, char *json);
int payloads_add_file(struct payloads *p, const char *path, struct thaw_error *err);
void payloads_free(struct payloads *p);

/* Prints a response on stdout, newline-terminated. */
void print_response(const uint8_t *resp, size_t len);

#endif
