"""image_process_pil (FunctionBench image_processing, Pillow): the image decoded at
import; each request applies FunctionBench's chain (flip, rotate, blur, contour,
sharpen, grayscale, resize) to the image scaled to "scale" and answers the MD5 of
each result's pixels.

Payload: {"scale": S}.
"""
import hashlib
import os

from PIL import Image, ImageFilter, ImageOps

APP = os.path.dirname(os.path.abspath(__file__))
IMAGE = Image.open(os.path.join(APP, "image.png"))
IMAGE.load()


def md5(img):
    return hashlib.md5(img.tobytes()).hexdigest()


def handle(event):
    scale = int(event.get("scale", 1))
    img = IMAGE if scale == 1 else IMAGE.resize((IMAGE.width * scale, IMAGE.height * scale), Image.BILINEAR)
    steps = {
        "flip": ImageOps.flip(img),
        "mirror": ImageOps.mirror(img),
        "rotate": img.rotate(90, expand=True),
        "blur": img.filter(ImageFilter.BLUR),
        "contour": img.filter(ImageFilter.CONTOUR),
        "sharpen": img.filter(ImageFilter.SHARPEN),
        "gray": ImageOps.grayscale(img),
        "thumbnail": img.resize((img.width // 4, img.height // 4), Image.LANCZOS),
    }
    return {"size": [img.width, img.height], "md5": {k: md5(v) for k, v in steps.items()}}
