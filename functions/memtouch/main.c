/* memtouch: the workhorse for working-set experiments.
 * Before its ready point it allocates an arena (default 128 MiB, argv[1] or
 * MEMTOUCH_MIB to change) and fills it with pseudo-random bytes. Each invocation
 * {"mib": N, "seed": S} reads N MiB worth of 4 KiB pages scattered across the arena,
 * chosen by S, and answers their checksum. {"list": 1} adds the page indices.
 * {"alloc_mib": N} instead allocates N MiB of fresh memory, writes every page of it,
 * and frees it again (the 200 MB-allocation case of the memory-manager issue).
 * {"parts": P, "part": K, "mib": N, "write": 1} splits the arena's first N MiB into P
 * parts, overwrites part K with a pattern of its own (write 0: does not), and answers
 * how many words differ from what they must hold: part K its pattern (if this instance
 * wrote it), every other part the bytes the arena was filled with before the snapshot
 * (shared working sets: N instances each write their part, the others stay intact).
 * Once an instance has written a part, a request with "write": 0 checks that part as its
 * own whatever "part" says (a daemon routes requests to instances it chooses), and the
 * answer names it. "hold_ms": H makes a parts request answer only H ms after its work,
 * so that requests sent together find every instance busy (a test of N distinct
 * instances must not depend on how fast one instance finishes). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#include "thaw_function.h"

#define PAGE 4096u

static uint64_t mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t splitmix(uint64_t *s) { return mix(*s += 0x9e3779b97f4a7c15ull); }

/* Word i of the arena as filled before the ready point (seed 42). */
static uint64_t original(uint64_t i) { return mix(42 + (i + 1) * 0x9e3779b97f4a7c15ull); }

/* The parts request (see the top): the count of words that are not what they must be. */
static uint64_t parts(uint64_t *arena, uint64_t words, uint64_t nparts, uint64_t part, int write, int *wrote)
{
    uint64_t per = words / nparts, bad = 0;
    uint64_t pattern = 0x5bd1e9955bd1e995ull * (part + 1);
    if (write) {
        for (uint64_t w = part * per; w < (part + 1) * per; w++)
            arena[w] = original(w) ^ pattern;
        *wrote = 1;
    }
    for (uint64_t w = 0; w < nparts * per; w++) {
        uint64_t want = original(w) ^ (*wrote && w / per == part ? pattern : 0);
        bad += arena[w] != want;
    }
    return bad;
}

int main(int argc, char **argv)
{
    const char *env = getenv("MEMTOUCH_MIB");
    uint64_t mib = argc > 1 ? strtoull(argv[1], NULL, 10) : env ? strtoull(env, NULL, 10) : 128;
    uint64_t npages = mib * (1024 * 1024 / PAGE);
    uint64_t *arena = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (arena == MAP_FAILED || npages == 0) {
        perror("memtouch: arena");
        return 1;
    }
    uint64_t s = 42;
    for (uint64_t i = 0; i < npages * PAGE / 8; i++)
        arena[i] = splitmix(&s);

    int fd = thaw_open();
    if (fd < 0) {
        perror("open /dev/invoke");
        return 1;
    }
    static char req[65536];
    static char out[1 << 20];
    ssize_t n;
    int wrote = 0;
    uint64_t my_part = 0;
    while ((n = thaw_next(fd, req, sizeof req)) > 0) {
        uint64_t want = 1, seed = 1, list = 0, alloc = 0, np = 0, part = 0, wr = 0, hold = 0;
        if (thaw_json_u64(req, "parts", &np) == 0 && np) {
            thaw_json_u64(req, "part", &part);
            thaw_json_u64(req, "mib", &want);
            thaw_json_u64(req, "write", &wr);
            thaw_json_u64(req, "hold_ms", &hold);
            uint64_t words = want * (1024 * 1024 / 8);
            if (words > npages * PAGE / 8)
                words = npages * PAGE / 8;
            if (!wr && wrote)
                part = my_part;
            if (part >= np || np > words) {
                static const char bad[] = "{\"error\": \"bad parts\"}";
                thaw_respond(fd, bad, sizeof bad - 1);
                continue;
            }
            uint64_t b = parts(arena, words, np, part, wr != 0, &wrote);
            if (wr)
                my_part = part;
            if (hold) {
                if (hold > 60000)
                    hold = 60000;
                struct timespec ts = {(time_t)(hold / 1000), (long)(hold % 1000) * 1000000L};
                while (nanosleep(&ts, &ts) != 0)
                    ;
            }
            size_t len = (size_t)snprintf(out, sizeof out, "{\"part\": %llu, \"parts\": %llu, \"bad_words\": %llu}",
                                          (unsigned long long)part, (unsigned long long)np, (unsigned long long)b);
            thaw_respond(fd, out, len);
            continue;
        }
        if (thaw_json_u64(req, "alloc_mib", &alloc) == 0 && alloc) {
            size_t bytes = alloc << 20;
            uint64_t *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m == MAP_FAILED) {
                static const char oom[] = "{\"error\": \"out of memory\"}";
                thaw_respond(fd, oom, sizeof oom - 1);
                continue;
            }
            uint64_t sum = 0;
            for (size_t w = 0; w < bytes / 8; w += PAGE / 8) {
                m[w] = w;
                sum += m[w];
            }
            munmap(m, bytes);
            size_t len = (size_t)snprintf(out, sizeof out, "{\"allocated_mib\": %llu, \"sum\": %llu}",
                                          (unsigned long long)alloc, (unsigned long long)sum);
            thaw_respond(fd, out, len);
            continue;
        }
        thaw_json_u64(req, "mib", &want);
        thaw_json_u64(req, "seed", &seed);
        thaw_json_u64(req, "list", &list);
        uint64_t count = want * (1024 * 1024 / PAGE);
        if (count > npages)
            count = npages;
        /* A stride walk from a seeded start visits distinct pages, scattered. */
        uint64_t rs = seed, start = splitmix(&rs) % npages, stride;
        do
            stride = (splitmix(&rs) % npages) | 1;
        while (npages % 2 == 0 && stride % 2 == 0);
        uint64_t sum = 0, idx = start;
        size_t len = (size_t)snprintf(out, sizeof out, "{\"pages\": %llu, \"arena\": \"%p\"",
                                      (unsigned long long)count, (void *)arena);
        if (list)
            len += (size_t)snprintf(out + len, sizeof out - len, ", \"list\": [");
        for (uint64_t k = 0; k < count; k++) {
            const uint64_t *p = arena + idx * (PAGE / 8);
            for (unsigned w = 0; w < PAGE / 8; w += 8)
                sum = sum * 31 + p[w];
            if (list && len + 32 < sizeof out)
                len += (size_t)snprintf(out + len, sizeof out - len, "%s%llu", k ? "," : "", (unsigned long long)idx);
            idx = (idx + stride) % npages;
        }
        len += (size_t)snprintf(out + len, sizeof out - len, "%s, \"checksum\": \"%016llx\"}", list ? "]" : "",
                                (unsigned long long)sum);
        thaw_respond(fd, out, len);
    }
    return n < 0 ? 1 : 0;
}
