/* thaw pager --socket PATH --snapshot DIR --mode lazy|record|prefetch
 * An external page-fault handler speaking Firecracker's handshake (host/pager). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "host/cli/cli.h"
#include "host/pager/fc_handshake.h"
#include "host/pager/pager.h"
#include "host/util/snapdir.h"

#define MAX_REGIONS 64

static void usage(FILE *out)
{
    fprintf(out,
            "usage: thaw pager --socket PATH --snapshot DIR [--mode lazy|record|prefetch]\n"
            "Listens on a Unix socket, accepts one VM process, receives its memory regions and\n"
            "userfaultfd (Firecracker's handshake) and serves its page faults from DIR/memory\n"
            "until the VM goes away; then prints its statistics as one JSON line.\n"
            "  --mode MODE  lazy: serve each fault (default); record: also write the working set\n"
            "               (DIR/ws.trace, DIR/ws.pages); prefetch: install DIR/ws.pages first\n");
}

int cmd_pager(int argc, char **argv)
{
    static const struct option opts[] = {{"socket", required_argument, NULL, 's'},
                                         {"snapshot", required_argument, NULL, 'd'},
                                         {"mode", required_argument, NULL, 'm'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0, 0, 0, 0}};
    const char *sock_path = NULL, *dir = NULL;
    enum pager_mode mode = PAGER_LAZY;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': sock_path = optarg; break;
        case 'd': dir = optarg; break;
        case 'm':
            if (pager_mode_parse(optarg, &mode) < 0) {
                fprintf(stderr, "thaw pager: unknown mode '%s' (lazy, record or prefetch)\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!sock_path || !dir || optind != argc) {
        usage(stderr);
        return 2;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(sock_path) >= sizeof sa.sun_path) {
        fprintf(stderr, "thaw pager: socket path is longer than %zu bytes\n", sizeof sa.sun_path - 1);
        return 2;
    }
    strcpy(sa.sun_path, sock_path);
    char mem_path[4096];
    snprintf(mem_path, sizeof mem_path, "%s/" SNAPDIR_MEMORY, dir);
    struct stat sb;
    if (stat(mem_path, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        fprintf(stderr, "thaw pager: %s is not a readable memory file\n", mem_path);
        return 1;
    }
    /* A stale socket from an earlier run would make bind() fail; never remove anything else. */
    struct stat ss;
    if (lstat(sock_path, &ss) == 0) {
        if (!S_ISSOCK(ss.st_mode)) {
            fprintf(stderr, "thaw pager: %s exists and is not a socket\n", sock_path);
            return 1;
        }
        unlink(sock_path);
    }
    int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(ls, 1) < 0) {
        fprintf(stderr, "thaw pager: cannot listen on %s: %s\n", sock_path, strerror(errno));
        if (ls >= 0)
            close(ls);
        return 1;
    }
    int conn;
    do
        conn = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
    while (conn < 0 && errno == EINTR);
    int aerr = errno;
    close(ls);
    unlink(sock_path);
    if (conn < 0) {
        fprintf(stderr, "thaw pager: accept on %s: %s\n", sock_path, strerror(aerr));
        return 1;
    }
    struct fc_region regions[MAX_REGIONS];
    size_t n;
    int uffd;
    struct thaw_error err = {{0}};
    if (fc_recv_handshake(conn, regions, MAX_REGIONS, &n, &uffd, (uint64_t)sb.st_size, &err) < 0) {
        fprintf(stderr, "thaw pager: %s\n", err.msg);
        close(conn);
        return 1;
    }
    /* The connection doubles as the stop signal: the VM process closing it (exiting)
     * ends the serving loop. */
    struct pager_stats st;
    int rc = pager_serve(uffd, regions, n, dir, mode, conn, &st, &err);
    close(uffd);
    close(conn);
    char body[2048];
    pager_stats_json(&st, body, sizeof body);
    printf("{\"mode\":\"%s\",\"regions\":%zu,%s}\n", pager_mode_name(mode), n, body);
    fflush(stdout);
    if (mode == PAGER_PREFETCH && !st.prefetch_ok)
        fprintf(stderr, "thaw pager: warning: prefetch skipped, served lazily: %s\n", st.prefetch_error);
    if (rc < 0) {
        fprintf(stderr, "thaw pager: %s\n", err.msg);
        return 1;
    }
    return 0;
}
