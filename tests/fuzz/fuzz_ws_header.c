/* libFuzzer target for REAP's working-set files without KVM: each input is decoded as
 * the head of a ws.pages file (header, then index) and as a ws.trace file. Half the
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_trace(data, size);
    check_ws(data, size);
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
