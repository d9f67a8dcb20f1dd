/* aes_c: AES-128-CTR over a deterministic message, the native twin of the pyaes
 * function (same key, initial counter, message generator and response format, so the
 * responses must be identical).
 *
 * AES-128 is written from FIPS-197 (S-box derived from the GF(2^8) inverse and the
 * affine map of section 5.1.1, key expansion of 5.2), CTR mode from NIST SP 800-38A
 * with a 128-bit big-endian counter, SHA-256 from FIPS 180-4 (its constants derived
 * as the standard defines them). A known-answer self-test runs before serving.
 *
 * Payload: {"size": N} (bytes, default 1024).
 * Serves /dev/invoke; with THAW_INVOKE_PATH set, answers the one request in that
 * file on stdout and exits (host testing).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "thaw_function.h"

#define MAX_SIZE (16u << 20)
#define RESP_CAP 4096

/* ---- AES-128 (FIPS-197) ---------------------------------------------------------- */

static uint8_t sbox[256];

static uint8_t gf_mul(uint8_t a, uint8_t b)
{
    uint8_t p = 0;
    while (b) {
        if (b & 1)
            p ^= a;
        a = (uint8_t)((a << 1) ^ ((a & 0x80) ? 0x1b : 0)); /* x^8 = x^4+x^3+x+1 */
        b >>= 1;
    }
    return p;
}

static uint8_t rotl8(uint8_t x, int n)
{
    return (uint8_t)((x << n) | (x >> (8 - n)));
}

/* S(x) = affine(x^-1), with 0^-1 = 0 (FIPS-197 5.1.1). */
static void aes_init_sbox(void)
{
    for (int x = 0; x < 256; x++) {
        uint8_t inv = 0;
        for (int y = 1; y < 256 && x; y++) {
            if (gf_mul((uint8_t)x, (uint8_t)y) == 1) {
                inv = (uint8_t)y;
                break;
            }
        }
        sbox[x] = (uint8_t)(inv ^ rotl8(inv, 1) ^ rotl8(inv, 2) ^ rotl8(inv, 3) ^
                            rotl8(inv, 4) ^ 0x63);
    }
}

struct aes128 {
    uint8_t rk[11][16]; /* round keys */
};

static void aes128_expand(struct aes128 *k, const uint8_t key[16])
{
    uint8_t w[44][4];
    uint8_t rcon = 1;
    memcpy(w, key, 16);
    for (int i = 4; i < 44; i++) {
        uint8_t t[4];
        memcpy(t, w[i - 1], 4);
        if (i % 4 == 0) {
            uint8_t t0 = t[0]; /* SubWord(RotWord(t)) ^ Rcon */
            t[0] = (uint8_t)(sbox[t[1]] ^ rcon);
            t[1] = sbox[t[2]];
            t[2] = sbox[t[3]];
            t[3] = sbox[t0];
            rcon = gf_mul(rcon, 2);
        }
        for (int j = 0; j < 4; j++)
            w[i][j] = (uint8_t)(w[i - 4][j] ^ t[j]);
    }
    memcpy(k->rk, w, sizeof k->rk);
}

/* The state is column-major as in the standard: s[r + 4c]. */
static void aes128_encrypt_block(const struct aes128 *k, const uint8_t in[16], uint8_t out[16])
{
    uint8_t s[16];
    for (int i = 0; i < 16; i++)
        s[i] = in[i] ^ k->rk[0][i];
    for (int round = 1; round <= 10; round++) {
        uint8_t t[16];
        for (int c = 0; c < 4; c++) /* SubBytes + ShiftRows: row r shifts left by r */
            for (int r = 0; r < 4; r++)
                t[r + 4 * c] = sbox[s[r + 4 * ((c + r) % 4)]];
        if (round != 10) {
            for (int c = 0; c < 4; c++) { /* MixColumns */
                uint8_t *col = &t[4 * c];
                uint8_t a0 = col[0], a1 = col[1], a2 = col[2], a3 = col[3];
                col[0] = (uint8_t)(gf_mul(a0, 2) ^ gf_mul(a1, 3) ^ a2 ^ a3);
                col[1] = (uint8_t)(a0 ^ gf_mul(a1, 2) ^ gf_mul(a2, 3) ^ a3);
                col[2] = (uint8_t)(a0 ^ a1 ^ gf_mul(a2, 2) ^ gf_mul(a3, 3));
                col[3] = (uint8_t)(gf_mul(a0, 3) ^ a1 ^ a2 ^ gf_mul(a3, 2));
            }
        }
        for (int i = 0; i < 16; i++)
            s[i] = t[i] ^ k->rk[round][i];
    }
    memcpy(out, s, 16);
}

