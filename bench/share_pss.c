/* Memory of N instances of one function restored at the same time, one thread each, in
 * one process: their total PSS (smaps: a page mapped by k instances counts 1/k in each)
 * while all are alive, after every instance answered twice.
 *
 * usage: build/bench/share_pss SNAP copy|lazy|uffd|reap|share N [PAYLOAD]
 * Without PAYLOAD, SNAP must be memtouch's: instance i sends {"parts": N, "part": i,
 * "mib": 16, "write": 1} (it overwrites its own part of the arena and checks every other
 * part holds the snapshot's bytes), then the same with "write": 0 (checks again after all
 * instances wrote); an answer with bad_words other than 0 is a failure. With PAYLOAD,
 * every instance sends it twice and every answer must equal the first instance's first.
 * Prints one JSON line; exits 1 if any answer was wrong or a call failed. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/sandbox/sandbox.h"

#define MAX_N 64
#define MIB 16

struct inst {
    pthread_t t;
    int index, n;
    enum mem_mode mode;
    const char *snap, *payload;
    char *answer[2];
    struct sandbox_stats st;
    int ok;
    char err[512];
};

static pthread_barrier_t written, measured;

static void *run(void *arg)
{
    struct inst *in = arg;
    struct thaw_error err = {{0}};
    struct sandbox_options opt = {0};
    struct sandbox *sb = NULL;
    in->ok = sandbox_restore(&sb, in->snap, in->mode, &opt, &err) == 0;
    for (int round = 0; round < 2; round++) {
        char req[256];
        if (in->payload)
            snprintf(req, sizeof req, "%s", in->payload);
        else
            snprintf(req, sizeof req, "{\"parts\": %d, \"part\": %d, \"mib\": %d, \"write\": %d}", in->n, in->index,
                     MIB, round == 0);
        uint8_t *resp = NULL;
        size_t len = 0;
        if (in->ok && sandbox_invoke(sb, req, strlen(req), &resp, &len, &err) < 0)
            in->ok = 0;
        if (in->ok && (in->answer[round] = malloc(len + 1))) {
            memcpy(in->answer[round], resp, len);
            in->answer[round][len] = 0;
        }
        free(resp);
        if (round == 0) /* every instance wrote its part before any checks again */
            pthread_barrier_wait(&written);
    }
    if (in->ok && sandbox_stats(sb, &in->st, &err) < 0)
        in->ok = 0;
    if (!in->ok)
        snprintf(in->err, sizeof in->err, "%s", err.msg);
    pthread_barrier_wait(&measured); /* all alive while each reads its own smaps */
    pthread_barrier_wait(&measured);
    if (sb)
        sandbox_destroy(sb);
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    enum mem_mode mode;
    int n = argc >= 4 ? atoi(argv[3]) : 0;
    if (argc < 4 || argc > 5 || mem_mode_parse(argv[2], &mode) < 0 || n < 1 || n > MAX_N) {
        fprintf(stderr, "usage: %s SNAP copy|lazy|uffd|reap|share N [PAYLOAD]\n", argv[0]);
        return 2;
    }
    static struct inst in[MAX_N];
    pthread_barrier_init(&written, NULL, (unsigned)n);
    pthread_barrier_init(&measured, NULL, (unsigned)n + 1);
    for (int i = 0; i < n; i++) {
        in[i] = (struct inst){.index = i, .n = n, .mode = mode, .snap = argv[1], .payload = argc == 5 ? argv[4] : NULL};
        pthread_create(&in[i].t, NULL, run, &in[i]);
    }
    pthread_barrier_wait(&measured);
    uint64_t pss = 0, rss = 0, ws = 0, cold[MAX_N];
    int bad = 0;
    for (int i = 0; i < n; i++) {
        pss += in[i].st.pss_kb;
        rss += in[i].st.rss_kb;
        ws += in[i].st.ws_pages;
        cold[i] = in[i].st.restore_ns + in[i].st.first_invoke_ns;
        if (!in[i].ok) {
            fprintf(stderr, "instance %d: %s\n", i, in[i].err);
            bad++;
            continue;
        }
        for (int r = 0; r < 2; r++) {
            const char *a = in[i].answer[r];
            int right = a && (in[i].payload ? !strcmp(a, in[0].answer[0] ? in[0].answer[0] : "")
                                            : strstr(a, "\"bad_words\": 0}") != NULL);
            if (!right) {
                fprintf(stderr, "instance %d round %d answered %s\n", i, r + 1, a ? a : "(nothing)");
                bad++;
            }
        }
    }
    pthread_barrier_wait(&measured);
    for (int i = 0; i < n; i++) {
        pthread_join(in[i].t, NULL);
        free(in[i].answer[0]);
        free(in[i].answer[1]);
    }
    qsort(cold, (size_t)n, sizeof cold[0], cmp_u64);
    printf("{\"mode\": \"%s\", \"n\": %d, \"pss_kb\": %llu, \"rss_kb\": %llu, \"ws_pages\": %llu, "
           "\"cold_start_ms_median\": %.2f, \"wrong\": %d}\n",
           mem_mode_name(mode), n, (unsigned long long)pss, (unsigned long long)rss, (unsigned long long)ws,
           cold[n / 2] / 1e6, bad);
    return bad ? 1 : 0;
}
