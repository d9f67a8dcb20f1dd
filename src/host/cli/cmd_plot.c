/* thaw plot CSV... -o DIR: figures from thaw load CSVs (host/load/plot.c). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "host/cli/cli.h"
#include "host/load/load.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: thaw plot CSV... -o DIR [--format png|svg] [--bucket SECONDS]\n"
                 "Draws latency CDFs per start kind, latency over time, the cold-start share and the\n"
                 "instances serving over time from thaw load CSVs (one series per file) with gnuplot.\n");
}

int cmd_plot(int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'},
                                         {"format", required_argument, NULL, 'f'},
                                         {"bucket", required_argument, NULL, 'b'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0, 0, 0, 0}};
    const char *dir = NULL, *format = "png";
    double bucket = 10;
    int c;
    while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        switch (c) {
        case 'o': dir = optarg; break;
        case 'f': format = optarg; break;
        case 'b': bucket = strtod(optarg, NULL); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!dir || optind == argc || !(bucket > 0)) {
        usage(stderr);
        return 2;
    }
    struct thaw_error err = {{0}};
    if (load_plot((const char *const *)argv + optind, (size_t)(argc - optind), dir, format, bucket, &err) < 0) {
        fprintf(stderr, "thaw plot: %s\n", err.msg);
        return 1;
    }
    printf("figures in %s: latency-cdf, latency-time, cold-share, instances (.%s)\n", dir, format);
    return 0;
}
