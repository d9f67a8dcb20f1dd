/* threads: POSIX threads in the guest. A consumer thread, started before the ready
 * point, lives across snapshots, blocked on a condition variable between requests.
 * Each request {"items": N} starts a producer thread that puts 1..N through a bounded
 * buffer of 4 slots (so both sides block on the mutex's condition variables again and
 * again); the consumer sums them; the main thread joins the producer and waits for the
 * consumer's total. Thread-local counters show that each thread has its own TLS.
 * Response: {"items", "sum", "producer_tls", "consumer_tls" (items the consumer has
 * taken over its life, warm-up included), "rounds", "timedwait", "checks"}.
 *
 * {"deadlock": 1} makes every thread wait forever: the guest must stop with an error
 * naming the deadlock instead of hanging. {"overflow": 1} runs a thread on a 64 KiB
 * stack into unbounded recursion: the guest must stop with that thread's stack
 * overflow (its guard page), not run over the memory below. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "thaw_function.h"

#define SLOTS 4

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t not_empty = PTHREAD_COND_INITIALIZER, not_full = PTHREAD_COND_INITIALIZER;
static pthread_cond_t round_done = PTHREAD_COND_INITIALIZER;
static uint64_t buf[SLOTS];
static unsigned head, count;
static uint64_t round_items, round_sum; /* what the consumer is to take, what it took */
static unsigned rounds_started, rounds_done;

static _Thread_local uint64_t tls_items; /* items this thread moved, over its life */
static _Thread_local int tls_tid;
static uint64_t consumer_tls_seen;
static int main_tid, consumer_tid;
static char checks[256] = "ok";

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond) && !strcmp(checks, "ok"))                                                      \
            snprintf(checks, sizeof checks, __VA_ARGS__);                                          \
    } while (0)

static int gettid_(void) { return (int)syscall(SYS_gettid); }

static void *consumer(void *arg)
{
    (void)arg;
    tls_tid = gettid_();
    pthread_mutex_lock(&lock);
    consumer_tid = tls_tid;
    for (;;) {
        while (rounds_started == rounds_done)
            pthread_cond_wait(&not_empty, &lock);
        uint64_t sum = 0;
        for (uint64_t i = 0; i < round_items; i++) {
            while (count == 0)
                pthread_cond_wait(&not_empty, &lock);
            sum += buf[head];
            head = (head + 1) % SLOTS;
            count--;
            tls_items++;
            pthread_cond_signal(&not_full);
        }
        round_sum = sum;
        consumer_tls_seen = tls_items;
        if (tls_tid != gettid_())
            consumer_tls_seen = 0; /* TLS moved to another thread: reported as wrong */
        rounds_done++;
        pthread_cond_broadcast(&round_done);
    }
    return NULL;
}

static void *producer(void *arg)
{
    uint64_t n = *(uint64_t *)arg;
    tls_tid = gettid_();
    for (uint64_t i = 1; i <= n; i++) {
        pthread_mutex_lock(&lock);
        while (count == SLOTS)
            pthread_cond_wait(&not_full, &lock);
        buf[(head + count) % SLOTS] = i;
        count++;
        tls_items++;
        pthread_cond_signal(&not_empty);
        pthread_mutex_unlock(&lock);
        if (i % 64 == 0)
            sched_yield();
        if (i % 200 == 0) {
            struct timespec ts = {0, 100000};
            nanosleep(&ts, NULL);
        }
    }
    return (void *)(uintptr_t)tls_items;
}

/* One producer round of n items; returns the consumer's sum and the producer's TLS. */
static uint64_t run_round(uint64_t n, uint64_t *producer_tls)
{
    pthread_t p;
    pthread_mutex_lock(&lock);
    round_items = n;
    rounds_started++;
    pthread_cond_broadcast(&not_empty);
    pthread_mutex_unlock(&lock);
    int e = pthread_create(&p, NULL, producer, &n);
    CHECK(e == 0, "pthread_create: %s", strerror(e));
    void *ret = NULL;
    e = pthread_join(p, &ret);
    CHECK(e == 0, "pthread_join: %s", strerror(e));
    *producer_tls = (uint64_t)(uintptr_t)ret;
    pthread_mutex_lock(&lock);
    while (rounds_done != rounds_started)
        pthread_cond_wait(&round_done, &lock);
    uint64_t sum = round_sum;
    pthread_mutex_unlock(&lock);
    return sum;
}

