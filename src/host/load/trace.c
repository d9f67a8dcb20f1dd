/* The Azure Functions 2019 trace format (load.h): strict readers for its three files,
 * the function mapping, and the replay that turns per-minute counts into a schedule. */
#include "host/load/load.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "host/util/file.h"

#define MAX_FIELDS (4 + LOAD_TRACE_MINUTES_MAX + 1)
#define MAX_TRACE_FUNCTIONS 2000000u

/* ---- lines and fields ------------------------------------------------------------------ */

struct csv_reader {
    FILE *f;
    const char *path;
    unsigned long line;
    char *buf;
    size_t cap;
    char *fields[MAX_FIELDS];
    size_t nfields;
};

/* Reads the next line and splits it at commas (the dataset quotes nothing). Returns
 * 1 with fields set, 0 at the end, -1 on a line too wide. */
static int csv_next(struct csv_reader *r, struct thaw_error *err)
{
    ssize_t n = getline(&r->buf, &r->cap, r->f);
    if (n < 0)
        return 0;
    r->line++;
    while (n > 0 && (r->buf[n - 1] == '\n' || r->buf[n - 1] == '\r'))
        r->buf[--n] = 0;
    r->nfields = 0;
    char *p = r->buf;
    for (;;) {
        if (r->nfields == MAX_FIELDS)
            return thaw_fail(err, "%s:%lu: more than %u fields", r->path, r->line, MAX_FIELDS);
        r->fields[r->nfields++] = p;
        char *c = strchr(p, ',');
        if (!c)
            break;
        *c = 0;
        p = c + 1;
    }
    return 1;
}

/* The next data row: blank lines (e.g. at the end) are skipped, and a row must have
 * exactly want fields. Returns 1 with a row, 0 at the end, -1 with err. */
static int csv_next_row(struct csv_reader *r, size_t want, struct thaw_error *err)
{
    int rc;
    while ((rc = csv_next(r, err)) == 1) {
        if (r->nfields == 1 && r->fields[0][0] == 0)
            continue;
        if (r->nfields != want)
            return thaw_fail(err, "%s:%lu: %zu fields, expected %zu", r->path, r->line, r->nfields, want);
        return 1;
    }
    return rc;
}

static int csv_open(struct csv_reader *r, const char *path, struct thaw_error *err)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    r->f = fopen(path, "r");
    if (!r->f)
        return thaw_fail_errno(err, "cannot open %s", path);
    return 0;
}

static void csv_close(struct csv_reader *r)
{
    if (r->f)
        fclose(r->f);
    free(r->buf);
}

static int parse_count(const struct csv_reader *r, size_t i, uint32_t *out, struct thaw_error *err)
{
    const char *s = r->fields[i];
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno || s[0] == '-' || v > UINT32_MAX)
        return thaw_fail(err, "%s:%lu: field %zu ('%.20s') is not a count", r->path, r->line, i + 1, s);
    *out = (uint32_t)v;
    return 0;
}

static int parse_number(const struct csv_reader *r, size_t i, double *out, struct thaw_error *err)
{
    const char *s = r->fields[i];
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || v < 0)
        return thaw_fail(err, "%s:%lu: field %zu ('%.20s') is not a non-negative number", r->path, r->line,
                         i + 1, s);
    *out = v;
    return 0;
}

static int copy_name(const struct csv_reader *r, size_t i, char *dst, size_t cap, struct thaw_error *err)
{
    size_t n = strlen(r->fields[i]);
    if (n == 0 || n >= cap)
        return thaw_fail(err, "%s:%lu: field %zu is %s", r->path, r->line, i + 1, n ? "too long" : "empty");
    memcpy(dst, r->fields[i], n + 1);
    return 0;
}

static int expect_header(struct csv_reader *r, const char *const *names, size_t n, struct thaw_error *err)
{
    int rc = csv_next(r, err);
    if (rc < 0)
        return -1;
    if (rc == 0)
        return thaw_fail(err, "%s: empty file (no header)", r->path);
    if (r->nfields != n)
        return thaw_fail(err, "%s:1: header has %zu columns, expected %zu", r->path, r->nfields, n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(r->fields[i], names[i]))
            return thaw_fail(err, "%s:1: column %zu is '%.40s', expected '%s'", r->path, i + 1, r->fields[i],
                             names[i]);
    return 0;
}

