#include "host/pager/fc_handshake.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PAGE 4096u
#define MAX_FDS 16

static const char *const FIELDS[4] = {"base_host_virt_addr", "size", "offset", "page_size"};

static int get_u64(json_t *obj, size_t i, const char *key, uint64_t *out, struct thaw_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return thaw_fail(err, "handshake region %zu: missing \"%s\"", i, key);
    if (!json_is_integer(v))
        return thaw_fail(err, "handshake region %zu: \"%s\" is not an integer", i, key);
    json_int_t x = json_integer_value(v);
    if (x < 0)
        return thaw_fail(err, "handshake region %zu: \"%s\" is negative", i, key);
    *out = (uint64_t)x;
    return 0;
}

int fc_regions_parse(const char *json, size_t len, struct fc_region *out, size_t max, size_t *n,
                     uint64_t file_size, struct thaw_error *err)
{
    *n = 0;
    json_error_t jerr;
    json_t *root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root)
        return thaw_fail(err, "handshake is not valid JSON: %s (line %d column %d)", jerr.text, jerr.line,
                         jerr.column);
    int rc = -1;
    if (!json_is_array(root)) {
        thaw_fail(err, "handshake is not a JSON array of memory regions");
        goto out;
    }
    size_t cnt = json_array_size(root);
    if (cnt == 0) {
        thaw_fail(err, "handshake has no memory regions");
        goto out;
    }
    if (cnt > max) {
        thaw_fail(err, "handshake has %zu memory regions, at most %zu are supported", cnt, max);
        goto out;
    }
    for (size_t i = 0; i < cnt; i++) {
        json_t *o = json_array_get(root, i);
        if (!json_is_object(o)) {
            thaw_fail(err, "handshake region %zu is not a JSON object", i);
            goto out;
        }
        uint64_t v[4];
        for (size_t k = 0; k < 4; k++)
            if (get_u64(o, i, FIELDS[k], &v[k], err) < 0)
                goto out;
        struct fc_region r = {.base_host_virt_addr = v[0], .size = v[1], .offset = v[2], .page_size = v[3]};
        if (r.page_size != PAGE) {
            thaw_fail(err, "handshake region %zu: page_size %llu: only 4 KiB pages are supported", i,
                      (unsigned long long)r.page_size);
            goto out;
        }
        if (r.size == 0 || r.size % PAGE) {
            thaw_fail(err, "handshake region %zu: size %llu is not a non-zero multiple of 4096", i,
                      (unsigned long long)r.size);
            goto out;
        }
        if (r.base_host_virt_addr % PAGE) {
            thaw_fail(err, "handshake region %zu: base_host_virt_addr %#llx is not page-aligned", i,
                      (unsigned long long)r.base_host_virt_addr);
            goto out;
        }
        if (r.offset % PAGE) {
            thaw_fail(err, "handshake region %zu: offset %#llx is not page-aligned", i,
                      (unsigned long long)r.offset);
            goto out;
        }
        if (r.base_host_virt_addr + r.size < r.base_host_virt_addr) {
            thaw_fail(err, "handshake region %zu: base_host_virt_addr + size overflows", i);
            goto out;
        }
        if (r.offset + r.size < r.offset) {
            thaw_fail(err, "handshake region %zu: offset + size overflows", i);
            goto out;
        }
        if (file_size != FC_FILE_SIZE_UNCHECKED && r.offset + r.size > file_size) {
            thaw_fail(err, "handshake region %zu: offset + size = %llu is beyond the %llu-byte memory file", i,
                      (unsigned long long)(r.offset + r.size), (unsigned long long)file_size);
            goto out;
        }
        for (size_t j = 0; j < i; j++) {
            const struct fc_region *q = &out[j];
            if (r.base_host_virt_addr < q->base_host_virt_addr + q->size &&
                q->base_host_virt_addr < r.base_host_virt_addr + r.size) {
                thaw_fail(err, "handshake regions %zu and %zu overlap in host address space", j, i);
                goto out;
            }
        }
        out[i] = r;
    }
    *n = cnt;
    rc = 0;
out:
    json_decref(root);
    return rc;
}

