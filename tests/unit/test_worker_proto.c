/* The worker protocol's framing: every message round-trips over a socketpair, and
 * every malformed frame a hostile peer could send is refused with a clear error. */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "host/sandbox/worker_proto.h"
#include "host/util/clock.h"

static int sv[2];

static int setup(void **state)
{
    (void)state;
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
}

static int teardown(void **state)
{
    (void)state;
    close(sv[0]);
    close(sv[1]);
    return 0;
}

static uint64_t soon(void) { return clock_now_ns() + 2000000000ull; }

static void roundtrip(const struct wp_msg *m, struct wp_frame *f)
{
    struct thaw_error err = {{0}};
    assert_int_equal(wp_send(sv[0], m, -1, &err), 0);
    assert_int_equal(wp_recv(sv[1], soon(), false, f, &err), WP_RECV_OK);
    assert_int_equal(f->msg.type, m->type);
    assert_int_equal(f->fd, -1);
}

static void test_create_roundtrip(void **state)
{
    (void)state;
    struct wp_msg m;
    memset(&m, 0, sizeof m);
    m.type = WP_CREATE_RESTORE;
    snprintf(m.u.create.path, sizeof m.u.create.path, "/tmp/snap dir");
    snprintf(m.u.create.id, sizeof m.u.create.id, "fn-7");
    snprintf(m.u.create.pager_socket, sizeof m.u.create.pager_socket, "/tmp/p/pager.sock");
    m.u.create.mode = MEM_REAP;
    m.u.create.boot_timeout_ns = 123456789012ull;
    m.u.create.invoke_timeout_ns = 30000000000ull;
    m.u.create.memory_mib = 512;
    m.u.create.trace_syscalls = true;
    m.u.create.drop_cache = true;
    struct wp_frame f;
    roundtrip(&m, &f);
    assert_memory_equal(&f.msg.u.create, &m.u.create, sizeof m.u.create);
    wp_frame_free(&f);
}

static void test_body_roundtrip(void **state)
{
    (void)state;
    size_t n = 3u << 20; /* larger than the socket buffer: sent and read in pieces */
    uint8_t *big = malloc(n);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (uint8_t)(i * 7);
    struct wp_msg m = {.type = WP_INVOKE, .u.body = {big, n}};
    struct thaw_error err = {{0}};
    /* The writer blocks until the reader drains: send from a child. */
    pid_t pid = fork();
    if (pid == 0) {
        _exit(wp_send(sv[0], &m, -1, &err) == 0 ? 0 : 1);
    }
    struct wp_frame f;
    assert_int_equal(wp_recv(sv[1], soon(), false, &f, &err), WP_RECV_OK);
    assert_int_equal(f.msg.u.body.len, n);
    assert_memory_equal(f.msg.u.body.data, big, n);
    wp_frame_free(&f);
    int st;
    waitpid(pid, &st, 0);
    assert_int_equal(st, 0);
    /* An empty response is fine too. */
    struct wp_msg e = {.type = WP_RESPONSE, .u.body = {NULL, 0}};
    roundtrip(&e, &f);
    assert_int_equal(f.msg.u.body.len, 0);
    wp_frame_free(&f);
    free(big);
}

static void test_stats_roundtrip(void **state)
{
    (void)state;
    struct wp_msg m;
    memset(&m, 0, sizeof m);
    m.type = WP_STATS_REPLY;
    struct sandbox_stats *s = &m.u.stats;
    snprintf(s->id, sizeof s->id, "abc");
    snprintf(s->function, sizeof s->function, "helloworld");
    s->start = SANDBOX_START_REAP_PREFETCH;
    s->mode = MEM_REAP;
    s->in_worker = true;
    s->boot_ns = 1;
    s->restore_ns = 2;
    s->reap_misses = UINT64_MAX;
    s->rss_kb = 4096;
    s->reap_prefetched = true;
    s->exited = true;
    s->exit_status = -7;
    s->vm_exits = 12345;
    s->memory_bytes = 256u << 20;
    s->snapshot_allocated_bytes = 4096;
    snprintf(s->reap_note, sizeof s->reap_note, "working set marked stale");
    struct wp_frame f;
    roundtrip(&m, &f);
    assert_memory_equal(&f.msg.u.stats, s, sizeof *s);
    wp_frame_free(&f);
}