/* ---- a hash index over (owner, app[, function]) ----------------------------------------- */

static uint64_t hash_str(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
    return (h ^ 0xff) * 0x100000001b3ull;
}

struct index {
    size_t *slots; /* function index + 1, 0 = empty */
    size_t mask;
};

static uint64_t key_hash(const struct load_trace_function *f, bool with_function)
{
    uint64_t h = hash_str(hash_str(0xcbf29ce484222325ull, f->owner), f->app);
    return with_function ? hash_str(h, f->function) : h;
}

static int index_build(struct index *ix, const struct load_trace *t, bool with_function, struct thaw_error *err)
{
    size_t cap = 16;
    while (cap < t->count * 2)
        cap *= 2;
    ix->slots = calloc(cap, sizeof *ix->slots);
    if (!ix->slots)
        return thaw_fail(err, "out of memory for the trace index");
    ix->mask = cap - 1;
    for (size_t i = 0; i < t->count; i++) {
        size_t h = key_hash(&t->functions[i], with_function) & ix->mask;
        while (ix->slots[h])
            h = (h + 1) & ix->mask;
        ix->slots[h] = i + 1;
    }
    return 0;
}

/* Calls fn for every function matching the key (every function of an app when
 * with_function is false). */
static void index_each(const struct index *ix, const struct load_trace *t, const struct load_trace_function *key,
                       bool with_function, void (*fn)(struct load_trace_function *, void *), void *arg)
{
    size_t h = key_hash(key, with_function) & ix->mask;
    while (ix->slots[h]) {
        struct load_trace_function *f = &t->functions[ix->slots[h] - 1];
        if (!strcmp(f->owner, key->owner) && !strcmp(f->app, key->app) &&
            (!with_function || !strcmp(f->function, key->function)))
            fn(f, arg);
        h = (h + 1) & ix->mask;
    }
}

/* ---- the three files ---------------------------------------------------------------------- */

static int read_invocations(struct load_trace *t, const char *path, struct thaw_error *err)
{
    struct csv_reader r;
    if (csv_open(&r, path, err) < 0)
        return -1;
    int rc = csv_next(&r, err);
    if (rc <= 0) {
        if (rc == 0)
            thaw_fail(err, "%s: empty file (no header)", path);
        goto fail;
    }
    static const char *const first[] = {"HashOwner", "HashApp", "HashFunction", "Trigger"};
    if (r.nfields < 5) {
        thaw_fail(err, "%s:1: header has %zu columns, expected HashOwner,HashApp,HashFunction,Trigger,1,2,...",
                  path, r.nfields);
        goto fail;
    }
    for (size_t i = 0; i < 4; i++)
        if (strcmp(r.fields[i], first[i])) {
            thaw_fail(err, "%s:1: column %zu is '%.40s', expected '%s'", path, i + 1, r.fields[i], first[i]);
            goto fail;
        }
    t->minutes = (uint32_t)(r.nfields - 4);
    if (t->minutes > LOAD_TRACE_MINUTES_MAX) {
        thaw_fail(err, "%s:1: %u minute columns, at most %u (one day)", path, t->minutes, LOAD_TRACE_MINUTES_MAX);
        goto fail;
    }
    for (uint32_t m = 0; m < t->minutes; m++) {
        char want[16];
        snprintf(want, sizeof want, "%u", m + 1);
        if (strcmp(r.fields[4 + m], want)) {
            thaw_fail(err, "%s:1: column %u is '%.20s', expected minute '%s'", path, m + 5, r.fields[4 + m], want);
            goto fail;
        }
    }
    size_t cap = 0;
    while ((rc = csv_next_row(&r, 4 + (size_t)t->minutes, err)) == 1) {
        if (t->count == cap) {
            if (cap >= MAX_TRACE_FUNCTIONS) {
                thaw_fail(err, "%s:%lu: more than %u functions", path, r.line, MAX_TRACE_FUNCTIONS);
                goto fail;
            }
            size_t ncap = cap ? cap * 2 : 256;
            struct load_trace_function *nf = realloc(t->functions, ncap * sizeof *nf);
            if (!nf) {
                thaw_fail(err, "out of memory reading %s", path);
                goto fail;
            }
            t->functions = nf;
            cap = ncap;
        }
        struct load_trace_function *f = &t->functions[t->count];
        memset(f, 0, sizeof *f);
        f->per_minute = calloc(t->minutes, sizeof *f->per_minute);
        if (!f->per_minute) {
            thaw_fail(err, "out of memory reading %s", path);
            goto fail;
        }
        t->count++;
        if (copy_name(&r, 0, f->owner, sizeof f->owner, err) < 0 ||
            copy_name(&r, 1, f->app, sizeof f->app, err) < 0 ||
            copy_name(&r, 2, f->function, sizeof f->function, err) < 0 ||
            copy_name(&r, 3, f->trigger, sizeof f->trigger, err) < 0)
            goto fail;
        for (uint32_t m = 0; m < t->minutes; m++) {
            if (parse_count(&r, 4 + m, &f->per_minute[m], err) < 0)
                goto fail;
            f->total += f->per_minute[m];
        }
    }
    if (rc < 0)
        goto fail;
    csv_close(&r);
    return 0;
fail:
    csv_close(&r);
    return -1;
}