/* A timed wait that nobody signals must time out, after at least its timeout. */
static const char *timed_wait_check(void)
{
    pthread_cond_t c = PTHREAD_COND_INITIALIZER;
    struct timespec t0, dl, t1;
    clock_gettime(CLOCK_REALTIME, &t0);
    dl = t0;
    dl.tv_nsec += 20 * 1000000;
    if (dl.tv_nsec >= 1000000000) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&lock);
    int e = pthread_cond_timedwait(&c, &lock, &dl);
    pthread_mutex_unlock(&lock);
    clock_gettime(CLOCK_REALTIME, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    if (e != ETIMEDOUT)
        return "no timeout";
    return ms >= 20 ? "ETIMEDOUT" : "too early";
}

static int depth(int n)
{
    volatile char frame[512]; /* a real frame each call: no tail call to optimise away */
    frame[0] = (char)n;
    return n < 0 ? frame[0] : depth(n + 1) + frame[0];
}

static void *recurse(void *arg)
{
    (void)arg;
    printf("overflow thread %d starts recursing\n", gettid_());
    fflush(stdout);
    return (void *)(intptr_t)depth(0);
}

static void overflow(void)
{
    pthread_attr_t a;
    pthread_t t;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 64 << 10);
    if (pthread_create(&t, &a, recurse, NULL) == 0)
        pthread_join(t, NULL);
    printf("overflow thread returned: the guard did not stop it\n");
}

static void deadlock(void)
{
    static pthread_mutex_t never = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&never);
    pthread_mutex_lock(&never); /* the consumer waits for work, we wait for ourselves */
}

int main(void)
{
    static char req[4096];
    char out[1024];
    main_tid = gettid_();
    tls_tid = main_tid;
    pthread_t c;
    int e = pthread_create(&c, NULL, consumer, NULL);
    CHECK(e == 0, "pthread_create consumer: %s", strerror(e));
    /* A first round before the ready point: snapshots hold a consumer that has run. */
    uint64_t ptls = 0;
    CHECK(run_round(10, &ptls) == 55 && ptls == 10, "warm-up round");
    CHECK(main_tid == getpid() && consumer_tid != main_tid && consumer_tid > 0, "tids %d %d", main_tid,
          consumer_tid);

    int fd = thaw_open();
    if (fd < 0) {
        perror("open /dev/invoke");
        return 1;
    }
    ssize_t n;
    while ((n = thaw_next(fd, req, sizeof req)) >= 0) {
        if (n == 0)
            break;
        if (thaw_json_int(req, "deadlock", 0) == 1)
            deadlock();
        if (thaw_json_int(req, "overflow", 0) == 1)
            overflow();
        long items = thaw_json_int(req, "items", 100);
        if (items < 0 || items > 10000000)
            items = 100;
        uint64_t sum = run_round((uint64_t)items, &ptls);
        CHECK(tls_tid == gettid_() && tls_items == 0, "main thread's TLS");
        const char *tw = timed_wait_check();
        int len = snprintf(out, sizeof out,
                           "{\"items\": %ld, \"sum\": %llu, \"producer_tls\": %llu, \"consumer_tls\": %llu, "
                           "\"rounds\": %u, \"timedwait\": \"%s\", \"checks\": \"%s\"}",
                           items, (unsigned long long)sum, (unsigned long long)ptls,
                           (unsigned long long)consumer_tls_seen, rounds_done, tw, checks);
        thaw_respond(fd, out, (size_t)len);
    }
    return n < 0 ? 1 : 0;
}
