"""compression: zlib-compresses the first `bytes` bytes of the shipped corpus
(app/corpus.txt, 512 KiB of text; repeated if more is asked) at `level`, decompresses
to verify, and reports sizes, ratio and checksums. zlib is Debian's
python3.11 zlib module (libz from zlib1g).

Payload: {"bytes": N, "level": L} (defaults: the whole corpus, level 6).
"""
import os
import zlib

APP = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(APP, "corpus.txt")


def handle(event):
    with open(CORPUS, "rb") as f:
        corpus = f.read()
    size = int(event.get("bytes", len(corpus)))
    level = int(event.get("level", 6))
    data = (corpus * (size // len(corpus) + 1))[:size]
    packed = zlib.compress(data, level)
    if zlib.decompress(packed) != data:
        raise RuntimeError("zlib round trip mismatch")
    return {
        "input_bytes": size,
        "level": level,
        "compressed_bytes": len(packed),
        "ratio": round(len(packed) / size, 6) if size else 0.0,
        "crc32": zlib.crc32(data),
        "adler32": zlib.adler32(packed),
    }
