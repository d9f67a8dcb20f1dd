#include "host/util/thread_spread.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

struct start {
    void *(*fn)(void *);
    void *arg;
    cpu_set_t all; /* the process's CPUs, given back once started (SPREAD_START) */
};

static void *start_then_free(void *p)
{
    struct start s = *(struct start *)p;
    free(p);
    (void)sched_setaffinity(0, sizeof s.all, &s.all); /* refused: it stays where it started */
    return s.fn(s.arg);
}

/* THAW_SPREAD: "0" never, "1" always, else (unset) while a CPU is idle. */
static int spread_setting(void)
{
    const char *e = getenv("THAW_SPREAD");
    return e && !strcmp(e, "0") ? 0 : e && !strcmp(e, "1") ? 1 : -1;
}

bool thread_spread_pays(const struct cpu_load *l) { return l->runnable < l->cpus; }

static _Thread_local int idle_cpu = -1; /* the last sample: 1 a CPU was idle, 0 none, -1 none taken */

void thread_spread_sample(void)
{
    struct cpu_load l;
    if (spread_setting() < 0) /* THAW_SPREAD set: nothing to read */
        idle_cpu = cpu_load_now(&l) == 0 && thread_spread_pays(&l);
}

int thread_start_spread(pthread_t *tid, void *(*fn)(void *), void *arg, enum spread how)
{
    cpu_set_t all, others;
    int me = sched_getcpu();
    int setting = spread_setting();
    if (setting < 0 && idle_cpu < 0)
        thread_spread_sample();
    if (setting == 0 || (setting < 0 && !idle_cpu) || me < 0 || sched_getaffinity(0, sizeof all, &all) < 0)
        return pthread_create(tid, NULL, fn, arg);
    others = all;
    CPU_CLR(me, &others);
    if (CPU_COUNT(&others) == 0)
        return pthread_create(tid, NULL, fn, arg);
    pthread_attr_t attr;
    if (pthread_attr_init(&attr) != 0)
        return pthread_create(tid, NULL, fn, arg);
    int rc = -1;
    struct start *s = NULL;
    if (pthread_attr_setaffinity_np(&attr, sizeof others, &others) == 0) {
        if (how == SPREAD_PIN) {
            rc = pthread_create(tid, &attr, fn, arg);
        } else if ((s = malloc(sizeof *s))) {
            *s = (struct start){.fn = fn, .arg = arg, .all = all};
            rc = pthread_create(tid, &attr, start_then_free, s);
            if (rc != 0)
                free(s);
        }
    }
    pthread_attr_destroy(&attr);
    return rc == 0 ? 0 : pthread_create(tid, NULL, fn, arg); /* placing it refused (a jail's filter) */
}
