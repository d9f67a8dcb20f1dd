"""lr_training_sk (FunctionBench lr_training, scikit-learn): trains a LogisticRegression
on the first N rows of the data set loaded at import and answers the training
accuracy and the coefficients (4 decimals: the solver's last bits depend on BLAS).

Payload: {"n": N}.
"""
import os

import numpy as np
from sklearn.linear_model import LogisticRegression

APP = os.path.dirname(os.path.abspath(__file__))
DATA = np.load(os.path.join(APP, "train.npz"))
X, Y = DATA["x"], DATA["y"]


def handle(event):
    n = int(event.get("n", 1000))
    model = LogisticRegression(max_iter=1000).fit(X[:n], Y[:n])
    return {"n": n, "accuracy": round(float(model.score(X[:n], Y[:n])), 4),
            "coef": [round(float(c), 4) for c in model.coef_[0]], "intercept": round(float(model.intercept_[0]), 4)}
