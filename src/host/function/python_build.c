#include "host/function/python_build.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host/function/build.h"
#include "host/util/file.h"
#include "host/util/tree.h"

#define PYTHON_HOST "/usr/bin/python3.11"

static int run_tool(const char *src_dir, const char *stage_dir, const char *log_path, uint64_t timeout_ns,
                    struct thaw_error *err)
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
    char *argv[] = {PYTHON_HOST, tool, (char *)src_dir, "--out", out, "--runtime", runtime, NULL};
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
    return run_tool(src_dir, stage_dir, log_path, timeout_ns, err);
}

static char *interpreter_path(void)
{
    char *build = thaw_build_dir(), *p = NULL;
    if (build && asprintf(&p, "%s/functions/python/thaw-python", build) < 0)
        p = NULL;
    free(build);
    return p;
}

int python_function_build(const char *src_dir, json_t *manifest, const char *stage_dir, const char *log_path,
                          uint64_t timeout_ns, struct thaw_error *err)
{
    char *interp = interpreter_path(), *program = NULL;
    int rc = -1;
    if (!interp || asprintf(&program, "%s/program", stage_dir) < 0) {
        thaw_fail(err, "out of memory");
        goto done;
    }
    if (tree_copy_file(interp, program, 0, err) < 0) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        thaw_fail(err, "the Python interpreter is missing (run make first): %s", why);
        goto done;
    }
    if (run_tool(src_dir, stage_dir, log_path, timeout_ns, err) < 0)
        goto done;
    json_object_set_new(manifest, "program", json_string("program"));
    json_object_set_new(manifest, "archive", json_string("files.cpio"));
    if (!json_is_array(json_object_get(manifest, "args")))
        json_object_set_new(manifest, "args", json_pack("[s]", "/thaw/runtime.py"));
    if (!json_is_object(json_object_get(manifest, "env")))
        json_object_set_new(manifest, "env", json_pack("{s:s, s:s}", "PYTHONHOME", "/usr",
                                                        "PYTHONDONTWRITEBYTECODE", "1"));
    rc = 0;
done:
    free(interp);
    free(program);
    return rc;
}

void python_build_inputs(void (*add)(void *ctx, const char *path), void *ctx)
{
    char *src_root = function_build_source_dir();
    char *interp = interpreter_path();
    static const char *const rel[] = {"tools/python/build_function.py", "tools/python/datagen.py",
                                      "src/runtime/python/runtime.py"};
    for (size_t i = 0; src_root && i < sizeof rel / sizeof rel[0]; i++) {
        char *p;
        if (asprintf(&p, "%s/%s", src_root, rel[i]) >= 0) {
            add(ctx, p);
            free(p);
        }
    }
    if (interp)
        add(ctx, interp);
    free(src_root);
    free(interp);
}
