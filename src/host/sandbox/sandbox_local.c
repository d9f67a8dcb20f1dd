/* The in-process implementation of an instance: the microVM's vCPU runs in the calling
 * thread; uffd/reap restores serve memory from a pager thread (or an external pager). */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/function/bundle.h"
#include "host/pager/huge_chunks.h"
#include "host/pager/reap_costs.h"
#include "host/sandbox/guest_log.h"
#include "host/sandbox/reap_policy.h"
#include "host/sandbox/sandbox_impl.h"
#include "host/snapshot/pager_watch.h"
#include "host/snapshot/snapshot.h"
#include "host/util/clock.h"
#include "host/util/file.h"
#include "host/util/smaps.h"
#include "host/util/snapdir.h"
#include "host/vmm/instance.h"
#include "host/vmm/prefault_vcpu.h"
#include "host/vmm/vm_pool.h"

struct local {
    struct instance *inst;        /* &booted or &restored.inst */
    bool is_restore;
    enum sandbox_start start;
    char function[64];
    uint64_t faults_at_start;
    struct guest_log log;
    /* boot */
    struct instance booted;
    struct bundle bundle;
    uint8_t *kernel;
    size_t kernel_size;
    uint64_t boot_ns;
    /* restore */
    struct restored restored;
    enum mem_mode mode;
    char *snap_dir;
    bool external_pager;
    struct reap_policy reap;
    /* last snapshot */
    uint64_t save_ns, snapshot_allocated;
    /* torn down after a deadline or a stop: only these stats remain */
    bool torn_down;
    struct sandbox_stats final;
};

static int local_stats(struct sandbox *sb, struct sandbox_stats *st, struct thaw_error *err);

/* The process's VM pool: every restore starts its filler, so the restore's VM is made in
 * another thread while the state file is read and the memory set up (about 1-2 ms of
 * KVM_CREATE_VM, CPUID and KVM_CREATE_VCPU off the critical path); it takes the VM
 * before it returns, and a process that restores once has no filler left running (a
 * worker jails itself right after). */
static struct vm_pool restore_pool;
static pthread_once_t restore_pool_once = PTHREAD_ONCE_INIT;

static void restore_pool_init(void)
{
    vm_pool_init_empty(&restore_pool, 1);
}

/* A long-running process's pool (sandbox_keep_spares): VMs stay made between restores
 * and each restore's take is made good in the background right away. */
static atomic_bool restore_pool_kept;

void sandbox_local_keep_vms(unsigned count)
{
    pthread_once(&restore_pool_once, restore_pool_init);
    atomic_store(&restore_pool_kept, count > 0);
    vm_pool_set_target(&restore_pool, count ? count : 1, count > 0);
    if (count) {
        struct thaw_error ignored;
        (void)vm_pool_fill_async(&restore_pool, &ignored);
    }
}

unsigned sandbox_local_vms_ready(void)
{
    pthread_once(&restore_pool_once, restore_pool_init);
    return vm_pool_ready(&restore_pool);
}

int sandbox_local_prepare_vm(struct thaw_error *err)
{
    pthread_once(&restore_pool_once, restore_pool_init);
    return vm_pool_refill(&restore_pool, err);
}

void sandbox_local_drop_vms(void)
{
    pthread_once(&restore_pool_once, restore_pool_init);
    vm_pool_set_target(&restore_pool, 0, false);
}
static void release(struct local *l);

static uint64_t faults_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)ru.ru_minflt + (uint64_t)ru.ru_majflt;
}

static void console_to_log(void *ctx, unsigned stream, const uint8_t *data, size_t len)
{
    guest_log_write(ctx, stream, data, len);
}

/* Maps an instance's failure to the caller's terms; a deadline or a stop tears the
 * microVM down at once (its memory, the pager), keeping the stats. */
