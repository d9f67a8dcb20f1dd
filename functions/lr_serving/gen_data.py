"""Generates app/model.json (a logistic-regression model over 32 standardised
features) and app/inputs.json (1024 feature rows), deterministic."""
import datagen

FEATURES = 32
ROWS = 1024


def generate(app_dir):
    r = datagen.rng(7)
    model = {
        "features": FEATURES,
        "mean": [round(r.uniform(-5, 5), 6) for _ in range(FEATURES)],
        "scale": [round(r.uniform(0.5, 4), 6) for _ in range(FEATURES)],
        "weights": [round(r.gauss(0, 0.6), 6) for _ in range(FEATURES)],
        "bias": round(r.gauss(0, 0.3), 6),
        "threshold": 0.5,
    }
    rows = []
    for _ in range(ROWS):
        rows.append([round(m + s * r.gauss(0, 1), 4)
                     for m, s in zip(model["mean"], model["scale"])])
    datagen.write_json(app_dir + "/model.json", model, indent=1)
    datagen.write_json(app_dir + "/inputs.json", {"rows": rows})
