"""OpenCV Haar-cascade face detector with estimated landmarks: the fallback that needs no
download (the cascades ship with opencv-python-headless 4.x).

Haar cascades give face boxes, not landmarks, so the five points are estimated at fixed
fractions of the face box (BOX_LANDMARK_FRACTIONS), and the two eye points are replaced
by the centres of the eye cascade's boxes when it finds one plausible eye in each half
of the face (this recovers head roll).
The fractions were measured, not guessed: medians of MTCNN landmarks expressed in
frontalface_default boxes on 374 LFW + CelebA images (spread about 0.03 of the box),
made left-right symmetric. Judged by where MTCNN's landmarks land in the 112x112 crop
(300 other images), the mean distance to the template is 4.1 px with found eyes + box
nose/mouth, 4.3 px from the box alone, 4.4 px when nose and mouth also follow the eyes,
and 2.7 px with MTCNN's own landmarks.
"""

from __future__ import annotations

import cv2
import numpy as np

from facebench.data.detectors import Face, check_rgb, downscale
from facebench.errors import FacebenchError

# (x, y) as fractions of the face box (width, height): left eye, right eye, nose, mouth corners
BOX_LANDMARK_FRACTIONS = np.array(
    [[0.314, 0.385], [0.686, 0.385], [0.503, 0.607], [0.335, 0.780], [0.665, 0.780]], dtype=np.float32
)
EYE_SEARCH_HEIGHT = 0.6  # eyes are searched in the top 60 % of the face box
SCALE_STEP = 1.1  # cascade window growth per scale
MIN_NEIGHBOURS_FACE = 5
MIN_NEIGHBOURS_EYE = 3


class HaarDetector:
    """Haar cascade face + eye detector on any uint8 RGB frame.

    score = the cascade's level weight for the face (larger is surer; not a probability).
    """

    name = "haar"

    def __init__(self, min_face_px: int = 40, max_side_px: int = 640) -> None:
        self.min_face_px = min_face_px
        self.max_side_px = max_side_px
        self.faces = _cascade("haarcascade_frontalface_default.xml")
        self.eyes = _cascade("haarcascade_eye.xml")

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces in the frame, highest level weight first, in the frame's pixels."""
        check_rgb(image)
        small, factor = downscale(image, self.max_side_px)
        gray = cv2.equalizeHist(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
        size = (self.min_face_px, self.min_face_px)
        rects, _, weights = self.faces.detectMultiScale3(
            gray, SCALE_STEP, MIN_NEIGHBOURS_FACE, minSize=size, outputRejectLevels=True
        )
        found = []
        for (x, y, w, h), weight in zip(rects, np.ravel(weights), strict=True):
            landmarks = self._landmarks(gray, x, y, w, h)
            box = np.array([x, y, x + w, y + h], dtype=np.float32)
            # box edges -> / factor; landmarks are pixel centres (index i at i), hence the 0.5 shifts
            found.append(Face(box / factor, float(weight), ((landmarks + 0.5) / factor - 0.5).astype(np.float32)))
        return sorted(found, key=lambda face: -face.score)

    def _landmarks(self, gray: np.ndarray, x: int, y: int, w: int, h: int) -> np.ndarray:
        landmarks = BOX_LANDMARK_FRACTIONS * np.array([w, h], dtype=np.float32) + np.array([x, y], dtype=np.float32)
        eyes = self._eye_pair(gray[y : y + int(EYE_SEARCH_HEIGHT * h), x : x + w], w)
        if eyes is not None:
            landmarks[:2] = eyes + np.array([x, y], dtype=np.float32)
        return landmarks

    def _eye_pair(self, roi: np.ndarray, face_w: int) -> np.ndarray | None:
        """Centres of the largest eye found in each half of the face, if they form a plausible pair."""
        min_eye = max(face_w // 8, 1)
        rects = self.eyes.detectMultiScale(roi, SCALE_STEP, MIN_NEIGHBOURS_EYE, minSize=(min_eye, min_eye))
        centres = [(ex + ew / 2, ey + eh / 2, ew) for ex, ey, ew, eh in rects]
        left = [c for c in centres if c[0] < face_w / 2]
        right = [c for c in centres if c[0] >= face_w / 2]
        if not left or not right:
            return None
        (lx, ly, _), (rx, ry, _) = max(left, key=lambda c: c[2]), max(right, key=lambda c: c[2])
        # the box estimate puts the eyes 0.37 face widths apart, level with each other
        if not (0.25 * face_w <= rx - lx <= 0.55 * face_w and abs(ry - ly) <= 0.15 * face_w):
            return None
        return np.array([[lx, ly], [rx, ry]], dtype=np.float32) - 0.5  # to pixel-centre coordinates


def _cascade(file: str) -> cv2.CascadeClassifier:
    """A cascade shipped with OpenCV (cv2.data.haarcascades; opencv 5 wheels ship none)."""
    classifier = cv2.CascadeClassifier(cv2.data.haarcascades + file)
    if classifier.empty():
        raise FacebenchError(
            f"OpenCV has no {file} (opencv-python-headless 5.x ships no Haar cascades); "
            "fix: pip install 'opencv-python-headless>=4.10,<5', or use --detector mtcnn"
        )
    return classifier
