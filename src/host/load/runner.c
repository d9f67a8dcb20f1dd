/* Sends requests to thaw serve with libcurl's multi interface: one thread, every
 * request in flight on its own connection, send times taken from the schedule (open
 * loop) or as soon as one finishes (closed loop). Each response's X-Thaw-* headers
 * become one record. */
#include "host/load/load.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define ERROR_BODY_MAX 2048

struct request {
    CURL *easy;
    struct curl_slist *headers;
    struct load_record rec;
    char body[ERROR_BODY_MAX + 1];
    size_t body_len;
    char url[512];
    bool in_use;
};

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t unix_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int64_t header_int(const char *v)
{
    char *end;
    long long x = strtoll(v, &end, 10);
    return end == v || x < 0 ? -1 : x;
}

static size_t on_header(char *buf, size_t size, size_t n, void *arg)
{
    struct request *q = arg;
    size_t len = size * n;
    char line[256];
    size_t l = len < sizeof line - 1 ? len : sizeof line - 1;
    memcpy(line, buf, l);
    line[l] = 0;
    line[strcspn(line, "\r\n")] = 0;
    char *colon = strchr(line, ':');
    if (!colon)
        return len;
    *colon = 0;
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (!strcasecmp(line, "X-Thaw-Instance"))
        snprintf(q->rec.instance, sizeof q->rec.instance, "%s", v);
    else if (!strcasecmp(line, "X-Thaw-Start"))
        q->rec.start = load_start_kind_parse(v);
    else if (!strcasecmp(line, "X-Thaw-Queue-Us"))
        q->rec.queue_us = header_int(v);
    else if (!strcasecmp(line, "X-Thaw-Restore-Us"))
        q->rec.restore_us = header_int(v);
    else if (!strcasecmp(line, "X-Thaw-Prefetch-Us"))
        q->rec.prefetch_us = header_int(v);
    else if (!strcasecmp(line, "X-Thaw-Invoke-Us"))
        q->rec.invoke_us = header_int(v);
    return len;
}

/* Keeps the start of the body (for error messages); the rest is discarded. */
static size_t on_body(char *buf, size_t size, size_t n, void *arg)
{
    struct request *q = arg;
    size_t len = size * n, room = ERROR_BODY_MAX - q->body_len;
    size_t k = len < room ? len : room;
    memcpy(q->body + q->body_len, buf, k);
    q->body_len += k;
    return len;
}

struct runner {
    const struct load_run_config *cfg;
    const struct load_schedule *s;
    CURLM *multi;
    struct request *reqs;
    size_t nreqs;
    FILE *csv;
    struct load_record *rows;
    size_t count, cap;
    uint64_t sent, errors, next_id;
    uint64_t t0;
};

static struct request *free_request(struct runner *r)
{
    for (size_t i = 0; i < r->nreqs; i++)
        if (!r->reqs[i].in_use)
            return &r->reqs[i];
    return NULL;
}

