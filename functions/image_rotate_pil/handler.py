"""image_rotate_pil (FunctionBench image_rotate, Pillow): decodes app/image.png at
import (before the snapshot), rotates it by "degrees" after scaling it to "scale"
(1, 2 or 4 times the original size), re-encodes it as PNG and answers the size and
MD5 of the rotated pixels and the encoded length.

Payload: {"degrees": D, "scale": S}.
"""
import hashlib
import io
import os

from PIL import Image

APP = os.path.dirname(os.path.abspath(__file__))
IMAGE = Image.open(os.path.join(APP, "image.png"))
IMAGE.load()


def handle(event):
    degrees = int(event.get("degrees", 90))
    scale = int(event.get("scale", 1))
    img = IMAGE if scale == 1 else IMAGE.resize((IMAGE.width * scale, IMAGE.height * scale), Image.NEAREST)
    out = img.rotate(degrees, expand=True)
    buf = io.BytesIO()
    out.save(buf, format="PNG", compress_level=1)
    return {"width": out.width, "height": out.height, "pixels_md5": hashlib.md5(out.tobytes()).hexdigest(),
            "png_bytes": len(buf.getvalue())}
