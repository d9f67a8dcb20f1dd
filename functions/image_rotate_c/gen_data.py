"""Generates app/small.png and app/large.png: the same images as image_rotate."""
import datagen


def generate(app_dir):
    datagen.write_images(app_dir)
