"""Trains a scikit-learn LogisticRegression on a seeded synthetic data set (2048 rows,
32 features) and saves it with joblib, scikit-learn's own persistence; writes 4096
query rows as app/queries.npy."""
import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def generate(app_dir):
    rng = np.random.default_rng(21)
    w = rng.normal(size=32)
    x = rng.normal(size=(2048, 32)) * 3 + 1
    y = (x @ w + rng.normal(size=2048) > w.sum()).astype(int)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y)
    joblib.dump(model, app_dir + "/model.joblib")
    np.save(app_dir + "/queries.npy", rng.normal(size=(4096, 32)) * 3 + 1)