/* The numbers of one row of a durations or memory file, after its key columns. */
#define ROW_NUMBERS_MAX (4 + LOAD_TRACE_DURATION_PCTS > 2 + LOAD_TRACE_MEMORY_PCTS ? 4 + LOAD_TRACE_DURATION_PCTS \
                                                                               : 2 + LOAD_TRACE_MEMORY_PCTS)

static void attach_duration(struct load_trace_function *f, void *arg)
{
    const double *v = arg;
    f->has_duration = true;
    f->duration_avg_ms = v[0];
    f->duration_count = v[1];
    f->duration_min_ms = v[2];
    f->duration_max_ms = v[3];
    memcpy(f->duration_pct_ms, v + 4, sizeof f->duration_pct_ms);
}

static void attach_memory(struct load_trace_function *f, void *arg)
{
    const double *v = arg;
    f->has_memory = true;
    f->memory_samples = v[0];
    f->memory_avg_mb = v[1];
    memcpy(f->memory_pct_mb, v + 2, sizeof f->memory_pct_mb);
}

/* A durations or memory file: the header names, then rows keyed by owner and app (and
 * function when by_function), numbers after the key; each row's numbers go to attach
 * for every function of the trace that its key names. */
static int read_keyed_numbers(struct load_trace *t, const struct index *ix, const char *path,
                              const char *const names[], size_t n, bool by_function,
                              void (*attach)(struct load_trace_function *, void *), struct thaw_error *err)
{
    const size_t keys = by_function ? 3 : 2;
    struct csv_reader r;
    if (csv_open(&r, path, err) < 0)
        return -1;
    int rc = expect_header(&r, names, n, err);
    if (rc < 0)
        goto fail;
    while ((rc = csv_next_row(&r, n, err)) == 1) {
        struct load_trace_function key;
        double v[ROW_NUMBERS_MAX] = {0};
        if (copy_name(&r, 0, key.owner, sizeof key.owner, err) < 0 ||
            copy_name(&r, 1, key.app, sizeof key.app, err) < 0 ||
            (by_function && copy_name(&r, 2, key.function, sizeof key.function, err) < 0))
            goto fail;
        for (size_t i = keys; i < n; i++)
            if (parse_number(&r, i, &v[i - keys], err) < 0)
                goto fail;
        index_each(ix, t, &key, by_function, attach, v);
    }
    if (rc < 0)
        goto fail;
    csv_close(&r);
    return 0;
fail:
    csv_close(&r);
    return -1;
}

static int read_durations(struct load_trace *t, const struct index *ix, const char *path, struct thaw_error *err)
{
    static const char *const names[] = {"HashOwner", "HashApp", "HashFunction", "Average", "Count",
                                        "Minimum", "Maximum", "percentile_Average_0", "percentile_Average_1",
                                        "percentile_Average_25", "percentile_Average_50",
                                        "percentile_Average_75", "percentile_Average_99",
                                        "percentile_Average_100"};
    _Static_assert(sizeof names / sizeof names[0] == 3 + 4 + LOAD_TRACE_DURATION_PCTS, "durations columns");
    return read_keyed_numbers(t, ix, path, names, sizeof names / sizeof names[0], true, attach_duration, err);
}

