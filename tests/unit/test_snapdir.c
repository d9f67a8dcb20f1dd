/* Snapshot directory rules (src/host/util/snapdir.c), the identity trailer
 * (snap_identity.c) and safe opens (file.c): atomic replacement, leftovers of killed
 * writers, ownership, symlinks and FIFOs. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/openat2.h>
#include <sched.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "host/util/atomic_file.h"
#include "host/util/file.h"
#include "host/util/snap_identity.h"
#include "host/util/snapdir.h"
#include "host/util/writer_tag.h"

static char root[64];

static void make_root(void)
{
    strcpy(root, "/tmp/thaw-snapdir-XXXXXX");
    assert_non_null(mkdtemp(root));
}

static void rm_root(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

static void put(const char *dir, const char *name, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int exists(const char *dir, const char *name)
{
    char path[512];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return lstat(path, &st) == 0;
}

static void read_text(const char *dir, const char *name, char *buf, size_t cap)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = 0;
    fclose(f);
}

static int entries(const char *dir)
{
    char cmd[256];
    int n = -1;
    for (int k = 0; k < 64; k++) {
        snprintf(cmd, sizeof cmd, "test $(ls -A '%s' | wc -l) -eq %d", dir, k);
        if (system(cmd) == 0) {
            n = k;
            break;
        }
    }
    return n;
}

/* A new snapshot replaces the old one as a whole: the old working set goes with it. */
static void test_commit_replaces_whole_directory(void **state)
{
    (void)state;
    make_root();
    char dir[128], tmp[256];
    struct thaw_error err = {{0}};
    snprintf(dir, sizeof dir, "%s/snap", root);
    /* First snapshot into a missing directory: a rename. */
    assert_int_equal(snapdir_begin(dir, tmp, sizeof tmp, &err), 0);
    assert_non_null(strstr(tmp, "/.snap.new."));
    put(tmp, "state", "one");
    put(tmp, "memory", "m1");
    assert_int_equal(snapdir_commit(tmp, dir, &err), 0);
    put(dir, "ws.pages", "old working set");
    put(dir, "ws.trace", "old trace");
    put(dir, "rootfs", "old image descriptor");
    put(dir, "rootfs.cow", "old written image pages");
    put(dir, "rootfs.ws", "old file working set");
    /* Second one: exchanged in, the old directory, its ws.* and rootfs* removed. */
    assert_int_equal(snapdir_begin(dir, tmp, sizeof tmp, &err), 0);
    put(tmp, "state", "two");
    put(tmp, "memory", "m2");
    assert_int_equal(snapdir_commit(tmp, dir, &err), 0);
    char text[64];
    read_text(dir, "state", text, sizeof text);
    assert_string_equal(text, "two");
    assert_false(exists(dir, "ws.pages"));
    assert_false(exists(dir, "ws.trace"));
    assert_false(exists(dir, "rootfs"));
    assert_false(exists(dir, "rootfs.cow"));
    assert_false(exists(dir, "rootfs.ws"));
    assert_int_equal(entries(root), 1); /* no temporary directory left */
    rm_root();
}

static void test_commit_refuses_foreign_directory(void **state)
{
    (void)state;
    make_root();
    char dir[128], tmp[256];
    struct thaw_error err = {{0}};
    snprintf(dir, sizeof dir, "%s/home", root);
    assert_int_equal(mkdir(dir, 0755), 0);
    put(dir, "thesis.tex", "precious");
    assert_int_equal(snapdir_begin(dir, tmp, sizeof tmp, &err), 0);
    put(tmp, "state", "x");
    assert_int_equal(snapdir_commit(tmp, dir, &err), -1);
    assert_non_null(strstr(err.msg, "\"thesis.tex\", which is not a snapshot file"));
    assert_true(exists(dir, "thesis.tex"));
    snapdir_abort(tmp);
    assert_int_equal(entries(root), 1);
    /* A symlink as the target is refused too. */
    char link[128];
    snprintf(link, sizeof link, "%s/link", root);
    assert_int_equal(symlink(dir, link), 0);
    assert_int_equal(snapdir_begin(link, tmp, sizeof tmp, &err), 0);
    assert_int_equal(snapdir_commit(tmp, link, &err), -1);
    assert_non_null(strstr(err.msg, "symbolic link"));
    snapdir_abort(tmp);
    rm_root();
}

static void test_check_ownership_and_mode(void **state)
{
    (void)state;
    make_root();
    struct thaw_error err = {{0}};
    char dir[128];
    snprintf(dir, sizeof dir, "%s/s", root);
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(snapdir_check(dir, &err), 0);
    assert_int_equal(chmod(dir, 0777), 0);
    assert_int_equal(snapdir_check(dir, &err), -1);
    assert_non_null(strstr(err.msg, "may be written by other users"));
    assert_int_equal(chmod(dir, 0755), 0);
    if (geteuid() == 0) {
        assert_int_equal(chown(dir, 4242, 4242), 0);
        assert_int_equal(snapdir_check(dir, &err), -1);
        assert_non_null(strstr(err.msg, "belongs to uid 4242"));
    }
    rm_root();
}

