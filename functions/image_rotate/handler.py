"""image_rotate: decodes a shipped PNG with Debian's python3-png (pure Python), rotates
it 90 degrees clockwise `turns` times, re-encodes it as PNG (RGB8, default pypng
settings). Answers the output dimensions, the CRC-32 of the rotated pixels (RGB8
rows, top to bottom: functions/image_rotate_c must report the same) and the size and
SHA-256 of the output PNG.

Payload: {"image": "small"|"large", "turns": 1|2|3} (defaults "small", 1).
"""
import hashlib
import io
import os
import zlib

import png

APP = os.path.dirname(os.path.abspath(__file__))
IMAGES = ("small", "large")


def rotate_cw(rows, width, height, planes):
    """rows: list of bytearray-like rows, `planes` bytes a pixel. Returns the image
    rotated 90 degrees clockwise (new width = height)."""
    out = []
    for x in range(width):
        px = slice(x * planes, (x + 1) * planes)
        row = bytearray()
        for y in range(height - 1, -1, -1):
            row += rows[y][px]
        out.append(row)
    return out


def handle(event):
    name = event.get("image", "small")
    if name not in IMAGES:
        raise ValueError("unknown image %r" % name)
    turns = int(event.get("turns", 1)) % 4
    with open(os.path.join(APP, name + ".png"), "rb") as f:
        width, height, rows, info = png.Reader(file=f).asRGB8()
        rows = [bytearray(r) for r in rows]
    for _ in range(turns):
        rows = rotate_cw(rows, width, height, 3)
        width, height = height, width
    buf = io.BytesIO()
    png.Writer(width, height, greyscale=False, bitdepth=8).write(buf, rows)
    data = buf.getvalue()
    pixels_crc = 0
    for row in rows:
        pixels_crc = zlib.crc32(row, pixels_crc)
    return {"image": name, "turns": turns, "width": width, "height": height,
            "pixels_crc32": pixels_crc, "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}
