/* The guest kernel's file system (src/guest/kernel/fs.c) and memory manager
 * (src/guest/kernel/mm.c), compiled for the host and driven through their sys_*
 * entry points.
 *
 * The guest is identity-mapped (page number * 4096 is a real pointer), so a 64 MiB
 * host region is mapped at a fixed low address and plays guest memory:
 *
 *   MAP_BASE + 0         unused first page
 *   MAP_BASE + 4 KiB     scratch: "program" memory for user buffers and path strings
 *   MAP_BASE + 512 KiB   the cpio archive (copied in at every boot)
 *   MAP_BASE + 1 MiB     free_base: mm's bitmaps, then brk, mmap, the stack on top
 *   MAP_BASE + 64 MiB    end of memory (mem_size for user_range_ok)
 *
 * Every test runs in a process of its own, forked from main, and boots afresh there
 * (mm_init, fs_init): like a guest kernel, fs.c and mm.c keep state in static
 * variables that their init functions expect to find zeroed (node_count,
 * pages_used), so each test needs a fresh copy of them. The kernel's own headers
 * define errno values and O_ and MAP_ flags, so no libc header that defines those is
 * included here (no errno.h, fcntl.h, sys/mman.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "forked_tests.h"

#include "syscalls.h" /* src/guest/kernel: kernel.h, linux_abi.h */
#include "fs.h"
#include "pipe.h"
#include "guard.h"
#include "common/cpio.h"
#include "host/function/cpio_writer.h"

/* Not in a header: mm.c declares it itself. */
int64_t fs_map_file(int fd, void *dst, uint64_t len, uint64_t off);
/* From libc; <sys/mman.h> would clash with linux_abi.h's PROT_ and MAP_ macros. */
extern void *mmap(void *addr, size_t len, int prot, int flags, int fd, long off);

#define PAGE 4096ull
#define MAP_BASE 0x40000000ull
#define MAP_SIZE (64ull << 20)
#define SCRATCH_BASE (MAP_BASE + PAGE)
#define SCRATCH_END (MAP_BASE + (512ull << 10))
#define ARCHIVE_BASE SCRATCH_END
#define ARCHIVE_MAX (512ull << 10)
#define FREE_BASE (MAP_BASE + (1ull << 20))
#define MEM_END (MAP_BASE + MAP_SIZE)
#define STACK_SIZE (8ull << 20)

#define ANON (MAP_PRIVATE | MAP_ANONYMOUS)
#define RW (PROT_READ | PROT_WRITE)

/* ---- shims for what the kernel objects need --------------------------------------- */

static struct thaw_boot_info the_boot_info = {.magic = THAW_BOOT_MAGIC, .max_request = 1u << 20};
volatile struct thaw_boot_info *boot_info = &the_boot_info;

/* In the guest the kernel's stack lies inside guest memory, so the kernel may pass
 * its own locals to functions that check user pointers (writev's gather buffer,
 * statx's struct linux_stat). Here that stack is the host thread's: main lets
 * uaccess.c accept the 8 MiB below its frame too. */
#define HOST_STACK_ALLOWANCE (8ull << 20)

