/* Time from the TSC. The monitor reports the TSC frequency and, on request, a
 * (wall clock, TSC) pair. CLOCK_MONOTONIC counts from boot; a restored snapshot keeps
 * counting because the monitor restores the TSC so that it never goes backwards. */
#include "kernel.h"

static uint64_t tsc_khz;
static uint64_t tsc_at_boot;
static uint64_t wall_ns_base; /* wall clock at tsc_wall_base */
static uint64_t tsc_wall_base;
static uint64_t seen_generation;

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return ((uint64_t)hi << 32) | lo;
}

static uint64_t tsc_to_ns(uint64_t delta)
{
    /* delta * 1e6 / khz without overflow for long uptimes. */
    unsigned __int128 v = (unsigned __int128)delta * 1000000u;
    return (uint64_t)(v / tsc_khz);
}

void time_resync(void)
{
    struct thaw_hc_wallclock w = {0};
    hypercall(THAW_HC_WALLCLOCK, &w);
    wall_ns_base = w.wall_ns;
    tsc_wall_base = w.tsc;
    seen_generation = boot_info->generation;
}

void time_init(void)
{
    tsc_khz = boot_info->tsc_khz ? boot_info->tsc_khz : 1000000;
    tsc_at_boot = boot_info->tsc_at_boot;
    wall_ns_base = boot_info->wall_ns_at_boot;
    tsc_wall_base = boot_info->tsc_at_boot;
    seen_generation = boot_info->generation;
}

uint64_t time_monotonic_ns(void)
{
    uint64_t t = rdtsc();
    return t > tsc_at_boot ? tsc_to_ns(t - tsc_at_boot) : 0;
}

uint64_t time_realtime_ns(void)
{
    /* A restore bumps the generation: the wall clock moved on while we were frozen. */
    if (boot_info->generation != seen_generation)
        time_resync();
    uint64_t t = rdtsc();
    return wall_ns_base + (t > tsc_wall_base ? tsc_to_ns(t - tsc_wall_base) : 0);
}