static void test_log_error_roundtrip(void **state)
{
    (void)state;
    struct wp_msg m = {.type = WP_LOG, .u.log = {.invocation = 3, .stream = SANDBOX_STDERR,
                                                 .line = (const uint8_t *)"hello\n", .len = 6}};
    struct wp_frame f;
    roundtrip(&m, &f);
    assert_int_equal(f.msg.u.log.invocation, 3);
    assert_int_equal(f.msg.u.log.stream, SANDBOX_STDERR);
    assert_int_equal(f.msg.u.log.len, 6);
    assert_memory_equal(f.msg.u.log.line, "hello\n", 6);
    wp_frame_free(&f);
    struct wp_msg e = {.type = WP_ERROR, .u.fail = {.failure = SANDBOX_FAIL_TIMEOUT}};
    snprintf(e.u.fail.msg, sizeof e.u.fail.msg, "invocation timed out after 30.0 s");
    roundtrip(&e, &f);
    assert_int_equal(f.msg.u.fail.failure, SANDBOX_FAIL_TIMEOUT);
    assert_string_equal(f.msg.u.fail.msg, e.u.fail.msg);
    wp_frame_free(&f);
    struct wp_msg d = {.type = WP_DONE, .u.body = {(const uint8_t *)"STATE", 5}};
    roundtrip(&d, &f);
    assert_int_equal(f.msg.u.body.len, 5);
    assert_memory_equal(f.msg.u.body.data, "STATE", 5);
    wp_frame_free(&f);
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void test_fd_passing(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe(p), 0);
    struct wp_msg m = {.type = WP_SNAPSHOT};
    struct thaw_error err = {{0}};
    assert_int_equal(wp_send(sv[0], &m, p[1], &err), 0);
    struct wp_frame f;
    assert_int_equal(wp_recv(sv[1], soon(), true, &f, &err), WP_RECV_OK);
    assert_true(f.fd >= 0);
    assert_int_equal(write(f.fd, "x", 1), 1); /* it is the pipe's write end */
    char c;
    assert_int_equal(read(p[0], &c, 1), 1);
    wp_frame_free(&f);
    /* Not accepted: closed, not leaked. */
    int before = count_fds();
    assert_int_equal(wp_send(sv[0], &m, p[1], &err), 0);
    assert_int_equal(wp_recv(sv[1], soon(), false, &f, &err), WP_RECV_OK);
    assert_int_equal(f.fd, -1);
    wp_frame_free(&f);
    assert_int_equal(count_fds(), before);
    close(p[0]);
    close(p[1]);
}

static void send_raw(const void *b, size_t n) { assert_int_equal(write(sv[0], b, n), (ssize_t)n); }

static void put_hdr(uint8_t *h, uint32_t type, uint32_t len)
{
    for (int k = 0; k < 4; k++) {
        h[k] = (uint8_t)(type >> (8 * k));
        h[4 + k] = (uint8_t)(len >> (8 * k));
    }
}

static enum wp_recv_status recv_bad(char *msg, size_t cap)
{
    struct wp_frame f;
    struct thaw_error err = {{0}};
    enum wp_recv_status st = wp_recv(sv[1], clock_now_ns() + 200000000ull, false, &f, &err);
    snprintf(msg, cap, "%s", err.msg);
    if (st == WP_RECV_OK)
        wp_frame_free(&f);
    /* Drain whatever the bad frame left behind so the next test starts clean. */
    char junk[4096];
    while (recv(sv[1], junk, sizeof junk, MSG_DONTWAIT) > 0)
        ;
    return st;
}

static void test_rejects_unknown_and_oversized(void **state)
{
    (void)state;
    uint8_t h[8];
    char msg[512];
    put_hdr(h, 99, 0);
    send_raw(h, 8);
    assert_int_equal(recv_bad(msg, sizeof msg), WP_RECV_BAD);
    assert_non_null(strstr(msg, "unknown message type 99"));
    put_hdr(h, WP_INVOKE, 0xffffffffu); /* refused before any allocation */
    send_raw(h, 8);
    assert_int_equal(recv_bad(msg, sizeof msg), WP_RECV_BAD);
    assert_non_null(strstr(msg, "exceeds"));
    put_hdr(h, WP_STATS, 1); /* STATS has no payload */
    send_raw(h, 8);
    assert_int_equal(recv_bad(msg, sizeof msg), WP_RECV_BAD);
}

