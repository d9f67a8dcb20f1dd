/* Static ELF loader (src/host/vmm/elf_loader.c), on hand-built images and, when
 * present, on the real sample functions. */
#include <elf.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "host/vmm/elf_loader.h"

#define GUEST_SIZE (32ull << 20)
#define MIN_GPA 0x400000ull
#define PIE_BASE 0x1000000ull
#define FILL 0xAA

/* A small valid static executable:
 *   phdr 0: PT_LOAD R   off 0      vaddr 0x400000 filesz 0x200 (headers)
 *   phdr 1: PT_LOAD R+X off 0x1000 vaddr 0x401000 filesz 0x100 (text, entry)
 *   phdr 2: PT_LOAD R+W off 0x2000 vaddr 0x402000 filesz 0x80 memsz 0x1000 (data+bss)
 *   phdr 3: PT_GNU_STACK
 * For ET_DYN the vaddrs are 0-based. */
#define IMG_SIZE 0x3000u
#define NPH 4

struct img {
    uint8_t *bytes; /* exact-size heap buffer so ASan catches overreads */
    size_t size;
};

static uint8_t *guest;

static int setup(void **state)
{
    (void)state;
    guest = malloc(GUEST_SIZE);
    return guest ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    free(guest);
    return 0;
}

static Elf64_Ehdr get_eh(const struct img *im)
{
    Elf64_Ehdr eh;
    memcpy(&eh, im->bytes, sizeof(eh));
    return eh;
}

static void set_eh(struct img *im, const Elf64_Ehdr *eh) { memcpy(im->bytes, eh, sizeof(*eh)); }

static Elf64_Phdr get_ph(const struct img *im, unsigned i)
{
    Elf64_Phdr ph;
    memcpy(&ph, im->bytes + sizeof(Elf64_Ehdr) + i * sizeof(ph), sizeof(ph));
    return ph;
}

static void set_ph(struct img *im, unsigned i, const Elf64_Phdr *ph)
{
    memcpy(im->bytes + sizeof(Elf64_Ehdr) + i * sizeof(*ph), ph, sizeof(*ph));
}

static struct img make_img(uint16_t type)
{
    struct img im = {.bytes = calloc(1, IMG_SIZE), .size = IMG_SIZE};
    assert_non_null(im.bytes);
    uint64_t base = type == ET_EXEC ? 0x400000 : 0;

    for (size_t i = 0x200; i < IMG_SIZE; i++)
        im.bytes[i] = (uint8_t)(i * 13 + 1);

    Elf64_Ehdr eh = {0};
    memcpy(eh.e_ident, ELFMAG, SELFMAG);
    eh.e_ident[EI_CLASS] = ELFCLASS64;
    eh.e_ident[EI_DATA] = ELFDATA2LSB;
    eh.e_ident[EI_VERSION] = EV_CURRENT;
    eh.e_type = type;
    eh.e_machine = EM_X86_64;
    eh.e_version = EV_CURRENT;
    eh.e_entry = base + 0x1010;
    eh.e_phoff = sizeof(Elf64_Ehdr);
    eh.e_ehsize = sizeof(Elf64_Ehdr);
    eh.e_phentsize = sizeof(Elf64_Phdr);
    eh.e_phnum = NPH;
    set_eh(&im, &eh);

    const Elf64_Phdr ph[NPH] = {
        {.p_type = PT_LOAD, .p_flags = PF_R, .p_offset = 0, .p_vaddr = base,
         .p_paddr = base, .p_filesz = 0x200, .p_memsz = 0x200, .p_align = 0x1000},
        {.p_type = PT_LOAD, .p_flags = PF_R | PF_X, .p_offset = 0x1000, .p_vaddr = base + 0x1000,
         .p_paddr = base + 0x1000, .p_filesz = 0x100, .p_memsz = 0x100, .p_align = 0x1000},
        {.p_type = PT_LOAD, .p_flags = PF_R | PF_W, .p_offset = 0x2000, .p_vaddr = base + 0x2000,
         .p_paddr = base + 0x2000, .p_filesz = 0x80, .p_memsz = 0x1000, .p_align = 0x1000},
        {.p_type = PT_GNU_STACK, .p_flags = PF_R | PF_W},
    };
    for (unsigned i = 0; i < NPH; i++)
        set_ph(&im, i, &ph[i]);
    return im;
}

