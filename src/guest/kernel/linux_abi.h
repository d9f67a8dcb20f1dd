/* The slice of the Linux x86-64 user ABI the guest kernel implements: syscall numbers,
 * errno values, flags and structures, as the kernel's uapi headers define them. */
#ifndef THAW_LINUX_ABI_H
#define THAW_LINUX_ABI_H
#include <stdint.h>

enum {
    SYS_read = 0, SYS_write = 1, SYS_open = 2, SYS_close = 3, SYS_stat = 4, SYS_fstat = 5,
    SYS_lstat = 6, SYS_poll = 7, SYS_lseek = 8, SYS_mmap = 9, SYS_mprotect = 10,
    SYS_munmap = 11, SYS_brk = 12, SYS_rt_sigaction = 13, SYS_rt_sigprocmask = 14,
    SYS_ioctl = 16, SYS_pread64 = 17, SYS_pwrite64 = 18, SYS_readv = 19, SYS_writev = 20,
    SYS_access = 21, SYS_pipe = 22, SYS_sched_yield = 24, SYS_mremap = 25, SYS_madvise = 28,
    SYS_dup = 32, SYS_dup2 = 33, SYS_nanosleep = 35, SYS_getpid = 39, SYS_exit = 60,
    SYS_uname = 63, SYS_fcntl = 72, SYS_fsync = 74, SYS_getcwd = 79, SYS_chdir = 80,
    SYS_readlink = 89, SYS_umask = 95, SYS_gettimeofday = 96, SYS_getrlimit = 97,
    SYS_getrusage = 98, SYS_sysinfo = 99, SYS_getuid = 102, SYS_getgid = 104,
    SYS_geteuid = 107, SYS_getegid = 108, SYS_getppid = 110, SYS_getpgrp = 111,
    SYS_sigaltstack = 131, SYS_arch_prctl = 158, SYS_setrlimit = 160, SYS_gettid = 186,
    SYS_time = 201, SYS_futex = 202, SYS_sched_getaffinity = 204, SYS_getdents64 = 217,
    SYS_set_tid_address = 218, SYS_clock_gettime = 228, SYS_clock_getres = 229,
    SYS_clock_nanosleep = 230, SYS_exit_group = 231, SYS_tgkill = 234, SYS_openat = 257,
    SYS_newfstatat = 262, SYS_readlinkat = 267, SYS_faccessat = 269, SYS_pselect6 = 270,
    SYS_ppoll = 271, SYS_set_robust_list = 273, SYS_dup3 = 292, SYS_pipe2 = 293,
    SYS_prlimit64 = 302, SYS_getrandom = 318, SYS_statx = 332, SYS_rseq = 334,
    SYS_faccessat2 = 439, SYS_socket = 41, SYS_sendto = 44, SYS_recvfrom = 45, SYS_shutdown = 48,
    SYS_getsockname = 51, SYS_getpeername = 52, SYS_socketpair = 53, SYS_setsockopt = 54,
    SYS_getsockopt = 55, SYS_epoll_create = 213, SYS_epoll_wait = 232, SYS_epoll_ctl = 233,
    SYS_epoll_pwait = 281, SYS_epoll_create1 = 291, SYS_mkdir = 83, SYS_rmdir = 84, SYS_unlink = 87,
    SYS_ftruncate = 77, SYS_fdatasync = 75, SYS_mkdirat = 258, SYS_unlinkat = 263,
    SYS_rename = 82, SYS_renameat = 264, SYS_renameat2 = 316,
    SYS_MAX = 512
};

enum {
    EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EIO = 5, ENOEXEC = 8, EBADF = 9, EAGAIN = 11,
    ENOMEM = 12, EACCES = 13, EFAULT = 14, EBUSY = 16, EEXIST = 17, ENODEV = 19, ENOTDIR = 20,
    EISDIR = 21, EINVAL = 22, ENFILE = 23, EMFILE = 24, ENOTTY = 25, EFBIG = 27,
    ENOSPC = 28, ESPIPE = 29, EROFS = 30, EPIPE = 32, ERANGE = 34, ENAMETOOLONG = 36,
    ENOSYS = 38, ENOTEMPTY = 39, ELOOP = 40, ENODATA = 61, EMSGSIZE = 90, EOVERFLOW = 75, EOPNOTSUPP = 95,
    ENOTSOCK = 88, ENOPROTOOPT = 92, EISCONN = 106, EAFNOSUPPORT = 97,
};

#define O_ACCMODE 00000003
#define O_RDONLY 00000000
#define O_WRONLY 00000001
#define O_RDWR 00000002
#define O_CREAT 00000100
#define O_EXCL 00000200
#define O_TRUNC 00001000
#define O_APPEND 00002000
#define O_NONBLOCK 00004000
#define O_DIRECTORY 00200000
#define O_NOFOLLOW 00400000
#define O_CLOEXEC 02000000
#define O_PATH 010000000