static int read_memory(struct load_trace *t, const struct index *ix, const char *path, struct thaw_error *err)
{
    static const char *const names[] = {"HashOwner", "HashApp", "SampleCount", "AverageAllocatedMb",
                                        "AverageAllocatedMb_pct1", "AverageAllocatedMb_pct5",
                                        "AverageAllocatedMb_pct25", "AverageAllocatedMb_pct50",
                                        "AverageAllocatedMb_pct75", "AverageAllocatedMb_pct95",
                                        "AverageAllocatedMb_pct99", "AverageAllocatedMb_pct100"};
    _Static_assert(sizeof names / sizeof names[0] == 2 + 2 + LOAD_TRACE_MEMORY_PCTS, "memory columns");
    return read_keyed_numbers(t, ix, path, names, sizeof names / sizeof names[0], false, attach_memory, err);
}

int load_trace_read(struct load_trace *t, const char *invocations_csv, const char *durations_csv,
                    const char *memory_csv, struct thaw_error *err)
{
    memset(t, 0, sizeof *t);
    if (read_invocations(t, invocations_csv, err) < 0)
        goto fail;
    if (durations_csv || memory_csv) {
        struct index fn_ix = {0}, app_ix = {0};
        int rc = 0;
        if (durations_csv)
            rc = index_build(&fn_ix, t, true, err) < 0 || read_durations(t, &fn_ix, durations_csv, err) < 0 ? -1 : 0;
        if (rc == 0 && memory_csv)
            rc = index_build(&app_ix, t, false, err) < 0 || read_memory(t, &app_ix, memory_csv, err) < 0 ? -1 : 0;
        free(fn_ix.slots);
        free(app_ix.slots);
        if (rc < 0)
            goto fail;
    }
    return 0;
fail:
    load_trace_free(t);
    return -1;
}

/* The first file in dir named prefix*suffix (sorted), as a malloc'd path. */
static char *find_file(const char *dir, const char *prefix, const char *suffix)
{
    struct dirent **list;
    int n = scandir(dir, &list, NULL, alphasort);
    if (n < 0)
        return NULL;
    char *found = NULL;
    size_t pl = strlen(prefix), sl = strlen(suffix);
    for (int i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        size_t l = strlen(name);
        if (!found && l >= pl + sl && !strncmp(name, prefix, pl) && !strcmp(name + l - sl, suffix)) {
            size_t len = strlen(dir) + l + 2;
            found = malloc(len);
            if (found)
                snprintf(found, len, "%s/%s", dir, name);
        }
        free(list[i]);
    }
    free(list);
    return found;
}

int load_trace_read_dir(struct load_trace *t, const char *dir, struct thaw_error *err)
{
    memset(t, 0, sizeof *t);
    char *inv = find_file(dir, "invocations_per_function_md.anon.d", ".csv");
    if (!inv)
        return thaw_fail(err, "%s: no invocations_per_function_md.anon.dNN.csv", dir);
    char *dur = find_file(dir, "function_durations_percentiles.anon.d", ".csv");
    char *mem = find_file(dir, "app_memory_percentiles.anon.d", ".csv");
    int rc = load_trace_read(t, inv, dur, mem, err);
    free(inv);
    free(dur);
    free(mem);
    return rc;
}

void load_trace_free(struct load_trace *t)
{
    for (size_t i = 0; i < t->count; i++)
        free(t->functions[i].per_minute);
    free(t->functions);
    memset(t, 0, sizeof *t);
}

/* ---- mapping -------------------------------------------------------------------------------- */

static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r' || s[n - 1] == '\n'))
        s[--n] = 0;
    return s;
}

