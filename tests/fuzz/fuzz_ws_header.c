/* libFuzzer target for REAP's working-set files without KVM: each input is decoded as
 * the head of a ws.pages file (header, then index), as a ws.trace file and as a ws.gens
 * file (its CRC repaired half the time too). Half the
 * time the ws.pages header/index CRC is repaired first, so that mutations reach the
 * size and index checks. Whatever is accepted must keep the decoder's promises: sizes
 * consistent with the file, index entries page-aligned, ascending, inside guest memory. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "host/pager/reap.h"
#include "host/util/le.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MEM_SIZE (256ull << 20) /* the seed's guest memory size */
#define PAGE 4096u

static void check_error(const struct thaw_error *err)
{
    if (err->msg[0] == 0 || strchr(err->msg, '\n'))
        abort(); /* every error is one non-empty line */
}

static void check_ws(const uint8_t *buf, size_t size)
{
    if (size < REAP_WS_HEADER_BYTES)
        return;
    /* The file size the header claims, so the index checks are reachable. */
    uint64_t file_size = get_le64(buf + 40) + get_le64(buf + 24) * PAGE;
    struct reap_ws_header h;
    struct thaw_error err;
    err.msg[0] = 0;
    if (reap_ws_header_decode(buf, size, file_size, MEM_SIZE, NULL, &h, &err) < 0) {
        check_error(&err);
        return;
    }
    if (h.count == 0 || h.count > MEM_SIZE / PAGE || h.index_offset != PAGE || h.data_offset % PAGE ||
        h.data_offset < PAGE + h.count * REAP_INDEX_ENTRY || h.data_offset + h.count * PAGE != file_size)
        abort();
    if (size < h.data_offset)
        return;
    if (reap_ws_index_check(buf, &h, buf + PAGE, &err) < 0) {
        check_error(&err);
        return;
    }
    for (uint64_t i = 0; i < h.count; i++) {
        uint64_t gpa = get_le64(buf + PAGE + i * REAP_INDEX_ENTRY);
        if (gpa % PAGE || gpa >= MEM_SIZE || (i && gpa <= get_le64(buf + PAGE + (i - 1) * REAP_INDEX_ENTRY)) ||
            get_le32(buf + PAGE + i * REAP_INDEX_ENTRY + 16) > h.generation)
            abort();
    }
}

static void check_trace(const uint8_t *buf, size_t size)
{
    struct page_record *rec;
    size_t n;
    uint64_t mem;
    struct snap_identity id;
    struct thaw_error err;
    err.msg[0] = 0;
    if (reap_trace_decode(buf, size, &rec, &n, &mem, &id, &err) < 0) {
        check_error(&err);
        if (rec)
            abort();
        return;
    }
    if (80 + n * 16 + 4 != size)
        abort();
    free(rec);
}

/* ws.gens: bound to a ws.pages whose CRC and count the input's own header names (so
 * that a valid binding is reachable); what it accepts keeps every page at or below the
 * generation, and the generation at or above ws.pages's (given as the input's byte 0). */
static void check_gens(const uint8_t *buf, size_t size)
{
    if (size < 48)
        return;
    uint64_t count = get_le64(buf + 16);
    if (count > (1u << 20))
        return;
    uint32_t *lu = malloc((count ? count : 1) * sizeof *lu);
    if (!lu)
        return;
    uint64_t gen = 0, probe = 0, min_gen = buf[0] & 7;
    struct thaw_error err;
    err.msg[0] = 0;
    if (reap_gens_decode(buf, size, get_le32(buf + 12), count, min_gen, lu, &gen, &probe, &err) < 0) {
        check_error(&err);
    } else {
        if (gen < min_gen || gen > UINT32_MAX || size != 40 + count * 4 + 4)
            abort();
        for (uint64_t i = 0; i < count; i++)
            if (lu[i] > gen)
                abort();
    }
    free(lu);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_trace(data, size);
    check_ws(data, size);
    check_gens(data, size);
    if (size >= 48 && (data[size - 1] & 2)) { /* ws.gens with its CRC repaired */
        uint8_t *g = malloc(size);
        if (g) {
            memcpy(g, data, size);
            put_le32(g + size - 4, (uint32_t)crc32_z(0, g, size - 4));
            check_gens(g, size);
            free(g);
        }
    }
    if (size < REAP_WS_HEADER_BYTES || !(data[size - 1] & 1))
        return 0;
    /* Repair the CRC over the header and the index the header claims. */
    uint8_t *b = malloc(size);
    if (!b)
        return 0;
    memcpy(b, data, size);
    uint64_t count = get_le64(b + 24);
    if (count <= (size - PAGE > size ? 0 : (size - PAGE) / REAP_INDEX_ENTRY) && size >= PAGE) {
        put_le32(b + 100, 0);
        uint32_t crc = (uint32_t)crc32_z(0, b, REAP_WS_HEADER_BYTES);
        put_le32(b + 100, (uint32_t)crc32_z(crc, b + PAGE, count * REAP_INDEX_ENTRY));
    }
    check_ws(b, size);
    free(b);
    return 0;
}
