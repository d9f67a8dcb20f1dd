#include "host/cli/common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/sandbox/sandbox_json.h"
#include "host/util/file.h"

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

int parse_timeout(const char *s, uint64_t *ns)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v) || v <= 0 || v > 86400)
        return -1;
    *ns = (uint64_t)(v * 1e9);
    return *ns ? 0 : -1;
}

int print_stats_json(struct sandbox *sb, const uint64_t *inv_ns, size_t n, const char *error)
{
    struct sandbox_stats st;
    struct thaw_error err;
    if (sandbox_stats(sb, &st, &err) < 0) {
        fprintf(stderr, "thaw: stats: %s\n", err.msg);
        return -1;
    }
    json_t *o = sandbox_stats_to_json(&st);
    json_t *a = json_array();
    int bad = !o || !a;
    for (size_t i = 0; i < n && !bad; i++)
        bad |= json_array_append_new(a, json_real((double)inv_ns[i] / 1e3));
    if (!bad)
        bad |= json_object_set_new(o, "invocations_us", a);
    else
        json_decref(a);
    if (!bad && error) {
        bad |= json_object_set_new(o, "failure", json_string(sandbox_failure_name(sandbox_last_failure(sb))));
        bad |= json_object_set_new(o, "error", json_string(error));
    }
    if (!bad)
        bad |= json_dumpf(o, stdout, SANDBOX_JSON_DUMP_FLAGS) < 0;
    json_decref(o);
    if (bad) {
        fprintf(stderr, "thaw: cannot encode the stats as JSON\n");
        return -1;
    }
    fputc('\n', stdout);
    fflush(stdout);
    return 0;
}

int cli_handle_signals(const char *cmd)
{
    struct thaw_error err;
    if (sandbox_handle_signals(&err) < 0) {
        fprintf(stderr, "thaw %s: %s\n", cmd, err.msg);
        return -1;
    }
    return 0;
}

int cli_exit_status(int rc)
{
    int sig = sandbox_interrupted();
    return sig ? 128 + sig : rc;
}

void print_invoke_failure(const char *cmd, struct sandbox *sb, size_t number, const char *msg)
{
    struct sandbox_stats st;
    struct thaw_error err;
    const char *fn = sandbox_stats(sb, &st, &err) == 0 ? st.function : "?";
    enum sandbox_failure f = sandbox_last_failure(sb);
    if (f == SANDBOX_FAIL_TIMEOUT || f == SANDBOX_FAIL_INTERRUPTED)
        fprintf(stderr, "thaw %s: %s: %s\n", cmd, fn, msg); /* the message names the invocation */
    else
        fprintf(stderr, "thaw %s: %s: invocation %zu: %s\n", cmd, fn, number, msg);
}
