/* Syscall handlers, one family per file (mm.c, fs.c, syscall.c). */
#ifndef THAW_GUEST_SYSCALLS_H
#define THAW_GUEST_SYSCALLS_H
#include "kernel.h"

int64_t sys_brk(uint64_t want);
int64_t sys_mmap(uint64_t addr, uint64_t len, uint64_t prot, uint64_t flags, int64_t fd, uint64_t off);
int64_t sys_munmap(uint64_t addr, uint64_t len);
int64_t sys_mprotect(uint64_t addr, uint64_t len, uint64_t prot);
bool mm_range_mapped(uint64_t addr, uint64_t len); /* every page allocated or in the program image */
/* clone: the PROT_NONE pages right below the stack at sp (pthread's guard, at most 1
 * MiB) become tid's guard pages, unmapped until they are freed or made accessible.
 * Returns how many pages, 0 if the stack has none, or -ENOMEM. */
int64_t mm_guard_thread_stack(uint64_t sp, int32_t tid);
int64_t sys_mremap(uint64_t old, uint64_t old_len, uint64_t new_len, uint64_t flags, uint64_t new_addr);
int64_t sys_madvise(uint64_t addr, uint64_t len, uint64_t advice);
void mm_stats(uint64_t *total, uint64_t *free_bytes);
/* /proc/self/maps as Linux formats it, into buf (at most size bytes, whole lines):
 * the monitor's part (kernel, program), every run of allocated pages ([heap] for the
 * brk area), [stack] (its guard is no line: it is not mapped) and the root-filesystem
 * image. Permissions read rwxp: mprotect is not enforced. Returns the length. */
uint64_t mm_write_maps(char *buf, uint64_t size);

int64_t sys_openat(int dirfd, const char *path, uint64_t flags, uint64_t mode);
int64_t sys_close(int fd);
int64_t sys_read(int fd, void *buf, uint64_t len);
int64_t sys_write(int fd, const void *buf, uint64_t len);
int64_t sys_pread64(int fd, void *buf, uint64_t len, int64_t off);
int64_t sys_readv(int fd, const struct linux_iovec *iov, int64_t cnt);
int64_t sys_writev(int fd, const struct linux_iovec *iov, int64_t cnt);
int64_t sys_lseek(int fd, int64_t off, int whence);
int64_t sys_fstat(int fd, struct linux_stat *st);
int64_t sys_newfstatat(int dirfd, const char *path, struct linux_stat *st, uint64_t flags);
int64_t sys_statx(int dirfd, const char *path, uint64_t flags, uint64_t mask, struct linux_statx *sx);
int64_t sys_faccessat(int dirfd, const char *path, uint64_t mode);
int64_t sys_readlinkat(int dirfd, const char *path, char *buf, uint64_t size);
int64_t sys_getdents64(int fd, void *buf, uint64_t size);
int64_t sys_getcwd(char *buf, uint64_t size);
int64_t sys_chdir(const char *path);
int64_t sys_dup3(int oldfd, int newfd, uint64_t flags, bool any_slot);
int64_t sys_fcntl(int fd, int cmd, uint64_t arg);
int64_t sys_ioctl(int fd, uint64_t req, uint64_t arg);
/* The writable /tmp (fs.c): files and directories in guest memory. */
int64_t sys_unlinkat(int dirfd, const char *path, uint64_t flags);
int64_t sys_mkdirat(int dirfd, const char *path, uint64_t mode);
int64_t sys_renameat2(int olddirfd, const char *oldpath, int newdirfd, const char *newpath, uint64_t flags);
int64_t sys_ftruncate(int fd, int64_t size);
int64_t sys_pwrite64(int fd, const void *buf, uint64_t len, int64_t off);
/* File mappings (fs.c): may fd be mapped so (0 or -errno), then fill [dst, dst+len)
 * with the file's bytes from off (zeros past its end). */
int64_t fs_map_check(int fd, uint64_t prot, bool shared, uint64_t off, uint64_t len);
int64_t fs_map_file(int fd, void *dst, uint64_t len, uint64_t off);
/* The same mapping served from the root-filesystem image in place: its address, or 0
 * (fs_map_in_place); a MAP_FIXED mapping at an address inside the image (fd -1:
 * anonymous), returning addr or -errno (fs_map_fixed_in_image). */
int64_t fs_map_in_place(int fd, uint64_t len, uint64_t prot, bool shared, uint64_t off);
int64_t fs_map_fixed_in_image(int fd, uint64_t addr, uint64_t len, uint64_t off);
#endif
