/* /dev/invoke: the function's invocation channel. A read() returns the next request
 * (handing control to the host until one is there); write()s append to the response;
 * the response is complete when the program reads again. The first read is the
 * function's ready point, where snapshots are taken. One VM exit per invocation.
 * A request is never split: a read() with a smaller buffer fails with EMSGSIZE and
 * keeps the request, whose size ioctl(FIONREAD) then tells. A response that could not
 * be kept (out of guest memory) is reported to the host as lost, not sent short. */
#include "kernel.h"
#include "fs.h"

#define RESP_INITIAL (64 * 1024)
#define RESP_MAX (64ull << 20)

static uint8_t *req_buf;
static uint64_t req_cap, req_len, req_off;
static uint8_t *resp_buf;
static uint64_t resp_cap, resp_len;
static bool served_one; /* a request was handed out: the next read completes it */
static bool shut_down;
static bool resp_lost;  /* a write failed for want of memory: the response is lost */

uint64_t invoke_pending(void)
{
    return req_len - req_off;
}

static int64_t deliver(void *buf, uint64_t len)
{
    uint64_t c = req_len - req_off;
    if (len < c)
        return -EMSGSIZE;
    memcpy(buf, req_buf + req_off, c);
    req_off += c;
    return (int64_t)c;
}

int64_t invoke_read(void *buf, uint64_t len)
{
    if (req_off < req_len)
        return deliver(buf, len);
    if (shut_down)
        return 0;
    if (!req_buf) {
        req_cap = boot_info->max_request ? boot_info->max_request : THAW_MAX_REQUEST_DEFAULT;
        req_buf = mm_alloc_pages(req_cap);
        if (!req_buf)
            return -ENOMEM;
        /* The first response buffer too, now: small responses then never need memory
         * during an invocation. */
        resp_buf = mm_alloc_pages(RESP_INITIAL);
        resp_cap = resp_buf ? RESP_INITIAL : 0;
    }
    /* The ready point (the first read, where snapshots are taken): the memory the
     * start-up freed goes back to the host, so that the snapshot holds none of it. */
    if (!served_one)
        mm_trim();
    struct thaw_hc_invoke hc = {
        .resp_addr = (uint64_t)(uintptr_t)resp_buf,
        .resp_len = resp_len,
        .req_addr = (uint64_t)(uintptr_t)req_buf,
        .req_cap = req_cap,
        .flags = (served_one ? THAW_INVOKE_HAS_RESPONSE : 0) | (resp_lost ? THAW_INVOKE_RESPONSE_LOST : 0) |
                 THAW_INVOKE_CAN_TRIM,
    };
    hypercall(THAW_HC_INVOKE_NEXT, &hc);
    /* A snapshot follows (abi.h): kept memory back to the host, then wait again with
     * nothing to hand over (the response was taken with the call before). */
    while (hc.flags & THAW_INVOKE_TRIM) {
        mm_trim();
        hc = (struct thaw_hc_invoke){.resp_addr = (uint64_t)(uintptr_t)resp_buf,
                                     .req_addr = (uint64_t)(uintptr_t)req_buf,
                                     .req_cap = req_cap,
                                     .flags = THAW_INVOKE_CAN_TRIM};
        hypercall(THAW_HC_INVOKE_NEXT, &hc);
    }
    /* We may be running in a restored snapshot now: the host may have changed the
     * clock and entropy generation, which time.c and random.c pick up lazily. */
    resp_len = 0;
    resp_lost = false;
    if (hc.flags & THAW_INVOKE_SHUTDOWN) {
        shut_down = true;
        return 0;
    }
    if (hc.req_len > req_cap)
        kpanic("host sent a request larger than the buffer");
    served_one = true;
    req_len = hc.req_len;
    req_off = 0;
    return deliver(buf, len);
}

bool invoke_ended(void) { return shut_down; }

int64_t invoke_write(const void *buf, uint64_t len)
{
    if (resp_len + len > RESP_MAX)
        return -EFBIG;
    if (resp_len + len > resp_cap) {
        uint64_t cap = resp_cap ? resp_cap : RESP_INITIAL;
        while (cap < resp_len + len)
            cap *= 2;
        uint8_t *n = mm_alloc_pages(cap);
        if (!n) {
            resp_lost = true;
            return -ENOMEM;
        }
        if (resp_buf) {
            memcpy(n, resp_buf, resp_len);
            mm_free_pages(resp_buf, resp_cap);
        }
        resp_buf = n;
        resp_cap = cap;
    }
    memcpy(resp_buf + resp_len, buf, len);
    resp_len += len;
    return (int64_t)len;
}
