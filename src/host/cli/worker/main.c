/* build/thaw-worker: the worker process behind --worker, the same code as the hidden
 * `thaw worker` subcommand in a binary linked only with what a worker needs. Loading
 * build/thaw's 37 shared libraries (libcurl and libmicrohttpd bring most) took most of
 * a worker's start-up on the measured host; this one loads 7. */
#include <string.h>

#include "host/cli/cli.h"

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "worker")) /* invoked as `... worker --fd N` */
        return cmd_worker(argc - 1, argv + 1);
    return cmd_worker(argc, argv);
}
