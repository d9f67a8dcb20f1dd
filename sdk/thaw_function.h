/* thaw's C function SDK: a header-only helper for native functions.
 *
 * A function serves invocations through /dev/invoke: each read() returns one whole
 * request, write()s append to the response, and the response is complete when the
 * function reads again. The first read is the ready point: initialise before it.
 * A request is never split: a read() whose buffer is too small fails with EMSGSIZE,
 * and ioctl(fd, FIONREAD, &int) then gives the request's size. Requests are at most
 * THAW_MAX_REQUEST_DEFAULT bytes (1 MiB) unless function.json sets "max_request_kib".
 *
 * The JSON helpers read flat objects such as {"name": "x", "mib": 4}: enough for the
 * sample functions, not a general parser. */
#ifndef THAW_FUNCTION_H
#define THAW_FUNCTION_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* The host's default request limit (include/thaw/abi.h, docs/functions.md). */
#define THAW_MAX_REQUEST_DEFAULT (1u << 20)

/* Opens the invocation channel; -1 on failure. */
static inline int thaw_open(void)
{
    return open("/dev/invoke", O_RDWR);
}

/* Appends bytes to the current response. */
static inline int thaw_respond(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* The size of the request a read() refused with EMSGSIZE; -1 on error. */
static inline ssize_t thaw_pending_size(int fd)
{
    int n = 0;
    return ioctl(fd, FIONREAD, &n) < 0 ? -1 : (ssize_t)n;
}

/* Waits for the next request; returns its length (0 = no more requests, -1 = error).
 * The request is NUL-terminated in buf. A request that does not fit in cap - 1 bytes
 * is answered with {"error": "request of N bytes is larger than ..."} and skipped. */
static inline ssize_t thaw_next(int fd, char *buf, size_t cap)
{
    for (;;) {
        ssize_t n;
        do {
            n = read(fd, buf, cap - 1);
        } while (n < 0 && errno == EINTR);
        if (n >= 0) {
            buf[n] = 0;
            return n;
        }
        if (errno != EMSGSIZE)
            return -1;
        ssize_t size = thaw_pending_size(fd);
        char *all = size > 0 ? malloc((size_t)size) : NULL;
        if (!all || read(fd, all, (size_t)size) != size) {
            free(all);
            return -1;
        }
        free(all);
        char msg[160];
        int m = snprintf(msg, sizeof msg, "{\"error\": \"request of %zd bytes is larger than this function's %zu-byte buffer\"}",
                         size, cap - 1);
        if (thaw_respond(fd, msg, (size_t)m) != 0)
            return -1;
    }
}

/* Like thaw_next, with a malloc'd buffer (*buf, *cap; both may start 0) that grows to
 * fit every request. */
static inline ssize_t thaw_next_alloc(int fd, char **buf, size_t *cap)
{
    if (!*buf) {
        *cap = 64 * 1024;
        if (!(*buf = malloc(*cap)))
            return -1;
    }
    for (;;) {
        ssize_t n;
        do {
            n = read(fd, *buf, *cap - 1);
        } while (n < 0 && errno == EINTR);
        if (n >= 0) {
            (*buf)[n] = 0;
            return n;
        }
        ssize_t size = errno == EMSGSIZE ? thaw_pending_size(fd) : -1;
        if (size < 0)
            return -1;
        char *bigger = realloc(*buf, (size_t)size + 1);
        if (!bigger)
            return -1;
        *buf = bigger;
        *cap = (size_t)size + 1;
    }
}

/* Finds "key": in a flat JSON object and returns a pointer to its value, or NULL. */
static inline const char *thaw_json_find(const char *json, const char *key)
{
    size_t klen = strlen(key);
    for (const char *p = json; (p = strchr(p, '"')); p++) {
        if (strncmp(p + 1, key, klen) == 0 && p[1 + klen] == '"') {
            const char *v = p + 2 + klen;
            while (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r')
                v++;
            if (*v != ':')
                continue;
            v++;
            while (*v == ' ' || *v == '\t' || *v == '\n' || *v == '\r')
                v++;
            return v;
        }
    }
    return NULL;
}

/* Copies a string value (escapes \" and \\ understood) into out; -1 if absent. */
static inline int thaw_json_string(const char *json, const char *key, char *out, size_t cap)
{
    const char *v = thaw_json_find(json, key);
    if (!v || *v != '"' || cap == 0)
        return -1;
    size_t n = 0;
    for (v++; *v && *v != '"'; v++) {
        if (*v == '\\' && v[1])
            v++;
        if (n + 1 < cap)
            out[n++] = *v;
    }
    out[n] = 0;
    return *v == '"' ? 0 : -1;
}

/* Reads a non-negative integer value; -1 if absent or malformed. */
static inline int thaw_json_u64(const char *json, const char *key, uint64_t *out)
{
    const char *v = thaw_json_find(json, key);
    if (!v || *v < '0' || *v > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno)
        return -1;
    *out = x;
    return 0;
}

/* Reads an integer value: def if the key is absent, -1 if the value is malformed. */
static inline long thaw_json_int(const char *json, const char *key, long def)
{
    const char *v = thaw_json_find(json, key);
    if (!v)
        return def;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    return end == v || errno ? -1 : x;
}

/* The whole request loop for a function whose answer fits in resp_cap bytes:
 * handle(req, resp) writes the response for one request and returns its length.
 * With THAW_INVOKE_PATH set (host testing), reads one request from that file, writes
 * the response to stdout and returns. Returns the process exit status. */
static inline int thaw_serve(size_t (*handle)(const char *req, char *resp), size_t resp_cap)
{
    char *req = NULL, *resp = malloc(resp_cap);
    size_t req_cap = 0;
    const char *path = getenv("THAW_INVOKE_PATH");
    int fd = path ? open(path, O_RDONLY) : thaw_open();
    if (!resp || fd < 0) {
        perror(path ? path : "/dev/invoke");
        return 1;
    }
    struct stat st;
    if (path && fstat(fd, &st) == 0 && !(req = malloc((req_cap = (size_t)st.st_size + 1)))) /* the whole file */
        return 1;
    for (;;) {
        ssize_t n = thaw_next_alloc(fd, &req, &req_cap); /* the first read is the ready point */
        if (n < 0) {
            perror("read");
            return 1;
        }
        if (n == 0 && !path)
            return 0;
        size_t len = handle(req, resp);
        if (len >= resp_cap)
            len = resp_cap - 1;
        if (thaw_respond(path ? 1 : fd, resp, len) != 0) {
            perror("write");
            return 1;
        }
        if (path)
            return 0;
    }
}

#endif
