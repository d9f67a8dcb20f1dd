#include "host/serve/serve.h"

#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "host/serve/serve_impl.h"
#include "host/serve/store.h"
#include "host/util/atomic_file.h"
#include "host/util/clock.h"
#include "host/util/file.h"
#include "host/util/tree.h"

#define REAPER_PERIOD_MS 50

void serve_options_default(struct serve_options *o)
{
    memset(o, 0, sizeof *o);
    o->listen = "127.0.0.1:8080";
    o->state_dir = "/var/lib/thaw";
    o->max_body_bytes = 6u << 20;
    o->max_upload_bytes = 256u << 20;
    o->max_unpacked_bytes = 1024u << 20;
    o->drain_timeout_ms = 30000;
    o->worker = true; /* every instance in its own jailed worker process */
    o->spare_workers = 2;
}

static int load_token(struct serve *s, struct thaw_error *err)
{
    if (!s->opt.token_file)
        return 0;
    uint8_t *text;
    size_t len;
    if (read_file(s->opt.token_file, 4096, &text, &len, err) < 0)
        return -1;
    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r' || text[len - 1] == ' '))
        len--;
    int rc = 0;
    if (len < 16 || len > TOKEN_MAX)
        rc = thaw_fail(err, "%s: the token must be 16-%d characters", s->opt.token_file, TOKEN_MAX);
    for (size_t i = 0; rc == 0 && i < len; i++)
        if (text[i] <= 0x20 || text[i] >= 0x7f)
            rc = thaw_fail(err, "%s: the token must be printable ASCII without spaces", s->opt.token_file);
    if (rc == 0) {
        memcpy(s->token, text, len);
        s->token[len] = 0;
    }
    memset(text, 0, len);
    free(text);
    return rc;
}

static void *reaper_main(void *arg)
{
    struct serve *s = arg;
    while (!atomic_load(&s->stop)) {
        pool_reap_all(s);
        struct timespec ts = {0, REAPER_PERIOD_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void free_all(struct serve *s)
{
    while (registry_count(s)) {
        pthread_mutex_lock(&s->reg_lock);
        struct function *f = s->n_fns ? s->fns[0] : NULL;
        if (f)
            f->refs++;
        pthread_mutex_unlock(&s->reg_lock);
        if (!f)
            break;
        registry_remove(s, f);
        function_put(f);
    }
    free(s->fns);
}

int serve_run(const struct serve_options *o, struct thaw_error *err)
{
    struct serve *s = calloc(1, sizeof *s);
    if (!s)
        return thaw_fail(err, "out of memory");
    s->opt = *o;
    s->started_ns = clock_now_ns();
    pthread_mutex_init(&s->reg_lock, NULL);
    pthread_mutex_init(&s->deploy_lock, NULL);
    int rc = -1;
    struct MHD_Daemon *d = NULL;
    bool reaper = false;
    if (tree_mkdir_p(o->state_dir, err) < 0)
        goto out;
    if (!realpath(o->state_dir, s->state_dir)) {
        thaw_fail_errno(err, "cannot open --state-dir %s", o->state_dir);
        goto out;
    }
    snprintf(s->functions_dir, sizeof s->functions_dir, "%s/functions", s->state_dir);
    if (load_token(s, err) < 0 || store_open(s, err) < 0)
        goto out;

    /* SIGINT/SIGTERM start a drain; every thread blocks them, this one waits. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    /* Cold starts take a worker already started, with its VM made (sandbox.h). */
    if (sandbox_keep_spares(o->spare_workers, o->worker, err) < 0)
        goto out;
    if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0) {
        thaw_fail(err, "cannot start the reaper thread");
        goto out;
    }
    reaper = true;
    uint16_t port;
    if (!(d = api_start(s, &port, err)))
        goto out;
    char url[300];
    char host[256];
    snprintf(host, sizeof host, "%s", o->listen);
    char *colon = strrchr(host, ':');
    if (colon)
        *colon = 0;
    int n = snprintf(url, sizeof url, "http://%s:%u\n", host, port);
    fprintf(stderr, "thaw serve: listening on %.*s (state %s, %zu functions%s)\n", n - 1, url, s->state_dir,
            registry_count(s), s->token[0] ? ", token required" : "");
    if (o->ready_file) {
        char dir[PATH_MAX], base[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", o->ready_file);
        char *sl = strrchr(dir, '/');
        snprintf(base, sizeof base, "%s", sl ? sl + 1 : dir);
        if (sl)
            *sl = 0;
        else
            snprintf(dir, sizeof dir, ".");
        if (write_file_atomic(dir, base, url, (size_t)n, err) < 0)
            goto out;
    }
    int sig = 0;
    while (sigwait(&sigs, &sig) != 0) {
    }
    fprintf(stderr, "thaw serve: signal %d: draining\n", sig);
    atomic_store(&s->draining, true);
    uint64_t deadline = clock_now_ns() + o->drain_timeout_ms * 1000000ull;
    while ((atomic_load(&s->in_flight) || atomic_load(&s->deploys_running)) && clock_now_ns() < deadline) {
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
    rc = 0;
    if (atomic_load(&s->in_flight) || atomic_load(&s->deploys_running)) {
        /* Stuck past the drain timeout: joining their threads could hang; the
         * process exit takes them (and their instances) down. */
        fprintf(stderr, "thaw serve: %u invocations still running after %llu ms: exiting\n",
                atomic_load(&s->in_flight), (unsigned long long)o->drain_timeout_ms);
        if (o->ready_file)
            unlink(o->ready_file);
        return 0;
    }
out:
    atomic_store(&s->stop, true);
    if (d)
        MHD_stop_daemon(d); /* joins the connection threads */
    if (reaper)
        pthread_join(s->reaper, NULL);
    pool_drain_idle(s);
    free_all(s);
    struct thaw_error ignored;
    (void)sandbox_keep_spares(0, o->worker, &ignored);
    if (o->ready_file && rc == 0)
        unlink(o->ready_file);
    pthread_mutex_destroy(&s->reg_lock);
    pthread_mutex_destroy(&s->deploy_lock);
    free(s);
    if (rc == 0)
        fprintf(stderr, "thaw serve: stopped\n");
    return rc;
}
