/* Firecracker uffd handshake (src/host/pager/fc_handshake.c) and the external pager
 * (src/host/pager/pager.c), end to end in a separate process. */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "host/pager/fc_handshake.h"
#include "host/pager/pager.h"
#include "host/pager/reap.h"
#include "host/util/snap_identity.h"

#define PG 4096ull
#define NPAGES 64

/* ---- parsing ------------------------------------------------------------------------- */

static const char *REGION = "{\"base_host_virt_addr\":%llu,\"size\":%llu,\"offset\":%llu,\"page_size\":%llu}";

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    /* Rotating buffers: calls nest (fmt("[%s]", fmt(REGION, ...))). */
    static char bufs[4][8192];
    static unsigned k;
    char *buf = bufs[k++ % 4];
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, sizeof bufs[0], f, ap);
    va_end(ap);
    return buf;
}

/* Parses s (as an exact-size heap copy: ASan catches overreads) with file size 1 MiB. */
static int parse(const char *s, struct fc_region *out, size_t max, size_t *n, struct thaw_error *err)
{
    size_t len = strlen(s);
    char *b = malloc(len ? len : 1);
    assert_non_null(b);
    memcpy(b, s, len);
    int rc = fc_regions_parse(b, len, out, max, n, 1 << 20, err);
    free(b);
    return rc;
}

static void expect_reject(const char *json, const char *needle)
{
    struct fc_region r[4];
    size_t n = 99;
    struct thaw_error err = {{0}};
    if (parse(json, r, 4, &n, &err) == 0)
        fail_msg("accepted: %s", json);
    if (!strstr(err.msg, needle))
        fail_msg("error for %s is \"%s\", wanted \"%s\"", json, err.msg, needle);
    assert_null(strchr(err.msg, '\n'));
    assert_int_equal(n, 0);
}