int fc_send_handshake(int sock, const struct fc_region *r, size_t n, int uffd, struct thaw_error *err)
{
    json_t *arr = json_array();
    if (!arr)
        return thaw_fail(err, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (r[i].base_host_virt_addr > INT64_MAX || r[i].size > INT64_MAX || r[i].offset > INT64_MAX ||
            r[i].page_size > INT64_MAX) {
            json_decref(arr);
            return thaw_fail(err, "handshake region %zu has a field above 2^63", i);
        }
        json_t *o = json_pack("{s:I,s:I,s:I,s:I}", FIELDS[0], (json_int_t)r[i].base_host_virt_addr, FIELDS[1],
                              (json_int_t)r[i].size, FIELDS[2], (json_int_t)r[i].offset, FIELDS[3],
                              (json_int_t)r[i].page_size);
        if (!o || json_array_append_new(arr, o) < 0) {
            json_decref(arr);
            return thaw_fail(err, "out of memory");
        }
    }
    char *s = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    if (!s)
        return thaw_fail(err, "out of memory");
    size_t len = strlen(s);
    if (len > FC_HANDSHAKE_MAX_BYTES) {
        free(s);
        return thaw_fail(err, "handshake is %zu bytes, more than %d", len, FC_HANDSHAKE_MAX_BYTES);
    }
    struct iovec iov = {.iov_base = s, .iov_len = len};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &uffd, sizeof(int));
    ssize_t w;
    do
        w = sendmsg(sock, &msg, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    free(s);
    if (w < 0)
        return thaw_fail_errno(err, "sending the handshake");
    if ((size_t)w != len)
        return thaw_fail(err, "handshake sent partially (%zd of %zu bytes)", w, len);
    return 0;
}

/* True if fd is a userfaultfd (an anon inode named so). */
static int is_userfaultfd(int fd)
{
    char p[64], target[64];
    snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
    ssize_t k = readlink(p, target, sizeof target - 1);
    if (k < 0)
        return -1; /* cannot tell (no /proc): accept */
    target[k] = 0;
    return strcmp(target, "anon_inode:[userfaultfd]") == 0;
}

int fc_recv_handshake(int sock, struct fc_region *out, size_t max, size_t *n, int *uffd, uint64_t file_size,
                      struct thaw_error *err)
{
    *n = 0;
    *uffd = -1;
    char *buf = malloc(FC_HANDSHAKE_MAX_BYTES + 1);
    if (!buf)
        return thaw_fail(err, "out of memory");
    union {
        char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
        struct cmsghdr align;
    } ctl;
    memset(&ctl, 0, sizeof ctl);
    struct iovec iov = {.iov_base = buf, .iov_len = FC_HANDSHAKE_MAX_BYTES};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
    ssize_t r;
    do
        r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        free(buf);
        return thaw_fail_errno(err, "receiving the handshake");
    }
    /* Collect every descriptor that came along; keep the first. */
    int fd = -1;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int x;
            memcpy(&x, CMSG_DATA(c) + i * sizeof(int), sizeof x);
            if (fd < 0)
                fd = x;
            else
                close(x);
        }
    }
    int rc = -1;
    if (r == 0)
        thaw_fail(err, "the peer closed the socket before sending the handshake");
    else if (msg.msg_flags & MSG_TRUNC)
        thaw_fail(err, "handshake is larger than %d bytes", FC_HANDSHAKE_MAX_BYTES);
    else if (msg.msg_flags & MSG_CTRUNC)
        thaw_fail(err, "handshake carried more than %d file descriptors", MAX_FDS);
    else if (fc_regions_parse(buf, (size_t)r, out, max, n, file_size, err) < 0)
        ; /* err says why */
    else if (fd < 0)
        thaw_fail(err, "missing userfaultfd in the handshake");
    else if (is_userfaultfd(fd) == 0)
        thaw_fail(err, "the descriptor in the handshake is not a userfaultfd");
    else
        rc = 0;
    free(buf);
    if (rc < 0) {
        if (fd >= 0)
            close(fd);
        *n = 0;
        return -1;
    }
    *uffd = fd;
    return 0;
}
