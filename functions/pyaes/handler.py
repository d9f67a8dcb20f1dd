"""pyaes: AES-128-CTR encryption with Debian's python3-pyaes (pure Python) of a
deterministic message of `size` bytes. Answers the SHA-256 of the ciphertext.

The key, the initial counter and the message generator (xorshift64*) are the same as
in functions/aes_c, so both must give the same digest.

Payload: {"size": N} (bytes, default 1024).
"""
import hashlib

import pyaes

KEY = bytes(range(16))  # 000102...0f
COUNTER0 = 0xF0F1F2F3F4F5F6F7F8F9FAFBFCFDFEFF  # NIST SP 800-38A F.5 initial counter
SEED = 0x9E3779B97F4A7C15
MASK = (1 << 64) - 1


def message(size):
    """`size` bytes from xorshift64* (little-endian 64-bit outputs)."""
    out = bytearray()
    s = SEED
    while len(out) < size:
        s ^= s >> 12
        s ^= (s << 25) & MASK
        s ^= s >> 27
        out += ((s * 0x2545F4914F6CDD1D) & MASK).to_bytes(8, "little")
    return bytes(out[:size])


def handle(event):
    size = int(event.get("size", 1024))
    ctr = pyaes.AESModeOfOperationCTR(KEY, counter=pyaes.Counter(initial_value=COUNTER0))
    ciphertext = ctr.encrypt(message(size))
    return {
        "size": size,
        "head": ciphertext[:16].hex(),
        "sha256": hashlib.sha256(ciphertext).hexdigest(),
    }
