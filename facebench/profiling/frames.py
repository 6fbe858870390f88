"""Video frames for the profiler: checked opening, timed decoding into reused buffers.

A video that cannot be used (missing, a folder, an image, unreadable, no frames) is a
user mistake: FacebenchError with one line. Frames come out as uint8 RGB, decoded into a
ring of reused buffer pairs (the BGR frame OpenCV returns and its RGB conversion): with
``buffers=n`` a consumer may hold the last n frames; older ones are overwritten.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facebench.errors import FacebenchError

VIDEO_FIX = "fix: give a video file OpenCV can decode (.mp4, .avi, .mkv, ...)"


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video (frame_count is OpenCV's estimate; -1 if unknown)."""

    path: Path
    width: int
    height: int
    fps: float
    frame_count: int


@dataclass
class Frame:
    """One processed frame: its index in the video, the pixels and what decoding it cost."""

    index: int
    rgb: np.ndarray  # (H, W, 3) uint8, a reused buffer
    bgr: np.ndarray  # (H, W, 3) uint8, the decoder's own buffer (for drawing and writing)
    decode_ms: float  # grabbing the skipped frames before it + reading it + BGR -> RGB


def _open(path: Path) -> cv2.VideoCapture:
    """An opened capture for ``path`` or FacebenchError naming the file and the fix."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # keep FFmpeg's own messages off the terminal
    if not path.exists():
        raise FacebenchError(f"video {path} does not exist; {VIDEO_FIX}")
    if path.is_dir():
        raise FacebenchError(f"video {path} is a folder; {VIDEO_FIX}")
    with _quiet_opencv():
        if cv2.haveImageReader(str(path)):
            raise FacebenchError(f"video {path} is a still image, not a video; {VIDEO_FIX}")
        capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not capture.isOpened():
        raise FacebenchError(
            f"video {path} cannot be read as a video (not a video file, damaged, or without frames); {VIDEO_FIX}"
        )
    return capture


@contextmanager
def _quiet_opencv() -> Iterator[None]:
    """OpenCV's own warnings off while a video is opened ("[ WARN:0@0.02] ... can't be used to capture by name"
    before our one line that says the same)."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


def probe_video(path: str | Path) -> VideoInfo:
    """Check that ``path`` is a readable video with at least one frame; its size, fps and frame count."""
    path = Path(path)
    capture = _open(path)
    try:
        ok, frame = capture.read()
        if not ok or frame is None:
            raise FacebenchError(f"video {path} has no frames; {VIDEO_FIX}")
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        return VideoInfo(
            path=path,
            width=frame.shape[1],
            height=frame.shape[0],
            fps=float(capture.get(cv2.CAP_PROP_FPS)),
            frame_count=count if count > 0 else -1,
        )
    finally:
        capture.release()


def planned_frames(info: VideoInfo, every: int = 1, max_frames: int | None = None) -> int | None:
    """How many frames ``read_frames`` should yield, from the container's count (None if unknown)."""
    if info.frame_count < 0:
        return max_frames
    planned = -(-info.frame_count // every)  # ceil: frames 0, every, 2 * every, ...
    return planned if max_frames is None else min(planned, max_frames)


def read_frames(path: str | Path, every: int = 1, max_frames: int | None = None, buffers: int = 1) -> Iterator[Frame]:
    """Frames 0, every, 2 * every, ... (at most ``max_frames``) as uint8 RGB, each with its decode time.

    The skipped frames are still grabbed (decoded by FFmpeg; seeking is not frame-exact),
    and their cost is part of the next processed frame's ``decode_ms``. Frame k is decoded
    into buffer pair k % ``buffers``.
    """
    if every < 1:
        raise FacebenchError(f"--every must be >= 1, got {every}")
    path = Path(path)
    capture = _open(path)
    bgr: list[np.ndarray | None] = [None] * buffers
    rgb: list[np.ndarray | None] = [None] * buffers
    index, yielded = 0, 0
    try:
        while max_frames is None or yielded < max_frames:
            start = time.perf_counter()
            if yielded and not all(capture.grab() for _ in range(every - 1)):
                return
            slot = yielded % buffers
            ok, bgr[slot] = capture.read(bgr[slot])
            if not ok:
                return
            reuse = rgb[slot] if rgb[slot] is not None and rgb[slot].shape == bgr[slot].shape else None
            rgb[slot] = cv2.cvtColor(bgr[slot], cv2.COLOR_BGR2RGB, dst=reuse)
            yield Frame(index, rgb[slot], bgr[slot], (time.perf_counter() - start) * 1e3)
            yielded += 1
            index += every
    finally:
        capture.release()
