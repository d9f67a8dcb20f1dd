/* thaw restore <snapdir> --mem copy|lazy|uffd --payload JSON ... [--timings] [--json]
 * Restores an instance from a snapshot and invokes it. */
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "host/cli/cli.h"
#include "host/cli/common.h"
#include "host/snapshot/snapshot.h"
#include "host/util/clock.h"
#include "host/util/snapdir.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: thaw restore <snapshot-dir> [--mem copy|lazy|uffd|reap] [--payload JSON]... [--payload-file F]...\n"
            "                    [--drop-cache] [--pager-socket PATH] [--timings] [--json]\n"
            "Restores a function instance from a snapshot and sends it each payload.\n"
            "  --mem MODE     copy: read the memory file first; lazy: map it, fault pages on first\n"
            "                 touch; uffd: userfaultfd handler serves each page; reap: the first\n"
            "                 restore records the working set, later ones prefetch it (default uffd)\n"
            "  --drop-cache   drop the snapshot files from the page cache first (cold start)\n"
            "  --pager-socket PATH  uffd/reap: hand guest memory to an external `thaw pager`\n"
            "                 listening on PATH (Firecracker's handshake) instead of a thread\n");
}

/* Resident set of the mapping that starts at addr, from /proc/self/smaps. */
static long mapping_rss_kb(const void *addr)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f)
        return -1;
    char line[512];
    char want[32];
    snprintf(want, sizeof want, "%lx-", (unsigned long)(uintptr_t)addr);
    long rss = -1;
    int in = 0;
    while (fgets(line, sizeof line, f)) {
        if (strchr(line, '-') && strchr(line, ' ') && strchr(line, '-') < strchr(line, ' ') &&
            ((line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f')))
            in = strncmp(line, want, strlen(want)) == 0;
        else if (in && sscanf(line, "Rss: %ld kB", &rss) == 1)
            break;
    }
    fclose(f);
    return rss;
}

static void drop_cache(const char *dir)
{
    const char *names[] = {SNAPDIR_STATE, SNAPDIR_MEMORY};
    for (size_t i = 0; i < 2; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
            close(fd);
        }
    }
}

static uint64_t faults_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)ru.ru_minflt + (uint64_t)ru.ru_majflt;
}

