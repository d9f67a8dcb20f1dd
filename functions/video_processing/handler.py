"""video_processing (FunctionBench video_processing, OpenCV): decodes the first N
frames of app/video.avi (Motion-JPEG, OpenCV's own decoder), converts each to
grayscale and runs Canny edge detection, re-encodes the edge frames as JPEG, and
answers the frame count, the edge-pixel count and an MD5 over the edge frames.

Payload: {"frames": N}.
"""
import hashlib
import os

import cv2

APP = os.path.dirname(os.path.abspath(__file__))
VIDEO = os.path.join(APP, "video.avi")
cv2.setNumThreads(1)


def handle(event):
    want = int(event.get("frames", 12))
    cap = cv2.VideoCapture(VIDEO, cv2.CAP_OPENCV_MJPEG)
    digest, frames, edges_total, encoded = hashlib.md5(), 0, 0, 0
    while frames < want:
        ok, frame = cap.read()
        if not ok:
            break
        edges = cv2.Canny(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), 50, 150)
        digest.update(edges.tobytes())
        edges_total += int((edges > 0).sum())
        encoded += len(cv2.imencode(".jpg", edges)[1])
        frames += 1
    cap.release()
    return {"frames": frames, "edge_pixels": edges_total, "edges_md5": digest.hexdigest(), "jpeg_bytes": encoded}