static void test_parse_ok(void **state)
{
    (void)state;
    char json[1024];
    snprintf(json, sizeof json, "[%s, %s]", fmt(REGION, 0x7f0000000000ull, 65536ull, 0ull, 4096ull),
             "{\"page_size\":4096,\"offset\":65536,\"size\":4096,\"base_host_virt_addr\":4096,\"extra\":1}");
    struct fc_region r[4];
    size_t n = 0;
    struct thaw_error err = {{0}};
    assert_int_equal(parse(json, r, 4, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(r[0].base_host_virt_addr, 0x7f0000000000ull);
    assert_int_equal(r[0].size, 65536);
    assert_int_equal(r[0].offset, 0);
    assert_int_equal(r[0].page_size, 4096);
    assert_int_equal(r[1].base_host_virt_addr, 4096);
    assert_int_equal(r[1].offset, 65536);
    /* Exactly up to the end of the file, and adjacent (not overlapping) regions. */
    snprintf(json, sizeof json, "[%s,", fmt(REGION, 0ull, 4096ull, (1ull << 20) - 4096, 4096ull));
    strcat(json, fmt(REGION, 4096ull, 4096ull, 0ull, 4096ull));
    strcat(json, "]");
    assert_int_equal(parse(json, r, 2, &n, &err), 0);
    assert_int_equal(n, 2);
}

static void test_parse_rejects(void **state)
{
    (void)state;
    expect_reject("", "not valid JSON");
    expect_reject("[{\"size\":", "not valid JSON");
    expect_reject("[1,]", "not valid JSON");
    expect_reject("{}", "not a JSON array");
    expect_reject("\"x\"", "not a JSON array");
    expect_reject("[]", "no memory regions");
    expect_reject("[1]", "region 0 is not a JSON object");
    expect_reject("[[]]", "region 0 is not a JSON object");
    expect_reject("[{\"size\":4096,\"offset\":0,\"page_size\":4096}]", "missing \"base_host_virt_addr\"");
    expect_reject("[{\"base_host_virt_addr\":0,\"offset\":0,\"page_size\":4096}]", "missing \"size\"");
    expect_reject("[{\"base_host_virt_addr\":0,\"size\":4096,\"page_size\":4096}]", "missing \"offset\"");
    expect_reject("[{\"base_host_virt_addr\":0,\"size\":4096,\"offset\":0}]", "missing \"page_size\"");
    expect_reject("[{\"base_host_virt_addr\":-4096,\"size\":4096,\"offset\":0,\"page_size\":4096}]",
                  "\"base_host_virt_addr\" is negative");
    expect_reject("[{\"base_host_virt_addr\":0,\"size\":-4096,\"offset\":0,\"page_size\":4096}]",
                  "\"size\" is negative");
    expect_reject("[{\"base_host_virt_addr\":0,\"size\":4096,\"offset\":-1,\"page_size\":4096}]",
                  "\"offset\" is negative");
    expect_reject("[{\"base_host_virt_addr\":0,\"size\":4096,\"offset\":0,\"page_size\":-4096}]",
                  "\"page_size\" is negative");
    expect_reject("[{\"base_host_virt_addr\":\"0\",\"size\":4096,\"offset\":0,\"page_size\":4096}]",
                  "\"base_host_virt_addr\" is not an integer");
    expect_reject("[{\"base_host_virt_addr\":0,\"size\":4096.0,\"offset\":0,\"page_size\":4096}]",
                  "\"size\" is not an integer");
    expect_reject("[{\"base_host_virt_addr\":0,\"size\":4096,\"offset\":null,\"page_size\":4096}]",
                  "\"offset\" is not an integer");
    expect_reject("[{\"base_host_virt_addr\":0,\"size\":4096,\"offset\":0,\"page_size\":true}]",
                  "\"page_size\" is not an integer");
    expect_reject(fmt("[%s]", fmt(REGION, 0ull, 2097152ull, 0ull, 2097152ull)), "only 4 KiB pages are supported");
    expect_reject(fmt("[%s]", fmt(REGION, 0ull, 4096ull, 0ull, 0ull)), "only 4 KiB pages are supported");
    expect_reject(fmt("[%s]", fmt(REGION, 0ull, 0ull, 0ull, 4096ull)), "size 0 is not a non-zero multiple");
    expect_reject(fmt("[%s]", fmt(REGION, 0ull, 6000ull, 0ull, 4096ull)), "size 6000 is not a non-zero multiple");
    expect_reject(fmt("[%s]", fmt(REGION, 100ull, 4096ull, 0ull, 4096ull)), "is not page-aligned");
    expect_reject(fmt("[%s]", fmt(REGION, 0ull, 4096ull, 512ull, 4096ull)), "offset 0x200 is not page-aligned");
    /* u64 overflow of base + size or offset + size cannot be expressed: jansson only takes
     * integers up to 2^63 - 1 (two such sum to less than 2^64), and bigger ones are JSON
     * errors. */
    expect_reject("[{\"base_host_virt_addr\":18446744073709547520,\"size\":8192,\"offset\":0,\"page_size\":4096}]",
                  "not valid JSON");
    expect_reject("[{\"base_host_virt_addr\":0,\"size\":4096,\"offset\":18446744073709547520,\"page_size\":4096}]",
                  "not valid JSON");
    expect_reject(fmt("[%s]", fmt(REGION, 0ull, 8192ull, (1ull << 20) - 4096, 4096ull)),
                  "beyond the 1048576-byte memory file");
    expect_reject(fmt("[%s]", fmt(REGION, 0ull, 4096ull, 0x7ffffffffffff000ull, 4096ull)),
                  "beyond the 1048576-byte memory file");
    char json[2048];
    snprintf(json, sizeof json, "[%s,", fmt(REGION, 0x10000ull, 0x4000ull, 0ull, 4096ull));
    strcat(json, fmt(REGION, 0x13000ull, 0x1000ull, 0x8000ull, 4096ull));
    strcat(json, "]");
    expect_reject(json, "regions 0 and 1 overlap in host address space");
    snprintf(json, sizeof json, "[%s,", fmt(REGION, 0x10000ull, 0x1000ull, 0ull, 4096ull));
    strcat(json, fmt(REGION, 0xf000ull, 0x8000ull, 0x8000ull, 4096ull));
    strcat(json, "]");
    expect_reject(json, "regions 0 and 1 overlap");
    strcpy(json, "[");
    for (int i = 0; i < 5; i++) {
        strcat(json, fmt(REGION, (unsigned long long)i * 4096, 4096ull, 0ull, 4096ull));
        strcat(json, i < 4 ? "," : "]");
    }
    expect_reject(json, "5 memory regions, at most 4");
    expect_reject("[{\"base_host_virt_addr\":0,\"base_host_virt_addr\":0,\"size\":4096,\"offset\":0,\"page_size\":4096}]",
                  "not valid JSON");
}

/* The overflow check on offset + size, reached only with the file-size check off. */
static void test_parse_unchecked_file_size(void **state)
{
    (void)state;
    const char *j = fmt("[%s]", fmt(REGION, 0ull, 4096ull, 0x7ffffffffffff000ull, 4096ull));
    struct fc_region r[1];
    size_t n;
    struct thaw_error err;
    assert_int_equal(fc_regions_parse(j, strlen(j), r, 1, &n, FC_FILE_SIZE_UNCHECKED, &err), 0);
    assert_int_equal(n, 1);
}

/* ---- handshake over a real socket ---------------------------------------------------------- */

static int open_uffd(void)
{
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return -1;
    struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_EVENT_REMOVE};
    if (ioctl(fd, UFFDIO_API, &api) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int skip_no_uffd(int fd)
{
    if (fd >= 0)
        return 0;
    fprintf(stderr, "*** SKIP: userfaultfd() failed (%s): run as root or set vm.unprivileged_userfaultfd=1\n",
            strerror(errno));
    return 1;
}

static void send_raw(int sock, const char *payload, const int *fds, size_t nfds)
{
    struct iovec iov = {.iov_base = (void *)payload, .iov_len = strlen(payload)};
    union {
        char buf[CMSG_SPACE(sizeof(int) * 4)];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds) {
        msg.msg_control = ctl.buf;
        msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    assert_int_equal(sendmsg(sock, &msg, 0), (ssize_t)strlen(payload));
}

static int count_open_fds(void)
{
    int k = 0;
    for (int fd = 0; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            k++;
    return k;
}

static void expect_recv_error(const char *payload, const int *fds, size_t nfds, const char *needle)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    send_raw(sv[0], payload, fds, nfds);
    int before = count_open_fds();
    struct fc_region r[4];
    size_t n = 7;
    int uffd = 7;
    struct thaw_error err = {{0}};
    assert_int_equal(fc_recv_handshake(sv[1], r, 4, &n, &uffd, 1 << 20, &err), -1);
    if (!strstr(err.msg, needle))
        fail_msg("error is \"%s\", wanted \"%s\"", err.msg, needle);
    assert_int_equal(uffd, -1);
    assert_int_equal(n, 0);
    assert_int_equal(count_open_fds(), before); /* every received descriptor closed */
    close(sv[0]);
    close(sv[1]);
}

static void test_recv_malformed(void **state)
{
    (void)state;
    const char *ok = fmt("[%s]", fmt(REGION, 0x10000ull, 4096ull, 0ull, 4096ull));
    char good[512];
    snprintf(good, sizeof good, "%s", ok);
    expect_recv_error(good, NULL, 0, "missing userfaultfd in the handshake");
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    expect_recv_error(good, p, 1, "not a userfaultfd");
    expect_recv_error("[{\"base_host", p, 2, "not valid JSON");
    expect_recv_error("{\"not\":\"an array\"}", p, 1, "not a JSON array");
    close(p[0]);
    close(p[1]);
    /* The peer going away first. */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    close(sv[0]);
    struct fc_region r[1];
    size_t n;
    int uffd;
    struct thaw_error err;
    assert_int_equal(fc_recv_handshake(sv[1], r, 1, &n, &uffd, 1 << 20, &err), -1);
    assert_non_null(strstr(err.msg, "closed the socket before"));
    close(sv[1]);
}

static void test_send_recv_roundtrip(void **state)
{
    (void)state;
    int ufd = open_uffd();
    if (skip_no_uffd(ufd))
        skip();
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    struct fc_region in[2] = {{0x7f1234560000ull, 1 << 16, 0, 4096}, {0x10000, 4096, 1 << 16, 4096}};
    struct thaw_error err = {{0}};
    assert_int_equal(fc_send_handshake(sv[0], in, 2, ufd, &err), 0);
    struct fc_region out[2];
    size_t n;
    int got = -1;
    assert_int_equal(fc_recv_handshake(sv[1], out, 2, &n, &got, 1 << 20, &err), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(in, out, sizeof in);
    assert_true(got >= 0 && got != ufd);
    close(got);
    /* A userfaultfd plus extra descriptors: the extras are closed. */
    int fds[3] = {ufd, p[0], p[1]};
    send_raw(sv[0], fmt("[%s]", fmt(REGION, 0x10000ull, 4096ull, 0ull, 4096ull)), fds, 3);
    int before = count_open_fds();
    assert_int_equal(fc_recv_handshake(sv[1], out, 2, &n, &got, 1 << 20, &err), 0);
    assert_int_equal(count_open_fds(), before + 1);
    close(got);
    /* Valid JSON and fd, but regions beyond the file. */
    assert_int_equal(fc_send_handshake(sv[0], in, 2, ufd, &err), 0);
    before = count_open_fds();
    assert_int_equal(fc_recv_handshake(sv[1], out, 2, &n, &got, 65536, &err), -1);
    assert_non_null(strstr(err.msg, "beyond the 65536-byte memory file"));
    assert_int_equal(count_open_fds(), before);
    close(sv[0]);
    close(sv[1]);
    close(p[0]);
    close(p[1]);
    close(ufd);
}

/* ---- end to end: the pager in a child process serves the parent's memory ------------------- */

static char snap_dir[64];
static const struct snap_identity test_identity = {.id = {1, 2, 3, 4}, .digest = {5, 6, 7, 8}};

static uint8_t page_byte(uint64_t page, uint64_t i) { return (uint8_t)(page * 7 + 1 + (i % 251)); }

static void make_snap_dir(void)
{
    strcpy(snap_dir, "/tmp/thaw-pager-XXXXXX");
    assert_non_null(mkdtemp(snap_dir));
    char path[128];
    snprintf(path, sizeof path, "%s/memory", snap_dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    static uint8_t buf[PG];
    for (uint64_t p = 0; p < NPAGES; p++) {
        for (uint64_t i = 0; i < PG; i++)
            buf[i] = page_byte(p, i);
        assert_int_equal(write(fd, buf, PG), (ssize_t)PG);
    }
    /* The identity trailer the pager reads (and stamps working sets with). */
    static uint8_t trailer[MEMORY_TRAILER_SIZE];
    memory_trailer_encode(trailer, NPAGES * PG, &test_identity);
    assert_int_equal(write(fd, trailer, sizeof trailer), (ssize_t)sizeof trailer);
    close(fd);
}

static void rm_snap_dir(void)
{
    const char *names[] = {"memory", "ws.pages", "ws.trace", "ws.stale"};
    char path[128];
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", snap_dir, names[i]);
        unlink(path);
    }
    rmdir(snap_dir);
}

static void check_page(const uint8_t *mem, uint64_t page, uint64_t file_page)
{
    for (uint64_t i = 0; i < PG; i++)
        if (mem[page * PG + i] != page_byte(file_page, i))
            fail_msg("page %llu byte %llu is %u, want %u", (unsigned long long)page, (unsigned long long)i,
                     mem[page * PG + i], page_byte(file_page, i));
}

/* Runs one VM-side session: fork a pager child in `mode`, map + register NPAGES pages
 * (two regions: pages [0,40) from file offset 0, [40,64) from file offset 40 pages),
 * touch `touch` pages, discard page 5 and read it back as zero, stop, and return the
 * child's stats. */
static void session(enum pager_mode mode, const int *touch, size_t ntouch, struct pager_stats *out)
{
    int sv[2], sp[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_int_equal(pipe2(sp, O_CLOEXEC), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(sv[0]);
        close(sp[0]);
        alarm(30);
        struct fc_region r[4];
        size_t n;
        int uffd;
        struct thaw_error err = {{0}};
        if (fc_recv_handshake(sv[1], r, 4, &n, &uffd, NPAGES * PG, &err) < 0) {
            fprintf(stderr, "child: %s\n", err.msg);
            _exit(3);
        }
        struct pager_stats st;
        int rc = pager_serve(uffd, r, n, snap_dir, mode, sv[1], false, &st, &err);
        if (rc < 0)
            fprintf(stderr, "child: %s\n", err.msg);
        if (write(sp[1], &st, sizeof st) != (ssize_t)sizeof st)
            _exit(4);
        _exit(rc == 0 ? 0 : 5);
    }
    close(sv[1]);
    close(sp[1]);
    alarm(30); /* a pager bug must not hang the suite */
    uint8_t *mem = mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(mem != MAP_FAILED);
    int ufd = open_uffd();
    assert_true(ufd >= 0);
    struct uffdio_register reg = {.range = {.start = (uint64_t)(uintptr_t)mem, .len = NPAGES * PG},
                                  .mode = UFFDIO_REGISTER_MODE_MISSING};
    assert_int_equal(ioctl(ufd, UFFDIO_REGISTER, &reg), 0);
    struct fc_region r[2] = {{(uint64_t)(uintptr_t)mem, 40 * PG, 0, PG},
                             {(uint64_t)(uintptr_t)mem + 40 * PG, 24 * PG, 40 * PG, PG}};
    struct thaw_error err = {{0}};
    assert_int_equal(fc_send_handshake(sv[0], r, 2, ufd, &err), 0);
    for (size_t i = 0; i < ntouch; i++)
        check_page(mem, (uint64_t)touch[i], (uint64_t)touch[i]);
    /* Writes stay; a dropped page reads back as zero, not as the file's bytes. */
    mem[5 * PG] = 0xee;
    assert_int_equal(mem[5 * PG], 0xee);
    assert_int_equal(madvise(mem + 5 * PG, PG, MADV_DONTNEED), 0);
    for (uint64_t i = 0; i < PG; i++)
        if (mem[5 * PG + i] != 0)
            fail_msg("discarded page byte %llu is %u", (unsigned long long)i, mem[5 * PG + i]);
    /* A page across the region boundary, served from the second region's offset. */
    check_page(mem, 41, 41);
    /* The VM goes away: the connection closes. */
    munmap(mem, NPAGES * PG);
    close(ufd);
    close(sv[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    alarm(0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(read(sp[0], out, sizeof *out), (ssize_t)sizeof *out);
    close(sp[0]);
}

static void test_pager_lazy(void **state)
{
    (void)state;
    int probe = open_uffd();
    if (skip_no_uffd(probe))
        skip();
    close(probe);
    make_snap_dir();
    const int touch[] = {0, 1, 2, 5, 10, 39, 40, 63};
    struct pager_stats st;
    session(PAGER_LAZY, touch, sizeof touch / sizeof touch[0], &st);
    /* 8 touched + page 41, then page 5 again as a zero page. */
    assert_int_equal(st.pages_served, 9);
    assert_int_equal(st.zero_pages, 1);
    assert_true(st.removes >= 1);
    assert_int_equal(st.recorded, 0);
    rm_snap_dir();
}

static void test_pager_record_then_prefetch(void **state)
{
    (void)state;
    int probe = open_uffd();
    if (skip_no_uffd(probe))
        skip();
    close(probe);
    make_snap_dir();
    const int touch[] = {3, 4, 7, 20, 21, 22, 50};
    struct pager_stats st;
    session(PAGER_RECORD, touch, sizeof touch / sizeof touch[0], &st);
    /* 7 touched, page 5 (written), page 41; then page 5 again as a zero page. */
    assert_int_equal(st.pages_served, 9);
    assert_int_equal(st.zero_pages, 1);
    assert_int_equal(st.recorded, 10); /* every install, in fault order (page 5 twice) */
    char path[128];
    snprintf(path, sizeof path, "%s/ws.pages", snap_dir);
    assert_int_equal(access(path, F_OK), 0);
    /* Next restore: the working set is installed up front; only the rest faults. */
    session(PAGER_PREFETCH, touch, sizeof touch / sizeof touch[0], &st);
    assert_int_equal(st.prefetch_ok, 1);
    assert_int_equal(st.prefetch_pages, 9); /* 3,4,5,7,20,21,22,41,50 */
    assert_int_equal(st.prefetch_regions, 5); /* runs 3-5, 7, 20-22, 41, 50 */
    assert_int_equal(st.pages_served, 0);
    assert_int_equal(st.zero_pages, 1);
    rm_snap_dir();
}

/* Flips one byte of ws.pages at off (from the end if negative). */
static void poke_ws(long off, uint8_t xor)
{
    char path[128];
    snprintf(path, sizeof path, "%s/ws.pages", snap_dir);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    off_t at = off < 0 ? st.st_size + off : off;
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, at), 1);
    b ^= xor;
    assert_int_equal(pwrite(fd, &b, 1, at), 1);
    close(fd);
}

/* A damaged page is never installed: the prefetch is refused, the page served from the
 * memory file (check_page in session() verifies the bytes), and a new set recorded. */
static void test_pager_prefetch_bad_page(void **state)
{
    (void)state;
    int probe = open_uffd();
    if (skip_no_uffd(probe))
        skip();
    close(probe);
    make_snap_dir();
    const int touch[] = {3, 4, 7, 20};
    struct pager_stats st;
    session(PAGER_RECORD, touch, 4, &st);
    poke_ws(-PG + 17, 0x40); /* a byte of the last page's data */
    session(PAGER_PREFETCH, touch, 4, &st);
    assert_int_equal(st.prefetch_ok, 0);
    assert_non_null(strstr(st.prefetch_error, "fails its checksum"));
    assert_true(st.recording || st.recorded > 0);
    /* The new recording is whole again. */
    session(PAGER_PREFETCH, touch, 4, &st);
    assert_int_equal(st.prefetch_ok, 1);
    assert_int_equal(st.pages_served, 0);
    rm_snap_dir();
}

/* A working set made from another snapshot (other identity) is refused. */
static void test_pager_prefetch_other_snapshot(void **state)
{
    (void)state;
    int probe = open_uffd();
    if (skip_no_uffd(probe))
        skip();
    close(probe);
    make_snap_dir();
    const int touch[] = {3, 4};
    struct pager_stats st;
    session(PAGER_RECORD, touch, 2, &st);
    poke_ws(48, 0x01); /* the identity's first byte */
    session(PAGER_PREFETCH, touch, 2, &st);
    assert_int_equal(st.prefetch_ok, 0);
    assert_non_null(strstr(st.prefetch_error, "another snapshot"));
    rm_snap_dir();
}

static void test_pager_prefetch_without_ws(void **state)
{
    (void)state;
    int probe = open_uffd();
    if (skip_no_uffd(probe))
        skip();
    close(probe);
    make_snap_dir();
    const int touch[] = {1, 2};
    struct pager_stats st;
    session(PAGER_PREFETCH, touch, 2, &st);
    assert_int_equal(st.prefetch_ok, 0);
    assert_non_null(strstr(st.prefetch_error, "ws.pages"));
    assert_int_equal(st.pages_served, 4); /* 1, 2, 5, 41 */
    rm_snap_dir();
}

int main(void)
{
    /* The page counts below are per fault; miss batching is tested in test_pager.c. */
    setenv("THAW_PAGER_BATCH", "1", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ok),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_parse_unchecked_file_size),
        cmocka_unit_test(test_recv_malformed),
        cmocka_unit_test(test_send_recv_roundtrip),
        cmocka_unit_test(test_pager_lazy),
        cmocka_unit_test(test_pager_record_then_prefetch),
        cmocka_unit_test(test_pager_prefetch_without_ws),
        cmocka_unit_test(test_pager_prefetch_bad_page),
        cmocka_unit_test(test_pager_prefetch_other_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
