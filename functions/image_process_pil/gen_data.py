"""Writes app/image.png (512x384 RGB, deterministic noise and gradients) with Pillow."""
import numpy as np
from PIL import Image


def generate(app_dir):
    rng = np.random.default_rng(11)
    y, x = np.mgrid[0:384, 0:512]
    img = np.stack([(x // 2) % 256, (y // 2) % 256, rng.integers(0, 256, (384, 512))], axis=-1)
    Image.fromarray(img.astype(np.uint8), "RGB").save(app_dir + "/image.png", optimize=False)
