/* The long-running memory manager (src/host/pager/manager.c) without KVM: a child process
 * runs pager_manager_run on a Unix socket; this process plays many VMs at once through
 * memory_backend.c's external-pager path (hello, Firecracker handshake, control protocol),
 * checking every byte served, and watches the manager's descriptors and memory stay flat
 * over thousands of VMs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "host/pager/manager.h"
#include "host/snapshot/memory_backend.h"
#include "host/util/snap_identity.h"
#include "uffd_usable.h"

/* Freed memory goes back to the allocator at once, so that the manager's resident size
 * measures what it keeps, not ASan's quarantine of what it freed. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "quarantine_size_mb=0"; }

#define PG 4096ull
#define NPAGES 256ull

static char root[64], snap_a[96], snap_b[96], outside[96], sock_path[128];
static pid_t manager = -1;
static int stop_w = -1;

static uint8_t byte_of(int snap, uint64_t page, uint64_t i) { return (uint8_t)(snap * 101 + page * 7 + i % 13 + 1); }

static void make_snapshot(const char *dir, int snap)
{
    assert_int_equal(mkdir(dir, 0700), 0);
    char path[160];
    snprintf(path, sizeof path, "%s/memory", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    static uint8_t buf[PG];
    for (uint64_t p = 0; p < NPAGES; p++) {
        for (uint64_t i = 0; i < PG; i++)
            buf[i] = byte_of(snap, p, i);
        assert_int_equal(write(fd, buf, PG), (ssize_t)PG);
    }
    /* The identity trailer after the image (snap_identity.h): one identity per snapshot. */
    static uint8_t trailer[MEMORY_TRAILER_SIZE];
    struct snap_identity id = {.id = {(uint8_t)snap}};
    memory_trailer_encode(trailer, NPAGES * PG, &id);
    assert_int_equal(write(fd, trailer, sizeof trailer), (ssize_t)sizeof trailer);
    close(fd);
}

/* The identity make_snapshot gave the snapshot in dir. */
static const struct snap_identity *identity_of(const char *dir)
{
    static struct snap_identity ids[4];
    int snap = !strcmp(dir, snap_a) ? 1 : !strcmp(dir, snap_b) ? 2 : 3;
    ids[snap] = (struct snap_identity){.id = {(uint8_t)snap}};
    return &ids[snap];
}


static int setup(void **state)
{
    (void)state;
    if (!uffd_usable())
        return 0;
    strcpy(root, "/tmp/thaw-mgr-XXXXXX");
    assert_non_null(mkdtemp(root));
    snprintf(snap_a, sizeof snap_a, "%s/a", root);
    snprintf(snap_b, sizeof snap_b, "%s/b", root);
    snprintf(outside, sizeof outside, "%s-outside", root);
    snprintf(sock_path, sizeof sock_path, "%s/pager.sock", root);
    make_snapshot(snap_a, 1);
    make_snapshot(snap_b, 2);
    make_snapshot(outside, 3);
    int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, sock_path);
    assert_int_equal(bind(ls, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(ls, 128), 0);
    int sp[2];
    assert_int_equal(pipe2(sp, O_CLOEXEC), 0);
    manager = fork();
    assert_true(manager >= 0);
    if (manager == 0) {
        close(sp[1]);
        alarm(120);
        struct pager_manager_opts o = {.default_snapshot = snap_a, .default_mode = PAGER_LAZY,
                                       .snapshot_root = root, .max_sessions = 64};
        struct pager_manager_stats st;
        struct thaw_error err = {{0}};
        int rc = pager_manager_run(ls, sp[0], &o, &st, &err);
        if (rc < 0)
            fprintf(stderr, "manager: %s\n", err.msg);
        _exit(rc == 0 && st.active == 0 ? 0 : 1);
    }
    close(ls);
    close(sp[0]);
    stop_w = sp[1];
    return 0;
}