/* CTR (SP 800-38A 6.5): keystream = E(counter), counter += 1 mod 2^128. */
static void aes128_ctr(const struct aes128 *k, const uint8_t counter0[16],
                       const uint8_t *in, uint8_t *out, size_t n)
{
    uint8_t ctr[16], ks[16];
    memcpy(ctr, counter0, 16);
    for (size_t off = 0; off < n; off += 16) {
        aes128_encrypt_block(k, ctr, ks);
        size_t m = n - off < 16 ? n - off : 16;
        for (size_t i = 0; i < m; i++)
            out[off + i] = in[off + i] ^ ks[i];
        for (int i = 15; i >= 0 && ++ctr[i] == 0; i--)
            ;
    }
}

/* ---- SHA-256 (FIPS 180-4) -------------------------------------------------------- */

static uint32_t sha_k[64], sha_h0[8];

/* K[i] / H0[i]: the first 32 bits of the fractional parts of the cube / square roots
 * of the first primes, computed exactly with integer roots. */
static void sha256_init_constants(void)
{
    int n = 0;
    for (unsigned p = 2; n < 64; p++) {
        int prime = 1;
        for (unsigned d = 2; d * d <= p; d++)
            prime &= p % d != 0;
        if (!prime)
            continue;
        unsigned __int128 target = (unsigned __int128)p << 96, lo = 0, hi = (uint64_t)1 << 36;
        while (lo < hi) { /* largest x with x^3 <= p * 2^96 */
            unsigned __int128 mid = (lo + hi + 1) / 2;
            if (mid * mid * mid <= target)
                lo = mid;
            else
                hi = mid - 1;
        }
        sha_k[n] = (uint32_t)lo;
        if (n < 8) {
            target = (unsigned __int128)p << 64;
            lo = 0, hi = (uint64_t)1 << 36;
            while (lo < hi) { /* largest x with x^2 <= p * 2^64 */
                unsigned __int128 mid = (lo + hi + 1) / 2;
                if (mid * mid <= target)
                    lo = mid;
                else
                    hi = mid - 1;
            }
            sha_h0[n] = (uint32_t)lo;
        }
        n++;
    }
}

static uint32_t ror32(uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

static void sha256_block(uint32_t h[8], const uint8_t b[64])
{
    uint32_t w[64];
    for (int t = 0; t < 16; t++)
        w[t] = (uint32_t)b[4 * t] << 24 | (uint32_t)b[4 * t + 1] << 16 |
               (uint32_t)b[4 * t + 2] << 8 | b[4 * t + 3];
    for (int t = 16; t < 64; t++) {
        uint32_t s0 = ror32(w[t - 15], 7) ^ ror32(w[t - 15], 18) ^ (w[t - 15] >> 3);
        uint32_t s1 = ror32(w[t - 2], 17) ^ ror32(w[t - 2], 19) ^ (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = h[0], bb = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int t = 0; t < 64; t++) {
        uint32_t t1 = hh + (ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25)) + ((e & f) ^ (~e & g)) +
                      sha_k[t] + w[t];
        uint32_t t2 = (ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22)) + ((a & bb) ^ (a & c) ^ (bb & c));
        hh = g, g = f, f = e, e = d + t1, d = c, c = bb, bb = a, a = t1 + t2;
    }
    h[0] += a, h[1] += bb, h[2] += c, h[3] += d, h[4] += e, h[5] += f, h[6] += g, h[7] += hh;
}

