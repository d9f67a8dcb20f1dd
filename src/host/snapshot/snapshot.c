#include "host/snapshot/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "host/function/bundle.h"
#include "host/snapshot/pager_watch.h"
#include "host/snapshot/rootfs_snapshot.h"
#include "host/snapshot/state_file.h"
#include "host/util/atomic_file.h"
#include "host/util/clock.h"
#include "host/util/cpu_load.h"
#include "host/util/file.h"
#include "host/util/snap_identity.h"
#include "host/util/snapdir.h"
#include "host/util/thread_spread.h"
#include "host/vmm/prefault_vcpu.h"
#include "host/vmm/vm_pool.h"
#include "host/vmm/x86_boot.h"

#define PAGE 4096ull
#define STATE_MAX (16u << 20)

/* The MSRs thaw guests use; each is saved only if KVM lists it (KVM_GET_MSR_INDEX_LIST). */
static const uint32_t wanted_msrs[] = {
    0x10,       /* IA32_TSC: restored last among MSRs, see below */
    0x1a0,      /* IA32_MISC_ENABLE */
    0x277,      /* IA32_CR_PAT */
    0x174, 0x175, 0x176, /* SYSENTER_CS/ESP/EIP */
    0xc0000081, /* STAR */
    0xc0000082, /* LSTAR */
    0xc0000083, /* CSTAR */
    0xc0000084, /* SFMASK */
    0xc0000102, /* KERNEL_GS_BASE */
    0xc0000103, /* TSC_AUX */
};

static int msr_listed(const struct kvm_msr_list *list, uint32_t idx)
{
    for (uint32_t i = 0; i < list->nmsrs; i++)
        if (list->indices[i] == idx)
            return 1;
    return 0;
}

static int save_vcpu(struct instance *inst, struct snapshot_state *s, struct thaw_error *err)
{
    struct vcpu *v = &inst->vm.vcpus[0];
    /* Ordering rule: the guest stopped on a KVM_EXIT_IO. KVM completes that
     * instruction only on the next KVM_RUN, so run once with immediate_exit set
     * (returns at once with EINTR) before reading any state. */
    v->run->immediate_exit = 1;
    int r = ioctl(v->fd, KVM_RUN, NULL);
    v->run->immediate_exit = 0;
    if (r == 0 || errno != EINTR)
        return thaw_fail_errno(err, "KVM_RUN (immediate_exit, to complete the pending I/O) did not return EINTR");

    /* MP state first: in KVM, KVM_GET_MP_STATE is where pending INIT/SIPI events get
     * accepted into the vCPU state, so it may change what the other reads return. thaw
     * has no in-kernel LAPIC, so today it changes nothing, but reading it first keeps
     * the snapshot consistent if that ever changes. */
    if (VM_IOCTL(v->fd, KVM_GET_MP_STATE, &s->mp_state, err) < 0 || VM_IOCTL(v->fd, KVM_GET_REGS, &s->regs, err) < 0 ||
        VM_IOCTL(v->fd, KVM_GET_SREGS, &s->sregs, err) < 0 || VM_IOCTL(v->fd, KVM_GET_FPU, &s->fpu, err) < 0)
        return -1;
    if (ioctl(inst->vm.kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE) > 0)
        s->has_xsave = VM_IOCTL(v->fd, KVM_GET_XSAVE, &s->xsave, err) == 0;
    if (ioctl(inst->vm.kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0)
        s->has_xcrs = VM_IOCTL(v->fd, KVM_GET_XCRS, &s->xcrs, err) == 0;
    if (ioctl(inst->vm.kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_DEBUGREGS) > 0)
        s->has_debugregs = VM_IOCTL(v->fd, KVM_GET_DEBUGREGS, &s->debugregs, err) == 0;

    struct {
        struct kvm_msr_list hdr;
        uint32_t idx[1024];
    } list = {.hdr.nmsrs = 1024};
    if (VM_IOCTL(inst->vm.kvm_fd, KVM_GET_MSR_INDEX_LIST, &list, err) < 0)
        return -1;
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry e[sizeof wanted_msrs / sizeof wanted_msrs[0]];
    } msrs = {0};
    for (size_t i = 0; i < sizeof wanted_msrs / sizeof wanted_msrs[0]; i++)
        if (msr_listed(&list.hdr, wanted_msrs[i]))
            msrs.e[msrs.hdr.nmsrs++].index = wanted_msrs[i];
    int got = VM_IOCTL(v->fd, KVM_GET_MSRS, &msrs, err);
    if (got < 0)
        return -1;
    if ((uint32_t)got != msrs.hdr.nmsrs)
        return thaw_fail(err, "KVM_GET_MSRS read %d of %u MSRs (stopped at %#x)", got, msrs.hdr.nmsrs,
                         msrs.e[got].index);
    s->msr_count = msrs.hdr.nmsrs;
    memcpy(s->msrs, msrs.e, sizeof(struct kvm_msr_entry) * s->msr_count);
    s->tsc_khz = inst->vm.tsc_khz;
    if (x86_read_tsc(v, &s->tsc, err) < 0)
        return -1;
    /* The CPUID given to the vCPU when it was created (KVM_SET_CPUID2; KVM_GET_CPUID2
     * would add bits KVM updates at run time, such as OSXSAVE): a restore checks that
     * this host gives the same. */
    const struct kvm_cpuid2 *cpuid = inst->vm.cpuid;
    if (cpuid->nent > STATE_FILE_MAX_CPUID)
        return thaw_fail(err, "the vCPU has %u CPUID leaves, a snapshot holds at most %u", cpuid->nent,
                         STATE_FILE_MAX_CPUID);
    s->cpuid_count = cpuid->nent;
    memcpy(s->cpuid, cpuid->entries, sizeof cpuid->entries[0] * s->cpuid_count);
    /* vCPU events last: they describe an exception or interrupt in flight relative to
     * the registers read above (an injected event must match the RIP it will be
     * delivered at), so nothing may run or be read in between that could change them. */
    if (VM_IOCTL(v->fd, KVM_GET_VCPU_EVENTS, &s->events, err) < 0)
        return -1;
    return 0;
}

