#include "host/snapshot/memory_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "host/util/clock.h"

#define PAGE 4096ull

const char *mem_mode_name(enum mem_mode m)
{
    return m == MEM_COPY ? "copy" : m == MEM_LAZY ? "lazy" : m == MEM_UFFD ? "uffd" : "reap";
}

int mem_mode_parse(const char *s, enum mem_mode *out)
{
    if (!strcmp(s, "copy"))
        *out = MEM_COPY;
    else if (!strcmp(s, "lazy"))
        *out = MEM_LAZY;
    else if (!strcmp(s, "uffd"))
        *out = MEM_UFFD;
    else if (!strcmp(s, "reap"))
        *out = MEM_REAP;
    else
        return -1;
    return 0;
}

/* copy: read only the file's data extents; holes stay untouched zero memory. */
static int copy_in(struct mem_backend *b, struct thaw_error *err)
{
    off_t off = 0;
    for (;;) {
        off_t data = lseek(b->file_fd, off, SEEK_DATA);
        if (data < 0) {
            if (errno == ENXIO)
                return 0;
            return thaw_fail_errno(err, "lseek(SEEK_DATA) on the memory file");
        }
        off_t hole = lseek(b->file_fd, data, SEEK_HOLE);
        if (hole < 0)
            return thaw_fail_errno(err, "lseek(SEEK_HOLE) on the memory file");
        for (off_t p = data; p < hole;) {
            ssize_t n = pread(b->file_fd, b->host + p, (size_t)(hole - p), p);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return thaw_fail_errno(err, "reading the memory file");
            p += n;
            b->bytes_copied += (uint64_t)n;
        }
        off = hole;
    }
}

static bool is_zeroed(const struct mem_backend *b, uint64_t page)
{
    return b->zeroed[page / 8] >> (page % 8) & 1;
}

static void record_page(struct mem_backend *b, uint64_t off)
{
    pthread_mutex_lock(&b->log_lock);
    if (b->log_len == b->log_cap) {
        size_t cap = b->log_cap ? b->log_cap * 2 : 4096;
        struct page_record *n = realloc(b->log, cap * sizeof *n);
        if (!n) {
            pthread_mutex_unlock(&b->log_lock);
            return; /* the trace will be short; the restore still works */
        }
        b->log = n;
        b->log_cap = cap;
    }
    b->log[b->log_len++] = (struct page_record){off, clock_now_ns() - b->record_start_ns};
    pthread_mutex_unlock(&b->log_lock);
}

int mem_backend_take_log(struct mem_backend *b, struct page_record **out, size_t *len)
{
    pthread_mutex_lock(&b->log_lock);
    *out = malloc((b->log_len + 1) * sizeof **out);
    if (*out) {
        memcpy(*out, b->log, b->log_len * sizeof **out);
        *len = b->log_len;
    }
    pthread_mutex_unlock(&b->log_lock);
    return *out ? 0 : -1;
}

/* Serves one missing page: from the file, or as zeros for discarded pages. */
static int serve_page(struct mem_backend *b, uint64_t addr)
{
    uint64_t off = (addr & ~(PAGE - 1)) - (uint64_t)(uintptr_t)b->host;
    if (b->recording)
        record_page(b, off);
    static _Thread_local uint8_t buf[PAGE] __attribute__((aligned(4096)));
    if (!is_zeroed(b, off / PAGE)) {
        ssize_t n = pread(b->file_fd, buf, PAGE, (off_t)off);
        if (n != (ssize_t)PAGE)
            return -1;
        struct uffdio_copy c = {.dst = (uint64_t)(uintptr_t)b->host + off, .src = (uint64_t)(uintptr_t)buf,
                                .len = PAGE};
        if (ioctl(b->uffd, UFFDIO_COPY, &c) < 0 && errno != EEXIST)
            return -1;
        b->pages_served++;
    } else {
        struct uffdio_zeropage z = {.range = {.start = (uint64_t)(uintptr_t)b->host + off, .len = PAGE}};
        if (ioctl(b->uffd, UFFDIO_ZEROPAGE, &z) < 0 && errno != EEXIST)
            return -1;
        b->zero_pages++;
    }
    return 0;
}

static void *uffd_thread(void *arg)
{
    struct mem_backend *b = arg;
    struct pollfd fds[2] = {{.fd = b->uffd, .events = POLLIN}, {.fd = b->stop_pipe[0], .events = POLLIN}};
    for (;;) {
        if (poll(fds, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            snprintf(b->thread_error, sizeof b->thread_error, "poll on userfaultfd: %s", strerror(errno));
            return NULL;
        }
        if (fds[1].revents)
            return NULL;
        struct uffd_msg msgs[16];
        ssize_t n = read(b->uffd, msgs, sizeof msgs);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            snprintf(b->thread_error, sizeof b->thread_error, "read on userfaultfd: %s", strerror(errno));
            return NULL;
        }
        for (size_t i = 0; i < (size_t)n / sizeof msgs[0]; i++) {
            struct uffd_msg *m = &msgs[i];
            if (m->event == UFFD_EVENT_PAGEFAULT) {
                uint64_t t0 = clock_now_ns();
                if (serve_page(b, m->arg.pagefault.address) < 0) {
                    snprintf(b->thread_error, sizeof b->thread_error, "serving page %#llx: %s",
                             (unsigned long long)m->arg.pagefault.address, strerror(errno));
                    return NULL;
                }
                b->fault_ns += clock_now_ns() - t0;
            } else if (m->event == UFFD_EVENT_REMOVE) {
                /* The range was dropped (MADV_DONTNEED): it must read back as zero. */
                uint64_t s = m->arg.remove.start - (uint64_t)(uintptr_t)b->host;
                uint64_t e = m->arg.remove.end - (uint64_t)(uintptr_t)b->host;
                for (uint64_t p = s / PAGE; p < e / PAGE && p < b->size / PAGE; p++)
                    b->zeroed[p / 8] |= (uint8_t)(1u << (p % 8));
            }
        }
    }
}

