#include "host/pager/reap_costs.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#include "host/util/clock.h"
#include "host/util/host_cache.h"
#include "host/util/le.h"

#define MAGIC "THAWRCST"
#define VERSION 1u
/* magic 8, version 4, samples 4, boot id 40, touch 8, install 8, read 8, chunk 8, reserved 4, crc 4 */
#define OFF_SAMPLES 12
#define OFF_BOOT 16
#define OFF_COSTS 56
#define OFF_CRC (REAP_COSTS_FILE_BYTES - 4)
/* A cost past this is not a measurement (10 s a page) but a corrupt file; UINT64_MAX is
 * the one exception, for chunk_ns ("no huge pages"). */
#define COST_MAX 10000000000ull
#define HUGE_BYTES (2ull << 20)
#define RECALIBRATE_EVERY 32u

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static uint32_t crc_of(const uint8_t *p, size_t n)
{
    return (uint32_t)crc32_z(crc32_z(0L, Z_NULL, 0), p, n);
}

void reap_costs_encode(const struct reap_costs *c, const char *boot_id, uint8_t out[REAP_COSTS_FILE_BYTES])
{
    memset(out, 0, REAP_COSTS_FILE_BYTES);
    memcpy(out, MAGIC, 8);
    put_le32(out + 8, VERSION);
    put_le32(out + OFF_SAMPLES, c->samples);
    size_t bl = strnlen(boot_id, REAP_COSTS_BOOT_ID_BYTES - 1);
    memcpy(out + OFF_BOOT, boot_id, bl);
    const uint64_t v[4] = {c->touch_ns, c->install_ns, c->read_ns, c->chunk_ns};
    for (int k = 0; k < 4; k++)
        put_le64(out + OFF_COSTS + 8 * k, v[k]);
    put_le32(out + OFF_CRC, crc_of(out, OFF_CRC));
}

int reap_costs_decode(const uint8_t *buf, size_t len, const char *boot_id, struct reap_costs *out,
                      struct thaw_error *err)
{
    memset(out, 0, sizeof *out);
    if (len != REAP_COSTS_FILE_BYTES)
        return thaw_fail(err, "REAP costs file of %zu bytes, expected %u", len, REAP_COSTS_FILE_BYTES);
    if (memcmp(buf, MAGIC, 8) != 0)
        return thaw_fail(err, "not a REAP costs file");
    if (get_le32(buf + 8) != VERSION)
        return thaw_fail(err, "REAP costs file version %u, expected %u", get_le32(buf + 8), VERSION);
    if (get_le32(buf + OFF_CRC) != crc_of(buf, OFF_CRC))
        return thaw_fail(err, "REAP costs file checksum mismatch");
    char id[REAP_COSTS_BOOT_ID_BYTES + 1] = {0};
    memcpy(id, buf + OFF_BOOT, REAP_COSTS_BOOT_ID_BYTES);
    if (strcmp(id, boot_id) != 0)
        return thaw_fail(err, "REAP costs file from another boot");
    uint64_t v[4];
    for (int k = 0; k < 4; k++) {
        v[k] = get_le64(buf + OFF_COSTS + 8 * k);
        if (v[k] > COST_MAX && !(k == 3 && v[k] == UINT64_MAX))
            return thaw_fail(err, "REAP costs file: cost %d out of range", k);
    }
    *out = (struct reap_costs){.touch_ns = v[0], .install_ns = v[1], .read_ns = v[2], .chunk_ns = v[3],
                               .samples = get_le32(buf + OFF_SAMPLES)};
    return 0;
}

static bool boot_id_now(char id[REAP_COSTS_BOOT_ID_BYTES])
{
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    memset(id, 0, REAP_COSTS_BOOT_ID_BYTES);
    ssize_t n = read(fd, id, REAP_COSTS_BOOT_ID_BYTES - 1);
    close(fd);
    if (n < 32)
        return false;
    id[strcspn(id, "\n")] = 0;
    return true;
}

static bool costs_path(char *dir, size_t cap, const char **name)
{
    return host_cache_path("THAW_REAP_COSTS", "/run/thaw/reap-costs", dir, cap, name);
}

