"""Generates app/small.png (96x64) and app/large.png (320x240), RGB8."""
import datagen


def generate(app_dir):
    datagen.write_images(app_dir)