static void free_img(struct img *im) { free(im->bytes); }

static int load(const struct img *im, uint64_t guest_size, uint64_t max_gpa, uint64_t pie_base,
                struct elf_image *out, char *err, size_t err_len)
{
    return elf_load(im->bytes, im->size, guest, guest_size, MIN_GPA, max_gpa, pie_base, out, err,
                    err_len);
}

static int all_fill(void)
{
    for (size_t i = 0; i < GUEST_SIZE; i++)
        if (guest[i] != FILL)
            return 0;
    return 1;
}

/* Loads im expecting rejection with a message containing want; checks that neither
 * guest memory nor *out was touched. */
static void expect_reject_at(const struct img *im, uint64_t guest_size, uint64_t max_gpa,
                             uint64_t pie_base, const char *want)
{
    memset(guest, FILL, GUEST_SIZE);
    struct elf_image out;
    memset(&out, 0x5c, sizeof(out));
    char err[256] = "";
    int rc = load(im, guest_size, max_gpa, pie_base, &out, err, sizeof(err));
    if (rc != -1 || strstr(err, want) == NULL)
        fail_msg("expected rejection containing \"%s\", got rc=%d err=\"%s\"", want, rc, err);
    assert_null(strchr(err, '\n')); /* one line */
    assert_true(all_fill());
    for (size_t i = 0; i < sizeof(out); i++)
        assert_int_equal(((uint8_t *)&out)[i], 0x5c);
}

static void expect_reject(const struct img *im, const char *want)
{
    expect_reject_at(im, GUEST_SIZE, GUEST_SIZE, PIE_BASE, want);
}

/* ---- successful loads ------------------------------------------------------------------ */

static void test_load_exec(void **state)
{
    (void)state;
    struct img im = make_img(ET_EXEC);
    memset(guest, FILL, GUEST_SIZE);
    struct elf_image out;
    char err[256] = "";
    assert_int_equal(load(&im, GUEST_SIZE, GUEST_SIZE, PIE_BASE, &out, err, sizeof(err)), 0);
    assert_int_equal(out.entry, 0x401010);
    assert_int_equal(out.load_bias, 0);
    /* No PT_PHDR: the table sits at file offset 64 inside segment 0. */
    assert_int_equal(out.phdr_gpa, 0x400040);
    assert_int_equal(out.phnum, NPH);
    assert_int_equal(out.phentsize, sizeof(Elf64_Phdr));
    assert_int_equal(out.lowest, 0x400000);
    assert_int_equal(out.end, 0x403000);

    assert_memory_equal(guest + 0x400000, im.bytes, 0x200);
    assert_memory_equal(guest + 0x401000, im.bytes + 0x1000, 0x100);
    assert_memory_equal(guest + 0x402000, im.bytes + 0x2000, 0x80);
    for (size_t i = 0x402080; i < 0x403000; i++)
        assert_int_equal(guest[i], 0); /* bss zero-filled */
    /* Gaps between segments and memory around the image are untouched. */
    assert_int_equal(guest[0x3fffff], FILL);
    assert_int_equal(guest[0x400200], FILL);
    assert_int_equal(guest[0x401100], FILL);
    assert_int_equal(guest[0x403000], FILL);
    free_img(&im);
}

static void test_load_pie(void **state)
{
    (void)state;
    struct img im = make_img(ET_DYN);
    memset(guest, FILL, GUEST_SIZE);
    struct elf_image out;
    char err[256] = "";
    assert_int_equal(load(&im, GUEST_SIZE, GUEST_SIZE, PIE_BASE, &out, err, sizeof(err)), 0);
    assert_int_equal(out.load_bias, PIE_BASE);
    assert_int_equal(out.entry, PIE_BASE + 0x1010);
    assert_int_equal(out.phdr_gpa, PIE_BASE + 0x40);
    assert_int_equal(out.lowest, PIE_BASE);
    assert_int_equal(out.end, PIE_BASE + 0x3000);
    assert_memory_equal(guest + PIE_BASE + 0x1000, im.bytes + 0x1000, 0x100);
    assert_int_equal(guest[PIE_BASE + 0x2fff], 0);
    free_img(&im);
}