int cmd_restore(int argc, char **argv)
{
    static const struct option opts[] = {
        {"mem", required_argument, 0, 'M'},    {"payload", required_argument, 0, 'p'},
        {"payload-file", required_argument, 0, 'f'}, {"timings", no_argument, 0, 't'},
        {"json", no_argument, 0, 'j'},         {"drop-cache", no_argument, 0, 'd'},
        {"pager-socket", required_argument, 0, 'P'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0},
    };
    struct payloads pl;
    enum mem_mode mode = MEM_UFFD;
    bool timings = false, json = false, drop = false;
    const char *pager_socket = NULL;
    int rc = 1, c;
    struct thaw_error err = {{0}};
    if (payloads_init(&pl, argc) < 0)
        return 1;
    while ((c = getopt_long(argc, argv, "M:p:f:tjdP:h", opts, NULL)) != -1) {
        switch (c) {
        case 'M':
            if (mem_mode_parse(optarg, &mode) < 0) {
                fprintf(stderr, "thaw restore: unknown memory mode '%s' (copy, lazy, uffd or reap)\n", optarg);
                rc = 2;
                goto out;
            }
            break;
        case 'p': payloads_add_arg(&pl, optarg); break;
        case 'f':
            if (payloads_add_file(&pl, optarg, &err) < 0) {
                fprintf(stderr, "thaw restore: %s\n", err.msg);
                goto out;
            }
            break;
        case 't': timings = true; break;
        case 'j': json = true; break;
        case 'd': drop = true; break;
        case 'P': pager_socket = optarg; break;
        case 'h': usage(stdout); rc = 0; goto out;
        default: usage(stderr); rc = 2; goto out;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        rc = 2;
        goto out;
    }
    const char *dir = argv[optind];
    if (drop)
        drop_cache(dir);
    struct restored r;
    uint64_t f0 = faults_now();
    if (snapshot_restore(&r, dir, mode, pager_socket, STDERR_FILENO, &err) < 0) {
        fprintf(stderr, "thaw restore: %s\n", err.msg);
        goto out;
    }
    uint64_t *inv_ns = calloc(pl.n + 1, sizeof *inv_ns);
    rc = inv_ns ? 0 : 1;
    for (size_t i = 0; i < pl.n && inv_ns; i++) {
        uint8_t *resp;
        size_t len;
        uint64_t s = clock_now_ns();
        if (instance_invoke(&r.inst, pl.data[i], pl.len[i], &resp, &len, &err) < 0) {
            fprintf(stderr, "thaw restore: %s: invocation %zu: %s\n", r.function_name, i + 1, err.msg);
            rc = 1;
            break;
        }
        inv_ns[i] = clock_now_ns() - s;
        print_response(resp, len);
        free(resp);
        if (i == 0 && mode == MEM_REAP && snapshot_reap_finish(&r, dir, &err) < 0) {
            fprintf(stderr, "thaw restore: REAP: %s\n", err.msg);
            rc = 1;
        }
    }
    if (r.reap_note[0])
        fprintf(stderr, "thaw restore: REAP: %s\n", r.reap_note);
    uint64_t host_faults = faults_now() - f0;
    long rss = mapping_rss_kb(r.mem.host);
    struct pager_stats ps = {0};
    if ((mode == MEM_UFFD || mode == MEM_REAP) && mem_backend_pager_query(&r.mem, "stats", &ps, &err) < 0) {
        fprintf(stderr, "thaw restore: pager: %s\n", err.msg);
        rc = 1;
    }
    uint64_t served = ps.pages_served, zeros = ps.zero_pages;
    if (json) {
        printf("{\"function\":\"%s\",\"mode\":\"%s\",\"state_load_us\":%.1f,\"vm_create_us\":%.1f,"
               "\"memory_setup_us\":%.1f,\"restore_us\":%.1f,\"first_response_us\":%.1f,"
               "\"cold_start_us\":%.1f,\"invocations_us\":[",
               r.function_name, mem_mode_name(mode), r.t.state_load_ns / 1e3, r.t.vm_create_ns / 1e3,
               r.t.memory_setup_ns / 1e3, r.t.total_ns / 1e3, inv_ns && pl.n ? inv_ns[0] / 1e3 : 0.0,
               (r.t.total_ns + (inv_ns && pl.n ? inv_ns[0] : 0)) / 1e3);
        for (size_t i = 0; i < pl.n && inv_ns; i++)
            printf("%s%.1f", i ? "," : "", inv_ns[i] / 1e3);
        printf("],\"pages_served\":%llu,\"zero_pages\":%llu,\"host_page_faults\":%llu,\"rss_kb\":%ld,"
               "\"bytes_copied\":%llu,\"reap\":{\"recorded\":%s,\"prefetched\":%s,\"ws_pages\":%llu,"
               "\"regions\":%llu,\"ws_bytes\":%llu,\"read_us\":%.1f,\"read_mb_s\":%.1f,\"install_us\":%.1f,"
               "\"misses\":%llu}}\n",
               (unsigned long long)served, (unsigned long long)zeros, (unsigned long long)host_faults, rss,
               (unsigned long long)r.mem.bytes_copied, r.reap_recording ? "true" : "false",
               r.reap_prefetched ? "true" : "false", (unsigned long long)r.reap.pages,
               (unsigned long long)r.reap.regions, (unsigned long long)r.reap.bytes, r.reap.read_ns / 1e3,
               r.reap.read_ns ? r.reap.bytes / (r.reap.read_ns / 1e9) / 1e6 : 0.0, r.reap.install_ns / 1e3,
               (unsigned long long)(r.reap_prefetched ? served + zeros : 0));
    } else if (timings) {
        fprintf(stderr,
                "restore (%s): state load %.3f ms, memory set-up %.3f ms, VM creation %.3f ms, total %.3f ms\n",
                mem_mode_name(mode), r.t.state_load_ns / 1e6, r.t.memory_setup_ns / 1e6, r.t.vm_create_ns / 1e6,
                r.t.total_ns / 1e6);
        for (size_t i = 0; i < pl.n && inv_ns; i++)
            fprintf(stderr, "invocation %zu: %.3f ms\n", i + 1, inv_ns[i] / 1e6);
        fprintf(stderr, "pages served by uffd: %llu (+%llu zero), host page faults: %llu, resident: %ld KiB\n",
                (unsigned long long)served, (unsigned long long)zeros, (unsigned long long)host_faults, rss);
        if (r.reap_prefetched)
            fprintf(stderr, "REAP prefetch: %llu pages in %llu regions, %.2f MiB read in %.3f ms (%.0f MB/s), "
                            "installed in %.3f ms, %llu pages missed\n",
                    (unsigned long long)r.reap.pages, (unsigned long long)r.reap.regions, r.reap.bytes / 1048576.0,
                    r.reap.read_ns / 1e6, r.reap.read_ns ? r.reap.bytes / (r.reap.read_ns / 1e9) / 1e6 : 0.0,
                    r.reap.install_ns / 1e6, (unsigned long long)(served + zeros));
        if (r.reap_recording)
            fprintf(stderr, "REAP: recorded the working set of this restore\n");
    }
    free(inv_ns);
    restored_destroy(&r);
out:
    payloads_free(&pl);
    return rc;
}
