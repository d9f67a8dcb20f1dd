"""Generates app/data.json: ~350 KiB of records, deterministic."""
import datagen


def generate(app_dir):
    datagen.write_json(app_dir + "/data.json", datagen.json_document(seed=20240601, records=600))
