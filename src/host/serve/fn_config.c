#include "host/serve/fn_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *const fn_config_keys[] = {"restore", "keep_alive_ms", "keep_alive_policy", "hybrid_bin_ms",
                                      "min_instances", "max_instances", "queue_max", "queue_timeout_ms", "timeout_ms",
                                      "memory_mib", "warmup", NULL};

static const char *const restore_names[] = {"reap", "lazy", "copy", "boot", "share"};
#define RESTORE_NAMES (sizeof restore_names / sizeof restore_names[0])

const char *fn_restore_name(enum fn_restore r)
{
    return (unsigned)r < RESTORE_NAMES ? restore_names[r] : "?";
}

void fn_config_default(struct fn_config *c)
{
    memset(c, 0, sizeof *c);
    c->restore = FN_RESTORE_REAP;
    c->keep_alive_ms = 60000;
    strcpy(c->keep_alive_policy, "fixed");
    c->hybrid_bin_ms = 60000;
    c->min_instances = 0;
    c->max_instances = 4;
    c->queue_max = 64;
    c->queue_timeout_ms = 10000;
    c->timeout_ms = 30000;
    c->memory_mib = 0;
}

struct range {
    const char *key;
    uint64_t lo, hi;
};
static const struct range ranges[] = {
    {"keep_alive_ms", 0, 7ull * 24 * 3600 * 1000}, {"min_instances", 0, 64}, {"max_instances", 1, 64},
    {"queue_max", 0, 100000},   {"queue_timeout_ms", 0, 3600 * 1000},  {"timeout_ms", 1, 3600 * 1000},
    {"memory_mib", 0, 4096},    {"hybrid_bin_ms", 1, 3600 * 1000},     {"warmup", 0, 100},
};

static int set_number(struct fn_config *c, const char *key, uint64_t v, struct thaw_error *err)
{
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        if (strcmp(ranges[i].key, key))
            continue;
        if (v < ranges[i].lo || v > ranges[i].hi)
            return thaw_fail(err, "\"%s\" must be from %llu to %llu", key, (unsigned long long)ranges[i].lo,
                             (unsigned long long)ranges[i].hi);
        if (!strcmp(key, "keep_alive_ms"))
            c->keep_alive_ms = v;
        else if (!strcmp(key, "hybrid_bin_ms"))
            c->hybrid_bin_ms = v;
        else if (!strcmp(key, "min_instances"))
            c->min_instances = (uint32_t)v;
        else if (!strcmp(key, "max_instances"))
            c->max_instances = (uint32_t)v;
        else if (!strcmp(key, "queue_max"))
            c->queue_max = (uint32_t)v;
        else if (!strcmp(key, "queue_timeout_ms"))
            c->queue_timeout_ms = v;
        else if (!strcmp(key, "timeout_ms"))
            c->timeout_ms = v;
        else if (!strcmp(key, "warmup"))
            c->warmup = (uint32_t)v;
        else if (!strcmp(key, "memory_mib")) {
            if (v != 0 && (v < 16 || v % 2))
                return thaw_fail(err, "\"memory_mib\" must be 0 (the function's) or an even number from 16 to 4096");
            c->memory_mib = (uint32_t)v;
        }
        return 0;
    }
    return thaw_fail(err, "unknown configuration key \"%s\"", key);
}

static int set_string(struct fn_config *c, const char *key, const char *v, struct thaw_error *err)
{
    if (!strcmp(key, "restore")) {
        for (size_t i = 0; i < RESTORE_NAMES; i++)
            if (!strcmp(v, restore_names[i])) {
                c->restore = (enum fn_restore)i;
                return 0;
            }
        return thaw_fail(err, "\"restore\" must be reap, lazy, copy, boot or share");
    }
    if (!strcmp(key, "keep_alive_policy")) {
        if (!keepalive_known(v))
            return thaw_fail(err, "unknown keep-alive policy \"%.40s\"", v);
        strcpy(c->keep_alive_policy, v); /* known names fit */
        return 0;
    }
    return thaw_fail(err, "\"%s\" takes a number", key);
}

static bool is_string_key(const char *k)
{
    return !strcmp(k, "restore") || !strcmp(k, "keep_alive_policy");
}

static bool known_key(const char *k)
{
    for (size_t i = 0; fn_config_keys[i]; i++)
        if (!strcmp(fn_config_keys[i], k))
            return true;
    return false;
}

static int check_consistent(const struct fn_config *c, struct thaw_error *err)
{
    if (c->min_instances > c->max_instances)
        return thaw_fail(err, "\"min_instances\" (%u) exceeds \"max_instances\" (%u)", c->min_instances,
                         c->max_instances);
    return 0;
}

int fn_config_apply_json(struct fn_config *c, json_t *obj, struct thaw_error *err)
{
    if (!json_is_object(obj))
        return thaw_fail(err, "the configuration must be a JSON object");
    struct fn_config n = *c;
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        if (!known_key(key))
            return thaw_fail(err, "unknown configuration key \"%.60s\"", key);
        if (is_string_key(key)) {
            if (!json_is_string(v))
                return thaw_fail(err, "\"%s\" must be a string", key);
            if (set_string(&n, key, json_string_value(v), err) < 0)
                return -1;
        } else {
            if (!json_is_integer(v) || json_integer_value(v) < 0)
                return thaw_fail(err, "\"%s\" must be a non-negative integer", key);
            if (set_number(&n, key, (uint64_t)json_integer_value(v), err) < 0)
                return -1;
        }
    }
    if (check_consistent(&n, err) < 0)
        return -1;
    *c = n;
    return 0;
}

int fn_config_apply_text(struct fn_config *c, const char *key, const char *value, struct thaw_error *err)
{
    if (!known_key(key))
        return thaw_fail(err, "unknown configuration key \"%.60s\"", key);
    struct fn_config n = *c;
    if (is_string_key(key)) {
        if (set_string(&n, key, value, err) < 0)
            return -1;
    } else {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        if (!*value || *end || errno || value[0] == '-')
            return thaw_fail(err, "\"%s\" must be a non-negative integer", key);
        if (set_number(&n, key, v, err) < 0)
            return -1;
    }
    if (check_consistent(&n, err) < 0)
        return -1;
    *c = n;
    return 0;
}

json_t *fn_config_to_json(const struct fn_config *c)
{
    return json_pack("{s:s, s:I, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "restore", fn_restore_name(c->restore),
                     "keep_alive_ms", (json_int_t)c->keep_alive_ms, "keep_alive_policy", c->keep_alive_policy,
                     "hybrid_bin_ms", (json_int_t)c->hybrid_bin_ms,
                     "min_instances", (json_int_t)c->min_instances, "max_instances", (json_int_t)c->max_instances,
                     "queue_max", (json_int_t)c->queue_max, "queue_timeout_ms", (json_int_t)c->queue_timeout_ms,
                     "timeout_ms", (json_int_t)c->timeout_ms, "memory_mib", (json_int_t)c->memory_mib,
                     "warmup", (json_int_t)c->warmup);
}
