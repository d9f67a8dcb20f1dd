/* thaw snapshot <function-dir> -o <snapdir> [--warmup N --payload JSON ...]
 * Boots the function, stops it at its ready point (or after N warm-up invocations,
 * cycling through the payloads) and writes <snapdir>/state and <snapdir>/memory. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "host/cli/cli.h"
#include "host/cli/common.h"
#include "host/snapshot/snapshot.h"
#include "host/util/clock.h"
#include "host/util/snapdir.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: thaw snapshot <function-dir> -o <snapshot-dir> [--warmup N [--payload JSON]...]\n"
                 "                     [--memory MIB] [--json]\n"
                 "Boots the function and saves it at its ready point (first read of /dev/invoke),\n"
                 "or after N warm-up invocations with the given payloads.\n");
}

int cmd_snapshot(int argc, char **argv)
{
    static const struct option opts[] = {
        {"output", required_argument, 0, 'o'}, {"warmup", required_argument, 0, 'w'},
        {"payload", required_argument, 0, 'p'}, {"payload-file", required_argument, 0, 'f'},
        {"memory", required_argument, 0, 'm'}, {"json", no_argument, 0, 'j'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0},
    };
    struct payloads pl;
    const char *out_dir = NULL;
    long warmup = 0, memory_mib = 0;
    bool json = false;
    int rc = 1, c;
    struct thaw_error err = {{0}};
    if (payloads_init(&pl, argc) < 0)
        return 1;
    while ((c = getopt_long(argc, argv, "o:w:p:f:m:jh", opts, NULL)) != -1) {
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
        case 'h': usage(stdout); rc = 0; goto out;
        default: usage(stderr); rc = 2; goto out;
        }
    }
    if (optind != argc - 1 || !out_dir || warmup < 0 || (warmup > 0 && pl.n == 0)) {
        usage(stderr);
        rc = 2;
        goto out;
    }
    struct cli_function fn;
    struct instance inst;
    uint64_t t0 = clock_now_ns();
    if (cli_boot(argv[optind], memory_mib, false, &fn, &inst, &err) < 0) {
        fprintf(stderr, "thaw snapshot: %s\n", err.msg);
        goto out;
    }
    uint64_t boot_ns = clock_now_ns() - t0;
    for (long i = 0; i < warmup; i++) {
        uint8_t *resp;
        size_t len;
        size_t k = (size_t)i % pl.n;
        if (instance_invoke(&inst, pl.data[k], pl.len[k], &resp, &len, &err) < 0) {
            fprintf(stderr, "thaw snapshot: warm-up invocation %ld: %s\n", i + 1, err.msg);
            goto done;
        }
        free(resp);
    }
    uint64_t t1 = clock_now_ns();
    if (snapshot_save(&inst, fn.bundle.name, out_dir, &err) < 0) {
        fprintf(stderr, "thaw snapshot: %s\n", err.msg);
        goto done;
    }
    uint64_t save_ns = clock_now_ns() - t1;
    char path[4096];
    snprintf(path, sizeof path, "%s/" SNAPDIR_MEMORY, out_dir);
    struct stat st;
    long long allocated = stat(path, &st) == 0 ? (long long)st.st_blocks * 512 : -1;
    if (json)
        printf("{\"function\":\"%s\",\"boot_to_ready_us\":%.1f,\"save_us\":%.1f,\"memory_bytes\":%llu,"
               "\"memory_allocated_bytes\":%lld}\n",
               fn.bundle.name, boot_ns / 1e3, save_ns / 1e3, (unsigned long long)inst.mem_size, allocated);
    else
        printf("snapshot of %s in %s: boot-to-ready %.2f ms, save %.2f ms, memory %llu MiB (%.2f MiB allocated)\n",
               fn.bundle.name, out_dir, boot_ns / 1e6, save_ns / 1e6, (unsigned long long)(inst.mem_size >> 20),
               allocated / 1048576.0);
    rc = 0;
done:
    instance_destroy(&inst);
    cli_function_free(&fn);
out:
    payloads_free(&pl);
    return rc;
}
