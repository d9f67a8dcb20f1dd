/* Loads an x86-64 ELF executable (ET_EXEC or ET_DYN) into guest memory. A dynamically
 * linked one keeps its PT_INTERP: the guest kernel loads that interpreter from the
 * function's files (src/guest/kernel/exec.c); here it is only validated. The file is hostile: every header field is
 * validated, all arithmetic is overflow-checked, and guest memory is only written
 * once the whole file has been accepted. Static-pie relocations are not applied
 * here: such binaries relocate themselves at startup. */
#ifndef THAW_HOST_VMM_ELF_LOADER_H
#define THAW_HOST_VMM_ELF_LOADER_H

#include <stddef.h>
#include <stdint.h>

#define ELF_LOADER_MAX_PHNUM 64u
#define ELF_LOADER_MAX_INTERP 256u /* PT_INTERP bytes, NUL included */

struct elf_image {
    uint64_t entry;     /* after relocation by load_bias */
    uint64_t interp_gpa; /* guest address of the PT_INTERP path, 0 for static programs */
    uint64_t load_bias; /* 0 for ET_EXEC */
    uint64_t phdr_gpa;  /* guest address of the program headers: PT_PHDR's vaddr, else the
                           address of e_phoff inside the PT_LOAD segment whose file range
                           covers the whole table; 0 if neither */
    uint64_t phnum, phentsize;
    uint64_t lowest; /* lowest loaded address, page-aligned down */
    uint64_t end;    /* first byte past the highest loaded segment (vaddr+memsz), page-aligned up */
};

/* file/file_size: the ELF bytes. guest/guest_size: guest memory (guest-physical 0 at
 * guest[0]). Every PT_LOAD segment (after adding the bias) must lie within
 * [min_gpa, max_gpa) and within guest_size. For ET_DYN the bias is pie_base, which must
 * be page-aligned. Copies p_filesz bytes and zero-fills up to p_memsz.
 * Returns 0, or -1 with a one-line reason in err (if err_len > 0); on failure neither
 * guest memory nor *out is touched. */
int elf_load(const uint8_t *file, size_t file_size, uint8_t *guest, uint64_t guest_size,
             uint64_t min_gpa, uint64_t max_gpa, uint64_t pie_base, struct elf_image *out,
             char *err, size_t err_len);

#endif