static void test_rejects_malformed_payloads(void **state)
{
    (void)state;
    char msg[512];
    struct thaw_error err = {{0}};
    struct wp_msg m;
    /* A string claiming more bytes than the payload holds. */
    uint8_t p1[] = {1, 0, 0, 0, 0xff, 0, 0, 0, 'a'};
    assert_int_equal(wp_decode(WP_ERROR, p1, sizeof p1, &m, &err), -1);
    /* A string with a NUL inside. */
    uint8_t p2[] = {1, 0, 0, 0, 3, 0, 0, 0, 'a', 0, 'b'};
    assert_int_equal(wp_decode(WP_ERROR, p2, sizeof p2, &m, &err), -1);
    /* Trailing bytes. */
    uint8_t p3[] = {1, 0, 0, 0, 1, 0, 0, 0, '/', 'x'};
    assert_int_equal(wp_decode(WP_ERROR, p3, sizeof p3, &m, &err), -1);
    assert_non_null(strstr(err.msg, "trailing"));
    /* A snapshot request carries nothing but its descriptor. */
    uint8_t p3b[] = {1};
    assert_int_equal(wp_decode(WP_SNAPSHOT, p3b, sizeof p3b, &m, &err), -1);
    /* Error with failure 0 (OK) or out of range. */
    uint8_t p4[] = {0, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(wp_decode(WP_ERROR, p4, sizeof p4, &m, &err), -1);
    uint8_t p5[] = {77, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(wp_decode(WP_ERROR, p5, sizeof p5, &m, &err), -1);
    /* Log with a bad stream, and with a line longer than the frame. */
    uint8_t p6[16] = {0};
    p6[8] = 9;
    assert_int_equal(wp_decode(WP_LOG, p6, sizeof p6, &m, &err), -1);
    uint8_t p7[17] = {0};
    p7[8] = 1;
    p7[12] = 2;
    assert_int_equal(wp_decode(WP_LOG, p7, sizeof p7, &m, &err), -1);
    /* Create with a bad mode and with a bool of 2. */
    struct wp_msg c = {.type = WP_CREATE_BOOT};
    snprintf(c.u.create.path, sizeof c.u.create.path, "/fn");
    uint8_t *frame;
    size_t len;
    assert_int_equal(wp_encode(&c, &frame, &len, &err), 0);
    assert_int_equal(wp_decode(WP_CREATE_BOOT, frame + 8, len - 8, &m, &err), 0);
    frame[len - 1] = 2;
    assert_int_equal(wp_decode(WP_CREATE_BOOT, frame + 8, len - 8, &m, &err), -1);
    frame[len - 1] = 0;
    frame[8 + 4 + 3 + 4 + 4] = 9; /* mode: after path {len, "/fn"}, id {len}, pager socket {len} */
    assert_int_equal(wp_decode(WP_CREATE_BOOT, frame + 8, len - 8, &m, &err), -1);
    /* Over the wire: a malformed payload is BAD, not OK. */
    send_raw(frame, len);
    assert_int_equal(recv_bad(msg, sizeof msg), WP_RECV_BAD);
    assert_non_null(strstr(msg, "malformed create-boot"));
    free(frame);
    /* Stats with a start kind out of range. */
    struct wp_msg s = {.type = WP_READY, .invoke_timeout_ns = 5, .guest_addr = 0x7f0000200000ull};
    assert_int_equal(wp_encode(&s, &frame, &len, &err), 0);
    assert_int_equal(wp_decode(WP_READY, frame + 8, len - 8, &m, &err), 0);
    assert_int_equal(m.invoke_timeout_ns, 5);
    assert_int_equal(m.guest_addr, 0x7f0000200000ull);
    frame[8 + 4 + 4] = 50;
    assert_int_equal(wp_decode(WP_READY, frame + 8, len - 8, &m, &err), -1);
    free(frame);
}

static void test_eof_and_timeout(void **state)
{
    (void)state;
    char msg[512];
    /* Nothing arrives: a timeout, not before it is due, and not never (the upper
     * bound is generous: a loaded host under ASan is slow). */
    uint64_t t0 = clock_now_ns();
    assert_int_equal(recv_bad(msg, sizeof msg), WP_RECV_TIMEOUT);
    uint64_t dt = clock_now_ns() - t0;
    assert_true(dt >= 150000000ull && dt < 10000000000ull);
    /* Half a frame, then the peer goes away. */
    int p[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, p), 0);
    uint8_t h[8];
    put_hdr(h, WP_INVOKE, 100);
    assert_int_equal(write(p[0], h, 8), 8);
    assert_int_equal(write(p[0], "abc", 3), 3);
    close(p[0]);
    struct wp_frame f;
    struct thaw_error err = {{0}};
    assert_int_equal(wp_recv(p[1], 0, false, &f, &err), WP_RECV_EOF);
    assert_non_null(strstr(err.msg, "closed"));
    close(p[1]);
}

static void test_encode_limits_and_directions(void **state)
{
    (void)state;
    struct thaw_error err = {{0}};
    struct wp_msg m = {.type = WP_INVOKE, .u.body = {(const uint8_t *)"", (size_t)WP_MAX_BODY + 1}};
    uint8_t *frame;
    size_t len;
    assert_int_equal(wp_encode(&m, &frame, &len, &err), -1);
    struct wp_msg bad = {.type = (enum wp_type)42};
    assert_int_equal(wp_encode(&bad, &frame, &len, &err), -1);
    for (uint32_t t = 0; t < 64; t++) {
        bool known = wp_type_limit(t, NULL);
        if (wp_is_request(t))
            assert_true(known);
        assert_true(known == ((t >= 1 && t <= 6) || (t >= 16 && t <= 21)));
    }
    assert_false(wp_is_request(WP_RESPONSE));
    assert_true(wp_is_request(WP_INVOKE));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_roundtrip),
        cmocka_unit_test(test_body_roundtrip),
        cmocka_unit_test(test_stats_roundtrip),
        cmocka_unit_test(test_log_error_roundtrip),
        cmocka_unit_test(test_fd_passing),
        cmocka_unit_test(test_rejects_unknown_and_oversized),
        cmocka_unit_test(test_rejects_malformed_payloads),
        cmocka_unit_test(test_eof_and_timeout),
        cmocka_unit_test(test_encode_limits_and_directions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
