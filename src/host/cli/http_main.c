/* thaw-http: the commands of thaw that speak HTTP, with the libraries for it (libcurl,
 * libmicrohttpd, libarchive). Started by thaw's exec (main.c), as `thaw <command> ...`;
 * `thaw --help` lists them with the rest. */
#include <stdio.h>
#include <string.h>

#include "host/cli/cli.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
} commands[] = {
#ifdef THAW_HAVE_SERVE
    {"serve", cmd_serve},
#endif
    {"deploy", cmd_client}, {"invoke", cmd_client}, {"ls", cmd_client}, {"rm", cmd_client},
    {"stats", cmd_client},  {"logs", cmd_client},   {"load", cmd_load},
    {"worker", cmd_worker}, /* hidden: a daemon's worker when thaw-worker is missing */
};

int main(int argc, char **argv)
{
    if (argc >= 2)
        for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
            if (!strcmp(argv[1], commands[i].name))
                return commands[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "thaw-http: runs thaw's HTTP commands for thaw (see `thaw --help`), not '%s'\n",
            argc >= 2 ? argv[1] : "");
    return 2;
}
