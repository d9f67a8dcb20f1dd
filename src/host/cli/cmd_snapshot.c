/* thaw snapshot <function-dir> -o <snapdir> [--warmup N --payload JSON ...]
 * Boots the function, stops it at its ready point (or after N warm-up invocations,
 * cycling through the payloads) and writes <snapdir>/state and <snapdir>/memory. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "host/cli/cli.h"
#include "host/cli/common.h"
#include "host/function/build.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: thaw snapshot <function-dir> -o <snapshot-dir> [--warmup N [--payload JSON]...]\n"
                 "                     [--memory MIB] [--timeout S] [--boot-timeout S] [--worker] [--json]\n"
                 "Boots the function and saves it at its ready point (first read of /dev/invoke),\n"
                 "or after N warm-up invocations with the given payloads.\n"
                 "  --timeout S       each warm-up invocation's deadline in seconds (default 30)\n"
                 "  --boot-timeout S  deadline for reaching the ready point (default 30)\n"
                 "  --worker          boot and snapshot in a jailed worker process (docs/jail.md)\n"
                 "  --json  print the instance's stats as one JSON line on stdout (docs/json.md)\n");
}

int cmd_snapshot(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'}, {"warmup", required_argument, 0, 'w'},
        {"payload", required_argument, 0, 'p'}, {"payload-file", required_argument, 0, 'f'},
        {"memory", required_argument, 0, 'm'}, {"json", no_argument, 0, 'j'},
        {"timeout", required_argument, 0, 'T'}, {"boot-timeout", required_argument, 0, 'B'},
        {"worker", no_argument, 0, 'W'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0},
    };
    struct payloads pl;
    struct sandbox_options opt = {0};
    const char *out_dir = NULL;
    long warmup = 0, memory_mib = 0;
    bool json = false;
    int rc = 1, c;
    struct thaw_error err = {{0}};
    if (payloads_init(&pl, argc) < 0)
        return 1;
    while ((c = getopt_long(argc, argv, "o:w:p:f:m:jT:B:Wh", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out_dir = optarg; break;
        case 'w': warmup = strtol(optarg, NULL, 10); break;
        case 'p': payloads_add_arg(&pl, optarg); break;
        case 'f':
            if (payloads_add_file(&pl, optarg, &err) < 0) {
                fprintf(stderr, "thaw snapshot: %s\n", err.msg);
                goto out;
            }
            break;
        case 'm': memory_mib = strtol(optarg, NULL, 10); break;
        case 'j': json = true; break;
        case 'W': opt.worker = true; break;
        case 'T':
        case 'B':
            if (parse_timeout(optarg, c == 'T' ? &opt.invoke_timeout_ns : &opt.boot_timeout_ns) < 0) {
                fprintf(stderr, "thaw snapshot: --%s wants seconds above 0 and at most a day, not '%s'\n",
                        c == 'T' ? "timeout" : "boot-timeout", optarg);
                rc = 2;
                goto out;
            }
            break;
        case 'h': usage(stdout); rc = 0; goto out;
        default: usage(stderr); rc = 2; goto out;
        }
    }
    if (optind != argc - 1 || !out_dir || warmup < 0 || memory_mib < 0 || (warmup > 0 && pl.n == 0)) {
        usage(stderr);
        rc = 2;
        goto out;
    }
    opt.memory_mib = (uint64_t)memory_mib;
    struct sandbox *sb;
    if (cli_handle_signals("snapshot") < 0)
        goto out;
    /* Builds the directory first (or finds its bundle up to date): function/build.h. */
    char *bundle = function_build_default(argv[optind], &err);
    if (!bundle) {
        fprintf(stderr, "thaw snapshot: %s\n", err.msg);
        goto out;
    }
    int booted = sandbox_boot(&sb, bundle, &opt, &err);
    free(bundle);
    if (booted < 0) {
        fprintf(stderr, "thaw snapshot: %s\n", err.msg);
        goto out;
    }
    for (long i = 0; i < warmup; i++) {
        uint8_t *resp;
        size_t len;
        size_t k = (size_t)i % pl.n;
        if (sandbox_invoke(sb, pl.data[k], pl.len[k], &resp, &len, &err) < 0) {
            print_invoke_failure("snapshot", sb, (size_t)i + 1, err.msg);
            goto done;
        }
        free(resp);
    }
    if (sandbox_snapshot(sb, out_dir, &err) < 0) {
        fprintf(stderr, "thaw snapshot: %s\n", err.msg);
        goto done;
    }
    struct sandbox_stats st;
    if (json) {
        if (print_stats_json(sb, NULL, 0, NULL) < 0)
            goto done;
    } else if (sandbox_stats(sb, &st, &err) == 0) {
        printf("snapshot of %s in %s: boot-to-ready %.2f ms, save %.2f ms, memory %llu MiB (%.2f MiB allocated)\n",
               st.function, out_dir, st.boot_ns / 1e6, st.save_ns / 1e6, (unsigned long long)(st.memory_bytes >> 20),
               st.snapshot_allocated_bytes / 1048576.0);
    }
    rc = 0;
done:
    sandbox_destroy(sb);
out:
    payloads_free(&pl);
    return cli_exit_status(rc);
}