/* A tag for pid in our pid namespace (writer_tag's form, with another pid). */
static void tag_for(char *out, size_t cap, long pid)
{
    char who[WRITER_TAG_MAX];
    writer_tag(who);
    snprintf(out, cap, "%ld%s", pid, strchr(who, '-'));
}

/* Temporary files of dead writers in our pid namespace go; those of live ones (this
 * process), of another namespace's writers and of untagged names stay. */
static void test_clean_leftovers(void **state)
{
    (void)state;
    make_root();
    char dir[128], name[200], live[232], dead[64], dead_dir[224], mem[160], ws[160];
    snprintf(dir, sizeof dir, "%s/s", root);
    assert_int_equal(mkdir(dir, 0755), 0);
    put(dir, "state", "s");
    tag_for(dead, sizeof dead, 4194305);
    snprintf(mem, sizeof mem, ".memory.tmp.%s.0011223344556677", dead);
    snprintf(ws, sizeof ws, ".ws.pages.tmp.%s.0011223344556677", dead);
    put(dir, mem, "dead writer");
    put(dir, ws, "dead writer");
    tag_for(name, sizeof name, (long)getpid());
    snprintf(live, sizeof live, ".ws.pages.tmp.%s.8899aabbccddeeff", name);
    put(dir, live, "live writer");
    put(dir, ".state.tmp.4194305-1.0011", "another namespace's writer");
    put(dir, ".state.tmp.4194305.0011", "no namespace in the tag");
    snprintf(name, sizeof name, ".notes.tmp.%s.00", dead);
    put(dir, name, "not ours"); /* not a snapshot file name */
    snprintf(dead_dir, sizeof dead_dir, "%s/.s.new.%s.0123456789abcdef", root, dead);
    assert_int_equal(mkdir(dead_dir, 0755), 0);
    put(dead_dir, "memory", "half a snapshot");
    snapdir_clean_leftovers(dir);
    assert_false(exists(dir, mem));
    assert_false(exists(dir, ws));
    assert_true(exists(dir, live));
    assert_true(exists(dir, ".state.tmp.4194305-1.0011"));
    assert_true(exists(dir, ".state.tmp.4194305.0011"));
    assert_true(exists(dir, name));
    assert_true(exists(dir, "state"));
    assert_false(exists(root, strrchr(dead_dir, '/') + 1));
    rm_root();
}

/* A process in its own pid namespace (a jailed worker starting a restore) does not
 * take the daemon's live writer for a dead one: in its namespace that pid does not
 * exist. Its own written file goes under its own tag. */
static void test_clean_leftovers_other_namespace(void **state)
{
    (void)state;
    if (geteuid() != 0) {
        fprintf(stderr, "*** SKIP: a new pid namespace needs root ***\n");
        skip();
    }
    make_root();
    char dir[128], who[WRITER_TAG_MAX], live[160];
    snprintf(dir, sizeof dir, "%s/s", root);
    assert_int_equal(mkdir(dir, 0755), 0);
    put(dir, "state", "s");
    writer_tag(who);
    snprintf(live, sizeof live, ".rootfs.ws.tmp.%s.8899aabbccddeeff", who);
    put(dir, live, "the daemon's recording, in flight");
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) { /* a new namespace takes effect for our children */
        close(pfd[0]);
        if (unshare(CLONE_NEWPID) < 0)
            _exit(2);
        pid_t inner = fork();
        if (inner == 0) {
            char tag[WRITER_TAG_MAX];
            writer_tag(tag);
            ssize_t n = write(pfd[1], tag, strlen(tag) + 1);
            snapdir_clean_leftovers(dir);
            _exit(n > 0 ? 0 : 3);
        }
        int st = 0;
        _exit(inner > 0 && waitpid(inner, &st, 0) == inner && WIFEXITED(st) ? WEXITSTATUS(st) : 4);
    }
    close(pfd[1]);
    char inner_tag[WRITER_TAG_MAX] = "";
    assert_true(read(pfd[0], inner_tag, sizeof inner_tag - 1) > 0);
    close(pfd[0]);
    int st = 0;
    assert_int_equal(waitpid(child, &st, 0), child);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
    assert_true(exists(dir, live));
    /* It ran as pid 1 of a namespace other than ours, so the check was a real one. */
    assert_int_equal(strncmp(inner_tag, "1-", 2), 0);
    assert_string_not_equal(strchr(inner_tag, '-'), strchr(who, '-'));
    rm_root();
}

/* Temporary names are unguessable: two writes never use the same one, and a planted
 * symlink at a guessable name is never followed. */
