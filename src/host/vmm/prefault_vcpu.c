#include "host/vmm/prefault_vcpu.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "host/util/clock.h"
#include "host/util/thread_spread.h"
#include "host/vmm/vcpu_kick.h"
#include "host/vmm/x86_boot.h"
#include "thaw/abi.h"

#define PAGE THAW_PAGE_SIZE

/* The scratch area (abi.h), as this vCPU lays it out. */
#define CODE_GPA THAW_GPA_MONITOR_SCRATCH       /* the toucher, then the stubs */
#define STUBS_GPA (CODE_GPA + 0x100)
#define STUB_BYTES 8u
#define GDT_GPA (THAW_GPA_MONITOR_SCRATCH + 0x1000)
#define TSS_GPA (GDT_GPA + 0x800)
#define IDT_GPA (THAW_GPA_MONITOR_SCRATCH + 0x2000)
#define STACK_TOP (THAW_GPA_MONITOR_SCRATCH + 0x4000) /* one page below it */
#define LIST_GPA STACK_TOP                               /* runs: (gpa, pages) pairs */
#define LIST_CAP ((THAW_GPA_KERNEL - LIST_GPA) / 16)
#define STUB_PORT 0x7100u /* + vector: an exception's stub exits here (the guest's ports are 0x7000 + nr) */
#define MAP_LIMIT ((uint64_t)THAW_MAX_PD_PAGES << 30)

/* The toucher, at CPL3: rsi = the runs, rcx = how many. It reads one byte of each page.
 *   0x00  test rcx, rcx ; jz 0x29
 *   0x05  mov rax, [rsi] ; mov rdx, [rsi + 8]
 *   0x0c  test rdx, rdx ; jz 0x20
 *   0x11  movzx r8d, byte [rax] ; add rax, 4096 ; dec rdx ; jmp 0x0c
 *   0x20  add rsi, 16 ; dec rcx ; jmp 0x00
 *   0x29  ud2            (the end: #UD at this rip means done)
 * A stub (vector v, at STUBS_GPA + 8 v, ring 0): mov edx, STUB_PORT + v ; out dx, eax ; jmp $. */
static const uint8_t toucher[] = {
    0x48, 0x85, 0xc9, 0x74, 0x24, 0x48, 0x8b, 0x06, 0x48, 0x8b, 0x56, 0x08, 0x48, 0x85, 0xd2,
    0x74, 0x0f, 0x44, 0x0f, 0xb6, 0x00, 0x48, 0x05, 0x00, 0x10, 0x00, 0x00, 0x48, 0xff, 0xca,
    0xeb, 0xec, 0x48, 0x83, 0xc6, 0x10, 0x48, 0xff, 0xc9, 0xeb, 0xd7, 0x0f, 0x0b,
};
#define TOUCHER_END (CODE_GPA + 0x29)
#define VECTOR_UD 6u

struct prefault {
    struct vm *vm;
    struct vcpu *v;
    struct vcpu own;             /* made by the thread when the VM came with one vCPU */
    bool make_own;
    bool set_up;                 /* the thread is past making its vCPU (made or not) */
    uint64_t guard_lo, guard_hi; /* the stack guard */
    struct kvm_sregs sregs;      /* CPL3, this vCPU's own tables */
    pthread_t tid;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct gpa_runs queue;       /* everything added, in order */
    uint64_t next;               /* queue entries handed to the vCPU so far */
    bool closing;
    bool ran;                    /* a batch ran (its exit is still to be completed) */
    struct vcpu_kicker kicker;
    struct prefault_stats st;
};

static void *thread_main(void *arg);

