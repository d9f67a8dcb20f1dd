/* thaw worker --fd N (hidden): the worker process of an instance run with --worker.
 * Started by the lifecycle layer itself, never by hand. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/cli/cli.h"
#include "host/sandbox/sandbox.h"

int cmd_worker(int argc, char **argv)
{
    char *end = NULL;
    long fd = argc == 3 && !strcmp(argv[1], "--fd") ? strtol(argv[2], &end, 10) : -1;
    if (fd < 3 || fd > 1024 || !end || *end) {
        fprintf(stderr, "thaw worker: started by `thaw run/restore --worker`, not by hand (usage: thaw worker --fd N)\n");
        return 2;
    }
    return sandbox_worker_main((int)fd);
}
