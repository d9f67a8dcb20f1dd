"""Writes a seeded synthetic classification data set (8192 rows, 16 features) as
app/train.npz for lr_training_sk."""
import numpy as np


def generate(app_dir):
    rng = np.random.default_rng(31)
    w = rng.normal(size=16)
    x = rng.normal(size=(8192, 16))
    y = (x @ w + 0.5 * rng.normal(size=8192) > 0).astype(int)
    np.savez(app_dir + "/train.npz", x=x, y=y)