int prefault_start(struct vm *vm, uint64_t stack_guard_gpa, struct prefault **out, struct thaw_error *err)
{
    *out = NULL;
    uint64_t t0 = clock_now_ns();
    if (!guest_mem_ptr(&vm->mem, THAW_GPA_MONITOR_SCRATCH, THAW_GPA_KERNEL - THAW_GPA_MONITOR_SCRATCH))
        return thaw_fail(err, "pre-fault vCPU: guest memory too small for the scratch area");
    struct prefault *p = calloc(1, sizeof *p);
    if (!p)
        return thaw_fail(err, "out of memory");
    p->vm = vm;
    p->guard_lo = stack_guard_gpa;
    p->guard_hi = stack_guard_gpa + THAW_STACK_GUARD_SIZE;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    /* A VM made ahead comes with this vCPU (vm_pool.h); one made on a restore's path
     * does not, and the thread makes it, off that path, into a vcpu of its own (vm is
     * vCPU 0's meanwhile). A caller about to jail itself waits for it first:
     * prefault_wait_set_up. */
    p->own.fd = p->own.stats.fd = -1;
    p->make_own = vm->nvcpus < 2;
    p->v = p->make_own ? &p->own : &vm->vcpus[1];
    if (thread_start_spread(&p->tid, thread_main, p, SPREAD_PIN) != 0) {
        thaw_fail(err, "pre-fault vCPU: cannot start its thread");
        goto fail;
    }
    pthread_mutex_lock(&p->lock);
    p->st.setup_ns += clock_now_ns() - t0;
    pthread_mutex_unlock(&p->lock);
    *out = p;
    return 0;
fail:
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p);
    return -1;
}

/* In the thread, off the restore's path: its code, stubs and tables. Every exception
 * goes to a stub of its own on a stack of its own, never to the guest kernel's (which
 * vCPU 0 may be using). */
static int lay_out(struct prefault *p, struct thaw_error *err)
{
    uint8_t *scratch = guest_mem_ptr(&p->vm->mem, THAW_GPA_MONITOR_SCRATCH, THAW_GPA_KERNEL - THAW_GPA_MONITOR_SCRATCH);
    memset(scratch, 0, STACK_TOP - THAW_GPA_MONITOR_SCRATCH);
    memcpy(scratch, toucher, sizeof toucher);
    for (uint32_t v = 0; v < 32; v++) {
        uint8_t *s = scratch + (STUBS_GPA - CODE_GPA) + v * STUB_BYTES;
        uint32_t port = STUB_PORT + v;
        s[0] = 0xba; /* mov edx, imm32 */
        memcpy(s + 1, &port, 4);
        s[5] = 0xef; /* out dx, eax */
        s[6] = 0xeb; /* jmp $ */
        s[7] = 0xfe;
    }
    x86_write_gdt_tss((uint64_t *)(scratch + (GDT_GPA - THAW_GPA_MONITOR_SCRATCH)),
                      scratch + (TSS_GPA - THAW_GPA_MONITOR_SCRATCH), TSS_GPA, STACK_TOP);
    x86_write_idt((uint64_t *)(scratch + (IDT_GPA - THAW_GPA_MONITOR_SCRATCH)), STUBS_GPA, STUB_BYTES);
    return x86_cpl3_sregs(p->vm, p->v, GDT_GPA, IDT_GPA, TSS_GPA, &p->sregs, err);
}

static bool overlaps(uint64_t a, uint64_t b, uint64_t lo, uint64_t hi) { return a < hi && lo < b; }

void prefault_add(struct prefault *p, const struct gpa_run *runs, uint64_t n)
{
    pthread_mutex_lock(&p->lock);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t a = runs[i].gpa, pages = runs[i].pages, b = a + pages * PAGE;
        bool ok = a % PAGE == 0 && pages && pages <= MAP_LIMIT / PAGE && a < MAP_LIMIT && b <= MAP_LIMIT &&
                  !overlaps(a, b, 0, PAGE) && !overlaps(a, b, THAW_GPA_MONITOR_SCRATCH, THAW_GPA_KERNEL) &&
                  !overlaps(a, b, p->guard_lo, p->guard_hi);
        if (!ok || gpa_runs_add(&p->queue, a, pages) < 0) {
            p->st.refused += pages;
            continue;
        }
        p->st.runs++;
        p->st.pages += pages;
    }
    pthread_cond_broadcast(&p->cond); /* the thread, or a prefault_wait_set_up */
    pthread_mutex_unlock(&p->lock);
}

