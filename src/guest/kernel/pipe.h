/* Pipes, Unix socket pairs and epoll (pipe.c). fs.c owns descriptors and calls in
 * for FT_PIPE and FT_EPOLL files. */
#ifndef THAW_GUEST_PIPE_H
#define THAW_GUEST_PIPE_H
#include "kernel.h"
#include "fs.h"

struct linux_epoll_event;

int64_t sys_pipe2(int32_t *fds, uint64_t flags);
int64_t sys_socketpair(uint64_t domain, uint64_t type, uint64_t proto, int32_t *fds);
int64_t sys_epoll_create1(uint64_t flags);
/* shutdown, setsockopt, getsockopt, getsockname, getpeername on socket pairs. */
int64_t sys_socket_misc(uint64_t nr, int fd, uint64_t b, uint64_t c, uint64_t d, uint64_t e);
int64_t sys_epoll_ctl(int epfd, int op, int fd, const struct linux_epoll_event *ev);
int64_t sys_epoll_wait(int epfd, struct linux_epoll_event *out, int64_t max, int64_t timeout_ms);

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
