/* The pre-fault vCPU: a second vCPU that touches a restored instance's working set so
 * that the function's own vCPU finds the shadow page tables already built.
 *
 * Why: under nested PVM (shadow paging) the guest's first touch of each 4 KiB page costs
 * a trip into KVM (~6-8 us) even when REAP has installed the page in the host, and KVM
 * offers no way to build those entries from the host (KVM_PRE_FAULT_MEMORY is for
 * two-dimensional paging only). Shadow pages are per VM, so entries a second vCPU builds
 * serve the first: this one reads one byte of every page it is given, on the second
 * core, while the function runs.
 *
 * What it runs: 43 bytes of code at CPL3 in the monitor's scratch area (abi.h,
 * THAW_GPA_MONITOR_SCRATCH), with a GDT, TSS, IDT and ring-0 stack of its own there, so
 * nothing it does reaches the guest kernel's state: every exception (a page the guest
 * has unmapped, a page outside every memory slot) lands in a stub of its own that exits
 * to this thread, which stops it. It only reads guest memory. The guest never sees it:
 * it is not in the snapshot's vCPU state and never runs guest code.
 *
 * The caller feeds it runs as they become valid (the memory working set once installed,
 * the image's once its memory slot is in) and ends it before the VM goes. One thread;
 * prefault_add and prefault_stats may be called from others. */
#ifndef THAW_HOST_PREFAULT_VCPU_H
#define THAW_HOST_PREFAULT_VCPU_H

#include <stdbool.h>
#include <stdint.h>

#include "host/util/error.h"
#include "host/util/gpa_run.h"
#include "host/vmm/vm.h"

struct prefault_stats {
    uint64_t runs, pages;  /* handed to the vCPU */
    uint64_t touched;      /* pages it read */
    uint64_t refused;      /* pages not handed over: page 0, the monitor's areas, the stack guard, past 4 GiB */
    uint64_t setup_ns;     /* its thread's start, its vCPU's creation (in that thread when the VM
                            * came without it), its tables and registers */
    uint64_t busy_ns;      /* time inside KVM_RUN */
    bool stopped;          /* it stopped before the end of what it was given: why */
    char why[600];
};

struct prefault;

/* Starts the thread that runs vCPU 1 of vm (whose vCPU 0 is a restored thaw guest, RAM
 * in vm->mem): it makes that vCPU unless the VM came with it, lays out its code and
 * tables in the scratch area and waits for runs. The scratch area must be plain memory
 * (no pager behind it). */
int prefault_start(struct vm *vm, uint64_t stack_guard_gpa, struct prefault **out, struct thaw_error *err);
/* Waits until the thread has made its vCPU or failed to (a caller about to enter a
 * jail, where KVM_CREATE_VCPU is refused). Takes NULL. */
void prefault_wait_set_up(struct prefault *p);
/* Queues runs (copied) to be touched in the order given. Runs that overlap page 0, the
 * scratch area, the stack guard [stack_guard_gpa, +2 MiB) or go past 4 GiB are refused. */
void prefault_add(struct prefault *p, const struct gpa_run *runs, uint64_t n);
/* What it has done so far. */
void prefault_stats(struct prefault *p, struct prefault_stats *st);
/* Stops it (a run in progress is kicked out of KVM_RUN), waits for its thread and frees;
 * st (may be NULL) gets the final stats. Takes NULL. */
void prefault_finish(struct prefault *p, struct prefault_stats *st);

#endif