int load_mapping_read(struct load_mapping *m, const char *path, struct thaw_error *err)
{
    memset(m, 0, sizeof *m);
    FILE *f = fopen(path, "r");
    if (!f)
        return thaw_fail_errno(err, "cannot open %s", path);
    char dir[512];
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    char *line = NULL;
    size_t cap = 0, mcap = 0;
    unsigned long lineno = 0;
    while (getline(&line, &cap, f) > 0) {
        lineno++;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        char *s = trim(line);
        if (!*s)
            continue;
        char *fields[3] = {NULL, NULL, NULL};
        size_t n = 0;
        for (char *p = s; p && n < 3; n++) {
            fields[n] = p;
            p = strchr(p, ',');
            if (p)
                *p++ = 0;
            if (n == 2 && p) {
                thaw_fail(err, "%s:%lu: more than 3 fields (trace_function,thaw_function[,payload_file])", path,
                          lineno);
                goto fail;
            }
        }
        if (n < 2) {
            thaw_fail(err, "%s:%lu: expected trace_function,thaw_function[,payload_file]", path, lineno);
            goto fail;
        }
        if (m->count == mcap) {
            size_t ncap = mcap ? mcap * 2 : 16;
            struct load_mapping_entry *ne = realloc(m->entries, ncap * sizeof *ne);
            if (!ne) {
                thaw_fail(err, "out of memory reading %s", path);
                goto fail;
            }
            m->entries = ne;
            mcap = ncap;
        }
        struct load_mapping_entry *e = &m->entries[m->count];
        memset(e, 0, sizeof *e);
        const char *tn = trim(fields[0]), *fn = trim(fields[1]), *pl = fields[2] ? trim(fields[2]) : "";
        if (!*tn || strlen(tn) >= sizeof e->trace_name) {
            thaw_fail(err, "%s:%lu: bad trace function name", path, lineno);
            goto fail;
        }
        if (!*fn || strlen(fn) >= sizeof e->function || strspn(fn, "abcdefghijklmnopqrstuvwxyz0123456789_-") != strlen(fn)) {
            thaw_fail(err, "%s:%lu: bad thaw function name '%.64s'", path, lineno, fn);
            goto fail;
        }
        strcpy(e->trace_name, tn);
        strcpy(e->function, fn);
        if (*pl) {
            int w = pl[0] == '/' ? snprintf(e->payload_path, sizeof e->payload_path, "%s", pl)
                                 : snprintf(e->payload_path, sizeof e->payload_path, "%s/%s", dir, pl);
            if (w < 0 || (size_t)w >= sizeof e->payload_path) {
                thaw_fail(err, "%s:%lu: payload path too long", path, lineno);
                goto fail;
            }
        }
        m->count++;
    }
    free(line);
    fclose(f);
    if (m->count == 0)
        return thaw_fail(err, "%s: no mappings", path);
    return 0;
fail:
    free(line);
    fclose(f);
    load_mapping_free(m);
    return -1;
}

void load_mapping_free(struct load_mapping *m)
{
    free(m->entries);
    memset(m, 0, sizeof *m);
}

/* ---- replay ----------------------------------------------------------------------------------- */

static int cmp_event(const void *a, const void *b)
{
    const struct load_event *x = a, *y = b;
    if (x->at_us != y->at_us)
        return x->at_us < y->at_us ? -1 : 1;
    return x->function < y->function ? -1 : x->function > y->function;
}

static int load_payload(struct load_target *t, const char *path, struct thaw_error *err)
{
    if (!*path)
        return 0;
    uint8_t *data;
    size_t size;
    if (read_file(path, 64u << 20, &data, &size, err) < 0)
        return -1;
    t->payload = (char *)data;
    t->payload_len = size;
    return 0;
}