static void test_pt_phdr_preferred(void **state)
{
    (void)state;
    struct img im = make_img(ET_DYN);
    Elf64_Phdr ph = {.p_type = PT_PHDR, .p_flags = PF_R, .p_offset = 0x40, .p_vaddr = 0x48,
                     .p_filesz = NPH * sizeof(Elf64_Phdr), .p_memsz = NPH * sizeof(Elf64_Phdr)};
    set_ph(&im, 3, &ph); /* replaces PT_GNU_STACK */
    memset(guest, FILL, GUEST_SIZE);
    struct elf_image out;
    assert_int_equal(load(&im, GUEST_SIZE, GUEST_SIZE, PIE_BASE, &out, NULL, 0), 0);
    assert_int_equal(out.phdr_gpa, PIE_BASE + 0x48); /* PT_PHDR's vaddr, biased */
    free_img(&im);
}

static void test_phdr_not_loaded(void **state)
{
    (void)state;
    struct img im = make_img(ET_EXEC);
    /* Segment 0 no longer covers the whole table (it ends 8 bytes early). */
    Elf64_Phdr ph = get_ph(&im, 0);
    ph.p_filesz = 0x40 + NPH * sizeof(Elf64_Phdr) - 8;
    set_ph(&im, 0, &ph);
    struct elf_image out;
    memset(guest, FILL, GUEST_SIZE);
    assert_int_equal(load(&im, GUEST_SIZE, GUEST_SIZE, PIE_BASE, &out, NULL, 0), 0);
    assert_int_equal(out.phdr_gpa, 0);
    free_img(&im);
}

static void test_entry_in_bss_of_exec_segment(void **state)
{
    (void)state;
    /* "Inside the segment" means inside [vaddr, vaddr+memsz). */
    struct img im = make_img(ET_EXEC);
    Elf64_Phdr ph = get_ph(&im, 1);
    ph.p_memsz = 0x800;
    set_ph(&im, 1, &ph);
    Elf64_Ehdr eh = get_eh(&im);
    eh.e_entry = 0x4017ff;
    set_eh(&im, &eh);
    struct elf_image out;
    memset(guest, FILL, GUEST_SIZE);
    assert_int_equal(load(&im, GUEST_SIZE, GUEST_SIZE, PIE_BASE, &out, NULL, 0), 0);
    assert_int_equal(out.entry, 0x4017ff);
    free_img(&im);
}

static void test_err_truncated_safely(void **state)
{
    (void)state;
    struct img im = make_img(ET_EXEC);
    im.bytes[0] = 0;
    char err[8];
    memset(err, 'z', sizeof(err));
    struct elf_image out;
    assert_int_equal(load(&im, GUEST_SIZE, GUEST_SIZE, PIE_BASE, &out, err, sizeof(err)), -1);
    assert_int_equal(err[7], '\0');
    assert_int_equal(load(&im, GUEST_SIZE, GUEST_SIZE, PIE_BASE, &out, NULL, 0), -1);
    free_img(&im);
}

/* ---- rejections: each one fails if its check is missing -------------------------------- */

