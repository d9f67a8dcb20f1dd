/* libFuzzer target for REAP's working-set files without KVM: each input is decoded as a
 * whole ws.pages file (header, index, block table, then every block: its first whole
 * pages, so that lengths are a multiple of 4 KiB as on disk), as a ws.trace file and as
 * a ws.gens file (its CRC repaired half the time too). Half the time the ws.pages CRC
 * (header, index and block table) is repaired first, so that mutations reach the size,
 * index and block checks and the lz4 decoder. Whatever is accepted must keep the
 * decoder's promises: sizes consistent with the file, index entries page-aligned,
 * ascending, inside guest memory, blocks inside the file covering the pages in order;
 * every block, decoded or refused, stays inside its buffers (ASan). */
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
    size_t len = size - size % PAGE; /* as on disk: whole pages */
    if (len < PAGE)
        return;
    struct reap_ws_header h;
    struct thaw_error err;
    err.msg[0] = 0;
    if (reap_ws_header_decode(buf, len, len, MEM_SIZE, NULL, &h, &err) < 0) {
        check_error(&err);
        return;
    }
    if (h.count == 0 || h.count > MEM_SIZE / PAGE || h.index_offset != PAGE || h.data_offset % PAGE ||
        h.data_offset < PAGE + h.count * REAP_INDEX_ENTRY + h.blocks * REAP_BLOCK_ENTRY ||
        h.blocks != (h.count + REAP_BLOCK_PAGES - 1) / REAP_BLOCK_PAGES || h.data_offset >= len)
        abort();
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
    /* Every block: inside the file, after the one before, and decoded into exactly its
     * pages or refused with one line (the page checksums are not forged here: they stop
     * a changed page, not a changed block). */
    uint8_t *dst = malloc(REAP_BLOCK_PAGES * PAGE);
    if (!dst)
        return;
    uint64_t end = h.data_offset;
    for (uint64_t k = 0; k < h.blocks; k++) {
        struct reap_ws_block b;
        reap_ws_block_at(buf + PAGE, &h, k, &b);
        if (b.offset < end || b.offset + b.bytes > len || b.first != k * REAP_BLOCK_PAGES || b.pages == 0 ||
            b.pages > REAP_BLOCK_PAGES || b.first + b.pages > h.count)
            abort();
        end = b.offset + b.bytes;
        if (reap_ws_block_decode(buf + b.offset, &b, dst, &err) < 0)
            check_error(&err);
    }
    free(dst);
    uint8_t *pages;
    uint64_t *gpa;
    if (reap_ws_decode(buf, len, MEM_SIZE, NULL, &h, &pages, &gpa, &err) < 0) {
        check_error(&err);
        return;
    }
    for (uint64_t i = 0; i < h.count; i++)
        if (reap_page_checksum(pages + i * PAGE, gpa[i]) != get_le64(buf + PAGE + i * REAP_INDEX_ENTRY + 8))
            abort();
    free(pages);
    free(gpa);
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
    /* Repair the CRC over the header and the index and block table the header claims. */
    uint8_t *b = malloc(size);
    if (!b)
        return 0;
    memcpy(b, data, size);
    uint64_t count = get_le64(b + 24), blocks = get_le64(b + 120);
    if (size >= PAGE && count <= (size - PAGE) / REAP_INDEX_ENTRY &&
        blocks <= (size - PAGE - count * REAP_INDEX_ENTRY) / REAP_BLOCK_ENTRY) {
        put_le32(b + 100, 0);
        uint32_t crc = (uint32_t)crc32_z(0, b, REAP_WS_HEADER_BYTES);
        put_le32(b + 100, (uint32_t)crc32_z(crc, b + PAGE, count * REAP_INDEX_ENTRY + blocks * REAP_BLOCK_ENTRY));
    }
    check_ws(b, size);
    free(b);
    return 0;
}
