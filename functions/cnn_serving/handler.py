"""cnn_serving (FunctionBench cnn_image_classification, PyTorch): a small SqueezeNet-
shaped network, its weights loaded with torch.load at import; each request classifies
the first N images of the batch loaded at import and answers the classes and the
logits' sum (6 significant digits). One thread (the guest has one vCPU).

Payload: {"n": N}.
"""
import os

import torch

import model

torch.set_num_threads(1)
APP = os.path.dirname(os.path.abspath(__file__))
NET = model.SmallSqueezeNet()
NET.load_state_dict(torch.load(os.path.join(APP, "weights.pt")))
NET.eval()
IMAGES = torch.load(os.path.join(APP, "images.pt"))


def handle(event):
    n = int(event.get("n", 1))
    with torch.no_grad():
        logits = NET(IMAGES[:n])
    return {"n": n, "classes": logits.argmax(1).tolist(), "logit_sum": float("%.6g" % logits.sum().item())}