static void test_reject_header(void **state)
{
    (void)state;
    struct img im = make_img(ET_EXEC);
    Elf64_Ehdr good = get_eh(&im), eh;

    /* Shorter than an ELF header. */
    struct img shortim = {.bytes = im.bytes, .size = sizeof(Elf64_Ehdr) - 1};
    expect_reject(&shortim, "too short");

    eh = good; eh.e_ident[EI_MAG1] = 'X'; set_eh(&im, &eh);
    expect_reject(&im, "bad magic");
    eh = good; eh.e_ident[EI_CLASS] = ELFCLASS32; set_eh(&im, &eh);
    expect_reject(&im, "64-bit");
    eh = good; eh.e_ident[EI_DATA] = ELFDATA2MSB; set_eh(&im, &eh);
    expect_reject(&im, "little-endian");
    eh = good; eh.e_ident[EI_VERSION] = 2; set_eh(&im, &eh);
    expect_reject(&im, "version");
    eh = good; eh.e_version = 0; set_eh(&im, &eh);
    expect_reject(&im, "version");
    eh = good; eh.e_machine = EM_386; set_eh(&im, &eh);
    expect_reject(&im, "x86-64");
    eh = good; eh.e_machine = EM_AARCH64; set_eh(&im, &eh);
    expect_reject(&im, "x86-64");
    eh = good; eh.e_type = ET_REL; set_eh(&im, &eh);
    expect_reject(&im, "not an executable");
    eh = good; eh.e_type = ET_CORE; set_eh(&im, &eh);
    expect_reject(&im, "not an executable");
    eh = good; eh.e_phentsize = sizeof(Elf64_Phdr) - 8; set_eh(&im, &eh);
    expect_reject(&im, "e_phentsize");
    eh = good; eh.e_phentsize = sizeof(Elf64_Phdr) + 8; set_eh(&im, &eh);
    expect_reject(&im, "e_phentsize");
    free_img(&im);
}

static void test_reject_phdrs_beyond_file(void **state)
{
    (void)state;
    struct img im = make_img(ET_EXEC);
    Elf64_Ehdr good = get_eh(&im), eh;
    eh = good; eh.e_phoff = IMG_SIZE; set_eh(&im, &eh);
    expect_reject(&im, "beyond the end");
    eh = good; eh.e_phoff = IMG_SIZE - sizeof(Elf64_Phdr) * NPH + 1; set_eh(&im, &eh);
    expect_reject(&im, "beyond the end");
    /* phoff + table size wraps around to a small value. */
    eh = good; eh.e_phoff = UINT64_MAX - 16; set_eh(&im, &eh);
    expect_reject(&im, "beyond the end");
    free_img(&im);
}

static void test_reject_too_many_phdrs(void **state)
{
    (void)state;
    /* 65 headers, all valid, inside a large enough file. */
    struct img im = make_img(ET_EXEC);
    size_t size = 0x3000 + 65 * sizeof(Elf64_Phdr);
    uint8_t *big = calloc(1, size);
    assert_non_null(big);
    memcpy(big, im.bytes, IMG_SIZE);
    struct img bi = {.bytes = big, .size = size};
    Elf64_Ehdr eh = get_eh(&bi);
    eh.e_phoff = 0x3000;
    eh.e_phnum = 65;
    set_eh(&bi, &eh);
    Elf64_Phdr note = {.p_type = PT_NOTE};
    for (unsigned i = 0; i < 65; i++)
        memcpy(big + 0x3000 + i * sizeof(note), &note, sizeof(note));
    for (unsigned i = 0; i < 3; i++) {
        Elf64_Phdr ph = get_ph(&im, i);
        memcpy(big + 0x3000 + i * sizeof(ph), &ph, sizeof(ph));
    }
    expect_reject(&bi, "too many");
    eh.e_phnum = PN_XNUM;
    set_eh(&bi, &eh);
    expect_reject(&bi, "too many");
    /* 64 is still fine. */
    eh.e_phnum = 64;
    set_eh(&bi, &eh);
    struct elf_image out;
    assert_int_equal(elf_load(big, size, guest, GUEST_SIZE, MIN_GPA, GUEST_SIZE, PIE_BASE, &out,
                              NULL, 0),
                     0);
    assert_int_equal(out.phdr_gpa, 0); /* the table at 0x3000 is not in any segment */
    free(big);
    free_img(&im);
}

