/* thaw load: drives a running thaw serve (open loop, closed loop or trace replay),
 * writes the per-request CSV, prints the summary, optionally draws the figures.
 * Options only: the work is in host/load. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/cli/cli.h"
#include "host/load/load.h"
#include "host/util/file.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: thaw load --server URL [workload] [options]\n"
            "workloads:\n"
            "  --function NAME --rps R --duration S [--arrival exponential|uniform|equidistant]\n"
            "                         open loop: R requests/s for S seconds (default exponential)\n"
            "  --function NAME --concurrency C --duration S [--requests N]\n"
            "                         closed loop: C requests in flight for S seconds (or N requests)\n"
            "  --trace DIR --mapping FILE [--minute-seconds N] [--first-minute M] [--minutes K]\n"
            "                         [--within exponential|uniform|equidistant]\n"
            "                         replay an Azure Functions 2019 trace (see thaw trace-gen);\n"
            "                         one trace minute lasts N seconds (default 60)\n"
            "options:\n"
            "  --payload JSON | --payload-file F   request body (open and closed loop)\n"
            "  --csv OUT              per-request CSV (In-Vitro's record columns)\n"
            "  --plot DIR             draw figures from the CSV into DIR (--plot-format png|svg)\n"
            "  --seed N               seed of every random choice (default 1)\n"
            "  --timeout S            per-request timeout (default 60)\n"
            "  --max-inflight N       open loop: at most N requests in flight (default 256)\n"
            "  --token-file F         bearer token for the daemon\n"
            "  --phase NAME           the CSV's phase column (default run)\n"
            "  --quiet                no progress output\n");
}

static int fail(const char *msg)
{
    fprintf(stderr, "thaw load: %s\n", msg);
    return 1;
}

static int parse_double(const char *s, double *out)
{
    char *end;
    *out = strtod(s, &end);
    return *s && !*end ? 0 : -1;
}

int cmd_load(int argc, char **argv)
{
    enum {
        O_SERVER = 256, O_FUNCTION, O_RPS, O_DURATION, O_ARRIVAL, O_CONC, O_REQUESTS, O_TRACE, O_MAPPING,
        O_MINSEC, O_FIRST, O_MINUTES, O_WITHIN, O_PAYLOAD, O_PAYLOAD_FILE, O_CSV, O_PLOT, O_PLOT_FORMAT,
        O_SEED, O_TIMEOUT, O_INFLIGHT, O_TOKEN, O_PHASE, O_QUIET,
    };
    static const struct option opts[] = {
        {"server", required_argument, NULL, O_SERVER},     {"function", required_argument, NULL, O_FUNCTION},
        {"rps", required_argument, NULL, O_RPS},           {"duration", required_argument, NULL, O_DURATION},
        {"arrival", required_argument, NULL, O_ARRIVAL},   {"concurrency", required_argument, NULL, O_CONC},
        {"requests", required_argument, NULL, O_REQUESTS}, {"trace", required_argument, NULL, O_TRACE},
        {"mapping", required_argument, NULL, O_MAPPING},   {"minute-seconds", required_argument, NULL, O_MINSEC},
        {"first-minute", required_argument, NULL, O_FIRST}, {"minutes", required_argument, NULL, O_MINUTES},
        {"within", required_argument, NULL, O_WITHIN},     {"payload", required_argument, NULL, O_PAYLOAD},
        {"payload-file", required_argument, NULL, O_PAYLOAD_FILE}, {"csv", required_argument, NULL, O_CSV},
        {"plot", required_argument, NULL, O_PLOT},         {"plot-format", required_argument, NULL, O_PLOT_FORMAT},
        {"seed", required_argument, NULL, O_SEED},         {"timeout", required_argument, NULL, O_TIMEOUT},
        {"max-inflight", required_argument, NULL, O_INFLIGHT}, {"token-file", required_argument, NULL, O_TOKEN},
        {"phase", required_argument, NULL, O_PHASE},       {"quiet", no_argument, NULL, O_QUIET},
        {"help", no_argument, NULL, 'h'},                  {0, 0, 0, 0}};
    const char *server = NULL, *function = NULL, *trace = NULL, *mapping = NULL, *payload = NULL,
               *payload_file = NULL, *csv_path = NULL, *plot_dir = NULL, *plot_format = "png", *token_file = NULL,
               *phase = "run";
    double rps = 0, duration = 0, minute_s = 60, timeout = 60;
    long conc = 0, first_minute = 1, minutes = 0, inflight = 256;
    unsigned long long requests = 0, seed = 1;
    enum load_arrival arrival = LOAD_ARRIVAL_EXPONENTIAL, within = LOAD_ARRIVAL_EXPONENTIAL;
    bool quiet = false;
    struct thaw_error err = {{0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_SERVER: server = optarg; break;
        case O_FUNCTION: function = optarg; break;
        case O_RPS:
            if (parse_double(optarg, &rps) < 0)
                return fail("--rps takes a number");
            break;
        case O_DURATION:
            if (parse_double(optarg, &duration) < 0)
                return fail("--duration takes seconds");
            break;
        case O_ARRIVAL:
        case O_WITHIN:
            if (load_arrival_parse(optarg, c == O_ARRIVAL ? &arrival : &within, &err) < 0)
                return fail(err.msg);
            break;
        case O_CONC: conc = strtol(optarg, NULL, 10); break;
        case O_REQUESTS: requests = strtoull(optarg, NULL, 10); break;
        case O_TRACE: trace = optarg; break;
        case O_MAPPING: mapping = optarg; break;
        case O_MINSEC:
            if (parse_double(optarg, &minute_s) < 0)
                return fail("--minute-seconds takes seconds");
            break;
        case O_FIRST: first_minute = strtol(optarg, NULL, 10); break;
        case O_MINUTES: minutes = strtol(optarg, NULL, 10); break;
        case O_PAYLOAD: payload = optarg; break;
        case O_PAYLOAD_FILE: payload_file = optarg; break;
        case O_CSV: csv_path = optarg; break;
        case O_PLOT: plot_dir = optarg; break;
        case O_PLOT_FORMAT: plot_format = optarg; break;
        case O_SEED: seed = strtoull(optarg, NULL, 10); break;
        case O_TIMEOUT:
            if (parse_double(optarg, &timeout) < 0 || !(timeout > 0))
                return fail("--timeout takes positive seconds");
            break;
        case O_INFLIGHT: inflight = strtol(optarg, NULL, 10); break;
        case O_TOKEN: token_file = optarg; break;
        case O_PHASE: phase = optarg; break;
        case O_QUIET: quiet = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!server || optind != argc || (!trace && !function) || (trace && function)) {
        usage(stderr);
        return 2;
    }
    if (strncmp(server, "http://", 7) || strlen(server) > 400)
        return fail("--server must be an http:// URL");
    if (conc < 0 || conc > 4096 || inflight < 1 || inflight > 65536 || first_minute < 1 || minutes < 0)
        return fail("--concurrency must be 0..4096, --max-inflight 1..65536, --first-minute >= 1");
    if (plot_dir && !csv_path)
        return fail("--plot needs --csv (figures are drawn from the CSV)");

    char *token = NULL;
    if (token_file) {
        uint8_t *t;
        size_t n;
        if (read_file(token_file, 4096, &t, &n, &err) < 0)
            return fail(err.msg);
        token = (char *)t;
        token[strcspn(token, "\r\n")] = 0;
    }
    struct load_schedule sched = {0};
    int rc = 1;
    if (trace) {
        if (!mapping) {
            free(token);
            return fail("--trace needs --mapping FILE (trace_function,thaw_function[,payload_file])");
        }
        struct load_trace t;
        struct load_mapping m;
        if (load_trace_read_dir(&t, trace, &err) < 0) {
            free(token);
            return fail(err.msg);
        }
        if (load_mapping_read(&m, mapping, &err) < 0) {
            load_trace_free(&t);
            free(token);
            return fail(err.msg);
        }
        struct load_replay_config rc_cfg = {.minute_seconds = minute_s, .first_minute = (uint32_t)first_minute - 1,
                                            .minutes = (uint32_t)minutes, .within = within, .seed = seed};
        size_t unmapped;
        int r = load_schedule_replay(&sched, &t, &m, &rc_cfg, &unmapped, &err);
        if (r == 0)
            fprintf(stderr, "thaw load: replaying %zu invocations of %zu functions over %.1f s (%zu unmapped)\n",
                    sched.count, sched.target_count, (double)sched.span_us / 1e6, unmapped);
        load_trace_free(&t);
        load_mapping_free(&m);
        if (r < 0) {
            free(token);
            return fail(err.msg);
        }
    } else {
        struct load_target target = {0};
        snprintf(target.function, sizeof target.function, "%s", function);
        snprintf(target.trace_name, sizeof target.trace_name, "%s", function);
        uint8_t *file = NULL;
        if (payload_file) {
            size_t n;
            if (read_file(payload_file, 64u << 20, &file, &n, &err) < 0) {
                free(token);
                return fail(err.msg);
            }
            target.payload = (char *)file;
            target.payload_len = n;
        } else if (payload) {
            target.payload = (char *)payload;
            target.payload_len = strlen(payload);
        }
        int r;
        if (conc > 0) {
            if (!(duration > 0) && !requests) {
                free(file);
                free(token);
                return fail("a closed loop needs --duration or --requests");
            }
            /* One event holds the target; the runner loops on it. */
            r = load_schedule_open(&sched, LOAD_ARRIVAL_EQUIDISTANT, 1, 1, seed, &target, &err);
        } else {
            if (!(rps > 0) || !(duration > 0)) {
                free(file);
                free(token);
                return fail("an open loop needs --rps and --duration (or --concurrency for a closed loop)");
            }
            r = load_schedule_open(&sched, arrival, rps, duration, seed, &target, &err);
        }
        free(file);
        if (r < 0) {
            free(token);
            return fail(err.msg);
        }
    }

    FILE *csv = NULL;
    char tmp[4200];
    if (csv_path) {
        snprintf(tmp, sizeof tmp, "%s.tmp.%d", csv_path, (int)getpid());
        csv = fopen(tmp, "w");
        if (!csv) {
            perror(tmp);
            goto out;
        }
        load_csv_write_header(csv);
    }
    struct load_run_config cfg = {
        .server = server,
        .token = token,
        .phase = phase,
        .concurrency = (unsigned)conc,
        .duration_s = conc > 0 ? (duration > 0 ? duration : 1e9) : 0,
        .max_requests = requests,
        .max_inflight = (unsigned)inflight,
        .timeout_s = timeout,
        .progress_tty = isatty(STDERR_FILENO),
        .progress = quiet ? NULL : stderr,
    };
    struct load_record *rows;
    size_t n;
    double elapsed;
    if (load_run(&cfg, &sched, csv, &rows, &n, &elapsed, &err) < 0) {
        fprintf(stderr, "thaw load: %s\n", err.msg);
        goto out;
    }
    if (csv) {
        /* Complete or not at all: fsync, then rename over the name asked for. */
        if (fflush(csv) != 0 || fsync(fileno(csv)) != 0 || fclose(csv) != 0) {
            csv = NULL;
            perror(tmp);
            free(rows);
            goto out;
        }
        csv = NULL;
        if (rename(tmp, csv_path) != 0) {
            perror(csv_path);
            free(rows);
            goto out;
        }
    }
    struct load_summary sum;
    if (load_summarize(rows, n, elapsed, &sum, &err) < 0) {
        free(rows);
        fprintf(stderr, "thaw load: %s\n", err.msg);
        goto out;
    }
    free(rows);
    load_summary_print(stdout, &sum);
    if (plot_dir) {
        const char *files[] = {csv_path};
        double bucket = elapsed / 30 > 1 ? elapsed / 30 : 1; /* about 30 points over the run */
        if (load_plot(files, 1, plot_dir, plot_format, bucket, &err) < 0) {
            fprintf(stderr, "thaw load: %s\n", err.msg);
            goto out;
        }
        printf("figures in %s\n", plot_dir);
    }
    rc = 0;
out:
    if (csv) {
        fclose(csv);
        unlink(tmp);
    }
    load_schedule_free(&sched);
    free(token);
    return rc;
}
