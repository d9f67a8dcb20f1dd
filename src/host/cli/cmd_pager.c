/* thaw pager --socket PATH [--snapshot DIR] [--mode M] [--serve [--snapshots ROOT]]
 * The memory manager (host/pager/manager.h): an external page-fault handler speaking
 * Firecracker's handshake, for one VM or, with --serve, for many at once. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "host/cli/cli.h"
#include "host/pager/manager.h"
#include "host/pager/pager.h"
#include "host/util/snapdir.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: thaw pager --socket PATH [--snapshot DIR] [--mode lazy|record|prefetch]\n"
            "                  [--serve [--snapshots ROOT] [--max-vms N]]\n"
            "Listens on a Unix socket (mode 0600) for VM processes; from each it receives its memory\n"
            "regions and userfaultfd (Firecracker's handshake) and serves its page faults from a\n"
            "snapshot's memory file until the VM goes away. Without --serve: one VM, then its\n"
            "statistics as one JSON line. With --serve: a long-running memory manager for many VMs\n"
            "at once, until SIGINT or SIGTERM; a thaw VMM names its snapshot and mode in a hello line\n"
            "(docs/architecture.md), a Firecracker VM gets --snapshot and --mode.\n"
            "  --snapshot DIR   the snapshot for VMs that name none (and one a hello may name)\n"
            "  --mode MODE      lazy: serve each fault (default); record: also write the working set\n"
            "                   (DIR/ws.trace, DIR/ws.pages); prefetch: install DIR/ws.pages first\n"
            "  --snapshots ROOT hellos may name any snapshot directory beneath ROOT\n"
            "  --max-vms N      at most N VMs at once (default %d)\n",
            PAGER_MANAGER_MAX_SESSIONS);
}

static int stop_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
    (void)sig;
    char c = 1;
    (void)!write(stop_pipe[1], &c, 1);
}

int cmd_pager(int argc, char **argv)
{
    static const struct option opts[] = {{"socket", required_argument, NULL, 's'},
                                         {"snapshot", required_argument, NULL, 'd'},
                                         {"mode", required_argument, NULL, 'm'},
                                         {"serve", no_argument, NULL, 'S'},
                                         {"snapshots", required_argument, NULL, 'r'},
                                         {"max-vms", required_argument, NULL, 'n'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0, 0, 0, 0}};
    const char *sock_path = NULL;
    struct pager_manager_opts o = {.default_mode = PAGER_LAZY, .once = 1};
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': sock_path = optarg; break;
        case 'd': o.default_snapshot = optarg; break;
        case 'r': o.snapshot_root = optarg; break;
        case 'S': o.once = 0; break;
        case 'n': {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (*end || v < 1 || v > 65536) {
                fprintf(stderr, "thaw pager: --max-vms takes 1..65536\n");
                return 2;
            }
            o.max_sessions = (unsigned)v;
            break;
        }
        case 'm':
            if (pager_mode_parse(optarg, &o.default_mode) < 0) {
                fprintf(stderr, "thaw pager: unknown mode '%s' (lazy, record or prefetch)\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!sock_path || (!o.default_snapshot && !o.snapshot_root) || optind != argc ||
        (o.snapshot_root && o.once)) {
        usage(stderr);
        return 2;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(sock_path) >= sizeof sa.sun_path) {
        fprintf(stderr, "thaw pager: socket path is longer than %zu bytes\n", sizeof sa.sun_path - 1);
        return 2;
    }
    strcpy(sa.sun_path, sock_path);
    if (o.default_snapshot) {
        char mem_path[4096];
        snprintf(mem_path, sizeof mem_path, "%s/" SNAPDIR_MEMORY, o.default_snapshot);
        struct stat sb;
        if (stat(mem_path, &sb) < 0 || !S_ISREG(sb.st_mode)) {
            fprintf(stderr, "thaw pager: %s is not a readable memory file\n", mem_path);
            return 1;
        }
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
    /* Only this user may connect: the manager reads and writes snapshots as itself. */
    mode_t old = umask(0177);
    int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int bound = ls >= 0 ? bind(ls, (struct sockaddr *)&sa, sizeof sa) : -1;
    umask(old);
    if (ls < 0 || bound < 0 || listen(ls, 128) < 0) {
        fprintf(stderr, "thaw pager: cannot listen on %s: %s\n", sock_path, strerror(errno));
        if (ls >= 0)
            close(ls);
        return 1;
    }
    if (pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        fprintf(stderr, "thaw pager: pipe: %s\n", strerror(errno));
        close(ls);
        unlink(sock_path);
        return 1;
    }
    struct sigaction act = {.sa_handler = on_signal};
    sigemptyset(&act.sa_mask);
    sigaction(SIGINT, &act, NULL);
    sigaction(SIGTERM, &act, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct pager_manager_stats st;
    struct thaw_error err = {{0}};
    int rc = pager_manager_run(ls, stop_pipe[0], &o, &st, &err);
    close(ls);
    unlink(sock_path);
    char body[2048];
    pager_stats_json(&st.last, body, sizeof body);
    if (o.once)
        printf("{\"mode\":\"%s\",%s}\n", pager_mode_name(o.default_mode), body);
    else
        printf("{\"vms\":%llu,\"failed\":%llu,\"refused\":%llu}\n", (unsigned long long)st.sessions,
               (unsigned long long)st.failed, (unsigned long long)st.refused);
    fflush(stdout);
    if (o.once && o.default_mode == PAGER_PREFETCH && !st.last.prefetch_ok && st.last.prefetch_error[0])
        fprintf(stderr, "thaw pager: warning: prefetch skipped, served lazily: %s\n", st.last.prefetch_error);
    if (rc < 0) {
        fprintf(stderr, "thaw pager: %s\n", err.msg);
        return 1;
    }
    return 0;
}