static void test_interp_accepted_and_checked(void **state)
{
    (void)state;
    static const char path[] = "/lib64/ld-linux-x86-64.so.2";
    for (int t = 0; t < 2; t++) {
        uint64_t base = t ? 0 : 0x400000;
        struct img im = make_img(t ? ET_DYN : ET_EXEC);
        Elf64_Phdr ph = {.p_type = PT_INTERP, .p_flags = PF_R, .p_offset = 0x1080,
                         .p_vaddr = base + 0x1080, .p_filesz = sizeof path, .p_memsz = sizeof path};
        memcpy(im.bytes + 0x1080, path, sizeof path);
        set_ph(&im, 3, &ph);
        struct elf_image out;
        char err[256];
        assert_int_equal(load(&im, GUEST_SIZE, GUEST_SIZE, PIE_BASE, &out, err, sizeof err), 0);
        assert_int_equal(out.interp_gpa, (t ? PIE_BASE : 0) + base + 0x1080);
        assert_memory_equal(guest + out.interp_gpa, path, sizeof path);

        im.bytes[0x1080 + sizeof path - 1] = 'x'; /* not NUL-terminated */
        expect_reject(&im, "NUL-terminated");
        im.bytes[0x1080 + sizeof path - 1] = 0;
        im.bytes[0x1080] = 'l'; /* relative */
        expect_reject(&im, "absolute");
        im.bytes[0x1080] = '/';
        memcpy(im.bytes + 0x1180, path, sizeof path);
        ph.p_offset = 0x1180; /* outside every segment's file range */
        ph.p_vaddr = base + 0x1180;
        set_ph(&im, 3, &ph);
        expect_reject(&im, "inside a loaded segment");
        ph.p_offset = 0x2f00;
        ph.p_filesz = 0x200; /* beyond the file */
        set_ph(&im, 3, &ph);
        expect_reject(&im, "beyond the file");
        free_img(&im);
    }
}

static void test_reject_no_load(void **state)
{
    (void)state;
    struct img im = make_img(ET_EXEC);
    for (unsigned i = 0; i < 3; i++) {
        Elf64_Phdr ph = get_ph(&im, i);
        ph.p_type = PT_NOTE;
        set_ph(&im, i, &ph);
    }
    expect_reject(&im, "no PT_LOAD");
    Elf64_Ehdr eh = get_eh(&im);
    eh.e_phnum = 0;
    set_eh(&im, &eh);
    expect_reject(&im, "no PT_LOAD");
    free_img(&im);
}

static void test_reject_segment_file_range(void **state)
{
    (void)state;
    struct img im = make_img(ET_EXEC);
    Elf64_Phdr good = get_ph(&im, 2), ph;

    ph = good; ph.p_filesz = ph.p_memsz + 1; set_ph(&im, 2, &ph);
    expect_reject(&im, "p_filesz > p_memsz");
    /* Within memsz but past the end of the file. */
    ph = good; ph.p_filesz = 0x1001; ph.p_memsz = 0x2000; set_ph(&im, 2, &ph);
    expect_reject(&im, "beyond the end of the file");
    ph = good; ph.p_offset = IMG_SIZE; set_ph(&im, 2, &ph);
    expect_reject(&im, "beyond the end of the file");
    /* offset + filesz wraps to a small number that would pass the size check. */
    ph = good; ph.p_offset = UINT64_MAX - 0x40 + 1; set_ph(&im, 2, &ph);
    expect_reject(&im, "overflows");
    free_img(&im);
}

