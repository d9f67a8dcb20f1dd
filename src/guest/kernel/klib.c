/* The small freestanding libc the kernel needs, plus console and panic helpers. */
#include "kernel.h"

void *memcpy(void *dst, const void *src, size_t n)
{
    void *ret = dst;
    __asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
    return ret;
}

void *memmove(void *dst, const void *src, size_t n)
{
    uint8_t *d = dst;
    const uint8_t *s = src;
    if (d <= s || d >= s + n)
        return memcpy(dst, src, n);
    /* Overlapping with dst above src: copy backwards. */
    while (n--)
        d[n] = s[n];
    return dst;
}

void *memset(void *dst, int c, size_t n)
{
    void *ret = dst;
    __asm__ volatile("rep stosb" : "+D"(dst), "+c"(n) : "a"(c) : "memory");
    return ret;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const uint8_t *x = a, *y = b;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

size_t strnlen(const char *s, size_t max)
{
    size_t n = 0;
    while (n < max && s[n])
        n++;
    return n;
}

int strcmp(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return (uint8_t)*a - (uint8_t)*b;
}

int strncmp(const char *a, const char *b, size_t n)
{
    for (; n; n--, a++, b++) {
        if (*a != *b)
            return (uint8_t)*a - (uint8_t)*b;
        if (!*a)
            return 0;
    }
    return 0;
}

/* ksnprintf: %s %d %u %x %lx %lu %ld %llu %llx %p %c %%, with optional 0-padding width. */
struct outbuf {
    char *buf;
    size_t size, len;
};

static void out_ch(struct outbuf *o, char c)
{
    if (o->len + 1 < o->size)
        o->buf[o->len] = c;
    o->len++;
}

static void out_num(struct outbuf *o, uint64_t v, unsigned base, int width, char pad, bool neg)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    if (neg)
        tmp[n++] = '-';
    while (width-- > n)
        out_ch(o, pad);
    while (n)
        out_ch(o, tmp[--n]);
}

int kvsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
    struct outbuf o = {buf, size, 0};
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            out_ch(&o, *fmt);
            continue;
        }
        fmt++;
        char pad = ' ';
        int width = 0, longs = 0;
        if (*fmt == '0')
            pad = '0', fmt++;
        while (*fmt >= '0' && *fmt <= '9')
            width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l')
            longs++, fmt++;
        switch (*fmt) {
        case 's': {
            const char *s = va_arg(ap, const char *);
            for (s = s ? s : "(null)"; *s; s++)
                out_ch(&o, *s);
            break;
        }
        case 'c':
            out_ch(&o, (char)va_arg(ap, int));
            break;
        case 'd': {
            int64_t v = longs ? va_arg(ap, int64_t) : va_arg(ap, int);
            out_num(&o, v < 0 ? -(uint64_t)v : (uint64_t)v, 10, width, pad, v < 0);
            break;
        }
        case 'u':
        case 'x': {
            uint64_t v = longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned);
            out_num(&o, v, *fmt == 'u' ? 10 : 16, width, pad, false);
            break;
        }
        case 'p':
            out_ch(&o, '0');
            out_ch(&o, 'x');
            out_num(&o, (uint64_t)va_arg(ap, void *), 16, width, pad, false);
            break;
        case '%':
            out_ch(&o, '%');
            break;
        default:
            out_ch(&o, '?');
            break;
        }
    }
    if (size)
        buf[o.len < size ? o.len : size - 1] = 0;
    return (int)o.len;
}

int ksnprintf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = kvsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return n;
}

void console_write(unsigned stream, const void *buf, size_t len)
{
    /* Split: the host takes at most THAW_CONSOLE_MAX bytes per hypercall. The monitor
     * reads hypercall buffers from RAM only: bytes that live in the root-filesystem
     * image (a string constant of a shared library) go through a copy. */
    const uint8_t *p = buf;
    uint64_t a = (uint64_t)(uintptr_t)buf;
    bool bounce_it = boot_info->rootfs_size && a + len > boot_info->mem_size;
    char bounce[512];
    do {
        size_t n = MIN(len, bounce_it ? sizeof bounce : (size_t)THAW_CONSOLE_MAX);
        const void *src = p;
        if (bounce_it) {
            memcpy(bounce, p, n);
            src = bounce;
        }
        struct thaw_hc_console c = {.addr = (uint64_t)(uintptr_t)src, .len = n, .stream = stream};
        hypercall(THAW_HC_CONSOLE_WRITE, &c);
        p += n;
        len -= n;
    } while (len > 0);
}

void klog(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = kvsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    console_write(3, buf, MIN((size_t)n, sizeof buf - 1));
}

_Noreturn void kpanic(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    int n = kvsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    struct thaw_hc_console c = {.addr = (uint64_t)(uintptr_t)buf,
                                .len = MIN((size_t)n, sizeof buf - 1), .stream = 3};
    for (;;)
        hypercall(THAW_HC_PANIC, &c);
}

_Noreturn void kernel_exit(int64_t status)
{
    struct thaw_hc_exit e = {.status = status};
    for (;;)
        hypercall(THAW_HC_EXIT, &e);
}
