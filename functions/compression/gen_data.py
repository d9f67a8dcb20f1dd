"""Generates app/corpus.txt: 512 KiB of prose-like ASCII text, deterministic."""
import datagen


def generate(app_dir):
    with open(app_dir + "/corpus.txt", "wb") as f:
        f.write(datagen.text(seed=1234, size=512 * 1024))
