/* For the tests that need userfaultfd: 1 if this process may create one, else 0 after
 * a loud SKIP line naming what to change. */
#ifndef THAW_TESTS_UFFD_USABLE_H
#define THAW_TESTS_UFFD_USABLE_H

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static inline int uffd_usable(void)
{
    int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        fprintf(stderr, "*** SKIP: userfaultfd() failed (%s): run as root or set vm.unprivileged_userfaultfd=1\n",
                strerror(errno));
        return 0;
    }
    close(fd);
    return 1;
}

#endif