int load_schedule_replay(struct load_schedule *s, const struct load_trace *t, const struct load_mapping *m,
                         const struct load_replay_config *cfg, size_t *unmapped, struct thaw_error *err)
{
    memset(s, 0, sizeof *s);
    *unmapped = 0;
    if (!(cfg->minute_seconds > 0) || cfg->minute_seconds > 3600)
        return thaw_fail(err, "a trace minute must last more than 0 and at most 3600 seconds");
    if (cfg->first_minute >= t->minutes)
        return thaw_fail(err, "first minute %u is past the trace's %u minutes", cfg->first_minute + 1, t->minutes);
    uint32_t end = cfg->minutes ? cfg->first_minute + cfg->minutes : t->minutes;
    if (end > t->minutes)
        end = t->minutes;
    /* Targets: one per mapped trace function. */
    size_t stars = 0, next_star = 0;
    for (size_t i = 0; i < m->count; i++)
        stars += !strcmp(m->entries[i].trace_name, "*");
    uint64_t total = 0;
    s->targets = calloc(t->count ? t->count : 1, sizeof *s->targets);
    int32_t *target_of = malloc((t->count ? t->count : 1) * sizeof *target_of);
    if (!s->targets || !target_of) {
        free(target_of);
        load_schedule_free(s);
        return thaw_fail(err, "out of memory for the replay");
    }
    for (size_t i = 0; i < t->count; i++) {
        const struct load_mapping_entry *e = NULL;
        for (size_t j = 0; j < m->count && !e; j++)
            if (!strcmp(m->entries[j].trace_name, t->functions[i].function))
                e = &m->entries[j];
        if (!e && stars) {
            size_t k = next_star++ % stars;
            for (size_t j = 0; j < m->count; j++)
                if (!strcmp(m->entries[j].trace_name, "*") && k-- == 0) {
                    e = &m->entries[j];
                    break;
                }
        }
        target_of[i] = -1;
        if (!e) {
            ++*unmapped;
            continue;
        }
        struct load_target *tg = &s->targets[s->target_count];
        snprintf(tg->trace_name, sizeof tg->trace_name, "%s", t->functions[i].function);
        snprintf(tg->function, sizeof tg->function, "%s", e->function);
        if (load_payload(tg, e->payload_path, err) < 0) {
            free(target_of);
            load_schedule_free(s);
            return -1;
        }
        target_of[i] = (int32_t)s->target_count++;
        for (uint32_t mi = cfg->first_minute; mi < end; mi++)
            total += t->functions[i].per_minute[mi];
    }
    if (total > 50000000u) {
        free(target_of);
        load_schedule_free(s);
        return thaw_fail(err, "the window holds %llu invocations, over the 50 million a replay holds",
                         (unsigned long long)total);
    }
    s->events = malloc((total ? total : 1) * sizeof *s->events);
    if (!s->events) {
        free(target_of);
        load_schedule_free(s);
        return thaw_fail(err, "out of memory for %llu invocations", (unsigned long long)total);
    }
    uint32_t max_count = 1;
    for (size_t i = 0; i < t->count; i++)
        for (uint32_t mi = cfg->first_minute; mi < end; mi++)
            if (target_of[i] >= 0 && t->functions[i].per_minute[mi] > max_count)
                max_count = t->functions[i].per_minute[mi];
    double *cum = malloc(max_count * sizeof *cum);
    if (!cum) {
        free(target_of);
        load_schedule_free(s);
        return thaw_fail(err, "out of memory for the replay");
    }
    struct load_rng r;
    load_rng_seed(&r, cfg->seed);
    double minute_us = cfg->minute_seconds * 1e6;
    for (size_t i = 0; i < t->count; i++) {
        if (target_of[i] < 0)
            continue;
        const struct load_trace_function *f = &t->functions[i];
        uint64_t dur = f->has_duration ? (uint64_t)(f->duration_pct_ms[3] * 1000.0) : 0;
        for (uint32_t mi = cfg->first_minute; mi < end; mi++) {
            uint32_t c = f->per_minute[mi];
            if (!c)
                continue;
            /* c arrivals inside the minute, count kept exact: c + 1 gaps from the
             * distribution, scaled so that they fill the minute (for exponential
             * gaps this is a Poisson process conditioned on its count). */
            double base = (double)(mi - cfg->first_minute) * minute_us;
            double sum = 0;
            size_t first = s->count;
            for (uint32_t k = 0; k < c; k++) {
                sum += load_gap_s(&r, cfg->within, 1.0);
                cum[k] = sum;
            }
            sum += load_gap_s(&r, cfg->within, 1.0);
            for (uint32_t k = 0; k < c; k++)
                s->events[first + k] = (struct load_event){.at_us = (uint64_t)(base + cum[k] / sum * minute_us),
                                                           .function = (uint32_t)target_of[i],
                                                           .minute = mi,
                                                           .duration_us = dur};
            s->count += c;
        }
    }
    free(cum);
    free(target_of);
    qsort(s->events, s->count, sizeof *s->events, cmp_event);
    s->span_us = (uint64_t)((double)(end - cfg->first_minute) * minute_us);
    return 0;
}

void load_trace_target_memory(const struct load_trace *t, const struct load_schedule *s, double *mb)
{
    /* Targets were made in the trace's row order, so one pass pairs them up. */
    size_t j = 0;
    for (size_t i = 0; i < s->target_count; i++) {
        mb[i] = 0;
        while (j < t->count && strcmp(t->functions[j].function, s->targets[i].trace_name))
            j++;
        if (j < t->count) {
            mb[i] = t->functions[j].has_memory ? t->functions[j].memory_avg_mb : 0;
            j++;
        }
    }
}
