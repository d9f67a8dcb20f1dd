#include "host/cli/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cli_boot(const char *dir, long memory_mib, bool trace_syscalls, struct cli_function *fn,
             struct instance *inst, struct thaw_error *err)
{
    memset(fn, 0, sizeof *fn);
    char *build_dir = thaw_build_dir();
    char *kernel_path = NULL;
    int rc = -1;
    if (!build_dir || asprintf(&kernel_path, "%s/guest/kernel.elf", build_dir) < 0) {
        thaw_fail(err, "out of memory");
        goto out;
    }
    if (read_file(kernel_path, 16u << 20, &fn->kernel, &fn->kernel_size, err) < 0)
        goto out;
    if (bundle_load(&fn->bundle, dir, build_dir, err) < 0)
        goto out;
    struct instance_config cfg = {
        .kernel = fn->kernel, .kernel_size = fn->kernel_size,
        .program = fn->bundle.program, .program_size = fn->bundle.program_size,
        .argv = (const char *const *)fn->bundle.argv, .argc = fn->bundle.argc,
        .envp = (const char *const *)fn->bundle.envp, .envc = fn->bundle.envc,
        .archive = fn->bundle.archive, .archive_size = fn->bundle.archive_size,
        .mem_size = (uint64_t)(memory_mib > 0 ? (uint64_t)memory_mib : fn->bundle.memory_mib) << 20,
        .console_fd = STDERR_FILENO,
        .kernel_log = true,
        .trace_syscalls = trace_syscalls,
    };
    if (instance_boot(inst, &cfg, err) < 0) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        thaw_fail(err, "%s: %s", fn->bundle.name, why);
        goto out;
    }
    rc = 0;
out:
    if (rc < 0)
        cli_function_free(fn);
    free(kernel_path);
    free(build_dir);
    return rc;
}

void cli_function_free(struct cli_function *fn)
{
    bundle_free(&fn->bundle);
    free(fn->kernel);
    fn->kernel = NULL;
}

int payloads_init(struct payloads *p, int argc)
{
    memset(p, 0, sizeof *p);
    p->data = calloc((size_t)argc + 1, sizeof *p->data);
    p->len = calloc((size_t)argc + 1, sizeof *p->len);
    p->owned = calloc((size_t)argc + 1, sizeof *p->owned);
    return p->data && p->len && p->owned ? 0 : -1;
}

int payloads_add_arg(struct payloads *p, char *json)
{
    p->data[p->n] = json;
    p->len[p->n++] = strlen(json);
    return 0;
}

int payloads_add_file(struct payloads *p, const char *path, struct thaw_error *err)
{
    uint8_t *data;
    size_t len;
    if (read_file(path, 64u << 20, &data, &len, err) < 0)
        return -1;
    p->data[p->n] = (char *)data;
    p->owned[p->n] = true;
    p->len[p->n++] = len;
    return 0;
}

void payloads_free(struct payloads *p)
{
    for (size_t i = 0; i < p->n; i++)
        if (p->owned[i])
            free(p->data[i]);
    free(p->data);
    free(p->len);
    free(p->owned);
}

void print_response(const uint8_t *resp, size_t len)
{
    fwrite(resp, 1, len, stdout);
    if (!len || resp[len - 1] != '\n')
        fputc('\n', stdout);
    fflush(stdout);
}
