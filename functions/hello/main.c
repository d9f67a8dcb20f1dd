/* hello: answers {"name": "X"} with a greeting that contains X. */
#include <stdio.h>

#include "thaw_function.h"

int main(void)
{
    static char req[65536];
    char name[256], out[512];
    int fd = thaw_open();
    if (fd < 0) {
        perror("open /dev/invoke");
        return 1;
    }
    ssize_t n;
    while ((n = thaw_next(fd, req, sizeof req)) > 0) {
        if (thaw_json_string(req, "name", name, sizeof name) < 0)
            snprintf(name, sizeof name, "world");
        int len = snprintf(out, sizeof out, "{\"greeting\": \"Hello, %s!\"}", name);
        thaw_respond(fd, out, (size_t)len);
    }
    return n < 0 ? 1 : 0;
}
