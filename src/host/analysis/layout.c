/* The guest's memory regions, read back from a snapshot's memory image. Every value
 * comes from a file and is checked before use. */
#include <elf.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/analysis/analysis.h"
#include "host/util/file.h"
#include "host/util/snapdir.h"
#include "thaw/abi.h"

#define PAGE ANALYSIS_PAGE
#define MAX_PHDRS 64

const char *region_kind_name(enum region_kind k)
{
    static const char *const names[REGION_COUNT] = {"kernel", "program text", "program data",
                                                    "file archive", "heap/anonymous", "stack"};
    return k < REGION_COUNT ? names[k] : "?";
}

int guest_layout_add(struct guest_layout *l, uint64_t start, uint64_t end, enum region_kind kind,
                     struct thaw_error *err)
{
    if (start % PAGE || end % PAGE || start >= end || end > l->mem_size || kind >= REGION_COUNT)
        return thaw_fail(err, "layout: region [%#llx, %#llx) is not a page range of guest memory",
                         (unsigned long long)start, (unsigned long long)end);
    if (l->n && start < l->r[l->n - 1].end)
        return thaw_fail(err, "layout: region at %#llx overlaps or precedes the previous one",
                         (unsigned long long)start);
    if (l->n == LAYOUT_MAX_REGIONS)
        return thaw_fail(err, "layout: more than %d regions", LAYOUT_MAX_REGIONS);
    l->r[l->n++] = (struct layout_region){start, end, kind};
    return 0;
}

enum region_kind guest_layout_classify(const struct guest_layout *l, uint64_t page)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (page < l->r[mid].start)
            hi = mid;
        else if (page >= l->r[mid].end)
            lo = mid + 1;
        else
            return l->r[mid].kind;
    }
    return REGION_HEAP;
}

void guest_layout_count(const struct guest_layout *l, const struct page_set *ws, uint64_t counts[REGION_COUNT])
{
    memset(counts, 0, REGION_COUNT * sizeof *counts);
    for (size_t i = 0; i < ws->n; i++)
        counts[guest_layout_classify(l, ws->pages[i])]++;
}

static int read_at(int fd, void *buf, size_t len, uint64_t off, const char *what, struct thaw_error *err)
{
    ssize_t r = pread(fd, buf, len, (off_t)off);
    if (r != (ssize_t)len)
        return thaw_fail(err, "layout: cannot read the %s at %#llx of guest memory", what, (unsigned long long)off);
    return 0;
}

static uint64_t page_down(uint64_t x) { return x & ~(PAGE - 1); }
static uint64_t page_up(uint64_t x) { return (x + PAGE - 1) & ~(PAGE - 1); }

static int cmp_region(const void *a, const void *b)
{
    const struct layout_region *x = a, *y = b;
    return x->start < y->start ? -1 : x->start > y->start;
}