/* A batch may take this long before it is stopped: a guest that rewrote the scratch
 * area (it is guest memory) must not keep a second CPU busy. */
#define BATCH_BASE_NS 200000000ull
#define BATCH_PAGE_NS 100000ull

/* One KVM_RUN over list[0..n) (already in the scratch area): 0, or -1 with why once it
 * stopped short (then it is not run again). *touched: the pages it read; *busy: the time
 * inside KVM_RUN. */
static int run_batch(struct prefault *p, const struct gpa_run *list, uint64_t n, uint64_t *touched, uint64_t *busy,
                     char *why, size_t cap)
{
    *touched = *busy = 0;
    uint64_t pages = 0;
    for (uint64_t i = 0; i < n; i++)
        pages += list[i].pages;
    struct thaw_error err;
    struct kvm_regs regs = {.rip = CODE_GPA, .rsp = STACK_TOP, .rsi = LIST_GPA, .rcx = n, .rflags = 0x2};
    /* Ordering rule, as for a snapshot's save: the last batch ended on a KVM_EXIT_IO (its
     * stub's OUT), which KVM completes only on the next KVM_RUN. This KVM leaves the
     * completion out when the rip has moved meanwhile (measured: no difference), but not
     * every path has to, so complete it first: run once with immediate_exit set (EINTR at
     * once). Then each batch from a clean CPL3 state: the stub left the vCPU in ring 0. */
    if (p->ran) {
        p->v->run->immediate_exit = 1;
        int r = ioctl(p->v->fd, KVM_RUN, NULL);
        p->v->run->immediate_exit = 0;
        if (r == 0 || errno != EINTR) {
            snprintf(why, cap, "KVM_RUN to complete the last exit did not return EINTR");
            return -1;
        }
    }
    p->ran = true;
    if (VM_IOCTL(p->v->fd, KVM_SET_SREGS, &p->sregs, &err) < 0 || VM_IOCTL(p->v->fd, KVM_SET_REGS, &regs, &err) < 0) {
        snprintf(why, cap, "%.500s", err.msg);
        return -1;
    }
    struct vcpu_run_guard g;
    if (vcpu_run_begin(&g, p->v->run, BATCH_BASE_NS + pages * BATCH_PAGE_NS, &p->kicker, &err) < 0) {
        snprintf(why, cap, "%.500s", err.msg);
        return -1;
    }
    uint64_t t0 = clock_now_ns();
    int rc = 0;
    enum vcpu_kick_reason kicked;
    while ((kicked = vcpu_kick_check(&g)) == VCPU_KICK_NONE && (rc = ioctl(p->v->fd, KVM_RUN, NULL)) < 0 &&
           errno == EINTR)
        ;
    int saved = errno;
    vcpu_run_end(&g);
    *busy = clock_now_ns() - t0;
    if (kicked != VCPU_KICK_NONE) {
        snprintf(why, cap, "stopped: %s", kicked == VCPU_KICK_REQUEST    ? "the instance went away"
                                          : kicked == VCPU_KICK_DEADLINE ? "it took too long"
                                                                         : "interrupted");
        return -1;
    }
    if (rc < 0) {
        snprintf(why, cap, "KVM_RUN failed: %s", strerror(saved));
        return -1;
    }
    /* Where it got to: the run at rsi, the page at rax (the stubs change neither). */
    struct kvm_regs now;
    if (VM_IOCTL(p->v->fd, KVM_GET_REGS, &now, &err) < 0) {
        snprintf(why, cap, "%.500s", err.msg);
        return -1;
    }
    uint64_t done_runs = n - (now.rcx <= n ? now.rcx : n);
    for (uint64_t i = 0; i < done_runs; i++)
        *touched += list[i].pages;
    if (done_runs < n && now.rax >= list[done_runs].gpa && now.rax < list[done_runs].gpa + list[done_runs].pages * PAGE)
        *touched += (now.rax - list[done_runs].gpa) / PAGE;
    const struct kvm_run *r = p->v->run;
    if (r->exit_reason == KVM_EXIT_IO && r->io.port >= STUB_PORT && r->io.port < STUB_PORT + 32) {
        unsigned vector = r->io.port - STUB_PORT;
        uint64_t rip = 0; /* the exception frame's, on its own stack: rip 40 bytes below the top */
        (void)guest_copy_in(&p->vm->mem, &rip, gpa_at(STACK_TOP - 40), 8);
        if (vector == VECTOR_UD && rip == TOUCHER_END && done_runs == n)
            return 0;
        snprintf(why, cap, "exception %u at rip %#llx touching %#llx", vector, (unsigned long long)rip,
                 (unsigned long long)now.rax);
    } else {
        snprintf(why, cap, "exit %u touching %#llx (outside guest memory?)", r->exit_reason,
                 (unsigned long long)now.rax);
    }
    return -1;
}

