#include "host/function/python_build.h"

#include <stdio.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "host/function/build.h"
#include "host/util/file.h"
#include "host/util/tree.h"

#define PYTHON_HOST "/usr/bin/python3.11"

/* image_cache: the directory of shared Debian python3.11 images for a Python function;
 * NULL for a native function's data files (app/ only). */
static int run_tool(const char *src_dir, const char *stage_dir, const char *image_cache, const char *log_path,
                    uint64_t timeout_ns, struct thaw_error *err)
{
    char *src_root = function_build_source_dir();
    char *tool = NULL, *out = NULL, *runtime = NULL;
    int rc = -1;
    if (!src_root || asprintf(&tool, "%s/tools/python/build_function.py", src_root) < 0 ||
        asprintf(&runtime, "%s/src/runtime/python/runtime.py", src_root) < 0 ||
        asprintf(&out, "%s/files.cpio", stage_dir) < 0) {
        thaw_fail(err, "out of memory");
        goto done;
    }
    char *argv[] = {PYTHON_HOST, tool, (char *)src_dir, "--out", out, "--runtime", runtime,
                    image_cache ? "--image-cache" : NULL, (char *)image_cache, NULL};
    rc = function_build_exec(argv, NULL, log_path, timeout_ns, err);
    if (rc == 0) { /* the tool's staging tree is not part of the bundle */
        char *root = NULL;
        if (asprintf(&root, "%s/root", stage_dir) >= 0)
            tree_remove(root, NULL);
        free(root);
    }
done:
    free(src_root);
    free(tool);
    free(out);
    free(runtime);
    return rc;
}

int python_pack_app_archive(const char *src_dir, const char *stage_dir, const char *log_path,
                            uint64_t timeout_ns, struct thaw_error *err)
{
    return run_tool(src_dir, stage_dir, NULL, log_path, timeout_ns, err);
}

/* Where the shared Debian python3.11 images live: <build>/functions/python3.11-images
 * (bundles name them "build:python3.11-images/<image>"). */
static char *image_cache_dir(void)
{
    char *build = thaw_build_dir(), *p = NULL;
    if (build && asprintf(&p, "%s/functions/" PYTHON_IMAGE_DIR, build) < 0)
        p = NULL;
    free(build);
    return p;
}

/* Debian's python3.11: the program is a copy of the host's interpreter, the archive
 * holds /app and the runtime, and the shared image the rest (build_function.py). */
static int debian_build(const char *src_dir, json_t *manifest, const char *stage_dir, const char *log_path,
                        uint64_t timeout_ns, struct thaw_error *err)
{
    char *cache = image_cache_dir(), *program = NULL, *summary = NULL;
    uint8_t *text = NULL;
    size_t len;
    json_t *s = NULL;
    int rc = -1;
    if (!cache || asprintf(&program, "%s/python3.11", stage_dir) < 0 ||
        asprintf(&summary, "%s/python.json", stage_dir) < 0) {
        thaw_fail(err, "out of memory");
        goto done;
    }
    /* Named python3.11, so argv[0] leads the interpreter to /usr/bin/python3.11 (PATH). */
    if (tree_copy_file(PYTHON_HOST, program, 0, err) < 0) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        thaw_fail(err, "Debian's python3.11 is missing (apt-get install -y --no-install-recommends python3.11): %s",
                  why);
        goto done;
    }
    if (run_tool(src_dir, stage_dir, cache, log_path, timeout_ns, err) < 0 ||
        read_file(summary, 1u << 20, &text, &len, err) < 0)
        goto done;
    s = json_loadb((const char *)text, len, 0, NULL);
    const char *image = json_string_value(json_object_get(s, "image"));
    char ref[512];
    if (!image || strchr(image, '/') ||
        snprintf(ref, sizeof ref, "build:" PYTHON_IMAGE_DIR "/%s", image) >= (int)sizeof ref) {
        thaw_fail(err, "%s: no image named", summary);
        goto done;
    }
    json_object_set_new(manifest, "program", json_string("python3.11"));
    json_object_set_new(manifest, "archive", json_string("files.cpio"));
    json_object_set_new(manifest, "rootfs", json_string(ref));
    if (!json_is_string(json_object_get(manifest, "cwd")))
        json_object_set_new(manifest, "cwd", json_string("/app"));
    /* -I: isolated (no user site, no PYTHON* variables, no script dir on sys.path: the
     * runtime adds the working directory); -B: nothing to write bytecode to. */
    if (!json_is_array(json_object_get(manifest, "args")))
        json_object_set_new(manifest, "args", json_pack("[s,s,s]", "-I", "-B", "/thaw/runtime.py"));
    if (!json_is_object(json_object_get(manifest, "env")))
        json_object_set_new(manifest, "env", json_pack("{s:s, s:s, s:s}", "PATH", "/usr/bin:/bin", "HOME", "/",
                                                        "LC_ALL", "C.UTF-8"));
    rc = 0;
done:
    json_decref(s);
    free(text);
    free(cache);
    free(program);
    free(summary);
    return rc;
}

int python_function_build(const char *src_dir, json_t *manifest, const char *stage_dir, const char *log_path,
                          uint64_t timeout_ns, struct thaw_error *err)
{
    /* One Python runtime: the static interpreter of earlier versions is gone. */
    json_t *interp = json_object_get(manifest, "interpreter");
    if (interp && (!json_is_string(interp) || strcmp(json_string_value(interp), "debian")))
        return thaw_fail(err, "%s: \"interpreter\" must be \"debian\" (Debian's python3.11, the only Python "
                              "runtime; the static interpreter was removed): drop the field",
                         src_dir);
    return debian_build(src_dir, manifest, stage_dir, log_path, timeout_ns, err);
}

void python_build_inputs(void (*add)(void *ctx, const char *path), void *ctx)
{
    char *src_root = function_build_source_dir();
    static const char *const rel[] = {"tools/python/build_function.py", "tools/python/datagen.py",
                                      "src/runtime/python/runtime.py", "tools/rootfs/build_rootfs.py"};
    for (size_t i = 0; src_root && i < sizeof rel / sizeof rel[0]; i++) {
        char *p;
        if (asprintf(&p, "%s/%s", src_root, rel[i]) >= 0) {
            add(ctx, p);
            free(p);
        }
    }
    /* Debian's interpreter and the installed packages (an apt-get changes this file):
     * the image a function names follows them. */
    add(ctx, PYTHON_HOST);
    add(ctx, "/var/lib/dpkg/status");
    free(src_root);
}
