"""What a face detector costs: ms of the detector call per photo and per video frame, batch 1, pinned threads.

Only the ``detect`` call is timed (not reading, warping or writing), each after warm-up calls,
with torch's and OpenCV's thread counts pinned alike (``pinned_threads``), so detectors that run
in torch (MTCNN, RetinaFace) and in OpenCV (YuNet, Haar) are timed under the same rule.
``detect_photos`` is also how the detector bench makes its crop sets: one pass that times every
photo and warps its main face once per landmark correction.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from facebench.data.align import center_crop, warp_to_template
from facebench.data.detectors import Detector, Face, build_detector, main_face
from facebench.data.images import encode_jpeg, read_image
from facebench.data.landmarks import correct_landmarks
from facebench.profiling.frames import read_frames
from facebench.profiling.runtime import pinned_threads

CLIP_WARMUP_FRAMES = 3


def _timed_calls(detector: Detector, images: list[np.ndarray]) -> tuple[np.ndarray, list[int]]:
    """ms of each ``detect`` call and the faces it found."""
    times, faces = [], []
    for image in images:
        start = time.perf_counter()
        faces.append(len(detector.detect(image)))
        times.append((time.perf_counter() - start) * 1e3)
    return np.array(times), faces


def time_detector(name: str, paths: list[Path], threads: int, warmup: int) -> np.ndarray:
    """ms of the detector call per photo at batch 1 with ``threads`` threads, after ``warmup`` calls; the detector
    as shipped (YuNet's and RetinaFace's landmark correction included: about 0.06 ms of a call)."""
    images = [read_image(path) for path in paths]
    with pinned_threads(threads):
        detector = build_detector(name)
        for image in images[:warmup]:
            detector.detect(image)
        return _timed_calls(detector, images)[0]


def time_clip(name: str, clip: Path, frames: int, threads: int) -> tuple[np.ndarray, float]:
    """ms of the detector call per frame (batch 1, ``threads`` threads, the detector as shipped) over the clip's
    first ``frames`` frames, after CLIP_WARMUP_FRAMES untimed calls, and the mean faces found per frame."""
    images = [frame.rgb.copy() for frame in read_frames(clip, max_frames=frames)]  # read_frames reuses its buffer
    with pinned_threads(threads):
        detector = build_detector(name)
        for image in images[:CLIP_WARMUP_FRAMES]:
            detector.detect(image)
        times, faces = _timed_calls(detector, images)
    return times, float(np.mean(faces))


def detect_photos(name: str, root: Path, files: list[str], crop_sets: dict[str, Path],
                  advance: Callable[[], None] = lambda: None) -> dict[str, np.ndarray]:  # fmt: skip
    """Detect every photo once at 1 thread: per photo the detector call's ms, the faces found and the main face's
    raw five points (nan when none). Each crop set (correction -> folder) gets every photo's crop at the same
    relative path, made as ``align_face`` makes it (the main face warped onto the template, its points corrected
    that way, facebench.data.landmarks, "none": as detected; the centre crop when no face is found) and written
    as ``facebench align`` writes it (JPEG q95)."""
    ms = np.zeros(len(files))
    faces = np.zeros(len(files), dtype=np.int32)
    landmarks = np.full((len(files), 5, 2), np.nan, dtype=np.float32)
    with pinned_threads(1):
        detector = build_detector(name, correction="none")
        detector.detect(read_image(root / files[0]))  # warm-up: first-call allocations
        for i, file in enumerate(files):
            image = read_image(root / file)
            start = time.perf_counter()
            found = detector.detect(image)
            ms[i] = (time.perf_counter() - start) * 1e3
            faces[i] = len(found)
            face = main_face(found, *image.shape[:2]) if found else None
            if face is not None:
                landmarks[i] = face.landmarks
            for correction, folder in crop_sets.items():
                out = folder / file
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(encode_jpeg(_crop(image, name, face, correction)))
            advance()
    return {"ms": ms, "faces": faces, "landmarks": landmarks}


def _crop(image: np.ndarray, name: str, face: Face | None, correction: str) -> np.ndarray:
    if face is None:
        return center_crop(image)
    try:
        return warp_to_template(image, correct_landmarks(name, face.landmarks, correction))
    except ValueError:  # degenerate points: the centre crop, as align_face does
        return center_crop(image)
