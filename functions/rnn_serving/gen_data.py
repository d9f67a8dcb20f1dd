"""Saves seeded weights of the character-level LSTM (model.py) with torch.save."""
import os
import sys

import torch


def generate(app_dir):
    sys.path.insert(0, app_dir)
    import model
    torch.manual_seed(9)
    torch.save(model.CharLSTM().state_dict(), os.path.join(app_dir, "weights.pt"))
    sys.path.remove(app_dir)
    sys.modules.pop("model", None)
