/* Runs each cmocka test of a table in a process of its own, for code under test that
 * keeps its state in static variables (the guest kernel's files compiled for the host):
 * every test starts from a fresh copy. argv[1], when given, selects the tests whose name
 * contains it. A child that dies instead of returning is reported in cmocka's format so
 * tests/run-all.sh counts it. Include after <cmocka.h>, <stdio.h>, <string.h>,
 * <sys/wait.h> and <unistd.h>. */
#ifndef THAW_TESTS_FORKED_TESTS_H
#define THAW_TESTS_FORKED_TESTS_H

static inline int run_tests_forked(const struct CMUnitTest *tests, size_t n, int argc, char **argv)
{
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        if (argc > 1 && !strstr(tests[i].name, argv[1]))
            continue;
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return -1;
        }
        if (pid == 0)
            _exit(_cmocka_run_group_tests(tests[i].name, &tests[i], 1, NULL, NULL) ? 1 : 0);
        int status;
        if (waitpid(pid, &status, 0) != pid) {
            perror("waitpid");
            return -1;
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
            continue;
        failed++;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 1) {
            printf("[  FAILED  ] 1 test(s), listed below:\n[  FAILED  ] %s (died, status %#x)\n",
                   tests[i].name, (unsigned)status);
            fflush(stdout);
        }
    }
    return failed;
}

#endif
