/* The jail, probed from inside: a child made by jail_fork enters the jail exactly as a
 * worker does, then tries what a compromised worker would try. Needs root (namespaces,
 * mounts): without it the tests say SKIP loudly. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>

#include <cmocka.h>

#include "proc_status.h"

#include "host/jail/jail.h"
#include "host/util/thread_spread.h"

enum probe { PROBE_WAIT, PROBE_OPEN, PROBE_EXEC, PROBE_SOCKET, PROBE_PTRACE, PROBE_SPREAD };

static void *spread_ran(void *arg)
{
    *(int *)arg = 1;
    return NULL;
}

struct child {
    pid_t pid;
    int res;   /* reads what the child reports */
    int go;    /* tells a waiting child to exit */
};

static char bind_dir[64];

static int is_root(void)
{
    if (geteuid() != 0) {
        fprintf(stderr, "\n*** SKIP: the jail tests need root (namespaces, mounts) ***\n\n");
        return 0;
    }
    return 1;
}

/* The child reports one line: "J" once jailed, then the probe's outcome. */
static void spawn(struct child *c, enum probe p)
{
    int res[2], go[2];
    assert_int_equal(pipe(res), 0);
    assert_int_equal(pipe(go), 0);
    struct thaw_error err = {{0}};
    pid_t pid = jail_fork(&err);
    assert_true(pid >= 0);
    if (pid == 0) {
        close(res[0]);
        close(go[1]);
        int keep[] = {res[1], go[0]};
        struct jail_mount m = {.path = bind_dir, .writable = false};
        struct jail_config cfg = {.uid = JAIL_DEFAULT_UID, .gid = JAIL_DEFAULT_GID, .mounts = &m, .nmounts = 1,
                                  .keep_fds = keep, .nkeep_fds = 2};
        if (jail_enter(&cfg, &err) < 0) {
            dprintf(res[1], "E %s\n", err.msg);
            _exit(1);
        }
        char out[64];
        int n = 0, fd;
        (void)!write(res[1], "J", 1);
        switch (p) {
        case PROBE_WAIT:
            (void)!read(go[0], out, 1);
            break;
        case PROBE_OPEN:
            fd = open("/etc/passwd", O_RDONLY);
            n = snprintf(out, sizeof out, "open=%d errno=%d\n", fd, fd < 0 ? errno : 0);
            break;
        case PROBE_EXEC: {
            char *argv[] = {"/bin/true", NULL};
            execve("/bin/true", argv, NULL);
            n = snprintf(out, sizeof out, "execve returned errno=%d\n", errno);
            break;
        }
        case PROBE_SOCKET:
            fd = socket(AF_INET, SOCK_STREAM, 0);
            n = snprintf(out, sizeof out, "socket=%d errno=%d\n", fd, fd < 0 ? errno : 0);
            break;
        case PROBE_SPREAD: { /* placing it off this CPU is refused: a plain thread instead */
            int ran = 0;
            pthread_t t;
            setenv("THAW_SPREAD", "1", 1); /* tried whatever the load (the jail cannot read it) */
            int rc = thread_start_spread(&t, spread_ran, &ran, SPREAD_PIN);
            if (rc == 0)
                pthread_join(t, NULL);
            n = snprintf(out, sizeof out, "spread=%d ran=%d\n", rc, ran);
            break;
        }
        case PROBE_PTRACE: {
            long r = ptrace(PTRACE_TRACEME, 0, NULL, NULL);
            n = snprintf(out, sizeof out, "ptrace=%ld errno=%d\n", r, r < 0 ? errno : 0);
            break;
        }
        }
        (void)!write(res[1], out, (size_t)n);
        _exit(0); /* no atexit handlers (LeakSanitizer would need ptrace) */
    }
    close(res[1]);
    close(go[0]);
    c->pid = pid;
    c->res = res[0];
    c->go = go[1];
}

