/* thaw trace-gen -o DIR: a synthetic trace in the Azure Functions 2019 format
 * (host/load/tracegen.c). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "host/cli/cli.h"
#include "host/load/load.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: thaw trace-gen -o DIR [--functions N] [--minutes M] [--seed S] [--rate-scale X]\n"
                 "Writes invocations_per_function_md.anon.d01.csv, function_durations_percentiles.anon.d01.csv\n"
                 "and app_memory_percentiles.anon.d01.csv into DIR, drawn from the distributions published\n"
                 "by Shahrad et al. (ATC'20). Defaults: 100 functions, 1440 minutes, seed 1, scale 1.\n");
}

int cmd_trace_gen(int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                         {"functions", required_argument, NULL, 'n'},
                                         {"minutes", required_argument, NULL, 'm'},
                                         {"seed", required_argument, NULL, 's'},
                                         {"rate-scale", required_argument, NULL, 'r'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0, 0, 0, 0}};
    struct load_tracegen_config cfg = {.functions = 100, .minutes = 1440, .seed = 1, .rate_scale = 1};
    const char *dir = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': dir = optarg; break;
        case 'n': cfg.functions = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'm': cfg.minutes = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 's': cfg.seed = strtoull(optarg, NULL, 10); break;
        case 'r': cfg.rate_scale = strtod(optarg, NULL); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!dir || optind != argc) {
        usage(stderr);
        return 2;
    }
    (void)mkdir(dir, 0755);
    struct thaw_error err = {{0}};
    if (load_trace_generate(dir, &cfg, &err) < 0) {
        fprintf(stderr, "thaw trace-gen: %s\n", err.msg);
        return 1;
    }
    printf("synthetic trace of %u functions over %u minutes in %s\n", cfg.functions, cfg.minutes, dir);
    return 0;
}
