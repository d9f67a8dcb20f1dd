/* thaw restore <snapdir> --mem copy|lazy|uffd|reap|share --payload JSON ... [--timings] [--json]
 * Restores an instance from a snapshot and invokes it. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/cli/cli.h"
#include "host/cli/common.h"
#include "host/pager/huge_chunks.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: thaw restore <snapshot-dir> [--mem copy|lazy|uffd|reap|share] [--payload JSON]... [--payload-file F]...\n"
            "                    [--drop-cache] [--pager-socket PATH] [--timeout S] [--worker] [--timings] [--json]\n"
            "Restores a function instance from a snapshot and sends it each payload.\n"
            "  --mem MODE     copy: read the memory file first; lazy: map it, fault pages on first\n"
            "                 touch; uffd: userfaultfd handler serves each page; reap: the first\n"
            "                 restore records the working set, later ones prefetch it (default uffd);\n"
            "                 share: lazy with the recorded working set mapped in first, one copy\n"
            "                 of every unwritten page for all instances on the host\n"
            "  --drop-cache   drop the snapshot files from the page cache first (cold start)\n"
            "  --pager-socket PATH  uffd/reap: hand guest memory to an external `thaw pager`\n"
            "                 listening on PATH (Firecracker's handshake) instead of a thread\n"
            "  --timeout S    each invocation's deadline in seconds (default 30); on expiry the\n"
            "                 instance is torn down\n"
            "  --worker       run the microVM in its own jailed worker process (docs/jail.md)\n"
            "  --json         print the instance's stats as one JSON line on stdout, after the\n"
            "                 responses (docs/json.md)\n");
}

static void print_timings(const struct sandbox_stats *st, const uint64_t *inv_ns, size_t n)
{
    fprintf(stderr,
            "restore (%s): state load %.3f ms, memory set-up %.3f ms, VM creation %.3f ms, image %.3f ms, total %.3f ms\n",
            mem_mode_name(st->mode), st->state_load_ns / 1e6, st->memory_setup_ns / 1e6, st->vm_create_ns / 1e6,
            st->image_restore_ns / 1e6, st->restore_ns / 1e6);
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "invocation %zu: %.3f ms\n", i + 1, inv_ns[i] / 1e6);
    fprintf(stderr, "pages served by uffd: %llu (+%llu zero), host page faults: %llu, resident: %llu KiB\n",
            (unsigned long long)st->pages_served, (unsigned long long)st->zero_pages,
            (unsigned long long)st->host_page_faults, (unsigned long long)st->rss_kb);
    if (st->reap_prefetched)
        fprintf(stderr, "REAP prefetch: %llu pages in %llu regions, %.2f MiB read in %.3f ms (%.0f MB/s), "
                        "installed in %.3f ms, %llu pages missed\n",
                (unsigned long long)st->ws_pages, (unsigned long long)st->ws_regions, st->ws_bytes / 1048576.0,
                st->ws_read_ns / 1e6, st->ws_read_ns ? st->ws_bytes / (st->ws_read_ns / 1e9) / 1e6 : 0.0,
                st->ws_install_ns / 1e6, (unsigned long long)st->reap_misses);
    if (st->ws_huge_chunks)
        fprintf(stderr, "REAP huge chunks: %llu of 2 MiB read whole (%llu working-set pages, %llu data pages read) "
                        "in %.3f ms\n",
                (unsigned long long)st->ws_huge_chunks, (unsigned long long)st->ws_huge_ws_pages,
                (unsigned long long)st->ws_huge_data_pages, st->ws_huge_ns / 1e6);
    if (st->reap_prefetched && st->ws_huge_policy == HUGE_AUTO) {
        const struct reap_costs *c = &st->host_costs;
        if (!reap_costs_measured(c))
            fprintf(stderr, "REAP huge chunks: auto, none taken: this host's costs are not measured yet "
                            "(this restore measures them)\n");
        else {
            char fault[48];
            if (c->chunk_ns == UINT64_MAX)
                snprintf(fault, sizeof fault, "none: no huge pages here");
            else
                snprintf(fault, sizeof fault, "%.2f ms", c->chunk_ns / 1e6);
            fprintf(stderr, "REAP huge chunks: auto, %llu taken, weighed with this host's costs from %llu restores "
                            "(a page's first touch %.2f us, its install %.2f us, 4 KiB read %.2f us; "
                            "a huge page's fault %s)\n",
                    (unsigned long long)st->ws_huge_chunks, (unsigned long long)c->samples, c->touch_ns / 1e3,
                    c->install_ns / 1e3, c->read_ns / 1e3, fault);
        }
    }
    if (st->kvm_first_ok && st->invocations)
        fprintf(stderr, "first invocation inside KVM: %llu exits, %llu shadow-MMU faults, %llu emulated instructions\n",
                (unsigned long long)st->kvm_first_exits, (unsigned long long)st->kvm_first_faults,
                (unsigned long long)st->kvm_first_emulated);
    if (st->prefault_pages || st->prefault_note[0])
        fprintf(stderr, "pre-fault vCPU: %llu of %llu pages touched in %.3f ms (set-up %.3f ms)%s%s\n",
                (unsigned long long)st->prefault_touched, (unsigned long long)st->prefault_pages, st->prefault_ns / 1e6,
                st->prefault_setup_ns / 1e6, st->prefault_note[0] ? ": " : "", st->prefault_note);
    if (st->rootfs_bytes)
        fprintf(stderr, "rootfs image: %.1f MiB mapped, %llu written pages copied back (rootfs.cow: %.2f MiB read) in "
                        "%.3f ms, %llu file pages read ahead (rootfs.ws: %.0f KiB read) in %.3f ms\n",
                st->rootfs_bytes / 1048576.0, (unsigned long long)st->rootfs_cow_pages,
                st->rootfs_cow_bytes / 1048576.0, st->rootfs_cow_ns / 1e6, (unsigned long long)st->rootfs_ws_pages,
                st->rootfs_ws_bytes / 1024.0, st->rootfs_ws_ns / 1e6);
    if (st->reap_recorded)
        fprintf(stderr, "REAP: recorded the working set of this restore\n");
}

int cmd_restore(int argc, char **argv)
{
    static const struct option opts[] = {
        {"mem", required_argument, 0, 'M'},    {"payload", required_argument, 0, 'p'},
        {"payload-file", required_argument, 0, 'f'}, {"timings", no_argument, 0, 't'},
        {"json", no_argument, 0, 'j'},         {"drop-cache", no_argument, 0, 'd'},
        {"pager-socket", required_argument, 0, 'P'},
        {"timeout", required_argument, 0, 'T'},
        {"worker", no_argument, 0, 'w'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0},
    };
    struct payloads pl;
    struct sandbox_options opt = {0};
    enum mem_mode mode = MEM_UFFD;
    bool timings = false, json = false;
    int rc = 1, c;
    struct thaw_error err = {{0}};
    if (payloads_init(&pl, argc) < 0)
        return 1;
    while ((c = getopt_long(argc, argv, "M:p:f:tjdP:T:hw", opts, NULL)) != -1) {
        switch (c) {
        case 'M':
            if (mem_mode_parse(optarg, &mode) < 0) {
                fprintf(stderr, "thaw restore: unknown memory mode '%s' (copy, lazy, uffd or reap)\n", optarg);
                rc = 2;
                goto out;
            }
            break;
        case 'p': payloads_add_arg(&pl, optarg); break;
        case 'f':
            if (payloads_add_file(&pl, optarg, &err) < 0) {
                fprintf(stderr, "thaw restore: %s\n", err.msg);
                goto out;
            }
            break;
        case 't': timings = true; break;
        case 'j': json = true; break;
        case 'd': opt.drop_cache = true; break;
        case 'P': opt.pager_socket = optarg; break;
        case 'T':
            if (parse_timeout(optarg, &opt.invoke_timeout_ns) < 0) {
                fprintf(stderr, "thaw restore: --timeout wants seconds above 0 and at most a day, not '%s'\n",
                        optarg);
                rc = 2;
                goto out;
            }
            break;
        case 'w': opt.worker = true; break;
        case 'h': usage(stdout); rc = 0; goto out;
        default: usage(stderr); rc = 2; goto out;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        rc = 2;
        goto out;
    }
    struct sandbox *sb;
    if (cli_handle_signals("restore") < 0)
        goto out;
    if (sandbox_restore(&sb, argv[optind], mode, &opt, &err) < 0) {
        fprintf(stderr, "thaw restore: %s\n", err.msg);
        goto out;
    }
    struct sandbox_stats st;
    uint64_t *inv_ns = calloc(pl.n + 1, sizeof *inv_ns);
    size_t done = 0;
    const char *failed = NULL;
    rc = inv_ns ? 0 : 1;
    for (size_t i = 0; i < pl.n && inv_ns; i++) {
        uint8_t *resp;
        size_t len;
        if (sandbox_invoke(sb, pl.data[i], pl.len[i], &resp, &len, &err) < 0) {
            print_invoke_failure("restore", sb, i + 1, err.msg);
            failed = err.msg;
            rc = 1;
            break;
        }
        (void)sandbox_stats(sb, &st, &(struct thaw_error){{0}});
        inv_ns[done++] = st.last_invoke_ns;
        print_response(resp, len);
        free(resp);
    }
    if (sandbox_stats(sb, &st, &err) < 0) {
        fprintf(stderr, "thaw restore: %s\n", err.msg);
        rc = 1;
    } else {
        if (st.reap_note[0])
            fprintf(stderr, "thaw restore: REAP: %s\n", st.reap_note);
        if (json) {
            if (print_stats_json(sb, inv_ns, done, failed) < 0)
                rc = 1;
        } else if (timings) {
            print_timings(&st, inv_ns, done);
        }
    }
    free(inv_ns);
    sandbox_destroy(sb);
out:
    payloads_free(&pl);
    return cli_exit_status(rc);
}