static int invoke_failed(struct sandbox *sb, struct thaw_error *err)
{
    struct local *l = sb->impl;
    const struct instance *inst = l->inst;
    /* Refused before the guest ran (e.g. an oversized request): the instance is intact. */
    if (inst->state == INSTANCE_READY)
        return sandbox_set_failure(sb, SANDBOX_FAIL_BAD_INPUT);
    if (inst->stopped_by == INSTANCE_STOP_NONE)
        return sandbox_set_failure(sb, SANDBOX_FAIL_GUEST);
    enum sandbox_failure f;
    if (inst->stopped_by == INSTANCE_STOP_KICKED) {
        f = SANDBOX_FAIL_PAGER; /* err says why: "pager died: ..." */
    } else if (inst->stopped_by == INSTANCE_STOP_TIMEOUT) {
        f = SANDBOX_FAIL_TIMEOUT;
        thaw_fail(err, "invocation timed out after %.1f s", (double)inst->run_timeout_ns / 1e9);
    } else {
        f = SANDBOX_FAIL_INTERRUPTED;
        thaw_fail(err, "invocation interrupted by signal %d", sandbox_interrupted());
    }
    struct thaw_error ignored;
    if (local_stats(sb, &l->final, &ignored) == 0) {
        release(l);
        l->torn_down = true;
    }
    return sandbox_set_failure(sb, f);
}

static void kick_on_pager_death(void *ctx, const char *why)
{
    instance_kick(ctx, why);
}

static int local_invoke(struct sandbox *sb, const void *req, size_t len, uint8_t **resp, size_t *resp_len,
                        struct thaw_error *err)
{
    struct local *l = sb->impl;
    /* From the first invocation on (a worker is jailed by then), a pager that dies stops
     * the VM instead of leaving it blocked on a page (pager_watch.h); one that died
     * before it (the restore watched it from its handshake) fails it here. */
    if (l->is_restore && pager_watch_start(&l->restored.mem, kick_on_pager_death, l->inst, err) < 0)
        return sandbox_set_failure(sb, SANDBOX_FAIL_HOST);
    if (l->is_restore && atomic_load(&l->restored.mem.pager_dead)) {
        thaw_fail(err, "%s", l->restored.mem.pager_dead_why);
        return sandbox_set_failure(sb, SANDBOX_FAIL_PAGER);
    }
    /* The pager wrote the working set after the first response: take its answer (and
     * release ws.lock) before the next invocation, not only at stats or teardown. */
    if (l->is_restore && l->mode == MEM_REAP && !atomic_load(&l->restored.mem.pager_dead))
        reap_policy_collect(&l->reap, &l->restored.mem, l->snap_dir);
    if (l->is_restore && l->mode == MEM_REAP)
        reap_policy_wait_files(&l->reap); /* the image pages the first invocation mapped */
    int rc = instance_invoke(l->inst, req, len, resp, resp_len, err);
    guest_log_flush(&l->log);
    if (rc < 0) {
        invoke_failed(sb, err);
        if (sb->failure == SANDBOX_FAIL_GUEST && l->is_restore && l->mode == MEM_REAP)
            sb->retry_without_ws = reap_policy_invoke_failed(&l->reap, l->snap_dir, err);
        return -1;
    }
    /* The working set is written by the pager thread while the response goes back;
     * its answer is read at the next invocation, stats or teardown. */
    if (l->is_restore && l->mode == MEM_REAP && !l->reap.finished) {
        const struct rootfs_map *fs = &l->inst->rootfs;
        struct rootfs_pages files = {.pid = 0, .addr = (uint64_t)(uintptr_t)fs->host, .size = fs->host ? fs->size : 0};
        reap_policy_finish_send(&l->reap, &l->restored.mem, l->snap_dir, &files);
    }
    return 0;
}

static int local_shutdown(struct sandbox *sb, struct thaw_error *err)
{
    struct local *l = sb->impl;
    int rc = instance_shutdown(l->inst, err);
    guest_log_flush(&l->log);
    if (rc < 0)
        return sandbox_set_failure(sb, SANDBOX_FAIL_GUEST);
    return 0;
}

