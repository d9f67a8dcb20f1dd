/* Guest output to log lines: the guest writes its stdout, stderr and kernel log in
 * chunks of any size; this cuts them into lines as they arrive and hands each to the
 * instance's log callback, tagged with its id and the invocation in progress. A line
 * longer than GUEST_LOG_LINE_MAX is delivered in pieces. Internal to sandbox/. */
#ifndef THAW_HOST_GUEST_LOG_H
#define THAW_HOST_GUEST_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "host/sandbox/sandbox.h"

#define GUEST_LOG_LINE_MAX 4096

struct sandbox;

struct guest_log {
    struct sandbox *sb;
    char buf[3][GUEST_LOG_LINE_MAX];
    size_t len[3];
};

/* stream: 1 stdout, 2 stderr, 3 kernel log (anything else counts as stdout). */
void guest_log_write(struct guest_log *g, unsigned stream, const uint8_t *data, size_t len);
/* Delivers unterminated lines (at the end of an invocation and at teardown). */
void guest_log_flush(struct guest_log *g);

/* The default sink: "[<id> #<invocation>] line" (" kernel" after the number for the
 * guest kernel's log) on stderr, one write per line. */
void guest_log_stderr(void *ctx, const char *instance_id, uint64_t invocation, enum sandbox_stream stream,
                      const char *line, size_t len);

#endif
