/* thaw serve [--listen HOST:PORT] [--state-dir DIR] [--token-file F] ...
 * Runs the daemon (serve/serve.h) until SIGINT or SIGTERM. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "host/cli/cli.h"
#include "host/serve/serve.h"

static void serve_usage(FILE *out)
{
    fprintf(out,
            "usage: thaw serve [--listen HOST:PORT] [--state-dir DIR] [--token-file FILE] [--token-for-invoke]\n"
            "                  [--max-body BYTES] [--max-upload BYTES] [--max-unpacked BYTES]\n"
            "                  [--worker] [--ready-file FILE] [--drain-timeout MS] [--spare-workers N]\n"
            "                  [--pager-socket PATH]\n"
            "Serves the HTTP API (docs/serve.md): deploy functions, invoke them by name.\n"
            "  --listen        address to listen on (default 127.0.0.1:8080; port 0: any free port)\n"
            "  --state-dir     where functions, snapshots and working sets live (default /var/lib/thaw)\n"
            "  --token-file    management (deploy, patch, delete) needs \"Authorization: Bearer <token>\"\n"
            "  --token-for-invoke  invoke and logs need the token too\n"
            "  --worker        run every instance in a jailed worker process (the default)\n"
            "  --in-process    run instances inside the daemon (no isolation; for debugging)\n"
            "  --ready-file    write the server's URL there once it listens\n"
            "  --spare-workers N  worker processes (in-process: VMs) kept started ahead, each with its\n"
            "                  VM made, so a cold start takes one (default 2, 0-32; 0: none)\n"
            "  --pager-socket PATH  REAP memory served by the host's memory manager listening there\n"
            "                  (`thaw pager --serve --snapshots STATE/functions`) instead of a pager thread\n"
            "                  per instance in the daemon\n");
}

static int parse_size(const char *s, uint64_t *out)
{
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s)
        return -1;
    if (*end == 'k' || *end == 'K')
        v <<= 10, end++;
    else if (*end == 'm' || *end == 'M')
        v <<= 20, end++;
    else if (*end == 'g' || *end == 'G')
        v <<= 30, end++;
    if (*end || v == 0)
        return -1;
    *out = v;
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, 0, 'l'},       {"state-dir", required_argument, 0, 's'},
        {"token-file", required_argument, 0, 't'},   {"token-for-invoke", no_argument, 0, 'I'},
        {"max-body", required_argument, 0, 'b'},     {"max-upload", required_argument, 0, 'u'},
        {"max-unpacked", required_argument, 0, 'U'}, {"worker", no_argument, 0, 'w'}, {"in-process", no_argument, 0, 'P'},
        {"ready-file", required_argument, 0, 'r'},   {"drain-timeout", required_argument, 0, 'd'},
        {"spare-workers", required_argument, 0, 'S'}, {"pager-socket", required_argument, 0, 'p'},
        {"help", no_argument, 0, 'h'},               {0, 0, 0, 0},
    };
    struct serve_options o;
    serve_options_default(&o);
    int c;
    while ((c = getopt_long(argc, argv, "l:s:t:Ib:u:U:wPr:d:S:p:h", opts, NULL)) != -1) {
        uint64_t *size = NULL;
        switch (c) {
        case 'l': o.listen = optarg; break;
        case 's': o.state_dir = optarg; break;
        case 't': o.token_file = optarg; break;
        case 'I': o.token_for_invoke = true; break;
        case 'b': size = &o.max_body_bytes; break;
        case 'u': size = &o.max_upload_bytes; break;
        case 'U': size = &o.max_unpacked_bytes; break;
        case 'w': o.worker = true; break;
        case 'P': o.worker = false; break;
        case 'r': o.ready_file = optarg; break;
        case 'p': o.pager_socket = optarg; break;
        case 'd': o.drain_timeout_ms = strtoull(optarg, NULL, 10); break;
        case 'S': {
            char *end;
            unsigned long v = strtoul(optarg, &end, 10);
            if (end == optarg || *end || v > 32) {
                fprintf(stderr, "thaw serve: --spare-workers takes a number from 0 to 32\n");
                return 2;
            }
            o.spare_workers = (unsigned)v;
            break;
        }
        case 'h': serve_usage(stdout); return 0;
        default: serve_usage(stderr); return 2;
        }
        if (size && parse_size(optarg, size) < 0) {
            fprintf(stderr, "thaw serve: bad size \"%s\" (a number, optionally with k, M or G)\n", optarg);
            return 2;
        }
    }
    if (optind != argc) {
        serve_usage(stderr);
        return 2;
    }
    if (o.token_for_invoke && !o.token_file) {
        fprintf(stderr, "thaw serve: --token-for-invoke needs --token-file\n");
        return 2;
    }
    struct thaw_error err = {{0}};
    if (serve_run(&o, &err) < 0) {
        fprintf(stderr, "thaw serve: %s\n", err.msg);
        return 1;
    }
    return 0;
}