/* An instance that has served requests (a snapshot after warm-up invocations, or of a
 * restored instance later on) first has its guest give back the freed memory it keeps
 * for reuse, which would otherwise be saved as data (instance_trim; a guest kernel that
 * does not say it knows the request is not asked). */
static int trim_before_snapshot(struct local *l, struct thaw_error *err)
{
    if (l->inst->stats.invocations == 0)
        return 0;
    return instance_trim(l->inst, err) < 0 ? -1 : 0;
}

static int local_snapshot(struct sandbox *sb, const char *dir, struct thaw_error *err)
{
    struct local *l = sb->impl;
    if (trim_before_snapshot(l, err) < 0)
        return -1;
    uint64_t t0 = clock_now_ns();
    if (snapshot_save(l->inst, l->function, dir, err) < 0)
        return -1;
    l->save_ns = clock_now_ns() - t0;
    char path[4096];
    struct stat st;
    l->snapshot_allocated = snapdir_path(path, sizeof path, dir, SNAPDIR_MEMORY) == 0 && stat(path, &st) == 0
                                ? (uint64_t)st.st_blocks * 512 : 0;
    return 0;
}

int sandbox_local_snapshot_fd(struct sandbox *sb, int fd, uint8_t **state, size_t *len, struct thaw_error *err)
{
    struct local *l = sb->impl;
    if (trim_before_snapshot(l, err) < 0)
        return -1;
    uint64_t t0 = clock_now_ns();
    /* A root-filesystem image's written pages are not in the memory file: the caller
     * reads them from /proc/<worker>/mem (READY told it where the image is), and tells
     * them from the image's by their being private copies, which the pages a restore
     * mapped from rootfs.cow become first. */
    if ((l->inst->rootfs.host && rootfs_snapshot_materialize(&l->inst->rootfs, err) < 0) ||
        snapshot_capture_state(l->inst, l->function, state, len, err) < 0)
        return -1;
    if (snapshot_write_image(l->inst, fd, err) < 0) {
        free(*state);
        *state = NULL;
        return -1;
    }
    l->save_ns = clock_now_ns() - t0;
    return 0;
}