int snapshot_write_image(const struct instance *inst, int fd, struct thaw_error *err)
{
    static const uint8_t zero[PAGE];
    for (uint64_t off = 0; off < inst->mem_size;) {
        if (!memcmp(inst->mem + off, zero, PAGE)) {
            off += PAGE;
            continue;
        }
        uint64_t end = off + PAGE;
        while (end < inst->mem_size && end - off < (8u << 20) && memcmp(inst->mem + end, zero, PAGE))
            end += PAGE;
        for (uint64_t p = off; p < end;) {
            ssize_t n = pwrite(fd, inst->mem + p, end - p, (off_t)p);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return thaw_fail_errno(err, "writing the memory image");
            p += (uint64_t)n;
        }
        off = end;
    }
    return 0;
}

int snapshot_capture_state(struct instance *inst, const char *function_name, uint8_t **state, size_t *len,
                           struct thaw_error *err)
{
    *state = NULL;
    *len = 0;
    if (inst->state != INSTANCE_READY)
        return thaw_fail(err, "can only snapshot an instance waiting at /dev/invoke");
    struct snapshot_state *s = calloc(1, sizeof *s);
    if (!s)
        return thaw_fail(err, "out of memory");
    int rc = -1;
    if (save_vcpu(inst, s, err) < 0 || snap_random(s->snapshot_id, sizeof s->snapshot_id, err) < 0)
        goto out;
    struct snapshot_monitor_state *m = &s->monitor;
    m->mem_size = inst->mem_size;
    m->max_request = inst->max_request;
    m->pending_invoke_gpa = inst->pending.u.invoke.args.v;
    const struct thaw_boot_info *bi = GUEST_PTR(&inst->vm.mem, THAW_GPA_BOOT_INFO, struct thaw_boot_info);
    m->generation = bi->generation;
    m->kernel = inst->kernel;
    m->boot_info_gpa = THAW_GPA_BOOT_INFO;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    m->created_unix_ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
    snprintf(m->function_name, sizeof m->function_name, "%s", function_name);
    m->vcpu_count = 1;
    rc = state_file_encode(s, state, len, err);
out:
    free(s);
    return rc;
}

int snapshot_writer_begin(struct snapshot_writer *w, const char *dir, struct thaw_error *err)
{
    memset(w, 0, sizeof *w);
    w->memory_fd = -1;
    if ((size_t)snprintf(w->dir, sizeof w->dir, "%s", dir) >= sizeof w->dir)
        return thaw_fail(err, "snapshot directory name too long: %s", dir);
    /* Everything goes into a fresh directory that replaces dir in one rename: a reader
     * sees the old snapshot (with its working set) or the new one, never a mix. */
    snapdir_clean_leftovers(dir);
    if (snapdir_begin(dir, w->tmp, sizeof w->tmp, err) < 0)
        return -1;
    char path[sizeof w->tmp + 16];
    snprintf(path, sizeof path, "%s/" SNAPDIR_MEMORY, w->tmp);
    w->memory_fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (w->memory_fd < 0) {
        thaw_fail_errno(err, "cannot create %s", path);
        snapdir_abort(w->tmp);
        w->tmp[0] = 0;
        return -1;
    }
    return 0;
}

