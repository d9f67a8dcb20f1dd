/* The per-request CSV. Column names follow In-Vitro's execution record (phase,
 * instance, invocationID, startTime, requestedDuration, responseTime, actualDuration)
 * plus thaw's start kind and latency breakdown; every time is in microseconds,
 * startTime since the Unix epoch. */
#include "host/load/load.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *const load_csv_columns[] = {
    "phase",        "instance",      "invocationID", "function",     "startTime",
    "scheduledTime", "requestedDuration", "responseTime", "actualDuration", "startKind",
    "queueTime",    "restoreTime",   "prefetchTime", "invocationTime", "httpStatus",
    "error",
};
#define NCOLS (sizeof load_csv_columns / sizeof load_csv_columns[0])

size_t load_csv_column_count(void) { return NCOLS; }

static const char *const start_names[LOAD_START_KINDS] = {
    [LOAD_START_UNKNOWN] = "unknown",     [LOAD_START_WARM] = "warm",
    [LOAD_START_COLD_REAP] = "cold-reap", [LOAD_START_COLD_LAZY] = "cold-lazy",
    [LOAD_START_COLD_COPY] = "cold-copy", [LOAD_START_COLD_BOOT] = "cold-boot",
    [LOAD_START_COLD_SHARE] = "cold-share",
};

const char *load_start_kind_name(enum load_start_kind k)
{
    return k < LOAD_START_KINDS ? start_names[k] : "unknown";
}

enum load_start_kind load_start_kind_parse(const char *s)
{
    for (int k = 1; k < LOAD_START_KINDS; k++)
        if (!strcmp(s, start_names[k]))
            return (enum load_start_kind)k;
    return LOAD_START_UNKNOWN;
}

void load_csv_write_header(FILE *f)
{
    for (size_t i = 0; i < NCOLS; i++)
        fprintf(f, "%s%s", i ? "," : "", load_csv_columns[i]);
    fputc('\n', f);
}

/* RFC 4180 quoting when the field needs it. */
static void put_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s == '\r' || *s == '\n' ? ' ' : *s, f);
    }
    fputc('"', f);
}

static void put_opt(FILE *f, int64_t v)
{
    if (v >= 0)
        fprintf(f, ",%lld", (long long)v);
    else
        fputs(",", f);
}

void load_csv_write_row(FILE *f, const struct load_record *r)
{
    put_field(f, r->phase);
    fputc(',', f);
    put_field(f, r->instance);
    fprintf(f, ",%llu,", (unsigned long long)r->invocation_id);
    put_field(f, r->function);
    fprintf(f, ",%llu,%llu,%llu,%llu,%llu,%s", (unsigned long long)r->start_unix_us,
            (unsigned long long)r->scheduled_us, (unsigned long long)r->requested_us,
            (unsigned long long)r->response_us, (unsigned long long)r->actual_us, load_start_kind_name(r->start));
    put_opt(f, r->queue_us);
    put_opt(f, r->restore_us);
    put_opt(f, r->prefetch_us);
    put_opt(f, r->invoke_us);
    fprintf(f, ",%d,", r->http_status);
    put_field(f, r->error);
    fputc('\n', f);
}

/* Splits one CSV line (quotes allowed) into at most max fields, in place. */
static size_t split_csv(char *line, char **fields, size_t max)
{
    size_t n = 0;
    char *p = line;
    for (;;) {
        if (n == max)
            return max + 1;
        char *out = p;
        fields[n++] = out;
        if (*p == '"') {
            p++;
            for (;;) {
                if (!*p)
                    break;
                if (*p == '"' && p[1] == '"') {
                    *out++ = '"';
                    p += 2;
                } else if (*p == '"') {
                    p++;
                    break;
                } else {
                    *out++ = *p++;
                }
            }
        } else {
            while (*p && *p != ',')
                *out++ = *p++;
        }
        if (*p != ',') {
            *out = 0;
            return n;
        }
        *out = 0;
        p++;
    }
}