void klog(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("klog: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

_Noreturn void kpanic(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    fail_msg("kernel panic: %s", msg);
    abort();
}

/* Console output, per stream. */
static char console_buf[4][8192];
static size_t console_len[4];
static unsigned console_calls;

void console_write(unsigned stream, const void *buf, size_t len)
{
    assert_true(stream >= 1 && stream <= 3);
    assert_true(len <= sizeof console_buf[0] - console_len[stream]);
    memcpy(console_buf[stream] + console_len[stream], buf, len);
    console_len[stream] += len;
    console_calls++;
}

/* Deterministic "entropy": a running counter. */
static uint8_t random_next;
static unsigned random_calls;

void random_bytes(void *buf, size_t len)
{
    uint8_t *b = buf;
    for (size_t i = 0; i < len; i++)
        b[i] = random_next++;
    random_calls++;
}

/* /dev/invoke: reads hand out "REQUEST", writes are collected. */
static unsigned invoke_reads, invoke_writes;
static char invoke_out[256];
static size_t invoke_out_len;

int64_t invoke_read(void *buf, uint64_t len)
{
    static const char req[] = "REQUEST";
    invoke_reads++;
    uint64_t n = MIN(len, sizeof req - 1);
    memcpy(buf, req, n);
    return (int64_t)n;
}

uint64_t invoke_pending(void)
{
    return 4242; /* what FIONREAD on /dev/invoke must report */
}

/* time.c: pipe.c's epoll_wait sleeps on it; a fake clock that advances 1 ms a call. */
static uint64_t fake_ns;
uint64_t time_monotonic_ns(void) { return fake_ns += 1000000; }
uint64_t time_realtime_ns(void) { return 1700000000ull * 1000000000ull; }

/* sched.c (tests/guest/test_guest_threads.c tests it): one thread here. A wait on the
 * I/O channel runs io_other_thread if a test set one (what another thread would do
 * meanwhile: the waiter is woken if it calls thread_io_changed), else a wait without
 * a deadline could never end, and one with a deadline times out once the fake clock
 * has passed it. The deadline and what of the last wait are kept for the tests. */
static int waits, io_changes;
static uint64_t last_deadline;
static const char *last_wait_what;
static void (*io_other_thread)(void);
int64_t thread_io_wait(uint64_t deadline, const char *what)
{
    waits++;
    last_deadline = deadline;
    last_wait_what = what;
    if (io_other_thread) {
        void (*other)(void) = io_other_thread;
        int before = io_changes;
        io_other_thread = 0;
        other();
        if (io_changes != before)
            return 0; /* woken */
    }
    if (!deadline)
        fail_msg("the only thread blocked forever: %s", what);
    while (time_monotonic_ns() < deadline)
        ;
    return -110; /* -ETIMEDOUT */
}

void thread_io_changed(void) { io_changes++; }

/* entry.S's ring-0 CR3 reload: counted. */
static int tlb_flushes;
void arch_flush_tlb(void) { tlb_flushes++; }

/* klib.c's formatter: the host's does the same for the formats the kernel uses. */
int ksnprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

/* sched.c's, for ppoll's relative timeouts (the absolute kinds are sched.c's tests). */
int64_t thread_deadline(const struct linux_timespec *ts, bool absolute, uint64_t clk, uint64_t *deadline)
{
    (void)clk;
    assert_false(absolute);
    *deadline = 0;
    if (!ts)
        return 0;
    if (!user_range_ok((uint64_t)(uintptr_t)ts, sizeof *ts))
        return -EFAULT;
    if (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000)
        return -EINVAL;
    *deadline = time_monotonic_ns() + (uint64_t)ts->tv_sec * 1000000000u + (uint64_t)ts->tv_nsec;
    return 0;
}

bool invoke_ended(void)
{
    return false;
}

int64_t invoke_write(const void *buf, uint64_t len)
{
    invoke_writes++;
    if (len > sizeof invoke_out - invoke_out_len)
        return -EFBIG;
    memcpy(invoke_out + invoke_out_len, buf, len);
    invoke_out_len += len;
    return (int64_t)len;
}

/* The one hypercall mm.c makes: DISCARD, which the monitor implements by dropping
 * the pages (they read back as zero). Anything else is a test failure. */
static unsigned discard_calls;
static uint64_t discard_bytes;

void hypercall_trap(uint32_t port, const volatile void *arg)
{
    if (port != THAW_HC_PORT_BASE + THAW_HC_DISCARD)
        fail_msg("unexpected hypercall on port %#x", port);
    const volatile struct thaw_hc_discard *d = arg;
    uint64_t addr = d->addr, len = d->len;
    /* What the host's decoder checks, plus: never the kernel's own bookkeeping. */
    assert_int_equal(addr % PAGE, 0);
    assert_int_equal(len % PAGE, 0);
    assert_true(addr >= FREE_BASE && addr <= MEM_END && len <= MEM_END - addr);
    memset((void *)(uintptr_t)addr, 0, len);
    discard_calls++;
    discard_bytes += len;
}

/* ---- test fixture ------------------------------------------------------------------ */

static uint8_t *archive;  /* host copy, copied into guest memory at every boot */
static size_t archive_len;
static uint64_t scratch_used;

/* User memory for buffers and strings (16-byte aligned, zeroed). */
static void *ualloc(size_t n)
{
    uint64_t at = SCRATCH_BASE + scratch_used;
    scratch_used += (n + 15) & ~(size_t)15;
    assert_true(SCRATCH_BASE + scratch_used <= SCRATCH_END);
    memset((void *)(uintptr_t)at, 0, n);
    return (void *)(uintptr_t)at;
}

/* A path (or any string) copied into user memory. */
static const char *U(const char *s)
{
    char *p = ualloc(strlen(s) + 1);
    memcpy(p, s, strlen(s) + 1);
    return p;
}

static void load_archive(const uint8_t *a, size_t len)
{
    assert_true(len <= ARCHIVE_MAX);
    if (len)
        memcpy((void *)(uintptr_t)ARCHIVE_BASE, a, len);
    fs_init(len ? (const uint8_t *)(uintptr_t)ARCHIVE_BASE : NULL, len);
}

/* Memory only: for tests that call fs_init themselves. The process is fresh (see
 * main), so guest memory is still all zero, as a new guest's is. */
static int boot_mm(void **state)
{
    (void)state;
    uaccess_init(MEM_END);
    mm_init(FREE_BASE, MEM_END, STACK_SIZE);
    return 0;
}

/* Memory and the test archive. */
static int boot(void **state)
{
    boot_mm(state);
    load_archive(archive, archive_len);
    return 0;
}

/* ---- building the archive ---------------------------------------------------------- */

struct bytes {
    uint8_t *p;
    size_t len, cap;
};

static void put_bytes(struct bytes *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 256;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void pad4(struct bytes *b)
{
    static const uint8_t zero[4];
    put_bytes(b, zero, (4 - b->len % 4) % 4);
}

/* One newc entry written by hand (the writer has no symlinks). b must start at a
 * 4-byte aligned offset of the archive. */
static void raw_entry(struct bytes *b, const char *name, uint32_t mode, const void *data, size_t size)
{
    static uint32_t ino = 50000;
    char hdr[CPIO_NEWC_HDR_SIZE + 1];
    snprintf(hdr, sizeof hdr, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", ino++, mode,
             0u, 0u, 1u, 1234u, (unsigned)size, 0u, 0u, 0u, 0u, (unsigned)strlen(name) + 1, 0u);
    put_bytes(b, hdr, CPIO_NEWC_HDR_SIZE);
    put_bytes(b, name, strlen(name) + 1);
    pad4(b);
    put_bytes(b, data, size);
    pad4(b);
}

static void raw_symlink(struct bytes *b, const char *name, const char *target)
{
    raw_entry(b, name, 0120777, target, strlen(target));
}

static void raw_trailer(struct bytes *b) { raw_entry(b, "TRAILER!!!", 0, "", 0); }

static uint8_t big_data[10000];

/* Names in /list besides "sub" (a directory) and "lnk" (a symlink). */
static char long_name[256]; /* 255 bytes: the longest component */
static const char *const list_files[] = {"a", "bb", "ccc", "d4", "e-five", "file.six", "seven_777",
                                         "eight.txt", "nine", "ten10", "eleven-eleven", long_name};
#define N_LIST_FILES (sizeof list_files / sizeof list_files[0])

static void add(struct cpio_writer *w, const char *path, const void *data, size_t n, uint32_t mode)
{
    if (cpio_writer_add_file(w, path, data, n, mode) != 0)
        fail_msg("cpio_writer_add_file %s failed", path);
}

static int build_archive(void)
{
    for (size_t i = 0; i < sizeof big_data; i++)
        big_data[i] = (uint8_t)(i * 7 + 3);
    memset(long_name, 'L', 255);

    struct cpio_writer w;
    cpio_writer_init(&w);
    add(&w, "/etc/hostname", "thaw-test\n", 10, 0644);
    add(&w, "/etc/passwd", "root:x:0:0::/:/bin/sh\n", 22, 0644);
    add(&w, "/data/big.bin", big_data, sizeof big_data, 0644);
    add(&w, "/data/empty", "", 0, 0600);
    add(&w, "/bin/tool", "\x7f" "ELF", 4, 0755);
    add(&w, "/usr/lib/python/mod.py", "x = 1\n", 6, 0644);
    add(&w, "/usr/share/data.txt", "shared data\n", 12, 0644);
    for (size_t i = 0; i < N_LIST_FILES; i++) {
        char path[300];
        snprintf(path, sizeof path, "/list/%s", list_files[i]);
        add(&w, path, list_files[i], strlen(list_files[i]), 0644);
    }
    assert_int_equal(cpio_writer_add_dir(&w, "/list/sub"), 0);
    assert_int_equal(cpio_writer_add_dir(&w, "/emptydir"), 0);
    assert_int_equal(cpio_writer_finish(&w), 0);

    /* A second, hand-written archive appended after the first one's trailer and
     * padding (the kernel reads concatenated archives, like the initramfs): symlinks. */
    struct bytes b = {0};
    put_bytes(&b, w.buf, w.len);
    cpio_writer_free(&w);
    assert_int_equal(b.len % 4, 0);
    raw_symlink(&b, "link_hostname", "etc/hostname");
    raw_symlink(&b, "abs_link", "/etc/hostname");
    raw_symlink(&b, "etclink", "etc");
    raw_symlink(&b, "dirlink_rel", "./usr/../etc/");
    raw_symlink(&b, "usr/lib/up", "../share/data.txt");
    raw_symlink(&b, "chain", "link_hostname");
    raw_symlink(&b, "loop_a", "loop_b");
    raw_symlink(&b, "loop_b", "loop_a");
    raw_symlink(&b, "dangling", "nonexistent");
    raw_symlink(&b, "list/lnk", "a");
    raw_trailer(&b);
    archive = b.p;
    archive_len = b.len;

    void *m = mmap((void *)(uintptr_t)MAP_BASE, MAP_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (m != (void *)(uintptr_t)MAP_BASE) {
        fprintf(stderr, "cannot map guest memory at %#llx\n", (unsigned long long)MAP_BASE);
        return -1;
    }
    return 0;
}

/* ---- helpers ------------------------------------------------------------------------- */

static int open_ok(int dirfd, const char *path, uint64_t flags)
{
    int64_t fd = sys_openat(dirfd, U(path), flags, 0);
    if (fd < 0)
        fail_msg("openat(%d, \"%s\", %#llx) = %lld", dirfd, path, (unsigned long long)flags,
                 (long long)fd);
    return (int)fd;
}

static int64_t open_err(int dirfd, const char *path, uint64_t flags)
{
    return sys_openat(dirfd, U(path), flags, 0);
}

/* Reads the whole file at path into user memory; returns its bytes (NUL-terminated). */
static char *slurp(const char *path, int64_t *len)
{
    int fd = open_ok(AT_FDCWD, path, O_RDONLY);
    char *buf = ualloc(16384);
    int64_t total = 0, r;
    while ((r = sys_read(fd, buf + total, 1000)) > 0)
        total += r;
    assert_int_equal(r, 0);
    assert_int_equal(sys_close(fd), 0);
    buf[total] = 0;
    *len = total;
    return buf;
}

static void expect_contents(const char *path, const char *want)
{
    int64_t len;
    char *got = slurp(path, &len);
    if ((size_t)len != strlen(want) || memcmp(got, want, strlen(want)) != 0)
        fail_msg("%s: read \"%s\", want \"%s\"", path, got, want);
}

static struct linux_stat *stat_path(int dirfd, const char *path, uint64_t flags)
{
    struct linux_stat *st = ualloc(sizeof *st);
    int64_t r = sys_newfstatat(dirfd, U(path), st, flags);
    if (r != 0)
        fail_msg("newfstatat(%s) = %lld", path, (long long)r);
    return st;
}

static bool all_bytes(const void *p, uint8_t v, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != v)
            return false;
    return true;
}

static uint64_t free_bytes(void)
{
    uint64_t total, free;
    mm_stats(&total, &free);
    return free;
}

/* ======================================================================================
 * File system
 * ====================================================================================== */

static void test_open_absolute_and_relative(void **state)
{
    (void)state;
    expect_contents("/etc/hostname", "thaw-test\n");
    expect_contents("etc/hostname", "thaw-test\n"); /* cwd is / at boot */
    expect_contents("//etc///hostname", "thaw-test\n");
    int dir = open_ok(AT_FDCWD, "/etc", O_RDONLY | O_DIRECTORY);
    int fd = open_ok(dir, "passwd", O_RDONLY);
    char *buf = ualloc(64);
    assert_int_equal(sys_read(fd, buf, 64), 22);
    assert_memory_equal(buf, "root:x:0:0::/:/bin/sh\n", 22);
    /* An absolute path ignores dirfd. */
    int fd2 = open_ok(dir, "/usr/share/data.txt", O_RDONLY);
    assert_int_equal(sys_read(fd2, buf, 64), 12);
    /* fds are handed out lowest first: 0-2 are the standard ones. */
    assert_int_equal(dir, 3);
    assert_int_equal(fd, 4);
    assert_int_equal(fd2, 5);
    assert_int_equal(sys_close(fd), 0);
    assert_int_equal(open_ok(AT_FDCWD, "/bin/tool", O_RDONLY), 4);
}

static void test_dot_and_dotdot(void **state)
{
    (void)state;
    expect_contents("/etc/./hostname", "thaw-test\n");
    expect_contents("/etc/../etc/hostname", "thaw-test\n");
    expect_contents("/../../etc/hostname", "thaw-test\n"); /* .. of / is / */
    expect_contents("./etc/hostname", "thaw-test\n");
    expect_contents("usr/lib/python/../../share/./data.txt", "shared data\n");
    int d = open_ok(AT_FDCWD, "/usr/lib", O_RDONLY | O_DIRECTORY);
    int fd = open_ok(d, "../share/data.txt", O_RDONLY);
    assert_true(fd > d);
    /* "." and ".." name directories. */
    struct linux_stat *st = stat_path(AT_FDCWD, "/usr/lib/..", 0);
    struct linux_stat *usr = stat_path(AT_FDCWD, "/usr", 0);
    assert_int_equal(st->st_ino, usr->st_ino);
    st = stat_path(d, ".", 0);
    assert_int_equal(st->st_mode & S_IFMT, S_IFDIR);
    struct linux_stat *root = stat_path(AT_FDCWD, "/", 0);
    st = stat_path(AT_FDCWD, "/..", 0);
    assert_int_equal(st->st_ino, root->st_ino);
}

static void test_symlinks(void **state)
{
    (void)state;
    expect_contents("/link_hostname", "thaw-test\n");     /* relative target */
    expect_contents("/abs_link", "thaw-test\n");          /* absolute target */
    expect_contents("/chain", "thaw-test\n");             /* link to a link */
    expect_contents("/etclink/passwd", "root:x:0:0::/:/bin/sh\n"); /* directory link in the middle */
    expect_contents("/dirlink_rel/hostname", "thaw-test\n");
    expect_contents("/usr/lib/up", "shared data\n");      /* target relative to the link's dir */
    int d = open_ok(AT_FDCWD, "/etclink", O_RDONLY | O_DIRECTORY);
    struct linux_stat *st = ualloc(sizeof *st);
    assert_int_equal(sys_fstat(d, st), 0);
    assert_int_equal(st->st_ino, stat_path(AT_FDCWD, "/etc", 0)->st_ino);

    assert_int_equal(open_err(AT_FDCWD, "/loop_a", O_RDONLY), -ELOOP);
    assert_int_equal(open_err(AT_FDCWD, "/loop_a/x", O_RDONLY), -ELOOP);
    assert_int_equal(open_err(AT_FDCWD, "/dangling", O_RDONLY), -ENOENT);
    /* O_NOFOLLOW refuses a final symlink but follows ones in the middle. */
    assert_int_equal(open_err(AT_FDCWD, "/abs_link", O_RDONLY | O_NOFOLLOW), -ELOOP);
    int fd = open_ok(AT_FDCWD, "/etclink/hostname", O_RDONLY | O_NOFOLLOW);
    assert_true(fd > 2);

    /* lstat-style: the link itself. */
    st = stat_path(AT_FDCWD, "/abs_link", AT_SYMLINK_NOFOLLOW);
    assert_int_equal(st->st_mode & S_IFMT, S_IFLNK);
    assert_int_equal(st->st_size, strlen("/etc/hostname"));
    st = stat_path(AT_FDCWD, "/abs_link", 0);
    assert_int_equal(st->st_mode & S_IFMT, S_IFREG);
    assert_int_equal(st->st_size, 10);
}

static void test_readlinkat(void **state)
{
    (void)state;
    char *buf = ualloc(64);
    assert_int_equal(sys_readlinkat(AT_FDCWD, U("/abs_link"), buf, 64), 13);
    assert_memory_equal(buf, "/etc/hostname", 13);
    /* No NUL is added, and a short buffer truncates. */
    memset(buf, 'z', 64);
    assert_int_equal(sys_readlinkat(AT_FDCWD, U("abs_link"), buf, 4), 4);
    assert_memory_equal(buf, "/etcz", 5);
    int d = open_ok(AT_FDCWD, "/usr/lib", O_RDONLY);
    assert_int_equal(sys_readlinkat(d, U("up"), buf, 64), 17);
    assert_memory_equal(buf, "../share/data.txt", 17);
    /* The final component is not followed; earlier ones are. */
    assert_int_equal(sys_readlinkat(AT_FDCWD, U("/etclink"), buf, 64), 3);
    assert_int_equal(sys_readlinkat(AT_FDCWD, U("/dangling"), buf, 64), 11);
    assert_int_equal(sys_readlinkat(AT_FDCWD, U("/etc/hostname"), buf, 64), -EINVAL);
    assert_int_equal(sys_readlinkat(AT_FDCWD, U("/etc"), buf, 64), -EINVAL);
    assert_int_equal(sys_readlinkat(AT_FDCWD, U("/nope"), buf, 64), -ENOENT);
    assert_int_equal(sys_readlinkat(AT_FDCWD, U("/abs_link"), (char *)16, 64), -EFAULT);
    assert_int_equal(sys_readlinkat(AT_FDCWD, U(""), buf, 64), -ENOENT);
}

static void test_open_errors(void **state)
{
    (void)state;
    assert_int_equal(open_err(AT_FDCWD, "/nope", O_RDONLY), -ENOENT);
    assert_int_equal(open_err(AT_FDCWD, "/etc/nope", O_RDONLY), -ENOENT);
    assert_int_equal(open_err(AT_FDCWD, "/nope/hostname", O_RDONLY), -ENOENT);
    assert_int_equal(open_err(AT_FDCWD, "", O_RDONLY), -ENOENT);
    /* A file used as a directory. */
    assert_int_equal(open_err(AT_FDCWD, "/etc/hostname/x", O_RDONLY), -ENOTDIR);
    assert_int_equal(open_err(AT_FDCWD, "/etc/hostname/", O_RDONLY), -ENOTDIR);
    assert_int_equal(open_err(AT_FDCWD, "/etc/hostname/.", O_RDONLY), -ENOTDIR);
    assert_int_equal(open_err(AT_FDCWD, "/etc/hostname", O_RDONLY | O_DIRECTORY), -ENOTDIR);
    assert_int_equal(open_err(AT_FDCWD, "/link_hostname", O_RDONLY | O_DIRECTORY), -ENOTDIR);
    int d = open_ok(AT_FDCWD, "/etc/", O_RDONLY | O_DIRECTORY);
    assert_true(d > 2);
    /* Read-only file system. */
    assert_int_equal(open_err(AT_FDCWD, "/etc/newfile", O_WRONLY | O_CREAT), -EROFS);
    assert_true(sys_openat(AT_FDCWD, U("/tmp/x"), O_RDWR | O_CREAT | O_TRUNC, 0644) > 2); /* /tmp is writable */
    assert_int_equal(open_err(AT_FDCWD, "/etc/hostname", O_WRONLY), -EROFS);
    assert_int_equal(open_err(AT_FDCWD, "/etc/hostname", O_RDWR), -EROFS);
    assert_int_equal(open_err(AT_FDCWD, "/etc/hostname", O_RDONLY | O_TRUNC), -EROFS);
    assert_int_equal(open_err(AT_FDCWD, "/etc/hostname", O_RDONLY | O_CREAT | O_EXCL), -EEXIST);
    int fd = open_ok(AT_FDCWD, "/etc/hostname", O_RDONLY | O_CREAT); /* exists: just opens */
    assert_true(fd > d);
    assert_int_equal(open_err(AT_FDCWD, "/etc", O_WRONLY), -EISDIR);
    assert_int_equal(open_err(AT_FDCWD, "/etc", O_RDWR), -EISDIR);
    /* Bad dirfd: not open, or not a directory (relative paths only). */
    assert_int_equal(open_err(77, "hostname", O_RDONLY), -EBADF);
    assert_int_equal(open_err(-1, "hostname", O_RDONLY), -EBADF);
    assert_int_equal(open_err(fd, "hostname", O_RDONLY), -ENOTDIR);
    assert_int_equal(open_err(1, "hostname", O_RDONLY), -ENOTDIR);
}

static void test_bad_paths(void **state)
{
    (void)state;
    /* Path pointers outside user memory. */
    assert_int_equal(sys_openat(AT_FDCWD, NULL, O_RDONLY, 0), -EFAULT);
    assert_int_equal(sys_openat(AT_FDCWD, (const char *)4095, O_RDONLY, 0), -EFAULT);
    assert_int_equal(sys_openat(AT_FDCWD, (const char *)(uintptr_t)MEM_END, O_RDONLY, 0), -EFAULT);
    /* A string that runs into the end of memory without a NUL. */
    char *end = (char *)(uintptr_t)(MEM_END - 3);
    memcpy(end, "abc", 3);
    assert_int_equal(sys_openat(AT_FDCWD, end, O_RDONLY, 0), -EFAULT);
    /* 4096 bytes without a NUL: too long; 4095 is fine (and then not found). */
    char *p = ualloc(4097);
    memset(p, 'a', 4096);
    assert_int_equal(sys_openat(AT_FDCWD, p, O_RDONLY, 0), -ENAMETOOLONG);
    p[4095] = 0;
    for (int i = 1; i < 4095; i += 2)
        p[i] = '/';
    assert_int_equal(sys_openat(AT_FDCWD, p, O_RDONLY, 0), -ENOENT);
    /* A component over 255 bytes. */
    char *q = ualloc(300);
    memset(q, 'b', 299);
    q[0] = '/';
    assert_int_equal(sys_openat(AT_FDCWD, q, O_RDONLY, 0), -ENAMETOOLONG);
    /* Exactly 255 is fine. */
    char path[300];
    snprintf(path, sizeof path, "/list/%s", long_name);
    expect_contents(path, long_name);
    assert_int_equal(sys_chdir(q), -ENAMETOOLONG);
    assert_int_equal(sys_chdir(NULL), -EFAULT);
    struct linux_stat *st = ualloc(sizeof *st);
    assert_int_equal(sys_newfstatat(AT_FDCWD, q, st, 0), -ENAMETOOLONG);
    assert_int_equal(sys_newfstatat(AT_FDCWD, U("/etc"), (struct linux_stat *)8, 0), -EFAULT);
}

static void test_read_pread_lseek(void **state)
{
    (void)state;
    int fd = open_ok(AT_FDCWD, "/data/big.bin", O_RDONLY);
    uint8_t *buf = ualloc(sizeof big_data + 100);
    /* Sequential reads in odd-sized pieces, up to EOF. */
    size_t got = 0;
    for (;;) {
        int64_t r = sys_read(fd, buf + got, 777);
        assert_true(r >= 0);
        if (r == 0)
            break;
        got += (size_t)r;
    }
    assert_int_equal(got, sizeof big_data);
    assert_memory_equal(buf, big_data, sizeof big_data);
    assert_int_equal(sys_read(fd, buf, 10), 0);
    assert_int_equal(sys_lseek(fd, 0, SEEK_CUR), sizeof big_data);

    /* lseek from each origin. */
    assert_int_equal(sys_lseek(fd, 100, SEEK_SET), 100);
    assert_int_equal(sys_read(fd, buf, 4), 4);
    assert_memory_equal(buf, big_data + 100, 4);
    assert_int_equal(sys_lseek(fd, 10, SEEK_CUR), 114);
    assert_int_equal(sys_lseek(fd, -3, SEEK_END), sizeof big_data - 3);
    assert_int_equal(sys_read(fd, buf, 100), 3);
    assert_memory_equal(buf, big_data + sizeof big_data - 3, 3);
    /* Past the end is allowed and reads nothing. */
    assert_int_equal(sys_lseek(fd, 5, SEEK_END), sizeof big_data + 5);
    assert_int_equal(sys_read(fd, buf, 100), 0);
    /* Negative results, overflow and bad whence are refused and change nothing. */
    assert_int_equal(sys_lseek(fd, 50, SEEK_SET), 50);
    assert_int_equal(sys_lseek(fd, -1, SEEK_SET), -EINVAL);
    assert_int_equal(sys_lseek(fd, -51, SEEK_CUR), -EINVAL);
    assert_int_equal(sys_lseek(fd, -(int64_t)sizeof big_data - 1, SEEK_END), -EINVAL);
    assert_int_equal(sys_lseek(fd, INT64_MAX, SEEK_END), -EINVAL);
    assert_int_equal(sys_lseek(fd, INT64_MIN, SEEK_CUR), -EINVAL);
    assert_int_equal(sys_lseek(fd, 0, 3), -EINVAL);
    assert_int_equal(sys_lseek(fd, 0, -1), -EINVAL);
    assert_int_equal(sys_lseek(fd, 0, SEEK_CUR), 50);

    /* pread: at an offset, without moving the file offset. */
    assert_int_equal(sys_pread64(fd, buf, 16, 9000), 16);
    assert_memory_equal(buf, big_data + 9000, 16);
    assert_int_equal(sys_pread64(fd, buf, 100, 9990), 10);
    assert_int_equal(sys_pread64(fd, buf, 100, 10000), 0);
    assert_int_equal(sys_pread64(fd, buf, 100, 1 << 30), 0);
    assert_int_equal(sys_pread64(fd, buf, 100, -1), -EINVAL);
    assert_int_equal(sys_pread64(fd, buf, 0, 0), 0);
    assert_int_equal(sys_lseek(fd, 0, SEEK_CUR), 50);
    assert_int_equal(sys_pread64(fd, (void *)100, 10, 0), -EFAULT);
    assert_int_equal(sys_pread64(99, buf, 10, 0), -EBADF);
    assert_int_equal(sys_pread64(1, buf, 10, 0), -ESPIPE);
    int null = open_ok(AT_FDCWD, "/dev/null", O_RDONLY);
    assert_int_equal(sys_pread64(null, buf, 10, 0), -ESPIPE);
    assert_int_equal(sys_lseek(1, 0, SEEK_SET), -ESPIPE);
    assert_int_equal(sys_lseek(null, 0, SEEK_SET), -ESPIPE);
    assert_int_equal(sys_lseek(99, 0, SEEK_SET), -EBADF);

    /* Buffers outside user memory. */
    assert_int_equal(sys_read(fd, NULL, 10), -EFAULT);
    assert_int_equal(sys_read(fd, (void *)(uintptr_t)(MEM_END - 5), 10), -EFAULT);
    assert_int_equal(sys_read(fd, (void *)(uintptr_t)(MEM_END - 5), 5), 5);

    /* Empty files and directories. */
    int e = open_ok(AT_FDCWD, "/data/empty", O_RDONLY);
    assert_int_equal(sys_read(e, buf, 10), 0);
    assert_int_equal(sys_lseek(e, 0, SEEK_END), 0);
    int d = open_ok(AT_FDCWD, "/data", O_RDONLY);
    assert_int_equal(sys_read(d, buf, 10), -EISDIR);

    /* readv fills the buffers in order and stops at EOF. */
    int h = open_ok(AT_FDCWD, "/etc/hostname", O_RDONLY);
    struct linux_iovec *iov = ualloc(3 * sizeof *iov);
    char *a = ualloc(4), *b = ualloc(4), *c = ualloc(8);
    iov[0] = (struct linux_iovec){(uint64_t)(uintptr_t)a, 4};
    iov[1] = (struct linux_iovec){(uint64_t)(uintptr_t)b, 4};
    iov[2] = (struct linux_iovec){(uint64_t)(uintptr_t)c, 8};
    assert_int_equal(sys_readv(h, iov, 3), 10);
    assert_memory_equal(a, "thaw", 4);
    assert_memory_equal(b, "-tes", 4);
    assert_memory_equal(c, "t\n", 2);
    assert_int_equal(sys_readv(h, iov, -1), -EINVAL);
    assert_int_equal(sys_readv(h, iov, 1025), -EINVAL);
}

static void test_stat(void **state)
{
    (void)state;
    struct linux_stat *st = stat_path(AT_FDCWD, "/data/big.bin", 0);
    assert_int_equal(st->st_mode, S_IFREG | 0644);
    assert_int_equal(st->st_size, sizeof big_data);
    assert_int_equal(st->st_blocks, (sizeof big_data + 511) / 512);
    assert_int_equal(st->st_nlink, 1);
    assert_int_equal(st->st_blksize, 4096);
    assert_true(st->st_ino != 0);
    st = stat_path(AT_FDCWD, "/bin/tool", 0);
    assert_int_equal(st->st_mode, S_IFREG | 0755);
    assert_int_equal(st->st_size, 4);
    st = stat_path(AT_FDCWD, "/data/empty", 0);
    assert_int_equal(st->st_mode, S_IFREG | 0600);
    assert_int_equal(st->st_size, 0);
    assert_int_equal(st->st_blocks, 0);
    st = stat_path(AT_FDCWD, "/etc", 0);
    assert_int_equal(st->st_mode & S_IFMT, S_IFDIR);
    assert_int_equal(st->st_nlink, 2);
    st = stat_path(AT_FDCWD, "/", 0);
    assert_int_equal(st->st_mode & S_IFMT, S_IFDIR);
    st = stat_path(AT_FDCWD, "/dev/null", 0);
    assert_int_equal(st->st_mode, S_IFCHR | 0666);
    st = stat_path(AT_FDCWD, "/tmp", 0);
    assert_int_equal(st->st_mode & S_IFMT, S_IFDIR);

    /* fstat agrees with newfstatat, also via AT_EMPTY_PATH and a dirfd. */
    struct linux_stat *by_path = stat_path(AT_FDCWD, "/data/big.bin", 0);
    int fd = open_ok(AT_FDCWD, "/data/big.bin", O_RDONLY);
    struct linux_stat *by_fd = ualloc(sizeof *by_fd);
    assert_int_equal(sys_fstat(fd, by_fd), 0);
    assert_memory_equal(by_fd, by_path, sizeof *by_fd);
    by_fd = stat_path(fd, "", AT_EMPTY_PATH);
    assert_memory_equal(by_fd, by_path, sizeof *by_fd);
    int d = open_ok(AT_FDCWD, "/data", O_RDONLY);
    by_fd = stat_path(d, "big.bin", 0);
    assert_memory_equal(by_fd, by_path, sizeof *by_fd);
    by_fd = stat_path(AT_FDCWD, "", AT_EMPTY_PATH); /* the cwd */
    assert_int_equal(by_fd->st_ino, stat_path(AT_FDCWD, "/", 0)->st_ino);
    /* Without AT_EMPTY_PATH an empty path does not exist. */
    assert_int_equal(sys_newfstatat(fd, U(""), by_fd, 0), -ENOENT);
    assert_int_equal(sys_newfstatat(AT_FDCWD, U("/nope"), by_fd, 0), -ENOENT);
    assert_int_equal(sys_newfstatat(AT_FDCWD, U("/etc/hostname/x"), by_fd, 0), -ENOTDIR);
    assert_int_equal(sys_newfstatat(fd, U("x"), by_fd, 0), -ENOTDIR);

    /* The console and device files are character devices. */
    assert_int_equal(sys_fstat(1, by_fd), 0);
    assert_int_equal(by_fd->st_mode & S_IFMT, S_IFCHR);
    int null = open_ok(AT_FDCWD, "/dev/null", O_RDWR);
    assert_int_equal(sys_fstat(null, by_fd), 0);
    assert_int_equal(by_fd->st_mode, S_IFCHR | 0666);
    assert_int_equal(sys_fstat(99, by_fd), -EBADF);
    assert_int_equal(sys_fstat(fd, (struct linux_stat *)0), -EFAULT);

    /* statx carries the same facts. */
    struct linux_statx *sx = ualloc(sizeof *sx);
    assert_int_equal(sys_statx(AT_FDCWD, U("/data/big.bin"), 0, 0x7ff, sx), 0);
    assert_int_equal(sx->stx_size, sizeof big_data);
    assert_int_equal(sx->stx_mode, S_IFREG | 0644);
    assert_int_equal(sx->stx_ino, by_path->st_ino);

    /* faccessat: writes are refused except to devices. */
    assert_int_equal(sys_faccessat(AT_FDCWD, U("/etc/hostname"), 4), 0);
    assert_int_equal(sys_faccessat(AT_FDCWD, U("/etc/hostname"), 2), -EROFS);
    assert_int_equal(sys_faccessat(AT_FDCWD, U("/dev/null"), 2), 0);
    assert_int_equal(sys_faccessat(AT_FDCWD, U("/nope"), 0), -ENOENT);
}

/* One directory entry as collected from getdents64. */
struct dent {
    char name[256];
    uint8_t type;
    uint64_t ino;
};

/* Parses one getdents64 result into ents; checks the record format. */
static size_t parse_dents(const uint8_t *buf, int64_t n, struct dent *ents, size_t at, size_t max)
{
    int64_t pos = 0;
    while (pos < n) {
        const struct linux_dirent64 *d = (const void *)(buf + pos);
        assert_true(d->d_reclen >= offsetof(struct linux_dirent64, d_name) + 1);
        assert_int_equal(d->d_reclen % 8, 0);
        assert_true(pos + d->d_reclen <= n);
        size_t len = strnlen(d->d_name, d->d_reclen - offsetof(struct linux_dirent64, d_name));
        assert_true(len < d->d_reclen - offsetof(struct linux_dirent64, d_name)); /* NUL-terminated */
        assert_true(at < max);
        memcpy(ents[at].name, d->d_name, len + 1);
        ents[at].type = d->d_type;
        ents[at].ino = d->d_ino;
        at++;
        pos += d->d_reclen;
    }
    assert_int_equal(pos, n);
    return at;
}

static const struct dent *find_dent(const struct dent *ents, size_t n, const char *name)
{
    const struct dent *found = NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(ents[i].name, name) == 0) {
            if (found)
                fail_msg("entry \"%s\" listed twice", name);
            found = &ents[i];
        }
    return found;
}

static void test_getdents_small_buffers(void **state)
{
    (void)state;
    int fd = open_ok(AT_FDCWD, "/list", O_RDONLY | O_DIRECTORY);
    uint8_t *buf = ualloc(4096);
    struct dent ents[64];
    size_t n = 0;
    /* A buffer that fits no entry. */
    assert_int_equal(sys_getdents64(fd, buf, 16), -EINVAL);
    /* 40 bytes fit one short name at a time, until the 255-byte name, which needs a
     * bigger buffer: EINVAL, without losing the entry. */
    int calls = 0;
    for (;;) {
        int64_t r = sys_getdents64(fd, buf, 40);
        if (r == -EINVAL)
            break;
        assert_true(r > 0);
        n = parse_dents(buf, r, ents, n, 64);
        calls++;
    }
    /* Then buffers just big enough for the longest entry. */
    const uint64_t sizes[] = {300, 288, 512, 300};
    for (int i = 0;; i++) {
        int64_t r = sys_getdents64(fd, buf, sizes[i % 4]);
        assert_true(r >= 0);
        if (r == 0)
            break;
        n = parse_dents(buf, r, ents, n, 64);
        calls++;
    }
    assert_true(calls >= 4);
    assert_int_equal(sys_getdents64(fd, buf, 4096), 0); /* stays at the end */
    /* Every entry exactly once: ".", "..", the files, "sub", "lnk". */
    assert_int_equal(n, 2 + N_LIST_FILES + 2);
    const struct dent *e = find_dent(ents, n, ".");
    assert_non_null(e);
    assert_int_equal(e->type, DT_DIR);
    assert_int_equal(e->ino, stat_path(AT_FDCWD, "/list", 0)->st_ino);
    e = find_dent(ents, n, "..");
    assert_non_null(e);
    assert_int_equal(e->ino, stat_path(AT_FDCWD, "/", 0)->st_ino);
    for (size_t i = 0; i < N_LIST_FILES; i++) {
        e = find_dent(ents, n, list_files[i]);
        if (!e)
            fail_msg("\"%.20s\" missing from the listing", list_files[i]);
        assert_int_equal(e->type, DT_REG);
        char path[300];
        snprintf(path, sizeof path, "/list/%s", list_files[i]);
        assert_int_equal(e->ino, stat_path(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW)->st_ino);
    }
    e = find_dent(ents, n, "sub");
    assert_non_null(e);
    assert_int_equal(e->type, DT_DIR);
    e = find_dent(ents, n, "lnk");
    assert_non_null(e);
    assert_int_equal(e->type, DT_LNK);

    /* Rewinding lists everything again, in one go. */
    assert_int_equal(sys_lseek(fd, 0, SEEK_SET), 0);
    int64_t r = sys_getdents64(fd, buf, 4096);
    struct dent again[64];
    assert_int_equal(parse_dents(buf, r, again, 0, 64), n);
    /* d_off of an entry resumes right after it. */
    const struct linux_dirent64 *first = (const void *)buf;
    const struct linux_dirent64 *second = (const void *)(buf + first->d_reclen);
    assert_int_equal(sys_lseek(fd, first->d_off, SEEK_SET), first->d_off);
    r = sys_getdents64(fd, buf + 2048, 2048);
    assert_true(r > 0);
    assert_string_equal(((const struct linux_dirent64 *)(buf + 2048))->d_name, second->d_name);
}

static void test_getdents_special_dirs(void **state)
{
    (void)state;
    uint8_t *buf = ualloc(4096);
    struct dent ents[16];
    /* /dev holds the device files, /tmp and /emptydir only "." and "..". */
    int dev = open_ok(AT_FDCWD, "/dev", O_RDONLY | O_DIRECTORY);
    size_t n = parse_dents(buf, sys_getdents64(dev, buf, 4096), ents, 0, 16);
    assert_int_equal(n, 6);
    const char *devs[] = {"invoke", "null", "urandom", "random"};
    for (int i = 0; i < 4; i++) {
        const struct dent *e = find_dent(ents, n, devs[i]);
        assert_non_null(e);
        assert_int_equal(e->type, DT_CHR);
    }
    const char *empties[] = {"/tmp", "/emptydir"};
    for (int i = 0; i < 2; i++) {
        int d = open_ok(AT_FDCWD, empties[i], O_RDONLY | O_DIRECTORY);
        n = parse_dents(buf, sys_getdents64(d, buf, 4096), ents, 0, 16);
        assert_int_equal(n, 2);
        assert_non_null(find_dent(ents, n, "."));
        assert_non_null(find_dent(ents, n, ".."));
    }
    /* The root: no stray "." or "" entries from the archive. */
    int root = open_ok(AT_FDCWD, "/", O_RDONLY | O_DIRECTORY);
    struct dent all[32];
    n = parse_dents(buf, sys_getdents64(root, buf, 4096), all, 0, 32);
    const char *top[] = {".", "..", "etc", "data", "bin", "usr", "list", "emptydir", "dev", "tmp",
                         "link_hostname", "abs_link", "etclink", "dirlink_rel", "chain", "loop_a",
                         "loop_b", "dangling", "proc", "sys"};
    assert_int_equal(n, sizeof top / sizeof top[0]);
    for (size_t i = 0; i < n; i++)
        assert_non_null(find_dent(all, n, top[i]));
    /* Errors. */
    int fd = open_ok(AT_FDCWD, "/etc/hostname", O_RDONLY);
    assert_int_equal(sys_getdents64(fd, buf, 4096), -ENOTDIR);
    assert_int_equal(sys_getdents64(1, buf, 4096), -ENOTDIR);
    assert_int_equal(sys_getdents64(99, buf, 4096), -EBADF);
    assert_int_equal(sys_getdents64(root, (void *)64, 4096), -EFAULT);
}

static void test_getcwd_chdir(void **state)
{
    (void)state;
    char *buf = ualloc(256);
    assert_int_equal(sys_getcwd(buf, 256), 2);
    assert_string_equal(buf, "/");
    assert_int_equal(sys_chdir(U("etc")), 0);
    assert_int_equal(sys_getcwd(buf, 256), 5);
    assert_string_equal(buf, "/etc");
    expect_contents("hostname", "thaw-test\n");
    expect_contents("../usr/share/data.txt", "shared data\n");
    int fd = open_ok(AT_FDCWD, "./passwd", O_RDONLY);
    assert_true(fd > 2);
    /* Too small a buffer; exactly big enough. */
    assert_int_equal(sys_getcwd(buf, 4), -ERANGE);
    assert_int_equal(sys_getcwd(buf, 5), 5);
    assert_int_equal(sys_getcwd(NULL, 5), -EFAULT);
    assert_int_equal(sys_chdir(U("../usr/lib/python")), 0);
    assert_int_equal(sys_getcwd(buf, 256), 16);
    assert_string_equal(buf, "/usr/lib/python");
    assert_int_equal(sys_chdir(U("/")), 0);
    assert_int_equal(sys_getcwd(buf, 256), 2);
    /* Through a symlink: the cwd is the target. */
    assert_int_equal(sys_chdir(U("/etclink")), 0);
    assert_int_equal(sys_getcwd(buf, 256), 5);
    assert_string_equal(buf, "/etc");
    assert_int_equal(sys_chdir(U("..")), 0);
    assert_int_equal(sys_getcwd(buf, 256), 2);
    /* Failures leave the cwd alone. */
    assert_int_equal(sys_chdir(U("/etc/hostname")), -ENOTDIR);
    assert_int_equal(sys_chdir(U("/link_hostname")), -ENOTDIR);
    assert_int_equal(sys_chdir(U("/nope")), -ENOENT);
    assert_int_equal(sys_chdir(U("")), -ENOENT);
    assert_int_equal(sys_chdir(U("/loop_a")), -ELOOP);
    assert_int_equal(sys_getcwd(buf, 256), 2);
    assert_string_equal(buf, "/");
    /* The long name's directory. */
    char path[300];
    snprintf(path, sizeof path, "/list/%s", long_name);
    assert_int_equal(sys_chdir(U(path)), -ENOTDIR);
}

static void test_dup_dup3_fcntl(void **state)
{
    (void)state;
    int fd = open_ok(AT_FDCWD, "/etc/hostname", O_RDONLY);
    assert_int_equal(fd, 3);
    char *buf = ualloc(64);
    /* dup: lowest free fd, same file. */
    int64_t d = sys_dup3(fd, 0, 0, true);
    assert_int_equal(d, 4);
    assert_int_equal(sys_read((int)d, buf, 64), 10);
    assert_memory_equal(buf, "thaw-test\n", 10);
    assert_int_equal(sys_close(fd), 0);
    assert_int_equal(sys_pread64((int)d, buf, 4, 5), 4); /* the copy outlives the original */
    assert_memory_equal(buf, "test", 4);
    assert_int_equal(sys_dup3((int)d, 0, 0, true), 3);   /* reuses the freed slot */
    /* dup3 to a chosen fd, with O_CLOEXEC. */
    assert_int_equal(sys_dup3((int)d, 10, O_CLOEXEC, false), 10);
    assert_int_equal(sys_fcntl(10, F_GETFD, 0), FD_CLOEXEC);
    assert_int_equal(sys_fcntl((int)d, F_GETFD, 0), 0);
    assert_int_equal(sys_fcntl(10, F_SETFD, 0), 0);
    assert_int_equal(sys_fcntl(10, F_GETFD, 0), 0);
    assert_int_equal(sys_fcntl(10, F_SETFD, FD_CLOEXEC), 0);
    assert_int_equal(sys_fcntl(10, F_GETFD, 0), FD_CLOEXEC);
    /* dup2 onto itself is a no-op returning the fd. */
    assert_int_equal(sys_dup3(10, 10, 0, false), 10);
    assert_int_equal(sys_dup3(99, 11, 0, false), -EBADF);
    assert_int_equal(sys_dup3(10, 256, 0, false), -EBADF);
    assert_int_equal(sys_dup3(10, -1, 0, false), -EBADF);
    assert_int_equal(sys_dup3(-5, 0, 0, true), -EBADF);
    /* F_DUPFD: lowest free fd at or above the argument. */
    assert_int_equal(sys_fcntl((int)d, F_DUPFD, 10), 11);
    assert_int_equal(sys_fcntl(11, F_GETFD, 0), 0);
    assert_int_equal(sys_fcntl((int)d, F_DUPFD_CLOEXEC, 20), 20);
    assert_int_equal(sys_fcntl(20, F_GETFD, 0), FD_CLOEXEC);
    assert_int_equal(sys_fcntl((int)d, F_DUPFD, 255), 255);
    assert_int_equal(sys_fcntl((int)d, F_DUPFD, 255), -EMFILE);
    /* Status flags. */
    assert_int_equal(sys_fcntl((int)d, F_GETFL, 0), O_RDONLY);
    assert_int_equal(sys_fcntl(1, F_GETFL, 0), O_WRONLY);
    assert_int_equal(sys_fcntl((int)d, F_SETFL, O_NONBLOCK | O_APPEND | O_DIRECTORY), 0);
    assert_int_equal(sys_fcntl((int)d, F_GETFL, 0), O_RDONLY | O_NONBLOCK | O_APPEND);
    assert_int_equal(sys_fcntl((int)d, F_SETFL, 0), 0);
    assert_int_equal(sys_fcntl((int)d, F_GETFL, 0), O_RDONLY);
    assert_int_equal(sys_fcntl((int)d, 9999, 0), -EINVAL);
    assert_int_equal(sys_fcntl(99, F_GETFD, 0), -EBADF);
    /* dup3 over an open fd replaces it: stdout to /dev/null. */
    int null = open_ok(AT_FDCWD, "/dev/null", O_WRONLY);
    assert_int_equal(sys_dup3(null, 1, 0, false), 1);
    assert_int_equal(sys_write(1, U("gone"), 4), 4);
    assert_int_equal(console_calls, 0);
    /* Filling the table: EMFILE. */
    int64_t last = 0, r;
    while ((r = sys_dup3(2, 0, 0, true)) >= 0)
        last = r;
    assert_int_equal(r, -EMFILE);
    assert_int_equal(last, 254);
    assert_int_equal(open_err(AT_FDCWD, "/etc/hostname", O_RDONLY), -EMFILE);
    assert_int_equal(sys_close(100), 0);
    assert_int_equal(open_ok(AT_FDCWD, "/etc/hostname", O_RDONLY), 100);
}

static void test_close(void **state)
{
    (void)state;
    int fd = open_ok(AT_FDCWD, "/etc/hostname", O_RDONLY);
    char *buf = ualloc(16);
    assert_int_equal(sys_close(fd), 0);
    assert_int_equal(sys_read(fd, buf, 16), -EBADF);
    assert_int_equal(sys_close(fd), -EBADF);
    assert_int_equal(sys_close(-1), -EBADF);
    assert_int_equal(sys_close(256), -EBADF);
    assert_int_equal(sys_close(1 << 30), -EBADF);
    assert_int_equal(sys_write(99, buf, 1), -EBADF);
    assert_int_equal(sys_read(-3, buf, 1), -EBADF);
    /* Closing the standard fds works too; the next open reuses 0. */
    assert_int_equal(sys_close(0), 0);
    assert_int_equal(open_ok(AT_FDCWD, "/etc/passwd", O_RDONLY), 0);
}

static void test_console_fds(void **state)
{
    (void)state;
    char *buf = ualloc(2048);
    assert_int_equal(sys_write(1, U("hello "), 6), 6);
    assert_int_equal(sys_write(2, U("oops"), 4), 4);
    assert_int_equal(sys_write(1, U("world\n"), 6), 6);
    assert_int_equal(console_len[1], 12);
    assert_memory_equal(console_buf[1], "hello world\n", 12);
    assert_int_equal(console_len[2], 4);
    assert_memory_equal(console_buf[2], "oops", 4);
    assert_int_equal(console_calls, 3);
    /* The console is write-only; fd 0 is an empty read-only stdin. */
    assert_int_equal(sys_read(1, buf, 10), -EBADF);
    assert_int_equal(sys_read(2, buf, 10), -EBADF);
    assert_int_equal(sys_read(0, buf, 10), 0);
    assert_int_equal(sys_write(0, buf, 10), -EBADF);
    assert_int_equal(sys_write(1, (void *)10, 10), -EFAULT);
    assert_int_equal(sys_write(1, buf, 0), 0);
    /* No terminal. */
    assert_int_equal(sys_ioctl(1, TCGETS, (uint64_t)(uintptr_t)buf), -ENOTTY);
    assert_int_equal(sys_ioctl(99, TCGETS, 0), -EBADF);

    /* writev to the console: small vectors go out in one piece. */
    console_calls = 0;
    struct linux_iovec *iov = ualloc(3 * sizeof *iov);
    iov[0] = (struct linux_iovec){(uint64_t)(uintptr_t)U("a"), 1};
    iov[1] = (struct linux_iovec){(uint64_t)(uintptr_t)U("bc"), 2};
    iov[2] = (struct linux_iovec){(uint64_t)(uintptr_t)U("def"), 3};
    assert_int_equal(sys_writev(2, iov, 3), 6);
    assert_int_equal(console_calls, 1);
    assert_memory_equal(console_buf[2] + 4, "abcdef", 6);
    /* Larger ones one call per buffer. */
    memset(buf, 'x', 2048);
    iov[0] = (struct linux_iovec){(uint64_t)(uintptr_t)buf, 1000};
    iov[1] = (struct linux_iovec){(uint64_t)(uintptr_t)buf, 1000};
    console_calls = 0;
    assert_int_equal(sys_writev(1, iov, 2), 2000);
    assert_int_equal(console_calls, 2);
    /* A bad buffer inside the vector: the gathered write fails as a whole, the
     * one-by-one write reports what it wrote before it. */
    iov[0] = (struct linux_iovec){(uint64_t)(uintptr_t)buf, 10};
    iov[1] = (struct linux_iovec){16, 4};
    console_calls = 0;
    assert_int_equal(sys_writev(1, iov, 2), -EFAULT);
    assert_int_equal(console_calls, 0);
    iov[0] = (struct linux_iovec){(uint64_t)(uintptr_t)buf, 1030};
    assert_int_equal(sys_writev(1, iov, 2), 1030);
    assert_int_equal(console_calls, 1);
    int64_t r = sys_writev(1, (void *)8, 1);
    assert_true(r == -EINVAL || r == -EFAULT);
}

static void test_device_files(void **state)
{
    (void)state;
    uint8_t *buf = ualloc(64);
    int null = open_ok(AT_FDCWD, "/dev/null", O_RDWR);
    assert_int_equal(sys_read(null, buf, 64), 0);
    assert_int_equal(sys_write(null, buf, 64), 64);
    int ur = open_ok(AT_FDCWD, "/dev/urandom", O_RDONLY);
    assert_int_equal(sys_read(ur, buf, 16), 16);
    for (int i = 0; i < 16; i++)
        assert_int_equal(buf[i], i);
    assert_int_equal(random_calls, 1);
    int r = open_ok(AT_FDCWD, "/dev/random", O_RDONLY);
    assert_int_equal(sys_read(r, buf, 4), 4);
    assert_int_equal(buf[0], 16);
    /* /dev/invoke is the invocation channel. */
    int inv = open_ok(AT_FDCWD, "/dev/invoke", O_RDWR);
    assert_int_equal(sys_read(inv, buf, 64), 7);
    assert_memory_equal(buf, "REQUEST", 7);
    assert_int_equal(sys_write(inv, U("response"), 8), 8);
    assert_int_equal(invoke_reads, 1);
    assert_int_equal(invoke_writes, 1);
    assert_memory_equal(invoke_out, "response", 8);
    /* Through a dup, too. */
    int64_t d = sys_dup3(inv, 0, 0, true);
    assert_int_equal(sys_write((int)d, U("!"), 1), 1);
    assert_int_equal(invoke_out_len, 9);
    /* A read-only open of /dev/invoke cannot write. */
    int ro = open_ok(AT_FDCWD, "/dev/invoke", O_RDONLY);
    assert_int_equal(sys_write(ro, buf, 1), -EBADF);
    assert_int_equal(invoke_writes, 2);
    /* Devices are not seekable or mappable files. */
    assert_int_equal(sys_lseek(inv, 0, SEEK_SET), -ESPIPE);
    assert_int_equal(sys_pread64(ur, buf, 4, 0), -ESPIPE);
    /* FIONREAD: on /dev/invoke, the size of the pending request (invoke_pending); on
     * regular files, the bytes left. */
    int *avail = ualloc(sizeof *avail);
    assert_int_equal(sys_ioctl(inv, FIONREAD, (uint64_t)(uintptr_t)avail), 0);
    assert_int_equal(*avail, 4242);
    assert_int_equal(sys_ioctl(inv, FIONREAD, 12), -EFAULT);
    int fd = open_ok(AT_FDCWD, "/etc/hostname", O_RDONLY);
    assert_int_equal(sys_ioctl(fd, FIONREAD, (uint64_t)(uintptr_t)avail), 0);
    assert_int_equal(*avail, 10);
    assert_int_equal(sys_read(fd, buf, 3), 3);
    assert_int_equal(sys_ioctl(fd, FIONREAD, (uint64_t)(uintptr_t)avail), 0);
    assert_int_equal(*avail, 7);
    assert_int_equal(sys_ioctl(fd, FIONREAD, 12), -EFAULT);
}

/* Archives the writer would never produce, but GNU cpio and others do. */
static void test_archive_quirks(void **state)
{
    (void)state;
    struct bytes b = {0};
    /* `find . | cpio -o -H newc` starts with ".", and lists files with "./" prefixes. */
    raw_entry(&b, ".", 040755, "", 0);
    raw_entry(&b, "./top.txt", 0100644, "top", 3);
    /* Files without entries for their parent directories, deep. */
    for (int i = 0; i < 40; i++) {
        char name[64];
        snprintf(name, sizeof name, "deep%d/a/b/c/d/e/f.txt", i);
        raw_entry(&b, name, 0100644, name, strlen(name));
    }
    /* A duplicate: the first one wins. */
    raw_entry(&b, "dup", 0100644, "first", 5);
    raw_entry(&b, "./dup", 0100644, "second", 6);
    /* A directory entry after its contents updates the mode. */
    raw_entry(&b, "deep0", 040700, "", 0);
    /* Unsupported types (a FIFO) are skipped. */
    raw_entry(&b, "fifo", 010644, "", 0);
    /* A trailing slash on a directory name. */
    raw_entry(&b, "withslash/", 040755, "", 0);
    raw_trailer(&b);
    load_archive(b.p, b.len);
    free(b.p);
    assert_int_equal(discard_bytes, 0);

    expect_contents("/top.txt", "top");
    expect_contents("/dup", "first");
    expect_contents("/deep39/a/b/c/d/e/f.txt", "deep39/a/b/c/d/e/f.txt");
    struct linux_stat *st = stat_path(AT_FDCWD, "/deep0", 0);
    assert_int_equal(st->st_mode, S_IFDIR | 0700);
    st = stat_path(AT_FDCWD, "/withslash", 0);
    assert_int_equal(st->st_mode & S_IFMT, S_IFDIR);
    assert_int_equal(open_err(AT_FDCWD, "/fifo", O_RDONLY), -ENOENT);

    /* The root lists ".", "..", top.txt, deep0..39, dup, withslash, dev, tmp, proc, sys:
     * no second "." */
    uint8_t *buf = ualloc(8192);
    int root = open_ok(AT_FDCWD, "/", O_RDONLY | O_DIRECTORY);
    struct dent ents[64];
    size_t n = parse_dents(buf, sys_getdents64(root, buf, 8192), ents, 0, 64);
    assert_non_null(find_dent(ents, n, "."));
    assert_non_null(find_dent(ents, n, ".."));
    assert_int_equal(n, 2 + 1 + 40 + 1 + 1 + 2 + 2); /* ... and proc, sys (fs.c's CPU answers) */
}

static void test_no_archive(void **state)
{
    (void)state;
    load_archive(NULL, 0);
    struct linux_stat *st = stat_path(AT_FDCWD, "/dev/null", 0);
    assert_int_equal(st->st_mode, S_IFCHR | 0666);
    assert_int_equal(open_err(AT_FDCWD, "/etc/hostname", O_RDONLY), -ENOENT);
    assert_int_equal(sys_write(1, U("x"), 1), 1);
}

/* ======================================================================================
 * Memory
 * ====================================================================================== */

static void test_brk(void **state)
{
    (void)state;
    uint64_t base = (uint64_t)sys_brk(0);
    assert_int_equal(base % PAGE, 0);
    assert_true(base >= FREE_BASE && base < MEM_END);
    assert_int_equal(sys_brk(base - 1), base); /* below the start: just reports */
    assert_int_equal(sys_brk(FREE_BASE), base);

    uint64_t want = base + 3 * PAGE + 100;
    assert_int_equal(sys_brk(want), want);
    assert_int_equal(sys_brk(0), want);
    assert_true(all_bytes((void *)(uintptr_t)base, 0, 4 * PAGE));
    memset((void *)(uintptr_t)base, 0xab, 4 * PAGE); /* the whole last page is ours */
    /* Shrink, then grow again: the released pages come back zeroed. */
    assert_int_equal(sys_brk(base + PAGE), base + PAGE);
    assert_int_equal(sys_brk(want), want);
    assert_true(all_bytes((void *)(uintptr_t)base, 0xab, PAGE));
    assert_true(all_bytes((void *)(uintptr_t)(base + PAGE), 0, 3 * PAGE));

    /* A large shrink is kept for reuse (no DISCARD: mm.c keeps freed memory within a
     * budget) and reads back zero, zeroed by the guest when handed out again. */
    uint64_t big = base + 200 * PAGE;
    assert_int_equal(sys_brk(big), big);
    memset((void *)(uintptr_t)base, 0xcd, 200 * PAGE);
    unsigned before = discard_calls;
    uint64_t kept0 = mm_kept_bytes();
    assert_int_equal(sys_brk(base), base);
    assert_int_equal(discard_calls, before);
    assert_int_equal(mm_kept_bytes(), kept0 + 200 * PAGE);
    assert_int_equal(sys_brk(big), big);
    assert_int_equal(mm_kept_bytes(), kept0);
    assert_true(all_bytes((void *)(uintptr_t)base, 0, 200 * PAGE));
    /* mm_trim (the ready point) gives it back to the host (DISCARD): zero again. */
    memset((void *)(uintptr_t)base, 0xcd, 200 * PAGE);
    assert_int_equal(sys_brk(base), base);
    mm_trim();
    assert_true(discard_calls > before);
    assert_true(mm_kept_bytes() <= kept0);
    assert_int_equal(sys_brk(big), big);
    assert_true(all_bytes((void *)(uintptr_t)base, 0, 200 * PAGE));

    /* brk stops at a mapping right above it: failure leaves it where it was. */
    assert_int_equal(sys_brk(base + 2 * PAGE), base + 2 * PAGE);
    uint64_t wall = base + 4 * PAGE;
    assert_int_equal(sys_mmap(wall, PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0), wall);
    assert_int_equal(sys_brk(wall + 1), base + 2 * PAGE);
    assert_int_equal(sys_brk(wall + 5 * PAGE), base + 2 * PAGE);
    assert_int_equal(sys_brk(wall), wall);
    /* The heap is counted as used memory. */
    uint64_t free0 = free_bytes();
    assert_int_equal(sys_brk(base), base);
    assert_int_equal(free_bytes(), free0 + 4 * PAGE);
}

static void test_mmap_anonymous_zeroed(void **state)
{
    (void)state;
    uint64_t free0 = free_bytes();
    /* Small and large (kept within the budget): zeroed by the guest when reused. */
    const uint64_t sizes[] = {16 * PAGE, 3 * PAGE + 1, 128 * PAGE};
    for (size_t i = 0; i < 3; i++) {
        uint64_t len = sizes[i], span = (len + PAGE - 1) / PAGE * PAGE;
        int64_t p = sys_mmap(0, len, RW, ANON, -1, 0);
        assert_true(p > 0);
        assert_int_equal(p % PAGE, 0);
        assert_true((uint64_t)p >= FREE_BASE && (uint64_t)p + span <= MEM_END - STACK_SIZE);
        assert_true(all_bytes((void *)(uintptr_t)p, 0, span));
        assert_int_equal(free_bytes(), free0 - span);
        memset((void *)(uintptr_t)p, 0xee, span);
        assert_int_equal(sys_munmap((uint64_t)p, len), 0);
        assert_int_equal(free_bytes(), free0);
        /* First fit hands out the same, dirty, pages again: they must read zero. */
        int64_t q = sys_mmap(0, len, RW, ANON, -1, 0);
        assert_int_equal(q, p);
        assert_true(all_bytes((void *)(uintptr_t)q, 0, span));
        /* A smaller mapping over part of them, too. */
        memset((void *)(uintptr_t)q, 0x77, span);
        assert_int_equal(sys_munmap((uint64_t)q, span), 0);
        int64_t r = sys_mmap(0, PAGE, RW, ANON, -1, 0);
        assert_true(r >= q && (uint64_t)r < (uint64_t)q + span);
        assert_true(all_bytes((void *)(uintptr_t)r, 0, PAGE));
        assert_int_equal(sys_munmap((uint64_t)r, PAGE), 0);
    }
    assert_int_equal(discard_calls, 0); /* all of it within the budget */
    /* Distinct live mappings never overlap. */
    int64_t a = sys_mmap(0, 5 * PAGE, RW, ANON, -1, 0), b = sys_mmap(0, 7 * PAGE, RW, ANON, -1, 0);
    assert_true(a + 5 * (int64_t)PAGE <= b || b + 7 * (int64_t)PAGE <= a);
    /* Bad arguments. */
    assert_int_equal(sys_mmap(0, 0, RW, ANON, -1, 0), -EINVAL);
    assert_int_equal(sys_mmap(0, 1ull << 40, RW, ANON, -1, 0), -EINVAL);
    assert_int_equal(sys_mmap(0, UINT64_MAX, RW, ANON, -1, 0), -EINVAL);
    assert_int_equal(sys_mmap(0, PAGE, RW, ANON, -1, 100), -EINVAL);
}

static void test_map_fixed(void **state)
{
    (void)state;
    uint64_t p = (uint64_t)sys_mmap(0, 4 * PAGE, RW, ANON, -1, 0);
    memset((void *)(uintptr_t)p, 0x11, 4 * PAGE);
    /* MAP_FIXED replaces the middle two pages with zeroed ones. */
    assert_int_equal(sys_mmap(p + PAGE, 2 * PAGE, RW, ANON | MAP_FIXED, -1, 0), p + PAGE);
    assert_true(all_bytes((void *)(uintptr_t)p, 0x11, PAGE));
    assert_true(all_bytes((void *)(uintptr_t)(p + PAGE), 0, 2 * PAGE));
    assert_true(all_bytes((void *)(uintptr_t)(p + 3 * PAGE), 0x11, PAGE));
    /* Replacing does not count the pages twice. */
    uint64_t free0 = free_bytes();
    assert_int_equal(sys_mmap(p, 4 * PAGE, RW, ANON | MAP_FIXED, -1, 0), p);
    assert_int_equal(free_bytes(), free0);
    assert_true(all_bytes((void *)(uintptr_t)p, 0, 4 * PAGE));
    /* MAP_FIXED_NOREPLACE refuses used pages, even partly. */
    assert_int_equal(sys_mmap(p, PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0), -EEXIST);
    assert_int_equal(sys_mmap(p - PAGE, 2 * PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0), -EEXIST);
    assert_int_equal(sys_mmap(p - PAGE, PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0), (int64_t)(p - PAGE));
    /* A fixed mapping in free space, over pages that were used before. */
    uint64_t q = (uint64_t)sys_mmap(0, 8 * PAGE, RW, ANON, -1, 0);
    memset((void *)(uintptr_t)q, 0x99, 8 * PAGE);
    assert_int_equal(sys_munmap(q, 8 * PAGE), 0);
    assert_int_equal(sys_mmap(q + 2 * PAGE, 3 * PAGE, RW, ANON | MAP_FIXED, -1, 0), q + 2 * PAGE);
    assert_true(all_bytes((void *)(uintptr_t)(q + 2 * PAGE), 0, 3 * PAGE));
    /* Out of range or misaligned. */
    assert_int_equal(sys_mmap(p + 1, PAGE, RW, ANON | MAP_FIXED, -1, 0), -EINVAL);
    assert_int_equal(sys_mmap(MAP_BASE + PAGE, PAGE, RW, ANON | MAP_FIXED, -1, 0), -ENOMEM);
    assert_int_equal(sys_mmap(FREE_BASE, PAGE, RW, ANON | MAP_FIXED, -1, 0), -ENOMEM); /* mm's bitmaps */
    assert_int_equal(sys_mmap(MEM_END, PAGE, RW, ANON | MAP_FIXED, -1, 0), -ENOMEM);
    assert_int_equal(sys_mmap(MEM_END - PAGE, 2 * PAGE, RW, ANON | MAP_FIXED, -1, 0), -ENOMEM);
    assert_int_equal(sys_mmap(0xfffffffffffff000ull, PAGE, RW, ANON | MAP_FIXED, -1, 0), -ENOMEM);
    /* The scratch "program" memory below free_base was never touched. */
    assert_true(all_bytes((void *)(uintptr_t)MAP_BASE, 0, PAGE));
}

static void test_munmap_partial(void **state)
{
    (void)state;
    uint64_t p = (uint64_t)sys_mmap(0, 8 * PAGE, RW, ANON, -1, 0);
    memset((void *)(uintptr_t)p, 0x22, 8 * PAGE);
    uint64_t free0 = free_bytes();
    assert_int_equal(sys_munmap(p + 2 * PAGE, 2 * PAGE), 0);
    assert_int_equal(free_bytes(), free0 + 2 * PAGE);
    /* The hole is free, its neighbours are not. */
    assert_int_equal(sys_mmap(p + PAGE, PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0), -EEXIST);
    assert_int_equal(sys_mmap(p + 4 * PAGE, PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0), -EEXIST);
    assert_int_equal(sys_mmap(p + 2 * PAGE, 2 * PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0), p + 2 * PAGE);
    assert_true(all_bytes((void *)(uintptr_t)(p + 2 * PAGE), 0, 2 * PAGE));
    assert_true(all_bytes((void *)(uintptr_t)(p + 4 * PAGE), 0x22, 4 * PAGE));
    /* A partial page length covers the whole page. */
    assert_int_equal(sys_munmap(p + 7 * PAGE, 1), 0);
    assert_int_equal(sys_mmap(p + 7 * PAGE, PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0), p + 7 * PAGE);
    /* Unmapping free memory, memory below the allocator, or past the end is a no-op. */
    uint64_t free1 = free_bytes();
    assert_int_equal(sys_munmap(p - 64 * PAGE, 64 * PAGE), 0);
    assert_int_equal(sys_munmap(MAP_BASE + PAGE, 16 * PAGE), 0);
    assert_int_equal(sys_munmap(MEM_END, PAGE), 0);
    assert_int_equal(sys_munmap(0xfffffffffffff000ull, PAGE), 0);
    assert_int_equal(free_bytes(), free1);
    /* Bad arguments. */
    assert_int_equal(sys_munmap(p + 1, PAGE), -EINVAL);
    assert_int_equal(sys_munmap(p, 0), -EINVAL);
}

/* Freed memory is kept for reuse up to a budget (mm.c: 16 MiB here); past it a large
 * freed range goes back to the host at once, and mm_trim gives back every large kept
 * range. Whichever way, memory handed out again reads zero. */
static void test_kept_memory_budget(void **state)
{
    (void)state;
    enum { N = 24, RUN = 256 }; /* 24 ranges of 1 MiB */
    const uint64_t budget = 16ull << 20;
    uint64_t kept0 = mm_kept_bytes();
    assert_true(kept0 < (1ull << 20));
    int64_t p[N];
    for (int i = 0; i < N; i++) {
        p[i] = sys_mmap(0, RUN * PAGE, RW, ANON, -1, 0);
        assert_true(p[i] > 0);
        memset((void *)(uintptr_t)p[i], 0x5a, RUN * PAGE);
    }
    unsigned before = discard_calls;
    for (int i = 0; i < N; i++)
        assert_int_equal(sys_munmap((uint64_t)p[i], RUN * PAGE), 0);
    /* Up to the budget stayed (in whole ranges); each range past it went back. */
    assert_true(mm_kept_bytes() <= budget && mm_kept_bytes() > budget - RUN * PAGE);
    unsigned gone = discard_calls - before;
    assert_true(gone >= N - 16 && gone <= N - 15);
    assert_int_equal(discard_bytes % (RUN * PAGE), 0);
    /* Handed out again, all of it reads zero: kept pages zeroed by the guest,
     * discarded ones by the host. */
    for (int i = 0; i < N; i++) {
        p[i] = sys_mmap(0, RUN * PAGE, RW, ANON, -1, 0);
        assert_true(p[i] > 0);
        assert_true(all_bytes((void *)(uintptr_t)p[i], 0, RUN * PAGE));
    }
    assert_true(mm_kept_bytes() <= kept0);
    for (int i = 0; i < N; i++)
        assert_int_equal(sys_munmap((uint64_t)p[i], RUN * PAGE), 0);
    /* The ready point: every large kept range goes back, small ones stay. */
    before = discard_calls;
    mm_trim();
    assert_true(discard_calls > before);
    assert_true(mm_kept_bytes() <= kept0);
    int64_t q = sys_mmap(0, N * RUN * PAGE, RW, ANON, -1, 0);
    assert_true(q > 0);
    assert_true(all_bytes((void *)(uintptr_t)q, 0, N * RUN * PAGE));
}

static void test_mremap(void **state)
{
    (void)state;
    /* Grow in place: free pages right above. Top-down first fit puts a below b. */
    uint64_t b = (uint64_t)sys_mmap(0, 4 * PAGE, RW, ANON, -1, 0);
    uint64_t a = (uint64_t)sys_mmap(0, 4 * PAGE, RW, ANON, -1, 0);
    assert_int_equal(a + 4 * PAGE, b);
    memset((void *)(uintptr_t)a, 0x33, 4 * PAGE);
    memset((void *)(uintptr_t)b, 0x44, 4 * PAGE);
    assert_int_equal(sys_munmap(b, 4 * PAGE), 0);
    assert_int_equal(sys_mremap(a, 4 * PAGE, 8 * PAGE, 0, 0), a);
    assert_true(all_bytes((void *)(uintptr_t)a, 0x33, 4 * PAGE));
    assert_true(all_bytes((void *)(uintptr_t)(a + 4 * PAGE), 0, 4 * PAGE)); /* b's old pages */
    assert_int_equal(sys_mmap(b, PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0), -EEXIST);

    /* Move: c sits right above d, so d cannot grow in place. */
    uint64_t c = (uint64_t)sys_mmap(0, 4 * PAGE, RW, ANON, -1, 0);
    uint64_t d = (uint64_t)sys_mmap(0, 4 * PAGE, RW, ANON, -1, 0);
    assert_int_equal(d + 4 * PAGE, c);
    memset((void *)(uintptr_t)d, 0x55, 4 * PAGE);
    assert_int_equal(sys_mremap(d, 4 * PAGE, 8 * PAGE, 0, 0), -ENOMEM);
    int64_t e = sys_mremap(d, 4 * PAGE, 8 * PAGE, MREMAP_MAYMOVE, 0);
    assert_true(e > 0);
    assert_true((uint64_t)e != d);
    assert_int_equal(e % PAGE, 0);
    assert_true(all_bytes((void *)(uintptr_t)e, 0x55, 4 * PAGE));
    assert_true(all_bytes((void *)(uintptr_t)(e + 4 * PAGE), 0, 4 * PAGE));
    /* The old pages were released. */
    assert_int_equal(sys_mmap(d, 4 * PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0), d);

    /* Shrink: same address, the tail is released. */
    uint64_t free0 = free_bytes();
    assert_int_equal(sys_mremap((uint64_t)e, 8 * PAGE, 2 * PAGE, 0, 0), e);
    assert_int_equal(free_bytes(), free0 + 6 * PAGE);
    assert_true(all_bytes((void *)(uintptr_t)e, 0x55, 2 * PAGE));
    assert_int_equal(sys_mmap((uint64_t)e + 2 * PAGE, 6 * PAGE, RW, ANON | MAP_FIXED_NOREPLACE, -1, 0),
                     e + 2 * (int64_t)PAGE);
    /* A large move releases the old pages: kept for reuse, and mm_trim gives them back. */
    uint64_t big = (uint64_t)sys_mmap(0, 100 * PAGE, RW, ANON, -1, 0);
    memset((void *)(uintptr_t)big, 0x66, 100 * PAGE);
    unsigned before = discard_calls;
    uint64_t kept0 = mm_kept_bytes();
    int64_t moved = sys_mremap(big, 100 * PAGE, 300 * PAGE, MREMAP_MAYMOVE, 0);
    assert_true(moved > 0 && (uint64_t)moved != big);
    assert_int_equal(discard_calls, before);
    assert_int_equal(mm_kept_bytes(), kept0 + 100 * PAGE);
    assert_true(all_bytes((void *)(uintptr_t)moved, 0x66, 100 * PAGE));
    assert_true(all_bytes((void *)(uintptr_t)(moved + 100 * PAGE), 0, 200 * PAGE));
    mm_trim();
    assert_true(discard_calls > before);
    assert_true(all_bytes((void *)(uintptr_t)moved, 0x66, 100 * PAGE)); /* live memory untouched */

    /* Bad arguments. */
    assert_int_equal(sys_mremap(a, 8 * PAGE, 16 * PAGE, MREMAP_MAYMOVE | MREMAP_FIXED, a + 64 * PAGE), -EINVAL);
    assert_int_equal(sys_mremap(a + 1, PAGE, 2 * PAGE, MREMAP_MAYMOVE, 0), -EINVAL);
    assert_int_equal(sys_mremap(a, PAGE, 0, MREMAP_MAYMOVE, 0), -EINVAL);
    assert_int_equal(sys_mremap(MAP_BASE + PAGE, PAGE, 2 * PAGE, MREMAP_MAYMOVE, 0), -EFAULT);
    assert_int_equal(sys_mremap(MEM_END - PAGE, 2 * PAGE, PAGE, 0, 0), -EFAULT);
}

static void test_mmap_file(void **state)
{
    (void)state;
    int fd = open_ok(AT_FDCWD, "/data/big.bin", O_RDONLY);
    /* Dirty some pages first, so the mapping reuses them. */
    uint64_t junk = (uint64_t)sys_mmap(0, 3 * PAGE, RW, ANON, -1, 0);
    memset((void *)(uintptr_t)junk, 0xff, 3 * PAGE);
    assert_int_equal(sys_munmap(junk, 3 * PAGE), 0);

    int64_t p = sys_mmap(0, 3 * PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
    assert_int_equal(p, junk);
    assert_memory_equal((void *)(uintptr_t)p, big_data, sizeof big_data);
    assert_true(all_bytes((void *)(uintptr_t)(p + sizeof big_data), 0, 3 * PAGE - sizeof big_data));
    /* At an offset, and shorter than the file. */
    int64_t q = sys_mmap(0, 2 * PAGE, PROT_READ, MAP_PRIVATE, fd, PAGE);
    assert_true(q > 0 && q != p);
    assert_memory_equal((void *)(uintptr_t)q, big_data + PAGE, sizeof big_data - PAGE);
    assert_true(all_bytes((void *)(uintptr_t)(q + sizeof big_data - PAGE), 0, 3 * PAGE - sizeof big_data));
    int64_t s = sys_mmap(0, PAGE, PROT_READ, MAP_PRIVATE, fd, 0);
    assert_memory_equal((void *)(uintptr_t)s, big_data, PAGE);
    /* Past the end of the file: zeros. */
    int64_t z = sys_mmap(0, PAGE, PROT_READ, MAP_PRIVATE, fd, 4 * PAGE);
    assert_true(z > 0);
    assert_true(all_bytes((void *)(uintptr_t)z, 0, PAGE));
    /* MAP_FIXED over a dirty mapping: the file contents, then zeros. */
    memset((void *)(uintptr_t)p, 0xaa, 3 * PAGE);
    assert_int_equal(sys_mmap((uint64_t)p, 3 * PAGE, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0), p);
    assert_memory_equal((void *)(uintptr_t)p, big_data, sizeof big_data);
    assert_true(all_bytes((void *)(uintptr_t)(p + sizeof big_data), 0, 3 * PAGE - sizeof big_data));
    /* The mapping is a copy: it outlives the fd. */
    assert_int_equal(sys_close(fd), 0);
    assert_memory_equal((void *)(uintptr_t)q, big_data + PAGE, 16);
    /* /dev/null maps as zeros. */
    assert_int_equal(sys_mmap(0, PAGE, PROT_READ, MAP_PRIVATE, fd, 0), -EBADF);
    int null = open_ok(AT_FDCWD, "/dev/null", O_RDONLY);
    int64_t n = sys_mmap(0, PAGE, PROT_READ, MAP_PRIVATE, null, 0);
    assert_true(n > 0);
    assert_true(all_bytes((void *)(uintptr_t)n, 0, PAGE));
    /* Failures release what they took. */
    int fd2_early = open_ok(AT_FDCWD, "/data/big.bin", O_RDONLY);
    uint64_t free0 = free_bytes();
    assert_int_equal(sys_mmap(0, PAGE, PROT_READ, MAP_PRIVATE, 99, 0), -EBADF);
    int dir = open_ok(AT_FDCWD, "/data", O_RDONLY);
    /* As Linux: directories and the console cannot be mapped at all (ENODEV); a
     * read-only file cannot be mapped shared and writable (EACCES). */
    assert_int_equal(sys_mmap(0, PAGE, PROT_READ, MAP_PRIVATE, dir, 0), -ENODEV);
    assert_int_equal(sys_mmap(0, PAGE, PROT_READ, MAP_PRIVATE, 1, 0), -ENODEV);
    assert_int_equal(sys_mmap(0, PAGE, RW, MAP_SHARED, fd2_early, 0), -EACCES);
    assert_int_equal(sys_mmap(0, PAGE, PROT_READ, 0 /* neither shared nor private */, fd2_early, 0), -EINVAL);
    assert_int_equal(sys_mmap(0, PAGE, PROT_READ | 0x80, MAP_PRIVATE, fd2_early, 0), -EINVAL);
    int64_t sh = sys_mmap(0, PAGE, PROT_READ, MAP_SHARED, fd2_early, PAGE);
    assert_true(sh > 0);
    assert_memory_equal((void *)(uintptr_t)sh, big_data + PAGE, PAGE);
    assert_int_equal(sys_munmap((uint64_t)sh, PAGE), 0);
    sys_close(fd2_early);
    assert_int_equal(free_bytes(), free0);
    int fd2 = open_ok(AT_FDCWD, "/data/big.bin", O_RDONLY);
    assert_int_equal(sys_mmap(0, PAGE, PROT_READ, MAP_PRIVATE, fd2, 1), -EINVAL);
    /* fs_map_file directly: copies at most len bytes. */
    uint8_t *dst = ualloc(64);
    memset(dst, 0x5c, 64);
    assert_int_equal(fs_map_file(fd2, dst, 8, 9996), 0);
    assert_memory_equal(dst, big_data + 9996, 4);
    assert_true(all_bytes(dst + 4, 0x5c, 60));
    assert_int_equal(fs_map_file(fd2, dst, 8, 0), 0);
    assert_memory_equal(dst, big_data, 8);
    assert_true(all_bytes(dst + 8, 0x5c, 56));
}

/* mprotect changes nothing but answers as Linux does: mapped ranges succeed, holes are
 * ENOMEM, misaligned addresses and unknown flags EINVAL. */
static void test_mprotect_honest(void **state)
{
    (void)state;
    int64_t p = sys_mmap(0, 4 * PAGE, RW, ANON, -1, 0);
    assert_true(p > 0);
    assert_int_equal(sys_mprotect((uint64_t)p, 4 * PAGE, PROT_READ), 0);
    assert_int_equal(sys_mprotect((uint64_t)p + PAGE, 1, PROT_READ | PROT_EXEC), 0);
    assert_int_equal(sys_mprotect((uint64_t)p, 0, PROT_READ), 0);
    assert_int_equal(sys_mprotect((uint64_t)p + 1, PAGE, PROT_READ), -EINVAL);
    assert_int_equal(sys_mprotect((uint64_t)p, PAGE, 0x40), -EINVAL);
    assert_int_equal(sys_munmap((uint64_t)p + 2 * PAGE, PAGE), 0);
    assert_int_equal(sys_mprotect((uint64_t)p, 4 * PAGE, PROT_READ), -ENOMEM); /* a hole inside */
    assert_int_equal(sys_mprotect((uint64_t)p, 2 * PAGE, PROT_NONE), 0);
    assert_int_equal(sys_mprotect(MEM_END, PAGE, PROT_READ), -ENOMEM);        /* past memory */
    assert_int_equal(sys_mprotect(PAGE, PAGE, PROT_READ), -ENOMEM);          /* NULL page region */
    assert_int_equal(sys_mprotect(~0ull & ~(PAGE - 1), 2 * PAGE, PROT_READ), -EINVAL); /* wraps */
    /* Below the allocator: the program image the monitor loaded counts as mapped. */
    assert_int_equal(sys_mprotect(SCRATCH_BASE, PAGE, PROT_READ), 0);
}

/* Pipes, socket pairs and epoll (pipe.c): bytes in order, EOF once the writer is
 * gone, EAGAIN when non-blocking, EPIPE without a reader, dup sharing an end, and
 * epoll reporting exactly what is ready. */
static void test_pipes_and_epoll(void **state)
{
    (void)state;
    int32_t *fds = ualloc(2 * sizeof *fds);
    char *buf = ualloc(64);
    assert_int_equal(sys_pipe2(fds, O_NONBLOCK), 0);
    int r = fds[0], w = fds[1];
    assert_int_equal(sys_read(r, buf, 8), -EAGAIN);
    assert_int_equal(sys_write(w, U("hello"), 5), 5);
    assert_int_equal(sys_write(r, U("x"), 1), -EBADF); /* the read end does not write */
    assert_int_equal(sys_read(r, buf, 3), 3);
    assert_memory_equal(buf, "hel", 3);
    int w2 = (int)sys_dup3(w, 0, 0, true);
    assert_int_equal(sys_close(w), 0);
    assert_int_equal(sys_read(r, buf, 8), 2); /* the dup keeps the write end open */
    assert_int_equal(sys_read(r, buf, 8), -EAGAIN);
    assert_int_equal(sys_close(w2), 0);
    assert_int_equal(sys_read(r, buf, 8), 0); /* end of file */
    assert_int_equal(sys_close(r), 0);

    assert_int_equal(sys_socketpair(1, 1 | O_NONBLOCK, 0, fds), 0);
    int a = fds[0], b = fds[1];
    struct linux_stat *st = ualloc(sizeof *st);
    assert_int_equal(sys_fstat(a, st), 0);
    assert_int_equal(st->st_mode & S_IFMT, 0140000);
    int ep = (int)sys_epoll_create1(O_CLOEXEC);
    assert_true(ep >= 0);
    struct { uint32_t events; uint64_t data; } __attribute__((packed)) *ev = ualloc(4 * 12);
    ev[0].events = 1; /* EPOLLIN */
    ev[0].data = 0xabc;
    assert_int_equal(sys_epoll_ctl(ep, 1, b, (void *)ev), 0);
    assert_int_equal(sys_epoll_ctl(ep, 1, b, (void *)ev), -EEXIST);
    assert_int_equal(sys_epoll_wait(ep, (void *)ev, 4, 0), 0); /* nothing to read yet */
    assert_int_equal(sys_epoll_wait(ep, (void *)ev, 4, 5), 0);  /* sleeps 5 ms, still nothing */
    assert_true(waits > 0);                                       /* it waited, with a deadline */
    assert_int_equal(sys_write(a, U("\0"), 1), 1);
    assert_int_equal(sys_epoll_wait(ep, (void *)ev, 4, -1), 1);
    assert_int_equal(ev[0].events, 1);
    assert_int_equal(ev[0].data, 0xabc);
    assert_int_equal(sys_write(b, U("pong"), 4), 4); /* the other way round */
    assert_int_equal(sys_read(a, buf, 8), 4);
    assert_int_equal(sys_close(a), 0);
    assert_int_equal(sys_write(b, U("x"), 1), -EPIPE);
    assert_int_equal(sys_epoll_ctl(ep, 2, b, 0), 0);
    assert_int_equal(sys_epoll_ctl(ep, 2, b, 0), -ENOENT);
    int file = open_ok(AT_FDCWD, "/data/big.bin", O_RDONLY);
    assert_int_equal(sys_epoll_ctl(ep, 1, file, (void *)ev), -EPERM);
    assert_int_equal(sys_socketpair(2 /* AF_INET */, 1, 0, fds), -EAFNOSUPPORT);
    assert_int_equal(sys_close(b), 0);
    assert_int_equal(sys_close(ep), 0);
}

/* poll and ppoll (pipe.c): revents for each descriptor; a zero timeout never waits; a
 * positive one waits on the I/O channel until its deadline (and then reports nothing
 * ready); a wait is ended by another thread's write to the pipe; POLLNVAL for a bad
 * descriptor, errors and hang-ups reported unasked. */
struct pollfd_t { int32_t fd; int16_t events, revents; };
static int poll_writer_fd = -1;
static void write_to_poll_pipe(void) { assert_int_equal(sys_write(poll_writer_fd, U("!"), 1), 1); }

static void test_poll_timeouts(void **state)
{
    (void)state;
    int32_t *fds = ualloc(2 * sizeof *fds);
    assert_int_equal(sys_pipe2(fds, O_NONBLOCK), 0);
    int r = fds[0], w = fds[1];
    struct pollfd_t *p = ualloc(3 * sizeof *p);
    p[0] = (struct pollfd_t){.fd = r, .events = 1 /* POLLIN */};
    p[1] = (struct pollfd_t){.fd = -1, .events = 1};  /* ignored */
    p[2] = (struct pollfd_t){.fd = 200, .events = 1}; /* not open */
    /* Nothing readable, timeout 0: no wait at all; the bad descriptor is POLLNVAL. */
    int before = waits;
    assert_int_equal(sys_poll_ms((void *)p, 3, 0), 1);
    assert_int_equal(waits, before);
    assert_int_equal(p[0].revents, 0);
    assert_int_equal(p[1].revents, 0);
    assert_int_equal(p[2].revents, 0x20);
    /* A 50 ms timeout: it waits with a deadline 50 ms on, then reports nothing. */
    p[2].fd = -1;
    uint64_t t0 = time_monotonic_ns();
    assert_int_equal(sys_poll_ms((void *)p, 2, 50), 0);
    assert_true(waits > before);
    assert_true(last_deadline >= t0 + 50000000ull && last_deadline <= t0 + 52000000ull);
    assert_string_equal(last_wait_what, "poll");
    assert_true(time_monotonic_ns() >= t0 + 50000000ull);
    /* ppoll: a zero timespec never waits; 20 ms waits 20 ms; a bad one is EINVAL. */
    struct linux_timespec *ts = ualloc(sizeof *ts);
    *ts = (struct linux_timespec){0, 0};
    before = waits;
    assert_int_equal(sys_ppoll((void *)p, 1, ts), 0);
    assert_int_equal(waits, before);
    *ts = (struct linux_timespec){0, 20000000};
    t0 = time_monotonic_ns();
    assert_int_equal(sys_ppoll((void *)p, 1, ts), 0);
    assert_true(last_deadline >= t0 + 20000000ull && last_deadline <= t0 + 22000000ull);
    *ts = (struct linux_timespec){0, 1000000000};
    assert_int_equal(sys_ppoll((void *)p, 1, ts), -EINVAL);
    assert_int_equal(sys_ppoll((void *)p, 1, (void *)8), -EFAULT);
    /* No timeout (poll -1, ppoll NULL): the wait is ended by another thread's write. */
    poll_writer_fd = w;
    io_other_thread = write_to_poll_pipe;
    assert_int_equal(sys_poll_ms((void *)p, 1, -1), 1);
    assert_int_equal(last_deadline, 0);
    assert_int_equal(p[0].revents, 1);
    char *buf = ualloc(8);
    assert_int_equal(sys_read(r, buf, 8), 1);
    io_other_thread = write_to_poll_pipe;
    assert_int_equal(sys_ppoll((void *)p, 1, 0), 1);
    assert_int_equal(sys_read(r, buf, 8), 1);
    /* Ready at once: no wait. A closed writer is POLLIN|POLLHUP, unasked for HUP. */
    assert_int_equal(sys_write(w, U("x"), 1), 1);
    before = waits;
    assert_int_equal(sys_poll_ms((void *)p, 1, -1), 1);
    assert_int_equal(waits, before);
    assert_int_equal(sys_read(r, buf, 8), 1);
    assert_int_equal(sys_close(w), 0);
    assert_int_equal(sys_poll_ms((void *)p, 1, -1), 1);
    assert_int_equal(p[0].revents, 1 | 0x10);
    /* The write end of a pipe with no reader: POLLERR whatever was asked. */
    assert_int_equal(sys_pipe2(fds, 0), 0);
    assert_int_equal(sys_close(fds[0]), 0);
    p[0] = (struct pollfd_t){.fd = fds[1], .events = 1};
    assert_int_equal(sys_poll_ms((void *)p, 1, 0), 1);
    assert_int_equal(p[0].revents, 8);
    assert_int_equal(sys_poll_ms((void *)p, 257, 0), -EINVAL);
}

/* A blocking pipe read waits on the scheduler's I/O channel (thread_io_wait, not a
 * channel of pipe.c's own) and is woken by a write, which calls thread_io_changed. */
static void test_pipe_waits_on_io_channel(void **state)
{
    (void)state;
    int32_t *fds = ualloc(2 * sizeof *fds);
    assert_int_equal(sys_pipe2(fds, 0), 0);
    int changes = io_changes;
    poll_writer_fd = fds[1];
    io_other_thread = write_to_poll_pipe;
    char *buf = ualloc(8);
    assert_int_equal(sys_read(fds[0], buf, 8), 1);
    assert_string_equal(last_wait_what, "read from an empty pipe");
    assert_true(io_changes > changes); /* the write told the channel */
    changes = io_changes;
    assert_int_equal(sys_close(fds[1]), 0);
    assert_true(io_changes > changes); /* so does a close: readers see end of file */
    assert_int_equal(sys_read(fds[0], buf, 8), 0);
}

/* rename within /tmp: replace a file (open descriptors keep the old data), move
 * between directories, RENAME_NOREPLACE, directories (empty target only, never into
 * themselves), errors; nothing outside /tmp moves; names survive many renames. */
static void test_tmp_rename(void **state)
{
    (void)state;
    char *buf = ualloc(64);
    int fd = (int)sys_openat(AT_FDCWD, U("/tmp/new.tmp"), O_RDWR | O_CREAT | O_EXCL, 0600);
    assert_int_equal(sys_write(fd, U("fresh"), 5), 5);
    assert_int_equal(sys_close(fd), 0);
    int old = (int)sys_openat(AT_FDCWD, U("/tmp/data"), O_RDWR | O_CREAT, 0600);
    assert_int_equal(sys_write(old, U("stale"), 5), 5);
    /* The atomic-write pattern: write a temporary name, rename it over the real one. */
    assert_int_equal(sys_renameat2(AT_FDCWD, U("/tmp/new.tmp"), AT_FDCWD, U("/tmp/data"), 0), 0);
    assert_int_equal(open_err(AT_FDCWD, "/tmp/new.tmp", O_RDONLY), -ENOENT);
    fd = open_ok(AT_FDCWD, "/tmp/data", O_RDONLY);
    assert_int_equal(sys_read(fd, buf, 64), 5);
    assert_memory_equal(buf, "fresh", 5);
    assert_int_equal(sys_close(fd), 0);
    assert_int_equal(sys_pread64(old, buf, 64, 0), 5); /* the replaced file lives on */
    assert_memory_equal(buf, "stale", 5);
    assert_int_equal(sys_close(old), 0);
    /* Into a directory, relative to a directory descriptor, and back. */
    assert_int_equal(sys_mkdirat(AT_FDCWD, U("/tmp/d"), 0755), 0);
    int d = open_ok(AT_FDCWD, "/tmp/d", O_RDONLY | O_DIRECTORY);
    assert_int_equal(sys_renameat2(AT_FDCWD, U("/tmp/data"), d, U("moved"), 0), 0);
    assert_int_equal(stat_path(AT_FDCWD, "/tmp/d/moved", 0)->st_size, 5);
    assert_int_equal(open_err(AT_FDCWD, "/tmp/data", O_RDONLY), -ENOENT);
    /* RENAME_NOREPLACE refuses an existing target; flags it does not know are EINVAL. */
    fd = (int)sys_openat(AT_FDCWD, U("/tmp/other"), O_WRONLY | O_CREAT, 0600);
    assert_int_equal(sys_close(fd), 0);
    assert_int_equal(sys_renameat2(AT_FDCWD, U("/tmp/other"), AT_FDCWD, U("/tmp/d/moved"), 1), -EEXIST);
    assert_int_equal(sys_renameat2(AT_FDCWD, U("/tmp/other"), AT_FDCWD, U("/tmp/x"), 2), -EINVAL);
    assert_int_equal(sys_renameat2(AT_FDCWD, U("/tmp/other"), AT_FDCWD, U("/tmp/other"), 0), 0); /* itself */
    /* Directories: not over a file, not over a non-empty directory, not into itself. */
    assert_int_equal(sys_renameat2(AT_FDCWD, U("/tmp/d"), AT_FDCWD, U("/tmp/other"), 0), -ENOTDIR);
    assert_int_equal(sys_renameat2(AT_FDCWD, U("/tmp/other"), AT_FDCWD, U("/tmp/d"), 0), -EISDIR);
    assert_int_equal(sys_mkdirat(AT_FDCWD, U("/tmp/e"), 0755), 0);
    assert_int_equal(sys_renameat2(AT_FDCWD, U("/tmp/e"), AT_FDCWD, U("/tmp/d"), 0), -ENOTEMPTY);
    assert_int_equal(sys_unlinkat(AT_FDCWD, U("/tmp/d/moved"), 0), 0);
    assert_int_equal(sys_renameat2(AT_FDCWD, U("/tmp/e"), AT_FDCWD, U("/tmp/d"), 0), 0); /* over an empty one */
    assert_int_equal(open_err(AT_FDCWD, "/tmp/e", O_RDONLY), -ENOENT);
    assert_int_equal(stat_path(AT_FDCWD, "/tmp/d", 0)->st_mode & S_IFMT, S_IFDIR);
    assert_int_equal(sys_mkdirat(AT_FDCWD, U("/tmp/f"), 0755), 0);
    assert_int_equal(sys_mkdirat(AT_FDCWD, U("/tmp/f/g"), 0755), 0);
    assert_int_equal(sys_renameat2(AT_FDCWD, U("/tmp/f"), AT_FDCWD, U("/tmp/f/g/h"), 0), -EINVAL);
    assert_int_equal(sys_renameat2(AT_FDCWD, U("/tmp/d"), AT_FDCWD, U("/tmp/f"), 0), -ENOTEMPTY);
    assert_int_equal(sys_renameat2(AT_FDCWD, U("/tmp/f"), AT_FDCWD, U("/tmp/f2"), 0), 0);
    assert_int_equal(stat_path(AT_FDCWD, "/tmp/f2/g", 0)->st_mode & S_IFMT, S_IFDIR);
    /* Errors: a missing source, outside /tmp either way. */
    assert_int_equal(sys_renameat2(AT_FDCWD, U("/tmp/nope"), AT_FDCWD, U("/tmp/x"), 0), -ENOENT);
    assert_int_equal(sys_renameat2(AT_FDCWD, U("/data/big.bin"), AT_FDCWD, U("/tmp/x"), 0), -EROFS);
    assert_int_equal(sys_renameat2(AT_FDCWD, U("/tmp/other"), AT_FDCWD, U("/data/x"), 0), -EROFS);
    assert_int_equal(sys_renameat2(AT_FDCWD, U("/tmp"), AT_FDCWD, U("/tmp2"), 0), -EROFS);
    assert_true(stat_path(AT_FDCWD, "/data/big.bin", 0)->st_size > 0);
    /* Many renames back and forth leave the name table sound (removed entries are
     * reused), and the listing shows each file once. */
    const char *ping = U("/tmp/ping"), *other = U("/tmp/other");
    for (int i = 0; i < 20000; i++)
        assert_int_equal(sys_renameat2(AT_FDCWD, i % 2 ? ping : other, AT_FDCWD, i % 2 ? other : ping, 0), 0);
    assert_int_equal(open_err(AT_FDCWD, "/tmp/ping", O_RDONLY), -ENOENT);
    fd = open_ok(AT_FDCWD, "/tmp/other", O_RDONLY);
    assert_int_equal(sys_close(fd), 0);
}

/* /proc/meminfo and /proc/self/maps: made at each open from the allocator, so they
 * follow allocations; maps is sorted, names the stack exactly, leaves its guard out
 * (as glibc's pthread_getattr_np needs: the stack line, and the end of the line
 * before it below the guard), and lists a mapping while it exists. */
static void test_proc_meminfo_and_maps(void **state)
{
    (void)state;
    int64_t len;
    uint64_t total, free0;
    mm_stats(&total, &free0);
    char *buf = slurp("/proc/meminfo", &len);
    unsigned long mt, mf, ma;
    assert_int_equal(sscanf(buf, "MemTotal: %lu kB MemFree: %lu kB MemAvailable: %lu kB", &mt, &mf, &ma), 3);
    assert_int_equal(mt, total >> 10);
    assert_int_equal(mf, (free0 >> 10) - 64); /* less the 64 KiB its own buffer took */
    free0 = (uint64_t)mf << 10;
    assert_non_null(strstr(buf, "Hugepagesize:       2048 kB\n"));
    int64_t m = sys_mmap(0, 4ull << 20, RW, ANON, -1, 0);
    assert_true(m > 0);
    buf = slurp("/proc/meminfo", &len);
    assert_int_equal(sscanf(buf, "MemTotal: %lu kB MemFree: %lu kB", &mt, &mf), 2);
    assert_int_equal(mf, (free0 >> 10) - 4096); /* made afresh: the 4 MiB are gone */

    buf = slurp("/proc/self/maps", &len);
    unsigned long prev_hi = 0, lo, hi, stack_line = 0, mapped = 0, before_stack = 0;
    int lines = 0;
    for (char *line = buf; *line; line = strchr(line, '\n') + 1) {
        char perms[8];
        assert_int_equal(sscanf(line, "%lx-%lx %4s", &lo, &hi, perms), 3);
        assert_string_equal(perms, "rwxp");
        assert_true(lo < hi && lo >= prev_hi); /* sorted, no overlap */
        if (strncmp(strchr(line, '\n') - 7, "[stack]", 7) == 0) {
            stack_line++;
            assert_int_equal(lo, mm_stack_bottom());
            assert_int_equal(hi, mm_stack_top());
            before_stack = prev_hi;
        }
        if (lo <= (uint64_t)m && (uint64_t)m + (4ull << 20) <= hi)
            mapped++;
        prev_hi = hi;
        lines++;
    }
    assert_int_equal(stack_line, 1);
    assert_int_equal(mapped, 1);
    assert_true(lines >= 3);
    assert_true(before_stack <= mm_stack_bottom() - THAW_STACK_GUARD_SIZE); /* the guard: no line */
    assert_int_equal(sys_munmap((uint64_t)m, 4ull << 20), 0);
    buf = slurp("/proc/self/maps", &len);
    for (char *line = buf; *line; line = strchr(line, '\n') + 1) {
        assert_int_equal(sscanf(line, "%lx-%lx", &lo, &hi), 2);
        assert_false(lo <= (uint64_t)m && (uint64_t)m < hi); /* gone with the mapping */
    }
    /* Read-only, as on Linux. */
    assert_int_equal(sys_openat(AT_FDCWD, U("/proc/meminfo"), O_WRONLY, 0), -EROFS);
}

/* A page directory as the monitor builds it (x86_boot.c), over the test's memory. */
#define PD_ENTRIES 2048
static uint64_t fake_pd[PD_ENTRIES];

static void fake_page_tables(void)
{
    for (uint64_t a = MAP_BASE; a < MEM_END; a += 2ull << 20)
        fake_pd[a >> 21] = a | 0x1 | 0x2 | 0x4 | 0x80; /* present, writable, user, 2 MiB */
    guard_init(fake_pd, PD_ENTRIES, MEM_END);
}

static uint64_t pte_at(uint64_t addr)
{
    uint64_t pde = fake_pd[addr >> 21];
    assert_int_equal(pde & 0x80, 0); /* split into a page table */
    return ((uint64_t *)(uintptr_t)(pde & 0x000ffffffffff000ull))[(addr >> 12) % 512];
}

/* A thread stack as glibc's pthread makes it: the whole mapping PROT_NONE, then all
 * but the lowest page made read-write. Returns its base; the stack top is base + len. */
static uint64_t pthread_stack(uint64_t len)
{
    int64_t m = sys_mmap(0, len, PROT_NONE, ANON, -1, 0);
    assert_true(m > 0);
    assert_int_equal(sys_mprotect((uint64_t)m + PAGE, len - PAGE, RW), 0);
    return (uint64_t)m;
}

/* The guard below a thread's stack (mm.c, guard.c): clone unmaps the PROT_NONE page
 * under the stack in the page tables (a 2 MiB page split into 4 KiB ones, the entry
 * tagged with the thread id for the monitor), one TLB flush; the stack stays mapped;
 * a cached stack reused by another thread is re-tagged; madvise never touches the
 * guard; it is mapped again when made accessible or freed; stacks without a PROT_NONE
 * page below get none; a guard is at most 1 MiB. */
static void test_thread_stack_guard(void **state)
{
    (void)state;
    fake_page_tables();
    uint64_t m = pthread_stack(1ull << 20), top = m + (1ull << 20);
    tlb_flushes = 0;
    assert_int_equal(mm_guard_thread_stack(top - 64, 7), 1);
    assert_true(guard_is_set(m));
    assert_false(guard_is_set(m + PAGE));
    assert_int_equal(pte_at(m), (7ull << 32) | THAW_GUARD_PTE_TAG);
    assert_int_equal(pte_at(m + PAGE), (m + PAGE) | 0x7); /* the stack: identity, present */
    assert_int_equal(pte_at(m - PAGE) & 1, 1);
    assert_int_equal(tlb_flushes, 1);
    /* The guard is no line of /proc/self/maps. */
    int64_t len;
    char *maps = slurp("/proc/self/maps", &len);
    for (char *line = maps; *line; line = strchr(line, '\n') + 1) {
        unsigned long lo, hi;
        assert_int_equal(sscanf(line, "%lx-%lx", &lo, &hi), 2);
        assert_false(lo <= m && m < hi);
    }
    /* glibc's thread exit: MADV_DONTNEED over the stack, guard included: the guard is
     * skipped (its page is unmapped in the guest: touching it would fault). */
    memset((void *)(uintptr_t)m, 0x5a, PAGE);
    memset((void *)(uintptr_t)(m + PAGE), 0x5a, PAGE);
    assert_int_equal(sys_madvise(m, 1ull << 20, 4 /* MADV_DONTNEED */), 0);
    assert_int_equal(((uint8_t *)(uintptr_t)m)[0], 0x5a);
    assert_int_equal(((uint8_t *)(uintptr_t)(m + PAGE))[0], 0);
    /* The cached stack, reused by thread 9: re-tagged, no new flush (nothing was mapped). */
    assert_int_equal(mm_guard_thread_stack(top, 9), 1);
    assert_int_equal(pte_at(m), (9ull << 32) | THAW_GUARD_PTE_TAG);
    assert_int_equal(tlb_flushes, 1);
    /* Made accessible: mapped again, by its own address. */
    assert_int_equal(sys_mprotect(m, PAGE, RW), 0);
    assert_false(guard_is_set(m));
    assert_int_equal(pte_at(m), m | 0x7);
    /* No PROT_NONE page below the stack any more: no guard. */
    assert_int_equal(mm_guard_thread_stack(top, 10), 0);
    /* PROT_NONE again, guarded again, then freed: mapped again with the memory. */
    assert_int_equal(sys_mprotect(m, PAGE, PROT_NONE), 0);
    assert_int_equal(mm_guard_thread_stack(top, 11), 1);
    assert_int_equal(sys_munmap(m, 1ull << 20), 0);
    assert_false(guard_is_set(m));
    assert_int_equal(pte_at(m), m | 0x7);
    /* Reused by a plain mapping: ordinary, writable memory. */
    int64_t again = sys_mmap(0, 1ull << 20, RW, ANON, -1, 0);
    assert_true(again > 0);
    assert_false(guard_is_set((uint64_t)again));
    /* A stack with nothing PROT_NONE below (malloc'd or mmap'd read-write): no guard. */
    int64_t plain = sys_mmap(0, 256 << 10, RW, ANON, -1, 0);
    assert_int_equal(mm_guard_thread_stack((uint64_t)plain + (256 << 10), 12), 0);
    assert_int_equal(mm_guard_thread_stack(0, 12), 0);
    /* A huge PROT_NONE area below: only the 1 MiB right under the stack is unmapped. */
    int64_t big = sys_mmap(0, 4ull << 20, PROT_NONE, ANON, -1, 0);
    assert_int_equal(sys_mprotect((uint64_t)big + (3ull << 20), 1ull << 20, RW), 0);
    assert_int_equal(mm_guard_thread_stack((uint64_t)big + (4ull << 20), 13), 256);
    assert_true(guard_is_set((uint64_t)big + (3ull << 20) - PAGE));
    assert_true(guard_is_set((uint64_t)big + (2ull << 20)));
    assert_false(guard_is_set((uint64_t)big + (2ull << 20) - PAGE));
    /* MAP_FIXED over a guard: fresh, mapped memory. */
    assert_int_equal(sys_mmap((uint64_t)big + (2ull << 20), PAGE, RW, ANON | MAP_FIXED, -1, 0),
                     (int64_t)big + (2ull << 20));
    assert_false(guard_is_set((uint64_t)big + (2ull << 20)));
    assert_int_equal(*(uint8_t *)(uintptr_t)((uint64_t)big + (2ull << 20)), 0);
}

/* The writable /tmp: create, write, read back, append, truncate, pwrite, mkdir, unlink
 * and rmdir; the rest of the tree stays read-only. */
static void test_tmp_writable(void **state)
{
    (void)state;
    char *buf = ualloc(64);
    assert_int_equal(sys_faccessat(AT_FDCWD, U("/tmp"), 2 /* W_OK */), 0);
    int fd = (int)sys_openat(AT_FDCWD, U("/tmp/a.txt"), O_RDWR | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(sys_openat(AT_FDCWD, U("/tmp/a.txt"), O_RDWR | O_CREAT | O_EXCL, 0600), -EEXIST);
    assert_int_equal(sys_write(fd, U("hello "), 6), 6);
    assert_int_equal(sys_write(fd, U("world"), 5), 5);
    assert_int_equal(sys_pread64(fd, buf, 64, 0), 11);
    assert_memory_equal(buf, "hello world", 11);
    assert_int_equal(sys_pwrite64(fd, U("W"), 1, 6), 1);
    assert_int_equal(sys_ftruncate(fd, 7), 0);
    assert_int_equal(sys_pread64(fd, buf, 64, 0), 7);
    assert_memory_equal(buf, "hello W", 7);
    assert_int_equal(sys_close(fd), 0);
    fd = (int)sys_openat(AT_FDCWD, U("/tmp/a.txt"), O_WRONLY | O_APPEND, 0);
    assert_int_equal(sys_write(fd, U("!"), 1), 1);
    assert_int_equal(sys_close(fd), 0);
    struct linux_stat *st = stat_path(AT_FDCWD, "/tmp/a.txt", 0);
    assert_int_equal(st->st_size, 8);
    assert_int_equal(st->st_mode, S_IFREG | 0600);
    /* Big files grow in guest memory. */
    fd = (int)sys_openat(AT_FDCWD, U("/tmp/big"), O_RDWR | O_CREAT | O_TRUNC, 0644);
    uint8_t *chunk = ualloc(sizeof big_data);
    memcpy(chunk, big_data, sizeof big_data);
    for (int i = 0; i < 100; i++)
        assert_int_equal(sys_write(fd, chunk, sizeof big_data), sizeof big_data);
    assert_int_equal(sys_pread64(fd, buf, 16, 99 * sizeof big_data), 16);
    assert_memory_equal(buf, big_data, 16);
    assert_int_equal(sys_close(fd), 0);
    assert_int_equal(sys_mkdirat(AT_FDCWD, U("/tmp/d"), 0755), 0);
    assert_int_equal(sys_mkdirat(AT_FDCWD, U("/tmp/d"), 0755), -EEXIST);
    fd = (int)sys_openat(AT_FDCWD, U("/tmp/d/f"), O_WRONLY | O_CREAT, 0644);
    assert_true(fd >= 0);
    assert_int_equal(sys_close(fd), 0);
    assert_int_equal(sys_unlinkat(AT_FDCWD, U("/tmp/d"), 0x200), -ENOTEMPTY);
    assert_int_equal(sys_unlinkat(AT_FDCWD, U("/tmp/d/f"), 0), 0);
    assert_int_equal(open_err(AT_FDCWD, "/tmp/d/f", O_RDONLY), -ENOENT);
    assert_int_equal(sys_unlinkat(AT_FDCWD, U("/tmp/d"), 0x200), 0);
    assert_int_equal(sys_unlinkat(AT_FDCWD, U("/tmp/a.txt"), 0), 0);
    assert_int_equal(sys_unlinkat(AT_FDCWD, U("/tmp/a.txt"), 0), -ENOENT);
    /* Outside /tmp nothing changes. */
    assert_int_equal(sys_openat(AT_FDCWD, U("/data/new"), O_WRONLY | O_CREAT, 0644), -EROFS);
    assert_int_equal(sys_mkdirat(AT_FDCWD, U("/data/newdir"), 0755), -EROFS);
    assert_int_equal(sys_unlinkat(AT_FDCWD, U("/data/big.bin"), 0), -EROFS);
    assert_int_equal(sys_openat(AT_FDCWD, U("/data/big.bin"), O_WRONLY, 0), -EROFS);
}

static void test_mmap_exhaustion(void **state)
{
    (void)state;
    uint64_t total, free0;
    mm_stats(&total, &free0);
    assert_int_equal(total, MEM_END);
    assert_true(free0 > 40ull << 20);
    /* More than is free, though not more than the allocator manages. */
    assert_int_equal(sys_mmap(0, free0 + PAGE, RW, ANON, -1, 0), -ENOMEM);
    /* Take everything: 1 MiB pieces, then single pages. */
    static int64_t maps[4096];
    size_t n = 0;
    int64_t r;
    while ((r = sys_mmap(0, 1ull << 20, RW, ANON, -1, 0)) > 0) {
        assert_true(n < 4096);
        maps[n++] = r;
    }
    assert_int_equal(r, -ENOMEM);
    size_t big = n;
    while ((r = sys_mmap(0, PAGE, RW, ANON, -1, 0)) > 0) {
        assert_true(n < 4096);
        maps[n++] = r;
    }
    assert_int_equal(r, -ENOMEM);
    assert_int_equal(free_bytes(), 0);
    assert_int_equal(big * (1ull << 20) + (n - big) * PAGE, free0);
    /* Everything else that allocates fails cleanly. */
    assert_null(mm_alloc_pages(1));
    uint64_t brk0 = (uint64_t)sys_brk(0);
    assert_int_equal(sys_brk(brk0 + PAGE), brk0);
    int64_t t = sys_mmap(0, PAGE, RW, ANON, -1, 0);
    assert_int_equal(t, -ENOMEM);
    if (n > big)
        assert_int_equal(sys_mremap((uint64_t)maps[big], PAGE, 2 * PAGE, MREMAP_MAYMOVE, 0), -ENOMEM);
    /* Free one 1 MiB piece: a 1 MiB mapping fits again, exactly there. */
    assert_int_equal(sys_munmap((uint64_t)maps[0], 1ull << 20), 0);
    assert_int_equal(sys_mmap(0, 1ull << 20, RW, ANON, -1, 0), maps[0]);
    /* Give it all back. */
    for (size_t i = 0; i < n; i++)
        assert_int_equal(sys_munmap((uint64_t)maps[i], i < big ? 1ull << 20 : PAGE), 0);
    assert_int_equal(free_bytes(), free0);
    int64_t all = sys_mmap(0, free0, RW, ANON, -1, 0);
    assert_true(all > 0);
    assert_true(all_bytes((void *)(uintptr_t)all, 0, free0));
}

static void test_alloc_pages_and_madvise(void **state)
{
    (void)state;
    uint64_t free0 = free_bytes();
    uint8_t *p = mm_alloc_pages(3 * PAGE + 1);
    assert_non_null(p);
    assert_int_equal((uint64_t)(uintptr_t)p % PAGE, 0);
    assert_int_equal(free_bytes(), free0 - 4 * PAGE);
    assert_null(mm_alloc_pages(0));
    assert_null(mm_alloc_pages(1ull << 40));
    mm_free_pages(p, 3 * PAGE + 1);
    assert_int_equal(free_bytes(), free0);
    mm_free_pages((void *)(uintptr_t)MAP_BASE, PAGE); /* below the allocator: ignored */
    assert_int_equal(free_bytes(), free0);

    /* madvise(MADV_DONTNEED) zeroes anonymous memory. */
    int64_t m = sys_mmap(0, 4 * PAGE, RW, ANON, -1, 0);
    memset((void *)(uintptr_t)m, 0x42, 4 * PAGE);
    assert_int_equal(sys_madvise((uint64_t)m + PAGE, 2 * PAGE, 4), 0);
    assert_true(all_bytes((void *)(uintptr_t)m, 0x42, PAGE));
    assert_true(all_bytes((void *)(uintptr_t)(m + PAGE), 0, 2 * PAGE));
    assert_true(all_bytes((void *)(uintptr_t)(m + 3 * PAGE), 0x42, PAGE));
    assert_int_equal(sys_madvise((uint64_t)m + 1, PAGE, 4), -EINVAL);
    assert_int_equal(sys_madvise((uint64_t)m, PAGE, 0), 0); /* MADV_NORMAL: nothing */
    assert_true(all_bytes((void *)(uintptr_t)m, 0x42, PAGE));
    /* The stack sits at the very top of memory. */
    assert_int_equal(mm_stack_top(), MEM_END);
    assert_int_equal(mm_stack_bottom(), MEM_END - STACK_SIZE);
}

/* uaccess.c: the checks every syscall's pointers go through. */
static void test_user_pointer_checks(void **state)
{
    (void)state;
    assert_true(user_range_ok(PAGE, 0));
    assert_true(user_range_ok(SCRATCH_BASE, 16));
    assert_true(user_range_ok(MEM_END - 16, 16));
    assert_true(user_range_ok(MEM_END, 0));
    assert_false(user_range_ok(0, 1));          /* the NULL page */
    assert_false(user_range_ok(PAGE - 1, 1));
    assert_false(user_range_ok(MEM_END - 15, 16));
    assert_false(user_range_ok(MEM_END + 1, 0));
    assert_false(user_range_ok(UINT64_MAX - 7, 16)); /* wraps */
    assert_false(user_range_ok(SCRATCH_BASE, UINT64_MAX));
    /* Arrays: count * size must not wrap to a small, in-range length. */
    assert_true(user_array_ok(SCRATCH_BASE, 4, 8));
    assert_true(user_array_ok(SCRATCH_BASE, 0, 8));
    assert_false(user_array_ok(SCRATCH_BASE, 1ull << 61, 8)); /* 2^64: wraps to 0 */
    assert_false(user_array_ok(SCRATCH_BASE, (1ull << 61) + 1, 8)); /* wraps to 8 */
    assert_false(user_array_ok(SCRATCH_BASE, UINT64_MAX, 2));
    assert_false(user_array_ok(MEM_END - 8, 2, 8));
    /* Strings stop at the end of memory. */
    char *s = (char *)(uintptr_t)SCRATCH_BASE;
    memcpy(s, "abc", 4);
    assert_int_equal(user_string_len(s, 64), 3);
    assert_int_equal(user_string_len(s, 3), -ENAMETOOLONG);
    char *end = (char *)(uintptr_t)(MEM_END - 2);
    memcpy(end, "xy", 2); /* no NUL before the end */
    assert_int_equal(user_string_len(end, 64), -EFAULT);
    assert_int_equal(user_string_len((const char *)(uintptr_t)16, 64), -EFAULT);
}

#define T(f) cmocka_unit_test_setup(f, boot)

/* Runs each test (or those whose name contains argv[1]) in a child process of its
 * own, each printing cmocka's usual summary; a child that dies (a sanitizer report,
 * a crash) is reported as a failed test. */
int main(int argc, char **argv)
{
    uint64_t host_stack_top = (uintptr_t)__builtin_frame_address(0);
    uaccess_allow(host_stack_top - HOST_STACK_ALLOWANCE, host_stack_top);
    static const struct CMUnitTest tests[] = {
        T(test_open_absolute_and_relative),
        T(test_user_pointer_checks),
        T(test_dot_and_dotdot),
        T(test_symlinks),
        T(test_readlinkat),
        T(test_open_errors),
        T(test_bad_paths),
        T(test_read_pread_lseek),
        T(test_stat),
        T(test_getdents_small_buffers),
        T(test_getdents_special_dirs),
        T(test_getcwd_chdir),
        T(test_dup_dup3_fcntl),
        T(test_close),
        T(test_console_fds),
        T(test_device_files),
        cmocka_unit_test_setup(test_archive_quirks, boot_mm),
        cmocka_unit_test_setup(test_no_archive, boot_mm),
        T(test_brk),
        T(test_mmap_anonymous_zeroed),
        T(test_map_fixed),
        T(test_munmap_partial),
        T(test_kept_memory_budget),
        T(test_mremap),
        T(test_mmap_file),
        T(test_mmap_exhaustion),
        T(test_mprotect_honest),
        T(test_pipes_and_epoll),
        T(test_tmp_writable),
        T(test_poll_timeouts),
        T(test_pipe_waits_on_io_channel),
        T(test_tmp_rename),
        T(test_proc_meminfo_and_maps),
        T(test_thread_stack_guard),
        T(test_alloc_pages_and_madvise),
    };
    if (build_archive() != 0)
        return 1;
    int failed = run_tests_forked(tests, sizeof tests / sizeof tests[0], argc, argv);
    if (failed < 0)
        return 1;
    free(archive);
    return failed ? 1 : 0;
}
