/* Helpers for integration tests that boot real microVMs through the monitor library. */
#ifndef THAW_TEST_GUEST_HELPERS_H
#define THAW_TEST_GUEST_HELPERS_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/function/bundle.h"
#include "host/vmm/instance.h"

/* Tests that need /dev/kvm say so loudly and count as skipped, never silently pass. */
static inline int kvm_available(void)
{
    int fd = open("/dev/kvm", O_RDWR);
    if (fd < 0) {
        fprintf(stderr, "\n*** SKIP: /dev/kvm is not usable here: microVM tests did not run ***\n\n");
        return 0;
    }
    close(fd);
    return 1;
}

struct booted {
    struct bundle bundle;
    uint8_t *kernel;
    size_t kernel_size;
    struct instance inst;
    int console_fd; /* guest output captured in a temp file */
    char console_path[64];
};

/* Boots function dir from the repository; returns 0 or -1 with err. */
static inline int boot_function(struct booted *b, const char *dir, struct thaw_error *err)
{
    memset(b, 0, sizeof *b);
    const char *build = getenv("THAW_BUILD_DIR") ? getenv("THAW_BUILD_DIR") : "build";
    char kpath[512];
    snprintf(kpath, sizeof kpath, "%s/guest/kernel.elf", build);
    if (read_file(kpath, 16u << 20, &b->kernel, &b->kernel_size, err) < 0)
        return -1;
    if (bundle_load(&b->bundle, dir, build, err) < 0) {
        free(b->kernel);
        return -1;
    }
    snprintf(b->console_path, sizeof b->console_path, "/tmp/thaw-test-console-XXXXXX");
    b->console_fd = mkstemp(b->console_path);
    struct instance_config cfg = {
        .kernel = b->kernel, .kernel_size = b->kernel_size,
        .program = b->bundle.program, .program_size = b->bundle.program_size,
        .argv = (const char *const *)b->bundle.argv, .argc = b->bundle.argc,
        .envp = (const char *const *)b->bundle.envp, .envc = b->bundle.envc,
        .archive = b->bundle.archive, .archive_size = b->bundle.archive_size,
        .mem_size = b->bundle.memory_mib << 20,
        .console_fd = b->console_fd, .kernel_log = true,
    };
    if (instance_boot(&b->inst, &cfg, err) < 0) {
        bundle_free(&b->bundle);
        free(b->kernel);
        close(b->console_fd);
        unlink(b->console_path);
        return -1;
    }
    return 0;
}

static inline void booted_free(struct booted *b)
{
    instance_destroy(&b->inst);
    bundle_free(&b->bundle);
    free(b->kernel);
    close(b->console_fd);
    unlink(b->console_path);
}

/* Invokes with a string payload; returns the malloc'd NUL-terminated response or NULL. */
static inline char *invoke_str(struct booted *b, const char *payload, struct thaw_error *err)
{
    uint8_t *resp;
    size_t len;
    if (instance_invoke(&b->inst, payload, strlen(payload), &resp, &len, err) < 0)
        return NULL;
    return (char *)resp;
}

#endif
