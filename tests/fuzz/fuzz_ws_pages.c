/* libFuzzer target for REAP restores from damaged working sets (needs /dev/kvm; without
 * it, it says SKIP and every input passes). At start it snapshots functions/hello with
 * build/thaw, records a working set, and takes the answer of a copy restore as the
 * reference (everything through sandbox.h, as every caller does). Each input is a list of edits to that clean ws.pages (lz4 blocks, as
 * recorded): a flags byte (bit 0: repair the CRC over header, index and block table
 * afterwards, as a careless tool would, so that edits reach the blocks), then 5-byte
 * records {u32 offset, u8 xor}. The damaged file is written next to the snapshot and a
 * reap restore invoked in this process: it must refuse (an error) or answer exactly as
 * the copy restore did. ws.stale is removed before each input, so every one is tried. Page checksums are never repaired: forging them is out of the
 * threat model (docs/snapshot-format.md). */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "host/pager/reap.h"
#include "host/sandbox/sandbox.h"
#include "host/util/le.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64], ws_path[128];
static uint8_t *clean, *work;
static size_t clean_len;
static uint8_t *ref;
static size_t ref_len;
static int usable;
static const char payload[] = "{\"name\": \"fuzz\"}";

static void quiet(void *ctx, const char *id, uint64_t invocation, enum sandbox_stream stream, const char *line,
                  size_t len)
{
    (void)ctx, (void)id, (void)invocation, (void)stream, (void)line, (void)len;
}

static int sh(const char *cmd)
{
    return system(cmd) == 0 ? 0 : -1;
}

/* One restore + invocation of the snapshot; 0 with a malloc'd answer, or -1. */
static int answer(enum mem_mode mode, uint8_t **resp, size_t *len)
{
    struct sandbox *sb;
    struct thaw_error err = {{0}};
    struct sandbox_options opt = {.log = quiet};
    *resp = NULL;
    if (sandbox_restore(&sb, dir, mode, &opt, &err) < 0)
        return -1;
    int rc = sandbox_invoke(sb, payload, sizeof payload - 1, resp, len, &err);
    sandbox_destroy(sb);
    return rc;
}

static void remove_dir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (dir[0])
        (void)!system(cmd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    if (access("/dev/kvm", R_OK | W_OK) != 0) {
        fprintf(stderr, "*** SKIP: /dev/kvm not usable: fuzz_ws_pages checks nothing ***\n");
        return 0;
    }
    strcpy(dir, "/tmp/thaw-fuzz-ws-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    atexit(remove_dir); /* libFuzzer ends with exit(): the snapshot goes with it */
    char cmd[512];
    const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
    snprintf(cmd, sizeof cmd, "rmdir %s && %s/thaw snapshot functions/hello -o %s >/dev/null && "
                              "%s/thaw restore %s --mem reap --payload '{}' >/dev/null 2>&1",
             dir, build, dir, build, dir);
    if (sh(cmd) < 0)
        abort();
    snprintf(ws_path, sizeof ws_path, "%s/ws.pages", dir);
    FILE *f = fopen(ws_path, "rb");
    if (!f)
        abort();
    fseek(f, 0, SEEK_END);
    clean_len = (size_t)ftell(f);
    rewind(f);
    clean = malloc(clean_len);
    work = malloc(clean_len);
    if (!clean || !work || fread(clean, 1, clean_len, f) != clean_len)
        abort();
    fclose(f);
    if (answer(MEM_COPY, &ref, &ref_len) < 0)
        abort();
    usable = 1;
    return 0;
}

static void put_ws(const uint8_t *b, size_t n)
{
    FILE *f = fopen(ws_path, "wb");
    if (!f || fwrite(b, 1, n, f) != n || fclose(f) != 0)
        abort();
    char stale[160];
    snprintf(stale, sizeof stale, "%s/ws.stale", dir);
    unlink(stale);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!usable || size == 0)
        return 0;
    memcpy(work, clean, clean_len);
    for (size_t i = 1; i + 5 <= size && i < 1 + 5 * 64; i += 5) {
        uint32_t off = get_le32(data + i) % (uint32_t)clean_len;
        work[off] ^= data[i + 4] ? data[i + 4] : 1;
    }
    if (data[0] & 1) { /* repair the CRC over the index and block table the header claims */
        uint64_t count = get_le64(work + 24), blocks = get_le64(work + 120);
        if (count <= (clean_len - 4096) / REAP_INDEX_ENTRY &&
            blocks <= (clean_len - 4096 - count * REAP_INDEX_ENTRY) / REAP_BLOCK_ENTRY) {
            put_le32(work + 100, 0);
            uint32_t crc = (uint32_t)crc32_z(0, work, REAP_WS_HEADER_BYTES);
            put_le32(work + 100,
                     (uint32_t)crc32_z(crc, work + 4096, count * REAP_INDEX_ENTRY + blocks * REAP_BLOCK_ENTRY));
        }
    }
    put_ws(work, clean_len);
    uint8_t *resp;
    size_t len;
    if (answer(MEM_REAP, &resp, &len) == 0 && (len != ref_len || memcmp(resp, ref, len) != 0)) {
        fprintf(stderr, "wrong answer from a damaged working set: %.*s (want %.*s)\n", (int)len, resp,
                (int)ref_len, ref);
        abort();
    }
    free(resp);
    put_ws(clean, clean_len); /* the next input starts from the clean file again */
    return 0;
}