static int local_stats(struct sandbox *sb, struct sandbox_stats *st, struct thaw_error *err)
{
    struct local *l = sb->impl;
    if (l->torn_down) {
        *st = l->final;
        return 0;
    }
    snprintf(st->function, sizeof st->function, "%s", l->function);
    st->start = l->start;
    st->boot_ns = l->boot_ns;
    st->vm_exits = l->inst->stats.vm_exits;
    st->hypercalls = l->inst->stats.hypercalls;
    st->kvm_first_ok = l->inst->stats.kvm_first_ok;
    st->kvm_first_exits = l->inst->stats.kvm_first.v[KVM_COUNTER_EXITS];
    st->kvm_first_faults = l->inst->stats.kvm_first.v[KVM_COUNTER_PF_TAKEN];
    st->kvm_first_faults_fixed = l->inst->stats.kvm_first.v[KVM_COUNTER_PF_FIXED];
    st->kvm_first_emulated = l->inst->stats.kvm_first.v[KVM_COUNTER_EMULATED];
    st->exited = l->inst->state == INSTANCE_EXITED;
    st->exit_status = l->inst->exit_status;
    st->memory_bytes = l->inst->mem_size;
    st->host_page_faults = faults_now() - l->faults_at_start;
    bool light = sb->stats_light;
    if (l->inst->mem && !light)
        (void)smaps_range_kb(0, (uint64_t)(uintptr_t)l->inst->mem, (uint64_t)(uintptr_t)l->inst->mem + l->inst->mem_size,
                             &st->rss_kb, &st->pss_kb);
    st->save_ns = l->save_ns;
    st->snapshot_allocated_bytes = l->snapshot_allocated;
    st->rootfs_bytes = l->inst->rootfs.host ? l->inst->rootfs.size : 0;
    if (!l->is_restore)
        return 0;
    st->rootfs_cow_pages = l->restored.rootfs.cow_pages;
    st->rootfs_ws_pages = l->restored.rootfs.ws_pages;
    st->rootfs_cow_ns = l->restored.rootfs.cow_ns;
    st->rootfs_cow_bytes = l->restored.rootfs.cow_bytes;
    st->rootfs_ws_bytes = l->restored.rootfs.ws_bytes;
    st->rootfs_ws_ns = l->restored.rootfs.ws_ns;
    st->rootfs_ws_withheld = l->restored.rootfs.ws_withheld;
    const struct restored *r = &l->restored;
    st->mode = l->mode;
    st->state_load_ns = r->t.state_load_ns;
    st->memory_setup_ns = r->t.memory_setup_ns;
    st->vm_create_ns = r->t.vm_create_ns;
    st->image_restore_ns = r->t.image_ns;
    st->restore_ns = r->t.total_ns;
    st->bytes_copied = r->mem.bytes_copied;
    struct prefault_stats pf = r->prefault_st; /* final, or why it never ran */
    if (r->prefault)
        prefault_stats(r->prefault, &pf);
    st->prefault_pages = pf.pages;
    st->prefault_touched = pf.touched;
    st->prefault_ns = pf.busy_ns;
    st->prefault_setup_ns = pf.setup_ns;
    snprintf(st->prefault_note, sizeof st->prefault_note, "%.250s", pf.why);
    if (l->mode == MEM_REAP && !light && !atomic_load(&l->restored.mem.pager_dead))
        reap_policy_collect(&l->reap, &l->restored.mem, l->snap_dir);
    if ((l->mode == MEM_UFFD || l->mode == MEM_REAP) && !light && !atomic_load(&l->restored.mem.pager_dead)) {
        struct pager_stats ps; /* a dead pager has none: the counts stay 0 */
        struct thaw_error why;
        if (mem_backend_pager_query(&l->restored.mem, "stats", &ps, &why) < 0)
            return thaw_fail(err, "pager: %s", why.msg);
        st->pages_served = ps.pages_served;
        st->zero_pages = ps.zero_pages;
    }
    if (l->mode == MEM_SHARE) { /* the working set it mapped in, as a prefetch */
        st->reap_prefetched = r->mem.share_pages > 0;
        st->ws_pages = r->mem.share_pages;
        st->ws_regions = r->mem.share_regions;
        st->ws_read_ns = r->mem.share_ns;
        snprintf(st->reap_note, sizeof st->reap_note, "%s", r->mem.share_note);
    }
    if (l->mode == MEM_REAP) {
        st->reap_recorded = l->reap.recording;
        st->reap_prefetched = l->reap.prefetched;
        st->ws_pages = l->reap.ws.pages;
        st->ws_regions = l->reap.ws.regions;
        st->ws_bytes = l->reap.ws.bytes;
        st->ws_read_ns = l->reap.ws.read_ns;
        st->ws_install_ns = l->reap.ws.install_ns;
        st->ws_huge_chunks = l->restored.mem.ready.huge_chunks;
        st->ws_huge_ws_pages = l->restored.mem.ready.huge_ws_pages;
        st->ws_huge_data_pages = l->restored.mem.ready.huge_data_pages;
        st->ws_huge_ns = l->restored.mem.ready.huge_ns;
        st->ws_huge_policy = l->restored.mem.ready.huge_policy;
        st->host_costs = l->restored.mem.ready.huge_costs;
        st->reap_misses = l->reap.prefetched ? st->pages_served + st->zero_pages : 0;
        snprintf(st->reap_note, sizeof st->reap_note, "%s", l->reap.note);
        if (!st->reap_note[0] && l->restored.rootfs.ws_refused)
            snprintf(st->reap_note, sizeof st->reap_note, "file working set refused (%.256s): file pages read lazily",
                     l->restored.rootfs.ws_error);
        reap_policy_merge_stats(&l->reap, st);
    }
    return 0;
}

