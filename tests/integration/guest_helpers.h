/* Helpers for integration tests that boot real microVMs through the lifecycle layer
 * (host/sandbox/sandbox.h). */
#ifndef THAW_TEST_GUEST_HELPERS_H
#define THAW_TEST_GUEST_HELPERS_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/sandbox/sandbox.h"

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

/* Guest output collected in memory, one line after another. */
struct guest_output {
    char text[16384];
    size_t len;
};

static inline void guest_output_collect(void *ctx, const char *id, uint64_t invocation, enum sandbox_stream stream,
                                        const char *line, size_t len)
{
    (void)id;
    (void)invocation;
    (void)stream;
    struct guest_output *o = ctx;
    int n = snprintf(o->text + o->len, sizeof o->text - o->len, "%.*s\n", (int)len, line);
    if (n > 0)
        o->len += (size_t)n < sizeof o->text - o->len ? (size_t)n : sizeof o->text - o->len - 1;
}

/* Boots function dir from the repository (build/ unless THAW_BUILD_DIR says otherwise);
 * guest output goes into out if it is not NULL. Returns the instance or NULL with err. */
static inline struct sandbox *boot_function(const char *dir, struct guest_output *out, struct thaw_error *err)
{
    setenv("THAW_BUILD_DIR", "build", 0);
    struct sandbox_options opt = {.log = out ? guest_output_collect : NULL, .log_ctx = out};
    struct sandbox *sb;
    return sandbox_boot(&sb, dir, &opt, err) == 0 ? sb : NULL;
}

/* Invokes with a string payload; returns the malloc'd NUL-terminated response or NULL. */
static inline char *invoke_str(struct sandbox *sb, const char *payload, struct thaw_error *err)
{
    uint8_t *resp;
    size_t len;
    if (sandbox_invoke(sb, payload, strlen(payload), &resp, &len, err) < 0)
        return NULL;
    return (char *)resp;
}

#endif