static void read_report(struct child *c, char *buf, size_t cap)
{
    size_t len = 0;
    ssize_t n;
    while (len + 1 < cap && (n = read(c->res, buf + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = 0;
}

static int wait_child(struct child *c)
{
    int st;
    close(c->go);
    assert_int_equal(waitpid(c->pid, &st, 0), c->pid);
    close(c->res);
    return st;
}

static void same_ns(pid_t pid, const char *ns, int *same)
{
    char a[64], b[64], la[64] = {0}, lb[64] = {0};
    snprintf(a, sizeof a, "/proc/self/ns/%s", ns);
    snprintf(b, sizeof b, "/proc/%d/ns/%s", (int)pid, ns);
    assert_true(readlink(a, la, sizeof la - 1) > 0);
    assert_true(readlink(b, lb, sizeof lb - 1) > 0);
    *same = strcmp(la, lb) == 0;
}

static void test_jailed_process_state(void **state)
{
    (void)state;
    if (!is_root())
        return;
    struct child c;
    spawn(&c, PROBE_WAIT);
    char j[4] = {0};
    assert_int_equal(read(c.res, j, 1), 1);
    assert_string_equal(j, "J");
    char v[128];
    proc_status_field(c.pid, "Seccomp", v, sizeof v);
    assert_string_equal(v, "2");
    const char *caps[] = {"CapEff", "CapPrm", "CapInh", "CapBnd", "CapAmb"};
    for (size_t i = 0; i < 5; i++) {
        proc_status_field(c.pid, caps[i], v, sizeof v);
        assert_string_equal(v, "0000000000000000");
    }
    proc_status_field(c.pid, "NoNewPrivs", v, sizeof v);
    assert_string_equal(v, "1");
    proc_status_field(c.pid, "Uid", v, sizeof v);
    assert_string_equal(v, "65534\t65534\t65534\t65534");
    proc_status_field(c.pid, "Gid", v, sizeof v);
    assert_string_equal(v, "65534\t65534\t65534\t65534");
    proc_status_field(c.pid, "Groups", v, sizeof v);
    assert_string_equal(v, "");
    proc_status_field(c.pid, "NSpid", v, sizeof v); /* pid 1 of its own pid namespace */
    char want[32];
    snprintf(want, sizeof want, "%d\t1", (int)c.pid);
    assert_string_equal(v, want);
    const char *nss[] = {"mnt", "pid", "net", "ipc"};
    for (size_t i = 0; i < 4; i++) {
        int same;
        same_ns(c.pid, nss[i], &same);
        assert_false(same);
    }
    /* Descriptors: 0-2 and the two pipes, nothing else. */
    char path[96];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)c.pid);
    DIR *d = opendir(path);
    assert_non_null(d);
    int nfds = 0;
    for (struct dirent *e; (e = readdir(d));)
        nfds += e->d_name[0] != '.';
    closedir(d);
    assert_true(nfds <= 5);
    /* The root holds only the bind mount: no /etc, no /dev, no /proc. */
    snprintf(path, sizeof path, "/proc/%d/root/etc", (int)c.pid);
    assert_int_not_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "/proc/%d/root/dev", (int)c.pid);
    assert_int_not_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "/proc/%d/root%s/marker", (int)c.pid, bind_dir);
    assert_int_equal(access(path, R_OK), 0);
    /* ... read-only, like the root itself. */
    snprintf(path, sizeof path, "/proc/%d/mountinfo", (int)c.pid);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[1024];
    int root_ro = 0, bind_ro = 0, mounts = 0;
    while (fgets(line, sizeof line, f)) {
        char mp[512], opts[256];
        if (sscanf(line, "%*s %*s %*s %*s %511s %255s", mp, opts) != 2)
            continue;
        mounts++;
        if (!strcmp(mp, "/"))
            root_ro = !strncmp(opts, "ro", 2);
        if (!strcmp(mp, bind_dir))
            bind_ro = !strncmp(opts, "ro", 2);
    }
    fclose(f);
    assert_true(root_ro);
    assert_true(bind_ro);
    assert_int_equal(mounts, 2);
    int st = wait_child(&c);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* A probe the jail lets run: it reports want after "J" and exits. */
static void expect_report(enum probe p, const char *want)
{
    struct child c;
    spawn(&c, p);
    char buf[256];
    read_report(&c, buf, sizeof buf);
    int st = wait_child(&c);
    assert_string_equal(buf, want);
    assert_true(WIFEXITED(st));
}

static void test_open_fails(void **state)
{
    (void)state;
    if (!is_root())
        return;
    char want[64];
    snprintf(want, sizeof want, "Jopen=-1 errno=%d\n", EACCES);
    expect_report(PROBE_OPEN, want);
}

static void test_spread_thread_starts_plain(void **state)
{
    (void)state;
    if (is_root())
        expect_report(PROBE_SPREAD, "Jspread=0 ran=1\n");
}

/* execve, socket(AF_INET) and ptrace are outside the allowlist: the kernel kills the
 * process with SIGSYS before the call does anything, so nothing is reported after "J". */
static void expect_killed(enum probe p)
{
    struct child c;
    spawn(&c, p);
    char buf[256];
    read_report(&c, buf, sizeof buf);
    int st = wait_child(&c);
    assert_string_equal(buf, "J");
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGSYS);
}

static void test_execve_killed(void **state)
{
    (void)state;
    if (is_root())
        expect_killed(PROBE_EXEC);
}

static void test_socket_killed(void **state)
{
    (void)state;
    if (is_root())
        expect_killed(PROBE_SOCKET);
}

static void test_ptrace_killed(void **state)
{
    (void)state;
    if (is_root())
        expect_killed(PROBE_PTRACE);
}

static void test_refuses_root(void **state)
{
    (void)state;
    struct jail_config cfg = {.uid = 0, .gid = 0};
    struct thaw_error err = {{0}};
    assert_int_equal(jail_enter(&cfg, &err), -1);
    assert_non_null(strstr(err.msg, "uid/gid 0"));
}

static int setup(void **state)
{
    (void)state;
    snprintf(bind_dir, sizeof bind_dir, "/tmp/thaw-jail-test-XXXXXX");
    if (!mkdtemp(bind_dir))
        return -1;
    char p[96];
    snprintf(p, sizeof p, "%s/marker", bind_dir);
    FILE *f = fopen(p, "w");
    if (!f)
        return -1;
    fclose(f);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char p[96];
    snprintf(p, sizeof p, "%s/marker", bind_dir);
    unlink(p);
    rmdir(bind_dir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refuses_root),
        cmocka_unit_test(test_jailed_process_state),
        cmocka_unit_test(test_open_fails),
        cmocka_unit_test(test_spread_thread_starts_plain),
        cmocka_unit_test(test_execve_killed),
        cmocka_unit_test(test_socket_killed),
        cmocka_unit_test(test_ptrace_killed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
