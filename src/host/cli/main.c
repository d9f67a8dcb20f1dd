/* thaw: one command, git-style subcommands. The commands that speak HTTP (the daemon and
 * its clients) live in build/thaw-http, next to this binary, and are reached by an exec:
 * their libraries (libcurl, libmicrohttpd, libarchive and the 40 they pull in) cost a
 * process 6-7 ms of CPU to load, which every `thaw restore` paid, eight at once on two
 * CPUs included (docs/benchmarks-topics.md). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "host/cli/cli.h"
#include "host/util/file.h"

static const struct {
    const char *name;
    int (*fn)(int, char **); /* NULL: in thaw-http */
    const char *help;
} commands[] = {
    {"build", cmd_build, "build a function directory into a bundle (C or Python)"},
    {"run", cmd_run, "boot a function in a microVM and invoke it"},
    {"snapshot", cmd_snapshot, "boot a function and save a snapshot at its ready point"},
    {"restore", cmd_restore, "restore a function instance from a snapshot and invoke it"},
    {"analyze", cmd_analyze, "characterise the working sets of snapshot restores (the paper's analyses)"},
#ifdef THAW_HAVE_SERVE /* see the Makefile: needs the lifecycle layer's implementation */
    {"serve", NULL, "run the daemon: deploy and invoke functions over HTTP"},
#endif
    {"deploy", NULL, "deploy a function directory to the daemon"},
    {"invoke", NULL, "invoke a deployed function through the daemon"},
    {"ls", NULL, "list the daemon's functions"},
    {"rm", NULL, "remove a function from the daemon"},
    {"stats", NULL, "a deployed function's configuration, sizes and instances"},
    {"logs", NULL, "a deployed function's recent guest output"},
    {"pager", cmd_pager, "serve a VM's page faults from a snapshot (Firecracker's uffd handshake)"},
    {"load", NULL, "drive a running thaw serve: open loop, closed loop or trace replay; CSV and summary"},
    {"plot", cmd_plot, "draw figures from thaw load CSVs (gnuplot)"},
    {"trace-gen", cmd_trace_gen, "write a synthetic trace in the Azure Functions 2019 format"},
    {"keepalive-sim", cmd_keepalive_sim, "compare keep-alive policies over a trace by simulation"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: thaw <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].help);
    fprintf(out, "\n'thaw <command> --help' describes a command.\n");
}

/* Runs the command in thaw-http next to this executable, same arguments and pid. */
static int exec_http(char **argv)
{
    char exe[4096];
    if (exe_sibling(exe, sizeof exe, "thaw-http") < 0) {
        fprintf(stderr, "thaw: cannot find this executable (/proc/self/exe): %s\n", strerror(errno));
        return 1;
    }
    execv(exe, argv);
    fprintf(stderr, "thaw: '%s' runs %s, which cannot be started: %s (built by `make`, kept next to thaw)\n",
            argv[1], exe, strerror(errno));
    return 1;
}

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn ? commands[i].fn(argc - 1, argv + 1) : exec_http(argv);
    if (!strcmp(argv[1], "worker")) /* hidden: the process behind --worker */
        return cmd_worker(argc - 1, argv + 1);
    fprintf(stderr, "thaw: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