static int uffd_setup(struct mem_backend *b, struct thaw_error *err)
{
    b->uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (b->uffd < 0)
        return thaw_fail_errno(err, "userfaultfd (needs root or vm.unprivileged_userfaultfd)");
    struct uffdio_api api = {.api = UFFD_API, .features = UFFD_FEATURE_EVENT_REMOVE};
    if (ioctl(b->uffd, UFFDIO_API, &api) < 0)
        return thaw_fail_errno(err, "UFFDIO_API");
    struct uffdio_register reg = {.range = {.start = (uint64_t)(uintptr_t)b->host, .len = b->size},
                                  .mode = UFFDIO_REGISTER_MODE_MISSING};
    if (ioctl(b->uffd, UFFDIO_REGISTER, &reg) < 0)
        return thaw_fail_errno(err, "UFFDIO_REGISTER");
    b->zeroed = calloc(b->size / PAGE / 8 + 1, 1);
    if (!b->zeroed || pipe2(b->stop_pipe, O_CLOEXEC) < 0)
        return thaw_fail_errno(err, "uffd handler set-up");
    if (pthread_create(&b->thread, NULL, uffd_thread, b) != 0)
        return thaw_fail(err, "cannot start the page-fault handler thread");
    b->thread_running = true;
    return 0;
}

int mem_backend_open(struct mem_backend *b, enum mem_mode mode, const char *memory_path, uint64_t size,
                     struct thaw_error *err)
{
    memset(b, 0, sizeof *b);
    pthread_mutex_init(&b->log_lock, NULL);
    b->record_start_ns = clock_now_ns();
    b->mode = mode;
    b->size = size;
    b->uffd = b->stop_pipe[0] = b->stop_pipe[1] = -1;
    b->file_fd = open(memory_path, O_RDONLY | O_CLOEXEC);
    if (b->file_fd < 0)
        return thaw_fail_errno(err, "cannot open %s", memory_path);
    struct stat st;
    if (fstat(b->file_fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        thaw_fail(err, "%s is not a regular file", memory_path);
        goto fail;
    }
    if ((uint64_t)st.st_size != size) {
        thaw_fail(err, "memory file %s is %lld bytes, the snapshot says %llu", memory_path, (long long)st.st_size,
                  (unsigned long long)size);
        goto fail;
    }
    if (mode == MEM_LAZY) {
        b->host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, b->file_fd, 0);
    } else {
        b->host = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    }
    if (b->host == MAP_FAILED) {
        b->host = NULL;
        thaw_fail_errno(err, "cannot map %llu bytes of guest memory", (unsigned long long)size);
        goto fail;
    }
    if (mode == MEM_COPY && copy_in(b, err) < 0)
        goto fail;
    b->recording = mode == MEM_REAP; /* until a prefetch succeeds */
    if ((mode == MEM_UFFD || mode == MEM_REAP) && uffd_setup(b, err) < 0)
        goto fail;
    return 0;
fail:
    mem_backend_close(b);
    return -1;
}

int mem_backend_discard(struct mem_backend *b, uint64_t gpa, uint64_t len, struct thaw_error *err)
{
    if (b->mode == MEM_LAZY) {
        /* DONTNEED on a private file mapping would bring back the snapshot's bytes:
         * replace the range with fresh anonymous memory instead. */
        void *p = mmap(b->host + gpa, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
        if (p == MAP_FAILED)
            return thaw_fail_errno(err, "remapping discarded guest memory");
        return 0;
    }
    /* copy: plain anonymous memory. uffd: the REMOVE event marks the pages as zero
     * before any later fault on them can be served. */
    if (madvise(b->host + gpa, len, MADV_DONTNEED) < 0)
        return thaw_fail_errno(err, "madvise(MADV_DONTNEED) of guest memory");
    return 0;
}

void mem_backend_close(struct mem_backend *b)
{
    if (b->thread_running) {
        (void)!write(b->stop_pipe[1], "x", 1);
        pthread_join(b->thread, NULL);
        b->thread_running = false;
    }
    if (b->stop_pipe[0] >= 0)
        close(b->stop_pipe[0]);
    if (b->stop_pipe[1] >= 0)
        close(b->stop_pipe[1]);
    if (b->uffd >= 0)
        close(b->uffd);
    if (b->host)
        munmap(b->host, b->size);
    if (b->file_fd >= 0)
        close(b->file_fd);
    free(b->zeroed);
    free(b->log);
    b->log = NULL;
    b->log_len = b->log_cap = 0;
    b->host = NULL;
    b->zeroed = NULL;
    b->uffd = b->file_fd = b->stop_pipe[0] = b->stop_pipe[1] = -1;
}