static void test_reject_segment_addresses(void **state)
{
    (void)state;
    struct img im = make_img(ET_EXEC);
    Elf64_Phdr good = get_ph(&im, 2), ph;

    /* Below min_gpa. */
    ph = good; ph.p_vaddr = MIN_GPA - 0x1000; set_ph(&im, 2, &ph);
    expect_reject(&im, "outside");
    /* Ends one byte past max_gpa. */
    ph = good; ph.p_vaddr = GUEST_SIZE - 0x1000 + 1; set_ph(&im, 2, &ph);
    expect_reject(&im, "outside");
    /* Exactly up to max_gpa is fine. */
    ph = good; ph.p_vaddr = GUEST_SIZE - 0x1000; set_ph(&im, 2, &ph);
    struct elf_image out;
    memset(guest, FILL, GUEST_SIZE);
    assert_int_equal(load(&im, GUEST_SIZE, GUEST_SIZE, PIE_BASE, &out, NULL, 0), 0);
    assert_int_equal(out.end, GUEST_SIZE);
    /* max_gpa is checked on its own, not only guest_size ... */
    ph = good; ph.p_vaddr = 0x800000; set_ph(&im, 2, &ph);
    expect_reject_at(&im, GUEST_SIZE, 0x800000, PIE_BASE, "outside");
    /* ... and guest_size even if max_gpa is larger. */
    expect_reject_at(&im, 0x800000, GUEST_SIZE, PIE_BASE, "outside");
    /* vaddr + memsz wraps around to 0x1000: the range check alone would pass it. */
    ph = good; ph.p_memsz = UINT64_MAX - 0x402000 + 0x1000 + 1; set_ph(&im, 2, &ph);
    expect_reject(&im, "overflows");
    free_img(&im);

    /* PIE: vaddr + bias wraps around to 0x800000, an in-range address. */
    im = make_img(ET_DYN);
    ph = get_ph(&im, 2);
    ph.p_vaddr = 0xffffffffff800000ull;
    set_ph(&im, 2, &ph);
    expect_reject(&im, "overflows");
    free_img(&im);
}

static void test_reject_overlap(void **state)
{
    (void)state;
    struct img im = make_img(ET_EXEC);
    /* The last segment starts inside the text segment; the first two are valid, so
     * this also checks that nothing is written before every check has passed. */
    Elf64_Phdr ph = get_ph(&im, 2);
    ph.p_vaddr = 0x4010ff;
    set_ph(&im, 2, &ph);
    expect_reject(&im, "overlap");
    /* Containment the other way round. */
    ph.p_vaddr = 0x400f00;
    ph.p_memsz = 0x2000;
    set_ph(&im, 2, &ph);
    expect_reject(&im, "overlap");
    /* Adjacent is fine. */
    ph.p_vaddr = 0x401100;
    ph.p_memsz = 0x1000;
    set_ph(&im, 2, &ph);
    struct elf_image out;
    memset(guest, FILL, GUEST_SIZE);
    assert_int_equal(load(&im, GUEST_SIZE, GUEST_SIZE, PIE_BASE, &out, NULL, 0), 0);
    free_img(&im);
}

static void test_reject_entry(void **state)
{
    (void)state;
    struct img im = make_img(ET_EXEC);
    Elf64_Ehdr good = get_eh(&im), eh;
    /* In no segment. */
    eh = good; eh.e_entry = 0x500000; set_eh(&im, &eh);
    expect_reject(&im, "entry point");
    /* One past the end of the text segment. */
    eh = good; eh.e_entry = 0x401100; set_eh(&im, &eh);
    expect_reject(&im, "entry point");
    /* In a loaded but non-executable segment. */
    eh = good; eh.e_entry = 0x402010; set_eh(&im, &eh);
    expect_reject(&im, "entry point");
    eh = good; eh.e_entry = 0x400000; set_eh(&im, &eh);
    expect_reject(&im, "entry point");
    free_img(&im);

    /* PIE: e_entry + bias overflows. */
    im = make_img(ET_DYN);
    eh = get_eh(&im);
    eh.e_entry = UINT64_MAX;
    set_eh(&im, &eh);
    expect_reject(&im, "entry point");
    free_img(&im);
}

static void test_reject_pie_base(void **state)
{
    (void)state;
    struct img im = make_img(ET_DYN);
    expect_reject_at(&im, GUEST_SIZE, GUEST_SIZE, PIE_BASE + 0x10, "page-aligned");
    expect_reject_at(&im, GUEST_SIZE, GUEST_SIZE, PIE_BASE + 0x800, "page-aligned");
    free_img(&im);
    /* ET_EXEC ignores pie_base. */
    im = make_img(ET_EXEC);
    struct elf_image out;
    memset(guest, FILL, GUEST_SIZE);
    assert_int_equal(load(&im, GUEST_SIZE, GUEST_SIZE, PIE_BASE + 1, &out, NULL, 0), 0);
    assert_int_equal(out.load_bias, 0);
    free_img(&im);
}

