/* Pipes, Unix socket pairs, epoll and poll (pipe.c). fs.c owns descriptors and calls
 * in for FT_PIPE and FT_EPOLL files. */
#ifndef THAW_GUEST_PIPE_H
#define THAW_GUEST_PIPE_H
#include "kernel.h"
#include "fs.h"

struct linux_epoll_event;
struct linux_pollfd;
struct linux_timespec;

int64_t sys_pipe2(int32_t *fds, uint64_t flags);
int64_t sys_socketpair(uint64_t domain, uint64_t type, uint64_t proto, int32_t *fds);
int64_t sys_epoll_create1(uint64_t flags);
/* shutdown, setsockopt, getsockopt, getsockname, getpeername on socket pairs. */
int64_t sys_socket_misc(uint64_t nr, int fd, uint64_t b, uint64_t c, uint64_t d, uint64_t e);
int64_t sys_epoll_ctl(int epfd, int op, int fd, const struct linux_epoll_event *ev);
int64_t sys_epoll_wait(int epfd, struct linux_epoll_event *out, int64_t max, int64_t timeout_ms);
/* poll and ppoll: every descriptor's revents; with nothing ready they wait (blocking
 * the calling thread, thread.h) until something is or the timeout passes: poll's
 * timeout_ms < 0 and ppoll's NULL timespec wait forever (a wait nothing can end is the
 * scheduler's deadlock error), 0 never waits. ppoll's signal mask is ignored: signals
 * are never delivered. sys_poll: forever, or until the monotonic deadline (0: no wait). */
int64_t sys_poll(struct linux_pollfd *fds, uint64_t nfds, bool forever, uint64_t deadline);
int64_t sys_poll_ms(struct linux_pollfd *fds, uint64_t nfds, int64_t timeout_ms);
int64_t sys_ppoll(struct linux_pollfd *fds, uint64_t nfds, const struct linux_timespec *ts);

int64_t pipe_read(struct file *f, void *buf, uint64_t len);
int64_t pipe_write(struct file *f, const void *buf, uint64_t len);
int64_t pipe_pending(const struct file *f);  /* bytes readable now */
uint32_t pipe_poll(const struct file *f);     /* EPOLLIN/OUT/HUP/ERR now */
bool pipe_is_socket(const struct file *f);
void pipe_ref(const struct file *f);          /* a descriptor was duplicated */
void pipe_unref(const struct file *f);        /* a descriptor was closed */

/* poll/epoll readiness of any open file (pipe.c). */
uint32_t fs_ready_events(const struct file *f);

/* fs.c: a new descriptor for a pipe endpoint or an epoll instance (node = its index). */
int64_t fs_install(enum file_type type, uint32_t node, uint32_t flags, bool cloexec);

#endif
