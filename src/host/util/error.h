/* Error reporting for the host side: functions that can fail return -1 (or NULL) and
 * write one readable line into a caller-provided struct thaw_error. No global state. */
#ifndef THAW_HOST_ERROR_H
#define THAW_HOST_ERROR_H

#include <stdarg.h>

struct thaw_error {
    char msg[512];
};

/* Formats the message into err (if non-NULL) and returns -1. */
int thaw_fail(struct thaw_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Same, appending ": strerror(errno)". */
int thaw_fail_errno(struct thaw_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
