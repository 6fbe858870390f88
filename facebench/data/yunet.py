"""YuNet face detector (OpenCV zoo, 2026may, MIT) through ``cv2.FaceDetectorYN``: CPU, no torch.

A single-shot detector: one small CNN pass over the whole frame gives boxes, scores and five
landmarks. The ONNX file ships with facebench (facebench/data/weights) and is checked by its
SHA-256 before OpenCV reads it. YuNet's five points come in the image's left-to-right order
(the subject's right eye first), which is Face's order; they are then moved by the fitted
YuNet offsets (facebench.data.landmarks) so they mean what MTCNN's points mean.
"""

from __future__ import annotations

import cv2
import numpy as np

from facebench.data.detectors import Face, check_rgb, downscale
from facebench.data.landmarks import correct_landmarks
from facebench.data.packaged_weights import checked_weight_path

WEIGHTS_FILE = "face_detection_yunet_2026may.onnx"
SCORE_THRESHOLD = 0.6  # faces kept (OpenCV's demo uses 0.9 for display; 0.6 still rejects non-faces)
NMS_IOU = 0.3  # the OpenCV zoo's default
TOP_K = 5000
MIN_INPUT_PX = 32  # YuNet's coarsest stride: smaller inputs are padded (OpenCV returns garbage rows for 1x1)


class YunetDetector:
    """YuNet on any uint8 RGB frame: every face with box, score and five landmarks.

    ``correction``: "linear" (default), "constant" or "none" (YuNet's own points), see facebench.data.landmarks.
    One object must not run on two threads at once (FaceDetectorYN keeps its input size).
    """

    name = "yunet"

    def __init__(self, min_face_px: int = 0, max_side_px: int = 640, correction: str = "linear") -> None:
        self.min_face_px = min_face_px
        self.max_side_px = max_side_px
        self.correction = correction
        path = checked_weight_path(WEIGHTS_FILE)
        self._net = cv2.FaceDetectorYN.create(str(path), "", (320, 320), SCORE_THRESHOLD, NMS_IOU, TOP_K)
        self._size: tuple[int, int] | None = None

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces in the frame, highest score first, in the frame's pixel coordinates."""
        check_rgb(image)
        small, factor = downscale(image, self.max_side_px)
        if min(small.shape[:2]) < MIN_INPUT_PX:  # pad right and bottom: coordinates unchanged
            pad_y, pad_x = max(0, MIN_INPUT_PX - small.shape[0]), max(0, MIN_INPUT_PX - small.shape[1])
            small = cv2.copyMakeBorder(small, 0, pad_y, 0, pad_x, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        size = (small.shape[1], small.shape[0])
        if size != self._size:
            self._net.setInputSize(size)
            self._size = size
        _, rows = self._net.detect(cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
        faces = []
        for row in [] if rows is None else rows:
            if not np.isfinite(row).all():
                continue
            x, y, w, h = (float(v) for v in row[:4])
            if min(w, h) < self.min_face_px:
                continue
            # box edges scale by 1 / factor; landmarks are pixel centres (index i at i)
            points = ((row[4:14].reshape(5, 2) + 0.5) / factor - 0.5).astype(np.float32)
            if self.correction != "none":
                points = correct_landmarks(self.name, points, self.correction)
            box = np.array([x, y, x + w, y + h], dtype=np.float32) / factor
            faces.append(Face(box=box, score=float(row[14]), landmarks=points))
        return sorted(faces, key=lambda face: -face.score)