static int start_request(struct runner *r, const struct load_event *ev, uint64_t scheduled_us, struct thaw_error *err)
{
    struct request *q = free_request(r);
    if (!q)
        return thaw_fail(err, "internal: no free request slot");
    const struct load_target *t = &r->s->targets[ev ? ev->function : 0];
    if (!q->easy) {
        q->easy = curl_easy_init();
        if (!q->easy)
            return thaw_fail(err, "curl_easy_init failed");
        q->headers = curl_slist_append(NULL, "Content-Type: application/octet-stream");
        q->headers = curl_slist_append(q->headers, "Expect:");
        if (r->cfg->token) {
            char auth[600];
            snprintf(auth, sizeof auth, "Authorization: Bearer %s", r->cfg->token);
            q->headers = curl_slist_append(q->headers, auth);
        }
        if (!q->headers)
            return thaw_fail(err, "out of memory for request headers");
    }
    memset(&q->rec, 0, sizeof q->rec);
    q->rec.queue_us = q->rec.restore_us = q->rec.prefetch_us = q->rec.invoke_us = -1;
    snprintf(q->rec.phase, sizeof q->rec.phase, "%s", r->cfg->phase ? r->cfg->phase : "run");
    snprintf(q->rec.function, sizeof q->rec.function, "%s", t->function);
    q->rec.invocation_id = r->next_id++;
    q->rec.scheduled_us = scheduled_us;
    q->rec.requested_us = ev ? ev->duration_us : 0;
    q->body_len = 0;
    snprintf(q->url, sizeof q->url, "%s/invoke/%s", r->cfg->server, t->function);
    CURL *e = q->easy;
    curl_easy_setopt(e, CURLOPT_URL, q->url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->payload ? t->payload : "");
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)t->payload_len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, q->headers);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, q);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, q);
    curl_easy_setopt(e, CURLOPT_PRIVATE, q);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)(r->cfg->timeout_s * 1000));
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    q->rec.start_unix_us = unix_us();
    if (curl_multi_add_handle(r->multi, e) != CURLM_OK)
        return thaw_fail(err, "curl_multi_add_handle failed");
    q->in_use = true;
    r->sent++;
    return 0;
}

static void describe_http_error(struct request *q, long status)
{
    q->body[q->body_len] = 0;
    const char *why = NULL;
    json_t *j = json_loads(q->body, 0, NULL);
    if (j && json_is_string(json_object_get(j, "error")))
        why = json_string_value(json_object_get(j, "error"));
    snprintf(q->rec.error, sizeof q->rec.error, "http %ld: %s", status, why ? why : "(no error message)");
    json_decref(j);
}

static int finish(struct runner *r, CURLMsg *msg, struct thaw_error *err)
{
    struct request *q;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&q);
    curl_multi_remove_handle(r->multi, msg->easy_handle);
    q->in_use = false;
    curl_off_t total = 0;
    long status = 0;
    curl_easy_getinfo(q->easy, CURLINFO_TOTAL_TIME_T, &total);
    curl_easy_getinfo(q->easy, CURLINFO_RESPONSE_CODE, &status);
    q->rec.response_us = (uint64_t)total;
    q->rec.http_status = (int)status;
    q->rec.actual_us = q->rec.invoke_us > 0 ? (uint64_t)q->rec.invoke_us : 0;
    CURLcode rc = msg->data.result;
    if (rc == CURLE_OPERATION_TIMEDOUT)
        snprintf(q->rec.error, sizeof q->rec.error, "timeout after %.1f s", r->cfg->timeout_s);
    else if (rc == CURLE_COULDNT_CONNECT)
        snprintf(q->rec.error, sizeof q->rec.error, "connect: %s", curl_easy_strerror(rc));
    else if (rc != CURLE_OK)
        snprintf(q->rec.error, sizeof q->rec.error, "transport: %s", curl_easy_strerror(rc));
    else if (status >= 400 || status < 200)
        describe_http_error(q, status);
    if (q->rec.error[0])
        r->errors++;
    if (r->count == r->cap) {
        size_t ncap = r->cap ? r->cap * 2 : 1024;
        struct load_record *nr = realloc(r->rows, ncap * sizeof *nr);
        if (!nr)
            return thaw_fail(err, "out of memory for %zu records", ncap);
        r->rows = nr;
        r->cap = ncap;
    }
    r->rows[r->count++] = q->rec;
    if (r->csv)
        load_csv_write_row(r->csv, &q->rec);
    return 0;
}

static int drain(struct runner *r, size_t *inflight, struct thaw_error *err)
{
    int running;
    curl_multi_perform(r->multi, &running);
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(r->multi, &left)))
        if (msg->msg == CURLMSG_DONE) {
            if (finish(r, msg, err) < 0)
                return -1;
            --*inflight;
        }
    return 0;
}

