#include "host/vmm/instance.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "host/vmm/elf_loader.h"
#include "host/vmm/vcpu_kick.h"
#include "host/vmm/x86_boot.h"

#define STACK_RESERVE (16ull << 20) /* top of memory kept for the guest's stack */
#define PIE_BASE 0x1000000ull

/* Anonymous private memory: MADV_DONTNEED makes pages read back as zero. */
static int discard_anonymous(struct instance *inst, uint64_t gpa, uint64_t len, struct thaw_error *err)
{
    if (madvise(inst->mem + gpa, len, MADV_DONTNEED) < 0)
        return thaw_fail_errno(err, "madvise(MADV_DONTNEED) of guest memory");
    return 0;
}

static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) & ~(a - 1); }

static int write_all(int fd, const void *buf, size_t len)
{
    const uint8_t *p = buf;
    while (len) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int write_boot_info(struct instance *inst, const struct instance_config *cfg,
                           const struct elf_image *prog, uint64_t archive_gpa, uint64_t free_base,
                           struct thaw_error *err)
{
    struct thaw_boot_info *bi = GUEST_PTR(&inst->vm.mem, THAW_GPA_BOOT_INFO, struct thaw_boot_info);
    uint8_t *page = guest_mem_ptr(&inst->vm.mem, THAW_GPA_BOOT_INFO, THAW_BOOT_INFO_SIZE);
    if (!bi || !page)
        return thaw_fail(err, "guest memory too small for the boot info");
    memset(page, 0, THAW_BOOT_INFO_SIZE);
    size_t off = align_up(sizeof *bi, 16);
    size_t start = off;
    for (size_t i = 0; i < cfg->argc + cfg->envc; i++) {
        const char *s = i < cfg->argc ? cfg->argv[i] : cfg->envp[i - cfg->argc];
        size_t n = strlen(s) + 1;
        if (n > THAW_BOOT_INFO_SIZE - off)
            return thaw_fail(err, "arguments and environment exceed %llu bytes",
                             (unsigned long long)(THAW_BOOT_INFO_SIZE - start));
        memcpy(page + off, s, n);
        off += n;
    }
    uint64_t cwd_gpa = 0;
    if (cfg->cwd) {
        size_t n = strlen(cfg->cwd) + 1;
        if (cfg->cwd[0] != '/' || n > THAW_BOOT_INFO_SIZE - off)
            return thaw_fail(err, "working directory must be an absolute path that fits the boot info page");
        memcpy(page + off, cfg->cwd, n);
        cwd_gpa = THAW_GPA_BOOT_INFO + off;
        off += n;
    }
    uint64_t tsc;
    if (x86_read_tsc(&inst->vm.vcpus[0], &tsc, err) < 0)
        return -1;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    *bi = (struct thaw_boot_info){
        .magic = THAW_BOOT_MAGIC,
        .abi_version = THAW_ABI_VERSION,
        .mem_size = inst->mem_size,
        .tsc_khz = inst->vm.tsc_khz,
        .wall_ns_at_boot = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec,
        .tsc_at_boot = tsc,
        .prog_entry = prog->entry,
        .prog_phdr = prog->phdr_gpa,
        .prog_phnum = prog->phnum,
        .prog_phent = prog->phentsize,
        .prog_end = prog->end,
        .archive_base = cfg->archive_size ? archive_gpa : 0,
        .archive_size = cfg->archive_size,
        .free_base = free_base,
        .argc = (uint32_t)cfg->argc,
        .envc = (uint32_t)cfg->envc,
        .strings = THAW_GPA_BOOT_INFO + start,
        .strings_size = off - start - (cfg->cwd ? strlen(cfg->cwd) + 1 : 0),
        .cwd = cwd_gpa,
        .generation = 1,
        .max_request = inst->max_request,
        .flags = cfg->trace_syscalls ? THAW_BOOT_TRACE_SYSCALLS : 0,
        .rootfs_base = inst->rootfs.host ? inst->rootfs.gpa : 0,
        .rootfs_size = inst->rootfs.host ? inst->rootfs.size : 0,
    };
    FILE *r = fopen("/dev/urandom", "rb");
    if (!r || fread(bi->random, 1, sizeof bi->random, r) != sizeof bi->random) {
        if (r)
            fclose(r);
        return thaw_fail_errno(err, "cannot read /dev/urandom");
    }
    fclose(r);
    return 0;
}

int instance_boot(struct instance *inst, const struct instance_config *cfg, struct thaw_error *err)
{
    memset(inst, 0, sizeof *inst);
    inst->vm.kvm_fd = inst->vm.vm_fd = -1;
    rootfs_map_init(&inst->rootfs);
    inst->console_fd = cfg->console_fd;
    inst->console = cfg->console;
    inst->console_ctx = cfg->console_ctx;
    inst->kernel_log = cfg->kernel_log;
    inst->max_request = cfg->max_request ? cfg->max_request : THAW_MAX_REQUEST_DEFAULT;
    inst->mem_size = cfg->mem_size;
    inst->discard = discard_anonymous;
    if (cfg->mem_size < (uint64_t)THAW_MIN_MEM_MIB << 20 || cfg->mem_size > (uint64_t)THAW_MAX_MEM_MIB << 20 ||
        cfg->mem_size % THAW_HUGE_PAGE_SIZE)
        return thaw_fail(err, "memory size must be %u-%u MiB and a multiple of 2 MiB", THAW_MIN_MEM_MIB,
                         THAW_MAX_MEM_MIB);
    if (inst->max_request > cfg->mem_size / 4)
        return thaw_fail(err, "max request size is over a quarter of guest memory");

    /* Fresh anonymous memory: untouched pages stay unallocated on the host too. */
    inst->mem = mmap(NULL, cfg->mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                     -1, 0);
    if (inst->mem == MAP_FAILED) {
        inst->mem = NULL;
        return thaw_fail_errno(err, "cannot map %llu bytes of guest memory", (unsigned long long)cfg->mem_size);
    }
    inst->mem_owned = true;
    /* Transparent huge pages on the host: first touches of guest memory then fault
     * 2 MiB at a time instead of 4 KiB, which matters under shadow paging. */
    (void)madvise(inst->mem, cfg->mem_size, MADV_HUGEPAGE);
    if (vm_create(&inst->vm, err) < 0 || vm_set_memory(&inst->vm, inst->mem, cfg->mem_size, err) < 0 ||
        vm_add_vcpu(&inst->vm, err) < 0)
        goto fail;
    /* The root-filesystem image sits right above RAM (both 2 MiB multiples). */
    if (cfg->rootfs_path && (rootfs_map_open(&inst->rootfs, cfg->rootfs_path, cfg->mem_size, err) < 0 ||
                             vm_add_memory(&inst->vm, inst->rootfs.gpa, inst->rootfs.host, inst->rootfs.size, err) < 0))
        goto fail;
    uint64_t map_size = inst->rootfs.host ? align_up(inst->rootfs.gpa + inst->rootfs.size, THAW_HUGE_PAGE_SIZE)
                                          : cfg->mem_size;

    char why[256];
    struct elf_image kimg, prog;
    if (elf_load(cfg->kernel, cfg->kernel_size, inst->mem, cfg->mem_size, THAW_GPA_KERNEL, THAW_KERNEL_MAX_END,
                 THAW_GPA_KERNEL, &kimg, why, sizeof why) < 0) {
        thaw_fail(err, "guest kernel: %s", why);
        goto fail;
    }
    if (x86_read_kernel_header(&inst->vm.mem, &inst->kernel, err) < 0)
        goto fail;
    /* The program goes between the kernel and the stack reserve at the top; say so
     * plainly when a small guest leaves no room, rather than an empty address range. */
    if (cfg->mem_size <= THAW_KERNEL_MAX_END + STACK_RESERVE) {
        thaw_fail(err, "program: %llu MiB of guest memory leaves no room for it (the kernel takes %llu MiB "
                       "and the stack %llu MiB): give the function more memory",
                  (unsigned long long)(cfg->mem_size >> 20), (unsigned long long)(THAW_KERNEL_MAX_END >> 20),
                  (unsigned long long)(STACK_RESERVE >> 20));
        goto fail;
    }
    if (elf_load(cfg->program, cfg->program_size, inst->mem, cfg->mem_size, THAW_KERNEL_MAX_END,
                 cfg->mem_size - STACK_RESERVE, PIE_BASE, &prog, why, sizeof why) < 0) {
        thaw_fail(err, "program: %s (guest memory %llu MiB)", why, (unsigned long long)(cfg->mem_size >> 20));
        goto fail;
    }
    uint64_t archive_gpa = align_up(prog.end, THAW_PAGE_SIZE);
    if (cfg->archive_size > cfg->mem_size - STACK_RESERVE ||
        archive_gpa > cfg->mem_size - STACK_RESERVE - cfg->archive_size) {
        thaw_fail(err, "file archive of %zu bytes does not fit in guest memory", cfg->archive_size);
        goto fail;
    }
    if (cfg->archive_size)
        memcpy(inst->mem + archive_gpa, cfg->archive, cfg->archive_size);
    uint64_t free_base = align_up(archive_gpa + cfg->archive_size, THAW_PAGE_SIZE);

    if (x86_write_tables(&inst->vm.mem, map_size, &inst->kernel, err) < 0 ||
        x86_init_vcpu(&inst->vm, &inst->vm.vcpus[0], &inst->kernel, THAW_GPA_BOOT_INFO, err) < 0 ||
        write_boot_info(inst, cfg, &prog, archive_gpa, free_base, err) < 0)
        goto fail;

    if (cfg->before_run && cfg->before_run(cfg->before_run_ctx, err) < 0)
        goto fail;
    uint8_t *resp = NULL;
    size_t resp_len = 0;
    inst->run_timeout_ns = cfg->boot_timeout_ns;
    int ran = instance_run(inst, &resp, &resp_len, err);
    inst->run_timeout_ns = 0;
    if (ran < 0)
        goto fail;
    free(resp);
    if (inst->state != INSTANCE_READY) {
        thaw_fail(err, "program exited with status %lld before its ready point (first read of /dev/invoke)",
                  (long long)inst->exit_status);
        goto fail;
    }
    return 0;
fail:
    instance_destroy(inst);
    return -1;
}

/* Copies the guest's bytes out in chunks (the decoder checked the whole range) to the
 * console callback, or to console_fd. */
static void console_out(struct instance *inst, struct gpa data, uint64_t len, unsigned stream)
{
    if (stream == 3 && !inst->kernel_log)
        return;
    if (stream == 3 && !inst->console)
        (void)write_all(inst->console_fd, "[guest kernel] ", 15);
    uint8_t chunk[4096];
    for (uint64_t off = 0; off < len; off += sizeof chunk) {
        uint64_t n = len - off < sizeof chunk ? len - off : sizeof chunk;
        if (guest_copy_in(&inst->vm.mem, chunk, gpa_at(data.v + off), n) < 0)
            return;
        if (inst->console)
            inst->console(inst->console_ctx, stream, chunk, n);
        else if (write_all(inst->console_fd, chunk, n) < 0)
            return;
    }
}

static int guest_failed(struct instance *inst, struct thaw_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int guest_failed(struct instance *inst, struct thaw_error *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(inst->failure, sizeof inst->failure, fmt, ap);
    va_end(ap);
    inst->state = INSTANCE_FAILED;
    return thaw_fail(err, "%s", inst->failure);
}

static int report_fault(struct instance *inst, const struct thaw_fault_frame *f, uint64_t cr2,
                        struct thaw_error *err)
{
    char desc[400];
    hypercall_describe_fault(f, cr2, desc, sizeof desc);
    uint64_t guard_hi = inst->mem_size - THAW_STACK_SIZE; /* the unmapped guard below the stack */
    if (f->vector == 14 && cr2 < guard_hi && cr2 >= guard_hi - THAW_STACK_GUARD_SIZE) {
        char d2[sizeof desc + 96];
        snprintf(d2, sizeof d2, "stack overflow: ran past the %llu MiB stack into its guard page (%s)",
                 (unsigned long long)(THAW_STACK_SIZE >> 20), desc);
        snprintf(desc, sizeof desc, "%.399s", d2);
    }
    uint32_t tid;
    if (f->vector == 14 && x86_guard_page_owner(&inst->vm.mem, cr2, &tid)) {
        char d2[sizeof desc + 96];
        snprintf(d2, sizeof d2, "stack overflow in thread %u: ran into the guard page below its stack (%s)", tid,
                 desc);
        snprintf(desc, sizeof desc, "%.399s", d2);
    }
    bool in_kernel = f->rip >= THAW_GPA_KERNEL && f->rip < inst->kernel.image_end;
    return guest_failed(inst, err, "%s%s", desc, in_kernel ? " [in the guest kernel]" : " [in the program]");
}

/* Handles one hypercall. Returns 1 to keep running, 0 when the guest waits or exited,
 * -1 on failure. */
static int handle_hypercall(struct instance *inst, struct vcpu *v, uint16_t port, uint32_t arg,
                            uint8_t **resp, size_t *resp_len, struct thaw_error *err)
{
    struct kvm_regs regs;
    uint64_t rsp = 0;
    if (port == THAW_HC_PORT_BASE + THAW_HC_FAULT) {
        if (VM_IOCTL(v->fd, KVM_GET_REGS, &regs, err) < 0)
            return -1;
        rsp = regs.rsp;
    }
    struct hypercall hc;
    struct thaw_error why;
    if (hypercall_decode(&inst->vm.mem, port, arg, rsp, &hc, &why) < 0)
        return guest_failed(inst, err, "guest made a bad hypercall, instance stopped: %s", why.msg);
    inst->stats.hypercalls++;
    switch (hc.nr) {
    case THAW_HC_CONSOLE_WRITE:
        console_out(inst, hc.u.console.data, hc.u.console.len, hc.u.console.stream);
        return 1;
    case THAW_HC_WALLCLOCK: {
        struct timespec now;
        uint64_t tsc;
        if (x86_read_tsc(v, &tsc, err) < 0)
            return -1;
        clock_gettime(CLOCK_REALTIME, &now);
        if (hypercall_wallclock_reply(&inst->vm.mem, &hc,
                                      (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec, tsc, err) < 0)
            return -1;
        return 1;
    }
    case THAW_HC_INVOKE_NEXT:
        inst->response_lost = hc.u.invoke.response_lost;
        if (resp && hypercall_invoke_response(&inst->vm.mem, &hc, resp, resp_len, err) < 0)
            return -1;
        inst->pending = hc;
        inst->state = INSTANCE_READY;
        return 0;
    case THAW_HC_EXIT:
        inst->exit_status = hc.u.exit_status;
        inst->state = INSTANCE_EXITED;
        return 0;
    case THAW_HC_SET_SEGMENT_BASE: {
        struct kvm_sregs sregs;
        if (VM_IOCTL(v->fd, KVM_GET_SREGS, &sregs, err) < 0)
            return -1;
        if (hc.u.segment.which == THAW_SEGMENT_FS)
            sregs.fs.base = hc.u.segment.base;
        else
            sregs.gs.base = hc.u.segment.base;
        if (VM_IOCTL(v->fd, KVM_SET_SREGS, &sregs, err) < 0)
            return -1;
        return 1;
    }
    case THAW_HC_DISCARD:
        if (inst->discard(inst, hc.u.discard.addr, hc.u.discard.len, err) < 0)
            return -1;
        inst->stats.discarded_bytes += hc.u.discard.len;
        return 1;
    case THAW_HC_PANIC: {
        char msg[256] = "";
        uint64_t n = hc.u.console.len < sizeof msg - 1 ? hc.u.console.len : sizeof msg - 1;
        (void)guest_copy_in(&inst->vm.mem, msg, hc.u.console.data, n);
        return guest_failed(inst, err, "guest kernel panic: %.*s", (int)n, msg);
    }
    case THAW_HC_FAULT: {
        struct kvm_sregs sregs;
        if (VM_IOCTL(v->fd, KVM_GET_SREGS, &sregs, err) < 0)
            return -1;
        return report_fault(inst, &hc.u.fault, sregs.cr2, err);
    }
    }
    return guest_failed(inst, err, "unhandled hypercall %u", hc.nr);
}

/* Hypercalls arrive through the ring-0 #UD stub (abi.h). An OUT from that stub is a
 * hypercall only if the #UD frame's rip is the kernel's hypercall UD2; otherwise the
 * program or kernel really executed an invalid instruction. Returns 0 to go on with
 * the hypercall, -1 when it was a fault. */
static int ud_trap_check(struct instance *inst, struct vcpu *v, struct thaw_error *err)
{
    struct kvm_regs regs;
    if (VM_IOCTL(v->fd, KVM_GET_REGS, &regs, err) < 0)
        return -1;
    if (regs.rip != inst->kernel.hypercall_out + 1) /* rip is past the 1-byte OUT */
        return 0; /* the generic exception path reports its own frame */
    uint64_t frame[5];
    if (guest_copy_in(&inst->vm.mem, frame, gpa_at(regs.rsp), sizeof frame) < 0)
        return guest_failed(inst, err, "#UD frame at rsp %#llx outside guest memory",
                            (unsigned long long)regs.rsp);
    if (frame[0] == inst->kernel.hypercall_ud2)
        return 0;
    struct thaw_fault_frame f = {.vector = 6, .rip = frame[0], .cs = frame[1], .rflags = frame[2],
                                 .rsp = frame[3], .ss = frame[4]};
    return report_fault(inst, &f, 0, err);
}

static int run_stopped(struct instance *inst, enum vcpu_kick_reason why, struct thaw_error *err)
{
    if (why == VCPU_KICK_REQUEST) {
        inst->stopped_by = INSTANCE_STOP_KICKED;
        return guest_failed(inst, err, "%s", inst->kicker.why);
    }
    inst->stopped_by = why == VCPU_KICK_DEADLINE ? INSTANCE_STOP_TIMEOUT : INSTANCE_STOP_INTERRUPTED;
    if (why == VCPU_KICK_DEADLINE)
        return guest_failed(inst, err, "timed out after %.1f s", (double)inst->run_timeout_ns / 1e9);
    return guest_failed(inst, err, "interrupted (SIGINT or SIGTERM)");
}

/* KVM_RUN until an exit to handle: 0, or -1 when kicked out (stop, deadline) or failed. */
static int run_once(struct instance *inst, struct vcpu *v, struct vcpu_run_guard *g, struct thaw_error *err)
{
    for (;;) {
        enum vcpu_kick_reason why = vcpu_kick_check(g);
        if (why != VCPU_KICK_NONE)
            return run_stopped(inst, why, err);
        if (ioctl(v->fd, KVM_RUN, NULL) == 0)
            return 0;
        if (errno != EINTR) {
            inst->state = INSTANCE_FAILED;
            return thaw_fail_errno(err, "KVM_RUN failed");
        }
    }
}

static int run_loop(struct instance *inst, struct vcpu_run_guard *g, uint8_t **resp, size_t *resp_len,
                    struct thaw_error *err);

int instance_run(struct instance *inst, uint8_t **resp, size_t *resp_len, struct thaw_error *err)
{
    struct vcpu_run_guard g;
    if (vcpu_run_begin(&g, inst->vm.vcpus[0].run, inst->run_timeout_ns, &inst->kicker, err) < 0) {
        inst->state = INSTANCE_FAILED;
        return -1;
    }
    int r = run_loop(inst, &g, resp, resp_len, err);
    vcpu_run_end(&g);
    if (r == 0 && vcpu_kicked(&inst->kicker)) { /* kicked after the guest's last exit */
        if (resp) {
            free(*resp);
            *resp = NULL;
            *resp_len = 0;
        }
        return run_stopped(inst, VCPU_KICK_REQUEST, err);
    }
    return r;
}

void instance_kick(struct instance *inst, const char *why)
{
    vcpu_kick(&inst->kicker, why);
}

static int run_loop(struct instance *inst, struct vcpu_run_guard *g, uint8_t **resp, size_t *resp_len,
                    struct thaw_error *err)
{
    struct vcpu *v = &inst->vm.vcpus[0];
    for (;;) {
        if (run_once(inst, v, g, err) < 0)
            return -1;
        inst->stats.vm_exits++;
        struct kvm_run *run = v->run;
        switch (run->exit_reason) {
        case KVM_EXIT_IO: {
            if (run->io.direction != KVM_EXIT_IO_OUT || run->io.size != 4 || run->io.count != 1)
                return guest_failed(inst, err, "guest did unsupported port I/O (port %#x, %s, size %u)",
                                    run->io.port, run->io.direction == KVM_EXIT_IO_OUT ? "out" : "in",
                                    run->io.size);
            uint32_t arg;
            memcpy(&arg, (uint8_t *)run + run->io.data_offset, 4);
            int r = ud_trap_check(inst, v, err);
            if (r == 0)
                r = handle_hypercall(inst, v, run->io.port, arg, resp, resp_len, err);
            if (r <= 0)
                return r;
            break;
        }
        case KVM_EXIT_SHUTDOWN: {
            struct kvm_regs regs;
            struct thaw_error e2;
            uint64_t rip = VM_IOCTL(v->fd, KVM_GET_REGS, &regs, &e2) < 0 ? 0 : regs.rip;
            return guest_failed(inst, err, "guest triple-faulted (KVM_EXIT_SHUTDOWN) near rip %#llx",
                                (unsigned long long)rip);
        }
        case KVM_EXIT_HLT:
            return guest_failed(inst, err, "guest halted (HLT) outside a hypercall");
        case KVM_EXIT_MMIO:
            return guest_failed(inst, err, "guest touched unbacked guest-physical address %#llx",
                                (unsigned long long)run->mmio.phys_addr);
        case KVM_EXIT_FAIL_ENTRY:
            return guest_failed(inst, err, "KVM_RUN entry failure, hardware reason %#llx",
                                (unsigned long long)run->fail_entry.hardware_entry_failure_reason);
        case KVM_EXIT_INTERNAL_ERROR:
            return guest_failed(inst, err, "KVM internal error, suberror %u", run->internal.suberror);
        case KVM_EXIT_INTR:
            break;
        default:
            return guest_failed(inst, err, "unexpected KVM exit reason %u", run->exit_reason);
        }
    }
}

int instance_invoke(struct instance *inst, const void *req, size_t req_len, uint8_t **resp, size_t *resp_len,
                    struct thaw_error *err)
{
    *resp = NULL;
    *resp_len = 0;
    if (inst->state != INSTANCE_READY)
        return thaw_fail(err, "instance is not waiting for a request (%s)",
                         inst->state == INSTANCE_EXITED ? "it exited" : inst->failure);
    if (hypercall_invoke_reply(&inst->vm.mem, &inst->pending, req, req_len, 0, err) < 0)
        return -1;
    inst->state = INSTANCE_NEW;
    struct kvm_counters before, after;
    bool counted = inst->stats.invocations == 0 && kvm_stats_read(&inst->vm.vcpus[0].stats, &before);
    if (instance_run(inst, resp, resp_len, err) < 0)
        return -1;
    if (counted && kvm_stats_read(&inst->vm.vcpus[0].stats, &after)) {
        kvm_counters_sub(&after, &before, &inst->stats.kvm_first);
        inst->stats.kvm_first_ok = true;
    }
    inst->stats.invocations++;
    if (inst->state == INSTANCE_EXITED) {
        free(*resp);
        *resp = NULL;
        return thaw_fail(err, "program exited with status %lld during the invocation",
                         (long long)inst->exit_status);
    }
    if (inst->response_lost) {
        free(*resp);
        *resp = NULL;
        *resp_len = 0;
        return thaw_fail(err, "the guest ran out of memory while writing its response (the response is lost)");
    }
    if (!*resp) {
        /* The guest read again without having been handed a request? Impossible for a
         * correct kernel: treat as a protocol error. */
        return thaw_fail(err, "guest returned no response");
    }
    return 0;
}

/* Answers the pending read with no request and a control flag (THAW_INVOKE_SHUTDOWN,
 * THAW_INVOKE_TRIM) and runs the guest until it stops again; *answered: it sent a
 * response, which neither flag asks for. */
static int run_control(struct instance *inst, uint32_t flag, bool *answered, struct thaw_error *err)
{
    if (hypercall_invoke_reply(&inst->vm.mem, &inst->pending, NULL, 0, flag, err) < 0)
        return -1;
    inst->state = INSTANCE_NEW;
    uint8_t *resp = NULL;
    size_t len = 0;
    int r = instance_run(inst, &resp, &len, err);
    *answered = resp != NULL;
    free(resp);
    return r;
}

int instance_trim(struct instance *inst, struct thaw_error *err)
{
    if (inst->state != INSTANCE_READY)
        return thaw_fail(err, "instance is not waiting for a request");
    if (!inst->pending.u.invoke.can_trim)
        return 0;
    bool answered;
    if (run_control(inst, THAW_INVOKE_TRIM, &answered, err) < 0)
        return -1;
    if (inst->state != INSTANCE_READY || answered)
        return guest_failed(inst, err, "guest did not wait for a request again after THAW_INVOKE_TRIM");
    return 1;
}

int instance_shutdown(struct instance *inst, struct thaw_error *err)
{
    if (inst->state != INSTANCE_READY)
        return 0;
    bool answered;
    if (run_control(inst, THAW_INVOKE_SHUTDOWN, &answered, err) < 0)
        return -1;
    if (inst->state != INSTANCE_EXITED)
        return thaw_fail(err, "program kept reading /dev/invoke after end of input");
    return 0;
}

void instance_destroy(struct instance *inst)
{
    vm_destroy(&inst->vm);
    rootfs_map_close(&inst->rootfs);
    if (inst->mem && inst->mem_owned)
        munmap(inst->mem, inst->mem_size);
    inst->mem = NULL;
}
