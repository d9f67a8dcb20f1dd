"""Writes app/video.avi: 48 frames of 160x120 (a moving gradient and a square),
Motion-JPEG in AVI with OpenCV's own writer (no codec library needed)."""
import cv2
import numpy as np


def generate(app_dir):
    out = cv2.VideoWriter(app_dir + "/video.avi", cv2.CAP_OPENCV_MJPEG, cv2.VideoWriter_fourcc(*"MJPG"), 12,
                          (160, 120))
    if not out.isOpened():
        raise RuntimeError("OpenCV cannot write MJPEG")
    y, x = np.mgrid[0:120, 0:160]
    for i in range(48):
        frame = np.stack([(x + 3 * i) % 256, (y + 2 * i) % 256, np.full_like(x, (7 * i) % 256)], -1).astype(np.uint8)
        cv2.rectangle(frame, (10 + 2 * i, 30), (40 + 2 * i, 60), (255, 255, 255), -1)
        out.write(frame)
    out.release()
