/* getrandom() and AT_RANDOM: a ChaCha20 keystream (RFC 8439 block function) keyed from
 * monitor-supplied entropy. Every snapshot restore gets fresh entropy and a new
 * generation number from the monitor; the generator mixes them in before the next
 * output, so two instances restored from one snapshot never share random bytes. */
#include "kernel.h"

static uint32_t key[8];
static uint64_t counter;
static uint64_t seen_generation;

#define ROTL(v, n) (((v) << (n)) | ((v) >> (32 - (n))))
#define QR(a, b, c, d) \
    a += b, d ^= a, d = ROTL(d, 16), c += d, b ^= c, b = ROTL(b, 12), \
    a += b, d ^= a, d = ROTL(d, 8), c += d, b ^= c, b = ROTL(b, 7)

static void chacha_block(uint32_t out[16], const uint32_t k[8], uint64_t ctr)
{
    uint32_t s[16] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574,
                      k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7],
                      (uint32_t)ctr, (uint32_t)(ctr >> 32), 0, 0};
    uint32_t x[16];
    memcpy(x, s, sizeof x);
    for (int i = 0; i < 10; i++) {
        QR(x[0], x[4], x[8], x[12]);
        QR(x[1], x[5], x[9], x[13]);
        QR(x[2], x[6], x[10], x[14]);
        QR(x[3], x[7], x[11], x[15]);
        QR(x[0], x[5], x[10], x[15]);
        QR(x[1], x[6], x[11], x[12]);
        QR(x[2], x[7], x[8], x[13]);
        QR(x[3], x[4], x[9], x[14]);
    }
    for (int i = 0; i < 16; i++)
        out[i] = x[i] + s[i];
}

/* New key = first half of a block keyed by (old key XOR fresh entropy). */
static void reseed(void)
{
    uint32_t mix[8], blk[16];
    memcpy(mix, (const void *)boot_info->random, sizeof mix);
    for (int i = 0; i < 8; i++)
        mix[i] ^= key[i];
    mix[0] ^= (uint32_t)boot_info->generation;
    mix[1] ^= (uint32_t)(boot_info->generation >> 32);
    chacha_block(blk, mix, ~0ull);
    memcpy(key, blk, sizeof key);
    counter = 0;
    seen_generation = boot_info->generation;
}

void random_init(void)
{
    reseed();
}

void random_bytes(void *buf, size_t len)
{
    if (boot_info->generation != seen_generation)
        reseed();
    uint8_t *p = buf;
    while (len) {
        uint32_t blk[16];
        chacha_block(blk, key, counter++);
        size_t n = MIN(len, sizeof blk);
        memcpy(p, blk, n);
        p += n;
        len -= n;
    }
}
