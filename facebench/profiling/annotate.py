"""Write the profiled video back with face boxes, five landmarks and track ids drawn.

mp4v is the codec OpenCV's wheels can write (no libx264); the file is written under a
temporary name beside the target and renamed when complete, so an interrupted run leaves
no half-written video.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

import cv2
import numpy as np

from facebench.data.detectors import Face
from facebench.errors import FacebenchError
from facebench.fileio import atomic_path

FOURCC = "mp4v"
# BGR colours, cycled by track id so one person keeps one colour
PALETTE = ((0, 200, 0), (0, 160, 255), (255, 120, 0), (200, 0, 200), (0, 220, 220), (80, 80, 255))
LANDMARK_BGR = (0, 0, 255)


def draw_faces(bgr: np.ndarray, faces: Sequence[Face], track_ids: Sequence[int]) -> None:
    """Draw each face's box, landmarks and 'id N' onto the BGR frame in place."""
    thickness = max(1, round(max(bgr.shape[:2]) / 500))
    for face, track_id in zip(faces, track_ids, strict=True):
        colour = PALETTE[track_id % len(PALETTE)]
        x1, y1, x2, y2 = (int(round(v)) for v in face.box)
        cv2.rectangle(bgr, (x1, y1), (x2, y2), colour, thickness)
        for x, y in face.landmarks:
            cv2.circle(bgr, (int(round(x)), int(round(y))), thickness + 1, LANDMARK_BGR, -1)
        cv2.putText(bgr, f"id {track_id}", (x1, max(y1 - 4 * thickness, 10)), cv2.FONT_HERSHEY_SIMPLEX,
                    0.4 * thickness, colour, thickness)  # fmt: skip


class AnnotatedVideo:
    """``with AnnotatedVideo(path, fps, width, height) as out: out.write(bgr, faces, ids)``."""

    def __init__(self, path: str | Path, fps: float, width: int, height: int) -> None:
        self.path = Path(path)
        self.fps = fps if fps > 0 else 25.0
        self.size = (width, height)
        self._stack = ExitStack()
        self._canvas = np.empty((height, width, 3), dtype=np.uint8)

    def __enter__(self) -> AnnotatedVideo:
        problem = f"--save-annotated {self.path}: OpenCV cannot write an {FOURCC} video there"
        fix = "fix: use a writable path ending in .mp4 (or .avi)"
        try:
            tmp = self._stack.enter_context(atomic_path(self.path))
        except OSError as exc:
            raise FacebenchError(f"{problem} ({exc.strerror}); {fix}") from None
        self._writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*FOURCC), self.fps, self.size)
        if not self._writer.isOpened():
            self._stack.close()
            raise FacebenchError(f"{problem}; {fix}")
        return self

    def write(self, bgr: np.ndarray, faces: Sequence[Face], track_ids: Sequence[int]) -> None:
        """Append one frame (left unchanged) with its faces drawn."""
        np.copyto(self._canvas, bgr)
        draw_faces(self._canvas, faces, track_ids)
        self._writer.write(self._canvas)

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._writer.release()
        # atomic_path renames the finished file into place, or deletes it after an error
        self._stack.__exit__(exc_type, *rest)
