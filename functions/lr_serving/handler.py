"""lr_serving: logistic-regression inference in pure Python. The model
(app/model.json) and a pool of input rows (app/inputs.json) are loaded at import time,
i.e. before the snapshot, as a model server would. Each request scores the first N
rows (cycling through the pool). Answers the count of positives, the mean
probability and a SHA-256 over all probabilities.

Payload: {"n": N}.
"""
import hashlib
import json
import math
import os
import struct

APP = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(APP, "model.json"), "rb") as _f:
    MODEL = json.load(_f)
with open(os.path.join(APP, "inputs.json"), "rb") as _f:
    ROWS = json.load(_f)["rows"]
# Fold the standardisation into the weights: w.((x - mean) / scale) + b.
W = [w / s for w, s in zip(MODEL["weights"], MODEL["scale"])]
B = MODEL["bias"] - math.fsum(w * m for w, m in zip(W, MODEL["mean"]))
THRESHOLD = MODEL["threshold"]


def predict(row):
    z = B + math.fsum(w * x for w, x in zip(W, row))
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def handle(event):
    n = int(event.get("n", 100))
    probs = [predict(ROWS[i % len(ROWS)]) for i in range(n)]
    digest = hashlib.sha256(struct.pack("<%dd" % n, *probs)).hexdigest()
    return {
        "n": n,
        "positives": sum(1 for p in probs if p >= THRESHOLD),
        "mean_probability": math.fsum(probs) / n if n else 0.0,
        "sha256": digest,
    }