static void test_atomic_write_names(void **state)
{
    (void)state;
    make_root();
    struct thaw_error err = {{0}};
    char victim[128], planted[160];
    snprintf(victim, sizeof victim, "%s/victim", root);
    put(root, "victim", "keep me");
    snprintf(planted, sizeof planted, "%s/.state.tmp.%ld", root, (long)getpid());
    assert_int_equal(symlink(victim, planted), 0);
    assert_int_equal(write_file_atomic(root, "state", "new state", 9, &err), 0);
    char text[64];
    read_text(root, "victim", text, sizeof text);
    assert_string_equal(text, "keep me");
    read_text(root, "state", text, sizeof text);
    assert_string_equal(text, "new state");
    rm_root();
}

/* Symlinks, FIFOs and directories are refused before anything blocks or is read. */
static void test_open_regular(void **state)
{
    (void)state;
    make_root();
    struct thaw_error err = {{0}};
    char path[128], link[128], fifo[128];
    snprintf(path, sizeof path, "%s/f", root);
    put(root, "f", "data");
    int fd = file_open_regular(AT_FDCWD, path, O_RDONLY | O_NOFOLLOW, 0, &err);
    assert_true(fd >= 0);
    assert_int_equal(fcntl(fd, F_GETFL) & O_NONBLOCK, 0);
    close(fd);
    snprintf(link, sizeof link, "%s/l", root);
    assert_int_equal(symlink(path, link), 0);
    assert_int_equal(file_open_regular(AT_FDCWD, link, O_RDONLY | O_NOFOLLOW, 0, &err), -1);
    assert_non_null(strstr(err.msg, "symbolic link"));
    snprintf(fifo, sizeof fifo, "%s/p", root);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    alarm(10); /* a blocking open would hang here */
    assert_int_equal(file_open_regular(AT_FDCWD, fifo, O_RDONLY, 0, &err), -1);
    assert_non_null(strstr(err.msg, "not a regular file"));
    uint8_t *data;
    size_t len;
    assert_int_equal(read_file(fifo, 100, &data, &len, &err), -1);
    alarm(0);
    assert_int_equal(file_open_regular(AT_FDCWD, root, O_RDONLY, 0, &err), -1);
    /* Beneath a directory: no escape through .. or a symlink. */
    int dfd = open(root, O_RDONLY | O_DIRECTORY);
    assert_true(dfd >= 0);
    assert_int_equal(file_open_regular(dfd, "../etc/passwd", O_RDONLY, RESOLVE_BENEATH, &err), -1);
    assert_int_equal(file_open_regular(dfd, "l", O_RDONLY, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, &err), -1);
    assert_true(file_open_regular(dfd, "f", O_RDONLY, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS, &err) >= 0);
    close(dfd);
    /* The size limit is checked before reading. */
    assert_int_equal(read_file(path, 3, &data, &len, &err), -1);
    assert_non_null(strstr(err.msg, "larger than 3 bytes"));
    rm_root();
}

static void test_memory_trailer(void **state)
{
    (void)state;
    make_root();
    struct snap_identity id, got;
    struct thaw_error err = {{0}};
    assert_int_equal(snap_random(id.id, sizeof id.id, &err), 0);
    assert_int_equal(snap_identity_digest(&id, (const uint8_t *)"state", 5, &err), 0);
    char path[128];
    snprintf(path, sizeof path, "%s/memory", root);
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    static uint8_t t[MEMORY_TRAILER_SIZE];
    memory_trailer_encode(t, 8192, &id);
    assert_int_equal(pwrite(fd, t, sizeof t, 8192), (ssize_t)sizeof t);
    uint64_t mem;
    assert_int_equal(memory_trailer_read(fd, 8192 + 4096, path, &mem, &got, &err), 0);
    assert_int_equal(mem, 8192);
    assert_true(snap_identity_equal(&id, &got));
    /* Any flipped byte of the trailer's fields is caught. */
    for (size_t i = 0; i < 76; i++) {
        uint8_t c = t[i] ^ 0x10;
        assert_int_equal(pwrite(fd, &c, 1, (off_t)(8192 + i)), 1);
        assert_int_equal(memory_trailer_read(fd, 8192 + 4096, path, &mem, &got, &err), -1);
        assert_int_equal(pwrite(fd, &t[i], 1, (off_t)(8192 + i)), 1);
    }
    /* An old memory file: no trailer. */
    assert_int_equal(ftruncate(fd, 3 * 4096), 0);
    static uint8_t zero[4096];
    assert_int_equal(pwrite(fd, zero, sizeof zero, 8192), (ssize_t)sizeof zero);
    assert_int_equal(memory_trailer_read(fd, 3 * 4096, path, &mem, &got, &err), -1);
    assert_non_null(strstr(err.msg, "no identity trailer"));
    close(fd);
    rm_root();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commit_replaces_whole_directory),
        cmocka_unit_test(test_commit_refuses_foreign_directory),
        cmocka_unit_test(test_check_ownership_and_mode),
        cmocka_unit_test(test_clean_leftovers),
        cmocka_unit_test(test_clean_leftovers_other_namespace),
        cmocka_unit_test(test_atomic_write_names),
        cmocka_unit_test(test_open_regular),
        cmocka_unit_test(test_memory_trailer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
