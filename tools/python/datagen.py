"""Deterministic generators for the data files that functions ship.

Called at build time from each function's gen_data.py (under /usr/bin/python3.11).
Everything is seeded, so a rebuild produces byte-identical files and the responses in
expected/ stay valid. Nothing here is imported in the guest.
"""
import json
import random
import zlib

WORDS = (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron "
    "pi rho sigma tau upsilon phi chi psi omega function snapshot restore memory page "
    "kernel guest host virtual machine request response cold warm start latency "
    "throughput archive module import bytecode interpreter runtime handler payload"
).split()


def rng(seed):
    return random.Random(seed)


def text(seed, size):
    """About `size` bytes of ASCII prose-like text made of WORDS, in lines."""
    r = rng(seed)
    out, n, line = [], 0, []
    while n < size:
        w = r.choice(WORDS)
        line.append(w)
        n += len(w) + 1
        if len(line) >= r.randint(6, 14):
            out.append(" ".join(line).capitalize() + ".\n")
            line = []
    out.append(" ".join(line) + "\n")
    return "".join(out).encode()[:size]


def json_document(seed, records):
    """A JSON-able document of `records` user-like records (~1 KiB each)."""
    r = rng(seed)
    recs = []
    for i in range(records):
        name = "%s %s" % (r.choice(WORDS).capitalize(), r.choice(WORDS).capitalize())
        recs.append({
            "id": i,
            "uuid": "%032x" % r.getrandbits(128),
            "name": name,
            "email": "%s.%d@example.org" % (name.lower().replace(" ", "."), i),
            "active": r.random() < 0.7,
            "score": round(r.uniform(-1000, 1000), 6),
            "ratio": r.random(),
            "tags": [r.choice(WORDS) for _ in range(r.randint(0, 8))],
            "address": {
                "street": "%d %s street" % (r.randint(1, 9999), r.choice(WORDS)),
                "city": r.choice(WORDS).capitalize(),
                "zip": "%05d" % r.randint(0, 99999),
                "geo": [round(r.uniform(-90, 90), 5), round(r.uniform(-180, 180), 5)],
            },
            "history": [r.randint(-2**40, 2**40) for _ in range(r.randint(2, 12))],
            "note": None if r.random() < 0.5 else text(r.getrandbits(32), 120).decode(),
            "unicode": "caf\u00e9 \u00fcber \u65e5\u672c \u2603" if i % 17 == 0 else "",
        })
    return {"version": 1, "generator": "thaw datagen", "count": records, "records": recs}


def write_json(path, obj, **kw):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, **kw)


def image_rgb(width, height, seed):
    """Rows of RGB8 pixels: smooth gradients plus rings and a little noise, so that
    the PNG compresses like a photo-ish image rather than flat colour."""
    r = rng(seed)
    cx, cy = width * 0.37, height * 0.61
    rows = []
    for y in range(height):
        row = bytearray()
        for x in range(width):
            d = int(((x - cx) ** 2 + (y - cy) ** 2) ** 0.5)
            row += bytes((
                (x * 255 // max(1, width - 1)) ^ (d & 0x1f),
                (y * 255 // max(1, height - 1) + (d >> 2)) & 0xff,
                ((x + y) * 3 + r.randrange(16)) & 0xff,
            ))
        rows.append(bytes(row))
    return rows


def write_png_rgb(path, width, height, rows):
    """A minimal, standard 8-bit RGB PNG (filter 0 on every row, zlib level 9).
    Written by hand so the bytes do not depend on an encoder's version."""
    def chunk(kind, data):
        body = kind + data
        return (len(data).to_bytes(4, "big") + body
                + zlib.crc32(body).to_bytes(4, "big"))
    raw = b"".join(b"\x00" + row for row in rows)
    ihdr = (width.to_bytes(4, "big") + height.to_bytes(4, "big")
            + bytes((8, 2, 0, 0, 0)))  # depth 8, colour type 2 (RGB), no interlace
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


# Images shipped by image_rotate and image_rotate_c: name -> (width, height, seed).
IMAGES = {"small": (96, 64, 1), "large": (320, 240, 2)}


def write_images(app_dir):
    for name, (w, h, seed) in IMAGES.items():
        write_png_rgb("%s/%s.png" % (app_dir, name), w, h, image_rgb(w, h, seed))
