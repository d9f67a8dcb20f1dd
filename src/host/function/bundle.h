/* Function bundles: a directory with function.json (name, runtime, program, args, env,
 * archive, rootfs, files, memory_mib,
 * timeout_s), the files it names, and sample payloads. Loading a
 * bundle checks the manifest (hostile input) and prepares everything a microVM needs. */
#ifndef THAW_HOST_BUNDLE_H
#define THAW_HOST_BUNDLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "host/util/error.h"
#include "host/util/file.h"

#define BUNDLE_NAME_MAX 63
#define BUNDLE_TIMEOUT_MAX_S 3600
/* Everything a bundle ships into the guest (program, archive, files) together: checked
 * against each file's size before it is read or copied, so a huge (even sparse) file
 * costs nothing to refuse. */
#define BUNDLE_TOTAL_MAX (1024ull << 20)

struct bundle {
    char name[BUNDLE_NAME_MAX + 1];
    char runtime[16];
    char *dir;            /* the bundle directory */
    char *program_path;   /* resolved host path of the program ELF */
    char **argv;          /* argv[0] = program basename, NULL-terminated */
    size_t argc;
    char **envp;          /* "K=V", NULL-terminated */
    size_t envc;
    uint64_t memory_mib;
    uint64_t max_request; /* bytes: "max_request_kib", else THAW_MAX_REQUEST_DEFAULT */
    uint64_t timeout_ns;  /* "timeout_s": each invocation's deadline; 0: not given */
    /* Loaded contents. */
    uint8_t *program;
    size_t program_size;
    uint8_t *archive;     /* the manifest's archive followed by an archive of "files" */
    size_t archive_size;
    char *rootfs_path;    /* "rootfs": root-filesystem image (thaw/rootfs.h), mapped not read; or NULL */
    char *cwd;            /* "cwd": the program's working directory in the guest, or NULL ("/") */
};

/* True for names of 1-63 characters from [a-z0-9_-], starting with a letter or digit. */
bool bundle_name_valid(const char *name);

/* Loads dir/function.json and the program and files it names. build_dir resolves
 * "build:X" paths to build_dir/functions/X. */
int bundle_load(struct bundle *b, const char *dir, const char *build_dir, struct thaw_error *err);
void bundle_free(struct bundle *b);


#endif