static void sha256(const uint8_t *msg, size_t n, uint8_t out[32])
{
    uint32_t h[8];
    uint8_t tail[128] = {0};
    memcpy(h, sha_h0, sizeof h);
    size_t full = n / 64 * 64, rest = n - full;
    for (size_t off = 0; off < full; off += 64)
        sha256_block(h, msg + off);
    memcpy(tail, msg + full, rest);
    tail[rest] = 0x80;
    size_t tail_len = rest < 56 ? 64 : 128;
    uint64_t bits = (uint64_t)n * 8;
    for (int i = 0; i < 8; i++)
        tail[tail_len - 1 - i] = (uint8_t)(bits >> (8 * i));
    for (size_t off = 0; off < tail_len; off += 64)
        sha256_block(h, tail + off);
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 4; j++)
            out[4 * i + j] = (uint8_t)(h[i] >> (24 - 8 * j));
}

/* ---- the function ---------------------------------------------------------------- */

static const uint8_t KEY[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
static const uint8_t COUNTER0[16] = {0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7,
                                     0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff};
static struct aes128 key_schedule;

static void hex(const uint8_t *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = 0;
}

/* Message bytes: xorshift64* outputs, little-endian (same as the pyaes handler). */
static void message(uint8_t *out, size_t n)
{
    uint64_t s = 0x9E3779B97F4A7C15ull;
    for (size_t off = 0; off < n; off += 8) {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        uint64_t v = s * 0x2545F4914F6CDD1Dull;
        for (size_t i = 0; i < 8 && off + i < n; i++)
            out[off + i] = (uint8_t)(v >> (8 * i));
    }
}

static size_t handle(const char *req, char *resp)
{
    long size = thaw_json_int(req, "size", 1024);
    if (size < 0 || size > (long)MAX_SIZE)
        return (size_t)snprintf(resp, RESP_CAP, "{\"error\": \"ValueError: bad size\"}");
    uint8_t *buf = malloc((size_t)size + 1);
    if (!buf)
        return (size_t)snprintf(resp, RESP_CAP, "{\"error\": \"MemoryError\"}");
    message(buf, (size_t)size);
    aes128_ctr(&key_schedule, COUNTER0, buf, buf, (size_t)size);
    uint8_t digest[32];
    char head_hex[33], digest_hex[65];
    sha256(buf, (size_t)size, digest);
    hex(buf, size < 16 ? (size_t)size : 16, head_hex);
    hex(digest, 32, digest_hex);
    free(buf);
    return (size_t)snprintf(resp, RESP_CAP,
                            "{\"size\": %ld, \"head\": \"%s\", \"sha256\": \"%s\"}", size,
                            head_hex, digest_hex);
}

/* FIPS-197 C.1, SP 800-38A F.5.1 (first block), FIPS 180-4 "abc". */
static int self_test(void)
{
    static const uint8_t pt[16] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
                                   0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
    static const uint8_t ctr_key[16] = {0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6,
                                        0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c};
    static const uint8_t ctr_pt[16] = {0x6b, 0xc1, 0xbe, 0xe2, 0x2e, 0x40, 0x9f, 0x96,
                                       0xe9, 0x3d, 0x7e, 0x11, 0x73, 0x93, 0x17, 0x2a};
    struct aes128 k;
    uint8_t out[32];
    char h[65];
    aes128_expand(&k, KEY);
    aes128_encrypt_block(&k, pt, out);
    hex(out, 16, h);
    if (strcmp(h, "69c4e0d86a7b0430d8cdb78070b4c55a") != 0)
        return -1;
    aes128_expand(&k, ctr_key);
    aes128_ctr(&k, COUNTER0, ctr_pt, out, 16);
    hex(out, 16, h);
    if (strcmp(h, "874d6191b620e3261bef6864990db6ce") != 0)
        return -1;
    sha256((const uint8_t *)"abc", 3, out);
    hex(out, 32, h);
    if (strcmp(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") != 0)
        return -1;
    return 0;
}

int main(void)
{
    aes_init_sbox();
    sha256_init_constants();
    if (self_test() != 0) {
        fputs("aes_c: self-test failed\n", stderr);
        return 1;
    }
    aes128_expand(&key_schedule, KEY);

    return thaw_serve(handle, RESP_CAP);
}