static void rm_snapshot(const char *dir)
{
    const char *names[] = {"memory", "ws.pages", "ws.trace"};
    char path[160];
    for (size_t i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

static int teardown(void **state)
{
    (void)state;
    if (manager > 0) {
        char c = 1;
        assert_int_equal(write(stop_w, &c, 1), 1);
        int status;
        assert_int_equal(waitpid(manager, &status, 0), manager);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        close(stop_w);
        unlink(sock_path);
        rm_snapshot(snap_a);
        rm_snapshot(snap_b);
        rm_snapshot(outside);
        rmdir(root);
    }
    return 0;
}

/* One VM: guest memory served by the manager; touches `touch` pages and checks them. */
static int one_vm(const char *dir, int snap, enum mem_mode mode, enum pager_mode pm, unsigned touch, unsigned seed,
                  struct thaw_error *err)
{
    struct mem_backend b;
    if (mem_backend_open(&b, mode, dir, NPAGES * PG, identity_of(dir), pm, sock_path, err) < 0)
        return -1;
    int rc = 0;
    for (unsigned k = 0; k < touch && rc == 0; k++) {
        uint64_t p = (seed * 31 + k * 17) % NPAGES;
        for (uint64_t i = 0; i < PG; i += 511)
            if (b.host[p * PG + i] != byte_of(snap, p, i))
                rc = thaw_fail(err, "%s page %llu byte %llu is wrong", dir, (unsigned long long)p,
                               (unsigned long long)i);
    }
    struct pager_stats st;
    if (rc == 0 && mem_backend_pager_query(&b, pm == PAGER_RECORD ? "finish-record" : "stats", &st, err) < 0)
        rc = -1;
    if (rc == 0 && touch && st.pages_served == 0)
        rc = thaw_fail(err, "nothing was served");
    mem_backend_close(&b);
    return rc;
}

struct vm_thread {
    pthread_t t;
    int index, rounds, rc;
    struct thaw_error err;
};

static void *vm_main(void *arg)
{
    struct vm_thread *v = arg;
    v->rc = 0;
    for (int r = 0; r < v->rounds && v->rc == 0; r++) {
        int b = (v->index + r) % 2;
        v->rc = one_vm(b ? snap_b : snap_a, b ? 2 : 1, MEM_UFFD, PAGER_LAZY, 40, (unsigned)(v->index * 7 + r), &v->err);
    }
    return NULL;
}

static void test_many_vms_at_once(void **state)
{
    (void)state;
    if (manager < 0)
        skip();
    struct vm_thread v[16];
    for (int i = 0; i < 16; i++) {
        v[i] = (struct vm_thread){.index = i, .rounds = 4};
        assert_int_equal(pthread_create(&v[i].t, NULL, vm_main, &v[i]), 0);
    }
    for (int i = 0; i < 16; i++) {
        pthread_join(v[i].t, NULL);
        if (v[i].rc < 0)
            fail_msg("VM %d: %s", i, v[i].err.msg);
    }
}

static void test_hello_names_snapshot_and_mode(void **state)
{
    (void)state;
    if (manager < 0)
        skip();
    struct thaw_error err = {{0}};
    /* reap with a record hello: the manager writes the working set into b. */
    if (one_vm(snap_b, 2, MEM_REAP, PAGER_RECORD, 5, 3, &err) < 0)
        fail_msg("%s", err.msg);
    char path[160];
    snprintf(path, sizeof path, "%s/ws.pages", snap_b);
    assert_int_equal(access(path, F_OK), 0);
    struct mem_backend b;
    if (mem_backend_open(&b, MEM_REAP, snap_b, NPAGES * PG, identity_of(snap_b), PAGER_PREFETCH, sock_path, &err) < 0)
        fail_msg("prefetch: %s", err.msg);
    assert_int_equal(b.ready.prefetch_ok, 1);
    assert_int_equal(b.ready.prefetch_pages, 5);
    mem_backend_close(&b);
    /* A snapshot outside the manager's root is refused with a clear line. */
    assert_int_equal(mem_backend_open(&b, MEM_UFFD, outside, NPAGES * PG, identity_of(outside), PAGER_LAZY, sock_path, &err), -1);
    assert_non_null(strstr(err.msg, "not one this memory manager serves"));
    /* So is a hello that is not JSON, and the manager goes on serving. */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, sock_path);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(write(fd, "{nope\n", 6), 6);
    char reply[256] = {0};
    assert_true(read(fd, reply, sizeof reply - 1) > 0);
    assert_non_null(strstr(reply, "\"error\""));
    close(fd);
    if (one_vm(snap_a, 1, MEM_UFFD, PAGER_LAZY, 3, 1, &err) < 0)
        fail_msg("%s", err.msg);
}

static int count_fds(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    assert_non_null(d);
    int n = 0;
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

/* The manager's descriptors once the sessions of VMs that left have ended. */
static int settled_fds(int want)
{
    int n = count_fds(manager);
    for (int i = 0; i < 100 && n != want; i++) {
        usleep(30 * 1000);
        n = count_fds(manager);
    }
    return n;
}

static void test_flat_over_thousands_of_vms(void **state)
{
    (void)state;
    if (manager < 0)
        skip();
    struct thaw_error err = {{0}};
    for (int i = 0; i < 200; i++) /* warm up: thread stacks, allocator arenas */
        if (one_vm(i % 2 ? snap_b : snap_a, i % 2 ? 2 : 1, MEM_UFFD, PAGER_LAZY, 4, (unsigned)i, &err) < 0)
            fail_msg("VM %d: %s", i, err.msg);
    int fds0 = settled_fds(-1); /* waits 3 s: the last sessions are finishing */
    long rss0 = rss_kb(manager);
    for (int i = 0; i < 1500; i++)
        if (one_vm(i % 2 ? snap_b : snap_a, i % 2 ? 2 : 1, MEM_UFFD, PAGER_LAZY, 4, (unsigned)i, &err) < 0)
            fail_msg("VM %d: %s", i, err.msg);
    int fds1 = settled_fds(fds0);
    long rss1 = rss_kb(manager);
    fprintf(stderr, "manager after 200 VMs: %d fds, %ld KiB; after 1700: %d fds, %ld KiB\n", fds0, rss0, fds1, rss1);
    assert_int_equal(fds1, fds0);
    assert_true(rss1 - rss0 < 4096);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_vms_at_once),
        cmocka_unit_test(test_hello_names_snapshot_and_mode),
        cmocka_unit_test(test_flat_over_thousands_of_vms),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
