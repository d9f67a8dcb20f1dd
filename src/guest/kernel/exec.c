/* Program start for dynamically linked programs: the monitor loaded the program at its
 * link address; if it names an interpreter (PT_INTERP, e.g. Debian's
 * /lib64/ld-linux-x86-64.so.2), that interpreter is loaded here from the function's
 * files, the way Linux's binfmt_elf does, and the program starts in it. The interpreter
 * file is hostile like any file: every header field is checked. */
#include "kernel.h"
#include "syscalls.h"
#include "exec.h"

#define PT_LOAD 1
#define PT_INTERP 3
#define ET_DYN 3
#define EM_X86_64 62
#define MAX_PHNUM 32

struct elf64_ehdr {
    uint8_t ident[16];
    uint16_t type, machine;
    uint32_t version;
    uint64_t entry, phoff, shoff;
    uint32_t flags;
    uint16_t ehsize, phentsize, phnum, shentsize, shnum, shstrndx;
};

struct elf64_phdr {
    uint32_t type, flags;
    uint64_t offset, vaddr, paddr, filesz, memsz, align;
};

const char *exec_interp_path(const struct thaw_boot_info *bi)
{
    if (bi->prog_phent != sizeof(struct elf64_phdr) || bi->prog_phnum > 64 ||
        !user_range_ok(bi->prog_phdr, bi->prog_phnum * sizeof(struct elf64_phdr)))
        return 0;
    const struct elf64_phdr *ph = (const struct elf64_phdr *)(uintptr_t)bi->prog_phdr;
    /* The load bias of a PIE: AT_PHDR minus the vaddr its PT_PHDR (type 6) names. */
    uint64_t bias = 0;
    for (uint64_t i = 0; i < bi->prog_phnum; i++)
        if (ph[i].type == 6)
            bias = bi->prog_phdr - ph[i].vaddr;
    for (uint64_t i = 0; i < bi->prog_phnum; i++) {
        if (ph[i].type != PT_INTERP)
            continue;
        /* The monitor checked it is a NUL-terminated path inside a loaded segment. */
        uint64_t at = ph[i].vaddr + bias;
        if (!user_range_ok(at, ph[i].filesz) || ph[i].filesz < 2)
            return 0;
        return (const char *)(uintptr_t)at;
    }
    return 0;
}

static int64_t read_exact(int fd, void *buf, uint64_t len, uint64_t off)
{
    int64_t r = sys_pread64(fd, buf, len, (int64_t)off);
    if (r < 0)
        return r;
    return (uint64_t)r == len ? 0 : -ENOEXEC;
}

/* Loads the ELF shared object at path into fresh pages; *why is set on failure. */
static int64_t load_interp(const char *path, struct exec_interp *out, const char **why)
{
    int64_t fd = sys_openat(AT_FDCWD, path, O_RDONLY | O_CLOEXEC, 0);
    if (fd < 0) {
        *why = fd == -ENOENT ? "no such file in the function's files" : "cannot open it";
        return fd;
    }
    struct elf64_ehdr eh;
    struct elf64_phdr ph[MAX_PHNUM];
    int64_t r = read_exact((int)fd, &eh, sizeof eh, 0);
    *why = "not an x86-64 ELF shared object";
    if (r < 0 || memcmp(eh.ident, "\177ELF\2\1\1", 7) != 0 || eh.type != ET_DYN || eh.machine != EM_X86_64 ||
        eh.phentsize != sizeof(struct elf64_phdr) || eh.phnum == 0 || eh.phnum > MAX_PHNUM)
        goto bad;
    if (read_exact((int)fd, ph, eh.phnum * sizeof ph[0], eh.phoff) < 0)
        goto bad;
    uint64_t lo = ~0ull, hi = 0;
    for (unsigned i = 0; i < eh.phnum; i++) {
        if (ph[i].type == PT_INTERP) {
            *why = "the interpreter itself names an interpreter";
            goto bad;
        }
        if (ph[i].type != PT_LOAD)
            continue;
        *why = "bad PT_LOAD segment";
        if (ph[i].filesz > ph[i].memsz || ph[i].memsz > (1ull << 30) || ph[i].vaddr > (1ull << 30) ||
            (ph[i].vaddr % THAW_PAGE_SIZE) != (ph[i].offset % THAW_PAGE_SIZE))
            goto bad;
        lo = MIN(lo, ALIGN_DOWN(ph[i].vaddr, THAW_PAGE_SIZE));
        hi = MAX(hi, ALIGN_UP(ph[i].vaddr + ph[i].memsz, THAW_PAGE_SIZE));
    }
    if (hi <= lo) {
        *why = "no PT_LOAD segment";
        goto bad;
    }
    uint8_t *base = mm_alloc_pages(hi - lo);
    if (!base) {
        *why = "out of guest memory";
        r = -ENOMEM;
        goto out;
    }
    base -= lo;
    for (unsigned i = 0; i < eh.phnum; i++) {
        if (ph[i].type != PT_LOAD || !ph[i].filesz)
            continue;
        if (read_exact((int)fd, base + ph[i].vaddr, ph[i].filesz, ph[i].offset) < 0) {
            *why = "segment lies beyond the end of the file";
            mm_free_pages(base + lo, hi - lo);
            goto bad;
        }
    }
    if (eh.entry < lo || eh.entry >= hi) {
        *why = "entry point outside its segments";
        mm_free_pages(base + lo, hi - lo);
        goto bad;
    }
    out->base = (uint64_t)(uintptr_t)base;
    out->entry = out->base + eh.entry;
    r = 0;
    goto out;
bad:
    r = -ENOEXEC;
out:
    sys_close((int)fd);
    return r;
}

bool exec_load_interp(const struct thaw_boot_info *bi, struct exec_interp *out)
{
    const char *path = exec_interp_path(bi);
    if (!path)
        return false;
    const char *why = "";
    int64_t r = load_interp(path, out, &why);
    if (r < 0)
        kpanic("cannot load the program interpreter %s: %s (error %ld)", path, why, -r);
    return true;
}
