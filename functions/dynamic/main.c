/* dynamic: a dynamically linked C function. It links against libgreet.so, dlopens
 * libplugin.so from /app/lib, and checks file-backed mmap and mprotect before its
 * ready point. Request {"a": A, "b": B}; response: greeting, A*B from the plugin,
 * the plugin's call count and the result of the start-up checks. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "thaw_function.h"

const char *greet_prefix(void);

static int (*plugin_mul)(int, int);
static int (*plugin_calls)(void);
static char checks[256] = "ok";

#define CHECK(cond, what)                                                                          \
    do {                                                                                           \
        if (!(cond) && !strcmp(checks, "ok"))                                                      \
            snprintf(checks, sizeof checks, "%s failed (errno %d)", what, errno);                  \
    } while (0)

/* /app/pages.bin holds 3 pages: page i is filled with the byte 'A' + i. */
static void check_mmap(void)
{
    int fd = open("/app/pages.bin", O_RDONLY);
    CHECK(fd >= 0, "open pages.bin");
    long pg = sysconf(_SC_PAGESIZE);
    char *priv = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, pg);
    CHECK(priv != MAP_FAILED && priv[0] == 'B' && priv[pg] == 'C', "private mapping at an offset");
    if (priv != MAP_FAILED) {
        priv[0] = 'x'; /* private: the file keeps its byte */
        char b;
        CHECK(pread(fd, &b, 1, pg) == 1 && b == 'B', "private write stays private");
    }
    char *shared = mmap(NULL, pg, PROT_READ, MAP_SHARED, fd, 0);
    CHECK(shared != MAP_FAILED && shared[pg - 1] == 'A', "shared read-only mapping");
    errno = 0;
    CHECK(mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) == MAP_FAILED && errno == EACCES,
          "shared writable mapping of a read-only file is refused");
    if (priv != MAP_FAILED) {
        char *fixed = mmap(priv, pg, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_FIXED, fd, 2 * pg);
        CHECK(fixed == priv && fixed[0] == 'C', "fixed executable mapping replaces a page");
        CHECK(mprotect(priv, 2 * pg, PROT_READ) == 0, "mprotect of a mapping");
        CHECK(munmap(priv, 2 * pg) == 0, "munmap");
    }
    errno = 0;
    CHECK(mprotect((void *)(uintptr_t)(3ull << 40), pg, PROT_READ) < 0 && errno == ENOMEM,
          "mprotect of unmapped memory fails with ENOMEM");
    errno = 0;
    CHECK(mprotect((char *)shared + 1, pg, PROT_READ) < 0 && errno == EINVAL, "mprotect misaligned is EINVAL");
    close(fd);
}

static size_t handle(const char *req, char *resp)
{
    long a = thaw_json_int(req, "a", 0), b = thaw_json_int(req, "b", 0);
    int product = plugin_mul((int)a, (int)b);
    return (size_t)snprintf(resp, 4096,
                            "{\"greeting\": \"%s\", \"product\": %d, \"plugin_calls\": %d, \"checks\": \"%s\"}",
                            greet_prefix(), product, plugin_calls(), checks);
}

int main(void)
{
    void *h = dlopen("libplugin.so", RTLD_NOW);
    if (!h) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    plugin_mul = (int (*)(int, int))dlsym(h, "plugin_mul");
    plugin_calls = (int (*)(void))dlsym(h, "plugin_calls");
    int (*bss_zero)(void) = (int (*)(void))dlsym(h, "plugin_bss_zero");
    if (!plugin_mul || !plugin_calls || !bss_zero) {
        fprintf(stderr, "dlsym: %s\n", dlerror());
        return 1;
    }
    CHECK(bss_zero(), "dlopened library's bss reads as zero");
    check_mmap();
    return thaw_serve(handle, 4096);
}
