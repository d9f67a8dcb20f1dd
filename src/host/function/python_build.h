/* The Python side of `thaw build`, behind one function so the Python runtime can be
 * swapped. tools/python/build_function.py runs as a child process with Debian's
 * python3.11. Functions run on Debian's unmodified /usr/bin/python3.11 with its whole
 * stdlib and the Debian packages function.json names in "packages", from a
 * root-filesystem image shared by every function with the same packages
 * (build/functions/python3.11-images/, built once, keyed by the package versions); the
 * guest starts in /app. */
#ifndef THAW_HOST_FUNCTION_PYTHON_BUILD_H
#define THAW_HOST_FUNCTION_PYTHON_BUILD_H

#include <jansson.h>
#include <stdint.h>

#include "host/util/error.h"

#define PYTHON_IMAGE_DIR "python3.11-images"

/* Builds the Python function in src_dir into stage_dir: writes the interpreter and
 * stage_dir/files.cpio, and sets the manifest's "program", "args", "env" (defaults
 * unless the function sets them), "archive", "rootfs" and "cwd".
 * Output of the tools goes to log_path. */
int python_function_build(const char *src_dir, json_t *manifest, const char *stage_dir, const char *log_path,
                          uint64_t timeout_ns, struct thaw_error *err);

/* Packs a function's data files (and what its gen_data.py writes) into
 * stage_dir/files.cpio under /app: what C functions with data files need. */
int python_pack_app_archive(const char *src_dir, const char *stage_dir, const char *log_path,
                            uint64_t timeout_ns, struct thaw_error *err);

/* Evicts the runtime images nothing uses from <build>/functions/python3.11-images/
 * (`thaw build --gc`): an image is kept if a bundle in <build>/bundles names it, or a
 * bundle (function.json) or snapshot (its rootfs descriptor) under one of keep_roots
 * does (a daemon's state directory, say: its deploys and snapshots name images too),
 * or if it is less than a minute old (a build may not have written its bundle yet).
 * Runs under the builds' lock. A snapshot or bundle elsewhere whose image was evicted
 * refuses to load, naming the image (rebuild it). */
struct python_gc_result {
    unsigned removed, kept;
    uint64_t removed_bytes; /* allocated on disk */
};
int python_images_gc(const char *const *keep_roots, size_t nroots, struct python_gc_result *res,
                     struct thaw_error *err);

/* Calls add(ctx, path) for every host file outside the function whose change must
 * rebuild a Python function (the tools, the runtime, Debian's interpreter and package database). */
void python_build_inputs(void (*add)(void *ctx, const char *path), void *ctx);

#endif