/* Decodes the encoded state into s exactly as a restore would (it may come from a
 * process we do not trust: a jailed worker) and makes the snapshot's identity from it. */
static int decode_identity(const uint8_t *state, size_t len, struct snapshot_state *s, struct snap_identity *id,
                           struct thaw_error *err)
{
    if (len > STATE_MAX || state_file_decode(state, len, s, err) < 0) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", len > STATE_MAX ? "too large" : err->msg);
        return thaw_fail(err, "the snapshot's state does not decode: %s", why);
    }
    memcpy(id->id, s->snapshot_id, sizeof id->id);
    return snap_identity_digest(id, state, len, err);
}

int snapshot_state_identity(const uint8_t *state, size_t len, struct snap_identity *id, struct thaw_error *err)
{
    struct snapshot_state *s = calloc(1, sizeof *s);
    if (!s)
        return thaw_fail(err, "out of memory");
    int rc = decode_identity(state, len, s, id, err);
    free(s);
    return rc;
}

int snapshot_writer_commit(struct snapshot_writer *w, const uint8_t *state, size_t len, struct thaw_error *err)
{
    char path[sizeof w->tmp + 16];
    snprintf(path, sizeof path, "%s/" SNAPDIR_MEMORY, w->tmp);
    struct snapshot_state *s = calloc(1, sizeof *s);
    if (!s)
        return thaw_fail(err, "out of memory");
    int rc = -1;
    struct snap_identity id;
    if (decode_identity(state, len, s, &id, err) < 0)
        goto out;
    /* The image is exactly mem_size bytes: anything written past it goes, then the
     * identity trailer follows, and the file reaches the disk before the rename. */
    static uint8_t trailer[MEMORY_TRAILER_SIZE];
    memory_trailer_encode(trailer, s->monitor.mem_size, &id);
    if (ftruncate(w->memory_fd, (off_t)s->monitor.mem_size) < 0) {
        thaw_fail_errno(err, "ftruncate %s", path);
        goto out;
    }
    if (pwrite(w->memory_fd, trailer, sizeof trailer, (off_t)s->monitor.mem_size) != (ssize_t)sizeof trailer) {
        thaw_fail_errno(err, "writing %s", path);
        goto out;
    }
    if (fsync(w->memory_fd) < 0) {
        thaw_fail_errno(err, "fsync %s", path);
        goto out;
    }
    struct stat st;
    if (fstat(w->memory_fd, &st) == 0)
        w->allocated_bytes = (uint64_t)st.st_blocks * 512;
    if (write_file_atomic(w->tmp, SNAPDIR_STATE, state, len, err) < 0 || snapdir_commit(w->tmp, w->dir, err) < 0)
        goto out;
    w->tmp[0] = 0;
    rc = 0;
out:
    free(s);
    close(w->memory_fd);
    w->memory_fd = -1;
    if (rc < 0)
        snapshot_writer_abort(w);
    return rc;
}

void snapshot_writer_abort(struct snapshot_writer *w)
{
    if (w->memory_fd >= 0)
        close(w->memory_fd);
    w->memory_fd = -1;
    if (w->tmp[0])
        snapdir_abort(w->tmp);
    w->tmp[0] = 0;
}

int snapshot_save(struct instance *inst, const char *function_name, const char *dir, struct thaw_error *err)
{
    uint8_t *state = NULL;
    size_t len = 0;
    struct snapshot_writer w;
    if (snapshot_capture_state(inst, function_name, &state, &len, err) < 0)
        return -1;
    int rc = -1;
    if (snapshot_writer_begin(&w, dir, err) == 0) {
        /* A function's root-filesystem image is not in the memory file: its written
         * pages and its identity go next to it (rootfs_snapshot.h), with the
         * snapshot's identity. */
        struct snap_identity id;
        if (snapshot_write_image(inst, w.memory_fd, err) < 0 ||
            (inst->rootfs.host && (rootfs_snapshot_materialize(&inst->rootfs, err) < 0 ||
                                   snapshot_state_identity(state, len, &id, err) < 0 ||
                                   rootfs_snapshot_save(&inst->rootfs, w.tmp, &id, err) < 0)))
            snapshot_writer_abort(&w);
        else
            rc = snapshot_writer_commit(&w, state, len, err);
    }
    free(state);
    return rc;
}

static int restore_discard(struct instance *inst, uint64_t gpa, uint64_t len, struct thaw_error *err)
{
    return mem_backend_discard(inst->backend, gpa, len, err);
}