static void *thread_main(void *arg)
{
    struct prefault *p = arg;
    struct gpa_run *list = (struct gpa_run *)guest_mem_ptr(&p->vm->mem, LIST_GPA, LIST_CAP * sizeof(struct gpa_run));
    struct thaw_error err;
    uint64_t t0 = clock_now_ns();
    uint64_t khz; /* this vCPU's: vCPU 0's rate is the restored one, and this one never needs it */
    int laid = p->make_own ? vcpu_make(p->vm, 1, &p->own, &khz, &err) : 0;
    pthread_mutex_lock(&p->lock);
    p->set_up = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    if (laid == 0)
        laid = lay_out(p, &err);
    pthread_mutex_lock(&p->lock);
    p->st.setup_ns += clock_now_ns() - t0;
    if (laid < 0) {
        p->st.stopped = true;
        snprintf(p->st.why, sizeof p->st.why, "%.500s", err.msg);
    }
    for (; laid == 0;) {
        while (!p->closing && p->next == p->queue.n)
            pthread_cond_wait(&p->cond, &p->lock);
        if (p->closing || !list)
            break;
        uint64_t n = p->queue.n - p->next < LIST_CAP ? p->queue.n - p->next : LIST_CAP;
        memcpy(list, p->queue.v + p->next, n * sizeof *list);
        p->next += n;
        pthread_mutex_unlock(&p->lock);
        char why[sizeof p->st.why];
        uint64_t touched, busy;
        int rc = run_batch(p, list, n, &touched, &busy, why, sizeof why);
        pthread_mutex_lock(&p->lock);
        p->st.touched += touched;
        p->st.busy_ns += busy;
        if (rc < 0) {
            p->st.stopped = true;
            snprintf(p->st.why, sizeof p->st.why, "%s", why);
            break;
        }
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

void prefault_wait_set_up(struct prefault *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    while (!p->set_up)
        pthread_cond_wait(&p->cond, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

void prefault_stats(struct prefault *p, struct prefault_stats *st)
{
    pthread_mutex_lock(&p->lock);
    *st = p->st;
    pthread_mutex_unlock(&p->lock);
}

void prefault_finish(struct prefault *p, struct prefault_stats *st)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->closing = true;
    pthread_cond_broadcast(&p->cond); /* the thread, or a prefault_wait_set_up */
    pthread_mutex_unlock(&p->lock);
    vcpu_kick(&p->kicker, "the instance is torn down");
    pthread_join(p->tid, NULL);
    vcpu_close(&p->own);
    if (st)
        *st = p->st;
    gpa_runs_free(&p->queue);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->cond);
    free(p);
}
