"""Face alignment to the standard ArcFace 112x112 crop.

Two ways to get there:

* ``center_crop``: no detection, a fixed square cut for photos whose face is already
  roughly centred (LFW deep-funneled, the CelebA subset in ../shared/data).
* ``warp_to_template``: a 5-point similarity transform onto the ArcFace template, fed by
  a detector's landmarks (facebench.data.detectors).

``align_face`` does either for the main face of a photo; ``align_all_faces`` aligns every
face of a video frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import cv2
import numpy as np

from facebench.data.detectors import Detector, Face, check_rgb, get_detector, main_face
from facebench.input_spec import INPUT_SIZE

# Centre-crop rule, measured rather than guessed: the reference MTCNN's median five
# landmarks on 150 random images of each set (250x250) were, for LFW deep-funneled,
# eyes (104.5, 113.3) (147.5, 112.4), nose (125.9, 137.5), mouth (108.3, 159.1)
# (145.5, 158.3); for the CelebA subset eyes (104.6, 113.2) (143.8, 112.7), nose
# (123.6, 137.1), mouth (106.8, 153.7) (142.2, 153.8). The least-squares scale +
# shift that maps the average of the two onto ARCFACE_TEMPLATE_112 is a 125.8 px
# square centred at (125.2, 117.3): half the image side, centred horizontally and
# 47 % of the way down (the template leaves more room under the mouth than above
# the eyes). With it the median landmarks land within 2.1 px of the template
# (LFW alone would prefer 0.53 of the side, CelebA 0.48).
CENTER_CROP_SIDE_FRACTION = 0.5  # crop side / shorter image side
CENTER_CROP_CENTRE_Y_FRACTION = 0.47  # crop centre row / image height

# ArcFace (insightface) 112x112 five-point template, pixels (x, y): left eye, right eye,
# nose tip, left mouth corner, right mouth corner (left = the image's left).
ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)


def center_crop_box(height: int, width: int) -> tuple[int, int, int]:
    """(top, left, side) of the centre-crop square for an image of this size.

    side = round(0.5 * min(h, w)); left = (w - side) // 2;
    top = round(0.47 * h - side / 2). The square always lies inside the image (its half
    side is at most a quarter of the height).
    """
    side = max(1, round(CENTER_CROP_SIDE_FRACTION * min(height, width)))
    left = (width - side) // 2
    top = round(CENTER_CROP_CENTRE_Y_FRACTION * height - side / 2)
    return top, left, side


def center_crop(image: np.ndarray) -> np.ndarray:
    """uint8 RGB image of any size -> uint8 RGB 112x112 by the documented centre-crop rule.

    The square from ``center_crop_box`` is resized to 112x112 with area interpolation
    (copied unchanged when it is already 112 px).
    """
    top, left, side = center_crop_box(image.shape[0], image.shape[1])
    crop = image[top : top + side, left : left + side]
    if side != INPUT_SIZE:
        crop = cv2.resize(crop, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(crop)


@dataclass(frozen=True)
class AlignInfo:
    """How one crop was made, for reports: which detector, its score, whether it fell back."""

    detector: str  # a detector name (facebench.choices.DETECTOR_NAMES) or "center"
    score: float | None  # the detector's score for the face used; None when no face was used
    fallback: bool  # True when the detector found no face and the centre crop was used
    faces: int  # faces the detector found in the frame (0 for "center")
    face: Face | None  # the face used (box and landmarks in the frame's pixels), if any


class AlignedFace(NamedTuple):
    """A 112x112 crop and how it was made; unpacks as ``crop, info``."""

    image: np.ndarray
    info: AlignInfo


def similarity_to_template(landmarks5: np.ndarray) -> np.ndarray | None:
    """The 2x3 similarity (rotation, uniform scale, shift) taking five landmarks onto the
    ArcFace template, fitted by least median of squares so one bad point cannot drag it;
    None for degenerate landmarks."""
    points = np.asarray(landmarks5, dtype=np.float32).reshape(5, 2)
    matrix, _ = cv2.estimateAffinePartial2D(points, ARCFACE_TEMPLATE_112, method=cv2.LMEDS)
    return matrix


def warp_to_template(image: np.ndarray, landmarks5: np.ndarray) -> np.ndarray:
    """uint8 RGB frame + five landmarks (x, y pixels) -> the 112x112 ArcFace-aligned crop.

    Pixels the transform takes from outside the frame are black. Raises ValueError when
    the landmarks are degenerate (all on one point or line).
    """
    matrix = similarity_to_template(landmarks5)
    if matrix is None:
        raise ValueError(f"degenerate landmarks, no similarity transform: {np.asarray(landmarks5).tolist()}")
    return _warp(image, matrix)


def _warp(image: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    return cv2.warpAffine(image, matrix, (INPUT_SIZE, INPUT_SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _resolve(detector: str | Detector) -> Detector | None:
    """A detector object from a name; None stands for "center" (no detection)."""
    if isinstance(detector, str):
        return None if detector == "center" else get_detector(detector)
    return detector


def align_face(image: np.ndarray, detector: str | Detector = "mtcnn") -> AlignedFace:
    """The main face of a uint8 RGB frame as a 112x112 aligned crop, and how it was made.

    ``detector``: a detector name ("mtcnn", "yunet", "retinaface", "haar"), "center" (centre crop,
    no detection) or a Detector.
    The main face is chosen by ``detectors.main_face``. When no face is found (or its
    landmarks are degenerate) the centre crop is used and ``info.fallback`` is True:
    a photo without a face is recorded, not an error.
    """
    check_rgb(image)
    found = _resolve(detector)
    if found is None:
        return AlignedFace(center_crop(image), AlignInfo("center", None, False, 0, None))
    faces = found.detect(image)
    if faces:
        face = main_face(faces, image.shape[0], image.shape[1])
        matrix = similarity_to_template(face.landmarks)
        if matrix is not None:
            return AlignedFace(_warp(image, matrix), AlignInfo(found.name, face.score, False, len(faces), face))
    return AlignedFace(center_crop(image), AlignInfo(found.name, None, True, len(faces), None))


def align_all_faces(image: np.ndarray, detector: str | Detector = "mtcnn") -> tuple[np.ndarray, list[Face]]:
    """Every face of a uint8 RGB frame (video): crops (N, 112, 112, 3) uint8 and their Faces,
    in the detector's order (best first). Faces with degenerate landmarks are left out;
    a frame without faces gives N = 0."""
    check_rgb(image)
    found = _resolve(detector)
    if found is None:
        raise ValueError("align_all_faces needs a detector (a name or a Detector), not 'center'")
    crops, kept = [], []
    for face in found.detect(image):
        matrix = similarity_to_template(face.landmarks)
        if matrix is not None:
            crops.append(_warp(image, matrix))
            kept.append(face)
    stacked = np.stack(crops) if crops else np.zeros((0, INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8)
    return stacked, kept