/* KVM_GET_SUPPORTED_CPUID reports the APIC id of the host CPU the ioctl happened to
 * run on (leaf 1 EBX[31:24], leaves 0xB and 0x1F EDX): those bits name a CPU, not a
 * feature, and are left out of the comparison. */
static void cpuid_regs(const struct kvm_cpuid_entry2 *e, uint32_t r[4])
{
    r[0] = e->eax;
    r[1] = e->ebx;
    r[2] = e->ecx;
    r[3] = e->edx;
    if (e->function == 1)
        r[1] &= 0x00ffffffu;
    if (e->function == 0xb || e->function == 0x1f)
        r[3] = 0;
}

/* The vCPU must see the CPUID the guest was snapshotted with: features it detected at
 * boot (and code paths it chose) must still be there. */
static int check_cpuid(const struct vm *vm, const struct snapshot_state *s, struct thaw_error *err)
{
    const struct kvm_cpuid2 *here = vm->cpuid;
    if (here->nent != s->cpuid_count)
        return thaw_fail(err, "snapshot was taken with %u CPUID leaves, this host offers %u: take the snapshot "
                              "again on this host",
                         s->cpuid_count, here->nent);
    for (uint32_t i = 0; i < s->cpuid_count; i++) {
        const struct kvm_cpuid_entry2 *a = &s->cpuid[i];
        const struct kvm_cpuid_entry2 *b = NULL;
        for (uint32_t j = 0; j < here->nent && !b; j++)
            if (here->entries[j].function == a->function && here->entries[j].index == a->index)
                b = &here->entries[j];
        uint32_t ra[4], rb[4];
        cpuid_regs(a, ra);
        if (b)
            cpuid_regs(b, rb);
        if (!b || memcmp(ra, rb, sizeof ra))
            return thaw_fail(err, "snapshot CPUID leaf %#x.%u differs from this host's: take the snapshot again on "
                                  "this host",
                             a->function, a->index);
    }
    return 0;
}

static int restore_vcpu(struct instance *inst, const struct snapshot_state *s, struct thaw_error *err)
{
    struct vcpu *v = &inst->vm.vcpus[0];
    /* thaw's restore order, and why:
     * - no irqchip and no LAPIC are created (the guest is polled through hypercalls and
     *   never takes an interrupt), so there is no LAPIC, PIT or IOAPIC state to restore
     *   and nothing that has to precede the vCPU's own state;
     * - CPUID first: vm_add_vcpu gave the vCPU this host's CPUID, which must equal the
     *   snapshot's (checked here), because KVM decides which MSRs and CR4/XCR0 bits are
     *   valid from it;
     * - the TSC frequency before the MSRs: IA32_TSC, written with the MSRs, is scaled
     *   by the frequency in force when it is set;
     * - SREGS before the MSRs, REGS, FPU and XCRS: EFER and CR0/CR4 decide what the
     *   others mean (long mode, CR4.OSXSAVE for XCR0);
     * - MP state and vCPU events last: events describe an exception or interrupt in
     *   flight at the RIP restored above, and setting them earlier could be undone by
     *   the other ioctls (KVM_SET_REGS, for one, drops a pending exception). */
    if (check_cpuid(&inst->vm, s, err) < 0)
        return -1;
    if (s->tsc_khz != inst->vm.tsc_khz) {
        struct thaw_error e2;
        if (VM_IOCTL(v->fd, KVM_SET_TSC_KHZ, (void *)(uintptr_t)s->tsc_khz, &e2) < 0)
            return thaw_fail(err, "snapshot TSC runs at %llu kHz, this host at %llu kHz, and KVM cannot scale: %s",
                             (unsigned long long)s->tsc_khz, (unsigned long long)inst->vm.tsc_khz, e2.msg);
        inst->vm.tsc_khz = s->tsc_khz;
    }
    struct {
        struct kvm_msrs hdr;
        struct kvm_msr_entry e[STATE_FILE_MAX_MSRS];
    } msrs = {.hdr.nmsrs = s->msr_count};
    memcpy(msrs.e, s->msrs, sizeof(struct kvm_msr_entry) * s->msr_count);
    struct kvm_sregs sregs = s->sregs;
    struct kvm_regs regs = s->regs;
    struct kvm_fpu fpu = s->fpu;
    struct kvm_mp_state mp = s->mp_state;
    struct kvm_vcpu_events ev = s->events;
    if (VM_IOCTL(v->fd, KVM_SET_SREGS, &sregs, err) < 0)
        return -1;
    int set = VM_IOCTL(v->fd, KVM_SET_MSRS, &msrs, err);
    if (set < 0)
        return -1;
    if ((uint32_t)set != s->msr_count)
        return thaw_fail(err, "KVM_SET_MSRS restored %d of %u MSRs (refused %#x)", set, s->msr_count,
                         msrs.e[set].index);
    if (VM_IOCTL(v->fd, KVM_SET_REGS, &regs, err) < 0 || VM_IOCTL(v->fd, KVM_SET_FPU, &fpu, err) < 0)
        return -1;
    if (s->has_xsave) {
        struct kvm_xsave xs = s->xsave;
        if (VM_IOCTL(v->fd, KVM_SET_XSAVE, &xs, err) < 0)
            return -1;
    }
    if (s->has_xcrs) {
        struct kvm_xcrs x = s->xcrs;
        if (VM_IOCTL(v->fd, KVM_SET_XCRS, &x, err) < 0)
            return -1;
    }
    if (s->has_debugregs) {
        struct kvm_debugregs d = s->debugregs;
        if (VM_IOCTL(v->fd, KVM_SET_DEBUGREGS, &d, err) < 0)
            return -1;
    }
    if (VM_IOCTL(v->fd, KVM_SET_MP_STATE, &mp, err) < 0 || VM_IOCTL(v->fd, KVM_SET_VCPU_EVENTS, &ev, err) < 0)
        return -1;
    return 0;
}