/* What this REAP restore measured of the host's costs (reap_costs.h), each only from
 * enough pages to mean something: the pre-fault vCPU's rate of first touches, the
 * install's rate, and the prefetch's reads (ws.pages and the chunks', in parallel). */
static void learn_host_costs(const struct pager_stats *ready, const struct prefault_stats *pf)
{
    struct reap_costs s = {0};
    if (pf->touched >= 64)
        s.touch_ns = pf->busy_ns / pf->touched;
    uint64_t installed = ready->prefetch_pages > ready->huge_ws_pages /* the rest came in chunks */
                             ? ready->prefetch_pages - ready->huge_ws_pages : 0;
    if (installed >= 64)
        s.install_ns = ready->prefetch_install_ns / installed;
    uint64_t bytes = ready->prefetch_bytes + ready->huge_data_pages * 4096;
    uint64_t ns = ready->prefetch_read_ns > ready->huge_ns ? ready->prefetch_read_ns : ready->huge_ns;
    if (bytes >= (512u << 10) && ns) /* smaller reads measure the disk's latency more than its rate */
        s.read_ns = (uint64_t)((double)ns * 4096.0 / (double)bytes);
    if (s.touch_ns || s.install_ns || s.read_ns)
        reap_costs_learn(&s);
}

/* Frees the microVM and its memory; the bundle and names stay for the stats. */
static void release(struct local *l)
{
    guest_log_flush(&l->log);
    if (l->is_restore) {
        if (l->mode == MEM_REAP) { /* the pager's answer to a finish not read yet */
            reap_policy_collect(&l->reap, &l->restored.mem, l->snap_dir);
            reap_policy_wait_files(&l->reap); /* before the mapping it reads goes */
        }
        /* Where huge chunks can be taken (the pager in this process), the restore's
         * measurements steer the next ones'. */
        bool learn = l->mode == MEM_REAP && l->reap.prefetched && l->restored.mem.thread &&
                     l->restored.mem.ready.huge_policy == HUGE_AUTO;
        restored_destroy(&l->restored); /* the pre-fault vCPU's final stats (ready stays) */
        if (learn)
            learn_host_costs(&l->restored.mem.ready, &l->restored.prefault_st);
        reap_policy_end(&l->reap); /* after the pager wrote any pending working set */
    } else {
        instance_destroy(&l->booted);
    }
}

static void local_destroy(struct sandbox *sb)
{
    struct local *l = sb->impl;
    if (!l)
        return;
    if (!l->torn_down)
        release(l);
    bundle_free(&l->bundle);
    free(l->kernel);
    free(l->snap_dir);
    free(l);
    sb->impl = NULL;
}

void sandbox_local_before_jail(struct sandbox *sb)
{
    struct local *l = sb->impl;
    if (l && l->is_restore) {
        pager_watch_stop(&l->restored.mem); /* watched again from the first invocation */
        prefault_wait_set_up(l->restored.prefault); /* KVM_CREATE_VCPU is refused in the jail */
    }
}

uint64_t sandbox_local_guest_addr(const struct sandbox *sb)
{
    const struct local *l = sb->impl;
    return l && l->inst ? (uint64_t)(uintptr_t)l->inst->mem : 0;
}

const struct rootfs_map *sandbox_local_rootfs(const struct sandbox *sb)
{
    const struct local *l = sb->impl;
    return l && l->inst && l->inst->rootfs.host ? &l->inst->rootfs : NULL;
}

static const struct sandbox_ops local_ops = {
    .invoke = local_invoke,
    .shutdown = local_shutdown,
    .snapshot = local_snapshot,
    .stats = local_stats,
    .destroy = local_destroy,
};

static struct local *local_new(void)
{
    struct local *l = calloc(1, sizeof *l);
    if (l)
        l->reap.lock_fd = -1;
    return l;
}

/* Prefixes err with the function name. */
static int fail_named(struct thaw_error *err, const char *name)
{
    char why[sizeof err->msg];
    snprintf(why, sizeof why, "%s", err->msg);
    return thaw_fail(err, "%s: %s", name, why);
}

