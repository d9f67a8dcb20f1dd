#include "host/sandbox/guest_log.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "host/sandbox/sandbox_impl.h"

static void emit(struct guest_log *g, unsigned i)
{
    struct sandbox *sb = g->sb;
    sb->log(sb->log_ctx, sb->id, sb->invocation, (enum sandbox_stream)(i + 1), g->buf[i], g->len[i]);
    g->len[i] = 0;
}

void guest_log_write(struct guest_log *g, unsigned stream, const uint8_t *data, size_t len)
{
    unsigned i = stream >= 1 && stream <= 3 ? stream - 1 : 0;
    while (len) {
        const uint8_t *nl = memchr(data, '\n', len);
        size_t take = nl ? (size_t)(nl - data) : len;
        size_t room = GUEST_LOG_LINE_MAX - g->len[i];
        if (take > room)
            take = room;
        memcpy(g->buf[i] + g->len[i], data, take);
        g->len[i] += take;
        data += take;
        len -= take;
        if (len && *data == '\n') {
            data++;
            len--;
            emit(g, i);
        } else if (g->len[i] == GUEST_LOG_LINE_MAX) {
            emit(g, i);
        }
    }
}

void guest_log_flush(struct guest_log *g)
{
    for (unsigned i = 0; i < 3; i++)
        if (g->len[i])
            emit(g, i);
}

void guest_log_stderr(void *ctx, const char *instance_id, uint64_t invocation, enum sandbox_stream stream,
                      const char *line, size_t len)
{
    (void)ctx;
    char tag[SANDBOX_ID_MAX + 48];
    int n = snprintf(tag, sizeof tag, "[%s #%llu%s] ", instance_id, (unsigned long long)invocation,
                     stream == SANDBOX_KERNEL ? " kernel" : "");
    if (n < 0)
        return;
    struct iovec iov[3] = {{tag, (size_t)n < sizeof tag ? (size_t)n : sizeof tag - 1},
                           {(void *)line, len},
                           {(void *)"\n", 1}};
    ssize_t r;
    do
        r = writev(STDERR_FILENO, iov, 3);
    while (r < 0 && errno == EINTR);
}