static void test_reject_phdr_overflow(void **state)
{
    (void)state;
    struct img im = make_img(ET_DYN);
    Elf64_Phdr ph = {.p_type = PT_PHDR, .p_vaddr = UINT64_MAX - 0x10};
    set_ph(&im, 3, &ph);
    expect_reject(&im, "PT_PHDR");
    free_img(&im);
}

/* ---- real binaries ----------------------------------------------------------------------- */

static uint8_t *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 1 << 20;
            uint8_t *nb = realloc(buf, cap);
            assert_non_null(nb);
            buf = nb;
        }
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
    }
    fclose(f);
    *size = len;
    return buf;
}

static void check_real_binary(const char *path)
{
    size_t size;
    uint8_t *file = read_file(path, &size);
    if (!file) {
        print_message("SKIP: %s not built (run `make functions`); real-binary check skipped\n",
                      path);
        skip();
    }
    memset(guest, 0, GUEST_SIZE);
    struct elf_image out;
    char err[256] = "";
    int rc = elf_load(file, size, guest, GUEST_SIZE, MIN_GPA, GUEST_SIZE, PIE_BASE, &out, err,
                      sizeof(err));
    if (rc != 0) {
        free(file);
        fail_msg("%s: %s", path, err);
    }

    Elf64_Ehdr eh;
    memcpy(&eh, file, sizeof(eh));
    assert_int_equal(out.load_bias, eh.e_type == ET_DYN ? PIE_BASE : 0);
    assert_int_equal(out.entry, eh.e_entry + out.load_bias);
    assert_int_equal(out.phnum, eh.e_phnum);
    assert_int_equal(out.phentsize, sizeof(Elf64_Phdr));
    /* The program headers must be readable where AT_PHDR will point. */
    assert_true(out.phdr_gpa >= MIN_GPA && out.phdr_gpa < GUEST_SIZE);
    assert_memory_equal(guest + out.phdr_gpa, file + eh.e_phoff, eh.e_phnum * sizeof(Elf64_Phdr));
    assert_true(out.lowest <= out.entry && out.entry < out.end);
    assert_int_equal(out.lowest % 4096, 0);
    assert_int_equal(out.end % 4096, 0);
    /* The entry code was copied from the file. */
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        memcpy(&ph, file + eh.e_phoff + i * sizeof(ph), sizeof(ph));
        if (ph.p_type == PT_LOAD && (ph.p_flags & PF_X) && eh.e_entry >= ph.p_vaddr &&
            eh.e_entry - ph.p_vaddr < ph.p_filesz)
            assert_memory_equal(guest + out.entry,
                                file + ph.p_offset + (eh.e_entry - ph.p_vaddr), 16);
    }
    free(file);
}

static void test_real_hello_glibc(void **state)
{
    (void)state;
    check_real_binary("build/functions/hello-glibc");
}

static void test_real_hello_musl(void **state)
{
    (void)state;
    check_real_binary("build/functions/hello-musl");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_exec),
        cmocka_unit_test(test_load_pie),
        cmocka_unit_test(test_pt_phdr_preferred),
        cmocka_unit_test(test_phdr_not_loaded),
        cmocka_unit_test(test_entry_in_bss_of_exec_segment),
        cmocka_unit_test(test_err_truncated_safely),
        cmocka_unit_test(test_reject_header),
        cmocka_unit_test(test_reject_phdrs_beyond_file),
        cmocka_unit_test(test_reject_too_many_phdrs),
        cmocka_unit_test(test_interp_accepted_and_checked),
        cmocka_unit_test(test_reject_no_load),
        cmocka_unit_test(test_reject_segment_file_range),
        cmocka_unit_test(test_reject_segment_addresses),
        cmocka_unit_test(test_reject_overlap),
        cmocka_unit_test(test_reject_entry),
        cmocka_unit_test(test_reject_pie_base),
        cmocka_unit_test(test_reject_phdr_overflow),
        cmocka_unit_test(test_real_hello_glibc),
        cmocka_unit_test(test_real_hello_musl),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
