/* thaw: one binary, git-style subcommands. */
#include <stdio.h>
#include <string.h>

#include "host/cli/cli.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"build", cmd_build, "build a function directory into a bundle (C or Python)"},
    {"run", cmd_run, "boot a function in a microVM and invoke it"},
    {"snapshot", cmd_snapshot, "boot a function and save a snapshot at its ready point"},
    {"restore", cmd_restore, "restore a function instance from a snapshot and invoke it"},
    {"analyze", cmd_analyze, "characterise the working sets of snapshot restores (the paper's analyses)"},
#ifdef THAW_HAVE_SERVE /* see the Makefile: needs the lifecycle layer's implementation */
    {"serve", cmd_serve, "run the daemon: deploy and invoke functions over HTTP"},
#endif
    {"deploy", cmd_client, "deploy a function directory to the daemon"},
    {"invoke", cmd_client, "invoke a deployed function through the daemon"},
    {"ls", cmd_client, "list the daemon's functions"},
    {"rm", cmd_client, "remove a function from the daemon"},
    {"stats", cmd_client, "a deployed function's configuration, sizes and instances"},
    {"logs", cmd_client, "a deployed function's recent guest output"},
    {"pager", cmd_pager, "serve a VM's page faults from a snapshot (Firecracker's uffd handshake)"},
    {"load", cmd_load, "drive a running thaw serve: open loop, closed loop or trace replay; CSV and summary"},
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

int main(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name))
            return commands[i].fn(argc - 1, argv + 1);
    if (!strcmp(argv[1], "worker")) /* hidden: the process behind --worker */
        return cmd_worker(argc - 1, argv + 1);
    fprintf(stderr, "thaw: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