int sandbox_local_boot(struct sandbox **out, const char *function_dir, const struct sandbox_options *opt,
                       struct thaw_error *err)
{
    return sandbox_local_boot_before_run(out, function_dir, opt, NULL, NULL, err);
}

int sandbox_local_boot_before_run(struct sandbox **out, const char *function_dir, const struct sandbox_options *opt,
                                  int (*before_run)(void *ctx, struct thaw_error *err), void *ctx,
                                  struct thaw_error *err)
{
    struct local *l = local_new();
    struct sandbox *sb = NULL;
    char *build_dir = thaw_build_dir();
    char *kernel_path = NULL;
    if (!l || !build_dir || asprintf(&kernel_path, "%s/guest/kernel.elf", build_dir) < 0) {
        thaw_fail(err, "out of memory");
        goto fail;
    }
    uint64_t t0 = clock_now_ns();
    l->faults_at_start = faults_now();
    if (read_file(kernel_path, 16u << 20, &l->kernel, &l->kernel_size, err) < 0 ||
        bundle_load(&l->bundle, function_dir, build_dir, err) < 0)
        goto fail;
    snprintf(l->function, sizeof l->function, "%s", l->bundle.name);
    if (!(sb = sandbox_alloc(opt, l->function, err)))
        goto fail;
    sb->ops = &local_ops;
    sb->impl = l;
    l->log.sb = sb;
    l->start = SANDBOX_START_BOOT;
    struct instance_config cfg = {
        .kernel = l->kernel, .kernel_size = l->kernel_size,
        .program = l->bundle.program, .program_size = l->bundle.program_size,
        .argv = (const char *const *)l->bundle.argv, .argc = l->bundle.argc,
        .envp = (const char *const *)l->bundle.envp, .envc = l->bundle.envc,
        .archive = l->bundle.archive, .archive_size = l->bundle.archive_size,
        .max_request = l->bundle.max_request,
        .rootfs_path = l->bundle.rootfs_path,
        .cwd = l->bundle.cwd,
        .mem_size = (opt->memory_mib ? opt->memory_mib : l->bundle.memory_mib) << 20,
        .console_fd = -1,
        .console = console_to_log,
        .console_ctx = &l->log,
        .kernel_log = true,
        .trace_syscalls = opt->trace_syscalls,
        .boot_timeout_ns = opt->boot_timeout_ns ? opt->boot_timeout_ns : SANDBOX_DEFAULT_BOOT_TIMEOUT_NS,
        .before_run = before_run,
        .before_run_ctx = ctx,
    };
    if (instance_boot(&l->booted, &cfg, err) < 0) {
        guest_log_flush(&l->log);
        if (l->booted.stopped_by == INSTANCE_STOP_TIMEOUT)
            thaw_fail(err, "boot timed out after %.1f s: the program did not reach its ready point (its "
                      "first read of /dev/invoke)", (double)cfg.boot_timeout_ns / 1e9);
        else if (l->booted.stopped_by == INSTANCE_STOP_INTERRUPTED)
            thaw_fail(err, "boot interrupted by signal %d", sandbox_interrupted());
        fail_named(err, l->function);
        goto fail;
    }
    l->inst = &l->booted;
    if (!sb->invoke_timeout_ns)
        sb->invoke_timeout_ns = l->bundle.timeout_ns ? l->bundle.timeout_ns : SANDBOX_DEFAULT_TIMEOUT_NS;
    l->inst->run_timeout_ns = sb->invoke_timeout_ns;
    l->boot_ns = clock_now_ns() - t0;
    free(kernel_path);
    free(build_dir);
    *out = sb;
    return 0;
fail:
    if (l) {
        bundle_free(&l->bundle);
        free(l->kernel);
        free(l);
    }
    sandbox_free(sb);
    free(kernel_path);
    free(build_dir);
    return -1;
}

