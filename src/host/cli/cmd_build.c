/* thaw build <function-dir> [--out DIR] [--force]
 * thaw build --gc [--keep DIR]...
 * Builds a function directory into a self-contained bundle (function/build.h), or
 * evicts the runtime images no bundle uses (function/python_build.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "host/cli/cli.h"
#include "host/function/build.h"
#include "host/function/python_build.h"

static void build_usage(FILE *out)
{
    fprintf(out,
            "usage: thaw build <function-dir> [--out DIR] [--force]\n"
            "       thaw build --gc [--keep DIR]...\n"
            "Compiles the function's C sources (or packs its Python handler with the runtime)\n"
            "into a bundle directory that run, snapshot and the daemon boot. Skipped while\n"
            "nothing it is made from changed.\n"
            "  --out DIR   where the bundle goes (default: <build>/bundles/<name>)\n"
            "  --force     rebuild even if up to date\n"
            "  --gc        remove the Python runtime images (build/functions/python3.11-images)\n"
            "              that no bundle in build/bundles names, nor any bundle or snapshot\n"
            "              under a --keep DIR (e.g. thaw serve's --state-dir)\n");
}

int cmd_build(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, 0, 'o'}, {"force", no_argument, 0, 'F'}, {"help", no_argument, 0, 'h'},
        {"gc", no_argument, 0, 'g'}, {"keep", required_argument, 0, 'k'}, {0, 0, 0, 0},
    };
    const char *out = NULL;
    const char *keep[64];
    size_t nkeep = 0;
    bool force = false, gc = false;
    int c;
    while ((c = getopt_long(argc, argv, "o:Fh", opts, NULL)) != -1) {
        switch (c) {
        case 'o': out = optarg; break;
        case 'F': force = true; break;
        case 'g': gc = true; break;
        case 'k':
            if (nkeep == sizeof keep / sizeof keep[0]) {
                fprintf(stderr, "thaw build: at most %zu --keep directories\n", nkeep);
                return 2;
            }
            keep[nkeep++] = optarg;
            break;
        case 'h': build_usage(stdout); return 0;
        default: build_usage(stderr); return 2;
        }
    }
    struct thaw_error err = {{0}};
    if (gc) {
        struct python_gc_result r;
        if (optind != argc || out || force) {
            build_usage(stderr);
            return 2;
        }
        if (python_images_gc(keep, nkeep, &r, &err) < 0) {
            fprintf(stderr, "thaw build: %s\n", err.msg);
            return 1;
        }
        printf("removed %u unused runtime image%s (%.1f MiB on disk), kept %u\n", r.removed, r.removed == 1 ? "" : "s",
               (double)r.removed_bytes / 1048576.0, r.kept);
        return 0;
    }
    if (nkeep || optind != argc - 1) {
        build_usage(stderr);
        return 2;
    }
    char *def = NULL;
    if (!out && !(out = def = function_build_default_out(argv[optind], &err))) {
        fprintf(stderr, "thaw build: %s\n", err.msg);
        return 1;
    }
    struct function_build_result res;
    int rc = function_build(argv[optind], out, force, &res, &err);
    if (rc < 0)
        fprintf(stderr, "thaw build: %s\n", err.msg);
    else if (res.rebuilt)
        printf("built %s (program %llu bytes, archive %llu bytes, %.2f s)\n", out,
               (unsigned long long)res.program_bytes, (unsigned long long)res.archive_bytes,
               (double)res.build_ns / 1e9);
    else
        printf("%s is up to date\n", out);
    free(def);
    return rc < 0 ? 1 : 0;
}