int load_run(const struct load_run_config *cfg, const struct load_schedule *s, FILE *csv, struct load_record **rows,
             size_t *count, double *elapsed_s, struct thaw_error *err)
{
    *rows = NULL;
    *count = 0;
    *elapsed_s = 0;
    if (s->target_count == 0)
        return thaw_fail(err, "nothing to send: the schedule has no functions");
    bool closed = cfg->concurrency > 0;
    size_t slots = closed ? cfg->concurrency : (cfg->max_inflight ? cfg->max_inflight : 256);
    static bool curl_ready;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
            return thaw_fail(err, "curl_global_init failed");
        curl_ready = true;
    }
    struct runner r = {.cfg = cfg, .s = s, .csv = csv};
    r.multi = curl_multi_init();
    r.reqs = calloc(slots, sizeof *r.reqs);
    r.nreqs = slots;
    int rc = -1;
    if (!r.multi || !r.reqs) {
        thaw_fail(err, "out of memory for %zu requests in flight", slots);
        goto out;
    }
    curl_multi_setopt(r.multi, CURLMOPT_MAXCONNECTS, (long)slots);
    struct load_progress prog = {.out = cfg->progress, .tty = cfg->progress_tty, .every_s = 5.0};
    uint64_t total = closed ? cfg->max_requests : s->count;
    uint64_t closed_end_us = (uint64_t)(cfg->duration_s * 1e6);
    size_t next = 0, inflight = 0;
    r.t0 = mono_us();
    for (;;) {
        uint64_t now = mono_us() - r.t0;
        if (closed) {
            bool more = now < closed_end_us && (!cfg->max_requests || r.sent < cfg->max_requests);
            while (more && inflight < slots) {
                if (start_request(&r, NULL, now, err) < 0)
                    goto out;
                inflight++;
                more = !cfg->max_requests || r.sent < cfg->max_requests;
            }
            if (!more && inflight == 0)
                break;
        } else {
            /* Late requests (all slots busy) go as soon as a slot frees, keeping
             * their scheduled time in the record. */
            while (next < s->count && s->events[next].at_us <= now && inflight < slots) {
                if (start_request(&r, &s->events[next], s->events[next].at_us, err) < 0)
                    goto out;
                next++;
                inflight++;
            }
            if (next == s->count && inflight == 0)
                break;
        }
        if (drain(&r, &inflight, err) < 0)
            goto out;
        now = mono_us() - r.t0;
        if (cfg->progress)
            load_progress_update(&prog, (double)now / 1e6, r.sent, r.count, r.errors, total, (double)now / 1e6, false);
        int wait_ms = 100;
        if (!closed && next < s->count && inflight < slots) {
            uint64_t due = s->events[next].at_us;
            wait_ms = due <= now ? 0 : (int)((due - now + 999) / 1000);
            if (wait_ms > 100)
                wait_ms = 100;
        }
        if (wait_ms > 0)
            curl_multi_poll(r.multi, NULL, 0, wait_ms, NULL);
        if (drain(&r, &inflight, err) < 0)
            goto out;
    }
    *elapsed_s = (double)(mono_us() - r.t0) / 1e6;
    if (cfg->progress)
        load_progress_update(&prog, *elapsed_s, r.sent, r.count, r.errors, total ? total : r.sent, *elapsed_s, true);
    *rows = r.rows;
    *count = r.count;
    r.rows = NULL;
    rc = 0;
out:
    if (r.reqs) {
        for (size_t i = 0; i < r.nreqs; i++) {
            if (r.reqs[i].in_use)
                curl_multi_remove_handle(r.multi, r.reqs[i].easy);
            if (r.reqs[i].easy)
                curl_easy_cleanup(r.reqs[i].easy);
            curl_slist_free_all(r.reqs[i].headers);
        }
        free(r.reqs);
    }
    if (r.multi)
        curl_multi_cleanup(r.multi);
    free(r.rows);
    return rc;
}
