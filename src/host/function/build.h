/* Building a function directory (`thaw build`): turns any function source directory
 * (function.json plus main.c or handler.py and data files) into a self-contained
 * bundle directory that bundle_load() can load without "build:" paths and without a
 * Makefile rule:
 *
 *   out/function.json   the manifest, its paths rewritten to the files below
 *   out/program         the static ELF the microVM runs
 *   out/files.cpio      the root-filesystem archive (Python functions, data files)
 *   out/build.log       what the compiler or the Python build printed
 *   out/.stamp          a hash of every input: a build is skipped while it matches
 *
 * C functions: every top-level *.c is compiled with `cc -static` (or musl-gcc when
 * function.json says "libc": "musl") against sdk/thaw_function.h, linked with the
 * "link" libraries of function.json ("-lpng16", ...). A directory without C sources
 * whose program is "build:X" takes X from thaw's own build (what `make` made).
 * Python functions: python_build.h.
 *
 * The build runs the compiler and the Python tool as child processes with a deadline;
 * the Python build imports the handler on the host, so a deployer is trusted with
 * code execution on the build host (docs/threat-model.md). */
#ifndef THAW_HOST_FUNCTION_BUILD_H
#define THAW_HOST_FUNCTION_BUILD_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "host/util/error.h"

#define FUNCTION_BUILD_TIMEOUT_NS (600ull * 1000000000ull)

struct function_build_result {
    bool rebuilt;            /* false: out was up to date */
    uint64_t program_bytes;
    uint64_t archive_bytes;
    uint64_t build_ns;
};

/* Builds src_dir into out_dir (replaced as a whole: readers see the old or the new
 * bundle). Skips the work when out_dir/.stamp matches the inputs, unless force. */
int function_build(const char *src_dir, const char *out_dir, bool force, struct function_build_result *res,
                   struct thaw_error *err);

/* src_dir/function.json parsed: read beneath src_dir, never through a symbolic link (like
 * every file it names). Only its JSON syntax is checked here (the build checks its keys);
 * errors say "function.json", not src_dir. A new reference; NULL on failure. */
json_t *function_manifest_read(const char *src_dir, struct thaw_error *err);

/* function_build with src_dir's function.json as the caller already read it
 * (function_manifest_read): a deploy reads it once, for its "serve" settings and the
 * build. manifest is left as it is. */
int function_build_manifest(const char *src_dir, json_t *manifest, const char *out_dir, bool force,
                            struct function_build_result *res, struct thaw_error *err);

/* Where `thaw run/snapshot/build` put a directory's bundle when no --out is given:
 * <thaw build dir>/bundles/<name from function.json>. malloc'd. */
char *function_build_default_out(const char *src_dir, struct thaw_error *err);

/* Builds src_dir into its default place and returns that place (malloc'd): what
 * `thaw run` and `thaw snapshot` do before booting. A directory that already is a
 * built bundle (it has .stamp) is returned as it is. */
char *function_build_default(const char *src_dir, struct thaw_error *err);

/* Runs argv (argv[0] looked up in PATH) with stdout and stderr appended to log_path,
 * in cwd (or here if NULL), killing it after timeout_ns. On failure err holds the
 * command and the last lines of its output. Shared with python_build.c. */
int function_build_exec(char *const argv[], const char *cwd, const char *log_path, uint64_t timeout_ns,
                        struct thaw_error *err);

/* thaw's source tree (sdk/, tools/, src/runtime/): $THAW_SOURCE_DIR, else the parent
 * of the build directory. malloc'd. */
char *function_build_source_dir(void);

#endif
