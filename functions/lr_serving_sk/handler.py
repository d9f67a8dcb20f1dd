"""lr_serving_sk (FunctionBench lr_serving, scikit-learn): the model (a StandardScaler
and LogisticRegression pipeline, saved by joblib at build time) is loaded at import;
each request scores the first N query rows and answers the positive count and the
mean probability (8 significant digits).

Payload: {"n": N}.
"""
import os

import joblib
import numpy as np

APP = os.path.dirname(os.path.abspath(__file__))
MODEL = joblib.load(os.path.join(APP, "model.joblib"))
QUERIES = np.load(os.path.join(APP, "queries.npy"))


def handle(event):
    n = int(event.get("n", 100))
    rows = QUERIES[np.arange(n) % len(QUERIES)]
    p = MODEL.predict_proba(rows)[:, 1]
    return {"n": n, "positive": int((p >= 0.5).sum()), "mean_probability": float("%.8g" % p.mean())}