/* The small files a restore reads before it can go on, asked for at its very start
 * (advice only: each is opened and checked again where it is read): on a cold disk each
 * is a round trip, which behind the working set's read waits for megabytes of it. */
static void advise_small_files(const char *dir)
{
    /* Not rootfs.ws nor rootfs.cow: megabytes, read with O_DIRECT by the image job
     * (read ahead into the page cache too, they would be read twice). */
    static const char *const names[] = {SNAPDIR_STATE, SNAPDIR_MEMORY, SNAPDIR_ROOTFS};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[4096];
        if (snapdir_path(path, sizeof path, dir, names[i]) < 0)
            continue;
        int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0)
            continue;
        struct stat sb;
        /* Of the memory file only its end is read here (the identity trailer). */
        off_t off = 0;
        if (!strcmp(names[i], SNAPDIR_MEMORY) && fstat(fd, &sb) == 0 && sb.st_size > 8192)
            off = sb.st_size - 8192;
        (void)posix_fadvise(fd, off, 0, POSIX_FADV_WILLNEED);
        close(fd);
    }
}

/* The image side of a restore (rootfs_snapshot.h): the image mapped again, its written
 * pages read back and, for a REAP prefetch, its file working set read ahead. It needs
 * nothing from the state or the VM, so it runs in a thread of its own from the start,
 * its reads and decompression overlapping the memory working set's read and install
 * (it began only once guest memory was in before). It checks rootfs.ws against the
 * identity in the memory file's trailer; the restore then checks that identity against
 * the state's, which catches a snapshot replaced in between. */
struct image_job {
    pthread_t tid;
    bool running;
    const char *dir;
    bool prefetch;
    bool probe; /* a merging restore: probed pages of rootfs.ws are not read ahead */
    struct rootfs_map *map;
    struct rootfs_restore_stats *stats;
    struct gpa_runs *ws_runs; /* the file working set's guest runs, for the pre-fault vCPU */
    struct snap_identity id;
    int rc;
    struct thaw_error err;
};

static void *image_job_main(void *arg)
{
    struct image_job *j = arg;
    char path[4096];
    uint64_t mem_size;
    if (snapdir_path(path, sizeof path, j->dir, SNAPDIR_MEMORY) < 0)
        j->rc = thaw_fail(&j->err, "snapshot path too long");
    else if (memory_trailer_read_path(path, &mem_size, &j->id, &j->err) < 0)
        j->rc = -1;
    else
        j->rc = rootfs_snapshot_restore(j->map, j->dir, &j->id, j->prefetch, j->probe, j->stats, j->ws_runs,
                                        &j->err);
    return NULL;
}

/* Starts the job in a thread, or runs it here if no thread can be made. */
static void image_job_start(struct image_job *j)
{
    j->running = thread_start_spread(&j->tid, image_job_main, j, SPREAD_START) == 0;
    if (!j->running)
        image_job_main(j);
}

/* Waits for the job: 0, or -1 with err if it failed or restored the image pages of
 * another snapshot than the state's (id; NULL: not checked). */
static int image_job_finish(struct image_job *j, const struct snap_identity *id, struct thaw_error *err)
{
    if (j->running)
        pthread_join(j->tid, NULL);
    j->running = false;
    if (j->rc < 0) {
        *err = j->err;
        return -1;
    }
    if (id && !snap_identity_equal(&j->id, id))
        return thaw_fail(err, "the snapshot's memory file changed during its restore");
    return 0;
}

