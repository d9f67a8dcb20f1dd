/* KVM's binary statistics as thaw reads them (src/host/vmm/kvm_stats.c): the layout of
 * the counters found by name in the descriptors, and refused when the descriptors are
 * not what a kernel writes. A vCPU's real counters are checked through the CLI
 * (tests/snapshot/check_snapshot.py). */
#include <linux/kvm.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "host/vmm/kvm_stats.h"

#define NAME_SIZE 48u
#define EACH (sizeof(struct kvm_stats_desc) + NAME_SIZE)

static struct kvm_stats_header header(uint32_t n)
{
    return (struct kvm_stats_header){.name_size = NAME_SIZE, .num_desc = n, .desc_offset = 72,
                                     .data_offset = 1024};
}

static void put_desc(uint8_t *descs, uint32_t i, const char *name, uint32_t flags, uint16_t size, uint32_t offset)
{
    struct kvm_stats_desc d = {.flags = flags, .size = size, .offset = offset};
    memcpy(descs + i * EACH, &d, sizeof d);
    memset(descs + i * EACH + sizeof d, 0, NAME_SIZE);
    memcpy(descs + i * EACH + sizeof d, name, strlen(name));
}

/* The vCPU's descriptors as Linux 6.x lists them, in part: a histogram, then counters. */
static void kernel_like(uint8_t *descs, struct kvm_stats_header *h)
{
    *h = header(6);
    put_desc(descs, 0, "halt_poll_success_hist", KVM_STATS_TYPE_LINEAR_HIST, 32, 0);
    put_desc(descs, 1, "pf_taken", KVM_STATS_TYPE_CUMULATIVE, 1, 256);
    put_desc(descs, 2, "pf_fixed", KVM_STATS_TYPE_CUMULATIVE, 1, 264);
    put_desc(descs, 3, "exits", KVM_STATS_TYPE_CUMULATIVE, 1, 400);
    put_desc(descs, 4, "guest_mode", KVM_STATS_TYPE_INSTANT, 1, 408);
    put_desc(descs, 5, "insn_emulation", KVM_STATS_TYPE_CUMULATIVE, 1, 416);
}

static void finds_the_counters_by_name(void **state)
{
    (void)state;
    uint8_t descs[8 * EACH];
    struct kvm_stats_header h;
    kernel_like(descs, &h);
    struct kvm_stats s;
    assert_int_equal(kvm_stats_layout(&h, sizeof h, descs, 6 * EACH, &s), 0);
    assert_int_equal(s.off[KVM_COUNTER_EXITS], 400);
    assert_int_equal(s.off[KVM_COUNTER_PF_TAKEN], 256);
    assert_int_equal(s.off[KVM_COUNTER_PF_FIXED], 264);
    assert_int_equal(s.off[KVM_COUNTER_EMULATED], 416);
    assert_int_equal(s.span, 424);
    assert_int_equal(s.data_offset, 1024);
    /* A kernel without one of them: that one is absent, the others are found. */
    put_desc(descs, 5, "insn_emulation_fail", KVM_STATS_TYPE_CUMULATIVE, 1, 416);
    assert_int_equal(kvm_stats_layout(&h, sizeof h, descs, 6 * EACH, &s), 0);
    assert_int_equal(s.off[KVM_COUNTER_EMULATED], -1);
    assert_int_equal(s.span, 408);
    /* None of them at all: nothing to read. */
    h = header(1);
    put_desc(descs, 0, "halt_wakeup", KVM_STATS_TYPE_CUMULATIVE, 1, 0);
    assert_int_equal(kvm_stats_layout(&h, sizeof h, descs, EACH, &s), -1);
}

static void refuses_what_no_kernel_writes(void **state)
{
    (void)state;
    uint8_t descs[8 * EACH];
    struct kvm_stats_header h;
    struct kvm_stats s;
    kernel_like(descs, &h);
    assert_int_equal(kvm_stats_layout(&h, sizeof h - 1, descs, 6 * EACH, &s), -1);  /* short header */
    assert_int_equal(kvm_stats_layout(&h, sizeof h, descs, 6 * EACH - 1, &s), -1);  /* short descriptors */
    struct kvm_stats_header bad = h;
    bad.name_size = 0;
    assert_int_equal(kvm_stats_layout(&bad, sizeof bad, descs, 6 * EACH, &s), -1);
    bad = h;
    bad.name_size = 1u << 20;
    assert_int_equal(kvm_stats_layout(&bad, sizeof bad, descs, 6 * EACH, &s), -1);
    bad = h;
    bad.num_desc = 1u << 30;
    assert_int_equal(kvm_stats_layout(&bad, sizeof bad, descs, 6 * EACH, &s), -1);
    /* A wanted counter that is not one cumulative u64 at an aligned offset in bounds. */
    const struct {
        uint32_t flags;
        uint16_t size;
        uint32_t offset;
    } wrong[] = {{KVM_STATS_TYPE_CUMULATIVE, 2, 400}, {KVM_STATS_TYPE_INSTANT, 1, 400},
                 {KVM_STATS_TYPE_CUMULATIVE, 1, 401}, {KVM_STATS_TYPE_CUMULATIVE, 1, 0xfffffff8u}};
    for (size_t i = 0; i < sizeof wrong / sizeof *wrong; i++) {
        kernel_like(descs, &h);
        put_desc(descs, 3, "exits", wrong[i].flags, wrong[i].size, wrong[i].offset);
        assert_int_equal(kvm_stats_layout(&h, sizeof h, descs, 6 * EACH, &s), -1);
    }
    /* A name that does not end inside its field. */
    kernel_like(descs, &h);
    memset(descs + 2 * EACH + sizeof(struct kvm_stats_desc), 'x', NAME_SIZE);
    assert_int_equal(kvm_stats_layout(&h, sizeof h, descs, 6 * EACH, &s), -1);
}

static void nothing_is_read_without_a_stats_fd(void **state)
{
    (void)state;
    struct kvm_stats s = {.fd = -1};
    struct kvm_counters c = {{1, 2, 3, 4}};
    assert_false(kvm_stats_read(&s, &c));
    for (int k = 0; k < KVM_COUNTERS; k++)
        assert_int_equal(c.v[k], 0);
    struct kvm_counters a = {{1, 2, 3, 4}}, b = {{11, 22, 33, 44}}, d;
    kvm_counters_sub(&b, &a, &d);
    assert_int_equal(d.v[KVM_COUNTER_EXITS], 10);
    assert_int_equal(d.v[KVM_COUNTER_EMULATED], 40);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(finds_the_counters_by_name),
        cmocka_unit_test(refuses_what_no_kernel_writes),
        cmocka_unit_test(nothing_is_read_without_a_stats_fd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
