"""Face detectors that return boxes, scores and five landmarks, chosen by name.

``mtcnn`` (facebench.data.mtcnn, a three-stage cascade) is the reference the pretrained
embedders were trained on; ``yunet`` (facebench.data.yunet, OpenCV's single-shot CNN) and
``retinaface`` (facebench.data.retinaface, MobileNet-0.25, PyTorch, CPU or CUDA) ship their
weights inside the package and move their landmarks onto MTCNN's positions
(facebench.data.landmarks); ``haar`` (facebench.data.haar) is an OpenCV-only fallback.
All take any uint8 RGB frame and return every face they find as ``Face`` (box, score,
five points in one order), so the video profiler can use them as they are.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from facebench.choices import DETECTOR_NAMES
from facebench.errors import FacebenchError


@dataclass(frozen=True)
class Face:
    """One detected face, in the pixel coordinates of the frame it was found in."""

    box: np.ndarray  # float32 (4,): x1, y1, x2, y2
    score: float  # detector confidence (MTCNN, RetinaFace: probability; YuNet: score; Haar: cascade level weight)
    landmarks: np.ndarray  # float32 (5, 2): left eye, right eye, nose, left mouth, right mouth


class Detector(Protocol):
    """What align_face needs from a detector."""

    name: str

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces in a uint8 RGB (H, W, 3) frame, best first."""
        ...


def check_rgb(image: np.ndarray) -> None:
    """Refuse anything but a non-empty uint8 (H, W, 3) array (a bug in the caller, not user input)."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or image.size == 0:
        raise ValueError(f"expected a uint8 RGB (H, W, 3) image, got {image.dtype} {image.shape}")


def downscale(image: np.ndarray, max_side_px: int) -> tuple[np.ndarray, float]:
    """Shrink a frame so its longer side is at most max_side_px; returns it and the factor used.

    Detection cost grows with the pixel count while faces of interest stay large enough,
    so detectors search a smaller copy and divide their coordinates by the factor.
    """
    import cv2

    longer = max(image.shape[0], image.shape[1])
    if longer <= max_side_px:
        return image, 1.0
    factor = max_side_px / longer
    size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), factor


def main_face(faces: list[Face], height: int, width: int) -> Face:
    """The face a photo is about: largest box, penalised by its distance from the centre.

    value = box area - 2 * (squared distance of the box centre from the image centre),
    the rule insightface uses to pick the subject of a roughly centred photo.
    """
    centre = np.array([width / 2, height / 2])

    def value(face: Face) -> float:
        x1, y1, x2, y2 = face.box
        offset = np.array([(x1 + x2) / 2, (y1 + y2) / 2]) - centre
        return float((x2 - x1) * (y2 - y1) - 2.0 * offset @ offset)

    return max(faces, key=value)


def build_detector(name: str, correction: str = "linear") -> Detector:
    """A new detector called ``name`` (it loads and checks its weights here). One object must not
    run on two threads at once: OpenCV's cascade classifier and FaceDetectorYN are not thread-safe.

    ``correction``: the landmark correction YuNet and RetinaFace apply (facebench.data.landmarks:
    linear, constant or none); MTCNN's points are the reference and Haar's are estimated, so they have none."""
    if name == "mtcnn":
        from facebench.data.mtcnn import MtcnnDetector

        return MtcnnDetector()
    if name == "yunet":
        from facebench.data.yunet import YunetDetector

        return YunetDetector(correction=correction)
    if name == "retinaface":
        from facebench.data.retinaface import RetinaFaceDetector

        return RetinaFaceDetector(correction=correction)
    if name == "haar":
        from facebench.data.haar import HaarDetector

        return HaarDetector()
    raise FacebenchError(f"unknown detector {name!r}; choose one of: {', '.join(DETECTOR_NAMES)}")


@functools.cache
def get_detector(name: str) -> Detector:
    """The detector called ``name``, built once per process and shared (one thread at a time)."""
    return build_detector(name)
