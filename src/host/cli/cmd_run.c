/* thaw run <function-dir> --payload JSON [--payload ...] [--timings] [--json]
 * Boots the function, waits for its ready point, sends each payload in order to the
 * same instance and prints each response on its own line. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/cli/cli.h"
#include "host/function/bundle.h"
#include "host/util/clock.h"
#include "host/vmm/instance.h"

static void run_usage(FILE *out)
{
    fprintf(out,
            "usage: thaw run <function-dir> [--payload JSON]... [--payload-file FILE]... [--repeat N]\n"
            "                [--timings] [--json] [--memory MIB] [--trace-syscalls]\n"
            "Boots the function in a fresh microVM, waits for its ready point (first read of\n"
            "/dev/invoke), sends each payload in order and prints each response on a line.\n"
            "  --timings     print boot-to-ready and per-invocation times on stderr\n"
            "  --json        print the timings as one JSON object on stderr instead\n"
            "  --repeat N    send the payload list N times\n"
            "  --trace-syscalls  the guest kernel logs every syscall (strace-like)\n");
}

int cmd_run(int argc, char **argv)
{
    static const struct option opts[] = {
        {"payload", required_argument, 0, 'p'}, {"payload-file", required_argument, 0, 'f'},
        {"timings", no_argument, 0, 't'},       {"json", no_argument, 0, 'j'},
        {"memory", required_argument, 0, 'm'},  {"trace-syscalls", no_argument, 0, 'k'},
        {"repeat", required_argument, 0, 'r'},  {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    char **payloads = calloc((size_t)argc + 1, sizeof *payloads);
    size_t *payload_lens = calloc((size_t)argc + 1, sizeof *payload_lens);
    bool *payload_owned = calloc((size_t)argc + 1, sizeof *payload_owned);
    size_t npayloads = 0;
    bool timings = false, json = false, kernel_log = false;
    long memory_mib = 0, repeat = 1;
    int rc = 1, c;
    struct thaw_error err = {{0}};
    if (!payloads || !payload_lens || !payload_owned) {
        fprintf(stderr, "thaw run: out of memory\n");
        return 1;
    }
    while ((c = getopt_long(argc, argv, "p:f:tjm:kr:h", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            payloads[npayloads] = optarg;
            payload_lens[npayloads++] = strlen(optarg);
            break;
        case 'f': {
            uint8_t *data;
            size_t len;
            if (read_file(optarg, 64u << 20, &data, &len, &err) < 0) {
                fprintf(stderr, "thaw run: %s\n", err.msg);
                goto out;
            }
            payloads[npayloads] = (char *)data;
            payload_owned[npayloads] = true;
            payload_lens[npayloads++] = len;
            break;
        }
        case 't': timings = true; break;
        case 'j': json = true; break;
        case 'k': kernel_log = true; break;
        case 'm': memory_mib = strtol(optarg, NULL, 10); break;
        case 'r': repeat = strtol(optarg, NULL, 10); break;
        case 'h': run_usage(stdout); rc = 0; goto out;
        default: run_usage(stderr); rc = 2; goto out;
        }
    }
    if (optind != argc - 1 || repeat < 1) {
        run_usage(stderr);
        rc = 2;
        goto out;
    }

    char *build_dir = thaw_build_dir();
    char *kernel_path = NULL;
    struct bundle b;
    uint8_t *kernel = NULL;
    size_t kernel_size = 0;
    if (!build_dir || asprintf(&kernel_path, "%s/guest/kernel.elf", build_dir) < 0) {
        fprintf(stderr, "thaw run: out of memory\n");
        goto out;
    }
    if (read_file(kernel_path, 16u << 20, &kernel, &kernel_size, &err) < 0 ||
        bundle_load(&b, argv[optind], build_dir, &err) < 0) {
        fprintf(stderr, "thaw run: %s\n", err.msg);
        free(kernel);
        free(kernel_path);
        free(build_dir);
        goto out;
    }
    struct instance_config cfg = {
        .kernel = kernel, .kernel_size = kernel_size,
        .program = b.program, .program_size = b.program_size,
        .argv = (const char *const *)b.argv, .argc = b.argc,
        .envp = (const char *const *)b.envp, .envc = b.envc,
        .archive = b.archive, .archive_size = b.archive_size,
        .mem_size = (uint64_t)(memory_mib ? (uint64_t)memory_mib : b.memory_mib) << 20,
        .console_fd = STDERR_FILENO,
        .kernel_log = true,
        .trace_syscalls = kernel_log,
    };
    struct instance inst;
    uint64_t t0 = clock_now_ns();
    if (instance_boot(&inst, &cfg, &err) < 0) {
        fprintf(stderr, "thaw run: %s: %s\n", b.name, err.msg);
        goto done;
    }
    uint64_t boot_ns = clock_now_ns() - t0;
    size_t total = npayloads * (size_t)repeat;
    uint64_t *inv_ns = calloc(total + 1, sizeof *inv_ns);
    rc = 0;
    for (size_t i = 0; i < total && inv_ns; i++) {
        size_t k = i % npayloads;
        uint8_t *resp;
        size_t resp_len;
        uint64_t s = clock_now_ns();
        if (instance_invoke(&inst, payloads[k], payload_lens[k], &resp, &resp_len, &err) < 0) {
            fprintf(stderr, "thaw run: %s: invocation %zu: %s\n", b.name, i + 1, err.msg);
            rc = 1;
            break;
        }
        inv_ns[i] = clock_now_ns() - s;
        fwrite(resp, 1, resp_len, stdout);
        if (!resp_len || resp[resp_len - 1] != '\n')
            fputc('\n', stdout);
        free(resp);
    }
    fflush(stdout);
    if (rc == 0 && instance_shutdown(&inst, &err) < 0) {
        fprintf(stderr, "thaw run: %s: shutdown: %s\n", b.name, err.msg);
        rc = 1;
    }
    if (json) {
        fprintf(stderr, "{\"function\":\"%s\",\"boot_to_ready_us\":%.1f,\"invocations_us\":[", b.name,
                boot_ns / 1e3);
        for (size_t i = 0; i < total && inv_ns; i++)
            fprintf(stderr, "%s%.1f", i ? "," : "", inv_ns[i] / 1e3);
        fprintf(stderr, "],\"vm_exits\":%llu}\n", (unsigned long long)inst.stats.vm_exits);
    } else if (timings) {
        fprintf(stderr, "boot-to-ready: %.3f ms\n", boot_ns / 1e6);
        for (size_t i = 0; i < total && inv_ns; i++)
            fprintf(stderr, "invocation %zu: %.3f ms\n", i + 1, inv_ns[i] / 1e6);
    }
    free(inv_ns);
    instance_destroy(&inst);
done:
    bundle_free(&b);
    free(kernel);
    free(kernel_path);
    free(build_dir);
out:
    for (size_t i = 0; i < npayloads; i++)
        if (payload_owned[i])
            free(payloads[i]);
    free(payloads);
    free(payload_lens);
    free(payload_owned);
    return rc;
}
