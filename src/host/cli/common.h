/* Pieces shared by the subcommands: collecting payload arguments and printing. The
 * subcommands parse options and print; instances come from the lifecycle layer
 * (host/sandbox/sandbox.h). */
#ifndef THAW_CLI_COMMON_H
#define THAW_CLI_COMMON_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host/sandbox/sandbox.h"
#include "host/util/error.h"

struct payloads {
    char **data;
    size_t *len;
    bool *owned;
    size_t n;
};
int payloads_init(struct payloads *p, int argc);
int payloads_add_arg(struct payloads *p, char *json);
int payloads_add_file(struct payloads *p, const char *path, struct thaw_error *err);
void payloads_free(struct payloads *p);

/* Prints a response on stdout, newline-terminated. */
void print_response(const uint8_t *resp, size_t len);

/* Parses a --timeout value in seconds (decimal, > 0, at most a day) into ns. */
int parse_timeout(const char *s, uint64_t *ns);

/* Makes SIGINT/SIGTERM stop the instances so the command cleans up (sandbox.h).
 * Returns 0, or -1 after printing why. */
int cli_handle_signals(const char *cmd);
/* The command's exit status: rc, or 128 + the signal that interrupted it. */
int cli_exit_status(int rc);
/* One line on stderr about a failed invocation (number counts from 1). A deadline
 * reads "thaw run: hello: invocation timed out after 30.0 s". */
void print_invoke_failure(const char *cmd, struct sandbox *sb, size_t number, const char *msg);

/* --json: the instance's stats (sandbox_json.h), plus "invocations_us" (each round
 * trip) and, if a call failed, "failure" and "error", as one line on stdout (the
 * stream every subcommand's --json uses). Returns 0 or -1. */
int print_stats_json(struct sandbox *sb, const uint64_t *inv_ns, size_t n, const char *error);

#endif