static int num(const char *s, int64_t *out, bool optional)
{
    if (!*s && optional) {
        *out = -1;
        return 0;
    }
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno)
        return -1;
    *out = v;
    return 0;
}

int load_csv_read(const char *path, struct load_record **rows, size_t *count, struct thaw_error *err)
{
    *rows = NULL;
    *count = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return thaw_fail_errno(err, "cannot open %s", path);
    char *line = NULL;
    size_t cap = 0, rcap = 0;
    unsigned long lineno = 0;
    ssize_t len;
    char *fields[NCOLS + 1];
    while ((len = getline(&line, &cap, f)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        size_t n = split_csv(line, fields, NCOLS);
        if (lineno == 1) {
            bool ok = n == NCOLS;
            for (size_t i = 0; ok && i < NCOLS; i++)
                ok = !strcmp(fields[i], load_csv_columns[i]);
            if (!ok) {
                thaw_fail(err, "%s:1: not a thaw load CSV (header differs)", path);
                goto fail;
            }
            continue;
        }
        if (len == 0)
            continue;
        if (n != NCOLS) {
            thaw_fail(err, "%s:%lu: %zu fields, expected %zu", path, lineno, n > NCOLS ? n - 1 : n, NCOLS);
            goto fail;
        }
        if (*count == rcap) {
            size_t ncap = rcap ? rcap * 2 : 1024;
            struct load_record *nr = realloc(*rows, ncap * sizeof *nr);
            if (!nr) {
                thaw_fail(err, "out of memory reading %s", path);
                goto fail;
            }
            *rows = nr;
            rcap = ncap;
        }
        struct load_record *r = &(*rows)[*count];
        memset(r, 0, sizeof *r);
        int64_t v[9];
        int64_t status;
        if (strlen(fields[0]) >= sizeof r->phase || strlen(fields[1]) >= sizeof r->instance ||
            strlen(fields[3]) >= sizeof r->function || num(fields[2], &v[0], false) || num(fields[4], &v[1], false) ||
            num(fields[5], &v[2], false) || num(fields[6], &v[3], false) || num(fields[7], &v[4], false) ||
            num(fields[8], &v[5], false) || num(fields[10], &r->queue_us, true) ||
            num(fields[11], &r->restore_us, true) || num(fields[12], &r->prefetch_us, true) ||
            num(fields[13], &r->invoke_us, true) || num(fields[14], &status, false) || v[0] < 0 || v[1] < 0 ||
            v[2] < 0 || v[3] < 0 || v[4] < 0 || v[5] < 0) {
            thaw_fail(err, "%s:%lu: malformed row", path, lineno);
            goto fail;
        }
        strcpy(r->phase, fields[0]);
        strcpy(r->instance, fields[1]);
        strcpy(r->function, fields[3]);
        r->invocation_id = (uint64_t)v[0];
        r->start_unix_us = (uint64_t)v[1];
        r->scheduled_us = (uint64_t)v[2];
        r->requested_us = (uint64_t)v[3];
        r->response_us = (uint64_t)v[4];
        r->actual_us = (uint64_t)v[5];
        r->start = load_start_kind_parse(fields[9]);
        r->http_status = (int)status;
        snprintf(r->error, sizeof r->error, "%s", fields[15]);
        ++*count;
    }
    free(line);
    fclose(f);
    return 0;
fail:
    free(line);
    fclose(f);
    free(*rows);
    *rows = NULL;
    *count = 0;
    return -1;
}

void load_error_kind(const char *error, char *kind, size_t len)
{
    /* "http 503: queue full" -> "http 503"; "timeout after 30 s" -> "timeout". */
    if (!strncmp(error, "http ", 5)) {
        size_t n = 5 + strspn(error + 5, "0123456789");
        snprintf(kind, len, "%.*s", (int)n, error);
        return;
    }
    size_t n = strcspn(error, ":(");
    while (n && error[n - 1] == ' ')
        n--;
    snprintf(kind, len, "%.*s", (int)(n ? n : strlen(error)), error);
}
