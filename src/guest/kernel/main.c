/* Guest kernel start-up: check the boot info, set up memory, time, entropy and the
 * file system, build the program's initial stack (argv, envp, auxv) and jump to it. */
#include "kernel.h"
#include "exec.h"
#include "thread.h"
#include "rootfs.h"
#include "syscalls.h"
#include "guard.h"

#define STACK_SIZE THAW_STACK_SIZE

volatile struct thaw_boot_info *boot_info;

static uint64_t push_bytes(uint64_t sp, const void *data, size_t len)
{
    sp -= len;
    memcpy((void *)(uintptr_t)sp, data, len);
    return sp;
}

void kernel_main(struct thaw_boot_info *bi)
{
    boot_info = bi;
    if (bi->magic != THAW_BOOT_MAGIC || bi->abi_version != THAW_ABI_VERSION)
        kpanic("bad boot info (magic %x, abi %u)", bi->magic, bi->abi_version);
    uaccess_init(bi->mem_size);
    thread_init();
    time_init();
    random_init();
    mm_init(bi->free_base, bi->mem_size, STACK_SIZE);
    guard_init((uint64_t *)(uintptr_t)THAW_GPA_PD, THAW_MAX_PD_PAGES * 512ull, bi->mem_size);
    if (bi->rootfs_size && (bi->rootfs_base < bi->mem_size || bi->rootfs_base % THAW_PAGE_SIZE))
        kpanic("root filesystem image at %lx overlaps RAM", bi->rootfs_base);
    rootfs_init(bi->rootfs_base, bi->rootfs_size);
    fs_init(bi->archive_size ? (const uint8_t *)(uintptr_t)bi->archive_base : 0, bi->archive_size);
    if (bi->cwd) {
        const char *cwd = (const char *)(uintptr_t)bi->cwd;
        int64_t r = user_string_len(cwd, 256) < 0 ? -EFAULT : sys_chdir(cwd);
        if (r < 0)
            kpanic("cannot enter the working directory %s (error %ld)", cwd, -r);
    }
    struct exec_interp interp = {0};
    bool dynamic = exec_load_interp(bi, &interp);

    /* The initial stack, top down: strings, AT_RANDOM bytes, then (16-byte aligned)
     * argc, argv[], NULL, envp[], NULL, auxv pairs, as the SysV ABI lays it out. */
    uint64_t sp = mm_stack_top();
    const char *strings = (const char *)(uintptr_t)bi->strings;
    uint64_t nstr = (uint64_t)bi->argc + bi->envc;
    if (nstr > 256 || bi->strings_size > THAW_BOOT_INFO_SIZE)
        kpanic("too many arguments");
    uint64_t str_addr[256];
    sp = push_bytes(sp, strings, bi->strings_size);
    uint64_t p = sp;
    for (uint64_t i = 0; i < nstr; i++) {
        str_addr[i] = p;
        p += strlen((const char *)(uintptr_t)p) + 1;
    }
    uint8_t rnd[16];
    random_bytes(rnd, sizeof rnd);
    uint64_t at_random = sp = push_bytes(sp, rnd, sizeof rnd);
    uint64_t at_platform = sp = push_bytes(sp, "x86_64", 7);

    uint64_t auxv[][2] = {
        {AT_PHDR, bi->prog_phdr},   {AT_PHENT, bi->prog_phent}, {AT_PHNUM, bi->prog_phnum},
        {AT_PAGESZ, THAW_PAGE_SIZE}, {AT_BASE, interp.base},               {AT_FLAGS, 0},
        {AT_ENTRY, bi->prog_entry}, {AT_UID, 0},                {AT_EUID, 0},
        {AT_GID, 0},                {AT_EGID, 0},               {AT_SECURE, 0},
        {AT_CLKTCK, 100},           {AT_RANDOM, at_random},     {AT_PLATFORM, at_platform},
        {AT_HWCAP, 0},              {AT_EXECFN, bi->argc ? str_addr[0] : 0},
        {AT_NULL, 0},
    };
    uint64_t words = 1 + bi->argc + 1 + bi->envc + 1 + 2 * ARRAY_SIZE(auxv);
    sp = ALIGN_DOWN(sp - words * 8, 16);
    uint64_t *w = (uint64_t *)(uintptr_t)sp;
    *w++ = bi->argc;
    for (uint32_t i = 0; i < bi->argc; i++)
        *w++ = str_addr[i];
    *w++ = 0;
    for (uint32_t i = 0; i < bi->envc; i++)
        *w++ = str_addr[bi->argc + i];
    *w++ = 0;
    memcpy(w, auxv, sizeof auxv);
    enter_program(dynamic ? interp.entry : bi->prog_entry, sp);
}
