"""Saves seeded weights of the small SqueezeNet (model.py) with torch.save, and a
seeded batch of 64x64 RGB images as app/images.pt."""
import os
import sys

import torch


def generate(app_dir):
    sys.path.insert(0, app_dir)
    import model
    torch.manual_seed(5)
    net = model.SmallSqueezeNet()
    torch.save(net.state_dict(), os.path.join(app_dir, "weights.pt"))
    torch.save(torch.rand(16, 3, 64, 64, generator=torch.Generator().manual_seed(6)),
               os.path.join(app_dir, "images.pt"))
    sys.path.remove(app_dir)
    sys.modules.pop("model", None)
