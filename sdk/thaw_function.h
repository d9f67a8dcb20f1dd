/* thaw's C function SDK: a header-only helper for native functions.
 *
 * A function serves invocations through /dev/invoke: each read() returns one whole
 * request, write()s append to the response, and the response is complete when the
 * function reads again. The first read is the ready point: initialise before it.
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
#include <string.h>
#include <unistd.h>

/* Opens the invocation channel; -1 on failure. */
static inline int thaw_open(void)
{
    return open("/dev/invoke", O_RDWR);
}

/* Waits for the next request; returns its length (0 = no more requests, -1 = error).
 * The request is NUL-terminated in buf. */
static inline ssize_t thaw_next(int fd, char *buf, size_t cap)
{
    ssize_t n;
    do {
        n = read(fd, buf, cap - 1);
    } while (n < 0 && errno == EINTR);
    if (n >= 0)
        buf[n] = 0;
    return n;
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

#define THAW_MAX_REQUEST (16u << 20)

/* The whole request loop for a function whose answer fits in resp_cap bytes:
 * handle(req, resp) writes the response for one request and returns its length.
 * With THAW_INVOKE_PATH set (host testing), reads one request from that file, writes
 * the response to stdout and returns. Returns the process exit status. */
static inline int thaw_serve(size_t (*handle)(const char *req, char *resp), size_t resp_cap)
{
    char *req = malloc(THAW_MAX_REQUEST + 1), *resp = malloc(resp_cap);
    const char *path = getenv("THAW_INVOKE_PATH");
    int fd = path ? open(path, O_RDONLY) : thaw_open();
    if (!req || !resp || fd < 0) {
        perror(path ? path : "/dev/invoke");
        return 1;
    }
    for (;;) {
        ssize_t n = thaw_next(fd, req, THAW_MAX_REQUEST + 1); /* the first read is the ready point */
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
