/* thaw run <function-dir> --payload JSON [--payload ...] [--timings] [--json]
 * Boots the function, waits for its ready point, sends each payload in order to the
 * same instance and prints each response on its own line. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/cli/cli.h"
#include "host/cli/common.h"
#include "host/function/build.h"

static void run_usage(FILE *out)
{
    fprintf(out,
            "usage: thaw run <function-dir> [--payload JSON]... [--payload-file FILE]... [--repeat N]\n"
            "                [--timings] [--json] [--memory MIB] [--trace-syscalls] [--timeout S]\n"
            "                [--boot-timeout S] [--worker]\n"
            "Boots the function in a fresh microVM, waits for its ready point (first read of\n"
            "/dev/invoke), sends each payload in order and prints each response on a line.\n"
            "  --timings         print boot-to-ready and per-invocation times on stderr\n"
            "  --json            print the instance's stats as one JSON line on stdout, after\n"
            "                    the responses (docs/json.md)\n"
            "  --repeat N        send the payload list N times\n"
            "  --trace-syscalls  the guest kernel logs every syscall (strace-like)\n"
            "  --timeout S       each invocation's deadline in seconds (default: function.json's\n"
            "                    \"timeout_s\", else 30); on expiry the instance is torn down\n"
            "  --boot-timeout S  deadline for reaching the ready point (default 30)\n"
            "  --worker          run the microVM in its own jailed worker process (docs/jail.md)\n"
            "Guest output goes to stderr line by line, tagged [<instance> #<invocation>].\n");
}

int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"payload", required_argument, 0, 'p'}, {"payload-file", required_argument, 0, 'f'},
        {"timings", no_argument, 0, 't'},       {"json", no_argument, 0, 'j'},
        {"memory", required_argument, 0, 'm'},  {"trace-syscalls", no_argument, 0, 'k'},
        {"repeat", required_argument, 0, 'r'},  {"timeout", required_argument, 0, 'T'}, {"boot-timeout", required_argument, 0, 'B'},
        {"help", no_argument, 0, 'h'},
        {"worker", no_argument, 0, 'w'},
        {0, 0, 0, 0},
    };
    struct payloads pl;
    struct sandbox_options opt = {0};
    bool timings = false, json = false;
    long memory_mib = 0, repeat = 1;
    int rc = 1, c;
    struct thaw_error err = {{0}};
    if (payloads_init(&pl, argc) < 0) {
        fprintf(stderr, "thaw run: out of memory\n");
        return 1;
    }
    while ((c = getopt_long(argc, argv, "p:f:tjm:kr:T:B:hw", opts, NULL)) != -1) {
        switch (c) {
        case 'p': payloads_add_arg(&pl, optarg); break;
        case 'f':
            if (payloads_add_file(&pl, optarg, &err) < 0) {
                fprintf(stderr, "thaw run: %s\n", err.msg);
                goto out;
            }
            break;
        case 't': timings = true; break;
        case 'j': json = true; break;
        case 'k': opt.trace_syscalls = true; break;
        case 'w': opt.worker = true; break;
        case 'm': memory_mib = strtol(optarg, NULL, 10); break;
        case 'r': repeat = strtol(optarg, NULL, 10); break;
        case 'T':
        case 'B':
            if (parse_timeout(optarg, c == 'T' ? &opt.invoke_timeout_ns : &opt.boot_timeout_ns) < 0) {
                fprintf(stderr, "thaw run: --%s wants seconds above 0 and at most a day, not '%s'\n",
                        c == 'T' ? "timeout" : "boot-timeout", optarg);
                rc = 2;
                goto out;
            }
            break;
        case 'h': run_usage(stdout); rc = 0; goto out;
        default: run_usage(stderr); rc = 2; goto out;
        }
    }
    if (optind != argc - 1 || repeat < 1 || memory_mib < 0) {
        run_usage(stderr);
        rc = 2;
        goto out;
    }
    opt.memory_mib = (uint64_t)memory_mib;
    struct sandbox *sb;
    if (cli_handle_signals("run") < 0)
        goto out;
    /* Builds the directory first (or finds its bundle up to date): function/build.h. */
    char *bundle = function_build_default(argv[optind], &err);
    if (!bundle) {
        fprintf(stderr, "thaw run: %s\n", err.msg);
        goto out;
    }
    int booted = sandbox_boot(&sb, bundle, &opt, &err);
    free(bundle);
    if (booted < 0) {
        fprintf(stderr, "thaw run: %s\n", err.msg);
        goto out;
    }
    struct sandbox_stats st;
    size_t total = pl.n * (size_t)repeat, done = 0;
    uint64_t *inv_ns = calloc(total + 1, sizeof *inv_ns);
    rc = inv_ns ? 0 : 1;
    const char *failed = NULL;
    for (size_t i = 0; i < total && inv_ns; i++) {
        size_t k = i % pl.n;
        uint8_t *resp;
        size_t resp_len;
        if (sandbox_invoke(sb, pl.data[k], pl.len[k], &resp, &resp_len, &err) < 0) {
            print_invoke_failure("run", sb, i + 1, err.msg);
            failed = err.msg;
            rc = 1;
            break;
        }
        (void)sandbox_stats(sb, &st, &(struct thaw_error){{0}});
        inv_ns[done++] = st.last_invoke_ns;
        print_response(resp, resp_len);
        free(resp);
    }
    if (rc == 0 && sandbox_shutdown(sb, &err) < 0) {
        (void)sandbox_stats(sb, &st, &(struct thaw_error){{0}});
        fprintf(stderr, "thaw run: %s: shutdown: %s\n", st.function, err.msg);
        failed = err.msg;
        rc = 1;
    }
    if (json && print_stats_json(sb, inv_ns, done, failed) < 0)
        rc = 1;
    else if (timings && !json && sandbox_stats(sb, &st, &err) == 0) {
        fprintf(stderr, "boot-to-ready: %.3f ms\n", st.boot_ns / 1e6);
        for (size_t i = 0; i < done; i++)
            fprintf(stderr, "invocation %zu: %.3f ms\n", i + 1, inv_ns[i] / 1e6);
    }
    free(inv_ns);
    sandbox_destroy(sb);
out:
    payloads_free(&pl);
    return cli_exit_status(rc);
}
