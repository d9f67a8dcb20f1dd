/* The worker protocol: how a caller drives an instance that runs in a worker process
 * (`thaw worker --fd N`) over one end of a SOCK_STREAM socketpair.
 *
 * Frame: an 8-byte header {u32 type, u32 payload length}, then the payload; every
 * integer is little-endian, every string is {u32 length, bytes} with no NUL inside.
 * Each type has its own payload limit, checked before anything is allocated. A frame
 * may carry one descriptor (SCM_RIGHTS on its first byte), which the receiver keeps
 * only where it expects one (SNAPSHOT's memory file); any other is closed unseen.
 *
 *   caller -> worker                         worker -> caller
 *   CREATE_BOOT {create}                     READY {stats, u64 invoke timeout, u64 guest
 *   CREATE_RESTORE {create}                  memory address, u64 rootfs image address,
 *                                            u64 its size (0: none), its path, u64 guest
 *                                            address, dev, inode, mtime}: at the ready point, jailed
 *   INVOKE {request bytes}                   RESPONSE {response bytes}
 *   STATS {}                                 STATS_REPLY {stats}
 *   SNAPSHOT {} + the memory file's fd       DONE {the encoded state file}: the worker
 *                                            wrote the image into the fd (pwrite only);
 *                                            the caller checks the state, adds the
 *                                            identity trailer, fsyncs and renames
 *   SHUTDOWN {}                              STATS_REPLY {final stats}, then it exits
 *                                            LOG {invocation, stream, line}: any time
 *                                            during a create or an invoke, before its answer
 *   any request                              ERROR {failure, message}
 *
 * Each side treats the other as hostile: a frame of an unknown type, of the wrong
 * direction, over its limit, or whose payload does not decode exactly (trailing bytes,
 * bad enum, over-long or NUL-holding string) is a protocol error, and the caller
 * then kills the worker. Nothing here allocates more than a frame's checked length. */
#ifndef THAW_HOST_WORKER_PROTO_H
#define THAW_HOST_WORKER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host/sandbox/sandbox.h"
#include "host/util/error.h"

#define WP_HEADER_SIZE 8
#define WP_MAX_BODY ((64u << 20) + 4096u) /* a request or response */
#define WP_PATH_MAX 4095
#define WP_LOG_LINE_MAX 4096              /* longer guest lines arrive in pieces */
#define WP_ERROR_MAX 511
#define WP_STATE_MAX (1u << 20)           /* DONE: an encoded state file (about 10 KiB) */

enum wp_type {
    WP_CREATE_BOOT = 1,
    WP_CREATE_RESTORE = 2,
    WP_INVOKE = 3,
    WP_STATS = 4,
    WP_SNAPSHOT = 5,
    WP_SHUTDOWN = 6,
    WP_READY = 16,
    WP_RESPONSE = 17,
    WP_STATS_REPLY = 18,
    WP_DONE = 19,
    WP_LOG = 20,
    WP_ERROR = 21,
};

/* CREATE_BOOT (path: the function directory) and CREATE_RESTORE (the snapshot). */
struct wp_create {
    char path[WP_PATH_MAX + 1];
    char id[SANDBOX_ID_MAX + 1];
    char pager_socket[WP_PATH_MAX + 1]; /* restore: the pager to connect to, or "" */
    uint32_t mode;                   /* restore: enum mem_mode */
    uint64_t boot_timeout_ns;
    uint64_t invoke_timeout_ns;
    uint64_t memory_mib;
    bool trace_syscalls;
    bool drop_cache;
    bool prefetch_files;             /* restore: the caller's REAP policy prefetches, so
                                        read the recorded image pages ahead (rootfs.ws) */
    bool merge_files;                /* restore: ... and merges, so leave the probed ones out */
};

struct wp_log {
    uint64_t invocation;
    uint32_t stream;                 /* enum sandbox_stream */
    const uint8_t *line;             /* points into the frame */
    size_t len;
};

struct wp_fail {
    uint32_t failure;                /* enum sandbox_failure, never SANDBOX_OK */
    char msg[WP_ERROR_MAX + 1];
};

struct wp_msg {
    enum wp_type type;
    uint64_t invoke_timeout_ns;      /* READY: the deadline the worker applies */
    uint64_t guest_addr;             /* READY: where guest memory is mapped in the worker */
    uint64_t rootfs_addr, rootfs_size; /* READY: where its root-filesystem image is (0: none) */
    struct {                         /* READY: which image (for snapshots taken by the caller) */
        char path[WP_PATH_MAX + 1];
        uint64_t gpa, dev, ino, mtime_ns;
    } rootfs;
    union {
        struct wp_create create;                      /* CREATE_* */
        struct { const uint8_t *data; size_t len; } body; /* INVOKE, RESPONSE, DONE */
        struct sandbox_stats stats;                   /* READY, STATS_REPLY */
        struct wp_log log;                            /* LOG */
        struct wp_fail fail;                          /* ERROR */
    } u;
};

/* True for the types the caller sends (the worker accepts only these). */
bool wp_is_request(uint32_t type);
/* True for a known type; *limit is its largest payload. */
bool wp_type_limit(uint32_t type, uint32_t *limit);
const char *wp_type_name(uint32_t type);

/* Encodes m as one frame (header + payload) into a malloc'd buffer. */
int wp_encode(const struct wp_msg *m, uint8_t **frame, size_t *len, struct thaw_error *err);
/* Decodes a payload of the given type; pointers in m point into payload. */
int wp_decode(uint32_t type, const uint8_t *payload, size_t len, struct wp_msg *m, struct thaw_error *err);

/* Sends m, with pass_fd (if >= 0) attached. */
int wp_send(int sock, const struct wp_msg *m, int pass_fd, struct thaw_error *err);

enum wp_recv_status { WP_RECV_OK, WP_RECV_EOF, WP_RECV_TIMEOUT, WP_RECV_BAD, WP_RECV_IO };

/* A received frame: its decoded message points into buf (free with wp_frame_free). */
struct wp_frame {
    struct wp_msg msg;
    uint8_t *buf;
    int fd;                          /* the attached descriptor, or -1 */
};

/* Receives and decodes one frame, waiting until deadline_ns (clock_now_ns; 0: forever).
 * accept_fd: keep an attached descriptor (else it is closed). On anything but OK, err
 * says what happened and no frame is returned. */
enum wp_recv_status wp_recv(int sock, uint64_t deadline_ns, bool accept_fd, struct wp_frame *f,
                            struct thaw_error *err);
void wp_frame_free(struct wp_frame *f);

#endif