static bool load_from(const char *dir, const char *name, const char *boot_id, struct reap_costs *out)
{
    uint8_t buf[REAP_COSTS_FILE_BYTES + 1];
    ssize_t n = host_cache_read(dir, name, buf, sizeof buf);
    struct thaw_error ignored;
    return n > 0 && reap_costs_decode(buf, (size_t)n, boot_id, out, &ignored) == 0;
}

bool reap_costs_load(struct reap_costs *out)
{
    memset(out, 0, sizeof *out);
    char dir[4096], id[REAP_COSTS_BOOT_ID_BYTES];
    const char *name;
    return costs_path(dir, sizeof dir, &name) && boot_id_now(id) && load_from(dir, name, id, out);
}

static void blend(uint64_t *into, uint64_t sample)
{
    if (!sample)
        return;
    if (!*into || *into == UINT64_MAX || sample == UINT64_MAX)
        *into = sample;
    else
        *into = (uint64_t)((double)*into + ((double)sample - (double)*into) / 4.0);
}

void reap_costs_merge(struct reap_costs *into, const struct reap_costs *sample)
{
    blend(&into->touch_ns, sample->touch_ns);
    blend(&into->install_ns, sample->install_ns);
    blend(&into->read_ns, sample->read_ns);
    blend(&into->chunk_ns, sample->chunk_ns);
    if (into->samples < UINT32_MAX)
        into->samples++;
}

void reap_costs_learn(const struct reap_costs *sample)
{
    char dir[4096], id[REAP_COSTS_BOOT_ID_BYTES];
    const char *name;
    if (!costs_path(dir, sizeof dir, &name) || !boot_id_now(id))
        return;
    struct reap_costs c;
    if (!load_from(dir, name, id, &c))
        memset(&c, 0, sizeof c);
    struct reap_costs s = *sample;
    if (!s.chunk_ns && (!c.chunk_ns || c.samples % RECALIBRATE_EVERY == 0))
        s.chunk_ns = reap_costs_time_huge_fault();
    reap_costs_merge(&c, &s);
    uint8_t buf[REAP_COSTS_FILE_BYTES];
    reap_costs_encode(&c, id, buf);
    host_cache_store(dir, name, buf, sizeof buf);
}

bool reap_costs_measured(const struct reap_costs *c)
{
    return c->touch_ns && c->read_ns && c->chunk_ns;
}

bool reap_costs_chunk_pays(const struct reap_costs *c, uint64_t ws, uint64_t data)
{
    if (!reap_costs_measured(c) || c->chunk_ns == UINT64_MAX)
        return false;
    /* In double: ws and data are at most 512, the costs at most COST_MAX. */
    double saved = (double)ws * ((double)c->touch_ns + (double)c->install_ns);
    double spent = (double)c->chunk_ns + (double)data * (double)c->read_ns;
    return saved > spent;
}

static bool thp_off(void)
{
    char buf[128] = {0};
    int fd = open("/sys/kernel/mm/transparent_hugepage/enabled", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return true;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    return n <= 0 || strstr(buf, "[never]") != NULL;
}

/* Several: which 2 MiB the kernel hands out decides the cost (a block the hypervisor was
 * given back under free page reporting faults 512 times: 0.4 against 4.2 ms measured). */
#define TIMED_HUGE_PAGES 4u

uint64_t reap_costs_time_huge_fault(void)
{
    if (thp_off())
        return UINT64_MAX;
    size_t len = (TIMED_HUGE_PAGES + 1) * HUGE_BYTES;
    uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return 0;
    uint8_t *a = (uint8_t *)(((uintptr_t)m + HUGE_BYTES - 1) & ~(uintptr_t)(HUGE_BYTES - 1));
    uint64_t ns = 0;
    if (madvise(a, TIMED_HUGE_PAGES * HUGE_BYTES, MADV_HUGEPAGE) == 0) {
        uint64_t t0 = clock_now_ns();
        if (madvise(a, TIMED_HUGE_PAGES * HUGE_BYTES, MADV_POPULATE_WRITE) == 0)
            ns = (clock_now_ns() - t0) / TIMED_HUGE_PAGES;
    }
    munmap(m, len);
    return ns;
}
