/* Static x86-64 ELF loader; see elf_loader.h. */
#include "host/vmm/elf_loader.h"

#include <elf.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "thaw/abi.h"

__attribute__((format(printf, 3, 4))) static int fail(char *err, size_t err_len,
                                                      const char *fmt, ...)
{
    if (err && err_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, err_len, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* A validated PT_LOAD segment, in guest addresses. */
struct seg {
    uint64_t start, end; /* [start, end): vaddr + bias .. + memsz */
    uint64_t off, filesz;
    bool exec;
};

int elf_load(const uint8_t *file, size_t file_size, uint8_t *guest, uint64_t guest_size,
             uint64_t min_gpa, uint64_t max_gpa, uint64_t pie_base, struct elf_image *out,
             char *err, size_t err_len)
{
    Elf64_Ehdr eh;
    if (!file || file_size < sizeof(eh))
        return fail(err, err_len, "ELF: file too short for an ELF header (%zu bytes)", file_size);
    /* memcpy: the buffer need not be aligned for Elf64_Ehdr. */
    memcpy(&eh, file, sizeof(eh));

    if (memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0)
        return fail(err, err_len, "ELF: bad magic (not an ELF file)");
    if (eh.e_ident[EI_CLASS] != ELFCLASS64)
        return fail(err, err_len, "ELF: not a 64-bit ELF (ELFCLASS64 required)");
    if (eh.e_ident[EI_DATA] != ELFDATA2LSB)
        return fail(err, err_len, "ELF: not little-endian");
    if (eh.e_ident[EI_VERSION] != EV_CURRENT || eh.e_version != EV_CURRENT)
        return fail(err, err_len, "ELF: unsupported ELF version");
    if (eh.e_machine != EM_X86_64)
        return fail(err, err_len, "ELF: not an x86-64 binary (e_machine %u)", eh.e_machine);
    if (eh.e_type != ET_EXEC && eh.e_type != ET_DYN)
        return fail(err, err_len, "ELF: not an executable (e_type %u)", eh.e_type);
    if (eh.e_phentsize != sizeof(Elf64_Phdr))
        return fail(err, err_len, "ELF: e_phentsize %u != %zu", eh.e_phentsize,
                    sizeof(Elf64_Phdr));
    if (eh.e_phnum > ELF_LOADER_MAX_PHNUM)
        return fail(err, err_len, "ELF: too many program headers (%u > %u)", eh.e_phnum,
                    ELF_LOADER_MAX_PHNUM);
    /* phnum <= 64 keeps the table size small; only the offset addition can overflow. */
    uint64_t ph_size = (uint64_t)eh.e_phnum * sizeof(Elf64_Phdr);
    if (eh.e_phoff > file_size || ph_size > file_size - eh.e_phoff)
        return fail(err, err_len, "ELF: program headers lie beyond the end of the file");

    uint64_t bias = 0;
    if (eh.e_type == ET_DYN) {
        if (pie_base & (THAW_PAGE_SIZE - 1))
            return fail(err, err_len, "ELF: PIE base 0x%llx is not page-aligned",
                        (unsigned long long)pie_base);
        bias = pie_base;
    }

    Elf64_Phdr ph[ELF_LOADER_MAX_PHNUM];
    memcpy(ph, file + eh.e_phoff, (size_t)ph_size);

    /* A dynamically linked program names its interpreter (PT_INTERP): the guest kernel
     * loads it from the function's files and reads the path from the loaded image, so
     * the path must be a NUL-terminated absolute path inside a loaded segment. */
    uint64_t interp_vaddr = 0;
    unsigned ninterp = 0;
    for (unsigned i = 0; i < eh.e_phnum; i++) {
        const Elf64_Phdr *p = &ph[i];
        if (p->p_type != PT_INTERP)
            continue;
        if (++ninterp > 1)
            return fail(err, err_len, "ELF: more than one PT_INTERP");
        if (p->p_filesz < 2 || p->p_filesz > ELF_LOADER_MAX_INTERP || p->p_offset > file_size ||
            p->p_filesz > file_size - p->p_offset)
            return fail(err, err_len, "ELF: PT_INTERP is empty, longer than %u bytes or beyond the file",
                        ELF_LOADER_MAX_INTERP);
        const uint8_t *path = file + p->p_offset;
        if (path[0] != '/' || path[p->p_filesz - 1] != 0 || memchr(path, 0, p->p_filesz) != path + p->p_filesz - 1)
            return fail(err, err_len, "ELF: PT_INTERP is not one NUL-terminated absolute path");
        bool loaded = false;
        for (unsigned j = 0; j < eh.e_phnum; j++)
            if (ph[j].p_type == PT_LOAD && p->p_offset >= ph[j].p_offset &&
                p->p_offset - ph[j].p_offset <= ph[j].p_filesz &&
                p->p_filesz <= ph[j].p_filesz - (p->p_offset - ph[j].p_offset) &&
                p->p_vaddr - ph[j].p_vaddr == p->p_offset - ph[j].p_offset)
                loaded = true;
        if (!loaded)
            return fail(err, err_len, "ELF: PT_INTERP does not lie inside a loaded segment");
        interp_vaddr = p->p_vaddr;
    }

    struct seg segs[ELF_LOADER_MAX_PHNUM];
    unsigned nsegs = 0;
    bool have_phdr = false;
    uint64_t phdr_gpa = 0;

    for (unsigned i = 0; i < eh.e_phnum; i++) {
        const Elf64_Phdr *p = &ph[i];
        if (p->p_type == PT_PHDR) {
            if (__builtin_add_overflow(p->p_vaddr, bias, &phdr_gpa))
                return fail(err, err_len, "ELF: PT_PHDR address overflows");
            have_phdr = true;
            continue;
        }
        if (p->p_type != PT_LOAD)
            continue;

        if (p->p_filesz > p->p_memsz)
            return fail(err, err_len, "ELF: segment %u has p_filesz > p_memsz", i);
        uint64_t fend;
        if (__builtin_add_overflow(p->p_offset, p->p_filesz, &fend))
            return fail(err, err_len, "ELF: segment %u file range overflows", i);
        if (fend > file_size)
            return fail(err, err_len, "ELF: segment %u file range lies beyond the end of the file",
                        i);
        struct seg s = {.off = p->p_offset, .filesz = p->p_filesz, .exec = (p->p_flags & PF_X) != 0};
        if (__builtin_add_overflow(p->p_vaddr, bias, &s.start) ||
            __builtin_add_overflow(s.start, p->p_memsz, &s.end))
            return fail(err, err_len, "ELF: segment %u address range overflows", i);
        if (s.start < min_gpa || s.end > max_gpa || s.end > guest_size)
            return fail(err, err_len,
                        "ELF: segment %u [0x%llx, 0x%llx) outside the allowed range [0x%llx, 0x%llx)",
                        i, (unsigned long long)s.start, (unsigned long long)s.end,
                        (unsigned long long)min_gpa,
                        (unsigned long long)(max_gpa < guest_size ? max_gpa : guest_size));
        /* Guest memory is flat, so segments sharing even one byte would clobber each
         * other; sharing a page without sharing bytes is fine. */
        for (unsigned j = 0; j < nsegs; j++)
            if (s.start < segs[j].end && segs[j].start < s.end)
                return fail(err, err_len, "ELF: PT_LOAD segments overlap");
        segs[nsegs++] = s;
    }
    if (nsegs == 0)
        return fail(err, err_len, "ELF: no PT_LOAD segment");

    uint64_t entry;
    if (__builtin_add_overflow(eh.e_entry, bias, &entry))
        return fail(err, err_len, "ELF: entry point overflows");
    bool entry_ok = false;
    uint64_t lowest = UINT64_MAX, highest = 0;
    for (unsigned j = 0; j < nsegs; j++) {
        if (segs[j].start == segs[j].end)
            continue; /* loads nothing */
        if (segs[j].exec && entry >= segs[j].start && entry < segs[j].end)
            entry_ok = true;
        if (segs[j].start < lowest)
            lowest = segs[j].start;
        if (segs[j].end > highest)
            highest = segs[j].end;
    }
    if (!entry_ok)
        return fail(err, err_len, "ELF: entry point 0x%llx is not inside an executable segment",
                    (unsigned long long)entry);
    uint64_t end;
    if (__builtin_add_overflow(highest, THAW_PAGE_SIZE - 1, &end))
        return fail(err, err_len, "ELF: image end overflows");
    end &= ~(THAW_PAGE_SIZE - 1);

    if (!have_phdr) {
        /* No PT_PHDR (common in static binaries): find the table in a loaded segment. */
        for (unsigned i = 0; i < eh.e_phnum; i++) {
            const Elf64_Phdr *p = &ph[i];
            if (p->p_type == PT_LOAD && eh.e_phoff >= p->p_offset &&
                eh.e_phoff - p->p_offset <= p->p_filesz &&
                ph_size <= p->p_filesz - (eh.e_phoff - p->p_offset)) {
                /* The segment's range was checked above, so this cannot overflow. */
                phdr_gpa = p->p_vaddr + bias + (eh.e_phoff - p->p_offset);
                break;
            }
        }
    }

    /* All checks passed: only now touch guest memory. */
    for (unsigned j = 0; j < nsegs; j++) {
        uint8_t *dst = guest + segs[j].start;
        if (segs[j].filesz)
            memcpy(dst, file + segs[j].off, (size_t)segs[j].filesz);
        memset(dst + segs[j].filesz, 0, (size_t)(segs[j].end - segs[j].start - segs[j].filesz));
    }

    *out = (struct elf_image){
        .entry = entry,
        .interp_gpa = ninterp ? interp_vaddr + bias : 0,
        .load_bias = bias,
        .phdr_gpa = phdr_gpa,
        .phnum = eh.e_phnum,
        .phentsize = eh.e_phentsize,
        .lowest = lowest & ~(THAW_PAGE_SIZE - 1),
        .end = end,
    };
    return 0;
}
