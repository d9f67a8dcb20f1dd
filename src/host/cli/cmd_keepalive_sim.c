/* thaw keepalive-sim --trace DIR --policy P...: compares keep-alive policies over a
 * trace by simulation (host/load/keepalive_sim.c), in the trace's own time. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/cli/cli.h"
#include "host/load/load.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: thaw keepalive-sim --trace DIR --policy P [--policy P]... --cold-ms X --warm-ms Y\n"
            "                          [--memory-mb M] [--first-minute N] [--minutes K] [--seed S]\n"
            "Replays every invocation of an Azure Functions 2019 trace against a model of per-function\n"
            "instance pools and prints, per policy, the cold-start share, start latency p50/p99 and\n"
            "instance memory held (GB-seconds, idle share). Policies: fixed:SECONDS, hybrid[:FALLBACK_S]\n"
            "(Shahrad et al.'s hybrid histogram, 1-minute bins over 4 hours), zero (scale to zero).\n"
            "Each invocation runs for its function's median duration from the trace; --cold-ms and\n"
            "--warm-ms are the start latencies to charge (measured ones); memory per instance is the\n"
            "trace's application average, else --memory-mb (default 128).\n");
}

int cmd_keepalive_sim(int argc, char **argv)
{
    static const struct option opts[] = {{"trace", required_argument, NULL, 't'},
                                         {"policy", required_argument, NULL, 'p'},
                                         {"cold-ms", required_argument, NULL, 'c'},
                                         {"warm-ms", required_argument, NULL, 'w'},
                                         {"memory-mb", required_argument, NULL, 'm'},
                                         {"first-minute", required_argument, NULL, 'f'},
                                         {"minutes", required_argument, NULL, 'n'},
                                         {"seed", required_argument, NULL, 's'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0, 0, 0, 0}};
    const char *trace = NULL, *policies[16];
    size_t np = 0;
    double cold = -1, warm = -1, memory = 128;
    long first = 1, minutes = 0;
    unsigned long long seed = 1;
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 't': trace = optarg; break;
        case 'p':
            if (np == 16) {
                fprintf(stderr, "thaw keepalive-sim: at most 16 policies\n");
                return 2;
            }
            policies[np++] = optarg;
            break;
        case 'c': cold = strtod(optarg, NULL); break;
        case 'w': warm = strtod(optarg, NULL); break;
        case 'm': memory = strtod(optarg, NULL); break;
        case 'f': first = strtol(optarg, NULL, 10); break;
        case 'n': minutes = strtol(optarg, NULL, 10); break;
        case 's': seed = strtoull(optarg, NULL, 10); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!trace || !np || cold < 0 || warm < 0 || first < 1 || minutes < 0 || optind != argc) {
        usage(stderr);
        return 2;
    }
    struct load_ka_config cfgs[16];
    for (size_t i = 0; i < np; i++) {
        struct load_ka_config k = {.cold_ms = cold, .warm_ms = warm, .memory_mb = memory, .hybrid_bin_s = 60,
                                   .hybrid_fallback_s = 4 * 3600};
        const char *p = policies[i];
        if (!strncmp(p, "fixed:", 6)) {
            k.policy = LOAD_KA_FIXED;
            k.keepalive_s = strtod(p + 6, NULL);
        } else if (!strcmp(p, "hybrid") || !strncmp(p, "hybrid:", 7)) {
            k.policy = LOAD_KA_HYBRID;
            if (p[6] == ':')
                k.hybrid_fallback_s = strtod(p + 7, NULL);
        } else if (!strcmp(p, "zero")) {
            k.policy = LOAD_KA_ZERO;
        } else {
            fprintf(stderr, "thaw keepalive-sim: unknown policy '%s' (fixed:SECONDS, hybrid[:S], zero)\n", p);
            return 2;
        }
        cfgs[i] = k;
    }
    struct thaw_error err = {{0}};
    struct load_trace t;
    if (load_trace_read_dir(&t, trace, &err) < 0) {
        fprintf(stderr, "thaw keepalive-sim: %s\n", err.msg);
        return 1;
    }
    /* Every trace function is its own target; the names are never sent anywhere. */
    struct load_mapping_entry star = {.trace_name = "*", .function = "sim"};
    struct load_mapping m = {.entries = &star, .count = 1};
    struct load_replay_config rc = {.minute_seconds = 60, .first_minute = (uint32_t)first - 1,
                                    .minutes = (uint32_t)minutes, .within = LOAD_ARRIVAL_EXPONENTIAL, .seed = seed};
    struct load_schedule s;
    size_t unmapped;
    if (load_schedule_replay(&s, &t, &m, &rc, &unmapped, &err) < 0) {
        load_trace_free(&t);
        fprintf(stderr, "thaw keepalive-sim: %s\n", err.msg);
        return 1;
    }
    double *mb = calloc(s.target_count ? s.target_count : 1, sizeof *mb);
    if (!mb) {
        fprintf(stderr, "thaw keepalive-sim: out of memory\n");
        return 1;
    }
    load_trace_target_memory(&t, &s, mb);
    printf("%zu invocations of %zu functions over %.0f minutes\n\n", s.count, s.target_count,
           (double)s.span_us / 60e6);
    printf("| policy | cold starts | cold share | start p50 ms | start p99 ms | memory GB-s | idle share | max instances |\n");
    printf("|---|---|---|---|---|---|---|---|\n");
    int status = 0;
    for (size_t i = 0; i < np; i++) {
        cfgs[i].function_memory_mb = mb;
        struct load_ka_result r;
        if (load_keepalive_simulate(&s, &cfgs[i], &r, &err) < 0) {
            fprintf(stderr, "thaw keepalive-sim: %s\n", err.msg);
            status = 1;
            break;
        }
        printf("| %s | %llu | %.1f%% | %.1f | %.1f | %.0f | %.0f%% | %llu |\n", policies[i],
               (unsigned long long)r.cold, 100 * r.cold_share, r.p50_ms, r.p99_ms, r.memory_mb_s / 1024,
               r.memory_mb_s > 0 ? 100 * r.idle_memory_mb_s / r.memory_mb_s : 0.0,
               (unsigned long long)r.max_instances);
    }
    free(mb);
    load_schedule_free(&s);
    load_trace_free(&t);
    return status;
}