#define AT_FDCWD (-100)
#define AT_SYMLINK_NOFOLLOW 0x100
#define AT_EMPTY_PATH 0x1000

#define S_IFMT 0170000
#define S_IFDIR 0040000
#define S_IFCHR 0020000
#define S_IFREG 0100000
#define S_IFLNK 0120000
#define S_IFIFO 0010000

#define PROT_NONE 0
#define PROT_READ 1
#define PROT_WRITE 2
#define PROT_EXEC 4
#define MAP_SHARED 0x01
#define MAP_PRIVATE 0x02
#define MAP_FIXED 0x10
#define MAP_ANONYMOUS 0x20
#define MAP_NORESERVE 0x4000
#define MAP_FIXED_NOREPLACE 0x100000
#define MREMAP_MAYMOVE 1
#define MREMAP_FIXED 2

#define SEEK_SET 0
#define SEEK_CUR 1
#define SEEK_END 2

#define F_DUPFD 0
#define F_GETFD 1
#define F_SETFD 2
#define F_GETFL 3
#define F_SETFL 4
#define F_DUPFD_CLOEXEC 1030
#define FD_CLOEXEC 1

#define CLOCK_REALTIME 0
#define CLOCK_MONOTONIC 1
#define CLOCK_PROCESS_CPUTIME_ID 2
#define CLOCK_THREAD_CPUTIME_ID 3
#define CLOCK_MONOTONIC_RAW 4
#define CLOCK_REALTIME_COARSE 5
#define CLOCK_MONOTONIC_COARSE 6
#define CLOCK_BOOTTIME 7

#define ARCH_SET_GS 0x1001
#define ARCH_SET_FS 0x1002
#define ARCH_GET_FS 0x1003
#define ARCH_GET_GS 0x1004

#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define FUTEX_PRIVATE_FLAG 128

#define TCGETS 0x5401
#define TIOCGWINSZ 0x5413
#define FIONREAD 0x541B
#define FIONBIO 0x5421

#define DT_DIR 4
#define DT_REG 8
#define DT_LNK 10
#define DT_CHR 2

#define AT_NULL 0
#define AT_PHDR 3
#define AT_PHENT 4
#define AT_PHNUM 5
#define AT_PAGESZ 6
#define AT_BASE 7
#define AT_FLAGS 8
#define AT_ENTRY 9
#define AT_UID 11
#define AT_EUID 12
#define AT_GID 13
#define AT_EGID 14
#define AT_PLATFORM 15
#define AT_HWCAP 16
#define AT_CLKTCK 17
#define AT_SECURE 23
#define AT_RANDOM 25
#define AT_HWCAP2 26
#define AT_EXECFN 31

struct linux_timespec { int64_t tv_sec; int64_t tv_nsec; };
struct linux_timeval { int64_t tv_sec; int64_t tv_usec; };
struct linux_iovec { uint64_t iov_base; uint64_t iov_len; };

struct linux_stat {
    uint64_t st_dev, st_ino, st_nlink;
    uint32_t st_mode, st_uid, st_gid, __pad0;
    uint64_t st_rdev;
    int64_t st_size, st_blksize, st_blocks;
    struct linux_timespec st_atim, st_mtim, st_ctim;
    int64_t __unused[3];
};

struct linux_statx_timestamp { int64_t tv_sec; uint32_t tv_nsec; int32_t __reserved; };
struct linux_statx {
    uint32_t stx_mask, stx_blksize;
    uint64_t stx_attributes;
    uint32_t stx_nlink, stx_uid, stx_gid;
    uint16_t stx_mode, __spare0;
    uint64_t stx_ino, stx_size, stx_blocks, stx_attributes_mask;
    struct linux_statx_timestamp stx_atime, stx_btime, stx_ctime, stx_mtime;
    uint32_t stx_rdev_major, stx_rdev_minor, stx_dev_major, stx_dev_minor;
    uint64_t __spare2[14];
};

struct linux_utsname { char sysname[65], nodename[65], release[65], version[65], machine[65], domainname[65]; };

struct linux_rlimit { uint64_t rlim_cur, rlim_max; };

struct linux_sysinfo {
    int64_t uptime;
    uint64_t loads[3];
    uint64_t totalram, freeram, sharedram, bufferram, totalswap, freeswap;
    uint16_t procs, pad;
    uint64_t totalhigh, freehigh;
    uint32_t mem_unit;
    char _f[0];
};

struct linux_dirent64 {
    uint64_t d_ino;
    int64_t d_off;
    uint16_t d_reclen;
    uint8_t d_type;
    char d_name[];
};

struct linux_winsize { uint16_t ws_row, ws_col, ws_xpixel, ws_ypixel; };

#endif