/* Hands runs to the pre-fault vCPU from the highest address down, so that it and the
 * function's vCPU, which runs at the same time, do not walk the pages in the same order
 * (ascending order was not measured against it). */
static void prefault_add_descending(struct prefault *p, const struct gpa_runs *runs)
{
    struct gpa_run batch[256];
    uint64_t k = 0;
    for (uint64_t i = runs->n; i-- > 0;) {
        batch[k++] = runs->v[i];
        if (k == sizeof batch / sizeof batch[0] || i == 0) {
            prefault_add(p, batch, k);
            k = 0;
        }
    }
}

/* A working set smaller than this is not worth a second vCPU: its faults cost less than
 * the vCPU's start and the contention for the two CPUs (measured: the small C functions,
 * 50-190 pages, 1.02-1.15x slower with it; docs/benchmarks-topics.md). */
#define PREFAULT_MIN_PAGES 256

/* THAW_PREFAULT: 0 off, 1 on whatever the working set's size, early on and started
 * while the image is waited for (to compare); unset: on above the threshold. */
enum prefault_setting { PREFAULT_AUTO, PREFAULT_OFF, PREFAULT_ON, PREFAULT_EARLY };
static enum prefault_setting prefault_setting(void)
{
    const char *e = getenv("THAW_PREFAULT");
    return !e ? PREFAULT_AUTO
           : !strcmp(e, "0") ? PREFAULT_OFF
           : !strcmp(e, "early") ? PREFAULT_EARLY
           : !strcmp(e, "1") ? PREFAULT_ON : PREFAULT_AUTO;
}

/* Starts the pre-fault vCPU unless the setting or the working set says not to. A file
 * working set to come (image_follows) is reason enough: a pager that does not say what
 * it installed leaves the image's pages as all it gets. It needs the monitor's scratch
 * area to be plain memory: a hole of the memory file, as every snapshot thaw takes has
 * it (abi.h); anything else and it is not used. Failing to start costs nothing but the
 * speed-up: the reason goes in the stats. */
static void start_prefault(struct restored *r, uint64_t mem_size, bool image_follows, enum prefault_setting set)
{
    const struct gpa_runs *ws = mem_backend_installed(&r->mem);
    uint64_t pages = 0;
    for (uint64_t i = 0; ws && i < ws->n; i++)
        pages += ws->v[i].pages;
    if (set == PREFAULT_OFF) {
        snprintf(r->prefault_st.why, sizeof r->prefault_st.why, "off (THAW_PREFAULT=0)");
        return;
    }
    if (pages < PREFAULT_MIN_PAGES && !image_follows && set == PREFAULT_AUTO) {
        snprintf(r->prefault_st.why, sizeof r->prefault_st.why,
                 "off: %llu pages installed, fewer than %u (THAW_PREFAULT=1 forces it)", (unsigned long long)pages,
                 PREFAULT_MIN_PAGES);
        return;
    }
    /* Its vCPU only pays on a CPU that would otherwise sit idle: with every CPU taken
     * (concurrent cold starts, a busy host) it competes with the restores for CPU time.
     * Measured against always on: eight concurrent restores 0.93x (helloworld) and
     * 0.80x (cnn_serving), one alone unchanged (docs/benchmarks-topics.md). */
    struct cpu_load load;
    if (set == PREFAULT_AUTO && cpu_load_now(&load) == 0 && load.runnable > load.cpus) {
        snprintf(r->prefault_st.why, sizeof r->prefault_st.why,
                 "off: %d threads runnable on %d CPUs, none free (THAW_PREFAULT=1 forces it)", load.runnable,
                 load.cpus);
        return;
    }
    if (!mem_backend_is_hole(&r->mem, THAW_GPA_MONITOR_SCRATCH, THAW_GPA_KERNEL - THAW_GPA_MONITOR_SCRATCH)) {
        snprintf(r->prefault_st.why, sizeof r->prefault_st.why, "the snapshot holds data in the monitor's scratch area");
        return;
    }
    struct thaw_error err;
    if (prefault_start(&r->inst.vm, mem_size - THAW_STACK_SIZE - THAW_STACK_GUARD_SIZE, &r->prefault, &err) < 0) {
        snprintf(r->prefault_st.why, sizeof r->prefault_st.why, "%.500s", err.msg);
        return;
    }
    if (ws)
        prefault_add_descending(r->prefault, ws);
}