int sandbox_local_restore(struct sandbox **out, const char *snap_dir, enum mem_mode mode,
                          const struct sandbox_options *opt, struct thaw_error *err)
{
    return sandbox_local_restore_files(out, snap_dir, mode, opt, false, false, err);
}

int sandbox_local_restore_files(struct sandbox **out, const char *snap_dir, enum mem_mode mode,
                                const struct sandbox_options *opt, bool prefetch_files, bool merge_files,
                                struct thaw_error *err)
{
    struct local *l = local_new();
    if (!l || !(l->snap_dir = strdup(snap_dir))) {
        free(l);
        return thaw_fail(err, "out of memory");
    }
    l->is_restore = true;
    l->mode = mode;
    l->external_pager = opt->pager_socket != NULL;
    l->faults_at_start = faults_now();
    if (opt->drop_cache) {
        /* The function's root-filesystem image too ("" below): file pages must be cold as
         * well, or a cold start would find them warm in the page cache. */
        const char *names[] = {SNAPDIR_STATE, SNAPDIR_MEMORY, SNAPDIR_ROOTFS_COW, ""};
        for (size_t i = 0; i < 4; i++) {
            char path[4096];
            int bad = names[i][0] ? snapdir_path(path, sizeof path, snap_dir, names[i])
                                  : rootfs_snapshot_image_path(snap_dir, path, sizeof path);
            int fd = bad == 0 ? open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK) : -1;
            if (fd >= 0) {
                (void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
                close(fd);
            }
        }
    }
    enum pager_mode pmode = PAGER_LAZY;
    if (mode == MEM_REAP) { /* an external pager gets the chosen mode in its hello */
        reap_policy_begin(&l->reap, snap_dir);
        pmode = l->reap.pmode;
    } else if (prefetch_files) {
        /* uffd with the caller's pager: only the file prefetch reads it */
        pmode = merge_files ? PAGER_MERGE : PAGER_PREFETCH;
    }
    pthread_once(&restore_pool_once, restore_pool_init);
    const char *pool_env = getenv("THAW_VM_POOL"); /* 0: make the VM in line (to compare) */
    struct vm_pool *pool = pool_env && !strcmp(pool_env, "0") ? NULL : &restore_pool;
    if (snapshot_restore_pooled(&l->restored, snap_dir, mode, pmode, opt->pager_socket, -1, pool, err) < 0) {
        reap_policy_end(&l->reap);
        free(l->snap_dir);
        free(l);
        return -1;
    }
    if (pool && atomic_load(&restore_pool_kept)) { /* the next restore finds its VM made */
        struct thaw_error ignored;
        (void)vm_pool_fill_async(pool, &ignored);
    }
    snprintf(l->function, sizeof l->function, "%s", l->restored.function_name);
    l->inst = &l->restored.inst;
    switch (mode) {
    case MEM_COPY: l->start = SANDBOX_START_COPY; break;
    case MEM_LAZY: l->start = SANDBOX_START_LAZY; break;
    case MEM_UFFD: l->start = SANDBOX_START_UFFD; break;
    case MEM_SHARE: l->start = SANDBOX_START_SHARE; break;
    case MEM_REAP:
        reap_policy_ready(&l->reap, &l->restored.mem.ready);
        l->start = reap_policy_start(&l->reap);
        break;
    }
    struct sandbox *sb = sandbox_alloc(opt, l->function, err);
    if (!sb) {
        restored_destroy(&l->restored);
        reap_policy_end(&l->reap);
        free(l->snap_dir);
        free(l);
        return -1;
    }
    sb->ops = &local_ops;
    sb->impl = l;
    l->log.sb = sb;
    l->inst->console = console_to_log;
    l->inst->console_ctx = &l->log;
    if (!sb->invoke_timeout_ns)
        sb->invoke_timeout_ns = SANDBOX_DEFAULT_TIMEOUT_NS;
    l->inst->run_timeout_ns = sb->invoke_timeout_ns;
    *out = sb;
    return 0;
}