int guest_layout_from_memory(int fd, uint64_t mem_size, struct guest_layout *out, struct thaw_error *err)
{
    memset(out, 0, sizeof *out);
    out->mem_size = mem_size;
    if (mem_size % PAGE || mem_size < THAW_KERNEL_MAX_END + THAW_STACK_SIZE)
        return thaw_fail(err, "layout: guest memory size %llu is implausible", (unsigned long long)mem_size);
    struct thaw_boot_info bi;
    struct thaw_kernel_header kh;
    if (read_at(fd, &bi, sizeof bi, THAW_GPA_BOOT_INFO, "boot info", err) < 0 ||
        read_at(fd, &kh, sizeof kh, THAW_GPA_KERNEL, "kernel header", err) < 0)
        return -1;
    if (bi.magic != THAW_BOOT_MAGIC || bi.abi_version != THAW_ABI_VERSION || bi.mem_size != mem_size)
        return thaw_fail(err, "layout: the boot info in guest memory does not describe this snapshot");
    if (kh.magic != THAW_KERNEL_MAGIC || kh.image_end <= THAW_GPA_KERNEL || kh.image_end > THAW_KERNEL_MAX_END)
        return thaw_fail(err, "layout: no valid kernel header at %#llx", (unsigned long long)THAW_GPA_KERNEL);
    uint64_t stack_lo = mem_size - THAW_STACK_SIZE;
    if (bi.free_base < THAW_KERNEL_MAX_END || bi.free_base >= stack_lo ||
        (bi.archive_size && (bi.archive_base < THAW_KERNEL_MAX_END || bi.archive_base > stack_lo ||
                             bi.archive_size > stack_lo - bi.archive_base)))
        return thaw_fail(err, "layout: the boot info's archive or free memory lies outside guest memory");
    if (bi.prog_phent != sizeof(Elf64_Phdr) || bi.prog_phnum == 0 || bi.prog_phnum > MAX_PHDRS ||
        bi.prog_phdr >= mem_size || bi.prog_phnum * sizeof(Elf64_Phdr) > mem_size - bi.prog_phdr)
        return thaw_fail(err, "layout: the program headers in the boot info are invalid");

    struct layout_region cand[LAYOUT_MAX_REGIONS];
    size_t nc = 0;
    cand[nc++] = (struct layout_region){0, page_up(kh.image_end), REGION_KERNEL};
    Elf64_Phdr ph[MAX_PHDRS];
    if (read_at(fd, ph, bi.prog_phnum * sizeof *ph, bi.prog_phdr, "program headers", err) < 0)
        return -1;
    for (uint64_t i = 0; i < bi.prog_phnum; i++) {
        if (ph[i].p_type != PT_LOAD || ph[i].p_memsz == 0)
            continue;
        if (ph[i].p_vaddr >= stack_lo || ph[i].p_memsz > stack_lo - ph[i].p_vaddr || ph[i].p_vaddr < THAW_KERNEL_MAX_END)
            return thaw_fail(err, "layout: program segment %llu at %#llx lies outside the program area",
                             (unsigned long long)i, (unsigned long long)ph[i].p_vaddr);
        if (nc == LAYOUT_MAX_REGIONS - 4)
            return thaw_fail(err, "layout: too many program segments");
        cand[nc++] = (struct layout_region){page_down(ph[i].p_vaddr), page_up(ph[i].p_vaddr + ph[i].p_memsz),
                                            ph[i].p_flags & PF_X ? REGION_PROGRAM_TEXT : REGION_PROGRAM_DATA};
    }
    if (bi.archive_size)
        cand[nc++] = (struct layout_region){page_down(bi.archive_base), page_up(bi.archive_base + bi.archive_size),
                                            REGION_FILES};
    /* The guest allocator's two page bitmaps sit at free_base (src/guest/kernel/mm.c). */
    uint64_t npages = mem_size / PAGE, map_bytes = page_up((npages + 63) / 64 * 8);
    cand[nc++] = (struct layout_region){page_up(bi.free_base), page_up(bi.free_base) + 2 * map_bytes, REGION_KERNEL};
    cand[nc++] = (struct layout_region){stack_lo, mem_size, REGION_STACK};
    qsort(cand, nc, sizeof *cand, cmp_region);
    /* Segments may share a page: the earlier region keeps it. */
    for (size_t i = 0; i < nc; i++) {
        uint64_t s = cand[i].start, e = cand[i].end;
        if (out->n && s < out->r[out->n - 1].end)
            s = out->r[out->n - 1].end;
        if (e > mem_size)
            e = mem_size;
        if (s >= e)
            continue;
        if (guest_layout_add(out, s, e, cand[i].kind, err) < 0)
            return -1;
    }
    return 0;
}

int guest_layout_from_snapshot(const char *snap_dir, uint64_t mem_size, struct guest_layout *out,
                               struct thaw_error *err)
{
    char path[4096];
    if (snapdir_path(path, sizeof path, snap_dir, SNAPDIR_MEMORY) < 0)
        return thaw_fail(err, "snapshot path too long");
    int fd = file_open_regular(AT_FDCWD, path, O_RDONLY | O_NOFOLLOW, 0, err);
    if (fd < 0)
        return -1;
    int rc = guest_layout_from_memory(fd, mem_size, out, err);
    close(fd);
    return rc;
}