int snapshot_restore_pooled(struct restored *r, const char *dir, enum mem_mode mode, enum pager_mode pmode,
                            const char *pager_socket, int console_fd, struct vm_pool *pool, struct thaw_error *err)
{
    memset(r, 0, sizeof *r);
    struct instance *inst = &r->inst;
    inst->vm.kvm_fd = inst->vm.vm_fd = -1;
    rootfs_map_init(&inst->rootfs);
    r->mem.file_fd = r->mem.uffd = r->mem.pager_fd = r->mem.pager_pidfd = r->mem.watch_wake_fd = -1;
    uint64_t t0 = clock_now_ns();
    thread_spread_sample(); /* the helpers below go to an idle CPU, if one is */
    /* A pool that is empty makes its VM in a thread of its own while the state is read
     * and the memory set up (a failure here only means the VM is made on the spot). */
    struct thaw_error ferr;
    if (pool)
        (void)vm_pool_fill_async(pool, &ferr);
    char path[4096];
    snprintf(path, sizeof path, "%s/" SNAPDIR_STATE, dir);
    uint8_t *buf = NULL;
    size_t len;
    struct snapshot_state *s = calloc(1, sizeof *s);
    if (!s)
        return thaw_fail(err, "out of memory");
    struct snap_identity id;
    /* For a REAP prefetch (pmode PAGER_PREFETCH or PAGER_MERGE: the policy chose to
     * prefetch, here or in the caller of a worker) the image job also reads ahead the
     * recorded file working set. */
    struct gpa_runs image_ws = {0};
    struct image_job job = {.dir = dir, .map = &inst->rootfs, .stats = &r->rootfs, .ws_runs = &image_ws,
                            .prefetch = pmode == PAGER_PREFETCH || pmode == PAGER_MERGE,
                            .probe = pmode == PAGER_MERGE};
    bool has_image = false;
    if (snapdir_check(dir, err) < 0)
        goto fail;
    advise_small_files(dir);
    has_image = rootfs_snapshot_present(dir);
    if (has_image)
        image_job_start(&job);
    snapdir_clean_leftovers(dir);
    /* Guest memory and the pager first, sized by the memory file's own trailer: the
     * pager's working-set read then overlaps the state file's read and the VM set-up.
     * Nothing touches guest memory, nor runs the guest, before the state is checked
     * against the memory file below. */
    if (mem_backend_start(&r->mem, mode, dir, 0, NULL, pmode, pager_socket, err) < 0)
        goto fail;
    uint64_t t1m = clock_now_ns();
    if (read_file_at(AT_FDCWD, path, RESOLVE_NO_SYMLINKS, STATE_MAX, &buf, &len, err) < 0)
        goto fail;
    if (state_file_decode(buf, len, s, err) < 0) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        thaw_fail(err, "%s: %s", path, why);
        goto fail;
    }
    memcpy(id.id, s->snapshot_id, sizeof id.id);
    if (snap_identity_digest(&id, buf, len, err) < 0)
        goto fail;
    free(buf);
    buf = NULL;
    snprintf(r->function_name, sizeof r->function_name, "%s", s->monitor.function_name);
    if (mem_backend_check(&r->mem, s->monitor.mem_size, &id, err) < 0)
        goto fail;
    uint64_t t2 = clock_now_ns();

    inst->mem = r->mem.host;
    inst->mem_size = s->monitor.mem_size;
    inst->mem_owned = false;
    inst->kernel = s->monitor.kernel;
    inst->max_request = s->monitor.max_request;
    inst->console_fd = console_fd;
    inst->kernel_log = true;
    inst->discard = restore_discard;
    inst->backend = &r->mem;
    if (pool ? vm_pool_take(pool, &inst->vm, err) < 0
             : (vm_create(&inst->vm, err) < 0 || vm_add_vcpu(&inst->vm, err) < 0))
        goto fail;
    if (vm_set_memory(&inst->vm, inst->mem, inst->mem_size, err) < 0 || restore_vcpu(inst, s, err) < 0)
        goto fail;
    /* Nothing above touched guest memory; what follows does, so the prefetch must be in. */
    uint64_t t3a = clock_now_ns();
    if (mem_backend_wait_ready(&r->mem, err) < 0) /* (a pager gone before "ready": an error here) */
        goto fail;
    /* Watched from here on: the restore's own first touches of guest memory below (the
     * boot info, the pending invocation) would wait for ever on a pager that died after
     * "ready". The watcher then lets them through (onto zero pages), and the check below
     * refuses the restore. A worker stops it before its jail (sandbox_impl.h). */
    if (pager_watch_start(&r->mem, NULL, NULL, err) < 0)
        goto fail;
    uint64_t t3b = clock_now_ns();
    /* REAP (uffd: a worker's, served by its caller's pager): the pre-fault vCPU, when the
     * restore is done; THAW_PREFAULT=early starts it here, while the image is waited for.
     * Measured, early costs most functions more than it saves (its vCPU on the other
     * CPU turns the rest of the restore's TLB flushes into shootdowns there, the likely
     * cause), and wins only where the image's wait is long (cnn_serving):
     * docs/benchmarks-topics.md. */
    enum prefault_setting pf = prefault_setting();
    bool pf_here = (mode == MEM_REAP || mode == MEM_UFFD) && job.prefetch;
    if (pf_here && pf == PREFAULT_EARLY)
        start_prefault(r, s->monitor.mem_size, has_image, pf);
    /* File pages: the image job's, in by now or waited for (the part not overlapped). */
    uint64_t image_ns = 0;
    if (has_image) {
        if (image_job_finish(&job, &id, err) < 0 ||
            vm_add_memory(&inst->vm, inst->rootfs.gpa, inst->rootfs.host, inst->rootfs.size, err) < 0)
            goto fail;
        image_ns = clock_now_ns() - t3b;
    }
    if (pf_here && pf != PREFAULT_EARLY)
        start_prefault(r, s->monitor.mem_size, has_image, pf);
    if (r->prefault) /* after the memory working set's pages */
        prefault_add_descending(r->prefault, &image_ws);
    gpa_runs_free(&image_ws);
    /* The TSC MSR is part of the MSR list: the guest's monotonic time never goes
     * backwards (measured on this host, it also counts the time between the snapshot
     * and the restore: check_snapshot.py asserts only the first). New entropy and a new generation make
     * the guest reseed its generator and refetch the wall clock. */
    struct thaw_boot_info *bi = GUEST_PTR(&inst->vm.mem, s->monitor.boot_info_gpa, struct thaw_boot_info);
    if (!bi) {
        thaw_fail(err, "boot info outside guest memory");
        goto fail;
    }
    uint8_t rnd[sizeof bi->random];
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        thaw_fail_errno(err, "getrandom for the guest's new entropy");
        goto fail;
    }
    memcpy(bi->random, rnd, sizeof rnd);
    bi->generation = s->monitor.generation + 1;
    /* Re-validate the pending invocation exactly as if the guest had just made it. */
    struct thaw_error why;
    if (hypercall_decode(&inst->vm.mem, THAW_HC_PORT_BASE + THAW_HC_INVOKE_NEXT,
                         (uint32_t)s->monitor.pending_invoke_gpa, 0, &inst->pending, &why) < 0) {
        thaw_fail(err, "snapshot's pending invocation is invalid: %s", why.msg);
        goto fail;
    }
    if (atomic_load(&r->mem.pager_dead)) /* what was read of guest memory may be zeros (why: below) */
        goto fail;
    inst->state = INSTANCE_READY;
    uint64_t t3 = clock_now_ns();
    r->t.state_load_ns = t2 - t1m;
    /* Memory: the part not overlapped with the state and VM set-up, and the boot info and
     * pending invocation touched above (under lazy or uffd two cold pages of the memory
     * file, read here: memory costs, not the VM's). */
    r->t.memory_setup_ns = (t1m - t0) + (t3b - t3a) + (t3 - t3b - image_ns);
    r->t.image_ns = image_ns;
    r->t.vm_create_ns = t3a - t2;
    r->t.total_ns = t3 - t0;
    free(s);
    return 0;
fail:
    if (atomic_load(&r->mem.pager_dead)) /* the cause of whatever failed after it */
        thaw_fail(err, "%s", r->mem.pager_dead_why);
    if (job.running) {
        struct thaw_error ignored;
        (void)image_job_finish(&job, NULL, &ignored);
    }
    gpa_runs_free(&image_ws);
    free(buf);
    free(s);
    restored_destroy(r);
    return -1;
}

int snapshot_restore(struct restored *r, const char *dir, enum mem_mode mode, enum pager_mode pmode,
                     const char *pager_socket, int console_fd, struct thaw_error *err)
{
    return snapshot_restore_pooled(r, dir, mode, pmode, pager_socket, console_fd, NULL, err);
}

void restored_destroy(struct restored *r)
{
    /* Before the VM goes: its vCPU 1 may be inside KVM_RUN, touching guest memory. */
    prefault_finish(r->prefault, &r->prefault_st);
    r->prefault = NULL;
    vm_destroy(&r->inst.vm);
    mem_backend_close(&r->mem);
    rootfs_map_close(&r->inst.rootfs);
    r->inst.mem = NULL;
}
